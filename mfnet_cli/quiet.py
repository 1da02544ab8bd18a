"""Shared by the command lines: TensorFlow loaded quietly, `--verbose`, one error line for an exception, and
`launch`, which hands the parsed arguments to the command's `mfnet_cli.run` module.

Commands load the library through `launch`, which keeps TensorFlow's start-up log lines off the terminal.

On import, TensorFlow's C++ runtime writes a block of lines straight to the
process's stderr (oneDNN, CUDA stubs, CPU features; twice, once per native
library) and, on a machine without a GPU, an error line for the failed CUDA
initialisation. They are written before any log level can be set from
Python, so the only way to keep them off a terminal is to hold the stderr file
descriptor while TensorFlow starts. Every other line written meanwhile is
passed on. Libraries never call this: it is for `main()` functions, which own
the process.
"""

import contextlib
import importlib
import os
import re
import sys
import tempfile

# absl's own lines: "I0000 00:00:...", its pre-initialisation notice, and the CPU-feature line's tail.
_START_UP = re.compile(r"^([IWE]\d{4} |WARNING: All log messages before absl::InitializeLog|To enable the following)")


def launch(parser, args, command):
    """Runs `mfnet_cli.run.<command>` on parsed `args`; returns its exit code.

    The one place where the commands load the library, after parsing, so that `--help` and
    usage errors answer before Keras and TensorFlow start. `mfnet_keras` loads before
    TensorFlow, so that its TensorFlow options (oneDNN) take effect.

    Args:
        parser: the command's `ArgumentParser`, for usage errors found once the library is loaded.
        args: the parsed arguments (with `verbose`).
        command: the module's name in `mfnet_cli.run`, e.g. `"train"`.
    """
    return import_quietly("mfnet_cli.run", args.verbose).command(command, parser, args)


def import_quietly(name, verbose=False):
    """Module `name`, imported with TensorFlow started after it; start-up log lines hidden unless `verbose`.

    Also sets `TF_CPP_MIN_LOG_LEVEL=2` (INFO and WARNING lines off; a value already in the
    environment wins) unless `verbose`.

    Args:
        name: the module to import (`mfnet_cli.run`, `tensorflow`, ...).
        verbose: let TensorFlow's start-up and C++ log lines through.
    """
    if verbose or "tensorflow" in sys.modules:
        module = importlib.import_module(name)
        importlib.import_module("tensorflow")
        return module
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _start_up_lines_dropped():
        module = importlib.import_module(name)
        tf = importlib.import_module("tensorflow")
        tf.config.list_physical_devices()  # CUDA initialisation logs here, once
        tf.get_logger().setLevel("ERROR")
    return module


@contextlib.contextmanager
def _start_up_lines_dropped():
    """Holds the process's stderr (file descriptor 2) meanwhile; passes on every line but absl's start-up lines."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode("utf-8", "replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not _START_UP.match(line)))


def add_verbose_argument(parser):
    """The `--verbose` flag of every command line that loads TensorFlow.

    Args:
        parser: the command's `ArgumentParser` (or a sub-command's).
    """
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up and C++ log lines")


def fail(error, code=1, prefix="error: "):
    """Prints the first line of `error` (an exception or a message) on stderr as one line; returns `code`.

    Args:
        error: an exception or a message.
        code: the exit code to return.
        prefix: put before the line (`MFNetError.prefix`).
    """
    lines = str(error).strip().splitlines() or [type(error).__name__]
    print(f"{prefix}{lines[0]}", file=sys.stderr)
    return code
