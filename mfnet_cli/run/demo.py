"""`mfnet-demo` after parsing: `mfnet_keras.demo.run`."""

from mfnet_cli.quiet import fail
from mfnet_keras.demo import run as run_demo
from tfrecords_tools.pack import UsageError


def run(parser, args):
    """The demo into `--output`, with `--set` overrides on both of its configs.

    Args:
        parser: the command's `ArgumentParser`, for usage errors.
        args: the parsed arguments.
    """
    try:
        run_demo(args.output, args.set)
    except UsageError as error:
        return fail(error, 2)
    return 0
