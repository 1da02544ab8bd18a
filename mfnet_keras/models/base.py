"""Shared pieces of the backbones: the config-carrying base class, the stem and the stage pyramid."""

import keras

from mfnet_keras.layers import FiberConv, FrameMaxPooling
from mfnet_keras.layers.blocks import batch_norm


class Backbone(keras.Model):
    """A functional feature extractor that remembers its constructor arguments.

    Subclasses build their graph in `__init__` and pass every constructor
    argument to `_init_model`; `get_config` returns exactly those, so
    `cls.from_config(backbone.get_config())` rebuilds the same architecture.
    The output is the last feature map; `pyramid_outputs` maps `"P2"`…`"P5"`
    to the output of the stage at spatial stride 2**k (for MF-Net and ResNet
    the stages conv2…conv5, P5 being the output), for feature extraction:
    `keras.Model(backbone.inputs, backbone.pyramid_outputs)`.
    """

    def _init_model(self, inputs, outputs, pyramid, name, init_args, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self._init_args = dict(init_args)
        self.pyramid_outputs = dict(pyramid)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, **self._init_args}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @classmethod
    def from_preset(cls, handle, load_weights=True, **kwargs):
        """The backbone of a preset: a registered name, a preset folder, a `.pth`, an `http(s)://`,
        `hf://` or `kaggle://` handle (see `mfnet_keras.models.presets.resolve`). `kwargs` override
        constructor arguments (e.g. `input_shape`, `dtype`)."""
        from mfnet_keras.models import presets

        return presets.load_backbone(handle, load_weights=load_weights, cls=cls, **kwargs)

    def save_to_preset(self, folder):
        """Writes `config.json`, `model.weights.h5` and `metadata.json` into `folder`."""
        from mfnet_keras.models import presets

        presets.save_backbone(self, folder)


def constructor_args(local_variables):
    """A model constructor's arguments, from its `locals()` at the top of `__init__`."""
    return {k: v for k, v in local_variables.items() if k not in ("self", "kwargs", "name", "__class__")}


def check_input_shape(input_shape, ranks):
    """Validates a backbone's `input_shape`; returns it as a tuple."""
    shape = tuple(input_shape) if isinstance(input_shape, (list, tuple)) else None
    if shape is None or len(shape) not in ranks or shape[-1] is None:
        dims = " or ".join(f"{r}" for r in ranks)
        raise ValueError(
            f"`input_shape` must have {dims} entries (frames/height/width..., channels) "
            f"with known channels. Received: input_shape={input_shape!r}"
        )
    if any(d is not None and (not isinstance(d, int) or d < 1) for d in shape):
        raise ValueError(f"`input_shape` entries must be positive ints or None. Received: input_shape={input_shape!r}")
    return shape


class Pyramid(dict):
    """Stage outputs keyed `P{level}`, the level being log2 of the spatial stride so far."""

    def __init__(self):
        super().__init__()
        self.level = 0

    def downsample(self, strides):
        """Counts a stage's spatial stride (an int, or `(t, h, w)` for clips)."""
        spatial = strides[-1] if isinstance(strides, (list, tuple)) else strides
        self.level += {1: 0, 2: 1}[spatial]

    def record(self, x):
        if self.level >= 2:
            self[f"P{self.level}"] = x


def conv_bn(x, filters, kernel, strides, name, dtype, num_fibers=1, activation="relu", synchronized_bn=False):
    """Post-activation conv (symmetric `k // 2` padding) → BN → activation ("relu", "relu6" or None).

    Layers are named `{name}_conv`, `{name}_bn`, `{name}_{activation}`.

    The stems of every model and the blocks of the original ResNet, ResNeXt
    and MobileNet-v2 have this layout.
    """
    padding = kernel // 2 if isinstance(kernel, int) else tuple(k // 2 for k in kernel)
    x = FiberConv(
        filters, kernel, num_fibers=num_fibers, strides=strides, padding=padding, name=f"{name}_conv", dtype=dtype
    )(x)
    x = batch_norm(f"{name}_bn", synchronized_bn, dtype=dtype)(x)
    if activation:
        max_value = {"relu": None, "relu6": 6.0}[activation]
        x = keras.layers.ReLU(max_value, name=f"{name}_{activation}", dtype=dtype)(x)
    return x


def stem_max_pool(x, dtype):
    """3×3 (1×3×3 for clips) max-pool, stride 2 (1, 2, 2), padding 1, as PyTorch's.

    Zero padding equals PyTorch's -inf padding here because the input comes
    straight from a ReLU.
    """
    if len(x.shape) == 5:  # a 2D pool of every frame: a built-in op of every runtime (LiteRT has no 3D pool)
        x = keras.layers.ZeroPadding3D(((0, 0), (1, 1), (1, 1)), name="pool1_pad", dtype=dtype)(x)
        return FrameMaxPooling(3, strides=2, name="pool1", dtype=dtype)(x)
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad", dtype=dtype)(x)
    return keras.layers.MaxPooling2D(3, strides=2, name="pool1", dtype=dtype)(x)
