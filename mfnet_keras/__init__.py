"""Multi-Fiber Networks (Chen et al., ECCV 2018) for video recognition in Keras 3."""

import os
import sys

# TensorFlow leaves oneDNN off on AMD CPUs; with per-fiber convolutions it makes
# a training step about 4x faster there. It is read when TensorFlow is first
# imported, so it only takes effect if mfnet_keras is imported first; a value
# the user already set wins.
if "tensorflow" not in sys.modules:
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from mfnet_keras import layers, models, profiling  # noqa: E402

__version__ = "0.1.0"
__all__ = ["layers", "models", "profiling", "__version__"]
