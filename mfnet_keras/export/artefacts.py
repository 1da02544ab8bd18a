"""What the exporters write and need, without loading them: formats, artefact names, the error type.

`mfnet_keras.inference` reads exported folders with these names alone.
"""

import importlib

from mfnet_keras.errors import MFNetError


class ExportError(MFNetError):
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


# The `FiberConv` implementation each runtime runs best (benchmarks/deploy.py): LiteRT's 3D convolution
# has neither groups nor int8 kernels, so every convolution becomes a (grouped) 2D one over the frames;
# OpenVINO reads TensorFlow's grouped 3D convolutions as grouped `Convolution` nodes; tf2onnx writes a
# grouped 3D convolution with the wrong group count, so ONNX keeps one node per fiber.
GRAPH_FORMS = {"litert": "taps", "onnx": "split", "openvino": "graph"}


PRECISIONS = ("float32", "int8")


def check_tools(format, precision):
    """Raises an `ExportError` naming the pip package when a tool that `format` at `precision` needs is missing.

    Args:
        format: one of `FORMATS`.
        precision: one of `PRECISIONS`.
    """
    for need in (format, f"{format} {precision}"):
        for module, package in _NEEDS.get(need, ()):
            try:
                importlib.import_module(module)
            except ImportError as error:
                what = f"--format {format}" + (f" --precision {precision}" if need != format else "")
                raise ExportError(
                    f"{what} needs {package}: pip install {package} (or 'mfnet-keras[export]')"
                ) from error
