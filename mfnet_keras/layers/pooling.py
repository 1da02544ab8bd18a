"""Pooling over every frame of a clip with a 2D pool."""

import keras

from mfnet_keras.layers import backend_ops


@keras.saving.register_keras_serializable(package="mfnet_keras")
class FrameMaxPooling(keras.layers.Layer):
    """A `1 × k × k` max-pool of clips `[batch, T, H, W, C]`, computed as a 2D pool of every frame.

    The same values as `MaxPooling3D((1, k, k))`, but as a 2D pool it is a built-in
    op of every runtime: LiteRT has no 3D max-pool (it would need the Flex
    delegate), and TensorFlow has no float16 3D max-pool on CPU. On PyTorch an
    unpadded pool is PyTorch's own 3D pool of the channels-last memory (Keras's
    pool would first copy the input to channels-first memory).

    Args:
        pool_size: k.
        strides: spatial stride.
        padding: "valid" or "same", as `MaxPooling2D`'s.

    Examples:
    >>> import numpy as np
    >>> FrameMaxPooling(3, strides=2)(np.zeros((1, 4, 15, 15, 8), "float32")).shape
    TensorShape([1, 4, 7, 7, 8])
    """

    def __init__(self, pool_size=3, strides=2, padding="valid", **kwargs):
        super().__init__(**kwargs)
        for key, value in (("pool_size", pool_size), ("strides", strides)):
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"`{key}` must be a positive int. Received: {key}={value!r}")
        if padding not in ("valid", "same"):
            raise ValueError(f"`padding` must be 'valid' or 'same'. Received: padding={padding!r}")
        self.pool_size, self.strides, self.padding = pool_size, strides, padding

    def build(self, input_shape):
        self._backend = backend_ops.current()

    def call(self, clips):
        return self._backend.max_pool_frames(clips, self.pool_size, self.strides, self.padding)

    def compute_output_shape(self, input_shape):
        batch, frames, height, width, channels = input_shape

        def size(n):
            if n is None:
                return None
            return -(-n // self.strides) if self.padding == "same" else (n - self.pool_size) // self.strides + 1

        return (batch, frames, size(height), size(width), channels)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides, "padding": self.padding}
