"""Which frames a clip takes, and the stateless randomness behind every choice of the pipeline.

Every random choice is a stateless op keyed by the seed, the pass over the
data and the record's place in that pass, so results do not depend on
parallelism, a `seed` makes a run reproducible while epochs still differ, and a
`DataPosition` lets an interrupted run go on exactly where it stopped.
"""

import tensorflow as tf

from mfnet_keras.data.records import plain
from mfnet_keras.defaults import clip_span


def element_seed(rand, k):
    """The k-th stateless seed of an element.

    Args:
        rand: the element's int64 random key.
        k: which of the element's random choices this seed is for.
    """
    return tf.stack([rand, tf.constant(k, tf.int64)])


def uniform(rand, k, low, high, shape=()):
    """A stateless uniform draw in `[low, high)`: the element's `k`-th random choice.

    Args:
        rand: the element's int64 random key.
        k: which of the element's random choices.
        low: lower bound.
        high: upper bound.
        shape: the draw's shape (default: a scalar).
    """
    return tf.random.stateless_uniform(shape, seed=element_seed(rand, k), minval=low, maxval=high)


def sample_train_indices(num_frames, clip_length, frame_intervals, speed_jitter, rand):
    """Frame indices of one training clip: random interval from the list (± speed jitter), random start, looping.

    Args:
        num_frames: frames in the video (int64 scalar).
        clip_length: frames per clip.
        frame_intervals: the intervals to choose from, one per clip.
        speed_jitter: the interval is scaled by a factor in `[1 - speed_jitter, 1 + speed_jitter]` (0: off).
        rand: the element's int64 random key.
    """
    intervals = tf.constant(frame_intervals, tf.float32)
    pick = tf.random.stateless_uniform((), seed=element_seed(rand, 0), maxval=len(frame_intervals), dtype=tf.int32)
    interval = intervals[pick]
    if speed_jitter:
        interval *= uniform(rand, 1, 1.0 - speed_jitter, 1.0 + speed_jitter)
    offsets = tf.round(tf.range(clip_length, dtype=tf.float32) * interval)
    span = tf.cast(offsets[-1], tf.int64) + 1
    start_max = tf.maximum(num_frames - span, 0)
    start = tf.cast(tf.floor(uniform(rand, 2, 0.0, 1.0) * tf.cast(start_max + 1, tf.float32)), tf.int64)
    start = tf.minimum(start, start_max)
    return (start + tf.cast(offsets, tf.int64)) % num_frames


def sample_eval_indices(num_frames, clip_length, frame_interval, num_clips):
    """`[num_clips, clip_length]` indices: clips with uniformly spaced starts covering the video, looping.

    Args:
        num_frames: frames in the video (int64 scalar).
        clip_length: frames per clip.
        frame_interval: frames between consecutive clip frames.
        num_clips: clips spread over the video.
    """
    span = clip_span(clip_length, frame_interval)
    start_max = tf.maximum(num_frames - span, 0)
    if num_clips == 1:
        starts = tf.reshape(start_max // 2, [1])
    else:
        steps = tf.range(num_clips, dtype=tf.float64) / (num_clips - 1)
        starts = tf.cast(tf.round(steps * tf.cast(start_max, tf.float64)), tf.int64)
    offsets = tf.range(clip_length, dtype=tf.int64) * frame_interval
    return (starts[:, None] + offsets[None, :]) % num_frames


class DataPosition:
    """Where an endless training stream stands: `(pass, records of that pass read)` after each batch.

    Given to `make_dataset`, the train stream repeats forever, starts at
    `start` (`[pass, index, batch]`, as `after_steps` gives it) and records
    the position after each batch it yields. A resumed run that starts where
    the last trained batch ended sees exactly the clips an uninterrupted run
    would have. `batches_per_step`: batches of this pipeline that one training
    step takes (replicas per input pipeline).

    Args:
        start: `[pass, index, batch]` to start at (from `after_steps` of an earlier run).
        batches_per_step: batches each training step takes (several under a multi-replica strategy).
    """

    def __init__(self, start=(0, 0, 0), batches_per_step=1):
        self.start = [int(n) for n in start]
        self.batches_per_step = batches_per_step
        self.table = tf.lookup.experimental.MutableHashTable(tf.int64, tf.int64, default_value=[-1, -1])

    def after_steps(self, steps):
        """`[pass, index, batch]` to resume at after `steps` training steps, or None when unknown here.

        Args:
            steps: training steps done since `start`.
        """
        batch = steps * self.batches_per_step - 1
        pass_number, index = (int(n) for n in self.table.lookup(tf.constant([batch], tf.int64))[0].numpy())
        if pass_number < 0:
            return None
        batches = self.table.export()[0]
        self.table.remove(batches[batches < batch])  # older batches are behind any later resume
        return [pass_number, index, batch + 1]

    def record(self, batch, passes, indices):
        """In the pipeline: the position after `batch`, whose last element came from `(passes[-1], indices[-1])`.

        Args:
            batch: the batch just yielded.
            passes: the pass of each of its elements.
            indices: the index within its pass of each of its elements.
        """
        return self.table.insert(batch[None], tf.stack([passes[-1], indices[-1] + 1])[None])


def pass_seed(seed, pass_number):
    """The seed of one pass over the data (its file and record order, and its elements' random choices).

    Args:
        seed: the run's seed.
        pass_number: which pass over the data.
    """
    return tf.constant(seed, tf.int64) * 1_000_003 + tf.cast(pass_number, tf.int64)


def shuffled(ds, block, seed):
    """`ds` shuffled within consecutive blocks of `block` elements, in an order that `seed` (a tensor) fixes.

    Stateless, unlike `Dataset.shuffle`, whose seed must not be a tensor when
    a global seed is set; a pass's order then depends on its seed alone.

    Args:
        ds: the dataset to shuffle.
        block: elements per block.
        seed: a scalar int64 tensor that fixes the order.
    """

    @plain
    def shuffle_block(number, elements):
        size = tf.shape(tf.nest.flatten(elements)[0])[0]
        order = tf.random.experimental.stateless_shuffle(tf.range(size), seed=tf.stack([seed, number]))
        return tf.data.Dataset.from_tensor_slices(tf.nest.map_structure(lambda t: tf.gather(t, order), elements))

    return ds.batch(block).enumerate().flat_map(shuffle_block)
