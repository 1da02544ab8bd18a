"""`mfnet-predict` after parsing: a `Classifier` for `--model`, then each video (`predict_video`) or the stream
(`stream_windows`), printed as text or JSON lines."""

import json
import os
import sys

from mfnet_cli.predict import EXPLAIN_USAGE
from mfnet_keras.inference import Classifier, runtime_artefact
from mfnet_keras.predict import predict_video
from mfnet_keras.streaming import StreamStats, stream_windows
from mfnet_keras.timeline import TimelineOptions
from tfrecords_tools.video import VideoError


def run(parser, args):
    """Classifies `args.videos` (1 if any cannot be read, the others still printed) or `args.stream`.

    Args:
        parser: the command's `ArgumentParser`, for usage errors.
        args: the parsed arguments.
    """
    if args.explain and (runtime_artefact(args.model) or _is_saved_model(args.model)):
        parser.error(EXPLAIN_USAGE)
    classifier = Classifier(args.model, "keras" if args.explain else args.runtime)
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
    return TimelineOptions(args.timeline, args.min_score, args.smooth or 1, stem + ".timeline.png")


def _stream(classifier, args):
    """`--stream`: one JSON line per window, the summary on stderr; 130 on Ctrl-C (a bad source is a
    `StreamError`, exit code 2 in `mfnet_cli.run.command`)."""
    stats = StreamStats()
    try:
        for window in stream_windows(
            classifier, args.stream, args.stride, args.smooth or 2, args.top_k, args.overlay, stats
        ):
            print(json.dumps({**window, **({"dropped": stats.dropped} if stats.live else {})}), flush=True)
    except KeyboardInterrupt:
        print(stats.summary() + " (interrupted)", file=sys.stderr)
        return 130
    print(f"{stats.summary()}; runtime {classifier.runtime}", file=sys.stderr)
    return 0
