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
from mfnet_keras.defaults import clip_span
from mfnet_keras.inference import RUNTIME_CHOICES, Classifier, RuntimeMissing, sample_clips, top_k
from tfrecords_tools.quiet import add_verbose_argument, import_tensorflow


def predict_video(classifier, path, clips=10, k=5, timeline=None):
    """`{"video", "runtime", "frames", "fps", "width", "height", "top_k", "timeline"?, "warning"?}` for one file.

    Frames are decoded at display geometry (`width` × `height`, square pixels).
    A truncated or partly corrupt video is classified from the frames that
    decode, with the reason in `warning`; an unreadable one raises `VideoError`.
    """
    from tfrecords_tools.video import decode_video

    video = decode_video(path, short_side=classifier.short_side, keep_partial=True)
    frames, fps = video.frames, video.fps
    span = clip_span(classifier.clip_length, classifier.frame_interval)

    def mean_probabilities(part, count):
        """Average softmax of `count` clips spread over the frames `part`."""
        batch = sample_clips(part, classifier.clip_length, classifier.frame_interval, count)
        return classifier.probabilities(batch).mean(axis=0)

    result = {
        "video": path,
        "runtime": classifier.runtime,
        "frames": len(frames),
        "fps": fps,
        "width": int(frames[0].shape[1]),
        "height": int(frames[0].shape[0]),
        "top_k": top_k(mean_probabilities(frames, clips), classifier.class_names, k),
    }
    if video.problem:
        result["warning"] = video.problem
    if timeline:
        window = max(1, round(timeline * fps))
        windows = []
        for begin in range(0, len(frames), window):
            part = frames[begin : begin + window]
            count = max(1, min(clips, len(part) // max(span, 1)))
            best = top_k(mean_probabilities(part, count), classifier.class_names, 1)[0]
            windows.append({"start": begin / fps, "end": min(begin + window, len(frames)) / fps, **best})
        result["timeline"] = windows
    return result


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
    parser.add_argument("--timeline", type=float, metavar="SECONDS", help="also predict every SECONDS-long window")
    parser.add_argument("--json", action="store_true", help="print one JSON object per video")
    stream = parser.add_argument_group("streaming")
    stream.add_argument("--stream", metavar="SOURCE", help="classify a camera (0, /dev/video0), a URL or a long file")
    stream.add_argument("--stride", type=int, help="frames between windows (default: the model's clip length)")
    stream.add_argument("--smooth", type=int, default=2, help="windows whose softmax is averaged (default: 2)")
    stream.add_argument("--overlay", metavar="OUT.mp4", help="also write the video with the label drawn on")
    add_verbose_argument(parser)
    return parser


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.clips < 1 or args.top_k < 1 or (args.timeline is not None and args.timeline <= 0):
        parser.error("--clips and --top-k must be >= 1, --timeline > 0")
    if bool(args.videos) == bool(args.stream):
        parser.error("give either VIDEO files or --stream SOURCE")
    if (args.stride is not None and args.stride < 1) or args.smooth < 1:
        parser.error("--stride and --smooth must be >= 1")
    if (args.overlay or args.stride) and not args.stream:
        parser.error("--stride and --overlay go with --stream")
    if not os.path.exists(args.model):
        print(f"error: --model {args.model} does not exist", file=sys.stderr)
        return 2
    from tfrecords_tools.video import VideoError

    import_tensorflow(args.verbose)
    from mfnet_keras.models import PresetError

    try:
        classifier = Classifier(args.model, args.runtime)
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
            result = predict_video(classifier, path, args.clips, args.top_k, args.timeline)
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
            continue
        print(f"{path} ({result['frames']} frames at {result['fps']:.1f} fps)")
        for rank, item in enumerate(result["top_k"], 1):
            print(f"  {rank}. {item['label']:<30} {100 * item['probability']:6.2f}%")
        for window in result.get("timeline", []):
            print(
                f"  {window['start']:7.1f}-{window['end']:6.1f} s  {window['label']:<30} {100 * window['probability']:6.2f}%"
            )
    return 1 if failed else 0


def _stream(classifier, args):
    """`--stream`: one JSON line per window, the summary on stderr; 2 for a bad source, 130 on Ctrl-C."""
    from mfnet_keras.streaming import StreamError, StreamStats, stream_windows

    stats = StreamStats()
    try:
        for window in stream_windows(
            classifier, args.stream, args.stride, args.smooth, args.top_k, args.overlay, stats
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
