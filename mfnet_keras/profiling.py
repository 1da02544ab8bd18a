"""Parameter and multiply-add counts, as the paper reports them, and the `mfnet-profile` command that prints
every registered architecture's beside the paper's figures.

    mfnet-profile [NAME ...]      (or python -m mfnet_cli.profile)
"""

import math

from mfnet_keras import models
from mfnet_keras.layers import walk_layers


def count_params(model, trainable_only=True):
    """Number of (trainable) parameters; the paper counts trainable ones, BN's γ/β included.

    Args:
        model: a built Keras model.
        trainable_only: False counts BatchNorm's moving statistics too.
    """
    weights = model.trainable_weights if trainable_only else model.weights
    return int(sum(math.prod(w.shape) for w in weights))


def count_flops(model):
    """Multiply-adds of every convolution and dense layer for one sample.

    This is what the paper calls FLOPs. Every layer with a `kernel` (convs of
    any rank and grouping, depthwise convs, dense) costs
    `prod(kernel.shape)` multiply-adds per output position: Keras stores
    kernels as `(*window, in_channels / groups, out_channels)` (depthwise:
    `(*window, channels, multiplier)`). The model must have been built on an
    input shape with no unknown dimension except the batch.

    Args:
        model: the model to count.

    Examples:
    >>> from mfnet_keras.models import VideoClassifier
    >>> model = VideoClassifier.from_preset("mfnet3d", load_weights=False)
    >>> count_params(model), round(count_flops(model) / 1e9, 2)
    (7996368, 11.05)
    """

    total = 0
    for layer in walk_layers(model):
        kernel = getattr(layer, "kernel", None)
        if kernel is None or not hasattr(layer, "compute_output_shape"):
            continue
        input_shape = layer.get_build_config()["input_shape"]
        output_shape = layer.compute_output_shape(input_shape)
        positions = output_shape[1:-1]
        if any(n is None for n in positions):
            raise ValueError(
                f"Cannot count FLOPs of layer {layer.name!r}: its output shape has unknown "
                f"dimensions. Build the model on a fixed input size. Received: output_shape={output_shape}"
            )
        total += math.prod(kernel.shape) * math.prod(positions)
    return int(total)


def profile_rows(names):
    """Yields (preset entry, params, flops) for each named architecture at the paper's input size.

    Both count the whole classifier: backbone and head, for one clip or image.

    Args:
        names: registered architecture names.
    """

    for name in names:
        model = models.VideoClassifier.from_preset(name, load_weights=False)
        yield models.get_preset(name), count_params(model), count_flops(model)
