"""Command lines as a user runs them: instant `--help`, and no TensorFlow log lines unless `--verbose`."""

import os
import re
import subprocess
import sys
import time

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = [
    "mfnet_keras.predict",
    "mfnet_keras.train",
    "mfnet_keras.evaluate",
    "mfnet_keras.export",
    "mfnet_keras.convert",
    "mfnet_keras.profile",
    "mfnet_keras.demo",
    "tfrecords_tools.pack",
    "tfrecords_tools.inspect",
    "tfrecords_tools.synthetic",
]
LOG_LINE = re.compile(r"^([IWE]0000 |WARNING: All log messages before absl)", re.M)


def user_env():
    """The environment of a user's shell: no log level preset (the test session sets one)."""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return env


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


def test_a_training_run_prints_no_tensorflow_log_line(tmp_path, demo_records):
    config = os.path.join(REPO_ROOT, "configs", "synthetic_demo.yaml")
    overrides = [
        f"data.train={demo_records}/train-*.tfrecord",
        f"data.eval={demo_records}/test-*.tfrecord",
        "train.epochs=1",
        "model.crop_size=32",
        "model.clip_length=4",
        "eval.num_clips=1",
    ]
    command = [sys.executable, "-m", "mfnet_keras.train", "--config", config, "--output", str(tmp_path / "run")]
    result = subprocess.run(
        [*command, "--set", *overrides], env=user_env(), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert not LOG_LINE.search(result.stdout + result.stderr), result.stdout + result.stderr
    assert "remapper failed" not in result.stderr
    verbose = subprocess.run(
        [sys.executable, "-m", "mfnet_keras.profile", "mfnet3d", "--verbose"],
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert verbose.returncode == 0 and LOG_LINE.search(verbose.stderr)  # --verbose brings them back
