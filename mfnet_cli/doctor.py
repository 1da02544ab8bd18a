"""`mfnet-doctor`: `mfnet_keras.doctor.diagnose`, whether the input pipeline can feed a training step here."""

import argparse
import sys

from mfnet_cli.quiet import add_verbose_argument, launch


def main(argv=None):
    """`mfnet-doctor`: parses `argv`, then runs the command; returns the exit code.

    Args:
        argv: the command's arguments (default: `sys.argv[1:]`).
    """
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
    return launch(parser, args, "doctor")


if __name__ == "__main__":
    sys.exit(main())
