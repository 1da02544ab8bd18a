"""Converts a released PyTorch MF-Net checkpoint into Keras weights, without PyTorch.

python -m mfnet_keras.convert SRC.pth OUT.weights.h5 --model mfnet3d --num-classes 400

OUT may end in `.weights.h5` (weights only) or `.keras` (model and weights).
The normalisation the weights expect is printed; set it as `data.mean` /
`data.std` when training or evaluating with them.
"""

import argparse
import sys

import mfnet_keras  # noqa: F401  (sets TensorFlow options before it loads)
from tfrecords_tools.quiet import add_verbose_argument, import_tensorflow


def convert(src, out, model_name, num_classes=None, skip_classifier=False):
    """Builds `model_name`, loads `src` into it and saves it to `out`; returns the model."""
    from mfnet_keras import models, weights
    from mfnet_keras.files import save_model

    state = weights.read_torch_state_dict(src)
    if num_classes is None and "classifier.weight" in state:
        num_classes = state["classifier.weight"].shape[0]
    model = models.build(model_name, num_classes=num_classes)
    weights.load_state_dict(model, state, skip_classifier=skip_classifier)
    save_model(model, out)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m mfnet_keras.convert",
        description="Convert a PyTorch MF-Net checkpoint (.pth, any PyTorch version) to Keras weights. "
        "PyTorch is not needed; nothing in the file is executed.",
    )
    parser.add_argument("src", help="checkpoint, e.g. MFNet3D_Kinetics-400_72.8.pth")
    parser.add_argument("out", help="output: NAME.weights.h5 or NAME.keras")
    parser.add_argument("--model", default=None, help="registered model (default: from the file name, else mfnet3d)")
    parser.add_argument("--num-classes", type=int, help="classifier size (default: the checkpoint's)")
    parser.add_argument(
        "--skip-classifier", action="store_true", help="leave the classifier random (fine-tuning on other classes)"
    )
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    import_tensorflow(args.verbose)
    from mfnet_keras import models, pth, weights

    if not args.out.endswith((".weights.h5", ".keras")):
        parser.error(f"OUT must end in .weights.h5 or .keras. Received: {args.out}")
    preset = weights.find_preset(args.src)
    model_name = args.model or (preset.model if preset else "mfnet3d")
    if model_name not in models.list_models():
        parser.error(f"unknown model {model_name!r}; choose from {models.list_models()}")
    try:
        model = convert(args.src, args.out, model_name, args.num_classes, args.skip_classifier)
    except (ValueError, pth.UnsafeCheckpointError) as error:  # truncated, refused or not a checkpoint
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {model_name}, {len(model.weights)} weights, {model.count_params():,} parameters")
    if preset:
        mean = ", ".join(f"{m:.4f}" for m in preset.mean)
        std = ", ".join(f"{s:.4f}" for s in preset.std)
        print(
            f"preset {preset.name}: input {'x'.join(map(str, preset.input_shape[:-1]))}, {preset.num_classes} classes"
        )
        print(f"normalisation for input in [0, 1]: data.mean=[{mean}] data.std=[{std}]")
        if preset.note:
            print(f"note: {preset.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
