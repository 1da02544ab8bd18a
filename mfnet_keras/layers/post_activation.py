"""The post-activation conv and max-pool that the backbones' stems and the baseline blocks (ResNet,
ResNeXt, MobileNet-v2) are made of, and the BatchNorm every block uses."""

import keras

from mfnet_keras.layers.fiber_conv import FiberConv
from mfnet_keras.layers.normalization import BatchNormalization
from mfnet_keras.layers.pooling import FrameMaxPooling

BN_EPSILON = 1e-5
# PyTorch's BatchNorm momentum 0.1 is Keras's 0.9 (weight of the old statistic).
BN_MOMENTUM = 0.9


def batch_norm(name, synchronized=False, dtype=None):
    """BatchNorm with the paper's (PyTorch default) epsilon and momentum.

    Args:
        name: the layer's name.
        synchronized: synchronise the batch statistics across replicas.
        dtype: the layer's dtype policy (None: the global one).
    """
    return BatchNormalization(
        epsilon=BN_EPSILON, momentum=BN_MOMENTUM, synchronized=synchronized, name=name, dtype=dtype
    )


def conv_bn(x, filters, kernel, strides, name, dtype, num_fibers=1, activation="relu", synchronized_bn=False):
    """Post-activation conv (symmetric `k // 2` padding) → BN → activation ("relu", "relu6" or None).

    Layers are named `{name}_conv`, `{name}_bn`, `{name}_{activation}`.

    The stems of every model and the blocks of the original ResNet, ResNeXt
    and MobileNet-v2 have this layout.

    Args:
        x: the input tensor (a functional-model tensor).
        filters: output channels.
        kernel: the kernel size (an int, or one per spatial dimension).
        strides: the strides.
        name: the prefix of the three layers' names.
        dtype: the layers' dtype policy.
        num_fibers: groups of the convolution (1: dense).
        activation: `"relu"`, `"relu6"` or None.
        synchronized_bn: synchronise the BatchNorm statistics across replicas.
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

    Args:
        x: the stem's output (after its ReLU).
        dtype: the layer's dtype policy.
    """
    if len(x.shape) == 5:  # a 2D pool of every frame: a built-in op of every runtime (LiteRT has no 3D pool)
        x = keras.layers.ZeroPadding3D(((0, 0), (1, 1), (1, 1)), name="pool1_pad", dtype=dtype)(x)
        return FrameMaxPooling(3, strides=2, name="pool1", dtype=dtype)(x)
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad", dtype=dtype)(x)
    return keras.layers.MaxPooling2D(3, strides=2, name="pool1", dtype=dtype)(x)
