"""Classifies video files with any exported model, a `.keras` classifier or a preset folder.

    mfnet-predict VIDEO [VIDEO ...] --model PATH [--clips 10] [--top-k 5] [--json]
    mfnet-predict LONG_VIDEO --model PATH --timeline 2
    mfnet-predict --stream SOURCE --model PATH [--stride N] [--smooth K] [--overlay OUT.mp4]

`--model` is chosen by what the path is: a SavedModel folder, a `.tflite`,
`.onnx` or OpenVINO `.xml` file (or the folder `export --format` wrote), a
`.keras` file or a preset folder. Each carries its class names and
preprocessing: nothing else is read.
Decodes each video with PyAV, samples `--clips` uniformly spaced clips over
the whole video (short side resized, centre crop), averages their softmax and
prints the top-k classes. `--timeline S` also prints the prediction of every
S-second window. A file that cannot be read gets one error line; the others are
still processed, and the exit code is then 1. A truncated or partly corrupt
video is classified from the frames that decode, with a warning line.

`--stream` classifies a camera (`0`, `/dev/video0`), an `rtsp://` or
`http(s)://` stream or a long file as it decodes (see `mfnet_keras.streaming`):
one JSON line per window of the clip's span, every `--stride` frames, with the
softmax averaged over the last `--smooth` windows; `--overlay` also writes the
video with the current label and a probability bar on every frame. A summary
line on stderr says how many frames were processed, how fast, and how many a
live source dropped because the model fell behind. Ctrl-C stops it cleanly.
"""

import argparse
import json
import os
import sys

import mfnet_keras  # noqa: F401  (TensorFlow options, before TensorFlow loads)
from mfnet_keras.inference import (
    RUNTIME_CHOICES,
    Classifier,
    RuntimeMissing,
    runtime_artefact,
    sample_clips,
    top_k,
)
from tfrecords_tools.quiet import add_verbose_argument, import_tensorflow


def predict_video(classifier, path, clips=10, k=5, timeline=None, explain=None):
    """`{"video", "runtime", "frames", "fps", "width", "height", "top_k", "timeline"?, "segments"?, "warning"?}`
    for one file.

    Frames are decoded at display geometry (`width` × `height`, square pixels).
    `timeline` (seconds, or a `timeline.TimelineOptions`) also classifies
    every window of that length as the video decodes and merges them into
    labelled segments (and a plot). `explain`, a path without extension, writes
    the Grad-CAM of the top class on the centre clip as `explain.explain.mp4`
    and `.png` (a Keras classifier only). A truncated or partly corrupt video is
    classified from the frames that decode, with the reason in `warning`; an
    unreadable one raises `VideoError`.
    """
    from mfnet_keras import timeline as timelines
    from tfrecords_tools.video import decode_video

    options = timelines.TimelineOptions(timeline) if isinstance(timeline, (int, float)) else timeline
    if options:
        video, windows = timelines.classify_windows(classifier, path, options.seconds, clips)
    else:
        video = decode_video(path, short_side=classifier.short_side, keep_partial=True)
    frames, names = video.frames, classifier.class_names
    whole = classifier.probabilities(sample_clips(frames, classifier.clip_length, classifier.frame_interval, clips))
    result = {
        "video": path,
        "runtime": classifier.runtime,
        "frames": len(frames),
        "fps": video.fps,
        "width": int(frames[0].shape[1]),
        "height": int(frames[0].shape[0]),
        "top_k": top_k(whole.mean(axis=0), names, k),
    }
    if video.problem:
        result["warning"] = video.problem
    if options:
        result["timeline"] = [
            {"start": w["start"], "end": w["end"], **top_k(w["probabilities"], names, 1)[0]} for w in windows
        ]
        result["segments"] = timelines.segments(windows, names, options.min_score, options.smooth)
        if options.plot:
            timelines.plot_timeline(windows, result["segments"], names, options.plot, os.path.basename(path))
            result["plot"] = options.plot
    if explain:
        result["explain"] = _explain(classifier, frames, explain, video.fps)
    return result


def _explain(classifier, frames, stem, fps):
    """Grad-CAM of the centre clip, written beside `stem`; what was explained and where it went."""
    from mfnet_keras.explain import explain_clip, write_explanation

    clip = sample_clips(frames, classifier.clip_length, classifier.frame_interval, 1)[0]
    explained = explain_clip(classifier.keras_model, clip)
    overlay, sheet = write_explanation(explained, stem, fps / classifier.frame_interval)
    return {
        "label": explained.label,
        "index": explained.index,
        "probability": explained.probability,
        "layer": explained.layer,
        "overlay": overlay,
        "sheet": sheet,
    }


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
    from tfrecords_tools.video import VideoError

    import_tensorflow(args.verbose)
    from mfnet_keras.models import PresetError

    try:
        classifier = Classifier(args.model, "keras" if args.explain else args.runtime)
    except RuntimeMissing as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except PresetError as error:  # a model file or preset that Keras or our checks refuse
        print(f"error: {error}", file=sys.stderr)
        return 1
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
    if args.explain and (args.stream or runtime_artefact(args.model) or _is_saved_model(args.model)):
        parser.error("--explain takes VIDEO files and a .keras file or preset folder (it reads the Keras model)")


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
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(stats.summary() + " (interrupted)", file=sys.stderr)
        return 130
    print(f"{stats.summary()}; runtime {classifier.runtime}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
