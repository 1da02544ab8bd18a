"""MF-Net: the paper's multi-fiber network, 3D (video) and 2D (image) (Table 2)."""

import keras

from mfnet_keras.layers import MultiFiberUnit
from mfnet_keras.layers.post_activation import batch_norm, conv_bn, stem_max_pool
from mfnet_keras.models.backbone import Backbone, Pyramid, check_input_shape, constructor_args

# Stage names, as in the released checkpoints, and the paper's Table 2.
STAGE_NAMES = ("conv2", "conv3", "conv4", "conv5")
STAGE_FILTERS = (96, 192, 384, 768)
STAGE_DEPTHS = (3, 4, 6, 3)


def _stage_strides(index, three_d):
    """First-unit stride of stage `index`: temporal 2 in conv2 (3D only), spatial 2 after."""
    if three_d:
        return (2, 1, 1) if index == 0 else (1, 2, 2)
    return 1 if index == 0 else 2


@keras.saving.register_keras_serializable(package="mfnet_keras")
class MFNetBackbone(Backbone):
    """Multi-Fiber Network backbone (Chen et al., ECCV 2018, Table 2).

    The input rank picks the variant: `(T, H, W, 3)` builds the 3D MF-Net for
    clips, `(H, W, 3)` the 2D MF-Net for images. Any clip length and size
    works (e.g. 8×112×112). The output is the last feature map; `VideoClassifier`
    adds the pooling and the classifier (global average pooling replaces the
    paper's fixed 8×7×7 pool). Layer and weight names follow the released PyTorch
    checkpoints one to one: the Keras weight `conv2_B01/conv_m1/conv/kernel`
    is the checkpoint tensor `conv2.B01.conv_m1.conv.weight`.

    Stem: conv 3×5×5 (2D: 5×5), stride (1, 2, 2), `stem_filters` channels →
    BN → ReLU → max-pool 1×3×3 stride (1, 2, 2). Then four stages of
    `MultiFiberUnit`s (`stage_depths` units of `stage_filters` channels) and a
    final BN → ReLU. `pyramid_outputs` holds the outputs of conv2…conv5 as
    P2…P5.

    Args:
        input_shape: `(T, H, W, C)` or `(H, W, C)`; entries other than C may be None.
        num_fibers: fibers N per unit (paper: 16). Stem and stage widths must
            be divisible by it.
        multiplexer: include the multiplexers (False: the paper's ablation).
        stem_filters, stage_filters, stage_depths: the architecture table.
        synchronized_bn: synchronise BatchNorm across replicas.
        dtype: dtype policy of every layer (e.g. "mixed_float16").

    Examples:
    >>> backbone = MFNetBackbone()  # the paper's MF-Net 3D, 16×224×224 clips
    >>> backbone.output_shape, backbone.count_params()  # BatchNorm statistics included
    ((None, 8, 7, 7, 768), 7725520)
    >>> MFNetBackbone(input_shape=(224, 224, 3)).output_shape  # MF-Net 2D
    (None, 7, 7, 768)
    """

    def __init__(
        self,
        input_shape=(16, 224, 224, 3),
        num_fibers=16,
        multiplexer=True,
        stem_filters=16,
        stage_filters=STAGE_FILTERS,
        stage_depths=STAGE_DEPTHS,
        synchronized_bn=False,
        dtype=None,
        name="mfnet",
        **kwargs,
    ):
        init_args = constructor_args(locals())
        shape = check_input_shape(input_shape, (3, 4))
        stage_filters, stage_depths = tuple(stage_filters), tuple(stage_depths)
        if len(stage_filters) != len(STAGE_NAMES) or len(stage_depths) != len(STAGE_NAMES):
            raise ValueError(
                f"`stage_filters` and `stage_depths` need one entry per stage {STAGE_NAMES}. "
                f"Received: stage_filters={stage_filters}, stage_depths={stage_depths}"
            )
        if stem_filters % num_fibers:
            raise ValueError(
                f"`stem_filters` must be divisible by `num_fibers`={num_fibers} (the first unit splits "
                f"the stem's channels into fibers). Received: stem_filters={stem_filters}"
            )
        three_d = len(shape) == 4

        inputs = keras.Input(shape=shape, name="clip" if three_d else "image")
        x = conv_bn(
            inputs,
            stem_filters,
            (3, 5, 5) if three_d else 5,
            (1, 2, 2) if three_d else 2,
            "conv1",
            dtype,
            synchronized_bn=synchronized_bn,
        )
        x = stem_max_pool(x, dtype)
        pyramid = Pyramid()
        pyramid.downsample(2)
        pyramid.downsample(2)

        for index, (stage, filters, depth) in enumerate(zip(STAGE_NAMES, stage_filters, stage_depths)):
            pyramid.downsample(_stage_strides(index, three_d))
            for unit in range(depth):
                first = unit == 0
                x = MultiFiberUnit(
                    filters,
                    num_fibers=num_fibers,
                    strides=_stage_strides(index, three_d) if first else 1,
                    first_unit=first,
                    multiplexer=multiplexer,
                    synchronized_bn=synchronized_bn,
                    name=f"{stage}_B{unit + 1:02d}",
                    dtype=dtype,
                )(x)
            pyramid.record(x)
        x = batch_norm("tail_bn", synchronized_bn, dtype=dtype)(x)
        x = keras.layers.ReLU(name="tail_relu", dtype=dtype)(x)
        pyramid.record(x)
        self._init_model(inputs, x, pyramid, name, init_args, **kwargs)
