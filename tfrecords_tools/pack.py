"""Packs a video dataset into sharded TFRecords of SequenceExamples (see `tfrecords_tools.schema`).

    mfnet-pack SOURCE OUTPUT_DIR --layout folders [options]
    pack_dataset(source, output_dir, layout="folders", short_side=256, ...)  # the same, from Python

Writes `<split>-00000-of-000NN.tfrecord`, `labels.txt` and `manifest.json`.
Each shard is written under a temporary name and renamed when complete; a
killed run re-run with `--resume` redoes only the incomplete shards and ends
with the same records as an uninterrupted run. Videos that cannot be used are
skipped with their reason (see `tfrecords_tools.video.VideoError`), truncated
ones too unless `--keep-partial`.
"""

import dataclasses
import json
import math
import multiprocessing
import os
import sys

from tqdm import tqdm

from tfrecords_tools import __version__, schema
from tfrecords_tools.layouts import LAYOUTS, LayoutError, list_source
from tfrecords_tools.video import VideoError, decode_video, encode_jpeg

STATE_DIR = ".pack"  # plan and per-shard results, for --resume
# Rough bytes of JPEG frames per byte of compressed source video, to size shards.
JPEG_EXPANSION = 10


class UsageError(Exception):
    """Bad command line or source: one line, exit code 2, nothing written."""


@dataclasses.dataclass(frozen=True)
class PackOptions:
    """How a dataset becomes records. Saved with the plan: `resume` needs the same.

    Attributes:
        layout: how the source is organised, one of `LAYOUTS`.
        split: the UCF-101 / HMDB51 split, 1 to 3.
        split_name: the split's name for `folders` (default: train) or a single list file.
        short_side: resize so the short side is this (0: keep).
        fps: resample to at most this frame rate (None: keep).
        max_frames: keep at most this many frames per video (None: all).
        jpeg_quality: JPEG quality, 1 to 100.
        shards: shards per split (None: from `shard_size_mb`).
        shard_size_mb: target shard size, estimated from the source sizes.
        keep_partial: pack damaged videos with the frames that decode.
    """

    layout: str = "folders"
    split: int = 1
    split_name: str | None = None
    short_side: int = 256
    fps: float | None = None
    max_frames: int | None = None
    jpeg_quality: int = 90
    shards: int | None = None
    shard_size_mb: float = 200
    keep_partial: bool = False

    def problems(self):
        """`(option, what is wrong)` for each value out of range."""
        checks = [
            ("layout", self.layout not in LAYOUTS, f"must be one of {', '.join(LAYOUTS)}, got {self.layout!r}"),
            ("split", self.split not in (1, 2, 3), f"must be 1, 2 or 3, got {self.split}"),
            ("short_side", self.short_side < 0, f"must be >= 0, got {self.short_side}"),
            ("fps", self.fps is not None and self.fps <= 0, f"must be > 0, got {self.fps}"),
            ("max_frames", self.max_frames is not None and self.max_frames < 1, f"must be >= 1, got {self.max_frames}"),
            ("jpeg_quality", not 1 <= self.jpeg_quality <= 100, f"must be in 1..100, got {self.jpeg_quality}"),
            ("shards", self.shards is not None and self.shards < 1, f"must be >= 1, got {self.shards}"),
            ("shard_size_mb", self.shard_size_mb <= 0, f"must be > 0, got {self.shard_size_mb}"),
        ]
        return [(option, message) for option, failed, message in checks if failed]


def encode_video(task):
    """Worker: decodes one video and JPEG-encodes its frames. Returns a dict; never raises for bad videos.

    Args:
        task: `(path, short_side, fps, max_frames, jpeg quality, keep_partial)` of one video.
    """
    path, short_side, fps, max_frames, quality, keep_partial = task
    try:
        video = decode_video(path, short_side=short_side, fps=fps, max_frames=max_frames, keep_partial=keep_partial)
    except VideoError as error:
        return {"ok": False, "reason": str(error)}
    height, width = video.frames[0].shape[:2]
    sar = video.sample_aspect_ratio
    return {
        "ok": True,
        "jpegs": [encode_jpeg(f, quality) for f in video.frames],
        "fps": video.fps,
        "height": height,
        "width": width,
        "sample_aspect_ratio": None if sar == 1 else f"{sar.numerator}:{sar.denominator}",
        "problem": video.problem,
    }


def shard_names(split, count):
    """The file names of a split's `count` shards: `<split>-NNNNN-of-NNNNN.tfrecord`.

    Args:
        split: the split's name.
        count: its number of shards.
    """
    return [f"{split}-{i:05d}-of-{count:05d}.tfrecord" for i in range(count)]


def plan_shards(listing, shards, shard_size_mb):
    """Deterministic assignment of each split's videos to shards (round robin over sorted paths).

    Args:
        listing: the dataset's `Listing`.
        shards: shards per split (None: from `shard_size_mb`).
        shard_size_mb: target shard size, estimated from the source files.
    """
    plan = {}
    for split, entries in listing.splits.items():
        if not entries:
            continue
        if shards:
            count = shards
        else:
            source_bytes = sum(os.path.getsize(os.path.join(listing.root, p)) for p, _ in entries)
            count = math.ceil(source_bytes * JPEG_EXPANSION / (shard_size_mb * 2**20))
        count = max(1, min(count, len(entries)))
        plan[split] = [
            {"name": name, "videos": [list(e) for e in entries[i::count]]}
            for i, name in enumerate(shard_names(split, count))
        ]
    return plan


def _write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def _shard_done(output_dir, shard):
    state = os.path.join(output_dir, STATE_DIR, shard["name"] + ".json")
    return os.path.exists(os.path.join(output_dir, shard["name"])) and os.path.exists(state)


def pack_dataset(source, output_dir, *, csv=None, workers=None, resume=False, **options):
    """Packs `source` into `output_dir`; returns the manifest (also written as `manifest.json`).

    Args:
        source: the dataset folder, or the list file of `layout="list"`.
        output_dir: where the shards, `labels.txt` and `manifest.json` go.
        csv: the Kinetics CSV (default: the only `.csv` in `source`).
        workers: decoding processes (default: every core).
        resume: finish an interrupted run in `output_dir` (otherwise it must be empty).
        **options: `PackOptions` fields: `layout`, `split`, `split_name`,
            `short_side`, `fps`, `max_frames`, `jpeg_quality`, `shards`,
            `shard_size_mb`, `keep_partial`.

    Raises `UsageError` (one line) for a bad option, source or output folder.
    """
    unknown = sorted(set(options) - {field.name for field in dataclasses.fields(PackOptions)})
    if unknown:
        raise UsageError(f"unknown pack option {unknown[0]!r}; expected some of {sorted(PackOptions().__dict__)}")
    settings = PackOptions(**options)
    for option, message in settings.problems():
        raise UsageError(f"`{option}` {message}")
    workers = workers or os.cpu_count()
    if workers < 1:
        raise UsageError(f"`workers` must be >= 1, got {workers}")
    source = os.path.abspath(source)
    try:
        listing = list_source(
            settings.layout, source, split=settings.split, split_name=settings.split_name, csv_path=csv
        )
    except LayoutError as error:
        raise UsageError(str(error)) from error
    state_dir = os.path.join(output_dir, STATE_DIR)
    plan_path = os.path.join(state_dir, "plan.json")
    plan = plan_shards(listing, settings.shards, settings.shard_size_mb)
    if os.path.isdir(output_dir) and os.listdir(output_dir):
        if not resume:
            raise UsageError(f"{output_dir} is not empty; pass --resume to finish an earlier run there")
        if os.path.exists(plan_path):
            with open(plan_path) as f:
                previous = json.load(f)
            if previous["options"] != dataclasses.asdict(settings) or previous["plan"] != plan:
                raise UsageError(f"{output_dir} holds a run with other options or videos; use an empty folder")
    os.makedirs(state_dir, exist_ok=True)
    _write_json(plan_path, {"options": dataclasses.asdict(settings), "plan": plan, "source": source})

    pending = [(split, shard) for split, shards in plan.items() for shard in shards]
    pending = [(split, shard) for split, shard in pending if not _shard_done(output_dir, shard)]
    total = sum(len(shard["videos"]) for _, shard in pending)
    elapsed = _encode_shards(settings, output_dir, workers, listing, pending) if pending else 0.0
    manifest = _manifest(output_dir, listing, plan, dataclasses.asdict(settings), source)
    with open(os.path.join(output_dir, "labels.txt"), "w") as f:
        f.write("".join(name + "\n" for name in listing.classes))
    _write_json(os.path.join(output_dir, "manifest.json"), manifest)
    _summary(manifest, total, elapsed)
    return manifest


def _encode_shards(settings, output_dir, workers, listing, pending):
    import tensorflow as tf

    encoding = (settings.short_side, settings.fps, settings.max_frames, settings.jpeg_quality, settings.keep_partial)
    tasks = [(os.path.join(listing.root, path), *encoding) for _, shard in pending for path, _ in shard["videos"]]
    label_index = {name: i for i, name in enumerate(listing.classes)}
    context = multiprocessing.get_context("spawn")  # workers never load TensorFlow
    # smoothing=0: the bar shows the run's average rate, the same figure as the summary line.
    bar = tqdm(total=len(tasks), unit="video", desc="packing", file=sys.stderr, smoothing=0)
    with context.Pool(workers) as pool, bar:
        results = pool.imap(encode_video, tasks, chunksize=1)
        for _, shard in pending:
            final = os.path.join(output_dir, shard["name"])
            tmp = os.path.join(output_dir, STATE_DIR, shard["name"] + ".tmp")
            stats = {"videos": 0, "frames": 0, "classes": {}, "skipped": [], "partial": [], "non_square_pixels": []}
            with tf.io.TFRecordWriter(tmp) as writer:
                for path, label in shard["videos"]:
                    result = next(results)
                    bar.update(1)
                    if not result["ok"]:
                        stats["skipped"].append({"path": path, "reason": result["reason"]})
                        continue
                    if result["problem"]:
                        stats["partial"].append({"path": path, "reason": result["problem"]})
                    if result["sample_aspect_ratio"]:
                        stats["non_square_pixels"].append(
                            {"path": path, "sample_aspect_ratio": result["sample_aspect_ratio"]}
                        )
                    writer.write(
                        schema.make_sequence_example(
                            result["jpegs"],
                            label_index[label],
                            label,
                            path,
                            result["fps"],
                            result["height"],
                            result["width"],
                        )
                    )
                    stats["videos"] += 1
                    stats["frames"] += len(result["jpegs"])
                    stats["classes"][label] = stats["classes"].get(label, 0) + 1
            _write_json(os.path.join(output_dir, STATE_DIR, shard["name"] + ".json"), stats)
            os.replace(tmp, final)
        return bar.format_dict["elapsed"]


def _manifest(output_dir, listing, plan, options, source):
    splits = {}
    for split, shards in plan.items():
        entry = {
            "videos": 0,
            "frames": 0,
            "classes": {},
            "shards": [],
            "skipped": [],
            "partial": [],
            "non_square_pixels": [],
        }
        for shard in shards:
            with open(os.path.join(output_dir, STATE_DIR, shard["name"] + ".json")) as f:
                stats = json.load(f)
            entry["videos"] += stats["videos"]
            entry["frames"] += stats["frames"]
            for name, count in stats["classes"].items():
                entry["classes"][name] = entry["classes"].get(name, 0) + count
            entry["shards"].append(shard["name"])
            for key in ("skipped", "partial", "non_square_pixels"):
                entry[key].extend(stats.get(key, []))
        entry["skipped"].extend(
            {"path": name, "reason": "not found on disk"} for name in listing.missing.get(split, [])
        )
        for key in ("skipped", "partial", "non_square_pixels"):
            entry[key].sort(key=lambda s: s["path"])
        entry["classes"] = dict(sorted(entry["classes"].items()))
        splits[split] = entry
    return {
        "tool": "tfrecords_tools.pack",
        "tool_version": __version__,
        "source": source,
        "options": options,
        "classes": listing.classes,
        "splits": splits,
    }


SUMMARY_LISTED = 20  # skipped or partial videos named on stderr; all are in manifest.json


def _list_videos(title, entries):
    print(f"warning: {title} {len(entries)} video(s):", file=sys.stderr)
    for entry in entries[:SUMMARY_LISTED]:
        print(f"  {entry['path']}: {entry['reason']}", file=sys.stderr)
    if len(entries) > SUMMARY_LISTED:
        print(f"  ... and {len(entries) - SUMMARY_LISTED} more (all listed in manifest.json)", file=sys.stderr)


def _summary(manifest, encoded, elapsed):
    splits = manifest["splits"].values()
    skipped = [s for split in splits for s in split["skipped"]]
    partial = [s for split in splits for s in split["partial"]]
    if skipped:
        _list_videos("skipped", skipped)
    if partial:
        _list_videos("kept partial (--keep-partial)", partial)
    videos = sum(split["videos"] for split in splits)
    frames = sum(split["frames"] for split in splits)
    shards = sum(len(split["shards"]) for split in splits)
    rate = f" ({encoded / elapsed:.1f} videos/s)" if encoded and elapsed > 0 else ""
    print(
        f"packed {videos} videos ({frames} frames) into {shards} shard(s) of {len(manifest['splits'])} split(s); "
        f"processed {encoded} this run in {elapsed:.1f} s{rate}; skipped {len(skipped)}"
    )
