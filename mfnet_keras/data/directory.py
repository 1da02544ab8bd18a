"""Clips straight from a folder of videos, `keras.utils.image_dataset_from_directory`'s way: no packing.

Videos are decoded with PyAV as the dataset runs (several at a time), then
sampled and augmented exactly as the packed pipeline does (`sampling`,
`augment`). Packing (`tfrecords_tools.pack`) stays the fast path for big data:
a packed clip decodes only the frames and pixels it keeps.
"""

import os
import sys
import threading

import numpy as np
import tensorflow as tf

from mfnet_keras.data import augment, sampling
from mfnet_keras.data.data_config import DataConfig
from tfrecords_tools.video import VIDEO_EXTENSIONS, VideoError, decode_video

AUTOTUNE = tf.data.AUTOTUNE
SUBSETS = ("training", "validation", "both")


class SkippedVideos:
    """The videos a dataset could not decode, with the reason: each is skipped, counted and named once."""

    def __init__(self):
        self.reasons = {}
        self._lock = threading.Lock()

    @property
    def count(self):
        return len(self.reasons)

    def add(self, path, reason):
        """TODO

        Args:
            path: the video.
            reason: why it was skipped, one line.
        """
        with self._lock:
            first = path not in self.reasons
            self.reasons[path] = reason
        if first:
            print(f"warning: skipping {path}: {reason}", file=sys.stderr)


def list_videos(directory, labels="inferred", class_names=None):
    """`(paths, labels, class_names)` of the videos under `directory`, in sorted order.

    `labels="inferred"`: one class per sub-folder (`class_names` picks and orders
    them), `None`: no labels (any videos under the folder), or a list of one
    integer label per video in sorted path order.

    Args:
        directory: the folder of videos.
        labels: `"inferred"` (one class per sub-folder), None (no labels), or one integer per video in sorted
            path order.
        class_names: with `"inferred"`, the sub-folders to take, in label order.
    """
    if not os.path.isdir(directory):
        raise ValueError(f"`directory` must be a folder of videos. Received: directory={directory!r}")
    if labels == "inferred":
        found = sorted(d.name for d in os.scandir(directory) if d.is_dir())
        class_names = list(class_names) if class_names is not None else found
        missing = sorted(set(class_names) - set(found))
        if missing:
            raise ValueError(f"`class_names` has no folder in {directory}: {missing}. Received: {class_names}")
        pairs = [(p, i) for i, name in enumerate(class_names) for p in _videos_under(os.path.join(directory, name))]
    else:
        pairs = [(p, None) for p in _videos_under(directory)]
    pairs.sort()
    if not pairs:
        raise ValueError(f"No videos found in {directory} (looked for {', '.join(VIDEO_EXTENSIONS)})")
    paths = [p for p, _ in pairs]
    if labels == "inferred":
        return paths, [label for _, label in pairs], class_names
    if labels is not None:
        if len(labels) != len(paths):
            raise ValueError(f"`labels` must have one label per video ({len(paths)}). Received: {len(labels)} labels")
        return paths, [int(label) for label in labels], class_names
    return paths, None, class_names


def _videos_under(folder):
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs.sort()
        found += [os.path.join(root, f) for f in sorted(files) if os.path.splitext(f)[1].lower() in VIDEO_EXTENSIONS]
    return found


def split_subset(items, validation_split, subset, seed):
    """The `subset` of `items` (a list of sequences of equal length) after a shuffle by `seed`.

    Args:
        items: sequences of equal length (paths, labels), split together.
        validation_split: the fraction held out for validation (0 or None: no split).
        subset: `"training"` or `"validation"`.
        seed: the shuffle's seed.
    """
    if not validation_split:
        return items
    count = len(items[0])
    order = np.random.RandomState(seed).permutation(count) if seed is not None else np.arange(count)
    cut = count - int(validation_split * count)
    part = order[:cut] if subset == "training" else order[cut:]
    return [[values[i] for i in part] if values is not None else None for values in items]


def _check(labels, label_mode, validation_split, subset, seed, shuffle):
    if label_mode not in ("int", "categorical", None):
        raise ValueError(f"`label_mode` must be 'int', 'categorical' or None. Received: label_mode={label_mode!r}")
    if not (labels in ("inferred", None) or isinstance(labels, (list, tuple))):
        raise ValueError(f"`labels` must be 'inferred', None or a list of labels. Received: labels={labels!r}")
    if validation_split is not None and not 0 < validation_split < 1:
        raise ValueError(f"`validation_split` must be in (0, 1). Received: validation_split={validation_split}")
    if subset not in (None, *SUBSETS):
        raise ValueError(f"`subset` must be one of {SUBSETS} or None. Received: subset={subset!r}")
    if bool(validation_split) != bool(subset):
        raise ValueError(
            f"`validation_split` and `subset` go together. Received: validation_split={validation_split}, "
            f"subset={subset!r}"
        )
    if validation_split and shuffle and seed is None:
        raise ValueError("`validation_split` with `shuffle=True` needs a `seed`, so both subsets split the same way")


def video_dataset_from_directory(
    directory,
    labels="inferred",
    label_mode="int",
    class_names=None,
    batch_size=8,
    shuffle=True,
    seed=None,
    validation_split=None,
    subset=None,
    config=None,
    **options,
):
    """A `tf.data.Dataset` of `(clips, labels)` decoded from `directory/<class>/<video>` as it runs.

    Clips are float32 `[batch, clip_length, crop_size, crop_size, 3]` in
    [0, 255], as `train_dataset` gives them: a model's preprocessor normalises
    them. The training subset (or the whole folder without `validation_split`)
    takes one random clip per video per epoch with the packed pipeline's crop,
    flip and colour jitter; the validation subset the centre clip, centre
    crop. A video that cannot be decoded is skipped with one warning line and
    counted in `dataset.skipped`. Works with `fit` on every Keras backend.

    Args:
        directory: a folder with one sub-folder of videos per class (any
            depth below it), or of videos alone when `labels=None`.
        labels: "inferred" (from the sub-folders), None, or one integer
            label per video in sorted path order.
        label_mode: "int", "categorical" (one-hot) or None (clips only).
        class_names: the sub-folders to use, in label order (default: all, sorted).
        batch_size: clips per batch.
        shuffle: shuffle the videos each epoch (training subset).
        seed: for the shuffle, the split and the augmentation.
        validation_split: the fraction of videos held out, with `subset`.
        subset: "training", "validation" or "both" (returns both datasets).
        config: a `DataConfig` (default: its defaults): clip size, sampling, augmentation.
        **options: `DataConfig` fields of training (`clip_length=16`,
            `crop_size=224`, `frame_intervals=(2,)`, `scale_range`, `flip`,
            `color_jitter`, ...) and `eval_short_side`, replacing the config's;
            and `training` (force random or centre clips).

    Returns:
        The dataset (two for `subset="both"`), with `class_names`,
        `file_paths` and `skipped` attributes.

    Examples:
    >>> import tempfile, numpy as np
    >>> from tfrecords_tools.video import write_video
    >>> root = tempfile.mkdtemp()
    >>> for name in ("left", "right"):
    ...     os.makedirs(os.path.join(root, name))
    ...     frames = [np.full((48, 64, 3), 10 * i, np.uint8) for i in range(12)]
    ...     write_video(os.path.join(root, name, "a.mp4"), frames)
    >>> ds = video_dataset_from_directory(root, batch_size=2, clip_length=4, crop_size=32, seed=0)
    >>> ds.class_names
    ['left', 'right']
    >>> clips, labels = next(iter(ds))
    >>> tuple(clips.shape), sorted(labels.numpy().tolist())
    ((2, 4, 32, 32, 3), [0, 1])
    """
    _check(labels, label_mode, validation_split, subset, seed, shuffle)
    if subset == "both":
        return tuple(
            video_dataset_from_directory(
                directory,
                labels,
                label_mode,
                class_names,
                batch_size,
                shuffle,
                seed,
                validation_split,
                part,
                config,
                **options,
            )
            for part in SUBSETS[:2]
        )
    paths, targets, class_names = list_videos(directory, labels, class_names)
    paths, targets = split_subset([paths, targets], validation_split, subset, seed)
    if not paths:
        raise ValueError(f"The {subset} subset of {directory} is empty (validation_split={validation_split})")
    training = options.pop("training", subset != "validation")
    fields = (*DataConfig.TRAIN, "eval_short_side")
    options = (config or DataConfig()).updated("video_dataset_from_directory", fields, **options).options()
    skipped = SkippedVideos()
    ds = _clips(paths, targets if label_mode else None, training, shuffle and training, seed, options, skipped)
    if label_mode == "categorical":
        depth = len(class_names) if class_names else max(targets) + 1
        ds = ds.map(lambda clip, label: (clip, tf.one_hot(label, depth)))
    ds = ds.batch(batch_size).prefetch(AUTOTUNE)
    ds.class_names, ds.file_paths, ds.skipped = class_names, paths, skipped
    return ds


def _clips(paths, targets, training, shuffle, seed, options, skipped):
    """Unbatched `(clip, label)` (or clips) of the videos, the unreadable ones dropped."""
    short_side = options["scale_range"][1] if training else options["eval_short_side"]

    def decode(path):
        path = path.numpy().decode()
        try:
            return np.stack(decode_video(path, short_side=short_side).frames)
        except (VideoError, OSError, ValueError) as error:
            skipped.add(path, str(error))
            return np.zeros((0, 2, 2, 3), np.uint8)

    def element(index, rand):
        frames = tf.py_function(decode, [path_table[index]], tf.uint8)
        frames.set_shape([None, None, None, 3])
        count = tf.shape(frames, out_type=tf.int64)[0]
        clip = tf.cond(count > 0, lambda: _clip(frames, count, rand, training, options), lambda: _empty(options))
        return (clip, label_table[index], count > 0) if targets is not None else (clip, count > 0)

    path_table = tf.constant(paths)
    label_table = tf.constant(targets if targets is not None else [0] * len(paths), tf.int32)
    ds = tf.data.Dataset.range(len(paths))
    if shuffle:
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    random = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    ds = tf.data.Dataset.zip(ds, random).map(element, num_parallel_calls=AUTOTUNE)
    ds = ds.filter(lambda *parts: parts[-1])
    return ds.map(lambda *parts: parts[:-1] if len(parts) > 2 else parts[0])


def _clip(frames, count, rand, training, options):
    length = options["clip_length"]
    if training:
        indices = sampling.sample_train_indices(
            count, length, options["frame_intervals"], options["speed_jitter"], rand
        )
        return augment.train_view(tf.gather(frames, indices), rand, options)
    indices = sampling.sample_eval_indices(count, length, options["frame_intervals"][0], 1)
    views = augment.eval_views(
        tf.gather(frames, indices[0]), 1, 1, length, options["crop_size"], options["eval_short_side"]
    )
    return views[0]


def _empty(options):
    size = options["crop_size"]
    return tf.zeros((options["clip_length"], size, size, 3))
