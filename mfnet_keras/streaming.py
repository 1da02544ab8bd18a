"""Live and streaming prediction: classify a camera, a network stream or a long file as it decodes.

    mfnet-predict --stream SOURCE --model PATH [--stride N] [--smooth K] [--overlay OUT.mp4]
    for window in stream_windows(Classifier(PATH), SOURCE): ...  # the same, from Python

SOURCE is a camera (`0` or `/dev/video0`), an `rtsp://` / `http(s)://` stream
or a video file. A thread decodes frames (short side resized to the model's)
into a queue; the main loop keeps a ring buffer of one clip's span, classifies
it every `stride` frames, averages the softmax of the last `smooth` windows and
yields one window at a time. A live source never waits for the model: when the
queue is full its oldest frame is dropped and counted. A file is read as fast
as the model takes it, and nothing is dropped. `overlay` writes the video with
the current label and a probability bar drawn on every frame.
"""

import collections
import contextlib
import dataclasses
import os
import queue
import re
import sys
import threading
import time
from fractions import Fraction

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mfnet_keras.defaults import clip_span
from mfnet_keras.errors import MFNetError
from mfnet_keras.files import PARTIAL, remove_empty_partial
from mfnet_keras.inference import top_k
from tfrecords_tools.video import error_text, frame_image, stream_geometry

QUEUE_CLIPS = 2  # a live source's queue holds this many clip spans of frames before it drops the oldest


class StreamError(MFNetError):
    """A source that cannot be opened or read, or an overlay that cannot be written: one line."""


@dataclasses.dataclass
class StreamStats:
    """What a stream met: frames decoded and dropped, windows classified, wall time, the source's rate.

    Attributes:
        frames: frames decoded.
        dropped: frames dropped because classifying fell behind a live source.
        windows: windows classified.
        seconds: wall time so far.
        fps: the source's frame rate.
        live: the source is a camera or a live stream (frames are dropped rather than queued).
    """

    frames: int = 0
    dropped: int = 0
    windows: int = 0
    seconds: float = 0.0
    fps: float = 0.0
    live: bool = False

    def summary(self):
        rate = self.frames / self.seconds if self.seconds else 0.0
        verdict = "keeps up with real time" if rate >= self.fps else "slower than real time"
        return (
            f"stream: {self.frames} frames, {self.windows} windows, {self.dropped} dropped; "
            f"{rate:.1f} frames/s processed, source {self.fps:.1f} fps ({verdict})"
        )


def open_source(source):
    """`(container, live)` for a camera index or device, a URL or a video file.

    Args:
        source: a camera index (`"0"`) or device (`/dev/video0`), a URL or a video file.
    """
    if re.fullmatch(r"\d+", str(source)):
        source = f"/dev/video{source}"
    camera = str(source).startswith("/dev/video")
    live = camera or "://" in str(source)
    if not live and not os.path.isfile(source):
        raise StreamError(f"{source}: no such file")
    try:
        container = av.open(source, format="v4l2" if camera else None, timeout=10 if live else None)
    except (av.error.FFmpegError, OSError) as error:
        raise StreamError(f"cannot open {source}: {error_text(error, source)}") from None
    if not container.streams.video:
        container.close()
        raise StreamError(f"{source}: no video stream")
    return container, live


class _Reader(threading.Thread):
    """Decodes a source into a queue of `(seconds, model frame, full frame or None)`; None marks the end."""

    def __init__(self, container, live, short_side, keep_full, capacity):
        super().__init__(daemon=True)
        self.container, self.live, self.short_side, self.keep_full = container, live, short_side, keep_full
        self.stream = container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.sar, self.fps = stream_geometry(self.stream)
        self.frames = queue.Queue(capacity)
        self.dropped, self.error, self.stopping = 0, None, threading.Event()

    def run(self):
        first = None
        try:
            for index, frame in enumerate(self.container.decode(self.stream)):
                if self.stopping.is_set():
                    break
                seconds = frame.time if frame.time is not None else index / self.fps
                first = seconds if first is None else first
                full = frame_image(frame, self.sar) if self.keep_full else None
                self._put((seconds - first, frame_image(frame, self.sar, self.short_side), full))
        except av.error.FFmpegError as error:
            self.error = str(error)
        finally:
            self._put(None, block=True)

    def _put(self, item, block=None):
        """Blocks for a file; for a live source (and not the end mark) drops the oldest frame when full."""
        while True:
            try:
                self.frames.put(item, block=block if block is not None else not self.live, timeout=0.5)
                return
            except queue.Full:
                if self.stopping.is_set():
                    return
                if self.live and item is not None:
                    try:
                        self.frames.get_nowait()
                        self.dropped += 1
                    except queue.Empty:
                        pass


class Overlay:
    """Writes frames with the current label and a probability bar (H.264, the source's frame rate).

    The video is written under `.partial/` beside `path` and moved there by `close`, so a killed run
    leaves no half-written file at `path`; an interrupted one (Ctrl-C) still closes it.

    Args:
        path: the video to write (`.mp4`).
        fps: its frame rate.
    """

    def __init__(self, path, fps):
        self.path, self.fps, self.stream, self.font = path, fps, None, None
        self.partial = os.path.join(os.path.dirname(os.path.abspath(path)), PARTIAL, os.path.basename(path))
        try:
            os.makedirs(os.path.dirname(self.partial), exist_ok=True)
            self.container = av.open(self.partial, mode="w")
        except (av.error.FFmpegError, OSError) as error:
            raise StreamError(f"cannot write --overlay {path}: {error}") from None

    def write(self, image, label=None, probability=0.0):
        """Adds one frame, with `label` and its probability bar drawn on when given.

        Args:
            image: an RGB uint8 frame.
            label: the label to draw (None: the frame as it is).
            probability: the label's probability, drawn as a bar.
        """
        try:
            for packet in self._stream(image).encode(av.VideoFrame.from_ndarray(self._draw(image, label, probability))):
                self.container.mux(packet)
        except (av.error.FFmpegError, OSError) as error:
            raise StreamError(f"cannot write --overlay {self.path}: {error}") from None

    def _stream(self, image):
        """The output stream, added at the first frame: H.264 in yuv420p needs even sides, so odd ones
        gain a black row or column."""
        if self.stream is None:
            height, width = image.shape[:2]
            self.stream = self.container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001))
            self.stream.width, self.stream.height = width + width % 2, height + height % 2
            self.stream.pix_fmt = "yuv420p"
            self.font = ImageFont.load_default(size=max(10, self.stream.height // 18))
        return self.stream

    def _draw(self, image, label, probability):
        width, height = self.stream.width, self.stream.height
        canvas = Image.new("RGB", (width, height))
        canvas.paste(Image.fromarray(image))
        if label is not None:
            draw = ImageDraw.Draw(canvas)
            top = height - max(4, height // 24)
            draw.rectangle((0, top, width, height), fill=(40, 40, 40))
            draw.rectangle((0, top, round(width * probability), height), fill=(60, 200, 90))
            text = f"{label} {100 * probability:.0f}%"
            draw.text((4, top - 4), text, (255, 255, 255), self.font, "ld", stroke_width=2, stroke_fill=(0, 0, 0))
        return np.asarray(canvas)

    def close(self, keep=True):
        """Finishes the video and moves it to `path` (`keep=False`: removes it).

        Args:
            keep: move the video to `path` (False: remove it).
        """
        try:
            if keep and self.stream is not None:
                for packet in self.stream.encode():
                    self.container.mux(packet)
        finally:
            with contextlib.suppress(Exception) if not keep else contextlib.nullcontext():
                self.container.close()  # after a failed write it may fail again: the first error is the one to tell
            if keep and self.stream is not None:
                os.replace(self.partial, self.path)
            elif os.path.exists(self.partial):
                os.remove(self.partial)
            remove_empty_partial(os.path.dirname(os.path.dirname(self.partial)))


def stream_windows(classifier, source, stride=None, smooth=2, k=5, overlay=None, stats=None):
    """Yields `{"start", "end", "top_k"}` (seconds of the source; the softmax averaged over the last
    `smooth` windows) every `stride` frames (default: the clip length) once one clip's span has decoded.

    `classifier` is an `inference.Classifier`; `overlay` a path for the video with labels drawn on;
    `stats`, a `StreamStats`, is filled in as the stream goes (frames, dropped, windows, rate).

    Args:
        classifier: an `inference.Classifier`.
        source: a camera index or device, a URL or a video file (`open_source`).
        stride: frames between windows (default: the clip length).
        smooth: windows whose softmax is averaged.
        k: classes in each window's `top_k`.
        overlay: a path for the video with the labels drawn on (None: none).
        stats: a `StreamStats` that the stream updates as it goes.
    """
    stride = stride or classifier.clip_length
    span = clip_span(classifier.clip_length, classifier.frame_interval)
    stats = stats if stats is not None else StreamStats()
    container, stats.live = open_source(source)
    reader = _Reader(container, stats.live, classifier.short_side, overlay is not None, QUEUE_CLIPS * span)
    stats.fps = reader.fps
    try:
        writer = Overlay(overlay, reader.fps) if overlay else None
    except StreamError:
        container.close()
        raise
    ring, recent, since, shown = collections.deque(maxlen=span), collections.deque(maxlen=smooth), 0, None
    began = time.perf_counter()
    reader.start()
    try:
        while (item := reader.frames.get()) is not None:
            seconds, image, full = item
            ring.append((seconds, image))
            stats.frames, since = stats.frames + 1, since + 1
            if len(ring) == span and since >= stride:
                since = 0
                clip = np.stack([ring[i][1] for i in range(0, span, classifier.frame_interval)])
                recent.append(classifier.probabilities(clip[None])[0])
                best = top_k(np.mean(recent, axis=0), classifier.class_names, k)
                shown = best[0]
                stats.windows += 1
                yield {"start": round(ring[0][0], 3), "end": round(ring[-1][0] + 1 / reader.fps, 3), "top_k": best}
            if writer:
                writer.write(full, *((shown["label"], shown["probability"]) if shown else ()))
            stats.dropped, stats.seconds = reader.dropped, time.perf_counter() - began
        if reader.error and not stats.frames:
            raise StreamError(f"cannot read {source}: {reader.error}")
    finally:
        reader.stopping.set()
        deadline = time.perf_counter() + 5
        while reader.is_alive() and time.perf_counter() < deadline:  # unblock a reader waiting on a full queue
            try:
                reader.frames.get(timeout=0.1)
            except queue.Empty:
                pass
        container.close()
        if writer:
            writer.close(keep=sys.exc_info()[0] in (None, GeneratorExit, KeyboardInterrupt))
        stats.dropped, stats.seconds = reader.dropped, time.perf_counter() - began
