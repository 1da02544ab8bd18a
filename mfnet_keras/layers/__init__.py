"""Keras layers of multi-fiber networks."""

from mfnet_keras.layers.blocks import BNActConv, MultiFiberUnit, Multiplexer
from mfnet_keras.layers.fiber_conv import FiberConv

__all__ = ["BNActConv", "FiberConv", "Multiplexer", "MultiFiberUnit"]
