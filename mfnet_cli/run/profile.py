"""`mfnet-profile` after parsing: `mfnet_keras.profiling.profile_rows` as a table beside the paper's figures."""

from mfnet_keras import models
from mfnet_keras.profiling import profile_rows


def _fmt(value):
    return f"{value / 1e9:.2f} G" if value >= 1e9 else f"{value / 1e6:.1f} M"


def run(parser, args):
    """Prints the table of `args.names` (every registered architecture when none is given).

    Args:
        parser: the command's `ArgumentParser`, for usage errors.
        args: the parsed arguments.
    """
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
