"""Multi-Fiber Networks (Chen et al., ECCV 2018) for video recognition in Keras 3."""

import importlib
import os
import sys

# TensorFlow leaves oneDNN off on AMD CPUs; with per-fiber convolutions it makes
# a training step about 4x faster there. It is read when TensorFlow is first
# imported, so it only takes effect if mfnet_keras is imported first; a value
# the user already set wins.
if "tensorflow" not in sys.modules:
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
__all__ = ["layers", "models", "profiling", "__version__"]

# `import mfnet_keras` registers the project's Keras classes, so `.keras` files load after it. The one
# exception is `python -m mfnet_keras.<command>`, recognised by argv[0] being "-m" while Python imports
# this package: each command imports what it needs after parsing its arguments, so `--help` is instant.
if sys.argv[:1] != ["-m"]:
    from mfnet_keras import layers, models, profiling  # noqa: E402,F401


def __getattr__(name):
    # Submodules load on first use, so that `import mfnet_keras` (and a command line's --help) stays instant.
    if name in ("layers", "models", "profiling"):
        return importlib.import_module(f"mfnet_keras.{name}")
    raise AttributeError(f"module 'mfnet_keras' has no attribute {name!r}")
