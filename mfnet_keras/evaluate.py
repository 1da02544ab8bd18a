"""Evaluates a trained model over multi-view clips: video- and clip-level accuracy, per-class accuracy, plots.

    mfnet-evaluate --config NAME_OR_FILE --weights runs/NAME/model.keras [--output DIR]

The config gives the records and the views; the clip size, resize, frame
interval, normalisation and class names are the model's own.

Video-level predictions average the softmax of all views (`eval.num_clips` ×
`eval.num_crops`) of a video. Writes `report.json`, `per_class_accuracy.png`
(classes sorted by accuracy, as the paper's Fig. 7) and `confusion_matrix.png`.
With `data.multi_label` the views' sigmoids are averaged and the report gives
mean average precision (`video_map`, `clip_map`, per-class `average_precision`,
plotted in `per_class_average_precision.png`).
"""

import math
import os
import re
import sys
import time

import numpy as np
from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend (e.g. a notebook's) alone
from tqdm import tqdm

from mfnet_keras import models
from mfnet_keras.config import ConfigError
from mfnet_keras.data import make_dataset, records_info
from mfnet_keras.files import save_figure, write_json
from mfnet_keras.inference import softmax


def sigmoid(logits):
    """The logistic function of `logits`, in float64.

    Args:
        logits: scores.
    """
    return 1.0 / (1.0 + np.exp(-logits))


def average_precision(scores, positives):
    """Area under the precision-recall step curve: the mean precision at the rank of each positive.

    Args:
        scores: one class's score per video.
        positives: whether each video is of that class.
    """
    order = np.argsort(-scores, kind="stable")
    hits = positives[order].astype(bool)
    if not hits.any():
        return None
    precision_at_rank = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision_at_rank[hits].mean())


def multi_label_metrics(probs, labels, video_index, class_names):
    """Mean average precision over classes (those with a positive video), per video and per view.

    Args:
        probs: `[views, classes]` sigmoid of each view.
        labels: `[views, classes]` multi-hot targets (the same for all views of a video).
        video_index: `[views]` video each view belongs to.
        class_names: names of the classes, in index order.
    """
    videos = np.unique(video_index)
    video_probs = np.stack([probs[video_index == v].mean(axis=0) for v in videos])
    video_labels = np.stack([labels[video_index == v][0] for v in videos])
    per_class, video_ap, clip_ap = {}, [], []
    for c, name in enumerate(class_names):
        ap = average_precision(video_probs[:, c], video_labels[:, c])
        per_class[name] = {"videos": int(video_labels[:, c].sum()), "average_precision": ap}
        if ap is not None:
            video_ap.append(ap)
            clip_ap.append(average_precision(probs[:, c], labels[:, c]))
    return {
        "videos": int(len(videos)),
        "views": int(len(labels)),
        "video_map": float(np.mean(video_ap)) if video_ap else None,
        "clip_map": float(np.mean(clip_ap)) if clip_ap else None,
        "per_class": per_class,
    }


def top_k_hits(probs, labels, k):
    """Whether each label is among the k highest scores (ties broken by index).

    Args:
        probs: scores `[videos, classes]`.
        labels: each video's label.
        k: how many of the highest scores count.
    """
    top = np.argsort(-probs, axis=-1, kind="stable")[:, :k]
    return np.any(top == labels[:, None], axis=-1)


def video_metrics(probs, labels, video_index, class_names):
    """Accuracy figures from per-view class probabilities.

    Args:
        probs: `[views, classes]` softmax of each view.
        labels: `[views]` label of each view (the same for all views of a video).
        video_index: `[views]` video each view belongs to.
        class_names: names of the classes, in index order.
    """
    videos = np.unique(video_index)
    video_probs = np.stack([probs[video_index == v].mean(axis=0) for v in videos])
    video_labels = np.array([labels[video_index == v][0] for v in videos])
    predictions = video_probs.argmax(axis=-1)
    classes = len(class_names)
    confusion = np.zeros((classes, classes), np.int64)
    np.add.at(confusion, (video_labels, predictions), 1)
    per_class = {}
    for c, name in enumerate(class_names):
        total = int(confusion[c].sum())
        per_class[name] = {"videos": total, "accuracy": float(confusion[c, c] / total) if total else None}
    return {
        "videos": int(len(videos)),
        "views": int(len(labels)),
        "video_top1": float(top_k_hits(video_probs, video_labels, 1).mean()),
        "video_top5": float(top_k_hits(video_probs, video_labels, min(5, classes)).mean()),
        "clip_top1": float(top_k_hits(probs, labels, 1).mean()),
        "per_class": per_class,
        "confusion_matrix": confusion.tolist(),
    }


def plot_per_class(per_class, path, title, metric="accuracy"):
    """A bar chart of each class's `metric`, written to `path`.

    Args:
        per_class: `{class name: value}`.
        path: the PNG to write.
        title: the chart's title.
        metric: the axis label.
    """
    items = sorted(((v[metric], k) for k, v in per_class.items() if v[metric] is not None), reverse=True)
    fig = Figure(figsize=(max(6, 0.35 * len(items)), 4))
    ax = fig.subplots()
    ax.bar(range(len(items)), [100 * a for a, _ in items], color="#3b75af")
    ax.set_xticks(range(len(items)))
    ax.set_xticklabels([k for _, k in items], rotation=90 if len(items) <= 60 else 0, fontsize=8)
    if len(items) > 60:
        ax.set_xticks([])
        ax.set_xlabel("classes, sorted by accuracy")
    ax.set_ylabel(f"video-level {metric.replace('_', ' ')} (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    save_figure(fig, path)


def plot_confusion(confusion, class_names, path, title):
    """The confusion matrix as an image with class names on both axes, written to `path`.

    Args:
        confusion: counts `[true class, predicted class]`.
        class_names: the class names.
        path: the PNG to write.
        title: the chart's title.
    """
    confusion = np.asarray(confusion, float)
    rows = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    size = max(4, 0.4 * len(class_names))
    fig = Figure(figsize=(size + 1, size))
    ax = fig.subplots()
    image = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    if len(class_names) <= 40:
        ax.set_xticks(range(len(class_names)))
        ax.set_xticklabels(class_names, rotation=90, fontsize=7)
        ax.set_yticks(range(len(class_names)))
        ax.set_yticklabels(class_names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046)
    save_figure(fig, path)


def predict_views(model, config, pattern):
    """`(probs, labels, video_index)` over every view of the eval records: softmax, or sigmoid and
    multi-hot labels with `data.multi_label`. Clip size, resize and frame interval are the model's.

    Args:
        model: the classifier.
        config: the evaluation config (views, batch size, multi-label).
        pattern: a glob of the eval TFRecords.
    """

    data, eval_cfg, pre = config["data"], config["eval"], model.preprocessor
    ds = make_dataset(
        pattern,
        "eval",
        batch_size=eval_cfg["batch_size"],
        clip_length=pre.clip_length,
        crop_size=pre.crop_size,
        eval_short_side=pre.short_side,
        frame_intervals=(pre.frame_interval,),
        num_clips=eval_cfg["num_clips"],
        num_crops=eval_cfg["num_crops"],
        num_classes=model.num_classes,
        multi_label=data["multi_label"],
    )
    known = records_info(pattern, count=False)[1]  # the progress bar's length, when the manifest says it
    views = known and known * eval_cfg["num_clips"] * eval_cfg["num_crops"]
    total = views and math.ceil(views / eval_cfg["batch_size"])
    probs, labels, videos = [], [], []
    for clips, y, index in tqdm(ds, total=total, unit="batch", desc="evaluating", file=sys.stderr):
        logits = model(clips, training=False)
        probs.append((sigmoid if data["multi_label"] else softmax)(np.asarray(logits, np.float64)))
        labels.append(y.numpy())
        videos.append(index.numpy())
    return np.concatenate(probs), np.concatenate(labels), np.concatenate(videos)


def check_records(config):
    """Refuses a config of `data.videos`: evaluation reads packed records.

    Args:
        config: the evaluation config.
    """
    if config["data"]["videos"]:
        raise ConfigError(
            "config error: mfnet-evaluate reads packed records (data.eval): pack data.videos with "
            "mfnet-pack first (training reports the held-out videos' accuracy as val_accuracy)"
        )


def evaluate(config, weights, output):
    """Evaluates a classifier on `data.eval` (else `data.train`); writes the report and plots; returns
    the report. Class names are the model's.

    Args:
        config: a loaded config: the records, clip size and evaluation views.
        weights: a `.keras` file or a preset handle.
        output: the report folder.
    """

    check_records(config)
    started = time.time()
    pattern = config["data"]["eval"] or config["data"]["train"]
    model = models.load_model(weights)
    class_names = model.class_names
    probs, labels, videos = predict_views(model, config, pattern)
    multi_label = config["data"]["multi_label"]
    report = (multi_label_metrics if multi_label else video_metrics)(probs, labels, videos, class_names)
    report.update(
        weights=weights,
        records=pattern,
        num_clips=config["eval"]["num_clips"],
        num_crops=config["eval"]["num_crops"],
        seconds=round(time.time() - started, 1),
    )
    os.makedirs(output, exist_ok=True)
    write_json(os.path.join(output, "report.json"), report)
    _plot_and_print(report, class_names, output, os.path.basename(os.path.dirname(os.path.abspath(weights))))
    return report


def _plot_and_print(report, class_names, output, name):
    where = f"({report['videos']} videos, {report['views']} views) -> {os.path.join(output, 'report.json')}"
    if "video_map" in report:
        plot_per_class(
            report["per_class"],
            os.path.join(output, "per_class_average_precision.png"),
            f"{name}: per-class average precision",
            metric="average_precision",
        )
        print(
            f"video mAP {100 * (report['video_map'] or 0):.1f}%  clip mAP {100 * (report['clip_map'] or 0):.1f}%  {where}"
        )
        return
    plot_per_class(report["per_class"], os.path.join(output, "per_class_accuracy.png"), f"{name}: per-class accuracy")
    plot_confusion(report["confusion_matrix"], class_names, os.path.join(output, "confusion_matrix.png"), name)
    print(
        f"video top-1 {100 * report['video_top1']:.1f}%  top-5 {100 * report['video_top5']:.1f}%  "
        f"clip top-1 {100 * report['clip_top1']:.1f}%  {where}"
    )


def data_error_text(error):
    """The part of a data error that says what and where, without TensorFlow's graph and op details.

    Args:
        error: a `tf.errors.InvalidArgumentError` of the pipeline.
    """
    text = " ".join(str(error.message).split())
    found = re.search(r"assertion failed: (.*?)(?: \[\[|$)", text) or re.search(
        r"([^:]*example id: .*?)(?: \[\[|$)", text
    )
    return (found.group(1) if found else text).replace("] [", " ").strip("[]")
