"""Parameter and multiply-add counts, as the paper reports them, and the `mfnet-profile` command that prints
every registered architecture's beside the paper's figures.

    mfnet-profile [NAME ...]      (or python -m mfnet_keras.profiling)
"""

import argparse
import math
import sys

from tfrecords_tools.quiet import add_verbose_argument, import_tensorflow


def count_params(model, trainable_only=True):
    """Number of (trainable) parameters; the paper counts trainable ones, BN's γ/β included."""
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

    Examples:
    >>> from mfnet_keras.models import VideoClassifier
    >>> model = VideoClassifier.from_preset("mfnet3d", load_weights=False)
    >>> count_params(model), round(count_flops(model) / 1e9, 2)
    (7996368, 11.05)
    """
    from mfnet_keras.layers import walk_layers  # Keras loads here, not when `mfnet-profile --help` runs

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
    """
    from mfnet_keras import models

    for name in names:
        model = models.VideoClassifier.from_preset(name, load_weights=False)
        yield models.get_preset(name), count_params(model), count_flops(model)


def _fmt(value):
    return f"{value / 1e9:.2f} G" if value >= 1e9 else f"{value / 1e6:.1f} M"


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="mfnet-profile",
        description="Parameters and multiply-adds (the paper's FLOPs) of the registered architectures, beside the paper's.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="models to profile (default: every registered model)")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    import_tensorflow(args.verbose)
    from mfnet_keras import models

    architectures = models.list_presets(releases=False)
    for name in args.names:
        if name not in architectures:
            parser.error(f"unknown model {name!r}; choose from {architectures}")
    header = f"{'model':<30}{'input':>16}{'params':>12}{'paper':>9}{'ratio':>7}{'FLOPs':>11}{'paper':>10}{'ratio':>7}"
    print(header)
    print("-" * len(header))
    for entry, params, flops in profile_rows(args.names or architectures):
        shape = "x".join(str(d) for d in entry["input_shape"][:-1])
        paper = entry["paper"]
        print(
            f"{entry['name']:<30}{shape:>16}{params:>12,}{_fmt(paper['params']):>9}{params / paper['params']:>7.3f}"
            f"{_fmt(flops):>11}{_fmt(paper['flops']):>10}{flops / paper['flops']:>7.3f}"
        )
        if entry["note"]:
            print(f"{'':<4}{entry['note']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
