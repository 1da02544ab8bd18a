"""Writing files so that a kill at any instant leaves the previous complete file or the new one.

Each file is written under its own name in a `.partial/` folder beside it and
renamed into place when complete (a rename within one file system is atomic).
What a kill leaves in `.partial/` is never read, and is replaced by the next
write of the same file.
"""

import contextlib
import json
import os
import shutil

PARTIAL = ".partial"


@contextlib.contextmanager
def replacing(path):
    """Yields a temporary path (same file name, so savers that check the extension accept it) that
    replaces `path` when the block ends without an error; on an error `path` is left as it was."""
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


def write_text(path, text):
    with replacing(path) as tmp, open(tmp, "w") as f:
        f.write(text)


def write_json(path, data):
    write_text(path, json.dumps(data, indent=1))


def save_model(model, path):
    """`model.save(path)` (`.keras`) or `model.save_weights(path)` (`.weights.h5`), atomically."""
    with replacing(path) as tmp:
        (model.save_weights if path.endswith(".weights.h5") else model.save)(tmp)
