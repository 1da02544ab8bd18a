"""Prints every registered model's parameters and multiply-adds beside the paper's figures.

python -m mfnet_keras.profile [NAME ...]
"""

import argparse
import sys

import mfnet_keras  # noqa: F401  (sets TensorFlow options before it loads)
from tfrecords_tools.quiet import add_verbose_argument, import_tensorflow


def profile_rows(names):
    """Yields (spec, params, flops) for each named model at the paper's input size."""
    from mfnet_keras import models, profiling

    for name in names:
        spec = models.get_spec(name)
        model = models.build(name)
        yield spec, profiling.count_params(model), profiling.count_flops(model)


def _fmt(value):
    return f"{value / 1e9:.2f} G" if value >= 1e9 else f"{value / 1e6:.1f} M"


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m mfnet_keras.profile",
        description="Parameters and multiply-adds (the paper's FLOPs) of the registered models, beside the paper's.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="models to profile (default: every registered model)")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    import_tensorflow(args.verbose)
    from mfnet_keras import models

    for name in args.names:
        if name not in models.list_models():
            parser.error(f"unknown model {name!r}; choose from {models.list_models()}")
    header = f"{'model':<30}{'input':>16}{'params':>12}{'paper':>9}{'ratio':>7}{'FLOPs':>11}{'paper':>10}{'ratio':>7}"
    print(header)
    print("-" * len(header))
    for spec, params, flops in profile_rows(args.names or models.list_models()):
        shape = "x".join(str(d) for d in spec.input_shape[:-1])
        print(
            f"{spec.name:<30}{shape:>16}{params:>12,}{_fmt(spec.paper_params):>9}{params / spec.paper_params:>7.3f}"
            f"{_fmt(flops):>11}{_fmt(spec.paper_flops):>10}{flops / spec.paper_flops:>7.3f}"
        )
        if spec.note:
            print(f"{'':<4}{spec.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
