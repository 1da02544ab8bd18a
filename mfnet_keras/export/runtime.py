"""LiteRT, ONNX and OpenVINO artefacts through Keras's `model.export`, in each runtime's best graph form,
and a cache of them for the classifiers that `mfnet-predict` runs on OpenVINO."""

import contextlib
import os

import keras

from mfnet_keras import models
from mfnet_keras.export import litert, openvino
from mfnet_keras.export.artefacts import ARTEFACTS, GRAPH_FORMS, SIDECAR
from mfnet_keras.export.child import export_under_tensorflow
from mfnet_keras.files import remove_empty_partial, replacing, sha256_of, write_json
from mfnet_keras.layers import FiberConv, walk_layers
from mfnet_keras.models.preset_handles import cache_dir
from mfnet_keras.version import __version__  # keys the runtime cache


@contextlib.contextmanager
def graph_form(model, implementation):
    """Within the block, every `FiberConv` of `model` runs as `implementation` (the same numbers in
    another graph); each gets its own back afterwards.

    Args:
        model: the classifier.
        implementation: the `FiberConv` implementation of the graph (e.g. `"grouped"`).
    """
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
    cut as the model sees them (short side at the model's, a crop of the crop size), for int8 calibration.

    Args:
        model: the classifier (its preprocessor's clip size).
        pattern: a glob of TFRecords.
        count: the most clips to read.
    """
    from mfnet_keras.data import calibration_dataset

    return [clips.numpy() for clips, _ in calibration_dataset(pattern, model.preprocessor).take(count)]


def export_runtime(model, out_dir, format, precision="float32", calibration=None):
    """Writes `out_dir/model.{tflite,onnx,xml}` and `classifier.json` (class names, preprocessing,
    precision); returns the artefact's path.

    The artefact takes float32 clips `[batch, T, crop, crop, 3]` in [0, 255] (batch 1 for LiteRT):
    the normalisation is inside, the resize and centre crop are the caller's (`predict` does them).
    A fixed frame size keeps the graph to each runtime's built-in ops. The model's convolutions are
    written in the runtime's `GRAPH_FORMS`. `precision="int8"` (LiteRT, OpenVINO) quantises weights and
    activations to int8, calibrated on `calibration`, a list of clips shaped as the input; the
    classifier head stays float.

    Args:
        model: the classifier.
        out_dir: the folder to write.
        format: `"litert"`, `"onnx"` or `"openvino"`.
        precision: `"float32"` or `"int8"`.
        calibration: int8's calibration clips.
    """
    import tensorflow as tf

    pre = model.preprocessor
    batch = 1 if format == "litert" else None
    spec = tf.TensorSpec((batch, pre.clip_length, pre.crop_size, pre.crop_size, 3), tf.float32, name="clips")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, ARTEFACTS[format])
    with graph_form(model, GRAPH_FORMS[format]):
        if precision == "int8" and format == "litert":
            litert.int8_model(model, spec, path, calibration)
        else:
            options = {}
            if format == "litert":  # built-in ops only: Keras would otherwise allow Flex ops, which LiteRT cannot run
                options["target_spec"] = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}
            model.export(path, format=format, input_signature=[spec], verbose=False, **options)
    if precision == "int8" and format == "openvino":
        openvino.quantize_int8(path, calibration)
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
    (the Keras model is only loaded to export it).

    Args:
        source: a `.keras` file or preset folder.
        format: `"litert"`, `"onnx"` or `"openvino"`.
    """
    key = f"{sha256_of(source)[:16]}-{__version__}-{format}"
    folder = os.path.join(cache_dir(), "runtimes", key)
    if not os.path.exists(os.path.join(folder, SIDECAR)):
        os.makedirs(os.path.dirname(folder), exist_ok=True)
        with replacing(folder) as partial:
            if keras.backend.backend() == "tensorflow":
                export_runtime(models.load_model(source), partial, format)
            else:
                export_under_tensorflow(weights=source, out=partial, format=format)
        remove_empty_partial(os.path.dirname(folder))
    return os.path.join(folder, ARTEFACTS[format])
