"""Reports on a packed dataset, verifies it, and draws a contact sheet of its frames.

mfnet-inspect OUTPUT_DIR [--verify] [--contact-sheet sheet.png]
"""

import glob
import os

import numpy as np

from tfrecords_tools import schema
from tfrecords_tools.video import decode_jpeg


def iter_records(paths):
    """Yields `(path, index, serialized)` for every record of the given TFRecord files.

    Args:
        paths: TFRecord files.
    """
    import tensorflow as tf

    for path in paths:
        for index, record in enumerate(tf.data.TFRecordDataset(path)):
            yield path, index, record.numpy()


def split_files(output_dir):
    """`{split: [shard paths]}` of a packed folder, from the file names.

    Args:
        output_dir: a folder written by `tfrecords_tools.pack`.
    """
    splits = {}
    for path in sorted(glob.glob(os.path.join(output_dir, "*-of-*.tfrecord"))):
        splits.setdefault(os.path.basename(path).split("-")[0], []).append(path)
    return splits


def scan(paths, verify=False, progress=None):
    """Counts per class and frame statistics; with `verify`, decodes every JPEG. Returns a dict.

    Args:
        paths: a split's TFRecord files.
        verify: decode every JPEG.
        progress: a tqdm bar advanced once per video (None: none).
    """
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
    """Writes a PNG grid: one row per clip (spread over the files), evenly spaced frames, labelled.

    Args:
        paths: TFRecord files.
        out_path: the PNG to write.
        clips: rows (clips spread over the files).
        frames_per_clip: evenly spaced frames per row.
        seed: which clips are picked.
    """
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
