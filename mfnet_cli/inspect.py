"""`mfnet-inspect`: counts, frame statistics, verification and a contact sheet of a packed dataset
(`tfrecords_tools.inspect_records`)."""

import argparse
import sys

from mfnet_cli.quiet import add_verbose_argument, launch


def main(argv=None):
    """`mfnet-inspect`: parses `argv`, then runs the command; returns the exit code.

    Args:
        argv: the command's arguments (default: `sys.argv[1:]`).
    """
    parser = argparse.ArgumentParser(
        prog="mfnet-inspect",
        description="Per-split and per-class counts and frame statistics of a packed dataset.",
    )
    parser.add_argument("output_dir", help="folder written by tfrecords_tools.pack")
    parser.add_argument(
        "--verify", action="store_true", help="decode every JPEG and check counts against manifest.json"
    )
    parser.add_argument("--contact-sheet", metavar="PNG", help="write a grid of frames from a few clips")
    parser.add_argument("--clips", type=int, default=6, help="clips in the contact sheet (default: 6)")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    return launch(parser, args, "inspect")


if __name__ == "__main__":
    sys.exit(main())
