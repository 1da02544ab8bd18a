"""The preprocessing a classifier's weights expect, as a layer inside the model."""

import keras
from keras import ops

from mfnet_keras.defaults import FRAME_INTERVAL, VIDEO_MEAN, VIDEO_STD, default_short_side


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


@keras.saving.register_keras_serializable(package="mfnet_keras")
class VideoClassifierPreprocessor(keras.layers.Layer):
    """Raw RGB clips → the network's input, exactly as evaluation prepares them.

    Takes `[batch, T, H, W, 3]` clips, uint8 or float in [0, 255], of any H
    and W: the frames are resized (bilinear, antialiased) so that the short
    side is `short_side`, centre-cropped to `crop_size`, then normalised as
    `(x / 255 - mean) / std`. Clips already `crop_size × crop_size` (what the
    training pipeline's random crops are) skip the resize and the crop.

    Args:
        clip_length: frames per clip T the network is fed.
        crop_size: height and width of the network's input.
        short_side: the evaluation resize; default `crop_size × 256/224`.
        mean, std: per-channel normalisation of pixels scaled to [0, 1].
        frame_interval: frames between a clip's samples when clips are drawn
            from a video (used by `predict` and `evaluate`, not by `call`).

    Examples:
    >>> import numpy as np
    >>> pre = VideoClassifierPreprocessor(clip_length=2, crop_size=32)
    >>> pre.short_side
    37
    >>> pre(np.full((1, 2, 40, 60, 3), 255, "uint8")).shape  # resized to 37×56, centre-cropped, normalised
    TensorShape([1, 2, 32, 32, 3])
    """

    def __init__(
        self,
        clip_length=16,
        crop_size=224,
        short_side=None,
        mean=VIDEO_MEAN,
        std=VIDEO_STD,
        frame_interval=FRAME_INTERVAL,
        **kwargs,
    ):
        kwargs["dtype"] = "float32"  # resizing and normalising in float16 would lose precision
        super().__init__(**kwargs)
        short_side = default_short_side(crop_size) if short_side is None and _is_int(crop_size) else short_side
        for key, value in (
            ("clip_length", clip_length),
            ("crop_size", crop_size),
            ("short_side", short_side),
            ("frame_interval", frame_interval),
        ):
            if not (_is_int(value) and value >= 1):
                raise ValueError(f"`{key}` must be a positive int. Received: {key}={value!r}")
        if short_side < crop_size:
            raise ValueError(f"`short_side` must be >= `crop_size`={crop_size}. Received: short_side={short_side}")
        mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"`mean` and `std` need 3 entries, std > 0. Received: mean={mean}, std={std}")
        self.clip_length, self.crop_size, self.short_side = clip_length, crop_size, short_side
        self.mean, self.std, self.frame_interval = mean, std, frame_interval

    def call(self, clips):
        x = self.resize_and_crop(clips)
        scale = ops.convert_to_tensor([1 / (255 * s) for s in self.std], "float32")
        offset = ops.convert_to_tensor([-m / s for m, s in zip(self.mean, self.std)], "float32")
        return x * scale + offset

    def resize_and_crop(self, clips):
        """What `call` does before normalising: float32 `[batch, T, crop, crop, 3]` in [0, 255].

        Runtimes that take crop-sized clips (`export --format litert`) are fed this.

        Args:
            clips: `[batch, T, H, W, 3]` frames in [0, 255], any size.
        """
        x = ops.cast(clips, "float32")
        height, width = ops.shape(x)[2], ops.shape(x)[3]
        if _is_int(height) and _is_int(width):
            if (height, width) != (self.crop_size, self.crop_size):
                x = self._resize_and_crop(x)
        else:
            already = ops.logical_and(ops.equal(height, self.crop_size), ops.equal(width, self.crop_size))
            x = ops.cond(already, lambda: x, lambda: self._resize_and_crop(x))
        return ops.reshape(x, (-1, self.clip_length, self.crop_size, self.crop_size, 3))

    def _resize_and_crop(self, x):
        """Short side to `short_side` (never below the crop), then the centre crop."""
        shape = ops.shape(x)
        height, width = shape[2], shape[3]
        frames = ops.reshape(x, (-1, height, width, 3))
        if _is_int(height) and _is_int(width):
            factor = self.short_side / min(height, width)
            new_h = max(self.crop_size, round(height * factor))
            new_w = max(self.crop_size, round(width * factor))
        else:
            size = ops.cast(ops.stack([height, width]), "float32")
            size = ops.round(size * (self.short_side / ops.min(size)))
            size = ops.maximum(ops.cast(size, "int32"), self.crop_size)
            new_h, new_w = size[0], size[1]
        if _is_int(new_h):
            frames = ops.image.resize(frames, (new_h, new_w), interpolation="bilinear", antialias=True)
        else:  # a size known at run time only (TensorFlow graphs of clips of any size)
            from mfnet_keras.layers.backend_ops import tensorflow_ops  # imports TensorFlow: only where it runs

            frames = tensorflow_ops.resize_bilinear(frames, (new_h, new_w))
        top, left = (new_h - self.crop_size) // 2, (new_w - self.crop_size) // 2
        frames = ops.slice(frames, (0, top, left, 0), (ops.shape(frames)[0], self.crop_size, self.crop_size, 3))
        return ops.reshape(frames, (-1, self.clip_length, self.crop_size, self.crop_size, 3))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.clip_length, self.crop_size, self.crop_size, 3)

    def get_config(self):
        config = super().get_config()
        config.pop("dtype", None)
        config.update(
            clip_length=self.clip_length,
            crop_size=self.crop_size,
            short_side=self.short_side,
            mean=list(self.mean),
            std=list(self.std),
            frame_interval=self.frame_interval,
        )
        return config
