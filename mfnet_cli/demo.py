"""`mfnet-demo` (`make demo`): `mfnet_keras.demo.run`, the main job end to end on the synthetic dataset."""

import argparse
import sys

from mfnet_cli.quiet import add_verbose_argument, launch


def main(argv=None):
    """`mfnet-demo`: parses `argv`, then runs the command; returns the exit code.

    Args:
        argv: the command's arguments (default: `sys.argv[1:]`).
    """
    parser = argparse.ArgumentParser(
        prog="mfnet-demo",
        description="`make demo`: the project's main job end to end on the embedded synthetic dataset, on CPU.",
    )
    parser.add_argument("--output", default="runs/demo", help="demo folder (default: runs/demo)")
    parser.add_argument(
        "--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE", help="override keys of both configs"
    )
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    return launch(parser, args, "demo")


if __name__ == "__main__":
    sys.exit(main())
