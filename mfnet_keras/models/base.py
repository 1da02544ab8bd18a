"""Shared pieces of the model family: the config-carrying base class and the head."""

import keras

from mfnet_keras.layers import FiberConv
from mfnet_keras.layers.blocks import batch_norm

POOLINGS = (None, "avg", "max")


class ArchitectureModel(keras.Model):
    """A functional model that remembers its constructor arguments.

    Subclasses build their graph in `__init__` and pass every constructor
    argument to `_init_model`; `get_config` returns exactly those, so
    `cls.from_config(model.get_config())` rebuilds the same architecture.
    """

    def _init_model(self, inputs, outputs, name, init_args, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self._init_args = dict(init_args)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, **self._init_args}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def constructor_args(local_variables):
    """A model constructor's arguments, from its `locals()` at the top of `__init__`."""
    return {k: v for k, v in local_variables.items() if k not in ("self", "kwargs", "name", "__class__")}


def check_common_args(num_classes, input_shape, ranks, dropout, include_top, pooling):
    """Validates the arguments every model of the family takes."""
    if include_top and not (isinstance(num_classes, int) and num_classes >= 1):
        raise ValueError(f"`num_classes` must be a positive int. Received: num_classes={num_classes!r}")
    shape = tuple(input_shape) if isinstance(input_shape, (list, tuple)) else None
    if shape is None or len(shape) not in ranks or shape[-1] is None:
        dims = " or ".join(f"{r}" for r in ranks)
        raise ValueError(
            f"`input_shape` must have {dims} entries (frames/height/width..., channels) "
            f"with known channels. Received: input_shape={input_shape!r}"
        )
    if any(d is not None and (not isinstance(d, int) or d < 1) for d in shape):
        raise ValueError(f"`input_shape` entries must be positive ints or None. Received: input_shape={input_shape!r}")
    if not (isinstance(dropout, (int, float)) and 0 <= dropout < 1):
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")
    if pooling not in POOLINGS:
        raise ValueError(f"`pooling` must be one of {POOLINGS}. Received: pooling={pooling!r}")
    return shape


def classification_head(x, num_classes, dropout, include_top, pooling, classifier_activation, dtype):
    """Global pooling → dropout → dense classifier, or features when `include_top=False`."""
    three_d = len(x.shape) == 5
    if include_top or pooling == "avg":
        layer = keras.layers.GlobalAveragePooling3D if three_d else keras.layers.GlobalAveragePooling2D
        x = layer(name="pool", dtype=dtype)(x)
    elif pooling == "max":
        layer = keras.layers.GlobalMaxPooling3D if three_d else keras.layers.GlobalMaxPooling2D
        x = layer(name="pool", dtype=dtype)(x)
    if include_top:
        if dropout:
            x = keras.layers.Dropout(dropout, name="dropout", dtype=dtype)(x)
        x = keras.layers.Dense(num_classes, activation=classifier_activation, name="classifier", dtype=dtype)(x)
    return x


def conv_bn(x, filters, kernel, strides, name, dtype, num_fibers=1, activation="relu", synchronized_bn=False):
    """Post-activation conv (symmetric `k // 2` padding) → BN → activation ("relu", "relu6" or None).

    Layers are named `{name}.conv`, `{name}.bn`, `{name}.{activation}`.

    The stems of every model and the blocks of the original ResNet, ResNeXt
    and MobileNet-v2 have this layout.
    """
    padding = kernel // 2 if isinstance(kernel, int) else tuple(k // 2 for k in kernel)
    x = FiberConv(
        filters, kernel, num_fibers=num_fibers, strides=strides, padding=padding, name=f"{name}.conv", dtype=dtype
    )(x)
    x = batch_norm(f"{name}.bn", synchronized_bn, dtype=dtype)(x)
    if activation:
        max_value = {"relu": None, "relu6": 6.0}[activation]
        x = keras.layers.ReLU(max_value, name=f"{name}.{activation}", dtype=dtype)(x)
    return x


def stem_max_pool(x, dtype):
    """3×3 (1×3×3 for clips) max-pool, stride 2 (1, 2, 2), padding 1, as PyTorch's.

    Zero padding equals PyTorch's -inf padding here because the input comes
    straight from a ReLU.
    """
    if len(x.shape) == 5:
        # TensorFlow has no float16 MaxPool3D kernel on CPU: pool in float32 there.
        policy = keras.dtype_policies.get(dtype) if dtype is not None else keras.config.dtype_policy()
        pool_dtype = "float32" if policy.compute_dtype == "float16" else dtype
        x = keras.layers.ZeroPadding3D(((0, 0), (1, 1), (1, 1)), name="pool1.pad", dtype=dtype)(x)
        return keras.layers.MaxPooling3D((1, 3, 3), strides=(1, 2, 2), name="pool1", dtype=pool_dtype)(x)
    x = keras.layers.ZeroPadding2D(1, name="pool1.pad", dtype=dtype)(x)
    return keras.layers.MaxPooling2D(3, strides=2, name="pool1", dtype=dtype)(x)
