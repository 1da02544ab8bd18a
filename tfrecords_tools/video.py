"""Decoding videos with PyAV into RGB frames at display geometry, and encoding frames as JPEG."""

import dataclasses
import io
import os
import re
import struct
from fractions import Fraction

import av
import numpy as np
from PIL import Image

VIDEO_EXTENSIONS = (
    ".mp4",
    ".avi",
    ".webm",
    ".mkv",
    ".mov",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".flv",
    ".wmv",
    ".3gp",
    ".ogv",
)
_ISO_MEDIA = (".mp4", ".mov", ".m4v", ".3gp")  # ISO base media files: a sequence of sized boxes


class VideoError(Exception):
    """A video that cannot be used; the message is the reason recorded in the manifest.

    Reasons start with one of: `unsupported extension`, `empty`, `not a video`,
    `no video stream`, `truncated`, `corrupt frames`.
    """


@dataclasses.dataclass
class Video:
    """A decoded video: RGB frames at display geometry, their rate, and what was found on the way.

    Attributes:
        frames: `(H, W, 3)` uint8 arrays.
        fps: their frame rate.
        sample_aspect_ratio: of the source's pixels; the frames are already resampled to square pixels.
        problem: set when `keep_partial` kept a damaged video: the reason it would be skipped.
    """

    frames: list
    fps: float
    sample_aspect_ratio: Fraction
    problem: str | None = None


def declared_size(path):
    """Bytes the container's own headers say the file holds (ISO media boxes, AVI's RIFF size), or None.

    A file shorter than this was cut off; it is read from the headers alone, so
    it works even where FFmpeg cannot open the file any more.

    Args:
        path: a video file.
    """
    ext = os.path.splitext(path)[1].lower()
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        if ext == ".avi":
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"AVI ":
                return None
            return 8 + struct.unpack("<I", head[4:8])[0]
        if ext not in _ISO_MEDIA:
            return None
        offset = 0
        while offset < size:
            f.seek(offset)
            head = f.read(16)
            if len(head) < 8:
                return offset + 8  # a box header cut short
            box_size, kind = struct.unpack(">I", head[:4])[0], head[4:8]
            if offset == 0 and kind != b"ftyp":
                return None
            if box_size == 1:
                if len(head) < 16:
                    return offset + 16
                box_size = struct.unpack(">Q", head[8:16])[0]
            elif box_size == 0:  # the last box runs to the end of the file
                return size
            if box_size < 8:
                return None  # not a box structure we can follow
            offset += box_size
        return offset


def _frame_size(width, height, sar, rotation, short_side):
    """The size to resample a coded frame to: square pixels (width × SAR) and, upright, the short side at
    `short_side` (even). Returned in coded orientation, as `to_ndarray` takes it before rotation."""
    display_w, display_h = width * sar, height
    if rotation % 180:
        display_w, display_h = display_h, display_w
    if short_side:
        scale = short_side / min(display_w, display_h)
        out_w, out_h = max(2, round(display_w * scale / 2) * 2), max(2, round(display_h * scale / 2) * 2)
    else:
        out_w, out_h = max(2, round(display_w)), max(2, round(display_h))
    return (out_h, out_w) if rotation % 180 else (out_w, out_h)


def frame_image(frame, sar=1, short_side=None):
    """RGB uint8 array of a decoded PyAV frame at display geometry: square pixels (`sar`: the stream's
    sample aspect ratio), upright, and the short side resized to `short_side` (even) when given.

    Args:
        frame: a decoded PyAV video frame.
        sar: the stream's sample aspect ratio.
        short_side: resize so the short side is this (None: keep).
    """
    rotation = getattr(frame, "rotation", 0) or 0
    width, height = _frame_size(frame.width, frame.height, sar, rotation, short_side)
    image = frame.to_ndarray(width=width, height=height, format="rgb24")
    return np.ascontiguousarray(np.rot90(image, k=rotation // 90)) if rotation else image


def stream_geometry(stream):
    """`(sample aspect ratio, frames per second)` of a PyAV video stream, with sane fallbacks (1, 25).

    Args:
        stream: a PyAV video stream.
    """
    sar = Fraction(stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio or 1)
    fps = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
    return (sar if sar > 0 else Fraction(1)), fps


def error_text(error, path):
    """FFmpeg's message without its errno prefix, file name or function name.

    Args:
        error: an exception from PyAV.
        path: the file, left out of the message.
    """
    reason = re.sub(r"^\[Errno -?\d+\] ", "", str(error).replace(f": {path!r}", "").strip())
    return re.sub(r": '\w+\(\)'$", "", reason) or type(error).__name__


@dataclasses.dataclass
class _Reading:
    """What one pass over a video stream met: kept frames and their times, and every decoded frame counted."""

    frames: list = dataclasses.field(default_factory=list)
    times: list = dataclasses.field(default_factory=list)
    decoded: int = 0
    last_time: float = 0.0
    packets: int = 0  # demuxed, with data
    last_packet_time: float = 0.0
    errors: int = 0
    first_error: str = ""
    stopped_early: bool = False  # max_frames reached: the rest was not read


def _read_stream(container, stream, path, sar, short_side, fps, max_frames, source_fps, frames):
    """Decodes packet by packet, so a bad packet is counted and decoding goes on past it."""
    reading, next_time = _Reading(frames=frames if frames is not None else []), None
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
            if packet.size:
                reading.packets += 1
                if packet.pts is not None and packet.time_base:
                    reading.last_packet_time = max(reading.last_packet_time, float(packet.pts * packet.time_base))
            decoded = stream.decode(packet)
        except StopIteration:
            break
        except av.error.FFmpegError as error:
            reading.errors += 1
            reading.first_error = reading.first_error or error_text(error, path)
            continue
        for frame in decoded:
            time = frame.time if frame.time is not None else reading.decoded / source_fps
            reading.decoded += 1
            reading.last_time = max(reading.last_time, time)
            if fps:
                if next_time is not None and time < next_time - 1e-6:
                    continue
                next_time = (time if next_time is None else next_time) + 1.0 / fps
            reading.frames.append(frame_image(frame, sar, short_side))
            reading.times.append(time)
            if max_frames and len(reading.frames) >= max_frames:
                reading.stopped_early = True
                return reading
    return reading


def _problem(reading, stream, container, cut):
    """Why a decoded video is incomplete, or None: bytes missing, frames or seconds short of what the
    container declares, or packets the decoder rejected."""
    failed = f"{reading.errors} packet(s) failed to decode (first: {reading.first_error})" if reading.errors else ""
    declared = stream.frames or 0
    if declared:  # frames count as missing past a small tolerance (edit lists, B-frame reordering)
        tolerance = max(2, declared // 50)
        missing = declared - reading.decoded > tolerance
        stream_ends_early = declared - reading.packets > tolerance
        shortfall = f"decoded {reading.decoded} of {declared} frames"
    else:
        seconds = float(stream.duration * stream.time_base) if stream.duration else (container.duration or 0) / 1e6
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        span = reading.last_time + 1 / rate if reading.decoded else 0.0
        missing = bool(seconds) and span < 0.95 * seconds - 2 / rate
        stream_ends_early = bool(seconds) and reading.last_packet_time + 1 / rate < 0.95 * seconds - 2 / rate
        shortfall = f"decoded {span:.1f} of {seconds:.1f} s"
    if reading.stopped_early:
        return f"truncated: {cut}" if cut else None
    if cut:
        return f"truncated: {shortfall}; {cut}"
    if not reading.decoded:
        return f"corrupt frames: no frame decoded, {failed}" if failed else "empty: the video stream has no frames"
    if missing:
        return (
            f"truncated: {shortfall}" if stream_ends_early or not failed else f"corrupt frames: {shortfall}, {failed}"
        )
    return None


def decode_video(path, short_side=None, fps=None, max_frames=None, keep_partial=False, frames=None):
    """Decodes a video into RGB uint8 frames at its display geometry.

    Pixels are made square (the stream's sample aspect ratio stretches the
    width), frames rotated upright (display matrix), converted to RGB whatever
    the pixel format, and resized so that the short side is `short_side`.
    With `fps`, frames are kept on a grid of `1 / fps` seconds of presentation
    time, so variable-frame-rate videos are resampled by their timestamps.

    What decoded is checked against what the container declares (its byte
    size, frame count or duration) and against decoder errors, so a cut-off or
    damaged video is caught rather than used in part. `frames`, a list, is
    filled as decoding goes (another thread may read it meanwhile).

    Args:
        path: a video file.
        short_side: resize so the short side is this, even (None: keep).
        fps: resample to at most this frame rate (None: keep).
        max_frames: keep at most this many frames.
        keep_partial: keep the frames that decode from a damaged video (its problem in `Video.problem`).
        frames: a list that the decoded frames are appended to as decoding goes (None: a new one).

    Returns:
        A `Video`.

    Raises:
        VideoError: with the reason (see `VideoError`); a truncated or
            damaged video that still has frames is returned instead when
            `keep_partial`, with the reason in `Video.problem`.
    """
    ext = os.path.splitext(path)[1].lower()
    if ext not in VIDEO_EXTENSIONS:
        raise VideoError(f"unsupported extension {ext or '(none)'!r}")
    size = os.path.getsize(path)
    if size == 0:
        raise VideoError("empty file (0 bytes)")
    expected = declared_size(path)
    cut = f"the file ends at byte {size}, its container declares {expected}" if (expected or 0) > size else ""
    try:
        container = av.open(path)
    except av.error.FFmpegError as error:
        raise VideoError(f"truncated: {cut}" if cut else f"not a video: {error_text(error, path)}") from None
    with container:
        if not container.streams.video:
            raise VideoError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        sar, source_fps = stream_geometry(stream)
        reading = _read_stream(container, stream, path, sar, short_side, fps, max_frames, source_fps, frames)
        problem = _problem(reading, stream, container, cut)
    if problem and not (keep_partial and reading.frames):
        raise VideoError(problem)
    out_fps = min(source_fps, fps) if fps else source_fps
    return Video(reading.frames, out_fps, sar, problem)


def encode_jpeg(image, quality=90):
    """JPEG bytes of an RGB uint8 image.

    Args:
        image: an RGB uint8 image.
        quality: JPEG quality, 1 to 100.
    """
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def decode_jpeg(data):
    """RGB uint8 array of JPEG bytes.

    Args:
        data: JPEG bytes.
    """
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def write_video(path, frames, fps=15, codec="libx264", pix_fmt="yuv420p", options=None):
    """Writes RGB uint8 frames `(T, H, W, 3)` as a video file with PyAV.

    Args:
        path: the file to write.
        frames: RGB uint8 frames `(T, H, W, 3)`.
        fps: frame rate.
        codec: the FFmpeg encoder.
        pix_fmt: the pixel format.
        options: encoder options.
    """
    height, width = frames[0].shape[:2]
    with av.open(path, mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if options:
            stream.options = dict(options)
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.asarray(image, np.uint8), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
