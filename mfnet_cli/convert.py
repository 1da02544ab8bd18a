"""`mfnet-convert`: `mfnet_keras.convert.convert`, a released PyTorch checkpoint to a Keras preset folder."""

import argparse
import sys

from mfnet_cli.quiet import add_verbose_argument, fail, import_tensorflow


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="mfnet-convert",
        description="Convert a PyTorch MF-Net checkpoint (.pth, any PyTorch version) to a Keras preset folder. "
        "PyTorch is not needed; nothing in the file is executed.",
    )
    parser.add_argument("src", help="checkpoint, e.g. MFNet3D_Kinetics-400_72.8.pth")
    parser.add_argument("out", help="output: a preset folder, or NAME.keras, or NAME.weights.h5")
    parser.add_argument(
        "--preset", default=None, help="registered preset it holds (default: from the file name, else mfnet3d)"
    )
    parser.add_argument("--num-classes", type=int, help="classifier size (default: the checkpoint's)")
    parser.add_argument(
        "--skip-classifier", action="store_true", help="leave the classifier random (fine-tuning on other classes)"
    )
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    import_tensorflow(args.verbose)
    from mfnet_keras import models
    from mfnet_keras.checkpoints import pth_reader
    from mfnet_keras.convert import convert

    if args.preset is not None and args.preset not in models.list_presets():
        parser.error(f"unknown preset {args.preset!r}; choose from {models.list_presets()}")
    try:
        model = convert(args.src, args.out, args.preset, args.num_classes, args.skip_classifier)
    except (ValueError, pth_reader.UnsafeCheckpointError) as error:  # truncated, refused or not a checkpoint
        return fail(error, 2)
    pre = model.preprocessor
    print(f"wrote {args.out}: {model.name}, {len(model.weights)} weights, {model.count_params():,} parameters")
    print(
        f"input {pre.clip_length}x{pre.crop_size}x{pre.crop_size} (short side {pre.short_side}, "
        f"every {pre.frame_interval} frames), {model.num_classes} classes, "
        f"mean={[round(m, 4) for m in pre.mean]} std={[round(s, 4) for s in pre.std]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
