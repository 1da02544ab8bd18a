"""MobileNet-v2 and its multi-fiber version (paper Table 1)."""

import keras

from mfnet_keras.layers import Multiplexer
from mfnet_keras.layers.post_activation import batch_norm, conv_bn
from mfnet_keras.models.backbone import Backbone, Pyramid, check_input_shape, constructor_args

# (expansion t, channels c, repeats n, first stride s), Sandler et al. Table 2.
INVERTED_RESIDUAL_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(value, divisor=8):
    """Rounds a width to a multiple of `divisor`, never going down by more than 10 %.

    Args:
        value: the width.
        divisor: the multiple.
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


@keras.saving.register_keras_serializable(package="mfnet_keras")
class MobileNetV2Backbone(Backbone):
    """MobileNet-v2 (Sandler et al.), optionally with multi-fiber blocks.

    The standard network (`multi_fiber=False`) matches
    `keras.applications.MobileNetV2(alpha=...)` layer for layer in shapes
    and parameter count.

    With `multi_fiber=True` (the paper's "MF embedded" row; the paper does not
    spell out the design, so this is ours, chosen to match its row): every
    inverted-residual block starts with a `Multiplexer` whose bottleneck is a
    quarter of the block's expanded width (the MF-Net rule, C_mid / 4), and
    its 1×1 projection is split into `num_fibers` fibers (default 2); the
    final 1×1 convolution is split into `last_num_fibers` fibers (default
    4). The expansion convs and depthwise convs are unchanged. At width 1.4
    this has 13 % fewer parameters than the baseline at about the same
    multiply-adds (5.31 M vs 6.11 M, 580 M vs 582 M; paper: 6.0 M vs 6.9 M,
    578 M vs 585 M).

    Args:
        alpha: width multiplier (1.4 in the paper).
        multi_fiber: use the multi-fiber blocks described above.
        num_fibers, last_num_fibers: fibers of the projections and of the
            final 1×1 conv (multi-fiber only).
        Others: as for `MFNetBackbone`.

    Examples:
    >>> MobileNetV2Backbone(input_shape=(64, 64, 3), alpha=1.4).output_shape
    (None, 2, 2, 1792)
    """

    def __init__(
        self,
        input_shape=(224, 224, 3),
        alpha=1.4,
        multi_fiber=False,
        num_fibers=2,
        last_num_fibers=4,
        synchronized_bn=False,
        dtype=None,
        name="mobilenet_v2",
        **kwargs,
    ):
        init_args = constructor_args(locals())
        shape = check_input_shape(input_shape, (3,))
        if not (isinstance(alpha, (int, float)) and alpha > 0):
            raise ValueError(f"`alpha` must be a positive number. Received: alpha={alpha!r}")
        fibers = num_fibers if multi_fiber else 1
        sync = synchronized_bn

        inputs = keras.Input(shape=shape, name="image")
        channels = make_divisible(32 * alpha)
        x = conv_bn(inputs, channels, 3, 2, "conv1", dtype, activation="relu6", synchronized_bn=sync)
        pyramid = Pyramid()
        pyramid.downsample(2)
        index = 0
        for expansion, base, repeats, first_stride in INVERTED_RESIDUAL_STAGES:
            pyramid.downsample(first_stride)
            filters = make_divisible(base * alpha)
            for repeat in range(repeats):
                strides = first_stride if repeat == 0 else 1
                name_ = f"block{index:02d}"
                x = _inverted_residual(
                    x, channels, filters, expansion, strides, multi_fiber, fibers, name_, dtype, sync
                )
                channels = filters
                index += 1
            pyramid.record(x)
        last = make_divisible(1280 * alpha) if alpha > 1.0 else 1280
        x = conv_bn(
            x,
            last,
            1,
            1,
            "conv_last",
            dtype,
            num_fibers=last_num_fibers if multi_fiber else 1,
            activation="relu6",
            synchronized_bn=sync,
        )
        pyramid.record(x)
        self._init_model(inputs, x, pyramid, name, init_args, **kwargs)


def _inverted_residual(x, channels, filters, expansion, strides, multi_fiber, fibers, name, dtype, sync):
    """MobileNetV2's block: (a multiplexer,) 1×1 expansion, 3×3 depthwise, linear 1×1 projection (in
    `fibers` groups), added to the input when the shape stays."""
    expanded = channels * expansion
    h = x
    if multi_fiber:
        h = Multiplexer(expanded // 4, synchronized_bn=sync, name=f"{name}_mux", dtype=dtype)(h)
    if expansion != 1:
        h = conv_bn(h, expanded, 1, 1, f"{name}_expand", dtype, activation="relu6", synchronized_bn=sync)
    h = keras.layers.DepthwiseConv2D(
        3, strides=strides, padding="same", use_bias=False, name=f"{name}_depthwise", dtype=dtype
    )(h)
    h = batch_norm(f"{name}_depthwise_bn", sync, dtype=dtype)(h)
    h = keras.layers.ReLU(6.0, name=f"{name}_depthwise_relu6", dtype=dtype)(h)
    project = {"num_fibers": fibers, "activation": None, "synchronized_bn": sync}
    h = conv_bn(h, filters, 1, 1, f"{name}_project", dtype, **project)
    if strides == 1 and channels == filters:
        h = keras.layers.Add(name=f"{name}_add", dtype=dtype)([x, h])
    return h
