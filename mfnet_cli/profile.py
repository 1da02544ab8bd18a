"""`mfnet-profile`: parameters and multiply-adds of the registered architectures (`mfnet_keras.profiling`)
beside the paper's."""

import argparse
import sys

from mfnet_cli.quiet import add_verbose_argument, launch


def main(argv=None):
    """`mfnet-profile`: parses `argv`, then runs the command; returns the exit code.

    Args:
        argv: the command's arguments (default: `sys.argv[1:]`).
    """
    parser = argparse.ArgumentParser(
        prog="mfnet-profile",
        description="Parameters and multiply-adds (the paper's FLOPs) of the registered architectures, beside the paper's.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="models to profile (default: every registered model)")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    return launch(parser, args, "profile")


if __name__ == "__main__":
    sys.exit(main())
