"""`mfnet-convert`: `mfnet_keras.convert.convert`, a released PyTorch checkpoint to a Keras preset folder."""

import argparse
import sys

from mfnet_cli.quiet import add_verbose_argument, launch


def main(argv=None):
    """`mfnet-convert`: parses `argv`, then runs the command; returns the exit code.

    Args:
        argv: the command's arguments (default: `sys.argv[1:]`).
    """
    parser = argparse.ArgumentParser(
        prog="mfnet-convert",
        description="Convert a PyTorch MF-Net checkpoint (.pth, any PyTorch version) to a Keras preset folder. "
        "PyTorch is not needed; nothing in the file is executed.",
    )
    parser.add_argument("src", help="checkpoint, e.g. MFNet3D_Kinetics-400_72.8.pth")
    parser.add_argument("out", help="output: a preset folder, or NAME.keras, or NAME.weights.h5")
    parser.add_argument(
        "--preset", default=None, help="registered preset it holds (default: from the file name, else mfnet3d)"
    )
    parser.add_argument("--num-classes", type=int, help="classifier size (default: the checkpoint's)")
    parser.add_argument(
        "--skip-classifier", action="store_true", help="leave the classifier random (fine-tuning on other classes)"
    )
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    return launch(parser, args, "convert")


if __name__ == "__main__":
    sys.exit(main())
