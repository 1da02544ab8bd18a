"""Reads PyTorch `.pth` checkpoints into NumPy arrays without PyTorch and without running code from the file.

A `.pth` file is a pickle. A plain `pickle.load` would call whatever the file
names, so this reader's unpickler resolves only the handful of globals that
rebuild tensors and containers; any other global is refused with
`UnsafeCheckpointError` before it can be called. Both serialisations are read:
the zip archive written since PyTorch 1.6 and the legacy stream of PyTorch ≤ 1.5
(the released MF-Net checkpoints are PyTorch 0.4 files).
"""

import collections
import io
import pickle
import struct
import zipfile

import numpy as np

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


class UnsafeCheckpointError(pickle.UnpicklingError):
    """The file asks for a Python object that rebuilding tensors does not need."""


class _StorageType:
    def __init__(self, name):
        self.name = name


def _rebuild_tensor(storage, offset, size, stride, *unused):
    """A tensor view of a flat storage: `size` and `stride` count elements, as in PyTorch."""
    itemsize = storage.dtype.itemsize
    size, stride, offset = tuple(int(d) for d in size), tuple(int(s) for s in stride), int(offset)
    if len(size) != len(stride) or min((*size, *stride, offset, 0)) < 0:
        raise ValueError(f"Corrupt tensor in the checkpoint: size {size}, stride {stride}, offset {offset}")
    if 0 in size:
        return np.zeros(size, storage.dtype)
    if offset + sum((d - 1) * s for d, s in zip(size, stride)) >= len(storage):
        raise ValueError(f"Corrupt tensor in the checkpoint: size {size} does not fit its storage")
    if not size:
        return np.array(storage[offset])
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride), writeable=False
    )
    return np.array(view)


def _rebuild_parameter(data, *unused):
    return data


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, load_storage):
        super().__init__(file)
        self._load_storage = load_storage

    def find_class(self, module, name):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        found = _ALLOWED.get((module, name))
        if found is None:
            raise UnsafeCheckpointError(
                f"Refusing to load '{module}.{name}' from the checkpoint: only tensors, numbers, strings "
                "and containers can be read, and this file asks for something else"
            )
        return found

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


def _load_zip(path):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise ValueError(f"Not a PyTorch checkpoint: {path} is a zip file without one data.pkl")
        root = pickles[0][: -len("data.pkl")]
        if f"{root}byteorder" in names and archive.read(f"{root}byteorder").strip() != b"little":
            raise ValueError(f"Big-endian checkpoints are not supported: {path}")
        cache = {}

        def load_storage(fields):
            storage_type, key = fields[0], str(fields[1])
            if key not in cache:
                cache[key] = _from_bytes(archive.read(f"{root}data/{key}"), storage_type)
            return cache[key]

        return _Unpickler(io.BytesIO(archive.read(pickles[0])), load_storage).load()


def _load_legacy(path):
    with open(path, "rb") as f:
        header = _Unpickler(f, None)
        if header.load() != _LEGACY_MAGIC:
            raise ValueError(f"Not a PyTorch checkpoint: {path}")
        header.load()  # protocol version
        header.load()  # system info
        storages, views = {}, {}

        def load_storage(fields):
            storage_type, key, _location, numel, view = fields
            storages.setdefault(key, (storage_type, numel))
            if view is not None:
                view_key, offset, view_size = view
                views[view_key] = (key, offset, view_size)
                return _LazyStorage(storages, views, view_key)
            return _LazyStorage(storages, views, key)

        result = _Unpickler(f, load_storage).load()
        keys = _Unpickler(f, None).load()
        for key in keys:
            storage_type, numel = storages[key]
            (size,) = struct.unpack("<q", f.read(8))
            itemsize = 2 if _as_dtype(storage_type) is None else _as_dtype(storage_type).itemsize
            storages[key] = _from_bytes(f.read(size * itemsize), storage_type)
    return _resolve(result)


class _LazyStorage:
    """Stands in for a storage whose bytes come after the pickle in the legacy format."""

    def __init__(self, storages, views, key):
        self.storages, self.views, self.key = storages, views, key

    def array(self):
        if self.key in self.views:
            base, offset, size = self.views[self.key]
            return self.storages[base][offset : offset + size]
        return self.storages[self.key]


class _LazyTensor:
    def __init__(self, storage, offset, size, stride):
        self.args = storage, offset, size, stride


def _resolve(value):
    """`value` with every `_LazyTensor` in it rebuilt, once the legacy file's storages are read."""
    if isinstance(value, _LazyTensor):
        storage, offset, size, stride = value.args
        return _rebuild_tensor(storage.array(), offset, size, stride)
    if isinstance(value, dict):
        return type(value)((k, _resolve(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_resolve(v) for v in value)
    return value


def _rebuild_any(storage, offset, size, stride, *unused):
    if isinstance(storage, _LazyStorage):
        return _LazyTensor(storage, offset, size, stride)
    return _rebuild_tensor(storage, offset, size, stride)


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_any,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_any,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


def load(path):
    """The object saved in a `.pth` file, with every tensor as a NumPy array.

    Raises `UnsafeCheckpointError` when the file names anything but tensors and
    plain containers, and ValueError when it is not a PyTorch checkpoint.
    """
    if zipfile.is_zipfile(path):
        return _load_zip(path)
    try:
        return _load_legacy(path)
    except UnsafeCheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, struct.error, KeyError, TypeError) as error:
        raise ValueError(f"Not a readable PyTorch checkpoint: {path} ({error})") from None
