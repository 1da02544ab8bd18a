"""Command lines as a user runs them: instant `--help`, and no TensorFlow log lines unless `--verbose`."""

import subprocess
import sys
import time

import pytest
from commands import LOG_LINE, user_env

COMMANDS = [
    "mfnet_cli.predict",
    "mfnet_cli.train",
    "mfnet_cli.evaluate",
    "mfnet_cli.export",
    "mfnet_cli.convert",
    "mfnet_cli.profile",
    "mfnet_cli.demo",
    "mfnet_cli.doctor",
    "mfnet_cli.data_service worker",  # its options are those of a role
    "mfnet_cli.pack",
    "mfnet_cli.inspect",
    "mfnet_cli.synthetic",
]


@pytest.mark.parametrize("module", COMMANDS)
def test_help_is_instant_and_quiet(module):
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", *module.split(), "--help"], env=user_env(), capture_output=True, text=True, timeout=60
    )
    seconds = time.perf_counter() - started
    assert result.returncode == 0 and result.stdout.startswith("usage: ")
    assert not LOG_LINE.search(result.stdout + result.stderr), result.stderr
    assert seconds < 1, f"{module} --help took {seconds:.1f} s"
    assert ("--verbose" in result.stdout) == (module != "mfnet_cli.synthetic")  # every command loading TF


def test_verbose_brings_the_tensorflow_log_back():
    """(A training run without it prints none: `test_faults` checks its reference run.)"""
    verbose = subprocess.run(
        [sys.executable, "-m", "mfnet_cli.profile", "mfnet3d", "--verbose"],
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert verbose.returncode == 0 and LOG_LINE.search(verbose.stderr)  # --verbose brings them back


def test_the_choices_written_in_the_commands_are_the_librarys():
    """The commands spell out a few choices so that `--help` loads no Keras: they stay the library's."""
    import mfnet_cli.export
    import mfnet_cli.predict
    from mfnet_keras import export, inference

    assert mfnet_cli.export.FORMATS == export.FORMATS and mfnet_cli.export.PRECISIONS == export.PRECISIONS
    assert mfnet_cli.predict.RUNTIME_CHOICES == inference.RUNTIME_CHOICES
