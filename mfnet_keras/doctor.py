"""Says whether the input pipeline can feed a training step, on this machine: clips/s per core, the stage
that bounds it, the cores an accelerator needs and what would help.

    mfnet-doctor "records/train-*.tfrecord" [--model mfnet3d] [--step-rate 400] [--json]

The whole training pipeline (`train_dataset`) is timed on every core, each of
its stages on one (`mfnet_keras.data.throughput`), and with `--model` one
training step of that model here. `--step-rate` is an accelerator's training
steps per second at `--batch-size` clips: the answer is how many cores of this
kind decode that many clips (tf.data service workers add cores:
`mfnet-data-service`).
"""

import math
import time

import keras
import numpy as np
import tensorflow as tf

from mfnet_keras.data import records, throughput, train_dataset
from mfnet_keras.defaults import default_short_side
from tfrecords_tools import schema

ADVICE = {
    "read": "reading the files bounds the pipeline: put the records on local or faster storage",
    "parse": "parsing bounds the pipeline: records with fewer frames parse faster (mfnet-pack --fps, --max-frames)",
    "decode": "JPEG decoding bounds the pipeline: {short_side}",
    "resize": "resizing bounds the pipeline: {short_side}",
    "augment": "colour jitter bounds the pipeline: data.color_jitter=[] turns it off",
    "batch": "batching bounds the pipeline: a smaller batch copies less at once",
}


def first_frame_size(file_pattern):
    """`(height, width)` of the first record's frames, as `tfrecords_tools.pack` stored them.

    Args:
        file_pattern: a glob of packed TFRecords.
    """

    for serialized in tf.data.TFRecordDataset(records.list_files(file_pattern)[:1]).take(1):
        context = schema.parse_sequence_example(serialized)[1]
        return int(context[schema.HEIGHT]), int(context[schema.WIDTH])
    raise ValueError(f"No records in the first file of {file_pattern!r}")


def step_seconds(model, batch_size, clip_length, crop_size, steps=1):
    """Median seconds of a training step of `model` (SGD, cross-entropy) on random clips of this size.

    Args:
        model: the classifier to time.
        batch_size: clips per step.
        clip_length: frames per clip.
        crop_size: clip height and width.
        steps: timed steps (the median is returned).
    """

    shape = (batch_size, clip_length, crop_size, crop_size, 3)
    x = np.random.default_rng(0).uniform(0, 255, shape).astype("float32")
    y = np.zeros((batch_size,), "int32")
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=not model.outputs_probabilities)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=loss)
    model.train_on_batch(x, y)  # builds and compiles the step
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def shorter_side_advice(frame_size, crop_size):
    """What packing at a shorter side would save, or how to decode less when it would not.

    Args:
        frame_size: the stored frames' `(height, width)`.
        crop_size: the training crop's side.
    """

    stored, wanted = min(frame_size), default_short_side(crop_size)
    if stored > wanted * 1.1:
        return (
            f"frames are stored at a short side of {stored} for {crop_size}-pixel crops; "
            f"mfnet-pack --short-side {wanted} decodes about {(stored / wanted) ** 2:.1f}x fewer pixels"
        )
    return f"frames are stored at a short side of {stored}, already close to the crop: fewer frames per clip"


def advise(report):
    """Lines of advice for a `diagnose` report: the bounding stage, frames per clip, and cores.

    Args:
        report: the dict `diagnose` builds.
    """
    lines = [ADVICE[report["bound"]].format(short_side=shorter_side_advice(report["frame_size"], report["crop_size"]))]
    if report["clip_length"] > 8:
        lines.append(f"decoding costs scale with frames per clip: {report['clip_length'] // 2} frames halve it")
    needed = report.get("cores_needed")
    if needed and needed > report["cores"]:
        lines.append(
            f"this machine has {report['cores']} cores: decode on {math.ceil(needed / report['cores'])} machines "
            "like it (mfnet-data-service workers), or pack smaller frames"
        )
    return lines


def diagnose(file_pattern, model=None, clip_length=16, crop_size=224, batch_size=8, step_rate=None, seconds=6.0):
    """The doctor's findings as a dict: pipeline clips/s (and per core), stage costs (core-ms per clip),
    the stage that bounds it, `model`'s step time here, the cores `step_rate` steps/s need, and advice.

    Args:
        file_pattern: a glob of packed training TFRecords.
        model: a classifier whose training step is timed too (None: none).
        clip_length: frames per clip.
        crop_size: clip height and width.
        batch_size: clips per training step.
        step_rate: an accelerator's training steps per second to feed (None: no cores estimate).
        seconds: how long the whole pipeline is timed.
    """

    cores = throughput.cores()
    ds = train_dataset(file_pattern, batch_size, seed=0, clip_length=clip_length, crop_size=crop_size).repeat()
    rate = throughput.clips_per_second(ds, seconds)
    costs = throughput.stage_costs(file_pattern, clip_length, crop_size, batch_size, seconds=seconds / 6)
    report = {
        "records": file_pattern,
        "frame_size": first_frame_size(file_pattern),
        "clip_length": clip_length,
        "crop_size": crop_size,
        "batch_size": batch_size,
        "cores": cores,
        "clips_per_second": rate,
        "clips_per_second_per_core": rate / cores,
        "stage_core_ms_per_clip": costs,
        "bound": max(costs, key=costs.get),
    }
    if model is not None:
        report["model"] = model.name
        report["step_seconds"] = step_seconds(model, batch_size, clip_length, crop_size)
        report["cores_for_this_machine"] = batch_size / report["step_seconds"] / (rate / cores)
    if step_rate:
        report["step_rate"] = step_rate
        report["cores_needed"] = step_rate * batch_size / (rate / cores)
    report["advice"] = advise(report)
    return report


def format_report(report):
    """The report as the lines `mfnet-doctor` prints.

    Args:
        report: the dict `diagnose` returns.
    """
    height, width = report["frame_size"]
    lines = [
        f"records: {report['records']} (frames {width}x{height})",
        f"clips: {report['clip_length']}x{report['crop_size']}x{report['crop_size']}, batch {report['batch_size']}",
        f"pipeline: {report['clips_per_second']:.1f} clips/s on {report['cores']} cores = "
        f"{report['clips_per_second_per_core']:.1f} clips/s per core",
        "stages (core-ms per clip, each on one thread):",
    ]
    costs = report["stage_core_ms_per_clip"]
    total = sum(costs.values())
    for name, value in costs.items():
        mark = "  <- bound" if name == report["bound"] else ""
        lines.append(f"  {name:<8}{value:>9.2f}{100 * value / total:>6.0f} %{mark}")
    if "model" in report:
        lines.append(
            f"model {report['model']}: {report['step_seconds']:.3f} s per step here "
            f"({report['batch_size'] / report['step_seconds']:.1f} clips/s): the pipeline needs "
            f"{report['cores_for_this_machine']:.2f} cores to keep up"
        )
    if "step_rate" in report:
        clips = report["step_rate"] * report["batch_size"]
        lines.append(
            f"{report['step_rate']:g} steps/s of {report['batch_size']} clips ({clips:g} clips/s) need "
            f"{report['cores_needed']:.1f} cores like these"
        )
    return lines + ["advice:"] + [f"  - {line}" for line in report["advice"]]
