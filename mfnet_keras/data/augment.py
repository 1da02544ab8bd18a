"""Turning sampled JPEGs into clips: the training crop, flip and colour jitter, the evaluation views,
and the relabelling of clips played backwards."""

import math

import tensorflow as tf

from mfnet_keras.data import records
from mfnet_keras.data.sampling import sample_eval_indices, uniform
from tfrecords_tools import schema


def crop_window(shape, crop_size, scale_range, aspect_range, rand):
    """Crop window `[y, x, h, w]` in source pixels equal to: rescale (short side, aspect) then a random crop.

    Args:
        shape: the frames' `[height, width]`.
        crop_size: the crop's side after resizing.
        scale_range: the short side is rescaled to a length drawn from this range.
        aspect_range: the aspect ratio is drawn from this range.
        rand: the element's int64 random key.
    """
    height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    short = uniform(rand, 3, float(scale_range[0]), float(scale_range[1]))
    log_aspect = uniform(rand, 4, math.log(aspect_range[0]), math.log(aspect_range[1]))
    scale = short / tf.minimum(height, width)
    scale_x = scale * tf.exp(log_aspect)
    crop_h = tf.minimum(float(crop_size) / scale, height)
    crop_w = tf.minimum(float(crop_size) / scale_x, width)
    y = uniform(rand, 5, 0.0, 1.0) * (height - crop_h)
    x = uniform(rand, 6, 0.0, 1.0) * (width - crop_w)
    window = tf.stack([y, x, crop_h, crop_w])
    window = tf.cast(tf.round(window), tf.int32)
    return tf.maximum(window, [0, 0, 1, 1])


def decode_window(jpegs, window, crop_size):
    """Decodes only `window` ([y, x, h, w]) of each JPEG, at half resolution (DCT scaling) when that still
    leaves at least `crop_size` pixels: libjpeg then skips most of the work.

    Args:
        jpegs: encoded frames, a string vector.
        window: `[y, x, h, w]` in source pixels.
        crop_size: the side the window is resized to afterwards (half-resolution decoding must leave this much).
    """

    def decode(ratio):
        scaled = window // ratio
        return tf.map_fn(
            lambda j: tf.image.decode_and_crop_jpeg(
                j, scaled, channels=3, ratio=ratio, fancy_upscaling=False, dct_method="INTEGER_FAST"
            ),
            jpegs,
            fn_output_signature=tf.uint8,
        )

    return tf.cond(tf.reduce_min(window[2:]) >= 2 * crop_size, lambda: decode(2), lambda: decode(1))


def train_view(frames, rand, options):
    """The training crop of decoded frames `[T, H, W, 3]` (the window of `crop_window`), resized, flipped
    and jittered: what `decode_train_crop`, `resize_crop` and `flip_and_jitter` do to JPEGs.

    Args:
        frames: decoded frames `[T, H, W, 3]`.
        rand: the element's int64 random key.
        options: the training options (`crop_size`, `scale_range`, `aspect_range`, flip and jitter).
    """
    y, x, h, w = tf.unstack(
        crop_window(tf.shape(frames)[1:3], options["crop_size"], options["scale_range"], options["aspect_range"], rand)
    )
    return flip_and_jitter(resize_crop(frames[:, y : y + h, x : x + w], options), rand, options)


def decode_train_crop(picked, rand, options):
    """The training crop of a clip's JPEGs, decoded: a random window (scale and aspect jitter) of each frame.

    Args:
        picked: the clip's encoded frames.
        rand: the element's int64 random key.
        options: the training options (`crop_size`, `scale_range`, `aspect_range`).
    """
    shape = tf.image.extract_jpeg_shape(picked[0])
    window = crop_window(shape, options["crop_size"], options["scale_range"], options["aspect_range"], rand)
    return decode_window(picked, window, options["crop_size"])


def resize_crop(frames, options):
    """Decoded crop windows resized to `crop_size` squares: bilinear, as the official cv2 loader.

    Args:
        frames: decoded crop windows `[T, h, w, 3]`.
        options: the training options (`crop_size`).
    """
    return tf.image.resize(frames, (options["crop_size"], options["crop_size"]))


def flip_and_jitter(clip, rand, options):
    """The random flip and HLS colour jitter of a training clip.

    Args:
        clip: a clip `[T, crop, crop, 3]` in [0, 255].
        rand: the element's int64 random key.
        options: the training options (flip, colour jitter).
    """
    mirror = tf.logical_and(options["flip"], uniform(rand, 7, 0.0, 1.0) < 0.5)
    jitter = options["color_jitter"]
    offsets = tf.round(uniform(rand, 8, -1.0, 1.0, (3,)) * tf.constant(jitter or (0, 0, 0), tf.float32))
    return finish_train_clip(clip, mirror, offsets, bool(jitter))


# XLA fuses these per-pixel steps into one pass (on CPU a per-channel broadcast alone is ~3x slower unfused).
@tf.function(jit_compile=True, autograph=False)
def finish_train_clip(clip, mirror, offsets, jitter):
    """Horizontal flip (when `mirror`) and HLS jitter (when `jitter`); pixels stay in [0, 255].

    Args:
        clip: a clip `[T, crop, crop, 3]` in [0, 255].
        mirror: flip it horizontally (a boolean scalar).
        offsets: the (hue, lightness, saturation) offsets.
        jitter: apply the offsets.
    """
    clip = tf.cond(mirror, lambda: tf.reverse(clip, [2]), lambda: clip)
    if jitter:
        clip = hls_jitter(clip, offsets)
    return clip


def hls_jitter(clip, offsets):
    """Adds (hue, lightness, saturation) offsets in HLS space to a whole clip in [0, 255].

    Hue wraps, lightness and saturation are clipped. Goes through TensorFlow's
    fused RGB↔HSV kernels (HLS and HSV share the hue; L, S_hls ↔ V, S_hsv is a
    little per-pixel algebra); `finish_train_clip` runs it under XLA.

    Args:
        clip: a clip in [0, 255].
        offsets: (hue, lightness, saturation) offsets.
    """
    hue, sat_v, value = tf.unstack(tf.image.rgb_to_hsv(clip / 255.0), axis=-1)
    lightness = value * (1.0 - sat_v / 2.0)
    sat_l = tf.math.divide_no_nan(value - lightness, tf.minimum(lightness, 1.0 - lightness))
    hue = tf.math.floormod(hue + offsets[0] / 180.0, 1.0)
    lightness = tf.clip_by_value(lightness + offsets[1] / 255.0, 0.0, 1.0)
    sat_l = tf.clip_by_value(sat_l + offsets[2] / 255.0, 0.0, 1.0)
    value = lightness + sat_l * tf.minimum(lightness, 1.0 - lightness)
    sat_v = 2.0 * (1.0 - tf.math.divide_no_nan(lightness, value))
    rgb = tf.image.hsv_to_rgb(tf.stack([hue, tf.clip_by_value(sat_v, 0.0, 1.0), value], axis=-1))
    return tf.clip_by_value(rgb * 255.0, 0.0, 255.0)


def reverse_label(label, backwards, reverse_labels, multi_label):
    """The label of a clip played backwards when `backwards` (see `make_dataset`'s `reverse_labels`).

    Args:
        label: the clip's label (int scalar, or multi-hot).
        backwards: whether the clip plays backwards (a boolean scalar).
        reverse_labels: the class of each class played backwards.
        multi_label: `label` is multi-hot.
    """
    table = tf.constant(reverse_labels, label.dtype if not multi_label else tf.int32)
    if multi_label:  # the classes swap columns; the rest keep theirs
        size = tf.shape(label)[0]
        columns = tf.concat([table, tf.range(tf.size(table), size)], 0)[:size]
        return tf.where(backwards, tf.gather(label, columns), label)
    known = (label >= 0) & (label < tf.size(table, out_type=label.dtype))
    mapped = tf.gather(table, tf.clip_by_value(label, 0, tf.size(table, out_type=label.dtype) - 1))
    return tf.where(backwards & known, mapped, label)


def eval_clips(picked, num_clips, num_crops, clip_length, crop_size, short_side):
    """`[num_clips * num_crops, T, crop, crop, 3]` float clips in [0, 255] of the sampled JPEGs: short side
    resized, then crops.

    Args:
        picked: the sampled JPEGs, `num_clips * clip_length` of them.
        num_clips: clips per video.
        num_crops: spatial crops per clip (1: centre; 3: start, centre and end of the long side).
        clip_length: frames per clip.
        crop_size: the crops' side.
        short_side: the frames' short side after resizing.
    """
    frames = tf.map_fn(lambda j: tf.image.decode_jpeg(j, channels=3), picked, fn_output_signature=tf.uint8)
    return eval_views(frames, num_clips, num_crops, clip_length, crop_size, short_side)


def eval_views(frames, num_clips, num_crops, clip_length, crop_size, short_side):
    """The evaluation views of `num_clips * clip_length` decoded frames (`eval_clips`).

    Args:
        frames: `num_clips * clip_length` decoded frames.
        num_clips: clips per video.
        num_crops: spatial crops per clip (1: centre; 3: start, centre and end of the long side).
        clip_length: frames per clip.
        crop_size: the crops' side.
        short_side: the frames' short side after resizing.
    """
    shape = tf.cast(tf.shape(frames)[1:3], tf.float32)
    size = tf.cast(tf.round(shape * float(short_side) / tf.reduce_min(shape)), tf.int32)
    size = tf.maximum(size, crop_size)
    frames = tf.image.resize(tf.cast(frames, tf.float32), size, antialias=True)
    frames = tf.reshape(frames, [num_clips, clip_length, size[0], size[1], 3])
    tall = size[0] > size[1]
    crops = []
    for c in range(num_crops):
        halves = 1 if num_crops == 1 else c  # 3 crops: start, centre, end of the long side
        # The centre crop's offset is (size - crop) // 2, as in VideoClassifierPreprocessor.
        along_y = (size[0] - crop_size) * halves // 2
        along_x = (size[1] - crop_size) * halves // 2
        y = tf.where(tall, along_y, (size[0] - crop_size) // 2)
        x = tf.where(tall, (size[1] - crop_size) // 2, along_x)
        crops.append(frames[:, :, y : y + crop_size, x : x + crop_size, :])
    return tf.reshape(tf.stack(crops, axis=1), [num_clips * num_crops, clip_length, crop_size, crop_size, 3])


def decode_centre_clip(serialized, clip_length, frame_interval, where):
    """The centre clip of one serialized `SequenceExample`, decoded: float32 `[T, H, W, 3]` (a serving
    endpoint's input); a record without frames or with a corrupt JPEG fails an assertion naming `where`.

    Args:
        serialized: one serialized `SequenceExample`.
        clip_length: frames per clip.
        frame_interval: frames between consecutive clip frames.
        where: a string vector naming the record; its last item is the example name in a parse error.
    """
    jpegs, _ = schema.parse_sequence_example(serialized, example_name=where[-1])
    has_frames = tf.debugging.Assert(tf.size(jpegs) > 0, [*where, "has no frames"])
    with tf.control_dependencies([has_frames]):
        num_frames = tf.size(jpegs, out_type=tf.int64)
    indices = sample_eval_indices(num_frames, clip_length, frame_interval, 1)
    picked = records.gather_frames(jpegs, tf.reshape(indices, [-1]))
    whole = tf.debugging.Assert(records.jpegs_look_whole(picked), [*where, "has a corrupt JPEG frame"])
    with tf.control_dependencies([whole]):
        frames = tf.map_fn(lambda j: tf.image.decode_jpeg(j, channels=3), picked, fn_output_signature=tf.uint8)
    return tf.cast(frames, tf.float32)
