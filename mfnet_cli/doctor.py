"""`mfnet-doctor`: `mfnet_keras.doctor.diagnose`, whether the input pipeline can feed a training step here."""

import argparse
import json
import sys

from mfnet_cli.quiet import add_verbose_argument, fail, import_tensorflow


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="mfnet-doctor",
        description="Measure the training input pipeline on this machine: clips/s per core, the stage that "
        "bounds it, and the cores an accelerator's step rate needs.",
    )
    parser.add_argument("records", help="glob of training TFRecords (quote it)")
    parser.add_argument("--model", help="a preset name, preset folder or .keras file: also time its training step")
    parser.add_argument("--clip-length", type=int, help="frames per clip (default: the model's, else 16)")
    parser.add_argument("--crop-size", type=int, help="clip height and width (default: the model's, else 224)")
    parser.add_argument("--batch-size", type=int, default=8, help="clips per training step (default: 8)")
    parser.add_argument("--step-rate", type=float, help="an accelerator's training steps per second to feed")
    parser.add_argument("--seconds", type=float, default=6.0, help="timing of the whole pipeline (default: 6)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    for name in ("clip_length", "crop_size", "batch_size", "step_rate", "seconds"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name.replace('_', '-')} must be > 0, got {value:g}")
    return args


def main(argv=None):
    args = parse_args(argv)
    tf = import_tensorflow(args.verbose)
    from mfnet_keras.doctor import diagnose, format_report
    from mfnet_keras.models import PresetError, VideoClassifier, load_model

    try:
        model = load_model(args.model) if args.model else None
        sizes = model.preprocessor if model is not None else None
        clip_length = args.clip_length or (sizes.clip_length if sizes else 16)
        crop_size = args.crop_size or (sizes.crop_size if sizes else 224)
        if model is not None and clip_length != sizes.clip_length:
            if args.model.endswith(".keras"):
                raise ValueError(f"{args.model} takes clips of {sizes.clip_length} frames, not {clip_length}")
            model = VideoClassifier.from_preset(args.model, load_weights=False, clip_length=clip_length)
        report = diagnose(args.records, model, clip_length, crop_size, args.batch_size, args.step_rate, args.seconds)
    except (ValueError, PresetError, OSError, tf.errors.OpError) as error:
        return fail(error, 2)
    print(json.dumps(report) if args.json else "\n".join(format_report(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
