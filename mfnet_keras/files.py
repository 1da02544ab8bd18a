"""Writing files so that a kill at any instant leaves the previous complete file or the new one.

Each file is written under its own name in a `.partial/` folder beside it and
renamed into place when complete (a rename within one file system is atomic).
What a kill leaves in `.partial/` is never read, and is replaced by the next
write of the same file.
"""

import contextlib
import errno
import hashlib
import json
import math
import os
import shutil

PARTIAL = ".partial"


@contextlib.contextmanager
def replacing(path):
    """Yields a temporary path (same file name, so savers that check the extension accept it) that
    replaces `path` when the block ends without an error; on an error `path` is left as it was.

    Args:
        path: the file to replace.
    """
    folder = os.path.join(os.path.dirname(path) or ".", PARTIAL)
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, os.path.basename(path))
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.remove(tmp)


def save_figure(fig, path, dpi=100):
    """Saves a matplotlib figure as `path` (PNG by its name), laid out tight, replacing it only when done.

    Args:
        fig: a matplotlib figure.
        path: the PNG to write.
        dpi: its resolution.
    """
    fig.tight_layout()
    with replacing(path) as tmp:
        fig.savefig(tmp, dpi=dpi)


def remove_empty_partial(folder):
    """Removes `folder/.partial/` once nothing is left in it, so a finished output folder holds its files only.

    Args:
        folder: the output folder.
    """
    partial = os.path.join(folder, PARTIAL)
    if os.path.isdir(partial) and not os.listdir(partial):
        os.rmdir(partial)


def sha256_of(path):
    """Hex sha256 of a file's bytes (as `sha256sum`), or of a folder: its files' relative paths and
    bytes (`.partial/` left out).

    Args:
        path: a file or a folder.
    """
    digest = hashlib.sha256()
    if os.path.isdir(path):
        for root, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d != PARTIAL)
            for name in sorted(names):
                digest.update(os.path.relpath(os.path.join(root, name), path).encode() + b"\0")
                digest.update(sha256_of(os.path.join(root, name)).encode())
        return digest.hexdigest()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_text(path, text):
    """Writes `text` to `path`, replacing it only when done.

    Args:
        path: the file.
        text: its contents.
    """
    with replacing(path) as tmp, open(tmp, "w") as f:
        f.write(text)


def write_json(path, data):
    """Writes `data` to `path` as indented JSON, replacing it only when done.

    Args:
        path: the file.
        data: a JSON-serialisable object.
    """
    write_text(path, json.dumps(data, indent=1))


def _itemsize(dtype):
    """Bytes per element of a Keras dtype name ("float32" → 4, "bfloat16" → 2, "bool" → 1)."""
    bits = "".join(c for c in str(dtype) if c.isdigit())
    return int(bits) // 8 if bits else 1


def save_model(model, path):
    """`model.save(path)` (`.keras`) or `model.save_weights(path)` (`.weights.h5`), atomically.

    The free space is checked first: HDF5 meeting a full disk halfway through
    a file leaves its library in a state that ends the process with a
    segmentation fault, so a save that cannot fit is refused beforehand with a
    plain `OSError` (ENOSPC).

    Args:
        model: a Keras model.
        path: a `.keras` or `.weights.h5` file.
    """
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    optimizer = getattr(model, "optimizer", None)
    variables = [*model.variables, *(optimizer.variables if optimizer else [])]
    estimate = sum(math.prod(v.shape) * _itemsize(v.dtype) + 2048 for v in variables)  # + HDF5's per-array cost
    suffix = ".weights.h5" if path.endswith(".weights.h5") else ".keras"
    earlier = [os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder) if n.endswith(suffix)]
    needed = int(1.1 * max([estimate, *earlier])) + 2**16
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise OSError(errno.ENOSPC, f"No space left on device for {path}: it needs about {needed} bytes, {free} free")
    with replacing(path) as tmp:
        (model.save_weights if path.endswith(".weights.h5") else model.save)(tmp)
