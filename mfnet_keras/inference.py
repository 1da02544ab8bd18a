"""Inference with any artefact: loading it (a `.keras` file, a preset, a SavedModel, a LiteRT / ONNX /
OpenVINO file), sampling clips from decoded frames, softmax and top-k. `predict` and `streaming` call it.
"""

import importlib
import importlib.util
import json
import os

import numpy as np

from mfnet_keras import models
from mfnet_keras.defaults import clip_span, eval_clip_starts
from mfnet_keras.errors import MFNetError
from mfnet_keras.export.artefacts import ARTEFACTS, SIDECAR
from mfnet_keras.export.runtime import cached_runtime_export
from mfnet_keras.export.saved_model import saved_model_settings
from mfnet_keras.models import VideoClassifierPreprocessor


def softmax(logits):
    """Softmax over the last axis, in float64.

    Args:
        logits: scores, classes on the last axis.

    Examples:
    >>> softmax(np.array([0.0, 0.0])).tolist()
    [0.5, 0.5]
    """
    logits = np.asarray(logits, np.float64)
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class RuntimeMissing(MFNetError):
    """The runtime a model file needs is not installed: one line naming the pip package."""


# Model file suffix → (format, module of its runtime, pip package).
_RUNTIMES = {
    ".tflite": ("litert", "ai_edge_litert", "ai-edge-litert"),
    ".onnx": ("onnx", "onnxruntime", "onnxruntime"),
    ".xml": ("openvino", "openvino", "openvino"),
}


def runtime_artefact(path):
    """The LiteRT / ONNX / OpenVINO file `path` names (itself, or the one in an export folder), or None.

    Args:
        path: a file or an export folder.
    """
    if os.path.isdir(path) and os.path.exists(os.path.join(path, SIDECAR)):
        with open(os.path.join(path, SIDECAR)) as f:
            return os.path.join(path, ARTEFACTS[json.load(f)["format"]])
    return path if os.path.splitext(path)[1] in _RUNTIMES else None


def runtime_logits(path, openvino_precision=None):
    """A function of float32 clips `[N, T, crop, crop, 3]` → logits, run by the file's own runtime on
    every core. `openvino_precision` ("f32", "bf16") overrides OpenVINO's default (bf16 where the CPU has it).

    Args:
        path: a `.tflite`, `.onnx` or OpenVINO `.xml` file.
        openvino_precision: OpenVINO's inference precision hint, `"f32"` or `"bf16"` (None: its default).
    """
    format, module, package = _RUNTIMES[os.path.splitext(path)[1]]
    try:
        runtime = importlib.import_module(module)
    except ImportError as error:
        raise RuntimeMissing(f"{path} needs {package}: pip install {package}") from error
    if format == "litert":
        interpreter = importlib.import_module("ai_edge_litert.interpreter").Interpreter(
            path, num_threads=os.cpu_count()
        )
        interpreter.allocate_tensors()
        given, taken = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]

        def one(clip):  # the LiteRT model takes a batch of 1
            interpreter.set_tensor(given, clip[None])
            interpreter.invoke()
            return interpreter.get_tensor(taken)[0]

        return lambda clips: np.stack([one(clip) for clip in clips])
    if format == "onnx":
        options = runtime.SessionOptions()  # idle threads sleep rather than spin, taking no core from the caller
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = runtime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda clips: session.run(None, {name: clips})[0]
    config = {"INFERENCE_PRECISION_HINT": openvino_precision} if openvino_precision else {}
    compiled = runtime.Core().compile_model(path, "CPU", config)
    return lambda clips: compiled(clips)[0]


RUNTIME_CHOICES = ("auto", "keras", "openvino")


def _installed(module):
    return importlib.util.find_spec(module) is not None


class Classifier:
    """A classifier to predict with: a SavedModel from `mfnet_keras.export`, a `.keras` file, a preset
    folder, or a LiteRT / ONNX / OpenVINO model written by `export --format`.

    A `.keras` file or preset folder runs on the fastest runtime installed
    (`runtime="auto"`, benchmarks/deploy.py): OpenVINO, at its default
    precision (bf16 where the CPU has it), from an export made once and cached
    (`export.cached_runtime_export`); else Keras. `runtime="keras"` keeps
    Keras. An exported artefact runs on its own runtime. `runtime` (the
    attribute) names the one in use.

    Each carries its class names and preprocessing; clips go in as uint8 frames
    whose short side is `short_side`. The Keras model and the SavedModel resize,
    crop and normalise them inside; the fixed-size runtime models get the same
    resize and crop here (`VideoClassifierPreprocessor.resize_and_crop`) and
    normalise inside.

    Args:
        path: the artefact, `.keras` file or preset folder.
        runtime: one of `RUNTIME_CHOICES` (`"auto"`, `"keras"`, `"openvino"`) for a `.keras` file or a
            preset folder.
    """

    def __init__(self, path, runtime="auto"):
        if runtime not in RUNTIME_CHOICES:
            raise ValueError(f"`runtime` must be one of {RUNTIME_CHOICES}. Received: runtime={runtime!r}")
        self._keras = self._serve = self._runtime = None
        artefact = runtime_artefact(path)
        if artefact is None and os.path.isdir(path) and os.path.exists(os.path.join(path, "saved_model.pb")):
            import tensorflow as tf

            loaded = tf.saved_model.load(path)
            self._serve, self.runtime = loaded.signatures["serving_default"], "tensorflow"
            self.class_names, settings = saved_model_settings(loaded)
        elif artefact is None:
            if runtime == "openvino" or (runtime == "auto" and os.path.exists(path) and _installed("openvino")):
                artefact = cached_runtime_export(path, "openvino")
            else:
                model = models.load_model(path)
                self._keras, self.runtime = model, "keras"
                self.class_names, settings = list(model.class_names), model.preprocessor.get_config()
        if artefact is not None:
            with open(os.path.join(os.path.dirname(os.path.abspath(artefact)), SIDECAR)) as f:
                sidecar = json.load(f)
            self._runtime, self.runtime = runtime_logits(artefact), sidecar["format"]
            self.class_names, settings = sidecar["class_names"], sidecar["preprocessor"]
            self._crop = VideoClassifierPreprocessor.from_config(settings).resize_and_crop
        self.clip_length, self.crop_size = int(settings["clip_length"]), int(settings["crop_size"])
        self.short_side, self.frame_interval = int(settings["short_side"]), int(settings["frame_interval"])

    @property
    def keras_model(self):
        """The Keras `VideoClassifier` when the runtime is Keras, else None."""
        return self._keras

    def probabilities(self, clips):
        """Softmax of a batch of uint8 clips `[N, T, H, W, 3]`.

        Args:
            clips: uint8 clips `[N, T, H, W, 3]`.
        """
        if self._serve is not None:
            return self._serve(clips=clips)["probabilities"].numpy()
        if self._keras is not None:
            logits = self._keras.predict_on_batch(clips)
        else:  # the model's own resize and centre crop, here: the runtime model takes crop-sized clips
            logits = self._runtime(np.ascontiguousarray(np.asarray(self._crop(clips), np.float32)))
        return softmax(logits)


def make_clips(frames, starts, clip_length, interval):
    """uint8 clips `[len(starts), T, H, W, 3]` of the frames from each start (wrapping past the end).

    Args:
        frames: uint8 frames `[N, H, W, 3]`.
        starts: the first frame of each clip.
        clip_length: frames per clip.
        interval: frames between consecutive clip frames.
    """
    n = len(frames)
    return np.stack([np.stack([frames[(start + i * interval) % n] for i in range(clip_length)]) for start in starts])


def top_k(probabilities, names, k):
    """The `k` most probable classes, most probable first (ties: the lower index).

    Args:
        probabilities: one probability per class.
        names: the class names.
        k: how many classes.

    Examples:
    >>> top_k(np.array([0.1, 0.7, 0.2]), ["a", "b", "c"], 2)
    [{'label': 'b', 'index': 1, 'probability': 0.7}, {'label': 'c', 'index': 2, 'probability': 0.2}]
    """
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [{"label": names[i], "index": int(i), "probability": float(probabilities[i])} for i in order]


def sample_clips(frames, clip_length, frame_interval, clips):
    """`clips` uint8 clips `[clips, T, H, W, 3]` uniformly spread over `frames`, as evaluation samples them.

    Args:
        frames: uint8 frames `[N, H, W, 3]`.
        clip_length: frames per clip.
        frame_interval: frames between consecutive clip frames.
        clips: how many clips.
    """
    starts = eval_clip_starts(len(frames), clip_span(clip_length, frame_interval), clips)
    return make_clips(frames, starts, clip_length, frame_interval)
