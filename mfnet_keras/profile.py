"""Prints every registered architecture's parameters and multiply-adds beside the paper's figures.

python -m mfnet_keras.profile [NAME ...]
"""

import argparse
import sys

import mfnet_keras  # noqa: F401  (sets TensorFlow options before it loads)
from tfrecords_tools.quiet import add_verbose_argument, import_tensorflow


def profile_rows(names):
    """Yields (preset entry, params, flops) for each named architecture at the paper's input size.

    Both count the whole classifier: backbone and head, for one clip or image.
    """
    from mfnet_keras import models, profiling

    for name in names:
        model = models.VideoClassifier.from_preset(name, load_weights=False)
        yield models.get_preset(name), profiling.count_params(model), profiling.count_flops(model)


def _fmt(value):
    return f"{value / 1e9:.2f} G" if value >= 1e9 else f"{value / 1e6:.1f} M"


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m mfnet_keras.profile",
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
