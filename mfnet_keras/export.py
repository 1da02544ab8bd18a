"""Exports a trained model as a TensorFlow SavedModel with serving signatures (and as `.keras`).

    python -m mfnet_keras.export --weights runs/NAME/model.keras --out exported/NAME [--model mfnet3d]
    export(weights, out, model_name=None, labels=None)  # the same, from Python

Signatures (all return `logits`, `probabilities`, `top_k_indices`, `top_k_names`):
- `serving_default`: uint8 clips `[batch, T, H, W, 3]`; normalisation happens inside.
- `serve_float`: clips already normalised (float32).
- `serve_examples`: serialized `tf.train.SequenceExample`s in the project's schema;
  decoded, centre-clipped, resized and normalised inside the graph.
Clips of any other rank or size are an `InvalidArgumentError` naming the shape
wanted (checked in the graph: a declared input shape is trusted, not enforced);
an empty batch gives empty outputs; a bad example fails naming its index.
The class names travel as the asset `assets/labels.txt`; the preprocessing
(mean, std, clip length, crop size) as the `preprocessing` attributes. The
export reloads with TensorFlow alone: `tf.saved_model.load(path)`.
"""

import argparse
import json
import os
import sys
import tempfile

import mfnet_keras  # noqa: F401  (TensorFlow options, before TensorFlow loads)
from tfrecords_tools.quiet import add_verbose_argument, import_tensorflow

TOP_K = 5


def _serving_module(model, class_names, mean, std, frame_interval, labels_path):
    import tensorflow as tf

    from mfnet_keras.data.pipeline import (
        eval_clips,
        gather_frames,
        jpegs_look_whole,
        normalization,
        sample_eval_indices,
    )
    from tfrecords_tools import schema

    shape = tuple(model.input_shape[1:])
    two_d = len(shape) == 3
    clip_length = 1 if two_d else shape[0]
    crop_size = shape[-2]
    scale, offset = normalization(mean, std)
    k, classes = min(TOP_K, len(class_names)), len(class_names)
    wanted = [clip_length, crop_size, crop_size, 3]

    def checked(clips, dtype):
        """`clips` with its static shape, once its rank and dimensions are checked at run time."""
        message = f"clips must be {dtype} [batch, {', '.join(map(str, wanted))}]; got shape"
        rank = tf.debugging.Assert(tf.equal(tf.rank(clips), 5), [message, tf.shape(clips)], summarize=8)
        with tf.control_dependencies([rank]):
            dims_ok = tf.reduce_all(tf.shape(clips)[1:] == wanted)
            dims = tf.debugging.Assert(dims_ok, [message, tf.shape(clips)], summarize=8)
        with tf.control_dependencies([dims]):
            return tf.ensure_shape(clips, [None, *wanted])

    class Serving(tf.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.labels_file = tf.saved_model.Asset(labels_path)
            # Variables, so that they are saved and readable after `tf.saved_model.load`.
            self.class_names = tf.Variable(class_names, trainable=False, name="class_names")
            self.preprocessing = {
                "mean": tf.Variable(mean, dtype=tf.float32, trainable=False, name="mean"),
                "std": tf.Variable(std, dtype=tf.float32, trainable=False, name="std"),
                "clip_length": tf.Variable(clip_length, trainable=False, name="clip_length"),
                "crop_size": tf.Variable(crop_size, trainable=False, name="crop_size"),
                "frame_interval": tf.Variable(frame_interval, trainable=False, name="frame_interval"),
            }

        def _outputs(self, clips):
            """The outputs of a checked batch; an empty batch gives empty outputs without running the model."""

            def run():
                logits = tf.cast(self.model(clips[:, 0] if two_d else clips, training=False), tf.float32)
                probabilities = tf.nn.softmax(logits)
                top = tf.math.top_k(probabilities, k)
                return logits, probabilities, top.indices

            def empty():
                return tf.zeros([0, classes]), tf.zeros([0, classes]), tf.zeros([0, k], tf.int32)

            logits, probabilities, indices = tf.cond(tf.shape(clips)[0] > 0, run, empty)
            return {
                "logits": logits,
                "probabilities": probabilities,
                "top_k_indices": indices,
                "top_k_names": tf.gather(self.class_names, indices),
            }

        # Any shape is accepted and checked inside: a declared shape would be trusted, not enforced.
        @tf.function(input_signature=[tf.TensorSpec(None, tf.uint8, name="clips")])
        def serve(self, clips):
            return self._outputs(tf.cast(checked(clips, "uint8"), tf.float32) * scale + offset)

        @tf.function(input_signature=[tf.TensorSpec(None, tf.float32, name="clips")])
        def serve_float(self, clips):
            return self._outputs(checked(clips, "float32"))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def serve_examples(self, serialized):
            def centre_clip(args):
                record, index = args
                jpegs, _ = schema.parse_sequence_example(record, example_name=tf.strings.as_string(index))
                where = ["serve_examples: example", index]
                has_frames = tf.debugging.Assert(tf.size(jpegs) > 0, [*where, "has no frames"])
                with tf.control_dependencies([has_frames]):
                    num_frames = tf.size(jpegs, out_type=tf.int64)
                indices = sample_eval_indices(num_frames, clip_length, frame_interval, 1)
                picked = gather_frames(jpegs, tf.reshape(indices, [-1]))
                whole = tf.debugging.Assert(jpegs_look_whole(picked), [*where, "has a corrupt JPEG frame"])
                with tf.control_dependencies([whole]):
                    picked = tf.identity(picked)
                short_side = round(crop_size * 256 / 224)
                return eval_clips(picked, 1, 1, clip_length, crop_size, short_side)[0]

            clips = tf.map_fn(
                centre_clip,
                (serialized, tf.range(tf.size(serialized))),
                fn_output_signature=tf.TensorSpec([clip_length, crop_size, crop_size, 3], tf.float32),
            )
            return self._outputs(clips * scale + offset)

    return Serving()


def export_saved_model(model, out_dir, class_names=None, mean=None, std=None, frame_interval=2):
    """Writes the SavedModel with the three signatures; returns its path."""
    import tensorflow as tf

    from mfnet_keras.data.pipeline import VIDEO_MEAN, VIDEO_STD

    classes = model.output_shape[-1]
    class_names = list(class_names) if class_names else [str(i) for i in range(classes)]
    if len(class_names) != classes:
        raise ValueError(f"The model has {classes} classes but {len(class_names)} class names were given.")
    with tempfile.TemporaryDirectory() as tmp:  # the asset is copied into the SavedModel when saving
        labels_path = os.path.join(tmp, "labels.txt")
        with open(labels_path, "w") as f:
            f.write("".join(name + "\n" for name in class_names))
        module = _serving_module(model, class_names, mean or VIDEO_MEAN, std or VIDEO_STD, frame_interval, labels_path)
        signatures = {
            "serving_default": module.serve,
            "serve_float": module.serve_float,
            "serve_examples": module.serve_examples,
        }
        tf.saved_model.save(module, out_dir, signatures=signatures)
    return out_dir


def run_settings(weights):
    """Class names and preprocessing from the training run folder beside the weights, when there."""
    import yaml

    folder = os.path.dirname(os.path.abspath(weights))
    for candidate in (folder, os.path.dirname(folder)):
        config_path = os.path.join(candidate, "config.yaml")
        labels_path = os.path.join(candidate, "labels.txt")
        if os.path.exists(config_path):
            config = yaml.safe_load(open(config_path))
            names = (
                [line.strip() for line in open(labels_path) if line.strip()] if os.path.exists(labels_path) else None
            )
            data = config.get("data", {})
            return names, data.get("mean"), data.get("std"), (data.get("frame_intervals") or [2])[0]
    return None, None, None, 2


class ExportError(Exception):
    """Weights that are missing or hold another model: one line, exit code 2."""


def export(weights, out, model_name=None, labels=None):
    """Exports the `.keras` model at `weights` to the SavedModel folder `out` (with a copy as
    `out/model.keras`); returns `{"saved_model", "keras", "signatures"}`.

    Class names come from `labels` (a file, one per line), else from the
    training run beside the weights; `model_name` checks which model they hold.
    """
    from mfnet_keras import models
    from mfnet_keras.files import save_model

    if not os.path.exists(weights):
        raise ExportError(f"--weights {weights} does not exist")
    model = models.load_model(weights)
    if model_name and not model.name.startswith(model_name):
        raise ExportError(f"{weights} holds {model.name!r}, not {model_name!r}")
    names, mean, std, interval = run_settings(weights)
    if labels:
        names = [line.strip() for line in open(labels) if line.strip()]
    export_saved_model(model, out, names, mean, std, interval)
    keras_path = os.path.join(out, "model.keras")
    save_model(model, keras_path)
    return {"saved_model": out, "keras": keras_path, "signatures": ["serving_default", "serve_float", "serve_examples"]}


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m mfnet_keras.export",
        description="Export a trained model as a TensorFlow SavedModel with serving signatures, and as .keras.",
    )
    parser.add_argument("--weights", required=True, help="trained model (.keras), e.g. runs/NAME/model.keras")
    parser.add_argument("--model", help="registered model name to check the weights against (optional)")
    parser.add_argument("--out", required=True, help="output folder of the SavedModel")
    parser.add_argument("--labels", help="class names, one per line (default: labels.txt of the run)")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    import_tensorflow(args.verbose)
    try:
        result = export(args.weights, args.out, args.model, args.labels)
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
