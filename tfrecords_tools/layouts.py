"""Dataset layouts: where the videos are, their labels and splits.

Each layout returns a `Listing`: class names (index order) and, per split,
`(relative_path, label_name)` pairs sorted by path. Problems with the layout
itself (missing files, a list naming files that do not exist) raise
`LayoutError` before anything is written; problems with single videos are
found later and skipped.
"""

import csv
import dataclasses
import os
import re

from tfrecords_tools.video import VIDEO_EXTENSIONS

LAYOUTS = ("folders", "ucf101", "hmdb51", "kinetics", "list")


class LayoutError(Exception):
    """The source does not have the layout asked for; the message says what is wrong."""


@dataclasses.dataclass
class Listing:
    """The videos of a dataset source, by split, as a layout lists them.

    Attributes:
        classes: class names in label-index order.
        splits: split name -> `[(path relative to root, label name)]`, sorted.
        root: where the paths are relative to.
        missing: split -> names listed but not on disk (Kinetics).
    """

    classes: list
    splits: dict
    root: str
    missing: dict = dataclasses.field(default_factory=dict)


def _is_file_entry(name):
    return not name.startswith(".")


def _check_exist(root, entries, what):
    missing = [path for path, _ in entries if not os.path.isfile(os.path.join(root, path))]
    if missing:
        raise LayoutError(f"{what} names {len(missing)} file(s) that do not exist under {root}, e.g. {missing[0]!r}")


def _listing(root, splits, classes=None, missing=None):
    for name, entries in splits.items():
        _check_exist(root, entries, f"split {name!r}")
        splits[name] = sorted(set(entries))
    if classes is None:
        classes = sorted({label for entries in splits.values() for _, label in entries})
    known = set(classes)
    for name, entries in splits.items():
        unknown = sorted({label for _, label in entries if label not in known})
        if unknown:
            raise LayoutError(f"split {name!r} has labels that are not classes: {unknown[:5]}")
    return Listing(list(classes), splits, root, missing or {})


def list_folders(root, split_name=None, **_):
    """`ROOT/<class>/<video>`: one split (default name "train"), classes are the sorted folder names.

    Args:
        root: the dataset folder.
        split_name: the split's name (default: `train`).
        **_: other layouts' options, ignored.
    """
    split_name = split_name or "train"
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and _is_file_entry(d))
    if not classes:
        raise LayoutError(f"no class folders in {root} (expected {root}/<class>/<video>)")
    entries = [
        (os.path.join(c, f), c)
        for c in classes
        for f in os.listdir(os.path.join(root, c))
        if _is_file_entry(f) and os.path.isfile(os.path.join(root, c, f))
    ]
    return _listing(root, {split_name: entries}, classes)


def _find_file(root, name):
    for dirpath, _, files in os.walk(root):
        if name in files:
            return os.path.join(dirpath, name)
    raise LayoutError(f"{name} not found under {root}")


def list_ucf101(root, split=1, **_):
    """UCF-101: `classInd.txt`, `trainlist0K.txt`, `testlist0K.txt` (anywhere under ROOT); videos as listed.

    Args:
        root: the dataset folder.
        split: the official split, 1 to 3.
        **_: other layouts' options, ignored.
    """
    with open(_find_file(root, "classInd.txt")) as f:
        pairs = [line.split() for line in f if line.strip()]
    classes = [name for _, name in sorted((int(i), name) for i, name in pairs)]
    splits = {}
    for split_name in ("train", "test"):
        with open(_find_file(root, f"{split_name}list0{split}.txt")) as f:
            paths = [line.split()[0] for line in f if line.strip()]
        splits[split_name] = [(p, p.split("/")[0]) for p in paths]
    return _listing(root, splits, classes)


def list_hmdb51(root, split=1, **_):
    """HMDB51: `<class>_test_split<K>.txt` files (1 = train, 2 = test, 0 = unused); videos in `<class>/`.

    Args:
        root: the dataset folder.
        split: the official split, 1 to 3.
        **_: other layouts' options, ignored.
    """
    pattern = re.compile(rf"^(.+)_test_split{split}\.txt$")
    split_files = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            match = pattern.match(name)
            if match:
                split_files[match.group(1)] = os.path.join(dirpath, name)
    if not split_files:
        raise LayoutError(f"no <class>_test_split{split}.txt files under {root}")
    classes = sorted(split_files)
    splits = {"train": [], "test": []}
    for label in classes:
        with open(split_files[label]) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[1] in ("1", "2"):
                    splits["train" if parts[1] == "1" else "test"].append((os.path.join(label, parts[0]), label))
    return _listing(root, splits, classes)


def list_kinetics(root, csv_path=None, **_):
    """Kinetics: the official CSV (`label,youtube_id,time_start,time_end,split`).

    Files are `<youtube_id>_<start:06d>_<end:06d>.<ext>`, in per-class folders
    or flat, anywhere under ROOT. Videos missing from the download are common
    for Kinetics and are skipped with a reason, not an error.

    Args:
        root: the dataset folder.
        csv_path: the official CSV (default: the only `.csv` in ROOT).
        **_: other layouts' options, ignored.
    """
    if csv_path is None:
        candidates = [os.path.join(root, f) for f in sorted(os.listdir(root)) if f.endswith(".csv")]
        if len(candidates) != 1:
            raise LayoutError(f"expected exactly one Kinetics .csv in {root} (or pass --csv); found {len(candidates)}")
        csv_path = candidates[0]
    on_disk = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            stem, ext = os.path.splitext(name)
            if ext.lower() in VIDEO_EXTENSIONS:
                on_disk[stem] = os.path.relpath(os.path.join(dirpath, name), root)
    splits, missing = {}, {}
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            stem = f"{row['youtube_id']}_{int(float(row['time_start'])):06d}_{int(float(row['time_end'])):06d}"
            split = row.get("split", "train")
            if stem in on_disk:
                splits.setdefault(split, []).append((on_disk[stem], row["label"]))
            else:
                missing.setdefault(split, []).append(stem)
    return _listing(root, splits, missing=missing)


def list_list(root, split_name=None, **_):
    """A CSV/TSV of `path,label` (header optional): a file, or a folder of `<split>.csv|.tsv` files.

    Paths are relative to the list file's folder.

    Args:
        root: a list file, or a folder of `<split>.csv|.tsv` files.
        split_name: the split's name for a single file (default: its file name).
        **_: other layouts' options, ignored.
    """
    files = (
        [root]
        if os.path.isfile(root)
        else [os.path.join(root, f) for f in sorted(os.listdir(root)) if f.endswith((".csv", ".tsv"))]
    )
    if not files:
        raise LayoutError(f"no .csv or .tsv list files in {root}")
    splits = {}
    base = os.path.dirname(os.path.abspath(files[0]))
    for path in files:
        name = split_name if (split_name and len(files) == 1) else os.path.splitext(os.path.basename(path))[0]
        with open(path, newline="") as f:
            rows = [r for r in csv.reader(f, delimiter="\t" if path.endswith(".tsv") else ",") if r]
        if rows and rows[0][:2] == ["path", "label"]:
            rows = rows[1:]
        bad = [r for r in rows if len(r) < 2]
        if bad:
            raise LayoutError(f"{path}: every row needs path and label; got {bad[0]!r}")
        splits[name] = [(r[0], r[1]) for r in rows]
    return _listing(base, splits)


LISTERS = {
    "folders": list_folders,
    "ucf101": list_ucf101,
    "hmdb51": list_hmdb51,
    "kinetics": list_kinetics,
    "list": list_list,
}


def list_source(layout, source, **options):
    """The `Listing` of SOURCE in the given layout.

    Args:
        layout: one of `LAYOUTS`.
        source: the dataset folder or list file.
        **options: the layout's options (`split`, `split_name`, `csv_path`).
    """
    if not os.path.exists(source):
        raise LayoutError(f"source {source} does not exist")
    if layout not in LISTERS:
        raise LayoutError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    if layout != "list" and not os.path.isdir(source):
        raise LayoutError(f"source {source} is not a folder (layout {layout!r})")
    return LISTERS[layout](source, **options)
