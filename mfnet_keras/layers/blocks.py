"""The paper's building blocks: pre-activation conv, multiplexer, multi-fiber unit."""

import keras
from keras import ops

from mfnet_keras.layers.fiber_conv import FiberConv, check_ints, join_fibers
from mfnet_keras.layers.post_activation import batch_norm


def _folded_pair(first, second, inputs):
    """Inference form of `relu(second.bn(first(inputs)))`, as a list of fibers.

    `second.bn` normalises exactly what `first.conv` outputs, so with fixed
    statistics it is a per-channel scale, folded into `first.conv`'s kernel,
    and a shift, added before the ReLU: one pass over the activations instead
    of three, and fibers stay split (no concatenation) up to `second.conv`
    where it convolves them one by one. Gradients still reach every weight.
    """
    bn = second.bn
    scale = ops.cast(bn.gamma, "float32") * ops.rsqrt(ops.cast(bn.moving_variance, "float32") + bn.epsilon)
    shift = ops.cast(bn.beta, "float32") - ops.cast(bn.moving_mean, "float32") * scale
    hidden = ops.relu(first.bn(inputs, training=False))
    dtype = hidden.dtype  # the compute dtype, also under mixed precision
    ys = first.conv.fibers(hidden, ops.cast(ops.cast(first.conv.kernel, "float32") * scale, dtype))
    if not second.conv.takes_fibers:
        ys = [join_fibers(ys)]
    shift = ops.cast(shift, dtype)
    shifts = ops.split(shift, len(ys)) if len(ys) > 1 else [shift]
    return [ops.relu(y + b) for y, b in zip(ys, shifts)]


def _multiplexed(conv_i1, conv_i2, inputs, training):
    """`inputs` plus the multiplexer's two pre-activation 1×1 convs, with the BatchNorm folded in inference."""
    if not training:
        return inputs + conv_i2.conv(join_fibers(_folded_pair(conv_i1, conv_i2, inputs)))
    return inputs + conv_i2.call(conv_i1.call(inputs, training=training), training=training)


def _check_bool(value, name):
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be a bool. Received: {name}={value!r}")


@keras.saving.register_keras_serializable(package="mfnet_keras")
class BNActConv(keras.layers.Layer):
    """Pre-activation convolution: BatchNorm → ReLU → FiberConv (no bias).

    Every convolution inside a multi-fiber unit has this form. Sublayers are
    named `bn` and `conv`, as in the released checkpoints
    (`conv2.B01.conv_m1.bn.weight`, `conv2.B01.conv_m1.conv.weight`).

    Args:
        filters, kernel_size, num_fibers, strides: as for `FiberConv`.
        padding: as for `FiberConv`; the default (None) is symmetric
            `k // 2` padding, which is what the paper's PyTorch code uses.
        synchronized_bn: synchronise BatchNorm statistics across replicas
            (multi-GPU/TPU training).

    Examples:
    >>> import numpy as np
    >>> BNActConv(32, (1, 3, 3), num_fibers=16)(np.zeros((1, 4, 7, 7, 32), "float32")).shape
    TensorShape([1, 4, 7, 7, 32])
    """

    def __init__(
        self,
        filters,
        kernel_size,
        num_fibers=1,
        strides=1,
        padding=None,
        synchronized_bn=False,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_bool(synchronized_bn, "synchronized_bn")
        check_ints(kernel_size, "kernel_size", 1)
        conv_padding = padding
        if padding is None:
            conv_padding = kernel_size // 2 if isinstance(kernel_size, int) else tuple(k // 2 for k in kernel_size)
        self.filters = filters
        self.kernel_size = kernel_size
        self.num_fibers = num_fibers
        self.strides = strides
        self.padding = padding
        self.synchronized_bn = synchronized_bn
        self.kernel_initializer = kernel_initializer
        self.kernel_regularizer = kernel_regularizer
        # Created here so that bad arguments fail at construction time.
        self.conv = FiberConv(
            filters,
            kernel_size,
            num_fibers=num_fibers,
            strides=strides,
            padding=conv_padding,
            kernel_initializer=kernel_initializer,
            kernel_regularizer=kernel_regularizer,
            name="conv",
            dtype=self.dtype_policy,
        )
        self.bn = batch_norm("bn", synchronized_bn, dtype=self.dtype_policy)

    def build(self, input_shape):
        self.bn.build(input_shape)
        self.conv.build(input_shape)

    def call(self, inputs, training=None):
        return join_fibers(self.conv.fibers(self.activate(inputs, training), training=training))

    def activate(self, inputs, training=None):
        """`relu(bn(inputs))`: the backend's fused kernel when `bn.fuses` (PyTorch or TensorFlow, training).

        Args:
            inputs: the input, channels last.
            training: the call's training flag.
        """
        if self.bn.fuses(inputs, training):
            return self.bn.train_fused(inputs, relu=True)
        return ops.relu(self.bn(inputs, training=training))

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            num_fibers=self.num_fibers,
            strides=self.strides,
            padding=self.padding,
            synchronized_bn=self.synchronized_bn,
            kernel_initializer=keras.initializers.serialize(self.conv.kernel_initializer),
            kernel_regularizer=keras.regularizers.serialize(self.conv.kernel_regularizer),
        )
        return config


def _multiplexer_convs(layer, channels, bottleneck_filters, synchronized_bn):
    """The two 1×1 convs of a multiplexer, C → bottleneck → C, named as in the checkpoints."""
    conv_i1 = BNActConv(
        bottleneck_filters, 1, synchronized_bn=synchronized_bn, name="conv_i1", dtype=layer.dtype_policy
    )
    conv_i2 = BNActConv(channels, 1, synchronized_bn=synchronized_bn, name="conv_i2", dtype=layer.dtype_policy)
    return conv_i1, conv_i2


def _input_rank_check(layer, input_shape):
    if len(input_shape) not in (4, 5) or input_shape[-1] is None:
        raise ValueError(
            f"{type(layer).__name__} expects a 4D (batch, H, W, C) or 5D "
            f"(batch, T, H, W, C) input with known channels. Received: input_shape={tuple(input_shape)}"
        )


@keras.saving.register_keras_serializable(package="mfnet_keras")
class Multiplexer(keras.layers.Layer):
    """Routes information across fibers (paper Fig. 1e).

    Two pre-activation 1×1 convolutions, C → `bottleneck_filters` → C, whose
    result is added to the input. Output shape equals input shape.

    Args:
        bottleneck_filters: channels between the two convolutions (the paper's C/4).
        synchronized_bn: BatchNorm statistics over every replica (multi-GPU/TPU training).

    Examples:
    >>> import numpy as np
    >>> Multiplexer(24)(np.zeros((1, 4, 7, 7, 96), "float32")).shape
    TensorShape([1, 4, 7, 7, 96])
    """

    def __init__(self, bottleneck_filters, synchronized_bn=False, **kwargs):
        super().__init__(**kwargs)
        check_ints(bottleneck_filters, "bottleneck_filters", 1)
        _check_bool(synchronized_bn, "synchronized_bn")
        self.bottleneck_filters = bottleneck_filters
        self.synchronized_bn = synchronized_bn

    def build(self, input_shape):
        _input_rank_check(self, input_shape)
        self.conv_i1, self.conv_i2 = _multiplexer_convs(
            self, input_shape[-1], self.bottleneck_filters, self.synchronized_bn
        )
        self.conv_i1.build(input_shape)
        self.conv_i2.build(self.conv_i1.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        return _multiplexed(self.conv_i1, self.conv_i2, inputs, training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(bottleneck_filters=self.bottleneck_filters, synchronized_bn=self.synchronized_bn)
        return config


@keras.saving.register_keras_serializable(package="mfnet_keras")
class MultiFiberUnit(keras.layers.Layer):
    """One multi-fiber residual unit (paper Fig. 1d, Fig. 3b).

    multiplexer (`conv_i1`, `conv_i2`, bottleneck `mid_filters // 4`, added
    to the input) → `conv_m1` (3×3×3, or 3×3 in 2D; `num_fibers` fibers;
    carries the stride) → `conv_m2` (1×3×3, or 3×3 in 2D, `num_fibers`
    fibers). A stage's first unit (`first_unit=True`) uses a dense 1×1
    `conv_m2` and a strided 1×1 shortcut `conv_w1` on the (un-multiplexed)
    input; the other units add the input unchanged. Sublayer names are those
    of the released checkpoints.

    Args:
        filters: output channels.
        num_fibers: fibers N of `conv_m1`/`conv_m2` (paper: 16).
        strides: int or tuple (e.g. `(2, 1, 1)` for temporal stride 2).
        first_unit: the first unit of a stage (projection shortcut).
        mid_filters: width of the fibers; defaults to `filters`.
        multiplexer: include the multiplexer (the paper's ablation drops it).
        synchronized_bn: synchronise BatchNorm across replicas.

    Examples:
    >>> import numpy as np
    >>> unit = MultiFiberUnit(96, num_fibers=16, strides=(2, 1, 1), first_unit=True)
    >>> unit(np.zeros((1, 8, 14, 14, 16), "float32")).shape
    TensorShape([1, 4, 14, 14, 96])
    """

    def __init__(
        self,
        filters,
        num_fibers=16,
        strides=1,
        first_unit=False,
        mid_filters=None,
        multiplexer=True,
        synchronized_bn=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_ints(filters, "filters", 1)
        check_ints(num_fibers, "num_fibers", 1)
        check_ints(strides, "strides", 1)
        for name, value in (
            ("first_unit", first_unit),
            ("multiplexer", multiplexer),
            ("synchronized_bn", synchronized_bn),
        ):
            _check_bool(value, name)
        mid = filters if mid_filters is None else mid_filters
        check_ints(mid, "mid_filters", 4)
        if mid % num_fibers:
            raise ValueError(
                f"`mid_filters` (default: `filters`) must be divisible by `num_fibers`={num_fibers}. "
                f"Received: mid_filters={mid}"
            )
        if not first_unit and filters % num_fibers:
            raise ValueError(f"`filters` must be divisible by `num_fibers`={num_fibers}. Received: filters={filters}")
        strides_tuple = (strides,) if isinstance(strides, int) else tuple(strides)
        if not first_unit and any(s != 1 for s in strides_tuple):
            raise ValueError(
                "Only a stage's first unit (`first_unit=True`) can have strides, since the "
                f"other units add their input unchanged. Received: strides={strides}"
            )
        self.filters = filters
        self.num_fibers = num_fibers
        self.strides = tuple(strides) if isinstance(strides, (list, tuple)) else strides
        self.first_unit = first_unit
        self.mid_filters = mid_filters
        self.multiplexer = multiplexer
        self.synchronized_bn = synchronized_bn

    def build(self, input_shape):
        _input_rank_check(self, input_shape)
        channels = input_shape[-1]
        if channels % self.num_fibers:
            raise ValueError(
                f"Input channels must be divisible by `num_fibers`={self.num_fibers}. "
                f"Received: input_channels={channels}"
            )
        if not self.first_unit and channels != self.filters:
            raise ValueError(
                "A unit that is not a stage's first unit adds its input to its output, so its input "
                f"channels must equal `filters`={self.filters}. Received: input_channels={channels}"
            )
        three_d = len(input_shape) == 5
        mid = self.filters if self.mid_filters is None else self.mid_filters

        def conv(filters, kernel, fibers, strides, name):
            return BNActConv(
                filters,
                kernel,
                num_fibers=fibers,
                strides=strides,
                synchronized_bn=self.synchronized_bn,
                name=name,
                dtype=self.dtype_policy,
            )

        if self.multiplexer:
            self.conv_i1, self.conv_i2 = _multiplexer_convs(self, channels, mid // 4, self.synchronized_bn)
            self.conv_i1.build(input_shape)
            self.conv_i2.build(self.conv_i1.compute_output_shape(input_shape))
        self.conv_m1 = conv(mid, 3, self.num_fibers, self.strides, "conv_m1")
        self.conv_m1.build(input_shape)
        m1_shape = self.conv_m1.compute_output_shape(input_shape)
        if self.first_unit:
            self.conv_m2 = conv(self.filters, 1, 1, 1, "conv_m2")
            self.conv_w1 = conv(self.filters, 1, 1, self.strides, "conv_w1")
            self.conv_w1.build(input_shape)
        else:
            self.conv_m2 = conv(self.filters, (1, 3, 3) if three_d else 3, self.num_fibers, 1, "conv_m2")
        self.conv_m2.build(m1_shape)

    def call(self, inputs, training=None):
        x = _multiplexed(self.conv_i1, self.conv_i2, inputs, training) if self.multiplexer else inputs
        if not training:  # BatchNorm has fixed statistics: fold what is foldable (see `_folded_pair`)
            h = join_fibers(self.conv_m2.conv.fibers(_folded_pair(self.conv_m1, self.conv_m2, x)))
        else:
            h = self.conv_m2.call(self.conv_m1.call(x, training=training), training=training)
        shortcut = self.conv_w1.call(inputs, training=training) if self.first_unit else inputs
        return h + shortcut

    def compute_output_shape(self, input_shape):
        _input_rank_check(self, input_shape)
        rank = len(input_shape) - 2
        strides = (self.strides,) * rank if isinstance(self.strides, int) else self.strides
        # conv_m1 is a 3-wide kernel with padding 1 in every dimension.
        spatial = [None if n is None else (n - 1) // s + 1 for n, s in zip(input_shape[1:-1], strides)]
        return (input_shape[0], *spatial, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            num_fibers=self.num_fibers,
            strides=self.strides,
            first_unit=self.first_unit,
            mid_filters=self.mid_filters,
            multiplexer=self.multiplexer,
            synchronized_bn=self.synchronized_bn,
        )
        return config
