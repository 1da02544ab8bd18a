"""`mfnet-export`: `mfnet_keras.export.export`, a classifier to a SavedModel, LiteRT, ONNX or OpenVINO."""

import argparse
import sys

from mfnet_cli.quiet import add_verbose_argument, launch

# `mfnet_keras.export.FORMATS` and `PRECISIONS`, written here so that `--help` loads no Keras (a test
# checks that they agree).
FORMATS = ("tf_saved_model", "litert", "onnx", "openvino")
PRECISIONS = ("float32", "int8")


def main(argv=None):
    """`mfnet-export`: parses `argv`, then runs the command; returns the exit code.

    Args:
        argv: the command's arguments (default: `sys.argv[1:]`).
    """
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
    return launch(parser, args, "export")


if __name__ == "__main__":
    sys.exit(main())
