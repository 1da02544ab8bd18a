"""Reading TFRecords of videos: files, records up to the first unreadable byte, parsing, bad-data accounting.

The Decoder of the pipeline (Model Garden's split): what a record holds and
whether it is usable. Records are `tfrecords_tools.schema` SequenceExamples
(`tfrecords_tools.pack`, DMVR, Model Garden).
"""

import json
import logging
import os
import sys

import keras
import tensorflow as tf

from tfrecords_tools import schema

# tf.data functions here hold no Python control flow on tensors: AutoGraph, which costs seconds per
# pipeline at start-up, is skipped.
plain = tf.autograph.experimental.do_not_convert
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

    def add(self, reason, amount):
        """In the pipeline: counts `amount` more elements (or stops) for `reason`.

        Args:
            reason: one of `BAD_DATA_REASONS` or `MULTI_LABEL_RECORDS`.
            amount: how many (a scalar tensor; a boolean counts as 0 or 1).
        """
        return self.counts[reason].assign_add(tf.cast(amount, tf.int64))

    def start(self, name):
        """In the pipeline: marks the element read from record `name` as under way.

        Args:
            name: the element's `"<file> record <n>"`, a scalar string tensor.
        """
        return self.in_progress.insert(name[None], tf.constant([1], tf.int64))

    def finish(self, name):
        """In the pipeline: the element of record `name` is done (one never finished raised, and was dropped).

        Args:
            name: the element's `"<file> record <n>"`, as given to `start`.
        """
        return self.in_progress.remove(name[None])

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


class UncountedBadData(BadDataCounter):
    """A `BadDataCounter` that holds no state and counts nothing: for a pipeline that runs on other machines
    (tf.data service workers), which cannot update the trainer's variables. Bad data is still dropped."""

    def __init__(self):
        self.counts = {reason: tf.constant(0, tf.int64) for reason in (*BAD_DATA_REASONS, MULTI_LABEL_RECORDS)}

    def add(self, reason, amount):
        """Counts nothing: `amount` as int64, so that the pipeline's control dependencies still hold.

        Args:
            reason: as for `BadDataCounter.add` (ignored).
            amount: as for `BadDataCounter.add`.
        """
        return tf.cast(amount, tf.int64)

    def start(self, name):
        """Marks nothing: a constant True (also `finish`).

        Args:
            name: as for `BadDataCounter.start` (ignored).
        """
        return tf.constant(True)

    finish = start

    def failed_records(self):
        return []

    def reset(self):
        pass


class BadDataLogger(keras.callbacks.Callback):
    """Logs, at each epoch end, how many training elements were dropped for bad data and how many records
    with several labels trained on their first label, then resets the counts.

    Adds `bad_data_dropped` and `multi_label_records` to the epoch logs (so CSVLogger/TensorBoard see them).

    Args:
        counter: the `BadDataCounter` of the training pipeline.
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


def list_files(file_pattern):
    """The sorted, distinct files that `file_pattern` matches; ValueError naming it when none does.

    Args:
        file_pattern: a glob (or a list of globs) that `tf.io.gfile.glob` reads.
    """
    patterns = [file_pattern] if isinstance(file_pattern, str) else list(file_pattern)
    files = sorted({f for p in patterns for f in tf.io.gfile.glob(p)})
    if not files:
        raise ValueError(f"No TFRecord files match. Received: file_pattern={file_pattern!r}")
    return files


def readable_records(path, size, counter):
    """`(path, index, record)` of one TFRecord file, up to its first unreadable record.

    A corrupt or truncated record, or bytes after the last one, stop the
    reading of that file: the records read so far are kept, the stop is
    counted as `unreadable` and printed with the file and the byte offset, and
    the other files go on.

    Args:
        path: the TFRecord file.
        size: its size in bytes (where reading stops short of it, the rest is counted as unreadable).
        counter: the `BadDataCounter` that counts a stop.
    """
    records = tf.data.TFRecordDataset(path).ignore_errors()
    flagged = records.map(plain(lambda r: (r, False))).concatenate(
        tf.data.Dataset.from_tensors((tf.constant(b""), True))
    )

    @plain
    def step(state, element):
        offset, index = state
        record, is_end = element
        length = tf.cast(tf.strings.length(record), tf.int64)
        advance = tf.where(is_end, tf.constant(0, tf.int64), length + RECORD_FRAMING)
        return (offset + advance, index + tf.cast(~is_end, tf.int64)), (index, record, is_end, offset)

    @plain
    def check_end(index, record, is_end, offset):
        stopped = is_end & (offset < size)

        def report():
            numbers = [tf.strings.as_string(n) for n in (offset, size, index)]
            message = tf.strings.join(
                ["warning: ", path, ": unreadable from byte ", numbers[0], " of ", numbers[1], " (record "]
                + [numbers[2], "): a corrupt or truncated record, or bytes after the last; the rest is skipped"]
            )
            with tf.control_dependencies([tf.print(message, output_stream=sys.stderr)]):
                return counter.add("unreadable", 1)

        tf.cond(stopped, report, lambda: counter.add("unreadable", 0))
        return ~is_end

    scanned = flagged.scan((tf.constant(0, tf.int64), tf.constant(0, tf.int64)), step)
    return scanned.filter(check_end).map(plain(lambda index, record, is_end, offset: (path, index, record)))


def parse_labels(label_values, num_classes, multi_label):
    """Label (int32 scalar, or multi-hot) and whether it is valid.

    Single-label: the record's first label, valid when in range whatever the
    others are. Multi-label: every label must be in range.

    Args:
        label_values: the record's label values (int64, any number).
        num_classes: labels must lie in `[0, num_classes)`.
        multi_label: return a multi-hot vector instead of the first label.
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


def gather_frames(jpegs, indices):
    """The JPEGs at `indices`; placeholders (that fail `jpegs_look_whole`) when the video has no frame.

    Args:
        jpegs: the record's encoded frames, a string vector.
        indices: frame indices into `jpegs`.
    """
    safe = tf.cond(tf.size(jpegs) > 0, lambda: jpegs, lambda: tf.constant([b""]))
    return tf.gather(safe, indices % tf.size(safe, out_type=indices.dtype))


def jpegs_look_whole(jpegs):
    """True when every JPEG starts with SOI and ends with EOI: catches truncated and garbage frames cheaply.

    Args:
        jpegs: encoded frames, a string tensor.
    """
    length = tf.strings.length(jpegs)
    head = tf.strings.substr(jpegs, tf.zeros_like(length), tf.fill(tf.shape(length), 2)) == b"\xff\xd8"
    tail = tf.strings.substr(jpegs, tf.maximum(length - 2, 0), tf.fill(tf.shape(length), 2)) == b"\xff\xd9"
    long_enough = length >= 4
    return tf.reduce_all(head & tail & long_enough)


def decode_record(serialized, sample, name, num_classes, multi_label, image_key, label_key):
    """Parses a record and picks the JPEGs of its clip(s), with every validity check.

    Returns `(picked, label, context, has_frames, whole, label_ok)`; `sample(num_frames)`
    gives the frame indices; `name` ("<file> record <n>") is in a parse error.

    Args:
        serialized: one serialized `SequenceExample`.
        sample: `sample(num_frames)` -> the frame indices of the clip(s).
        name: `"<file> record <n>"`, named in a parse error.
        num_classes: labels must lie in `[0, num_classes)`.
        multi_label: multi-hot labels instead of the first one.
        image_key: the feature list that holds the JPEGs.
        label_key: the context feature that holds the labels.
    """
    jpegs, context = schema.parse_sequence_example(serialized, image_key, label_key, example_name=name)
    label, label_ok = parse_labels(context[label_key], num_classes, multi_label)
    num_frames = tf.size(jpegs, out_type=tf.int64)
    picked = gather_frames(jpegs, tf.reshape(sample(tf.maximum(num_frames, 1)), [-1]))
    has_frames = num_frames > 0
    return picked, label, context, has_frames, has_frames & jpegs_look_whole(picked), label_ok


def read_labels(pattern):
    """Class names from the `labels.txt` that `tfrecords_tools.pack` wrote beside the files, or None.

    Args:
        pattern: a glob of the packed TFRecords (the `labels.txt` beside the first match is read).
    """
    labels_path = os.path.join(os.path.dirname(sorted(tf.io.gfile.glob(pattern))[0]), "labels.txt")
    if not tf.io.gfile.exists(labels_path):
        return None
    with tf.io.gfile.GFile(labels_path) as f:
        return [line.strip() for line in f if line.strip()]


def records_info(pattern, count=True):
    """`(labels, videos)` from the `labels.txt` and `manifest.json` that `tfrecords_tools.pack` wrote beside the files.

    Without a manifest the records are counted (one pass over the files), or `videos` is None if not `count`.

    Args:
        pattern: a glob of the packed TFRecords.
        count: without a manifest, count the records (one pass over the files); else `videos` is None.
    """
    files = sorted(tf.io.gfile.glob(pattern))
    folder = os.path.dirname(files[0])
    labels = read_labels(pattern)
    videos = None
    manifest_path = os.path.join(folder, "manifest.json")
    if tf.io.gfile.exists(manifest_path):
        with tf.io.gfile.GFile(manifest_path) as f:
            manifest = json.load(f)
        names = {os.path.basename(p) for p in files}
        videos = sum(s["videos"] for s in manifest["splits"].values() if names & set(s["shards"]))
    if videos is None and count:  # the readable records (the pipeline reports the rest)
        videos = sum(int(tf.data.TFRecordDataset(f).ignore_errors().reduce(0, lambda n, _: n + 1)) for f in files)
    return labels, videos
