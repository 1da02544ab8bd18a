"""Multi-Fiber Networks (Chen et al., ECCV 2018) for video recognition in Keras 3.

`import mfnet_keras` loads Keras and registers this package's Keras classes, so
that `keras.saving.load_model` reads the project's `.keras` files (keras-hub's
convention). `mfnet_keras.models` is imported with it; the other subpackages
load on first use (`mfnet_keras.data` needs TensorFlow). The command lines live
in `mfnet_cli`, which answers `--help` before this package loads.

Examples:
>>> import keras
>>> import mfnet_keras
>>> model = mfnet_keras.models.VideoClassifier.from_preset("mfnet3d", num_classes=5, load_weights=False)
>>> model.num_classes
5
"""

import importlib
import os
import sys

# TensorFlow leaves oneDNN off on AMD CPUs; with per-fiber convolutions it makes
# a training step several times faster there (docs/performance.md). It is read when TensorFlow is first
# imported, so it only takes effect if mfnet_keras is imported first; a value
# the user already set wins.
if "tensorflow" not in sys.modules:
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from mfnet_keras import models  # noqa: E402  (registers the Keras classes; after the TensorFlow option above)
from mfnet_keras.version import __version__  # noqa: E402

_SUBPACKAGES = ("checkpoints", "data", "layers", "profiling")
__all__ = [*_SUBPACKAGES, "models", "__version__"]


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"mfnet_keras.{name}")
    raise AttributeError(f"module 'mfnet_keras' has no attribute {name!r}")
