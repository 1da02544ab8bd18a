"""Running the command lines as a user does, scripts without the project, and recognising TensorFlow's log lines."""

import json
import os
import re
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOG_LINE = re.compile(r"^([IWE]0000 |WARNING: All log messages before absl)", re.M)


def user_env():
    """The environment of a user's shell: no log level preset (the test session sets one)."""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return env


def run_without_project(script, timeout=300):
    """Runs a Python script in a fresh process that cannot import the project (outside the checkout, no
    PYTHONPATH); returns the JSON object it printed last. A failure, or a crash, fails the test."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout, cwd="/"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
