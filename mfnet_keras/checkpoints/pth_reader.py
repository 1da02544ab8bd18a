"""Reads PyTorch `.pth` checkpoints into NumPy arrays without PyTorch and without running code from the file.

A `.pth` file is a pickle. A plain `pickle.load` would call whatever the file names, so
this reader's unpickler resolves only the globals that rebuild tensors and containers;
any other is refused with `UnsafeCheckpointError` before it can be called. Both serialisations are read:
the zip archive written since PyTorch 1.6 and the legacy stream of PyTorch ≤ 1.5
(the released MF-Net checkpoints are PyTorch 0.4 files).

A file cut short at any byte raises `TruncatedCheckpointError` (the tensor, how many
bytes at which offset); any other malformed file `CheckpointError`, checked before
anything is allocated: a tensor must fit its storage, and the tensors (and the
storages) may not add up to more bytes than the file holds, so a zero stride or a
compressed entry cannot multiply a small file into gigabytes. Both name the file.
"""

import collections
import functools
import io
import math
import mmap
import os
import pickle
import struct
import zipfile

import numpy as np

from mfnet_keras.errors import MFNetError

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16",
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class UnsafeCheckpointError(MFNetError, pickle.UnpicklingError):
    """The file asks for a Python object that rebuilding tensors does not need."""


class CheckpointError(MFNetError, ValueError):
    """A file that is not a readable PyTorch checkpoint; the message names it and what is wrong."""


class TruncatedCheckpointError(CheckpointError):
    """The checkpoint ends before the data it declares; the message names the file and what is missing.

    Args:
        path: the checkpoint file.
        what: the data it declares and where.
    """

    def __init__(self, path, what):
        super().__init__(f"{path} is truncated: {what}, file ends at {os.path.getsize(path)}")


# What reading a malformed file raises: a broken pickle or zip, and values that do not fit where they go.
_BROKEN_FORMAT = (pickle.UnpicklingError, EOFError, struct.error, zipfile.BadZipFile)
_BROKEN_CONTENT = (KeyError, TypeError, AttributeError, IndexError, ValueError, OverflowError, RecursionError)
_MAX_DEPTH = 100  # containers nested deeper than any state dict


class _Budget:
    """Bytes one file may produce: its tensors, and separately its storages, at most the file's own size."""

    def __init__(self, limit):
        self.limit, self.used = limit, {"tensor": 0, "storage": 0}

    def charge(self, kind, nbytes, what):
        self.used[kind] += nbytes
        if self.used[kind] > self.limit:
            raise CheckpointError(
                f"{what} takes {nbytes} bytes: the file's {kind}s would add up to {self.used[kind]} bytes, "
                f"more than the {self.limit} bytes of the file"
            )


class _StorageType:
    def __init__(self, name):
        self.name = name


def _rebuild_tensor(budget, storage, offset, size, stride, *unused):
    """A tensor view of a flat storage: `size` and `stride` count elements, as in PyTorch."""
    if not isinstance(storage, np.ndarray) or storage.ndim != 1:
        raise CheckpointError(f"a tensor is built on {type(storage).__name__}, not on a storage")
    if not (isinstance(size, tuple) and isinstance(stride, tuple)) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in (*size, *stride, offset)
    ):
        raise CheckpointError(f"a tensor has a malformed size {size!r}, stride {stride!r} or offset {offset!r}")
    if len(size) != len(stride) or min((*size, *stride, offset, 0)) < 0:
        raise CheckpointError(f"corrupt tensor: size {size}, stride {stride}, offset {offset}")
    budget.charge("tensor", math.prod(size) * storage.dtype.itemsize, f"a tensor of size {size}")
    itemsize = storage.dtype.itemsize
    if 0 in size:
        return np.zeros(size, storage.dtype)
    if offset + sum((d - 1) * s for d, s in zip(size, stride)) >= len(storage):
        raise CheckpointError(f"corrupt tensor: size {size}, stride {stride} does not fit its storage")
    if not size:
        return np.array(storage[offset])
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride), writeable=False
    )
    return np.array(view)


def _rebuild_parameter(data, *unused):
    return data


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, load_storage, budget):
        super().__init__(file)
        self._load_storage, self._budget = load_storage, budget

    def find_class(self, module, name):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        found = _ALLOWED.get((module, name))
        if found is None:
            raise UnsafeCheckpointError(
                f"Refusing to load '{module}.{name}' from the checkpoint: only tensors, numbers, strings "
                "and containers can be read, and this file asks for something else"
            )
        return functools.partial(found, self._budget) if found is _rebuild_any else found

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise UnsafeCheckpointError(f"Unknown persistent id in the checkpoint: {pid!r}")
        return self._load_storage(pid[1:])


def _as_dtype(storage_type):
    """The little-endian NumPy dtype of a storage type; None for bfloat16, which NumPy lacks."""
    if not isinstance(storage_type, _StorageType) or storage_type.name not in _STORAGE_DTYPES:
        raise UnsafeCheckpointError(f"Not a storage type: {storage_type!r}")
    dtype = _STORAGE_DTYPES[storage_type.name]
    return None if dtype == "bfloat16" else np.dtype(dtype).newbyteorder("<")


def _from_bytes(raw, storage_type):
    dtype = _as_dtype(storage_type)
    if dtype is None:  # bfloat16: the high half of a float32
        halves = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return halves.view(np.float32)
    return np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="))


def _read_entry(archive, name, nbytes, what):
    """At most `nbytes` of a zip entry (never more, however far it would decompress); fewer is an error."""
    with archive.open(name) as entry:
        raw = entry.read(nbytes + 1)
    if len(raw) < nbytes:
        raise CheckpointError(f"{what} holds {len(raw)} bytes where {nbytes} are declared")
    return raw[:nbytes]


def _load_zip(path, budget):
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise CheckpointError("a zip file without one data.pkl, so not a PyTorch checkpoint")
        root = pickles[0][: -len("data.pkl")]
        if f"{root}byteorder" in names and archive.read(f"{root}byteorder").strip() != b"little":
            raise CheckpointError("big-endian checkpoints are not supported")
        cache = {}

        def load_storage(fields):
            storage_type, key, numel = fields[0], str(fields[1]), fields[3]
            if key not in cache:
                if f"{root}data/{key}" not in names:
                    raise CheckpointError(f"storage {key} is missing from the archive")
                nbytes = int(numel) * _itemsize(storage_type)
                budget.charge("storage", nbytes, f"storage {key}")
                raw = _read_entry(archive, f"{root}data/{key}", nbytes, f"storage {key}")
                cache[key] = _from_bytes(raw, storage_type)
            return cache[key]

        pickled = archive.open(pickles[0]).read(budget.limit + 1)
        if len(pickled) > budget.limit:
            raise CheckpointError(f"{pickles[0]} expands past the {budget.limit} bytes of the file")
        return _Unpickler(io.BytesIO(pickled), load_storage, budget).load()


def _itemsize(storage_type):
    dtype = _as_dtype(storage_type)
    return 2 if dtype is None else dtype.itemsize


def _unpickle(f, load_storage, path, part, budget):
    """One pickle of the legacy stream; a file ending inside it is `TruncatedCheckpointError`."""
    try:
        return _Unpickler(f, load_storage, budget).load()
    except (EOFError, pickle.UnpicklingError, struct.error) as error:
        if isinstance(error, UnsafeCheckpointError) or f.tell() < os.path.getsize(path):
            raise
        raise TruncatedCheckpointError(path, f"the file stops inside its pickled {part}") from None


def _load_legacy(path, budget):
    with open(path, "rb") as f:
        if _unpickle(f, None, path, "header", budget) != _LEGACY_MAGIC:
            raise CheckpointError("not a PyTorch checkpoint (no PyTorch magic number)")
        _unpickle(f, None, path, "header", budget)  # protocol version
        _unpickle(f, None, path, "header", budget)  # system info
        storages, views = {}, {}

        def load_storage(fields):
            storage_type, key, _location, numel, view = fields
            storages.setdefault(key, (storage_type, numel))
            if view is not None:
                view_key, offset, view_size = view
                views[view_key] = (key, offset, view_size)
                return _LazyStorage(storages, views, view_key)
            return _LazyStorage(storages, views, key)

        result = _unpickle(f, load_storage, path, "state dict", budget)
        keys = _unpickle(f, None, path, "list of storages", budget)
        names = _tensor_names(result, lambda tensor: tensor.args[0].base_key())
        end = os.path.getsize(path)
        for key in keys:
            storage_type, numel = storages[key]
            tensor = names.get(key, f"storage {key}")
            if f.tell() + 8 > end:
                raise TruncatedCheckpointError(path, f"tensor {tensor} needs its 8-byte size at offset {f.tell()}")
            (size,) = struct.unpack("<q", f.read(8))
            nbytes = size * _itemsize(storage_type)
            if size < 0:
                raise CheckpointError(f"tensor {tensor} declares {size} elements")
            if f.tell() + nbytes > end:
                raise TruncatedCheckpointError(path, f"tensor {tensor} needs {nbytes} bytes at offset {f.tell()}")
            budget.charge("storage", nbytes, f"tensor {tensor}")
            storages[key] = _from_bytes(f.read(nbytes), storage_type)
    return _resolve(result, budget)


def _check_depth(depth):
    if depth > _MAX_DEPTH:
        raise CheckpointError(f"containers nested deeper than {_MAX_DEPTH} levels")


def _tensor_names(value, storage_key, prefix="", depth=0):
    """`{storage key: name of the first tensor that uses it}` over a pickled result of lazy tensors."""
    _check_depth(depth)
    names = {}
    if isinstance(value, _LazyTensor):
        names[storage_key(value)] = prefix or "(the object)"
    elif isinstance(value, dict):
        for k, v in value.items():
            for key, name in _tensor_names(v, storage_key, f"{prefix}.{k}" if prefix else str(k), depth + 1).items():
                names.setdefault(key, name)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            for key, name in _tensor_names(v, storage_key, f"{prefix}[{i}]", depth + 1).items():
                names.setdefault(key, name)
    return names


class _LazyStorage:
    """Stands in for a storage whose bytes come after the pickle in the legacy format."""

    def __init__(self, storages, views, key):
        self.storages, self.views, self.key = storages, views, key

    def base_key(self):
        return self.views[self.key][0] if self.key in self.views else self.key

    def array(self):
        if self.key in self.views:
            base, offset, size = self.views[self.key]
            return self.storages[base][offset : offset + size]
        return self.storages[self.key]


class _LazyTensor:
    def __init__(self, storage, offset, size, stride):
        self.args = storage, offset, size, stride


def _resolve(value, budget, depth=0):
    """`value` with every `_LazyTensor` in it rebuilt, once the legacy file's storages are read."""
    _check_depth(depth)
    if isinstance(value, _LazyTensor):
        storage, offset, size, stride = value.args
        return _rebuild_tensor(budget, storage.array(), offset, size, stride)
    if isinstance(value, dict):
        return type(value)((k, _resolve(v, budget, depth + 1)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_resolve(v, budget, depth + 1) for v in value)
    return value


def _rebuild_any(budget, storage, offset, size, stride, *unused):
    if isinstance(storage, _LazyStorage):
        return _LazyTensor(storage, offset, size, stride)
    return _rebuild_tensor(budget, storage, offset, size, stride)


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_any,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_any,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


def _cut_zip_error(path):
    """The error for a zip checkpoint without its end records: which tensor the cut falls in, if any.

    PyTorch writes `data.pkl` first and then each storage as `data/<key>`, so
    the pickle (when whole) tells every tensor's name and byte count, and each
    entry is found by its local header.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if size < 30:
            return TruncatedCheckpointError(path, "the first zip entry needs a 30-byte header at offset 0")
        name_len, extra_len = struct.unpack("<HH", data[26:30])
        first = bytes(data[30 : 30 + name_len]).decode("utf-8", "replace")
        if 30 + name_len + extra_len > size:
            return TruncatedCheckpointError(
                path, f"the first zip entry needs {30 + name_len + extra_len} bytes at offset 0"
            )
        if not first.endswith("data.pkl"):
            return CheckpointError("a zip file cut short (no central directory), not a PyTorch checkpoint")
        storages = {}
        f.seek(30 + name_len + extra_len)
        try:
            result = _Unpickler(f, lambda fields: _placeholder_storage(storages, fields), _Budget(size)).load()
        except (EOFError, pickle.UnpicklingError, struct.error) as error:
            if isinstance(error, UnsafeCheckpointError):
                return error
            return TruncatedCheckpointError(path, f"the file stops inside its pickle {first!r}")
        names = _tensor_names(result, lambda tensor: tensor.args[0].key)
        entries = _zip_entries(data, f.tell(), first[: -len("data.pkl")] + "data/")
        for key in sorted(storages, key=lambda k: (k not in entries, entries.get(k, 0), k)):
            nbytes = storages[key][1] * _itemsize(storages[key][0])
            tensor = names.get(key, f"storage {key}")
            if key not in entries:
                return TruncatedCheckpointError(path, f"tensor {tensor} needs {nbytes} bytes in a zip entry after it")
            if entries[key] + nbytes > size:
                return TruncatedCheckpointError(path, f"tensor {tensor} needs {nbytes} bytes at offset {entries[key]}")
    return TruncatedCheckpointError(path, "every tensor is whole but the zip's closing directory is missing")


def _zip_entries(data, start, prefix):
    """`{storage key: offset of its bytes}` for every whole local header of `prefix<key>` from `start`."""
    entries, position = {}, start
    while (found := data.find(b"PK\x03\x04", position)) >= 0 and found + 30 <= len(data):
        name_len, extra_len = struct.unpack("<HH", data[found + 26 : found + 30])
        name = bytes(data[found + 30 : found + 30 + name_len]).decode("utf-8", "replace")
        if name.startswith(prefix) and found + 30 + name_len + extra_len <= len(data):
            entries[name[len(prefix) :]] = found + 30 + name_len + extra_len
        position = found + 4
    return entries


def _placeholder_storage(storages, fields):
    storage_type, key, _location, numel = fields
    storages[str(key)] = (storage_type, int(numel))
    return _LazyStorage(storages, {}, str(key))


def load(path):
    """The object saved in a `.pth` file, with every tensor as a NumPy array.

    Raises `UnsafeCheckpointError` when the file names anything but tensors and
    plain containers (the message names what it asked for),
    `TruncatedCheckpointError` when it is cut short, and `CheckpointError` for
    anything else that makes it unreadable; every message starts with the path.

    Args:
        path: a `.pth` file.
    """
    budget = _Budget(os.path.getsize(path))
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic == b"PK\x03\x04" and not zipfile.is_zipfile(path):
            raise _cut_zip_error(path)
        return _load_zip(path, budget) if zipfile.is_zipfile(path) else _load_legacy(path, budget)
    except TruncatedCheckpointError:
        raise
    except UnsafeCheckpointError as error:
        raise UnsafeCheckpointError(f"{path}: {error}") from None
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from None
    except (*_BROKEN_FORMAT, *_BROKEN_CONTENT) as error:
        reason = f"{type(error).__name__}: {error}"
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({reason})") from None
