"""Command lines as a user runs them: instant `--help`, and no TensorFlow log lines unless `--verbose`."""

import subprocess
import sys
import time

import pytest
from commands import LOG_LINE, user_env

COMMANDS = [
    "mfnet_keras.predict",
    "mfnet_keras.train",
    "mfnet_keras.evaluate",
    "mfnet_keras.export",
    "mfnet_keras.convert",
    "mfnet_keras.profiling",
    "mfnet_keras.demo",
    "tfrecords_tools.pack",
    "tfrecords_tools.inspect_records",
    "tfrecords_tools.synthetic",
]


@pytest.mark.parametrize("module", COMMANDS)
def test_help_is_instant_and_quiet(module):
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"], env=user_env(), capture_output=True, text=True, timeout=60
    )
    seconds = time.perf_counter() - started
    assert result.returncode == 0 and result.stdout.startswith("usage: ")
    assert not LOG_LINE.search(result.stdout + result.stderr), result.stderr
    assert seconds < 2, f"{module} --help took {seconds:.1f} s"
    assert ("--verbose" in result.stdout) == (module != "tfrecords_tools.synthetic")  # every command loading TF


def test_verbose_brings_the_tensorflow_log_back():
    """(A training run without it prints none: `test_faults` checks its reference run.)"""
    verbose = subprocess.run(
        [sys.executable, "-m", "mfnet_keras.profiling", "mfnet3d", "--verbose"],
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert verbose.returncode == 0 and LOG_LINE.search(verbose.stderr)  # --verbose brings them back
