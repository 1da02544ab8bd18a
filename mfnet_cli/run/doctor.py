"""`mfnet-doctor` after parsing: the model (if any) at the asked clip size, then `mfnet_keras.doctor.diagnose`."""

import json

import tensorflow as tf

from mfnet_cli.quiet import fail
from mfnet_keras.doctor import diagnose, format_report
from mfnet_keras.models import VideoClassifier, load_model


def run(parser, args):
    """Prints the report on the records (as JSON with `--json`); 2 for records or a model it cannot use.

    Args:
        parser: the command's `ArgumentParser`, for usage errors.
        args: the parsed arguments.
    """
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
    except (ValueError, OSError, tf.errors.OpError) as error:
        return fail(error, 2)
    print(json.dumps(report) if args.json else "\n".join(format_report(report)))
    return 0
