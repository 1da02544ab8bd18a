"""`mfnet-pack` after parsing: `tfrecords_tools.pack.pack_dataset`; 130 on Ctrl-C, finished shards kept."""

import sys

from mfnet_cli.pack import pack_options
from mfnet_cli.quiet import fail
from tfrecords_tools.pack import UsageError, pack_dataset


def run(parser, args):
    """Packs `args.source` into `args.output_dir`; with `--strict`, 1 if any video was skipped.

    Args:
        parser: the command's `ArgumentParser`, for usage errors.
        args: the parsed arguments.
    """
    try:
        manifest = pack_dataset(
            args.source, args.output_dir, csv=args.csv, workers=args.workers, resume=args.resume, **pack_options(args)
        )
    except UsageError as error:
        return fail(error, 2)
    except KeyboardInterrupt:
        print("interrupted: finished shards are kept; re-run with --resume to finish", file=sys.stderr)
        return 130
    skipped = sum(len(split["skipped"]) for split in manifest["splits"].values())
    if args.strict and skipped:
        print(
            f"error: --strict: {skipped} video(s) were skipped (listed above), so the exit code is 1", file=sys.stderr
        )
        return 1
    return 0
