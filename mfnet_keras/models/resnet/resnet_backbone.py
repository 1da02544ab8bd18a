"""ResNet-18, its multi-fiber version and ResNeXt-26, the paper's Table 1 image baselines."""

import keras

from mfnet_keras.layers import MultiFiberUnit
from mfnet_keras.layers.post_activation import batch_norm, conv_bn, stem_max_pool
from mfnet_keras.models.backbone import Backbone, Pyramid, check_input_shape, constructor_args

BLOCKS = ("basic", "bottleneck", "multi_fiber")


@keras.saving.register_keras_serializable(package="mfnet_keras")
class ResNetBackbone(Backbone):
    """ResNet-style image backbone with three kinds of residual block.

    Stem: 7×7 conv stride 2 → BN → ReLU → 3×3 max-pool stride 2; then four
    stages, the first unit of stages 2–4 with stride 2.

    - `block="basic"`: He et al.'s two 3×3 convs (ResNet-18).
    - `block="bottleneck"`: 1×1 → grouped 3×3 (`cardinality` groups of
      `bottleneck_filters[i] // cardinality` channels, carrying the stride)
      → 1×1, as in ResNeXt.
    - `block="multi_fiber"`: the paper's `MultiFiberUnit` (pre-activation,
      multiplexer, `num_fibers` fibers), followed by a final BN → ReLU.

    Args:
        stage_filters: output channels of each stage.
        stage_depths: blocks per stage.
        bottleneck_filters: middle width of each stage (bottleneck only).
        cardinality: groups of the bottleneck's 3×3 conv.
        num_fibers, multiplexer: multi-fiber blocks only.
        Others: as for `MFNetBackbone` (`dtype` and `name`, default "resnet", as keyword arguments).

    Examples:
    >>> ResNetBackbone(input_shape=(64, 64, 3), block="basic").output_shape
    (None, 2, 2, 512)
    """

    def __init__(
        self,
        input_shape=(224, 224, 3),
        block="basic",
        stage_filters=(64, 128, 256, 512),
        stage_depths=(2, 2, 2, 2),
        bottleneck_filters=None,
        cardinality=1,
        num_fibers=16,
        multiplexer=True,
        stem_filters=64,
        synchronized_bn=False,
        **kwargs,
    ):
        init_args = constructor_args(locals())
        # `dtype` and `name` arrive as for any Keras layer; `dtype` is the layers' policy, not the model's.
        dtype, name = kwargs.pop("dtype", None), kwargs.pop("name", "resnet")
        init_args["dtype"] = dtype
        shape = check_input_shape(input_shape, (3,))
        if block not in BLOCKS:
            raise ValueError(f"`block` must be one of {BLOCKS}. Received: block={block!r}")
        if block == "bottleneck" and (bottleneck_filters is None or len(bottleneck_filters) != len(stage_filters)):
            raise ValueError(
                "`block='bottleneck'` needs one `bottleneck_filters` entry per stage. "
                f"Received: bottleneck_filters={bottleneck_filters!r}"
            )
        sync = synchronized_bn

        inputs = keras.Input(shape=shape, name="image")
        x = conv_bn(inputs, stem_filters, 7, 2, "conv1", dtype, synchronized_bn=sync)
        x = stem_max_pool(x, dtype)
        pyramid = Pyramid()
        pyramid.downsample(2)
        pyramid.downsample(2)
        channels = stem_filters
        for stage, (filters, depth) in enumerate(zip(stage_filters, stage_depths)):
            pyramid.downsample(2 if stage > 0 else 1)
            for unit in range(depth):
                strides = 2 if unit == 0 and stage > 0 else 1
                name_ = f"conv{stage + 2}_B{unit + 1:02d}"
                if block == "multi_fiber":
                    x = MultiFiberUnit(
                        filters,
                        num_fibers=num_fibers,
                        strides=strides,
                        first_unit=unit == 0,
                        multiplexer=multiplexer,
                        synchronized_bn=sync,
                        name=name_,
                        dtype=dtype,
                    )(x)
                    continue
                mid = bottleneck_filters[stage] if block == "bottleneck" else None
                x = _residual_unit(x, block, filters, mid, strides, cardinality, channels, name_, dtype, sync)
                channels = filters
            pyramid.record(x)
        if block == "multi_fiber":
            x = batch_norm("tail_bn", sync, dtype=dtype)(x)
            x = keras.layers.ReLU(name="tail_relu", dtype=dtype)(x)
        pyramid.record(x)
        self._init_model(inputs, x, pyramid, name, init_args, **kwargs)


def _residual_unit(x, block, filters, mid, strides, cardinality, channels, name, dtype, sync):
    """A basic (two 3×3) or bottleneck (1×1, grouped 3×3, 1×1 with `mid` channels) unit, added to its
    shortcut (a projection when the shape changes), then ReLU."""
    shortcut = x
    if strides != 1 or channels != filters:
        shortcut = conv_bn(x, filters, 1, strides, f"{name}_shortcut", dtype, activation=None, synchronized_bn=sync)
    if block == "basic":
        h = conv_bn(x, filters, 3, strides, f"{name}_conv_a", dtype, synchronized_bn=sync)
        h = conv_bn(h, filters, 3, 1, f"{name}_conv_b", dtype, activation=None, synchronized_bn=sync)
    else:
        h = conv_bn(x, mid, 1, 1, f"{name}_conv_a", dtype, synchronized_bn=sync)
        h = conv_bn(h, mid, 3, strides, f"{name}_conv_b", dtype, num_fibers=cardinality, synchronized_bn=sync)
        h = conv_bn(h, filters, 1, 1, f"{name}_conv_c", dtype, activation=None, synchronized_bn=sync)
    x = keras.layers.Add(name=f"{name}_add", dtype=dtype)([h, shortcut])
    return keras.layers.ReLU(name=f"{name}_relu", dtype=dtype)(x)
