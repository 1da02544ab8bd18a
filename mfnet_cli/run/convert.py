"""`mfnet-convert` after parsing: `mfnet_keras.convert.convert`, then what was written."""

from mfnet_cli.quiet import fail
from mfnet_keras import models
from mfnet_keras.convert import convert


def run(parser, args):
    """Converts `args.src` into `args.out`; prints the model's size and preprocessing.

    Args:
        parser: the command's `ArgumentParser`, for usage errors.
        args: the parsed arguments.
    """
    if args.preset is not None and args.preset not in models.list_presets():
        parser.error(f"unknown preset {args.preset!r}; choose from {models.list_presets()}")
    try:
        model = convert(args.src, args.out, args.preset, args.num_classes, args.skip_classifier)
    except ValueError as error:  # a file that is not an MF-Net checkpoint (the reader's own errors are MFNetError)
        return fail(error, 2)
    pre = model.preprocessor
    print(f"wrote {args.out}: {model.name}, {len(model.weights)} weights, {model.count_params():,} parameters")
    print(
        f"input {pre.clip_length}x{pre.crop_size}x{pre.crop_size} (short side {pre.short_side}, "
        f"every {pre.frame_interval} frames), {model.num_classes} classes, "
        f"mean={[round(m, 4) for m in pre.mean]} std={[round(s, 4) for s in pre.std]}"
    )
    return 0
