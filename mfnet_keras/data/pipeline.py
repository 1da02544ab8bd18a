"""`make_dataset`: TFRecords of videos → batches of clips for `model.fit` / `model.evaluate`.

Train: one clip per video per epoch (random start and frame interval, short
videos loop), decoding ONLY the sampled frames and only the pixels of the
random crop (`decode_and_crop_jpeg`), then flip, HLS colour jitter and
normalisation. Eval: `num_clips` uniformly spaced clips × `num_crops` crops
per video, deterministic, each view tagged with its `video_index`.

Every random choice is a stateless op keyed by the seed, the pass over the
data and the record's place in that pass, so results do not depend on
parallelism, a `seed` makes a run reproducible while epochs still differ, and a
`DataPosition` lets an interrupted run go on exactly where it stopped.
"""

import logging
import math
import sys

import keras
import tensorflow as tf

from mfnet_keras.models.preprocessor import default_short_side
from tfrecords_tools import schema

AUTOTUNE = tf.data.AUTOTUNE
# tf.data functions here hold no Python control flow on tensors: AutoGraph, which costs ~2 s per
# pipeline at start-up, is skipped.
_plain = tf.autograph.experimental.do_not_convert
HLS_JITTER = (15, 35, 25)  # the official recipe: ±hue (OpenCV 0–180 scale), ±lightness, ±saturation (0–255)
BAD_DATA_REASONS = ("unreadable", "no_frames", "bad_jpeg", "bad_label")
RECORD_FRAMING = 16  # bytes around each TFRecord payload: length, its CRC, and the payload's CRC
# Not bad data: records with several labels, used with their first label when training single-label.
MULTI_LABEL_RECORDS = "multi_label_records"


class BadDataCounter:
    """Counts training elements dropped for bad data, by reason, and multi-label records used single-label;
    read by `BadDataLogger`."""

    def __init__(self):
        self.counts = {
            reason: tf.Variable(0, dtype=tf.int64, trainable=False)
            for reason in (*BAD_DATA_REASONS, MULTI_LABEL_RECORDS)
        }
        # "<file> record <n>" of each training element under way: one left here failed (and was dropped).
        self.in_progress = tf.lookup.experimental.MutableHashTable(tf.string, tf.int64, default_value=0)

    def failed_records(self):
        """The records whose element raised (not a proto, an undecodable JPEG) since the last reset."""
        return sorted(key.decode() for key in self.in_progress.export()[0].numpy())

    def result(self):
        counts = {reason: int(v.numpy()) for reason, v in self.counts.items()}
        counts["unreadable"] += len(self.failed_records())
        return counts

    def reset(self):
        for v in self.counts.values():
            v.assign(0)
        self.in_progress.remove(self.in_progress.export()[0])


class BadDataLogger(keras.callbacks.Callback):
    """Logs, at each epoch end, how many training elements were dropped for bad data and how many records
    with several labels trained on their first label, then resets the counts.

    Adds `bad_data_dropped` and `multi_label_records` to the epoch logs (so CSVLogger/TensorBoard see them).
    """

    def __init__(self, counter):
        super().__init__()
        self.counter = counter

    def on_epoch_end(self, epoch, logs=None):
        failed = self.counter.failed_records()
        counts = self.counter.result()
        several = counts.pop(MULTI_LABEL_RECORDS)
        total = sum(counts.values())
        if logs is not None:
            logs["bad_data_dropped"] = total
            logs[MULTI_LABEL_RECORDS] = several
        log = logging.getLogger("mfnet_keras.data")
        if total:
            detail = ", ".join(f"{reason} {n}" for reason, n in counts.items() if n)
            log.warning(f"epoch {epoch + 1}: dropped {total} bad clip(s): {detail}")
        if failed:
            more = f" and {len(failed) - 10} more" if len(failed) > 10 else ""
            log.warning(f"epoch {epoch + 1}: unreadable: {', '.join(failed[:10])}{more}")
        if several:
            log.warning(
                f"epoch {epoch + 1}: {several} record(s) hold several labels and trained on their first "
                "(multi_label_records; data.multi_label=true trains on all of them)"
            )
        self.counter.reset()


class DataPosition:
    """Where an endless training stream stands: `(pass, records of that pass read)` after each batch.

    Given to `make_dataset`, the train stream repeats forever, starts at
    `start` (`[pass, index, batch]`, as `after_steps` gives it) and records
    the position after each batch it yields. A resumed run that starts where
    the last trained batch ended sees exactly the clips an uninterrupted run
    would have. `batches_per_step`: batches of this pipeline that one training
    step takes (replicas per input pipeline).
    """

    def __init__(self, start=(0, 0, 0), batches_per_step=1):
        self.start = [int(n) for n in start]
        self.batches_per_step = batches_per_step
        self.table = tf.lookup.experimental.MutableHashTable(tf.int64, tf.int64, default_value=[-1, -1])

    def after_steps(self, steps):
        """`[pass, index, batch]` to resume at after `steps` training steps, or None when unknown here."""
        batch = steps * self.batches_per_step - 1
        pass_number, index = (int(n) for n in self.table.lookup(tf.constant([batch], tf.int64))[0].numpy())
        if pass_number < 0:
            return None
        batches = self.table.export()[0]
        self.table.remove(batches[batches < batch])  # older batches are behind any later resume
        return [pass_number, index, batch + 1]

    def record(self, batch, passes, indices):
        """In the pipeline: the position after `batch`, whose last element came from `(passes[-1], indices[-1])`."""
        return self.table.insert(batch[None], tf.stack([passes[-1], indices[-1] + 1])[None])


def _pass_seed(seed, pass_number):
    """The seed of one pass over the data (its file and record order, and its elements' random choices)."""
    return tf.constant(seed, tf.int64) * 1_000_003 + tf.cast(pass_number, tf.int64)


def _shuffled(ds, block, seed):
    """`ds` shuffled within consecutive blocks of `block` elements, in an order that `seed` (a tensor) fixes.

    Stateless, unlike `Dataset.shuffle`, whose seed must not be a tensor when
    a global seed is set; a pass's order then depends on its seed alone.
    """

    @_plain
    def shuffle_block(number, elements):
        size = tf.shape(tf.nest.flatten(elements)[0])[0]
        order = tf.random.experimental.stateless_shuffle(tf.range(size), seed=tf.stack([seed, number]))
        return tf.data.Dataset.from_tensor_slices(tf.nest.map_structure(lambda t: tf.gather(t, order), elements))

    return ds.batch(block).enumerate().flat_map(shuffle_block)


def _reverse_label(label, backwards, reverse_labels, multi_label):
    """The label of a clip played backwards when `backwards` (see `make_dataset`'s `reverse_labels`)."""
    table = tf.constant(reverse_labels, label.dtype if not multi_label else tf.int32)
    if multi_label:  # the classes swap columns; the rest keep theirs
        size = tf.shape(label)[0]
        columns = tf.concat([table, tf.range(tf.size(table), size)], 0)[:size]
        return tf.where(backwards, tf.gather(label, columns), label)
    known = (label >= 0) & (label < tf.size(table, out_type=label.dtype))
    mapped = tf.gather(table, tf.clip_by_value(label, 0, tf.size(table, out_type=label.dtype) - 1))
    return tf.where(backwards & known, mapped, label)


def _seed(rand, k):
    """The k-th stateless seed of an element."""
    return tf.stack([rand, tf.constant(k, tf.int64)])


def _uniform(rand, k, low, high, shape=()):
    return tf.random.stateless_uniform(shape, seed=_seed(rand, k), minval=low, maxval=high)


def sample_train_indices(num_frames, clip_length, frame_intervals, speed_jitter, rand):
    """Frame indices of one training clip: random interval from the list (± speed jitter), random start, looping."""
    intervals = tf.constant(frame_intervals, tf.float32)
    pick = tf.random.stateless_uniform((), seed=_seed(rand, 0), maxval=len(frame_intervals), dtype=tf.int32)
    interval = intervals[pick]
    if speed_jitter:
        interval *= _uniform(rand, 1, 1.0 - speed_jitter, 1.0 + speed_jitter)
    offsets = tf.round(tf.range(clip_length, dtype=tf.float32) * interval)
    span = tf.cast(offsets[-1], tf.int64) + 1
    start_max = tf.maximum(num_frames - span, 0)
    start = tf.cast(tf.floor(_uniform(rand, 2, 0.0, 1.0) * tf.cast(start_max + 1, tf.float32)), tf.int64)
    start = tf.minimum(start, start_max)
    return (start + tf.cast(offsets, tf.int64)) % num_frames


def sample_eval_indices(num_frames, clip_length, frame_interval, num_clips):
    """`[num_clips, clip_length]` indices: clips with uniformly spaced starts covering the video, looping."""
    span = (clip_length - 1) * frame_interval + 1
    start_max = tf.maximum(num_frames - span, 0)
    if num_clips == 1:
        starts = tf.reshape(start_max // 2, [1])
    else:
        steps = tf.range(num_clips, dtype=tf.float64) / (num_clips - 1)
        starts = tf.cast(tf.round(steps * tf.cast(start_max, tf.float64)), tf.int64)
    offsets = tf.range(clip_length, dtype=tf.int64) * frame_interval
    return (starts[:, None] + offsets[None, :]) % num_frames


def rgb_to_hls(rgb):
    """RGB in [0, 255] → H in [0, 180) (OpenCV's scale), L and S in [0, 255]."""
    maxc = tf.reduce_max(rgb, axis=-1)
    minc = tf.reduce_min(rgb, axis=-1)
    delta = maxc - minc
    total = maxc + minc
    lightness = total / 2
    # S = delta / (max + min) for L <= 127.5, delta / (510 - max - min) above, 0 for grey.
    denom = tf.where(total <= 255.0, total, 510.0 - total)
    saturation = tf.math.divide_no_nan(delta, denom) * 255.0
    r, g, b = tf.unstack(rgb, axis=-1)
    sector = tf.where(maxc == r, (g - b), tf.where(maxc == g, (b - r) + 2.0 * delta, (r - g) + 4.0 * delta))
    hue = tf.math.floormod(tf.math.divide_no_nan(sector, delta) * 30.0, 180.0)
    return tf.stack([hue, lightness, saturation], axis=-1)


def hls_to_rgb(hls):
    """Inverse of `rgb_to_hls` (the closed form f(n) = L - a·clip(min(k - 3, 9 - k), -1, 1))."""
    hue, lightness, saturation = tf.unstack(hls[..., None, :], axis=-1)  # each [..., 1]
    k = tf.math.floormod(tf.constant([0.0, 8.0, 4.0]) + hue / 15.0, 12.0)
    a = saturation / 255.0 * tf.minimum(lightness, 255.0 - lightness)
    return lightness - a * tf.clip_by_value(tf.minimum(k - 3.0, 9.0 - k), -1.0, 1.0)


def hls_jitter(clip, offsets):
    """Adds (hue, lightness, saturation) offsets in HLS space to a whole clip in [0, 255].

    Hue wraps, lightness and saturation are clipped. Goes through TensorFlow's
    fused RGB↔HSV kernels (HLS and HSV share the hue; L, S_hls ↔ V, S_hsv is a
    little per-pixel algebra); `_finish_train_clip` runs it under XLA.
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


def gather_frames(jpegs, indices):
    """The JPEGs at `indices`; placeholders (that fail `jpegs_look_whole`) when the video has no frame."""
    safe = tf.cond(tf.size(jpegs) > 0, lambda: jpegs, lambda: tf.constant([b""]))
    return tf.gather(safe, indices % tf.size(safe, out_type=indices.dtype))


def jpegs_look_whole(jpegs):
    """True when every JPEG starts with SOI and ends with EOI: catches truncated and garbage frames cheaply."""
    length = tf.strings.length(jpegs)
    head = tf.strings.substr(jpegs, tf.zeros_like(length), tf.fill(tf.shape(length), 2)) == b"\xff\xd8"
    tail = tf.strings.substr(jpegs, tf.maximum(length - 2, 0), tf.fill(tf.shape(length), 2)) == b"\xff\xd9"
    long_enough = length >= 4
    return tf.reduce_all(head & tail & long_enough)


def _crop_window(shape, crop_size, scale_range, aspect_range, rand):
    """Crop window `[y, x, h, w]` in source pixels equal to: rescale (short side, aspect) then a random crop."""
    height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    short = _uniform(rand, 3, float(scale_range[0]), float(scale_range[1]))
    log_aspect = _uniform(rand, 4, math.log(aspect_range[0]), math.log(aspect_range[1]))
    scale = short / tf.minimum(height, width)
    scale_x = scale * tf.exp(log_aspect)
    crop_h = tf.minimum(float(crop_size) / scale, height)
    crop_w = tf.minimum(float(crop_size) / scale_x, width)
    y = _uniform(rand, 5, 0.0, 1.0) * (height - crop_h)
    x = _uniform(rand, 6, 0.0, 1.0) * (width - crop_w)
    window = tf.stack([y, x, crop_h, crop_w])
    window = tf.cast(tf.round(window), tf.int32)
    return tf.maximum(window, [0, 0, 1, 1])


def _decode_window(jpegs, window, crop_size):
    """Decodes only `window` ([y, x, h, w]) of each JPEG, at half resolution (DCT scaling) when that still
    leaves at least `crop_size` pixels: libjpeg then skips most of the work."""

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


# XLA fuses these per-pixel steps into one pass (on CPU a per-channel broadcast alone is ~3x slower unfused).
@tf.function(jit_compile=True, autograph=False)
def _finish_train_clip(clip, mirror, offsets, jitter):
    """Horizontal flip (when `mirror`) and HLS jitter (when `jitter`); pixels stay in [0, 255]."""
    clip = tf.cond(mirror, lambda: tf.reverse(clip, [2]), lambda: clip)
    if jitter:
        clip = hls_jitter(clip, offsets)
    return clip


def _labels(label_values, num_classes, multi_label):
    """Label (int32 scalar, or multi-hot) and whether it is valid.

    Single-label: the record's first label, valid when in range whatever the
    others are. Multi-label: every label must be in range.
    """
    in_range = label_values >= 0
    if num_classes is not None:
        in_range &= label_values < num_classes
    if multi_label:
        valid = (tf.size(label_values) > 0) & tf.reduce_all(in_range)
        hot = tf.reduce_max(tf.one_hot(tf.where(in_range, label_values, 0), num_classes), axis=0)
        return tf.cast(hot, tf.float32) * tf.cast(valid, tf.float32), valid
    first = tf.concat([label_values, [-1]], 0)[0]
    valid = tf.concat([in_range, [False]], 0)[0]
    return tf.cast(first, tf.int32), valid


def _readable_records(path, size, counter):
    """`(path, index, record)` of one TFRecord file, up to its first unreadable record.

    A corrupt or truncated record, or bytes after the last one, stop the
    reading of that file: the records read so far are kept, the stop is
    counted as `unreadable` and printed with the file and the byte offset, and
    the other files go on.
    """
    records = tf.data.TFRecordDataset(path).ignore_errors()
    flagged = records.map(_plain(lambda r: (r, False))).concatenate(
        tf.data.Dataset.from_tensors((tf.constant(b""), True))
    )

    @_plain
    def step(state, element):
        offset, index = state
        record, is_end = element
        length = tf.cast(tf.strings.length(record), tf.int64)
        advance = tf.where(is_end, tf.constant(0, tf.int64), length + RECORD_FRAMING)
        return (offset + advance, index + tf.cast(~is_end, tf.int64)), (index, record, is_end, offset)

    @_plain
    def check_end(index, record, is_end, offset):
        stopped = is_end & (offset < size)

        def report():
            numbers = [tf.strings.as_string(n) for n in (offset, size, index)]
            message = tf.strings.join(
                ["warning: ", path, ": unreadable from byte ", numbers[0], " of ", numbers[1], " (record "]
                + [numbers[2], "): a corrupt or truncated record, or bytes after the last; the rest is skipped"]
            )
            with tf.control_dependencies([tf.print(message, output_stream=sys.stderr)]):
                return counter.counts["unreadable"].assign_add(1)

        tf.cond(stopped, report, lambda: counter.counts["unreadable"].assign_add(0))
        return ~is_end

    scanned = flagged.scan((tf.constant(0, tf.int64), tf.constant(0, tf.int64)), step)
    return scanned.filter(check_end).map(_plain(lambda index, record, is_end, offset: (path, index, record)))


def _list_files(file_pattern):
    patterns = [file_pattern] if isinstance(file_pattern, str) else list(file_pattern)
    files = sorted({f for p in patterns for f in tf.io.gfile.glob(p)})
    if not files:
        raise ValueError(f"No TFRecord files match. Received: file_pattern={file_pattern!r}")
    return files


def make_dataset(
    file_pattern,
    split="train",
    batch_size=8,
    clip_length=16,
    frame_intervals=(2,),
    speed_jitter=0.0,
    crop_size=224,
    scale_range=None,
    aspect_range=(0.8, 1.25),
    flip=True,
    color_jitter=HLS_JITTER,
    eval_short_side=None,
    num_clips=1,
    num_crops=1,
    dtype="float32",
    num_classes=None,
    multi_label=False,
    image_key=schema.IMAGE,
    label_key=schema.LABEL_INDEX,
    shuffle_buffer=256,
    seed=None,
    deterministic=True,
    input_context=None,
    skip_bad=False,
    return_video_index=True,
    drop_remainder=None,
    bad_data_counter=None,
    reverse_labels=None,
    position=None,
):
    """A `tf.data.Dataset` of `(clips, labels)` (train) or `(clips, labels, video_index)` (eval).

    Clips are `[batch, clip_length, crop_size, crop_size, 3]` with pixels in
    [0, 255]: the model's `VideoClassifierPreprocessor` normalises them.

    Args:
        file_pattern: glob(s) of TFRecord files, any `tf.io.gfile` path (local, `gs://`).
        split: "train" (random clips, augmentation, shuffled) or "eval" (multi-view, deterministic).
        batch_size: clips per batch (per input pipeline when distributed).
        clip_length: frames per clip.
        frame_intervals: train: the interval is drawn from this list per clip
            (the official Kinetics recipe: `[1, 2, 2, 3]`); eval uses the first.
        speed_jitter: train: the interval is multiplied by U(1 - j, 1 + j).
        crop_size: output height and width.
        scale_range: train: the short side is rescaled to U(low, high) before
            cropping; default `crop_size × (1, 288/224)`, i.e. [224, 288] at 224.
        aspect_range: train: aspect-ratio jitter (log-uniform).
        flip: train: random horizontal flip of the whole clip.
        color_jitter: train: max (hue, lightness, saturation) offsets in HLS
            space (OpenCV scales), or None.
        eval_short_side: eval: resize the short side to this; default
            `crop_size × 256/224`, i.e. 256 at 224 (pass the model's
            `preprocessor.short_side`).
        num_clips, num_crops: eval views per video (crops: 1 = centre,
            3 = start/centre/end of the long side).
        dtype: of the clips: "float32", "bfloat16" or "float16".
        num_classes: labels outside `[0, num_classes)` are bad data.
        multi_label: multi-hot float labels of `num_classes` (DMVR multi-label
            records); otherwise a record's first label is used, and training
            counts records with several in `bad_data_counter`.
        image_key, label_key: feature keys (DMVR / Model Garden records may differ).
        shuffle_buffer: train: after the order of the files is shuffled, each
            block of this many records is permuted, then a buffer of as many
            mixes across blocks (up to twice this many records are held).
        seed: makes sampling, augmentation and order reproducible.
        deterministic: keep element order fixed under parallelism (False
            lets a slow element be overtaken: a little faster, not reproducible).
        input_context: a `tf.distribute.InputContext`: shards by file when
            there are at least as many files as input pipelines, else by
            record, and offsets the seed per pipeline.
        skip_bad: eval: skip bad records instead of failing (train always drops and counts).
        return_video_index: eval: add the video index (for per-video averaging).
        drop_remainder: default True for train, False for eval.
        bad_data_counter: a `BadDataCounter` to count dropped training
            elements in (one is made and attached as `dataset.bad_data` otherwise).
        reverse_labels: train: `reverse_labels[c]` is the class that a clip
            of class c becomes when played backwards (move left / move right);
            half the clips are played backwards and relabelled. Classes past
            the end of the list, or mapped to themselves, keep their label.
        position: train: a `DataPosition`: the stream repeats forever from
            its start and records where each batch ends, for an exact resume.
    """
    if split not in ("train", "eval"):
        raise ValueError(f"`split` must be 'train' or 'eval'. Received: split={split!r}")
    if num_crops not in (1, 3):
        raise ValueError(f"`num_crops` must be 1 or 3. Received: num_crops={num_crops}")
    if multi_label and not num_classes:
        raise ValueError("`multi_label=True` needs `num_classes`. Received: num_classes=None")
    if not frame_intervals or any(i < 1 for i in frame_intervals):
        raise ValueError(f"`frame_intervals` must be positive. Received: frame_intervals={frame_intervals!r}")
    train = split == "train"
    files = _list_files(file_pattern)
    if seed is None:
        seed = int(tf.random.uniform((), maxval=2**31 - 1, dtype=tf.int64))
    pipelines, pipeline_id = 1, 0
    if input_context is not None:
        pipelines, pipeline_id = input_context.num_input_pipelines, input_context.input_pipeline_id
        seed += 7919 * pipeline_id
    by_file = pipelines > 1 and len(files) >= pipelines
    if by_file:
        files = files[pipeline_id::pipelines]

    counter = bad_data_counter or BadDataCounter()
    sizes = [tf.io.gfile.stat(f).length for f in files]
    file_ds = tf.data.Dataset.from_tensor_slices((files, tf.constant(sizes, tf.int64)))

    def read_records(file_ds):
        records = file_ds.interleave(
            _plain(lambda path, size: _readable_records(path, size, counter)),
            cycle_length=min(len(files), 8),
            num_parallel_calls=AUTOTUNE,
            deterministic=deterministic or not train,
        )
        return records.shard(pipelines, pipeline_id) if pipelines > 1 and not by_file else records

    if scale_range is None:
        scale_range = (crop_size, round(crop_size * 288 / 224))
    if eval_short_side is None:
        eval_short_side = default_short_side(crop_size)

    def read_clip_frames(serialized, sample, name):
        """Parses a record and picks the JPEGs of its clip(s), with every validity check.

        Returns `(picked, label, context, has_frames, whole, label_ok)`; `sample(num_frames)`
        gives the frame indices; `name` ("<file> record <n>") is in a parse error.
        """
        jpegs, context = schema.parse_sequence_example(serialized, image_key, label_key, example_name=name)
        label, label_ok = _labels(context[label_key], num_classes, multi_label)
        num_frames = tf.size(jpegs, out_type=tf.int64)
        picked = gather_frames(jpegs, tf.reshape(sample(tf.maximum(num_frames, 1)), [-1]))
        has_frames = num_frames > 0
        return picked, label, context, has_frames, has_frames & jpegs_look_whole(picked), label_ok

    if train:

        @_plain
        def one_pass(pass_number):
            """One shuffled pass over the records: `(pass, index in the pass, record)`."""
            pass_seed = _pass_seed(seed, pass_number)
            records = read_records(_shuffled(file_ds, len(files), pass_seed))
            # A permutation of each block makes passes differ; a sliding buffer then mixes across blocks
            # (a shard packed in class order would otherwise train a block of classes at a time). Its seed is
            # a Python int, which `Dataset.shuffle` needs once a global seed is set, and it restarts each pass.
            records = _shuffled(records, shuffle_buffer, pass_seed)
            records = records.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=False)
            return records.enumerate().map(_plain(lambda index, record: (pass_number, index, record)))

        if position is None:  # one pass per iteration, a different one each time
            passes = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
            records = passes.map(_plain(lambda r: r % 2**31)).flat_map(one_pass)
        else:
            first_pass, first_index = position.start[:2]
            records = tf.data.Dataset.counter(first_pass).flat_map(
                _plain(lambda p: one_pass(p).skip(tf.where(p == first_pass, tf.constant(first_index, tf.int64), 0)))
            )

        @_plain
        def train_element(pass_number, index, record):
            path, record_index, serialized = record
            rand = tf.random.stateless_uniform(
                (), seed=tf.stack([_pass_seed(seed, pass_number), index]), minval=None, maxval=None, dtype=tf.int64
            )
            name = tf.strings.join([path, " record ", tf.strings.as_string(record_index)])
            # Marked under way until the element is done: one that raises stays marked, and is dropped below.
            started = counter.in_progress.insert(name[None], tf.constant([1], tf.int64))
            with tf.control_dependencies([started]):
                serialized = tf.identity(serialized)
            backwards = bool(reverse_labels) and _uniform(rand, 9, 0.0, 1.0) < 0.5

            def sample(n):
                indices = sample_train_indices(n, clip_length, frame_intervals, speed_jitter, rand)
                return tf.where(backwards, tf.reverse(indices, [0]), indices)

            picked, label, context, has_frames, whole, label_ok = read_clip_frames(serialized, sample, name)
            if reverse_labels:
                label = _reverse_label(label, backwards, reverse_labels, multi_label)
            ok = whole & label_ok
            several = tf.size(context[label_key]) > 1
            for reason, bad in (
                ("no_frames", ~has_frames),
                ("bad_jpeg", has_frames & ~whole),
                ("bad_label", whole & ~label_ok),
                (MULTI_LABEL_RECORDS, ok & several & (not multi_label)),
            ):
                counter.counts[reason].assign_add(tf.cast(bad, tf.int64))

            def decode():
                window = _crop_window(
                    tf.image.extract_jpeg_shape(picked[0]), crop_size, scale_range, aspect_range, rand
                )
                frames = _decode_window(picked, window, crop_size)
                clip = tf.image.resize(frames, (crop_size, crop_size))  # bilinear, as the official cv2 loader
                mirror = tf.logical_and(flip, _uniform(rand, 7, 0.0, 1.0) < 0.5)
                offsets = tf.round(
                    _uniform(rand, 8, -1.0, 1.0, (3,)) * tf.constant(color_jitter or (0, 0, 0), tf.float32)
                )
                return _finish_train_clip(clip, mirror, offsets, bool(color_jitter))

            clip = tf.cond(ok, decode, lambda: tf.zeros((clip_length, crop_size, crop_size, 3), tf.float32))
            with tf.control_dependencies([clip, label]):
                finished = counter.in_progress.remove(name[None])
            with tf.control_dependencies([finished]):
                return tf.cast(clip, dtype), tf.identity(label), tf.identity(ok), pass_number, index

        ds = records.map(train_element, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
        ds = ds.ignore_errors().filter(_plain(lambda clip, label, ok, pass_number, index: ok))
        ds = ds.map(_plain(lambda clip, label, ok, pass_number, index: (clip, label, pass_number, index)))
        ds = ds.batch(batch_size, drop_remainder=True if drop_remainder is None else drop_remainder)
        if position is None:
            ds = ds.map(_plain(lambda clips, labels, passes, indices: (clips, labels)))
        else:

            @_plain
            def keep_position(batch, element):
                clips, labels, passes, indices = element
                with tf.control_dependencies([position.record(batch, passes, indices)]):
                    return tf.identity(clips), tf.identity(labels)

            ds = ds.enumerate(start=position.start[2]).map(keep_position)
    else:

        @_plain
        def eval_views(index, record):
            """All views of one video as a dataset of `(clip, label, video_index)`."""
            path, record_index, serialized = record
            where = tf.strings.join([path, " record ", tf.strings.as_string(record_index)])
            picked, label, context, has_frames, whole, label_ok = read_clip_frames(
                serialized, lambda n: sample_eval_indices(n, clip_length, frame_intervals[0], num_clips), where
            )
            ok = whole & label_ok
            if not skip_bad:
                checks = [
                    tf.debugging.Assert(has_frames, ["bad eval data: no frames in", where]),
                    tf.debugging.Assert(~has_frames | whole, ["bad eval data: corrupt JPEG in", where]),
                    tf.debugging.Assert(label_ok, ["bad eval data: label out of range in", where, context[label_key]]),
                ]
                with tf.control_dependencies(checks):
                    ok = tf.identity(ok)
            empty = tf.zeros((0, clip_length, crop_size, crop_size, 3), tf.as_dtype(dtype))
            clips = tf.cond(
                ok,
                lambda: tf.cast(
                    eval_clips(picked, num_clips, num_crops, clip_length, crop_size, eval_short_side), dtype
                ),
                lambda: empty,
            )
            count = tf.shape(clips)[0]
            labels = tf.repeat(label[None], count, axis=0)
            return tf.data.Dataset.from_tensor_slices((clips, labels, tf.fill([count], index)))

        ds = read_records(file_ds).enumerate().flat_map(eval_views)
        if not return_video_index:
            ds = ds.map(_plain(lambda clip, label, index: (clip, label)))
        ds = ds.batch(batch_size, drop_remainder=bool(drop_remainder))
    options = tf.data.Options()
    options.deterministic = bool(deterministic or not train)
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    ds = ds.with_options(options).prefetch(AUTOTUNE)
    ds.bad_data = counter
    return ds


def eval_clips(picked, num_clips, num_crops, clip_length, crop_size, short_side):
    """`[num_clips * num_crops, T, crop, crop, 3]` float clips in [0, 255]: short side resized, then crops."""
    frames = tf.map_fn(lambda j: tf.image.decode_jpeg(j, channels=3), picked, fn_output_signature=tf.uint8)
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
