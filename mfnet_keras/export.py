"""Exports a `VideoClassifier` as a TensorFlow SavedModel with serving signatures (and as `.keras`).

    mfnet-export --weights runs/NAME/model.keras --out exported/NAME [--format litert]
    export(weights, out, format, precision, calibration)  # the same, from Python; weights: .keras or a preset

`--format litert | onnx | openvino` writes `model.tflite`, `model.onnx` or
`model.xml` through Keras's `model.export`, with `classifier.json` (class names,
preprocessing) beside it: see `export_runtime`. `--format litert|openvino
--precision int8 --calibration 'data/*.tfrecord' [--calibration-clips 64]`
writes an int8 model (LiteRT: full-integer; OpenVINO: quantised by NNCF).
The rest of this text is about the default, `tf_saved_model`.

The classifier carries its preprocessing (resize, centre crop, normalisation)
and class names, so nothing else is read. Signatures (all return `logits`,
`probabilities`, `top_k_indices`, `top_k_names`):
- `serving_default`: uint8 clips `[batch, T, H, W, 3]` of any H and W.
- `serve_float`: the same clips as float32 in [0, 255].
- `serve_examples`: serialized `tf.train.SequenceExample`s in the project's schema;
  decoded and centre-clipped inside the graph, then preprocessed by the model.
Clips of another rank, length T or channel count are an `InvalidArgumentError`
naming the shape wanted (checked in the graph: a declared input shape is
trusted, not enforced); an empty batch gives empty outputs; a bad example
fails naming its index. Keras's `ExportArchive` writes it. The class names
travel as the variable collection `class_names` and the file
`assets/labels.txt`; the preprocessing (mean, std, clip length, crop size,
short side, frame interval) as the collection `preprocessing`, one variable
per key (`saved_model_settings` reads both). The export reloads with
TensorFlow alone: `tf.saved_model.load(path)`.
"""

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import warnings

import mfnet_keras  # TensorFlow options, before TensorFlow loads; its version keys the runtime cache
from tfrecords_tools.quiet import add_verbose_argument, import_tensorflow

TOP_K = 5


PREPROCESSING = ("mean", "std", "clip_length", "crop_size", "short_side", "frame_interval")


def _checked(clips, dtype, clip_length):
    """`clips` with its static shape, once its rank, length and channels are checked at run time."""
    import tensorflow as tf

    message = f"clips must be {dtype} [batch, {clip_length}, height, width, 3]; got shape"
    rank = tf.debugging.Assert(tf.equal(tf.rank(clips), 5), [message, tf.shape(clips)], summarize=8)
    with tf.control_dependencies([rank]):
        shape = tf.concat([tf.shape(clips), tf.zeros([5], tf.int32)], 0)  # indexable at any rank
        dims_ok = (shape[1] == clip_length) & (shape[4] == 3) & (tf.reduce_min(shape[2:4]) > 0)
        dims = tf.debugging.Assert(dims_ok, [message, tf.shape(clips)], summarize=8)
    with tf.control_dependencies([dims]):
        return tf.ensure_shape(clips, [None, clip_length, None, None, 3])


def _example_clip(model, record, index):
    """The centre clip of one serialized `SequenceExample`, decoded: float32 `[T, H, W, 3]`."""
    import tensorflow as tf

    from mfnet_keras.data import decode_centre_clip

    pre = model.preprocessor
    return decode_centre_clip(
        record, pre.clip_length, pre.frame_interval, ["serve_examples: example", tf.strings.as_string(index)]
    )


def _serving_endpoints(model, class_names):
    """`{signature name: (function, input signature)}` of the three serving signatures."""
    import tensorflow as tf

    pre = model.preprocessor
    classes = int(class_names.shape[0])
    k = min(TOP_K, classes)

    def outputs(logits):
        probabilities = tf.nn.softmax(logits)
        indices = tf.math.top_k(probabilities, k).indices
        names = tf.gather(class_names, indices)
        return {"logits": logits, "probabilities": probabilities, "top_k_indices": indices, "top_k_names": names}

    def checked_outputs(clips):
        """The outputs of a checked batch; an empty batch gives empty outputs without running the model."""
        logits = tf.cond(
            tf.shape(clips)[0] > 0,
            lambda: tf.cast(model(clips, training=False), tf.float32),
            lambda: tf.zeros([0, classes]),
        )
        return outputs(logits)

    def serve(clips):
        return checked_outputs(tf.cast(_checked(clips, "uint8", pre.clip_length), tf.float32))

    def serve_float(clips):
        return checked_outputs(_checked(clips, "float32", pre.clip_length))

    def serve_examples(serialized):
        def logits(args):
            clip = _example_clip(model, *args)
            return tf.cast(model(clip[None], training=False), tf.float32)[0]

        signature = tf.TensorSpec([classes], tf.float32)
        indices = tf.range(tf.size(serialized))
        return outputs(tf.map_fn(logits, (serialized, indices), fn_output_signature=signature))

    # Any clip shape is accepted and checked inside: a declared shape would be trusted, not enforced.
    return {
        "serving_default": (serve, [tf.TensorSpec(None, tf.uint8, name="clips")]),
        "serve_float": (serve_float, [tf.TensorSpec(None, tf.float32, name="clips")]),
        "serve_examples": (serve_examples, [tf.TensorSpec([None], tf.string, name="serialized")]),
    }


def export_saved_model(model, out_dir):
    """Writes the SavedModel of a `VideoClassifier` with Keras's `ExportArchive`; returns its path.

    Three signatures; the class names and preprocessing as variable collections
    (`loaded.class_names`, `loaded.preprocessing`, variables named by their key);
    the class names also as the file `assets/labels.txt`.
    """
    import keras
    import tensorflow as tf

    pre = model.preprocessor
    class_names = tf.Variable(list(model.class_names), trainable=False, name="class_names")
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, (function, signature) in _serving_endpoints(model, class_names).items():
        archive.add_endpoint(name, function, input_signature=signature)
    archive.add_variable_collection("class_names", [class_names])
    settings = [tf.Variable(getattr(pre, key), trainable=False, name=key) for key in PREPROCESSING]
    archive.add_variable_collection("preprocessing", settings)
    archive.write_out(out_dir, verbose=False)
    os.makedirs(os.path.join(out_dir, "assets"), exist_ok=True)
    with open(os.path.join(out_dir, "assets", "labels.txt"), "w") as f:
        f.write("".join(name + "\n" for name in model.class_names))
    return out_dir


def saved_model_settings(loaded):
    """`(class names, preprocessing dict)` of a SavedModel from `export_saved_model`, reloaded."""
    names = [name.decode() for name in loaded.class_names[0].numpy()]
    return names, {v.name.split(":")[0]: v.numpy() for v in loaded.preprocessing}


class ExportError(Exception):
    """A classifier that cannot be read or a format whose tools are missing: one line, exit code 2."""


FORMATS = ("tf_saved_model", "litert", "onnx", "openvino")
# What each format needs beyond TensorFlow, as (module, pip package); `pip install 'mfnet-keras[export]'` has all.
_NEEDS = {
    "litert": (("ai_edge_litert", "ai-edge-litert"),),
    "onnx": (("tf2onnx", "tf2onnx"), ("onnx", "onnx"), ("onnxruntime", "onnxruntime")),
    "openvino": (("openvino", "openvino"), ("scipy", "scipy")),
    "openvino int8": (("nncf", "nncf"),),  # OpenVINO's post-training quantisation
}
INT8_FORMATS = ("litert", "openvino")
ARTEFACTS = {"litert": "model.tflite", "onnx": "model.onnx", "openvino": "model.xml"}
SIDECAR = "classifier.json"


def _check_tools(format, precision):
    import importlib

    for need in (format, f"{format} {precision}"):
        for module, package in _NEEDS.get(need, ()):
            try:
                importlib.import_module(module)
            except ImportError as error:
                what = f"--format {format}" + (f" --precision {precision}" if need != format else "")
                raise ExportError(
                    f"{what} needs {package}: pip install {package} (or 'mfnet-keras[export]')"
                ) from error


# The `FiberConv` implementation each runtime runs best (benchmarks/deploy.py): LiteRT's 3D convolution
# has neither groups nor int8 kernels, so every convolution becomes a (grouped) 2D one over the frames;
# OpenVINO reads TensorFlow's grouped 3D convolutions as grouped `Convolution` nodes; tf2onnx writes a
# grouped 3D convolution with the wrong group count, so ONNX keeps one node per fiber.
GRAPH_FORMS = {"litert": "taps", "onnx": "split", "openvino": "graph"}
PRECISIONS = ("float32", "int8")


@contextlib.contextmanager
def graph_form(model, implementation):
    """Within the block, every `FiberConv` of `model` runs as `implementation` (the same numbers in
    another graph); each gets its own back afterwards."""
    from mfnet_keras.layers import FiberConv, walk_layers

    convs = [layer for layer in walk_layers(model) if isinstance(layer, FiberConv) and layer.built]
    before = [conv.implementation for conv in convs]
    try:
        for conv in convs:
            conv.use_implementation(implementation)
        yield model
    finally:
        for conv, implementation in zip(convs, before):
            conv.use_implementation(implementation)


def read_calibration_clips(model, pattern, count):
    """Up to `count` float32 clips `[1, T, crop, crop, 3]` in [0, 255] from the TFRecords `pattern`,
    cut as the model sees them (short side at the model's, a crop of the crop size), for int8 calibration."""
    from mfnet_keras.data import make_dataset

    pre = model.preprocessor
    ds = make_dataset(
        pattern,
        "train",
        batch_size=1,
        clip_length=pre.clip_length,
        frame_intervals=(pre.frame_interval,),
        crop_size=pre.crop_size,
        scale_range=(pre.short_side, pre.short_side),
        aspect_range=(1.0, 1.0),
        flip=False,
        color_jitter=None,
        seed=0,
    )
    return [clips.numpy() for clips, _ in ds.take(count)]


def _litert_int8(model, spec, path, clips):
    """Full-integer LiteRT model calibrated on `clips`; the global pooling and the classifier stay float."""
    import functools

    import keras
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as saved:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serve", functools.partial(model.__call__, training=False), input_signature=[spec])
        archive.write_out(saved, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([clip] for clip in clips)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        # int8 pooling is what collapsed MoViNet's int8 accuracy (tensorflow/models#10809): keep the head float.
        with warnings.catch_warnings():  # the debugger runs TensorFlow's own (deprecated) interpreter
            warnings.filterwarnings("ignore", message=r"\s*Warning: tf.lite.Interpreter is deprecated")
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter,
                debug_dataset=lambda: ([clip] for clip in clips),
                debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=["MEAN", "FULLY_CONNECTED"]),
            )
            flatbuffer = debugger.get_nondebug_quantized_model()
    with open(path, "wb") as f:
        f.write(flatbuffer)


def _openvino_int8(path, clips):
    """Quantises the OpenVINO model at `path` in place to int8 with NNCF, calibrated on `clips`; the
    classifier's matrix product stays float."""
    import nncf
    import openvino

    from mfnet_keras.files import PARTIAL

    model = openvino.Core().read_model(path)  # maps model.bin: the result is written beside it, then renamed
    ignored = nncf.IgnoredScope(types=["MatMul"])
    logger = logging.getLogger("nncf")
    level = logger.level
    logger.setLevel(logging.WARNING)  # its INFO lines and progress bars would go to stdout, which is for results
    try:
        with contextlib.redirect_stdout(sys.stderr):
            quantized = nncf.quantize(model, nncf.Dataset(clips), subset_size=len(clips), ignored_scope=ignored)
    finally:
        logger.setLevel(level)
    partial = os.path.join(os.path.dirname(path), PARTIAL, os.path.basename(path))
    openvino.save_model(quantized, partial, compress_to_fp16=False)
    for suffix in (".xml", ".bin"):
        os.replace(os.path.splitext(partial)[0] + suffix, os.path.splitext(path)[0] + suffix)


def export_runtime(model, out_dir, format, precision="float32", calibration=None):
    """Writes `out_dir/model.{tflite,onnx,xml}` and `classifier.json` (class names, preprocessing,
    precision); returns the artefact's path.

    The artefact takes float32 clips `[batch, T, crop, crop, 3]` in [0, 255] (batch 1 for LiteRT):
    the normalisation is inside, the resize and centre crop are the caller's (`predict` does them).
    A fixed frame size keeps the graph to each runtime's built-in ops. The model's convolutions are
    written in the runtime's `GRAPH_FORMS`. `precision="int8"` (LiteRT, OpenVINO) quantises weights and
    activations to int8, calibrated on `calibration`, a list of clips shaped as the input; the
    classifier head stays float.
    """
    import tensorflow as tf

    from mfnet_keras.files import remove_empty_partial, write_json

    pre = model.preprocessor
    batch = 1 if format == "litert" else None
    spec = tf.TensorSpec((batch, pre.clip_length, pre.crop_size, pre.crop_size, 3), tf.float32, name="clips")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, ARTEFACTS[format])
    with graph_form(model, GRAPH_FORMS[format]):
        if precision == "int8" and format == "litert":
            _litert_int8(model, spec, path, calibration)
        else:
            options = {}
            if format == "litert":  # built-in ops only: Keras would otherwise allow Flex ops, which LiteRT cannot run
                options["target_spec"] = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}
            model.export(path, format=format, input_signature=[spec], verbose=False, **options)
    if precision == "int8" and format == "openvino":
        _openvino_int8(path, calibration)
    sidecar = {
        "format": format,
        "precision": precision,
        "class_names": list(model.class_names),
        "preprocessor": pre.get_config(),
    }
    write_json(os.path.join(out_dir, SIDECAR), sidecar)
    remove_empty_partial(out_dir)
    return path


def cached_runtime_export(source, format):
    """The `format` artefact of the classifier at `source` (a `.keras` file or preset folder): exported
    once into `$KERAS_HOME/mfnet_keras/runtimes/` and reused while `source` and this version are unchanged
    (the Keras model is only loaded to export it)."""
    import keras

    from mfnet_keras import models
    from mfnet_keras.files import remove_empty_partial, replacing, sha256_of
    from mfnet_keras.models.preset_utils import cache_dir

    key = f"{sha256_of(source)[:16]}-{mfnet_keras.__version__}-{format}"
    folder = os.path.join(cache_dir(), "runtimes", key)
    if not os.path.exists(os.path.join(folder, SIDECAR)):
        os.makedirs(os.path.dirname(folder), exist_ok=True)
        with replacing(folder) as partial:
            if keras.backend.backend() == "tensorflow":
                export_runtime(models.load_model(source), partial, format)
            else:
                export_under_tensorflow(["--weights", source, "--out", partial, "--format", format])
        remove_empty_partial(os.path.dirname(folder))
    return os.path.join(folder, ARTEFACTS[format])


def export_under_tensorflow(argv):
    """Runs `python -m mfnet_keras.export ARGV` with `KERAS_BACKEND=tensorflow` in a child process and returns
    its result: how a model trained on JAX or PyTorch is exported (a `.keras` file loads on any backend).
    The child's `error:` line is raised here as a `PresetError` (a refused model) or an `ExportError`."""
    import subprocess

    from mfnet_keras.models import PresetError

    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    command = [sys.executable, "-m", "mfnet_keras.export", *argv]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode == 0:
        return json.loads(result.stdout.strip().splitlines()[-1])
    errors = [line[len("error: ") :] for line in result.stderr.splitlines() if line.startswith("error: ")]
    message = errors[-1] if errors else (result.stderr.strip().splitlines() or ["the export process failed"])[-1]
    raise (PresetError if result.returncode == 1 else ExportError)(message)


def export(weights, out, format="tf_saved_model", precision="float32", calibration=None, calibration_clips=64):
    """Exports the classifier at `weights` (a `.keras` file or any preset handle) into the folder `out`.

    `tf_saved_model`: the SavedModel with three signatures, and a copy as `out/model.keras`.
    `litert`, `onnx`, `openvino`: `export_runtime`'s artefact and `classifier.json`.
    `precision="int8"` (LiteRT, OpenVINO) calibrates on `calibration_clips` clips of the TFRecords `calibration`.
    Class names and preprocessing come from the classifier itself. Returns what was written. On the JAX
    or PyTorch backend the export runs in a TensorFlow child process (`export_under_tensorflow`).
    """
    import glob

    from mfnet_keras import models
    from mfnet_keras.files import save_model

    if format not in FORMATS:
        raise ExportError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    if precision not in PRECISIONS:
        raise ExportError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "int8" and format not in INT8_FORMATS:
        raise ExportError(f"--precision int8 is for --format {' or '.join(INT8_FORMATS)}, not {format}")
    if precision == "int8" and not (calibration and glob.glob(calibration)):
        raise ExportError(f"--precision int8 needs --calibration TFRecords; {calibration!r} matches no file")
    if calibration_clips < 1:
        raise ExportError(f"--calibration-clips must be >= 1, got {calibration_clips}")
    _check_tools(format, precision)
    if "://" not in str(weights) and not os.path.exists(weights) and weights not in models.list_presets():
        raise ExportError(f"--weights {weights} does not exist")
    import keras

    if keras.backend.backend() != "tensorflow":  # every format is written from a TensorFlow graph
        argv = ["--weights", str(weights), "--out", str(out), "--format", format, "--precision", precision]
        argv += [
            "--calibration-clips",
            str(calibration_clips),
            *(["--calibration", calibration] if calibration else []),
        ]
        return export_under_tensorflow(argv)
    model = models.load_model(weights)  # a file or preset it refuses is a PresetError line
    if format != "tf_saved_model":
        clips = read_calibration_clips(model, calibration, calibration_clips) if precision == "int8" else None
        path = export_runtime(model, out, format, precision, clips)
        return {"format": format, "precision": precision, "model": path}
    export_saved_model(model, out)
    keras_path = os.path.join(out, "model.keras")
    save_model(model, keras_path)
    return {"saved_model": out, "keras": keras_path, "signatures": ["serving_default", "serve_float", "serve_examples"]}


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="mfnet-export",
        description="Export a trained classifier: a TensorFlow SavedModel with serving signatures (and .keras), "
        "or a LiteRT, ONNX or OpenVINO model.",
    )
    parser.add_argument(
        "--weights", required=True, help="a classifier: .keras (e.g. runs/NAME/model.keras) or a preset folder"
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--format", default="tf_saved_model", choices=FORMATS, help="what to write (default: tf_saved_model)"
    )
    parser.add_argument(
        "--precision",
        default="float32",
        choices=PRECISIONS,
        help="int8: an int8 LiteRT or OpenVINO model, calibrated on --calibration (default: float32)",
    )
    parser.add_argument("--calibration", metavar="GLOB", help="TFRecords whose clips calibrate int8 (quote the glob)")
    parser.add_argument("--calibration-clips", type=int, default=64, help="clips to calibrate on (default: 64)")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    import_tensorflow(args.verbose)
    from mfnet_keras.models import PresetError

    try:
        result = export(args.weights, args.out, args.format, args.precision, args.calibration, args.calibration_clips)
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except PresetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
