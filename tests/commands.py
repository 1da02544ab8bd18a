"""Running the command lines as a user does, and recognising TensorFlow's log lines in what they print."""

import os
import re

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOG_LINE = re.compile(r"^([IWE]0000 |WARNING: All log messages before absl)", re.M)


def user_env():
    """The environment of a user's shell: no log level preset (the test session sets one)."""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return env
