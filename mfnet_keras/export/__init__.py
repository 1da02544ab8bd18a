"""Exports a `VideoClassifier`: a TensorFlow SavedModel with serving signatures (`saved_model`), or a
LiteRT, ONNX or OpenVINO model (`runtime`; int8 through `litert` and `openvino`), each with the class
names and preprocessing beside it. `export` does any of them from a `.keras` file or preset handle
(on JAX and PyTorch in a TensorFlow child process, `child`); `artefacts` names what is written.

    mfnet-export --weights runs/NAME/model.keras --out exported/NAME [--format litert]
    export(weights, out, format, precision, calibration)  # the same, from Python

Examples:
>>> from mfnet_keras.export import FORMATS
>>> FORMATS
('tf_saved_model', 'litert', 'onnx', 'openvino')
"""

from mfnet_keras.export.artefacts import ARTEFACTS, FORMATS, GRAPH_FORMS, PRECISIONS, SIDECAR, ExportError
from mfnet_keras.export.classifier import export
from mfnet_keras.export.runtime import cached_runtime_export, export_runtime, graph_form, read_calibration_clips
from mfnet_keras.export.saved_model import export_saved_model, saved_model_settings

__all__ = [
    "ARTEFACTS",
    "FORMATS",
    "GRAPH_FORMS",
    "PRECISIONS",
    "SIDECAR",
    "ExportError",
    "cached_runtime_export",
    "export",
    "export_runtime",
    "export_saved_model",
    "graph_form",
    "read_calibration_clips",
    "saved_model_settings",
]
