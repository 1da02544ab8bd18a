"""`mfnet-train`: `mfnet_keras.train.train` on a config (a file or a packaged name) with `--set` overrides."""

import argparse
import sys

from mfnet_cli.quiet import add_verbose_argument, launch


def main(argv=None):
    """`mfnet-train`: parses `argv`, then runs the command; returns the exit code.

    Args:
        argv: the command's arguments (default: `sys.argv[1:]`).
    """
    parser = argparse.ArgumentParser(
        prog="mfnet-train",
        description="Train an MF-Net (or another registered model) on packed TFRecords. "
        "Re-running the same command resumes an interrupted run.",
    )
    parser.add_argument(
        "--config",
        help="a YAML config file, or the name of a packaged one (e.g. ucf101, synthetic_demo; "
        "default with --videos: own_videos)",
    )
    parser.add_argument(
        "--videos",
        metavar="DIR",
        help="train on a folder of <class>/<video> files, decoded as training runs (no packing); sets data.videos",
    )
    parser.add_argument(
        "--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE", help="override config keys (repeatable)"
    )
    parser.add_argument("--output", help="run folder (default: runs/<config name>)")
    parser.add_argument(
        "--mixed-precision",
        action="store_true",
        help="mixed_float16 on GPUs, mixed_bfloat16 on TPUs and on CPUs that have bfloat16 instructions",
    )
    parser.add_argument(
        "--jit-compile", action="store_true", help="compile the train step with XLA on TensorFlow (JAX always does)"
    )
    parser.add_argument(
        "--data-service",
        metavar="grpc://HOST:PORT",
        help="decode training clips on tf.data service workers (mfnet-data-service); sets data.service",
    )
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    if not (args.config or args.videos):
        parser.error("give --config (records or videos in it) or --videos DIR")
    return launch(parser, args, "train")


if __name__ == "__main__":
    sys.exit(main())
