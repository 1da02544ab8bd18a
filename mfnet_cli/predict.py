"""`mfnet-predict`: `mfnet_keras.predict.predict_video` on video files (with `--timeline`, `--explain`), or
`mfnet_keras.streaming` on a live stream, with any exported model, `.keras` file or preset folder."""

import argparse
import os
import sys

from mfnet_cli.quiet import add_verbose_argument, launch

# `mfnet_keras.inference.RUNTIME_CHOICES`, written here so that `--help` loads no Keras (a test checks them).
RUNTIME_CHOICES = ("auto", "keras", "openvino")
EXPLAIN_USAGE = "--explain takes VIDEO files and a .keras file or preset folder (it reads the Keras model)"


def _parser():
    parser = argparse.ArgumentParser(
        prog="mfnet-predict",
        description="Classify video files or a live stream with an exported model (SavedModel, LiteRT, ONNX, "
        "OpenVINO), a .keras classifier or a preset folder.",
    )
    parser.add_argument("videos", nargs="*", metavar="VIDEO")
    parser.add_argument(
        "--model",
        required=True,
        help="a folder or file from mfnet_keras.export (SavedModel, .tflite, .onnx, .xml), "
        "a .keras classifier or a preset folder",
    )
    parser.add_argument(
        "--runtime",
        default="auto",
        choices=RUNTIME_CHOICES,
        help="for a .keras file or preset folder: auto (default) runs OpenVINO when installed, from an export "
        "cached on first use, else Keras",
    )
    parser.add_argument("--clips", type=int, default=10, help="clips sampled over each video (default: 10)")
    parser.add_argument("--top-k", type=int, default=5, help="classes to print (default: 5)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per video")
    parser.add_argument(
        "--output", metavar="DIR", help="where --timeline and --explain write their files (default: beside the video)"
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="also write where the evidence for the top class is (Grad-CAM over space and time) as "
        "VIDEO_NAME.explain.mp4 and .png (a .keras file or preset folder)",
    )
    timeline = parser.add_argument_group("long videos")
    timeline.add_argument(
        "--timeline",
        type=float,
        metavar="SECONDS",
        help="also classify every SECONDS-long window, merge the windows into labelled segments and plot them",
    )
    timeline.add_argument(
        "--min-score", type=float, default=0.0, help="windows whose top probability is lower join no segment"
    )
    timeline.add_argument(
        "--smooth",
        type=int,
        help="windows whose softmax is averaged (default: 1 with --timeline, 2 with --stream)",
    )
    stream = parser.add_argument_group("streaming")
    stream.add_argument("--stream", metavar="SOURCE", help="classify a camera (0, /dev/video0), a URL or a long file")
    stream.add_argument("--stride", type=int, help="frames between windows (default: the model's clip length)")
    stream.add_argument("--overlay", metavar="OUT.mp4", help="also write the video with the label drawn on")
    add_verbose_argument(parser)
    return parser


def main(argv=None):
    """`mfnet-predict`: parses `argv`, then runs the command; returns the exit code.

    Args:
        argv: the command's arguments (default: `sys.argv[1:]`).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    _check_arguments(parser, args)
    if not os.path.exists(args.model):
        print(f"error: --model {args.model} does not exist", file=sys.stderr)
        return 2
    return launch(parser, args, "predict")


def _check_arguments(parser, args):
    """Exits with one usage line (code 2) for options that do not go together."""
    if args.clips < 1 or args.top_k < 1 or (args.timeline is not None and args.timeline <= 0):
        parser.error("--clips and --top-k must be >= 1, --timeline > 0")
    if bool(args.videos) == bool(args.stream):
        parser.error("give either VIDEO files or --stream SOURCE")
    if (args.stride is not None and args.stride < 1) or (args.smooth is not None and args.smooth < 1):
        parser.error("--stride and --smooth must be >= 1")
    if not 0 <= args.min_score <= 1:
        parser.error("--min-score must be in [0, 1]")
    if (args.overlay or args.stride) and not args.stream:
        parser.error("--stride and --overlay go with --stream")
    if args.explain and args.stream:
        parser.error(EXPLAIN_USAGE)


if __name__ == "__main__":
    sys.exit(main())
