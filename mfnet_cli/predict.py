"""`mfnet-predict`: `mfnet_keras.predict.predict_video` on video files (with `--timeline`, `--explain`), or
`mfnet_keras.streaming` on a live stream, with any exported model, `.keras` file or preset folder."""

import argparse
import json
import os
import sys

from mfnet_cli.quiet import add_verbose_argument, fail, import_tensorflow

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
    parser = _parser()
    args = parser.parse_args(argv)
    _check_arguments(parser, args)
    if not os.path.exists(args.model):
        print(f"error: --model {args.model} does not exist", file=sys.stderr)
        return 2
    import_tensorflow(args.verbose)
    from mfnet_keras.inference import Classifier, RuntimeMissing, runtime_artefact
    from mfnet_keras.models import PresetError
    from mfnet_keras.predict import predict_video
    from tfrecords_tools.video import VideoError

    if args.explain and (runtime_artefact(args.model) or _is_saved_model(args.model)):
        parser.error(EXPLAIN_USAGE)

    try:
        classifier = Classifier(args.model, "keras" if args.explain else args.runtime)
    except RuntimeMissing as error:
        return fail(error, 2)
    except PresetError as error:  # a model file or preset that Keras or our checks refuse
        return fail(error)
    if args.stream:
        return _stream(classifier, args)
    failed = False
    for path in args.videos:
        try:
            if not os.path.isfile(path):
                raise VideoError("no such file")
            stem = _output_stem(args, path)
            timeline = _timeline_options(args, stem)
            result = predict_video(classifier, path, args.clips, args.top_k, timeline, args.explain and stem)
        except VideoError as error:
            failed = True
            if args.json:
                print(json.dumps({"video": path, "error": str(error)}))
            else:
                print(f"error: {path}: {error}", file=sys.stderr)
            continue
        if "warning" in result:
            print(f"warning: {path}: {result['warning']}; classified from the frames that decode", file=sys.stderr)
        if args.json:
            print(json.dumps(result))
        else:
            _print_result(result)
    return 1 if failed else 0


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


def _print_result(result):
    """One video's result as text: its top-k, then any windows, segments and written files."""
    path = result["video"]
    print(f"{path} ({result['frames']} frames at {result['fps']:.1f} fps)")
    for rank, item in enumerate(result["top_k"], 1):
        print(f"  {rank}. {item['label']:<30} {100 * item['probability']:6.2f}%")
    for window in result.get("timeline", []):
        print(
            f"  {window['start']:7.1f}-{window['end']:6.1f} s  {window['label']:<30} {100 * window['probability']:6.2f}%"
        )
    if "segments" in result:
        print("  segments:")
    for segment in result.get("segments", []):
        print(
            f"  {segment['start']:7.1f}-{segment['end']:6.1f} s  {segment['label']:<30} {100 * segment['score']:6.2f}%"
        )
    if "plot" in result:
        print(f"  plot: {result['plot']}")
    if "explain" in result:
        print(f"  explained {result['explain']['label']}: {result['explain']['overlay']}, {result['explain']['sheet']}")


def _output_stem(args, path):
    """Where a video's plots and overlays go, less the suffix: `--output` or the video's folder, its name."""
    name = os.path.splitext(os.path.basename(path))[0]
    return os.path.join(args.output or os.path.dirname(os.path.abspath(path)), name)


def _is_saved_model(path):
    return os.path.isdir(path) and os.path.exists(os.path.join(path, "saved_model.pb"))


def _timeline_options(args, stem):
    """The `TimelineOptions` of `--timeline`, `--min-score` and `--smooth`, plotted at `stem`, or None."""
    if not args.timeline:
        return None
    from mfnet_keras.timeline import TimelineOptions

    return TimelineOptions(args.timeline, args.min_score, args.smooth or 1, stem + ".timeline.png")


def _stream(classifier, args):
    """`--stream`: one JSON line per window, the summary on stderr; 2 for a bad source, 130 on Ctrl-C."""
    from mfnet_keras.streaming import StreamError, StreamStats, stream_windows

    stats = StreamStats()
    try:
        for window in stream_windows(
            classifier, args.stream, args.stride, args.smooth or 2, args.top_k, args.overlay, stats
        ):
            print(json.dumps({**window, **({"dropped": stats.dropped} if stats.live else {})}), flush=True)
    except StreamError as error:
        return fail(error, 2)
    except KeyboardInterrupt:
        print(stats.summary() + " (interrupted)", file=sys.stderr)
        return 130
    print(f"{stats.summary()}; runtime {classifier.runtime}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
