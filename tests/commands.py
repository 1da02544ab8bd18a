"""Running the command lines as a user does, scripts without the project, and recognising TensorFlow's log lines."""

import functools
import http.server
import json
import os
import re
import subprocess
import sys
import threading

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


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that stopped reading (a refused download)
            super().handle_error(request, client_address)


BACKENDS = ("tensorflow", "jax", "torch")
# Hides TensorFlow from every import finder, as on a machine without it: `import tensorflow` fails and
# `importlib.util.find_spec("tensorflow")` is None (the JAX and PyTorch children of the backend tests).
_NO_TENSORFLOW = """
import sys

class _WithoutTensorFlow:
    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            return None
        return self.finder.find_spec(name, path, target) if hasattr(self.finder, "find_spec") else None

    def __getattr__(self, name):
        return getattr(self.finder, name)

sys.meta_path[:] = [_WithoutTensorFlow(finder) for finder in sys.meta_path]
"""


def run_on_backend(backend, script, timeout=600, env=None, tensorflow=False):
    """Runs a Python script under `KERAS_BACKEND=backend` in a fresh process (on JAX and PyTorch with
    `import tensorflow` failing, unless `tensorflow`: training reads TFRecords through tf.data); returns
    the JSON object it printed last. A failure fails the test."""
    path = os.pathsep.join(p for p in (REPO_ROOT, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    prelude = "" if backend == "tensorflow" or tensorflow else _NO_TENSORFLOW
    result = subprocess.run(
        [sys.executable, "-c", prelude + script], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{backend}: {result.stderr[-3000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def cached_files():
    """What the preset cache (`$KERAS_HOME/mfnet_keras`) holds, sorted."""
    from mfnet_keras.models import preset_handles

    return sorted(os.listdir(preset_handles.cache_dir())) if os.path.isdir(preset_handles.cache_dir()) else []


class HttpServer:
    """A real HTTP server on 127.0.0.1 serving a folder, counting the GET requests per path.

    With `content_length=False` a file is sent without a `Content-Length` header
    (the body ends when the connection closes), as some servers stream."""

    def __init__(self, folder, content_length=True):
        self.requests = []
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                path = self.translate_path(self.path)
                if content_length or not os.path.isfile(path):
                    return super().do_GET()
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                with open(path, "rb") as f:
                    while block := f.read(1 << 16):
                        self.wfile.write(block)
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = _Server(("127.0.0.1", 0), functools.partial(Handler, directory=folder))
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
