"""`mfnet-export` after parsing: `mfnet_keras.export.export`, then its result as one JSON line."""

import json

from mfnet_keras.export import export


def run(parser, args):
    """Exports `--weights` to `--out` in `--format` and `--precision`; prints what was written.

    Args:
        parser: the command's `ArgumentParser`, for usage errors.
        args: the parsed arguments.
    """
    result = export(args.weights, args.out, args.format, args.precision, args.calibration, args.calibration_clips)
    print(json.dumps(result))
    return 0
