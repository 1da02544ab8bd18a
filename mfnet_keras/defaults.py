"""Defaults and small formulas shared by the models, the data pipeline, the configs and inference.

This module imports nothing, so every part of the package can take its defaults from here.
"""

# The ImageNet statistics the released video checkpoints were trained with (pixels scaled to [0, 1]).
VIDEO_MEAN = (0.485, 0.456, 0.406)
VIDEO_STD = (0.229, 0.224, 0.225)
FRAME_INTERVAL = 2
# The official recipe's colour jitter: ±hue (OpenCV's 0–180 scale), ±lightness, ±saturation (0–255).
HLS_JITTER = (15, 35, 25)
NUM_CROPS = (1, 3)  # evaluation crops per clip: the centre, or start/centre/end of the long side


def default_short_side(crop_size):
    """The evaluation resize: the short side to `crop_size × 256/224` (256 at 224, 128 at 112).

    Args:
        crop_size: the crop's side.

    Examples:
    >>> default_short_side(224), default_short_side(112)
    (256, 128)
    """
    return round(crop_size * 256 / 224)


def clip_span(clip_length, frame_interval):
    """Frames a clip covers, first to last sampled frame included.

    Args:
        clip_length: frames per clip.
        frame_interval: frames between consecutive clip frames.

    Examples:
    >>> clip_span(16, 2)
    31
    """
    return (clip_length - 1) * frame_interval + 1


def eval_clip_starts(num_frames, span, clips):
    """Uniformly spaced starts of `clips` clips of `span` frames covering `num_frames` frames
    (one clip: the middle); the evaluation pipeline samples the same starts.

    Args:
        num_frames: frames in the video.
        span: frames each clip covers (`clip_span`).
        clips: how many clips.

    Examples:
    >>> eval_clip_starts(100, 31, 3)
    [0, 34, 69]
    >>> eval_clip_starts(100, 31, 1)
    [34]
    """
    last = max(num_frames - span, 0)
    if clips == 1:
        return [last // 2]
    return [round(i * last / (clips - 1)) for i in range(clips)]


def check_num_crops(num_crops):
    """Raises a ValueError unless `num_crops` is one of `NUM_CROPS`.

    Args:
        num_crops: spatial crops per clip.
    """
    if num_crops not in NUM_CROPS:
        raise ValueError(f"`num_crops` must be 1 or 3. Received: num_crops={num_crops}")
