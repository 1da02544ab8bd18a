"""Datasets of clips for `model.fit` / `model.evaluate`: `train_dataset`, `eval_dataset`, and `make_dataset`.

Train: one clip per video per epoch (random start and frame interval, short
videos loop), decoding ONLY the sampled frames and only the pixels of the
random crop (`decode_and_crop_jpeg`), then flip, HLS colour jitter. Eval:
`num_clips` uniformly spaced clips × `num_crops` crops per video,
deterministic, each view tagged with its `video_index`. Pixels stay in
[0, 255]: the model's `VideoClassifierPreprocessor` normalises them.

Examples:
>>> import io, os, tempfile
>>> import numpy as np, tensorflow as tf
>>> from PIL import Image
>>> from tfrecords_tools import schema
>>> def jpeg(value):
...     out = io.BytesIO()
...     Image.fromarray(np.full((48, 64, 3), value, "uint8")).save(out, "JPEG")
...     return out.getvalue()
>>> path = os.path.join(tempfile.mkdtemp(), "train-00000-of-00001.tfrecord")
>>> with tf.io.TFRecordWriter(path) as writer:
...     for label in range(2):
...         frames = [jpeg(10 * i) for i in range(20)]
...         writer.write(schema.make_sequence_example(frames, label, str(label), "v.mp4", 25, 48, 64))
>>> clips, labels = next(iter(make_dataset(path, batch_size=2, clip_length=8, crop_size=32, seed=0)))
>>> clips.shape, clips.dtype.name, sorted(labels.numpy().tolist())
(TensorShape([2, 8, 32, 32, 3]), 'float32', [0, 1])
>>> views = make_dataset(path, "eval", batch_size=8, clip_length=8, crop_size=32, num_clips=2, num_crops=3)
>>> [tuple(t.shape) for t in next(iter(views))]
[(8, 8, 32, 32, 3), (8,), (8,)]
"""

import tensorflow as tf

from mfnet_keras.data import augment, records, sampling
from mfnet_keras.data.data_config import DataConfig
from mfnet_keras.data.service import distribute

AUTOTUNE = tf.data.AUTOTUNE
plain = records.plain


class _Source:
    """The files one input pipeline reads, its seed, and how it shards (see `make_dataset`'s `input_context`)."""

    def __init__(self, file_pattern, seed, input_context, counter, deterministic):
        self.files = records.list_files(file_pattern)
        self.seed = int(tf.random.uniform((), maxval=2**31 - 1, dtype=tf.int64)) if seed is None else seed
        self.pipelines, self.pipeline_id = 1, 0
        if input_context is not None:
            self.pipelines, self.pipeline_id = input_context.num_input_pipelines, input_context.input_pipeline_id
            self.seed += 7919 * self.pipeline_id
        self.by_file = self.pipelines > 1 and len(self.files) >= self.pipelines
        if self.by_file:
            self.files = self.files[self.pipeline_id :: self.pipelines]
        self.counter, self.deterministic = counter, deterministic
        sizes = [tf.io.gfile.stat(f).length for f in self.files]
        self.file_ds = tf.data.Dataset.from_tensor_slices((self.files, tf.constant(sizes, tf.int64)))

    def read(self, file_ds):
        """`(path, index, record)` of the files in `file_ds`, interleaved, sharded by record when not by file."""
        ds = file_ds.interleave(
            plain(lambda path, size: records.readable_records(path, size, self.counter)),
            cycle_length=min(len(self.files), 8),
            num_parallel_calls=AUTOTUNE,
            deterministic=self.deterministic,
        )
        return ds.shard(self.pipelines, self.pipeline_id) if self.pipelines > 1 and not self.by_file else ds

    def passes(self, shuffle_buffer, position, split_passes=False):
        """`(pass, index in the pass, record)`: one shuffled pass per iteration, or endless from `position`,
        or endless passes that tf.data service splits among its workers (`split_passes`)."""
        seed = self.seed

        @plain
        def one_pass(pass_number):
            pass_seed = sampling.pass_seed(seed, pass_number)
            ds = self.read(sampling.shuffled(self.file_ds, len(self.files), pass_seed))
            # A permutation of each block makes passes differ; a sliding buffer then mixes across blocks
            # (a shard packed in class order would otherwise train a block of classes at a time). Its seed is
            # a Python int, which `Dataset.shuffle` needs once a global seed is set, and it restarts each pass.
            ds = sampling.shuffled(ds, shuffle_buffer, pass_seed)
            ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=False)
            return ds.enumerate().map(plain(lambda index, record: (pass_number, index, record)))

        if split_passes:  # a tf.data service dispatcher hands the passes out to its workers, one at a time
            return tf.data.Dataset.range(2**62).flat_map(one_pass)
        if position is None:
            passes = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
            return passes.map(plain(lambda r: r % 2**31)).flat_map(one_pass)
        first_pass, first_index = position.start[:2]
        return tf.data.Dataset.counter(first_pass).flat_map(
            plain(lambda p: one_pass(p).skip(tf.where(p == first_pass, tf.constant(first_index, tf.int64), 0)))
        )


def _count_bad(counter, has_frames, whole, label_ok, several, multi_label):
    ok = whole & label_ok
    for reason, bad in (
        ("no_frames", ~has_frames),
        ("bad_jpeg", has_frames & ~whole),
        ("bad_label", whole & ~label_ok),
        (records.MULTI_LABEL_RECORDS, ok & several & (not multi_label)),
    ):
        counter.add(reason, bad)
    return ok


def _train_clip(picked, rand, options):
    """The augmented clip of the sampled JPEGs: random crop (decoding its window only), resize, flip, jitter."""
    frames = augment.decode_train_crop(picked, rand, options)
    return augment.flip_and_jitter(augment.resize_crop(frames, options), rand, options)


def _train_element_fn(seed, counter, options):
    """The map from `(pass, index, (path, record index, record))` to `(clip, label, ok, pass, index)`."""
    reverse_labels, multi_label, label_key = options["reverse_labels"], options["multi_label"], options["label_key"]

    @plain
    def train_element(pass_number, index, record):
        path, record_index, serialized = record
        rand = tf.random.stateless_uniform(
            (), seed=tf.stack([sampling.pass_seed(seed, pass_number), index]), minval=None, maxval=None, dtype=tf.int64
        )
        name = tf.strings.join([path, " record ", tf.strings.as_string(record_index)])
        # Marked under way until the element is done: one that raises stays marked, and is dropped below.
        started = counter.start(name)
        with tf.control_dependencies([started]):
            serialized = tf.identity(serialized)
        backwards = bool(reverse_labels) and sampling.uniform(rand, 9, 0.0, 1.0) < 0.5

        def sample(n):
            indices = sampling.sample_train_indices(
                n, options["clip_length"], options["frame_intervals"], options["speed_jitter"], rand
            )
            return tf.where(backwards, tf.reverse(indices, [0]), indices)

        picked, label, context, has_frames, whole, label_ok = records.decode_record(
            serialized, sample, name, options["num_classes"], multi_label, options["image_key"], label_key
        )
        if reverse_labels:
            label = augment.reverse_label(label, backwards, reverse_labels, multi_label)
        several = tf.size(context[label_key]) > 1
        ok = _count_bad(counter, has_frames, whole, label_ok, several, multi_label)
        size, length = options["crop_size"], options["clip_length"]
        clip = tf.cond(ok, lambda: _train_clip(picked, rand, options), lambda: tf.zeros((length, size, size, 3)))
        with tf.control_dependencies([clip, label]):
            finished = counter.finish(name)
        with tf.control_dependencies([finished]):
            return tf.cast(clip, options["dtype"]), tf.identity(label), tf.identity(ok), pass_number, index

    return train_element


def train_dataset(
    file_pattern,
    batch_size=8,
    seed=None,
    deterministic=True,
    input_context=None,
    config=None,
    bad_data_counter=None,
    reverse_labels=None,
    position=None,
    data_service=None,
    **options,
):
    """Shuffled, augmented training clips `(clips, labels)`: bad records dropped and counted, endless and
    resumable with a `position`.

    Args:
        file_pattern: glob(s) of TFRecord files, any `tf.io.gfile` path (local, `gs://`).
        batch_size: clips per batch (per input pipeline when distributed).
        seed: makes sampling, augmentation and order reproducible.
        deterministic: keep element order fixed under parallelism (False
            lets a slow element be overtaken: a little faster, not reproducible).
        input_context: a `tf.distribute.InputContext`: shards by file when
            there are at least as many files as input pipelines, else by
            record, and offsets the seed per pipeline.
        config: a `DataConfig` (default: its defaults).
        bad_data_counter: a `BadDataCounter` to count dropped elements in
            (one is made and attached as `dataset.bad_data` otherwise).
        reverse_labels: `reverse_labels[c]` is the class that a clip of class
            c becomes when played backwards (move left / move right); half the
            clips are played backwards and relabelled. Classes past the end of
            the list, or mapped to themselves, keep their label.
        position: a `DataPosition`: the stream repeats forever from its start
            and records where each batch ends, for an exact resume.
        data_service: `grpc://HOST:PORT` of a tf.data service dispatcher whose workers run the pipeline.
        **options: `DataConfig` fields of training (`DataConfig.TRAIN`) that replace the config's.
    """
    config = (config or DataConfig()).updated("train_dataset", DataConfig.TRAIN, **options)
    if data_service and position is not None:
        raise ValueError("`position` cannot be kept when tf.data service workers run the pipeline (`data_service`)")
    options = {**config.options(), "reverse_labels": reverse_labels}
    counter = records.UncountedBadData() if data_service else bad_data_counter or records.BadDataCounter()
    source = _Source(file_pattern, seed, input_context, counter, deterministic)
    element = _train_element_fn(source.seed, counter, options)
    ds = source.passes(config.shuffle_buffer, position, split_passes=bool(data_service))
    ds = ds.map(element, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    ds = ds.ignore_errors().filter(plain(lambda clip, label, ok, pass_number, index: ok))
    ds = ds.map(plain(lambda clip, label, ok, pass_number, index: (clip, label, pass_number, index)))
    drop_remainder = config.drop_remainder
    ds = ds.batch(batch_size, drop_remainder=True if drop_remainder is None else drop_remainder)
    if position is None:
        ds = ds.map(plain(lambda clips, labels, passes, indices: (clips, labels)))
    else:

        @plain
        def keep_position(batch, element):
            clips, labels, passes, indices = element
            with tf.control_dependencies([position.record(batch, passes, indices)]):
                return tf.identity(clips), tf.identity(labels)

        ds = ds.enumerate(start=position.start[2]).map(keep_position)
    return _finish(ds, deterministic, counter, data_service)


def _eval_views_fn(options):
    """The map from `(video index, (path, record index, record))` to a dataset of its views."""
    clip_length, crop_size, dtype = options["clip_length"], options["crop_size"], options["dtype"]
    label_key = options["label_key"]

    @plain
    def eval_views(index, record):
        path, record_index, serialized = record
        where = tf.strings.join([path, " record ", tf.strings.as_string(record_index)])
        sample = lambda n: sampling.sample_eval_indices(  # noqa: E731
            n, clip_length, options["frame_intervals"][0], options["num_clips"]
        )
        picked, label, context, has_frames, whole, label_ok = records.decode_record(
            serialized, sample, where, options["num_classes"], options["multi_label"], options["image_key"], label_key
        )
        ok = whole & label_ok
        if not options["skip_bad"]:
            checks = [
                tf.debugging.Assert(has_frames, ["bad eval data: no frames in", where]),
                tf.debugging.Assert(~has_frames | whole, ["bad eval data: corrupt JPEG in", where]),
                tf.debugging.Assert(label_ok, ["bad eval data: label out of range in", where, context[label_key]]),
            ]
            with tf.control_dependencies(checks):
                ok = tf.identity(ok)
        views = options["num_clips"], options["num_crops"], clip_length, crop_size, options["eval_short_side"]
        clips = tf.cond(
            ok,
            lambda: tf.cast(augment.eval_clips(picked, *views), dtype),
            lambda: tf.zeros((0, clip_length, crop_size, crop_size, 3), tf.as_dtype(dtype)),
        )
        count = tf.shape(clips)[0]
        return tf.data.Dataset.from_tensor_slices(
            (clips, tf.repeat(label[None], count, axis=0), tf.fill([count], index))
        )

    return eval_views


def eval_dataset(file_pattern, batch_size=8, input_context=None, config=None, **options):
    """Every view of every video, in order, as `(clips, labels, video_index)` (or `(clips, labels)` with
    `return_video_index=False`).

    Args:
        file_pattern: glob(s) of TFRecord files.
        batch_size: views per batch (per input pipeline when distributed).
        input_context: a `tf.distribute.InputContext` (see `train_dataset`).
        config: a `DataConfig` (default: its defaults).
        **options: `DataConfig` fields of evaluation (`DataConfig.EVAL`) that replace the config's.
    """
    config = (config or DataConfig()).updated("eval_dataset", DataConfig.EVAL, **options)
    counter = records.BadDataCounter()
    source = _Source(file_pattern, 0, input_context, counter, deterministic=True)
    ds = source.read(source.file_ds).enumerate().flat_map(_eval_views_fn(config.options()))
    if not config.return_video_index:
        ds = ds.map(plain(lambda clip, label, index: (clip, label)))
    ds = ds.batch(batch_size, drop_remainder=bool(config.drop_remainder))
    return _finish(ds, True, counter)


def _finish(ds, deterministic, counter, service=None):
    options = tf.data.Options()
    options.deterministic = bool(deterministic)
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    ds = ds.with_options(options)
    if service:
        ds = distribute(ds, service)
    ds = ds.prefetch(AUTOTUNE)
    ds.bad_data = counter
    return ds


def calibration_dataset(file_pattern, preprocessor):
    """Clips one by one, cut as `preprocessor`'s model sees them (`DataConfig.calibration`): what int8
    export calibrates on.

    Args:
        file_pattern: a glob of TFRecords whose clips calibrate.
        preprocessor: the model's `VideoClassifierPreprocessor` (clip length, short side, crop size).
    """
    return train_dataset(file_pattern, 1, seed=0, config=DataConfig.calibration(preprocessor))


# Arguments of `train_dataset` that are not `DataConfig` fields, and those `eval_dataset` takes too.
_TRAIN_ARGUMENTS = ("seed", "deterministic", "input_context", "bad_data_counter", "reverse_labels", "position")
_TRAIN_ARGUMENTS += ("data_service",)


def make_dataset(file_pattern, split="train", batch_size=8, **options):
    """`train_dataset` (split "train": random clips, augmentation, shuffled) or `eval_dataset` (split
    "eval": multi-view, deterministic); the clips are `[batch, clip_length, crop_size, crop_size, 3]` with
    pixels in [0, 255] (the model's `VideoClassifierPreprocessor` normalises them).

    Args:
        file_pattern: glob(s) of TFRecord files, any `tf.io.gfile` path (local, `gs://`).
        split: "train" or "eval".
        batch_size: clips per batch (per input pipeline when distributed).
        **options: that builder's arguments (`seed`, `input_context`, `position`, ...) and `DataConfig`
            fields; those of the other split only are ignored (one set of options serves both).
    """
    if split not in ("train", "eval"):
        raise ValueError(f"`split` must be 'train' or 'eval'. Received: split={split!r}")
    if split == "train":
        eval_only = set(DataConfig.EVAL) - set(DataConfig.TRAIN)
        return train_dataset(file_pattern, batch_size, **{k: v for k, v in options.items() if k not in eval_only})
    train_only = set(_TRAIN_ARGUMENTS) - {"input_context"}
    train_only |= {name for name in DataConfig.TRAIN if name not in DataConfig.EVAL}
    return eval_dataset(file_pattern, batch_size, **{k: v for k, v in options.items() if k not in train_only})
