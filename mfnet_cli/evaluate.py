"""`mfnet-evaluate`: `mfnet_keras.evaluate.evaluate`, multi-view, on the records of a config."""

import argparse
import sys

from mfnet_cli.quiet import add_verbose_argument, launch


def main(argv=None):
    """`mfnet-evaluate`: parses `argv`, then runs the command; returns the exit code.

    Args:
        argv: the command's arguments (default: `sys.argv[1:]`).
    """
    parser = argparse.ArgumentParser(
        prog="mfnet-evaluate",
        description="Multi-view evaluation: video/clip accuracy, per-class accuracy plot, confusion matrix.",
    )
    parser.add_argument(
        "--config",
        required=True,
        help="the training config (data, clip size, eval views): a file or a packaged config's name",
    )
    parser.add_argument(
        "--weights", required=True, help="a .keras classifier (e.g. runs/NAME/model.keras) or a preset folder"
    )
    parser.add_argument(
        "--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE", help="override config keys (repeatable)"
    )
    parser.add_argument("--output", help="report folder (default: <weights folder>/eval)")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    return launch(parser, args, "evaluate")


if __name__ == "__main__":
    sys.exit(main())
