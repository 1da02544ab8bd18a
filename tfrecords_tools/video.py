"""Decoding videos with PyAV into RGB frames, and encoding frames as JPEG."""

import io
import os
import re

import numpy as np

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


class VideoError(Exception):
    """A video that cannot be used; the message is the reason recorded in the manifest."""


def _target_size(width, height, short_side):
    """Output (width, height) with the short side at `short_side`, even, aspect kept."""
    if not short_side:
        return width, height
    scale = short_side / min(width, height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def decode_video(path, short_side=None, fps=None, max_frames=None):
    """Decodes a video into a list of RGB uint8 frames.

    Frames are rotated upright (display-matrix rotation), converted to RGB
    whatever the pixel format (grayscale included), and resized so that the
    short side is `short_side`. With `fps`, frames are kept on a grid of
    `1 / fps` seconds of presentation time, so variable-frame-rate videos are
    resampled by their timestamps.

    Returns:
        `(frames, fps)`: frames as `(H, W, 3)` arrays, and their frame rate.

    Raises:
        VideoError: the file is empty, unreadable, has no video stream, a
            decoding error, or no decodable frame.
    """
    import av

    ext = os.path.splitext(path)[1].lower()
    if ext not in VIDEO_EXTENSIONS:
        raise VideoError(f"unsupported extension {ext or '(none)'!r}")
    if os.path.getsize(path) == 0:
        raise VideoError("empty file (0 bytes)")
    frames, times = [], []
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise VideoError("no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            source_fps = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
            next_time = None
            for frame in container.decode(stream):
                time = frame.time if frame.time is not None else len(times) / source_fps
                if fps:
                    if next_time is not None and time < next_time - 1e-6:
                        continue
                    next_time = (time if next_time is None else next_time) + 1.0 / fps
                width, height = _target_size(frame.width, frame.height, short_side)
                rotation = getattr(frame, "rotation", 0) or 0
                if rotation % 180:
                    # Resize in display orientation: swap before rotating.
                    width, height = _target_size(frame.height, frame.width, short_side)[::-1]
                image = frame.to_ndarray(width=width, height=height, format="rgb24")
                if rotation:
                    image = np.ascontiguousarray(np.rot90(image, k=rotation // 90))
                frames.append(image)
                times.append(time)
                if max_frames and len(frames) >= max_frames:
                    break
    except VideoError:
        raise
    except Exception as error:  # PyAV raises many FFmpeg error types
        reason = re.sub(r"^\[Errno -?\d+\] ", "", str(error).replace(f": {path!r}", "").strip())
        reason = reason or type(error).__name__
        raise VideoError(f"cannot decode: {reason}") from error
    if not frames:
        raise VideoError("no decodable frame")
    out_fps = min(source_fps, fps) if fps else source_fps
    return frames, out_fps


def encode_jpeg(image, quality=90):
    """JPEG bytes of an RGB uint8 image."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def decode_jpeg(data):
    """RGB uint8 array of JPEG bytes."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def write_video(path, frames, fps=15, codec="libx264", pix_fmt="yuv420p", options=None):
    """Writes RGB uint8 frames `(T, H, W, 3)` as a video file with PyAV."""
    import av

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
