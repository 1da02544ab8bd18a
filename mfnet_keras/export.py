"""Exports a `VideoClassifier` as a TensorFlow SavedModel with serving signatures (and as `.keras`).

    python -m mfnet_keras.export --weights runs/NAME/model.keras --out exported/NAME [--format litert]
    export(weights, out, format)  # the same, from Python; weights: .keras or any preset handle

`--format litert | onnx | openvino` writes `model.tflite`, `model.onnx` or
`model.xml` through Keras's `model.export`, with `classifier.json` (class names,
preprocessing) beside it: see `export_runtime`. The rest of this text is about
the default, `tf_saved_model`.

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
fails naming its index. The class names travel as the asset
`assets/labels.txt`; the preprocessing (mean, std, clip length, crop size,
short side, frame interval) as the `preprocessing` attributes. The export
reloads with TensorFlow alone: `tf.saved_model.load(path)`.
"""

import argparse
import json
import os
import sys
import tempfile

import mfnet_keras  # noqa: F401  (TensorFlow options, before TensorFlow loads)
from tfrecords_tools.quiet import add_verbose_argument, import_tensorflow

TOP_K = 5


def _serving_module(model, labels_path):
    import tensorflow as tf

    from mfnet_keras.data.pipeline import gather_frames, jpegs_look_whole, sample_eval_indices
    from tfrecords_tools import schema

    pre = model.preprocessor
    class_names = list(model.class_names)
    k, classes = min(TOP_K, len(class_names)), len(class_names)

    def checked(clips, dtype):
        """`clips` with its static shape, once its rank, length and channels are checked at run time."""
        message = f"clips must be {dtype} [batch, {pre.clip_length}, height, width, 3]; got shape"
        rank = tf.debugging.Assert(tf.equal(tf.rank(clips), 5), [message, tf.shape(clips)], summarize=8)
        with tf.control_dependencies([rank]):
            shape = tf.concat([tf.shape(clips), tf.zeros([5], tf.int32)], 0)  # indexable at any rank
            dims_ok = (shape[1] == pre.clip_length) & (shape[4] == 3) & (tf.reduce_min(shape[2:4]) > 0)
            dims = tf.debugging.Assert(dims_ok, [message, tf.shape(clips)], summarize=8)
        with tf.control_dependencies([dims]):
            return tf.ensure_shape(clips, [None, pre.clip_length, None, None, 3])

    class Serving(tf.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.labels_file = tf.saved_model.Asset(labels_path)
            # Variables, so that they are saved and readable after `tf.saved_model.load`.
            self.class_names = tf.Variable(class_names, trainable=False, name="class_names")
            self.preprocessing = {
                key: tf.Variable(getattr(pre, key), trainable=False, name=key)
                for key in ("mean", "std", "clip_length", "crop_size", "short_side", "frame_interval")
            }

        def _outputs(self, logits):
            probabilities = tf.nn.softmax(logits)
            indices = tf.math.top_k(probabilities, k).indices
            return {
                "logits": logits,
                "probabilities": probabilities,
                "top_k_indices": indices,
                "top_k_names": tf.gather(self.class_names, indices),
            }

        def _checked_outputs(self, clips):
            """The outputs of a checked batch; an empty batch gives empty outputs without running the model."""
            logits = tf.cond(
                tf.shape(clips)[0] > 0,
                lambda: tf.cast(self.model(clips, training=False), tf.float32),
                lambda: tf.zeros([0, classes]),
            )
            return self._outputs(logits)

        # Any shape is accepted and checked inside: a declared shape would be trusted, not enforced.
        @tf.function(input_signature=[tf.TensorSpec(None, tf.uint8, name="clips")])
        def serve(self, clips):
            return self._checked_outputs(tf.cast(checked(clips, "uint8"), tf.float32))

        @tf.function(input_signature=[tf.TensorSpec(None, tf.float32, name="clips")])
        def serve_float(self, clips):
            return self._checked_outputs(checked(clips, "float32"))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def serve_examples(self, serialized):
            def centre_clip_logits(args):
                record, index = args
                jpegs, _ = schema.parse_sequence_example(record, example_name=tf.strings.as_string(index))
                where = ["serve_examples: example", index]
                has_frames = tf.debugging.Assert(tf.size(jpegs) > 0, [*where, "has no frames"])
                with tf.control_dependencies([has_frames]):
                    num_frames = tf.size(jpegs, out_type=tf.int64)
                indices = sample_eval_indices(num_frames, pre.clip_length, pre.frame_interval, 1)
                picked = gather_frames(jpegs, tf.reshape(indices, [-1]))
                whole = tf.debugging.Assert(jpegs_look_whole(picked), [*where, "has a corrupt JPEG frame"])
                with tf.control_dependencies([whole]):
                    frames = tf.map_fn(
                        lambda j: tf.image.decode_jpeg(j, channels=3), picked, fn_output_signature=tf.uint8
                    )
                return tf.cast(self.model(tf.cast(frames, tf.float32)[None], training=False), tf.float32)[0]

            logits = tf.map_fn(
                centre_clip_logits,
                (serialized, tf.range(tf.size(serialized))),
                fn_output_signature=tf.TensorSpec([classes], tf.float32),
            )
            return self._outputs(logits)

    return Serving()


def export_saved_model(model, out_dir):
    """Writes the SavedModel of a `VideoClassifier` with the three signatures; returns its path."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:  # the asset is copied into the SavedModel when saving
        labels_path = os.path.join(tmp, "labels.txt")
        with open(labels_path, "w") as f:
            f.write("".join(name + "\n" for name in model.class_names))
        module = _serving_module(model, labels_path)
        signatures = {
            "serving_default": module.serve,
            "serve_float": module.serve_float,
            "serve_examples": module.serve_examples,
        }
        tf.saved_model.save(module, out_dir, signatures=signatures)
    return out_dir


class ExportError(Exception):
    """A classifier that cannot be read or a format whose tools are missing: one line, exit code 2."""


FORMATS = ("tf_saved_model", "litert", "onnx", "openvino")
# What each format needs beyond TensorFlow, as (module, pip package); `pip install 'mfnet-keras[export]'` has all.
_NEEDS = {
    "litert": (("ai_edge_litert", "ai-edge-litert"),),
    "onnx": (("tf2onnx", "tf2onnx"), ("onnx", "onnx"), ("onnxruntime", "onnxruntime")),
    "openvino": (("openvino", "openvino"), ("scipy", "scipy")),
}
ARTEFACTS = {"litert": "model.tflite", "onnx": "model.onnx", "openvino": "model.xml"}
SIDECAR = "classifier.json"


def _check_tools(format):
    import importlib

    for module, package in _NEEDS.get(format, ()):
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ExportError(
                f"--format {format} needs {package}: pip install {package} (or 'mfnet-keras[export]')"
            ) from error


def export_runtime(model, out_dir, format):
    """Writes `out_dir/model.{tflite,onnx,xml}` with Keras's `model.export`, and `classifier.json`
    (class names and preprocessing); returns the artefact's path.

    The artefact takes float32 clips `[batch, T, crop, crop, 3]` in [0, 255] (batch 1 for LiteRT):
    the normalisation is inside, the resize and centre crop are the caller's (`predict` does them).
    A fixed frame size keeps the graph to each runtime's built-in ops.
    """
    import tensorflow as tf

    from mfnet_keras.files import remove_empty_partial, write_json

    pre = model.preprocessor
    batch = 1 if format == "litert" else None
    spec = tf.TensorSpec((batch, pre.clip_length, pre.crop_size, pre.crop_size, 3), tf.float32, name="clips")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, ARTEFACTS[format])
    options = {}
    if format == "litert":  # built-in ops only: Keras would otherwise allow Flex ops, which LiteRT cannot run
        options["target_spec"] = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}
    model.export(path, format=format, input_signature=[spec], verbose=False, **options)
    sidecar = {"format": format, "class_names": list(model.class_names), "preprocessor": pre.get_config()}
    write_json(os.path.join(out_dir, SIDECAR), sidecar)
    remove_empty_partial(out_dir)
    return path


def export(weights, out, format="tf_saved_model"):
    """Exports the classifier at `weights` (a `.keras` file or any preset handle) into the folder `out`.

    `tf_saved_model`: the SavedModel with three signatures, and a copy as `out/model.keras`.
    `litert`, `onnx`, `openvino`: `export_runtime`'s artefact and `classifier.json`.
    Class names and preprocessing come from the classifier itself. Returns what was written.
    """
    from mfnet_keras import models
    from mfnet_keras.files import save_model

    if format not in FORMATS:
        raise ExportError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    _check_tools(format)
    if "://" not in str(weights) and not os.path.exists(weights) and weights not in models.list_presets():
        raise ExportError(f"--weights {weights} does not exist")
    try:
        model = models.load_model(weights)
    except ValueError as error:  # PresetError and Keras's "not a model file" errors
        raise ExportError(f"{weights}: {error}") from error
    if format != "tf_saved_model":
        return {"format": format, "model": export_runtime(model, out, format)}
    export_saved_model(model, out)
    keras_path = os.path.join(out, "model.keras")
    save_model(model, keras_path)
    return {"saved_model": out, "keras": keras_path, "signatures": ["serving_default", "serve_float", "serve_examples"]}


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m mfnet_keras.export",
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
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    import_tensorflow(args.verbose)
    try:
        result = export(args.weights, args.out, args.format)
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
