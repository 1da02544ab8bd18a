"""`mfnet-train` after parsing: the config with its overrides, then `mfnet_keras.train.train`."""

import json
import os

from mfnet_cli.quiet import fail
from mfnet_keras.config import load_config
from mfnet_keras.train import train


def run(parser, args):
    """Trains on `--config` (default `own_videos` with `--videos`) into `--output` (default runs/<config name>).

    Args:
        parser: the command's `ArgumentParser`, for usage errors.
        args: the parsed arguments.
    """
    name = args.config or "own_videos"
    overrides = [*args.set, *([f"data.service={args.data_service}"] if args.data_service else [])]
    overrides += [f"data.videos={json.dumps(args.videos)}"] if args.videos else []  # a quoted YAML string
    config = load_config(name, overrides)
    output = args.output or os.path.join("runs", os.path.splitext(os.path.basename(name))[0])
    try:
        train(config, output, args.mixed_precision, args.jit_compile)
    except (RuntimeError, OSError) as error:  # NaN loss; a full, read-only or missing output folder
        return fail(error)
    return 0
