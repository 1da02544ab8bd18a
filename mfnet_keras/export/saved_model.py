"""The TensorFlow SavedModel of a `VideoClassifier`, with serving signatures (`mfnet-export`'s default).

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

import os

import keras

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

    Args:
        model: the `VideoClassifier`.
        out_dir: the folder to write.
    """
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
    """`(class names, preprocessing dict)` of a SavedModel from `export_saved_model`, reloaded.

    Args:
        loaded: the result of `tf.saved_model.load`.
    """
    names = [name.decode() for name in loaded.class_names[0].numpy()]
    return names, {v.name.split(":")[0]: v.numpy() for v in loaded.preprocessing}
