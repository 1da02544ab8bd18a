"""How fast the training pipeline makes clips: the whole pipeline on every core, and each stage on one.

`clips_per_second` times any dataset of batches; `stage_costs` times each step
of `train_dataset`'s map (the same functions) on one thread, over elements the
stage before it made and kept in memory, so each stage's own cost shows:
read (TFRecord bytes from the files), parse (the SequenceExample, the sampled
frames' JPEGs and their checks), decode (each JPEG's crop window), resize,
augment (flip and colour jitter) and batch. `mfnet-doctor` and
`benchmarks/pipeline.py` report both.

Examples:
>>> import contextlib, io, os, tempfile
>>> from tfrecords_tools import synthetic, pack
>>> root = tempfile.mkdtemp()
>>> _ = synthetic.generate(os.path.join(root, "v"), train_per_class=1, test_per_class=0, frames=8, size=32, workers=1)
>>> with contextlib.redirect_stdout(io.StringIO()):  # pack's summary line
...     _ = pack.pack_dataset(os.path.join(root, "v"), os.path.join(root, "r"), layout="list", short_side=32, workers=1)
>>> costs = stage_costs(os.path.join(root, "r", "train-*"), clip_length=4, crop_size=16, batch_size=2, seconds=0.1)
>>> list(costs)
['read', 'parse', 'decode', 'resize', 'augment', 'batch']
"""

import os
import statistics
import time

import tensorflow as tf

from mfnet_keras.data import augment, records, sampling
from mfnet_keras.data.data_config import DataConfig
from tfrecords_tools import schema

STAGES = ("read", "parse", "decode", "resize", "augment", "batch")


def cores():
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def clips_per_second(ds, seconds=10.0, windows=3, warm_up=2.0):
    """Median clips/s of iterating `ds` (batches, counted by their first tensor) over `windows` timed windows
    that last `seconds` in all, after `warm_up` seconds that let tf.data tune its parallelism.

    Args:
        ds: a dataset of batches.
        seconds: the timed windows' total length.
        windows: how many timed windows (the median is returned).
        warm_up: seconds iterated before timing, for tf.data's autotuning.
    """
    iterator = iter(ds)
    started = time.perf_counter()
    next(iterator)
    while time.perf_counter() - started < warm_up:
        next(iterator)
    rates = []
    for _ in range(windows):
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds / windows:
            count += int(tf.nest.flatten(next(iterator))[0].shape[0])
        rates.append(count / (time.perf_counter() - started))
    return statistics.median(rates)


def _one_thread(ds):
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    options.autotune.enabled = False
    return ds.with_options(options)


def _seconds_per_element(ds, seconds):
    """Seconds per element of `ds` (repeated), iterated on one thread for about `seconds` after one element."""
    iterator = iter(_one_thread(ds.repeat()))
    next(iterator)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds or count < 2:
        next(iterator)
        count += 1
    return (time.perf_counter() - started) / count


def _kept(ds, samples):
    """The first `samples` elements of `ds`, made once and then held in memory."""
    ds = ds.take(samples).cache()
    for _ in ds:
        pass
    return ds


def stage_costs(file_pattern, clip_length=16, crop_size=224, batch_size=8, samples=16, seconds=2.0, **options):
    """Core-milliseconds per clip of each stage of the training pipeline (`STAGES`), on one thread.

    `options` are `train_dataset`'s (frame intervals, scale range, jitter...);
    `samples` records are taken from the first files, each stage timed for
    about `seconds`.

    Args:
        file_pattern: a glob of packed TFRecords.
        clip_length: frames per clip.
        crop_size: clip height and width.
        batch_size: clips per batch (the batch stage).
        samples: records taken from the first files.
        seconds: about how long each stage is timed.
        **options: `train_dataset`'s options (frame intervals, scale range, jitter, ...).
    """
    config = DataConfig(clip_length=clip_length, crop_size=crop_size)
    options = config.updated("stage_costs", DataConfig.TRAIN, **options).options()
    files = tf.data.Dataset.from_tensor_slices(records.list_files(file_pattern))
    raw = files.flat_map(tf.data.TFRecordDataset).take(samples)
    costs = {"read": _seconds_per_element(raw, seconds)}
    keyed = _kept(raw.enumerate(), samples)

    @records.plain
    def parse(rand, serialized):
        def sample(n):
            return sampling.sample_train_indices(
                n, options["clip_length"], options["frame_intervals"], options["speed_jitter"], rand
            )

        picked = records.decode_record(
            serialized, sample, "", None, False, options["image_key"], options["label_key"] or schema.LABEL_INDEX
        )[0]
        return rand, picked

    steps = (
        ("parse", parse),
        ("decode", lambda rand, picked: (rand, augment.decode_train_crop(picked, rand, options))),
        ("resize", lambda rand, frames: (rand, augment.resize_crop(frames, options))),
        ("augment", lambda rand, clip: (rand, augment.flip_and_jitter(clip, rand, options))),
    )
    for name, step in steps:
        made = keyed.map(records.plain(step))
        costs[name] = _seconds_per_element(made, seconds)
        keyed = _kept(made, samples)
    clips = keyed.map(lambda rand, clip: clip)
    costs["batch"] = _seconds_per_element(clips.batch(batch_size), seconds) / batch_size
    return {name: 1000 * value for name, value in costs.items()}
