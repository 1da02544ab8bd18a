"""Reports on a packed dataset, verifies it, and draws a contact sheet of its frames.

mfnet-inspect OUTPUT_DIR [--verify] [--contact-sheet sheet.png]
"""

import argparse
import glob
import json
import os
import sys

import numpy as np

from tfrecords_tools import schema
from tfrecords_tools.quiet import add_verbose_argument, import_tensorflow
from tfrecords_tools.video import decode_jpeg


def iter_records(paths):
    """Yields `(path, index, serialized)` for every record of the given TFRecord files."""
    import tensorflow as tf

    for path in paths:
        for index, record in enumerate(tf.data.TFRecordDataset(path)):
            yield path, index, record.numpy()


def split_files(output_dir):
    """`{split: [shard paths]}` of a packed folder, from the file names."""
    splits = {}
    for path in sorted(glob.glob(os.path.join(output_dir, "*-of-*.tfrecord"))):
        splits.setdefault(os.path.basename(path).split("-")[0], []).append(path)
    return splits


def scan(paths, verify=False, progress=None):
    """Counts per class and frame statistics; with `verify`, decodes every JPEG. Returns a dict."""
    classes, frames, problems = {}, [], []
    for path, index, record in iter_records(paths):
        images, context = schema.parse_sequence_example(record)
        name = context[schema.LABEL_TEXT].numpy().decode() or ",".join(map(str, context[schema.LABEL_INDEX].numpy()))
        classes[name] = classes.get(name, 0) + 1
        frames.append(len(images))
        declared = int(context[schema.NUM_FRAMES])
        if declared not in (-1, len(images)):
            problems.append(f"{path} record {index}: video/num_frames {declared} but {len(images)} frames")
        if verify:
            for i, jpeg in enumerate(images.numpy()):
                try:
                    decode_jpeg(jpeg)
                except Exception as error:
                    problems.append(f"{path} record {index} frame {i}: bad JPEG ({error})")
        if progress:
            progress.update(1)
    return {"videos": len(frames), "classes": dict(sorted(classes.items())), "frames": frames, "problems": problems}


def contact_sheet(paths, out_path, clips=6, frames_per_clip=8, seed=0):
    """Writes a PNG grid: one row per clip (spread over the files), evenly spaced frames, labelled."""
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend (e.g. a notebook's) alone

    records = list(iter_records(paths))
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(records), size=min(clips, len(records)), replace=False))
    fig = Figure(figsize=(frames_per_clip * 1.6, len(chosen) * 1.7))
    axes = fig.subplots(len(chosen), frames_per_clip)
    axes = np.atleast_2d(axes)
    for row, r in enumerate(chosen):
        images, context = schema.parse_sequence_example(records[r][2])
        images = images.numpy()
        picks = np.linspace(0, len(images) - 1, frames_per_clip).round().astype(int)
        for col, f in enumerate(picks):
            ax = axes[row, col]
            ax.imshow(decode_jpeg(images[f]))
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(context[schema.LABEL_TEXT].numpy().decode(), fontsize=8)
            if row == 0:
                ax.set_title(f"frame {f}", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_path, dpi=80)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="mfnet-inspect",
        description="Per-split and per-class counts and frame statistics of a packed dataset.",
    )
    parser.add_argument("output_dir", help="folder written by tfrecords_tools.pack")
    parser.add_argument(
        "--verify", action="store_true", help="decode every JPEG and check counts against manifest.json"
    )
    parser.add_argument("--contact-sheet", metavar="PNG", help="write a grid of frames from a few clips")
    parser.add_argument("--clips", type=int, default=6, help="clips in the contact sheet (default: 6)")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    import_tensorflow(args.verbose)
    splits = split_files(args.output_dir)
    if not splits:
        print(f"error: no <split>-NNNNN-of-NNNNN.tfrecord files in {args.output_dir}", file=sys.stderr)
        return 2
    manifest_path = os.path.join(args.output_dir, "manifest.json")
    manifest = json.load(open(manifest_path)) if os.path.exists(manifest_path) else None
    from tqdm import tqdm

    problems = []
    for split, paths in splits.items():
        expected = manifest["splits"].get(split) if manifest else None
        with tqdm(total=expected["videos"] if expected else None, unit="video", desc=split, file=sys.stderr) as bar:
            report = scan(paths, verify=args.verify, progress=bar)
        frames = np.array(report["frames"] or [0])
        print(
            f"{split}: {report['videos']} videos in {len(paths)} shard(s), {len(report['classes'])} classes, "
            f"frames per video min {frames.min()} / mean {frames.mean():.1f} / max {frames.max()}, total {frames.sum()}"
        )
        for name, count in report["classes"].items():
            print(f"  {name:<40}{count:>7}")
        problems += report["problems"]
        if args.verify and expected:
            if expected["videos"] != report["videos"] or expected["frames"] != int(frames.sum()):
                problems.append(
                    f"{split}: manifest says {expected['videos']} videos / {expected['frames']} frames, "
                    f"records hold {report['videos']} / {int(frames.sum())}"
                )
            if expected["classes"] != report["classes"]:
                problems.append(f"{split}: per-class counts differ from manifest.json")
    if args.verify and manifest is None:
        problems.append("no manifest.json to check counts against")
    if args.contact_sheet:
        paths = [p for ps in splits.values() for p in ps]
        contact_sheet(paths, args.contact_sheet, clips=args.clips)
        print(f"wrote contact sheet {args.contact_sheet}")
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    if args.verify:
        print("verify: " + ("OK" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
