"""Converts a released PyTorch MF-Net checkpoint into a Keras preset folder, without PyTorch.

    mfnet-convert SRC.pth OUT_DIR [--preset NAME] [--num-classes N]
    convert(src, out, preset=None, num_classes=None)  # the same, from Python

OUT_DIR becomes a preset folder (`config.json`, `model.weights.h5`,
`task.json`, `task.weights.h5`, `preprocessor.json`, `metadata.json`) that
`VideoClassifier.from_preset(OUT_DIR)` loads and that can be uploaded to
Hugging Face or Kaggle as it is. OUT may also end in `.keras` (the classifier)
or `.weights.h5` (its weights only). The preprocessing and class names are
those of the release recognised by the file name, or of `--preset NAME`.
"""

import argparse
import sys

import mfnet_keras  # noqa: F401  (sets TensorFlow options before it loads)
from tfrecords_tools.quiet import add_verbose_argument, import_tensorflow


def convert(src, out, preset=None, num_classes=None, skip_classifier=False):
    """Loads the checkpoint `src` into its `VideoClassifier` and writes it to `out`; returns the classifier."""
    from mfnet_keras.files import save_model
    from mfnet_keras.models import VideoClassifier, preset_utils

    model = preset_utils.classifier_from_checkpoint(
        VideoClassifier, src, release=preset, num_classes=num_classes, skip_classifier=skip_classifier
    )
    if out.endswith((".keras", ".weights.h5")):
        save_model(model, out)
    else:
        model.save_to_preset(out)
    return model


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

    if args.preset is not None and args.preset not in models.list_presets():
        parser.error(f"unknown preset {args.preset!r}; choose from {models.list_presets()}")
    try:
        model = convert(args.src, args.out, args.preset, args.num_classes, args.skip_classifier)
    except (ValueError, pth_reader.UnsafeCheckpointError) as error:  # truncated, refused or not a checkpoint
        print(f"error: {error}", file=sys.stderr)
        return 2
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
