"""Multi-Fiber Networks (Chen et al., ECCV 2018) for video recognition in Keras 3.

`import mfnet_keras` is light: it imports no Keras, so every command line starts
(and answers `--help`) at once. The subpackages load on first use, e.g.
`mfnet_keras.models` — and importing `mfnet_keras.models` (or anything that
builds or loads a model) registers this package's Keras classes, after which
`keras.saving.load_model` reads its `.keras` files.

Examples:
>>> import mfnet_keras
>>> model = mfnet_keras.models.VideoClassifier.from_preset("mfnet3d", num_classes=5, load_weights=False)
>>> model.num_classes
5
"""

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
_SUBPACKAGES = ("checkpoints", "data", "layers", "models", "profiling")
__all__ = [*_SUBPACKAGES, "__version__"]


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"mfnet_keras.{name}")
    raise AttributeError(f"module 'mfnet_keras' has no attribute {name!r}")
