"""Shared by the command lines: TensorFlow loaded quietly, `--verbose`, and one error line for an exception.

Commands load TensorFlow through `import_tensorflow`, which keeps its start-up log lines off the terminal.

On import, TensorFlow's C++ runtime writes a block of lines straight to the
process's stderr (oneDNN, CUDA stubs, CPU features; twice, once per native
library) and, on a machine without a GPU, an error line for the failed CUDA
initialisation. They are written before any log level can be set from
Python, so the only way to keep them off a terminal is to hold the stderr file
descriptor while TensorFlow starts. Every other line written meanwhile is
passed on. Libraries never call this: it is for `main()` functions, which own
the process.
"""

import os
import re
import sys
import tempfile

# absl's own lines: "I0000 00:00:...", its pre-initialisation notice, and the CPU-feature line's tail.
_START_UP = re.compile(r"^([IWE]\d{4} |WARNING: All log messages before absl::InitializeLog|To enable the following)")


def import_tensorflow(verbose=False):
    """TensorFlow, imported and its devices initialised; start-up log lines hidden unless `verbose`.

    Also sets `TF_CPP_MIN_LOG_LEVEL=2` (INFO and WARNING lines off; a value
    already in the environment wins) unless `verbose`.
    """
    if verbose or "tensorflow" in sys.modules:
        import tensorflow as tf

        return tf
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # CUDA initialisation logs here, once
            tf.get_logger().setLevel("ERROR")
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode("utf-8", "replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not _START_UP.match(line)))
    return tf


def add_verbose_argument(parser):
    """The `--verbose` flag of every command line that loads TensorFlow."""
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up and C++ log lines")


def fail(error, code=1, prefix="error: "):
    """Prints the first line of `error` (an exception or a message) on stderr as one line; returns `code`."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    print(f"{prefix}{lines[0]}", file=sys.stderr)
    return code
