"""`mfnet-pack`: `tfrecords_tools.pack.pack_dataset`, a video dataset into sharded TFRecords."""

import argparse
import dataclasses
import os
import sys

from mfnet_cli.quiet import add_verbose_argument, launch
from tfrecords_tools.layouts import LAYOUTS
from tfrecords_tools.pack import PackOptions


def build_parser():
    parser = argparse.ArgumentParser(
        prog="mfnet-pack",
        description="Pack a video dataset into sharded TFRecords of SequenceExamples (Model Garden / DMVR schema).",
    )
    parser.add_argument("source", help="dataset folder (or list file for --layout list)")
    parser.add_argument("output_dir", help="where the shards, labels.txt and manifest.json go")
    parser.add_argument(
        "--layout", choices=LAYOUTS, default="folders", help="how SOURCE is organised (default: folders)"
    )
    parser.add_argument("--split", type=int, default=1, choices=(1, 2, 3), help="UCF-101/HMDB51 split (default: 1)")
    parser.add_argument("--split-name", help="split name for folders (default: train) or a single list file")
    parser.add_argument("--csv", help="Kinetics CSV (default: the only .csv in SOURCE)")
    parser.add_argument(
        "--short-side", type=int, default=256, help="resize so the short side is this (default: 256; 0 keeps)"
    )
    parser.add_argument("--fps", type=float, help="resample to at most this frame rate (default: keep)")
    parser.add_argument("--max-frames", type=int, help="keep at most this many frames per video")
    parser.add_argument("--jpeg-quality", type=int, default=90, help="JPEG quality 1-100 (default: 90)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--shards", type=int, help="shards per split")
    group.add_argument(
        "--shard-size-mb",
        type=float,
        default=200,
        help="target shard size, estimated from source sizes (default: 200)",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="decoding processes (default: all cores)")
    parser.add_argument("--resume", action="store_true", help="finish an interrupted run in OUTPUT_DIR")
    parser.add_argument(
        "--keep-partial",
        action="store_true",
        help="pack truncated or partly corrupt videos with the frames that decode (each named in a warning)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 if any video was skipped")
    add_verbose_argument(parser)
    return parser


def pack_options(args):
    """The `PackOptions` fields of parsed `args`, as keyword arguments.

    Args:
        args: `mfnet-pack`'s parsed arguments.
    """
    return {field.name: getattr(args, field.name) for field in dataclasses.fields(PackOptions)}


def main(argv=None):
    """`mfnet-pack`: parses `argv`, then runs the command; returns the exit code.

    Args:
        argv: the command's arguments (default: `sys.argv[1:]`).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    for option, message in PackOptions(**pack_options(args)).problems():
        parser.error(f"--{option.replace('_', '-')} {message}")
    if args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    return launch(parser, args, "pack")


if __name__ == "__main__":
    sys.exit(main())
