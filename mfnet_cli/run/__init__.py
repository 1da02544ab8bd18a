"""What each command does once its arguments are parsed: `run(parser, args)` in `mfnet_cli.run.<command>`.

These modules import the library at the top; `mfnet_cli.quiet.launch` loads one
of them after parsing. The project's own errors (`MFNetError`) end as one line
on stderr and their exit code here, for every command.
"""

import importlib

from mfnet_cli.quiet import fail
from mfnet_keras.errors import MFNetError


def command(name, parser, args):
    """`mfnet_cli.run.<name>.run(parser, args)`'s exit code; an `MFNetError` prints one line.

    Args:
        name: the command's module in this package, e.g. `"train"`.
        parser: the command's `ArgumentParser`, for usage errors.
        args: the parsed arguments.
    """
    module = importlib.import_module(f"mfnet_cli.run.{name}")
    try:
        return module.run(parser, args)
    except MFNetError as error:
        return fail(error, error.exit_code, error.prefix)
