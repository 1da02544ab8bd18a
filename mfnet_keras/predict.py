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

import os

from mfnet_keras import timeline as timelines
from mfnet_keras.explain import explain_clip, write_explanation
from mfnet_keras.inference import (
    sample_clips,
    top_k,
)
from tfrecords_tools.video import decode_video


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

    Args:
        classifier: an `inference.Classifier` (any artefact and runtime).
        path: the video file.
        clips: clips sampled evenly over the video (or over each window).
        k: how many classes `top_k` lists.
        timeline: window length in seconds, or a `timeline.TimelineOptions`; None for one prediction.
        explain: the path stem of the Grad-CAM files; None for none.
    """
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
