"""`mfnet-train`: `mfnet_keras.train.train` on a config (a file or a packaged name) with `--set` overrides."""

import argparse
import json
import os
import sys

from mfnet_cli.quiet import add_verbose_argument, fail, import_tensorflow


def main(argv=None):
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
    import_tensorflow(args.verbose)
    from mfnet_keras.config import ConfigError, load_config
    from mfnet_keras.train import train

    name = args.config or "own_videos"
    try:
        overrides = [*args.set, *([f"data.service={args.data_service}"] if args.data_service else [])]
        overrides += [f"data.videos={json.dumps(args.videos)}"] if args.videos else []  # a quoted YAML string
        config = load_config(name, overrides)
        output = args.output or os.path.join("runs", os.path.splitext(os.path.basename(name))[0])
        train(config, output, args.mixed_precision, args.jit_compile)
    except ConfigError as error:
        return fail(error, 2, prefix="")
    except (RuntimeError, OSError) as error:  # NaN loss; a full, read-only or missing output folder
        return fail(error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
