"""LiteRT's full-integer (int8) model, calibrated on clips, with the head kept float."""

import functools
import tempfile
import warnings

import keras


def int8_model(model, spec, path, clips):
    """Full-integer LiteRT model calibrated on `clips`; the global pooling and the classifier stay float.

    Args:
        model: the classifier.
        spec: the input's `tf.TensorSpec`.
        path: the `.tflite` file to write.
        clips: float32 calibration clips.
    """
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
