"""`MFNetError`: the base of the errors this package raises for a user's input, each one line saying what is
wrong (a bad config, preset, checkpoint, download, runtime, stream or export), so that callers can catch
them together; each also keeps the built-in type it refines (e.g. `ValueError`).

Examples:
>>> from mfnet_keras.config import ConfigError
>>> issubclass(ConfigError, MFNetError) and issubclass(ConfigError, ValueError)
True
"""


class MFNetError(Exception):
    """A user's input this package cannot use: the message is one line saying what and where.

    The command lines print it as `prefix` + the message's first line and exit with `exit_code`:
    2, as argparse does, when the input must change before a rerun can succeed.
    """

    exit_code = 2
    prefix = "error: "
