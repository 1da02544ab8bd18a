"""Long videos as a timeline: fixed windows classified while the video still decodes, merged into
labelled segments, and drawn as a PNG.

    mfnet-predict LONG_VIDEO --model PATH --timeline 2 [--smooth 3] [--min-score 0.5]

A thread decodes the video (short side resized to the model's) into a list
that the main thread reads as it grows: each window of `seconds` is sampled
into up to `clips` clips as soon as its frames are in, and clips of several
windows go to the model in batches (`batch_size`), on whatever runtime the
`inference.Classifier` runs. `segments` then merges consecutive windows whose
top class (after averaging the probabilities of `smooth` windows) is the same.
"""

import dataclasses
import os
import sys
import threading
import time

import av
import numpy as np
from tqdm import tqdm

from mfnet_keras.defaults import clip_span
from mfnet_keras.files import remove_empty_partial, save_figure
from mfnet_keras.inference import sample_clips
from tfrecords_tools.video import VideoError, decode_video, error_text, stream_geometry


@dataclasses.dataclass
class TimelineOptions:
    """What `predict_video` does with a long video: windows of `seconds`, merged into segments (see
    `segments` for `min_score` and `smooth`), drawn into `plot` (a PNG path) when given.

    Attributes:
        seconds: each window's length.
        min_score: windows whose top probability is lower join no segment.
        smooth: windows whose softmax is averaged before the top class is taken.
        plot: the PNG to draw the timeline into (None: no plot).
    """

    seconds: float
    min_score: float = 0.0
    smooth: int = 1
    plot: str | None = None


class _Decoding(threading.Thread):
    """`decode_video` in a thread: `frames` grows as it goes; then `video` (or `error`) is set."""

    def __init__(self, path, short_side):
        super().__init__(daemon=True)
        self.path, self.short_side, self.frames = path, short_side, []
        self.video = self.error = None

    def run(self):
        try:
            self.video = decode_video(self.path, short_side=self.short_side, keep_partial=True, frames=self.frames)
        except (VideoError, OSError) as error:
            self.error = error


def source_fps(path):
    """The frame rate of a video file's first video stream (25 when it does not say), from its headers.

    Args:
        path: a video file.
    """
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise VideoError("no video stream")
            return stream_geometry(container.streams.video[0])[1]
    except av.error.FFmpegError as error:
        raise VideoError(f"not a video: {error_text(error, path)}") from None


class _Batches:
    """Clips of several windows classified `size` at a time; each window's softmax summed as they come."""

    def __init__(self, classifier, size):
        self.classifier, self.size, self.pending, self.sums, self.counts = classifier, size, [], {}, {}

    def add(self, window, clips):
        self.pending += [(window, clip) for clip in clips]
        while len(self.pending) >= self.size:
            self.flush(self.size)

    def flush(self, count=None):
        batch, self.pending = self.pending[:count], self.pending[count:] if count else []
        if not batch:
            return
        probabilities = self.classifier.probabilities(np.stack([clip for _, clip in batch]))
        for (window, _), p in zip(batch, probabilities):
            self.sums[window] = self.sums.get(window, 0.0) + p
            self.counts[window] = self.counts.get(window, 0) + 1

    def mean(self, window):
        return self.sums[window] / self.counts[window]


def classify_windows(classifier, path, seconds, clips=10, batch_size=8, progress=None):
    """`(video, windows)`: the decoded `Video` and `[{"start", "end", "probabilities"}]`, one per window of
    `seconds`, each the mean softmax of up to `clips` clips spread over it. The video's last frames join
    the window before them when they are fewer than a window or a clip's span (a clip sampled from them
    would repeat frames, and a stray last window would split the last segment). `progress`: a tqdm bar
    (frames decoded, with their rate) on a terminal by default. Raises `VideoError` for an unreadable video.

    Args:
        classifier: an `inference.Classifier`.
        path: a video file.
        seconds: each window's length.
        clips: clips per window at most.
        batch_size: clips per forward pass.
        progress: a tqdm bar (None: none).
    """
    fps = source_fps(path)
    size, span = max(1, round(seconds * fps)), clip_span(classifier.clip_length, classifier.frame_interval)
    tail = min(size, span)  # a video's last frames, when fewer, join the window before them
    decoding, batches, windows = _Decoding(path, classifier.short_side), _Batches(classifier, batch_size), []
    begin = 0
    decoding.start()
    bar = tqdm(
        unit="frame", desc=os.path.basename(path), disable=None if progress is None else not progress, file=sys.stderr
    )
    with bar:
        while True:
            done = not decoding.is_alive()  # read before the frames: once done, every frame is in the list
            frames = decoding.frames[:]
            bar.update(len(frames) - bar.n)
            while begin < len(frames):
                # A window waits until the frames after it show whether a tail too short for a clip follows.
                whole = begin + size + tail <= len(frames)
                if not (whole or done):
                    break
                end = begin + size if whole else len(frames)
                part = frames[begin:end]
                count = max(1, min(clips, len(part) // max(span, 1)))
                batches.add(len(windows), sample_clips(part, classifier.clip_length, classifier.frame_interval, count))
                windows.append({"start": begin / fps, "end": end / fps})
                begin = end
            if done:
                break
            time.sleep(0.01)
    if decoding.error is not None:
        raise decoding.error
    if not decoding.frames:
        raise VideoError("empty: the video stream has no frames")
    batches.flush()
    for i, window in enumerate(windows):
        window["probabilities"] = batches.mean(i)
    return decoding.video, windows


def smoothed(probabilities, smooth):
    """Each row averaged with its neighbours: a centred window of `smooth` rows (shorter at the ends).

    Args:
        probabilities: `[windows, classes]`.
        smooth: the window's rows (1: unchanged).

    Examples:
    >>> smoothed(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]), 3).round(2).tolist()
    [[0.5, 0.5], [0.67, 0.33], [0.5, 0.5]]
    """
    if smooth <= 1:
        return np.asarray(probabilities, float)
    cumulative = np.cumsum(np.pad(np.asarray(probabilities, float), ((1, 0), (0, 0))), axis=0)
    n, before = len(probabilities), (smooth - 1) // 2
    low = np.clip(np.arange(n) - before, 0, n)
    high = np.clip(np.arange(n) - before + smooth, 0, n)
    return (cumulative[high] - cumulative[low]) / (high - low)[:, None]


def segments(windows, class_names, min_score=0.0, smooth=1):
    """Consecutive windows with the same top class merged: `[{"start", "end", "label", "index", "score"}]`,
    `score` the class's mean (smoothed) probability over them. A window whose top probability is below
    `min_score` belongs to no segment.

    Args:
        windows: `[{"start", "end", "probabilities"}]` from `classify_windows`.
        class_names: the class names.
        min_score: windows whose top probability is lower join no segment.
        smooth: windows averaged (`smoothed`) before the top class is taken.

    Examples:
    >>> windows = [{"start": t, "end": t + 1, "probabilities": p} for t, p in enumerate([[0.9, 0.1], [0.8, 0.2],
    ...            [0.3, 0.7], [0.55, 0.45]])]
    >>> [(s["start"], s["end"], s["label"]) for s in segments(windows, ["a", "b"], min_score=0.6)]
    [(0, 2, 'a'), (2, 3, 'b')]
    """
    scores = smoothed([w["probabilities"] for w in windows], smooth)
    merged = []
    for window, row in zip(windows, scores):
        best = int(np.argmax(row))
        if row[best] < min_score:
            merged.append(None)
            continue
        last = merged[-1] if merged else None
        if last is not None and last["index"] == best:
            last["end"], last["scores"] = window["end"], last["scores"] + [row[best]]
        else:
            merged.append({"start": window["start"], "end": window["end"], "index": best, "scores": [row[best]]})
    return [
        {
            "start": s["start"],
            "end": s["end"],
            "label": class_names[s["index"]],
            "index": s["index"],
            "score": float(np.mean(s["scores"])),
        }
        for s in merged
        if s is not None
    ]


def plot_timeline(windows, found, class_names, path, title=""):
    """A PNG of the segments (a coloured bar per class) over the probability of each class they name.

    Args:
        windows: the windows from `classify_windows`.
        found: the segments from `segments`.
        class_names: the class names.
        path: the PNG to write.
        title: the chart's title.
    """
    shown = sorted({s["index"] for s in found}) or [int(np.argmax(windows[0]["probabilities"]))]
    colours = {c: f"C{i % 10}" for i, c in enumerate(shown)}
    # Only when a plot is asked for; no pyplot: leaves the caller's backend alone.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.2))
    bars, lines = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 2]})
    for s in found:
        bars.broken_barh([(s["start"], s["end"] - s["start"])], (0, 1), color=colours[s["index"]])
        bars.text((s["start"] + s["end"]) / 2, 0.5, s["label"], ha="center", va="center", fontsize=8, clip_on=True)
    bars.set_yticks([])
    bars.set_title(title, fontsize=9, loc="left")
    middles = [(w["start"] + w["end"]) / 2 for w in windows]
    for c in shown:
        lines.plot(middles, [w["probabilities"][c] for w in windows], color=colours[c], label=class_names[c])
    lines.set_ylim(0, 1)
    lines.set_xlabel("seconds")
    lines.set_ylabel("probability")
    lines.legend(fontsize=7, loc="upper right", ncol=min(4, len(shown)))
    save_figure(fig, path)
    remove_empty_partial(os.path.dirname(os.path.abspath(path)))
