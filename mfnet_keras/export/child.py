"""A model trained on JAX or PyTorch is exported by a TensorFlow child process (a `.keras` file loads on any
backend; every format is written from a TensorFlow graph)."""

import json
import os
import subprocess
import sys

from mfnet_keras.export.artefacts import ExportError
from mfnet_keras.models import PresetError

# The child's result, or its ExportError / PresetError, as one JSON line on stdout.
_CHILD = """import json, sys
from mfnet_keras import export
from mfnet_keras.models import PresetError
try:
    result = export.export(**json.loads(sys.argv[1]))
except (export.ExportError, PresetError) as error:
    result = {"error": type(error).__name__, "message": str(error).strip().splitlines()[0]}
print(json.dumps(result))
"""


def export_under_tensorflow(**arguments):
    """Runs `export(**arguments)` with `KERAS_BACKEND=tensorflow` in a child process and returns its result:
    how a model trained on JAX or PyTorch is exported (a `.keras` file loads on any backend). The child's
    error is raised here again as a `PresetError` (a refused model) or an `ExportError`."""
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-c", _CHILD, json.dumps(arguments)]
    ran = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = ran.stdout.strip().splitlines()
    if ran.returncode != 0 or not lines:
        tail = ran.stderr.strip().splitlines() or ["the export process failed"]
        raise ExportError(f"the TensorFlow export process failed: {tail[-1]}")
    result = json.loads(lines[-1])
    if "error" in result:
        raise (PresetError if result["error"] == "PresetError" else ExportError)(result["message"])
    return result
