"""Test videos made with PyAV: noise clips, optionally with non-square pixels or the index first."""

from fractions import Fraction

import av
import numpy as np


def write_noise_video(path, frames, codec="libx264", sar=None, faststart=False, fps=15):
    """Noise frames (every frame a different size when coded), optionally with non-square pixels."""
    rng = np.random.default_rng(11)
    with av.open(str(path), "w", options={"movflags": "+faststart"} if faststart else {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        if sar:
            stream.codec_context.sample_aspect_ratio = Fraction(sar)
        for _ in range(frames):
            image = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
