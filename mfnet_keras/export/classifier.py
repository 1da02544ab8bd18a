"""`export`: a classifier file or preset into any format, in a TensorFlow child process on JAX and PyTorch."""

import glob
import os

import keras

from mfnet_keras import models
from mfnet_keras.export.artefacts import FORMATS, INT8_FORMATS, PRECISIONS, ExportError, check_tools
from mfnet_keras.export.child import export_under_tensorflow
from mfnet_keras.export.runtime import export_runtime, read_calibration_clips
from mfnet_keras.export.saved_model import export_saved_model
from mfnet_keras.files import save_model


def export(weights, out, format="tf_saved_model", precision="float32", calibration=None, calibration_clips=64):
    """Exports the classifier at `weights` (a `.keras` file or any preset handle) into the folder `out`.

    Args:
        weights: a `.keras` file or a preset handle.
        out: the export folder.
        format: one of `FORMATS`.
        precision: one of `PRECISIONS` (`"int8"`: LiteRT and OpenVINO).
        calibration: a glob of TFRecords whose clips int8 calibrates on.
        calibration_clips: how many of them.

    `tf_saved_model`: the SavedModel with three signatures, and a copy as `out/model.keras`.
    `litert`, `onnx`, `openvino`: `export_runtime`'s artefact and `classifier.json`.
    `precision="int8"` (LiteRT, OpenVINO) calibrates on `calibration_clips` clips of the TFRecords `calibration`.
    Class names and preprocessing come from the classifier itself. Returns what was written. On the JAX
    or PyTorch backend the export runs in a TensorFlow child process (`export_under_tensorflow`).
    """
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
    check_tools(format, precision)
    if "://" not in str(weights) and not os.path.exists(weights) and weights not in models.list_presets():
        raise ExportError(f"--weights {weights} does not exist")
    if keras.backend.backend() != "tensorflow":  # every format is written from a TensorFlow graph
        arguments = {"weights": str(weights), "out": str(out), "format": format, "precision": precision}
        return export_under_tensorflow(**arguments, calibration=calibration, calibration_clips=calibration_clips)
    model = models.load_model(weights)  # a file or preset it refuses is a PresetError line
    if format != "tf_saved_model":
        clips = read_calibration_clips(model, calibration, calibration_clips) if precision == "int8" else None
        path = export_runtime(model, out, format, precision, clips)
        return {"format": format, "precision": precision, "model": path}
    export_saved_model(model, out)
    keras_path = os.path.join(out, "model.keras")
    save_model(model, keras_path)
    return {"saved_model": out, "keras": keras_path, "signatures": ["serving_default", "serve_float", "serve_examples"]}
