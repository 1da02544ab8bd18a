"""Keras layers of multi-fiber networks."""

from mfnet_keras.layers.blocks import BNActConv, MultiFiberUnit, Multiplexer
from mfnet_keras.layers.fiber_conv import FiberConv
from mfnet_keras.layers.normalization import BatchNormalization
from mfnet_keras.layers.pooling import FrameMaxPooling
from mfnet_keras.layers.tree import walk_layers

__all__ = [
    "BatchNormalization",
    "BNActConv",
    "FiberConv",
    "FrameMaxPooling",
    "Multiplexer",
    "MultiFiberUnit",
    "walk_layers",
]
