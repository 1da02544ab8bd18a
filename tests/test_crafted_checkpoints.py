"""Hostile `.pth` files: each is one `error:` line from `convert`, nothing written, and memory stays bounded."""

import collections
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import zipfile

import pytest
import torch

from mfnet_cli.convert import main as convert_main

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFUSED = [
    ("os", "system"),
    ("posix", "system"),
    ("builtins", "eval"),
    ("builtins", "exec"),
    ("builtins", "getattr"),
    ("builtins", "__import__"),
    ("subprocess", "Popen"),
    ("torch", "load"),
    ("numpy", "load"),
    ("torch._utils", "_rebuild_device_tensor_from_numpy"),
]


class Storage:
    """Stands for a float storage of `numel` elements, saved under `key`."""

    def __init__(self, key, numel):
        self.key, self.numel = key, numel


class Tensor:
    """Pickles as PyTorch's `_rebuild_tensor_v2(storage, offset, size, stride, ...)` with any values."""

    def __init__(self, storage, size, stride, offset=0):
        self.args = storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict()

    def __reduce__(self):
        return torch._utils._rebuild_tensor_v2, self.args


class CraftPickler(pickle.Pickler):
    def __init__(self, file, legacy):
        super().__init__(file, protocol=2)
        self.legacy = legacy

    def persistent_id(self, obj):
        if not isinstance(obj, Storage):
            return None
        if self.legacy:
            return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel, None)
        return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel)


def dumps(obj, legacy):
    buffer = io.BytesIO()
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 5000))  # for the deeply nested file
    try:
        CraftPickler(buffer, legacy).dump(obj)
    finally:
        sys.setrecursionlimit(limit)
    return buffer.getvalue()


def write_zip(path, pickled, storages, compress=False):
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        archive.writestr("archive/data.pkl", pickled)
        archive.writestr("archive/byteorder", "little")
        for key, data in storages.items():
            if isinstance(data, int):  # that many zero bytes, streamed: a zip bomb
                with archive.open(f"archive/data/{key}", "w", force_zip64=True) as entry:
                    for _ in range(data // 2**20):
                        entry.write(bytes(2**20))
            else:
                archive.writestr(f"archive/data/{key}", data)


def write_legacy(path, pickled, storages):
    with open(path, "wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(header, f, protocol=2)
        f.write(pickled)
        pickle.dump(list(storages), f, protocol=2)
        for data in storages.values():
            f.write(struct.pack("<q", len(data) // 4) + data)


def nested(depth, leaf):
    for _ in range(depth):
        leaf = [leaf]
    return leaf


def crafted_files(root):
    """`{name: (path, what the one error line must say)}`."""
    files = {}
    one = Storage("0", 1)
    for legacy in (False, True):
        kind = "legacy" if legacy else "zip"

        def write(name, obj, storages, expect, compress=False, kind=kind, legacy=legacy):
            path = root / f"{name}_{kind}.pth"
            if legacy:
                write_legacy(path, dumps(obj, True), storages)
            else:
                write_zip(path, dumps(obj, False), storages, compress)
            files[path.stem] = (path, expect)

        zero = Tensor(one, (16384, 16384), (0, 0))
        write("zero_stride", {"conv1.conv.weight": zero}, {"0": bytes(4)}, "a tensor of size (16384, 16384) takes")
        four = {f"w{i}": Tensor(one, (16384, 16384), (0, 0)) for i in range(4)}
        write("four_zero_stride", four, {"0": bytes(4)}, "a tensor of size (16384, 16384) takes")
        big = Tensor(Storage("0", 10), (100, 100), (100, 1))
        write("oversize", {"w": big}, {"0": bytes(40)}, "a tensor of size (100, 100) takes")
        unfit = Tensor(Storage("0", 10), (3, 4), (4, 1))
        write("past_its_storage", {"w": unfit}, {"0": bytes(40)}, "does not fit its storage")
        negative = Tensor(Storage("0", 10), (2, 2), (-1, 1))
        write("negative_stride", {"w": negative}, {"0": bytes(40)}, "corrupt tensor: size (2, 2), stride (-1, 1)")
        deep = nested(300, Tensor(one, (1,), (1,)))
        expect = "not a state dict of tensors" if not legacy else "containers nested deeper than 100 levels"
        write("deep_nesting", {"w": deep}, {"0": bytes(4)}, expect)
        for module, name in REFUSED:
            pickled = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b")R."
            path = root / f"refused_{module}_{name}_{kind}.pth"
            if legacy:
                write_legacy(path, pickled, {})
            else:
                write_zip(path, pickled, {})
            files[path.stem] = (path, f"Refusing to load '{module}.{name}' from the checkpoint")
    bomb = {"w": Tensor(Storage("0", 2**27), (2**27,), (1,))}  # 512 MiB of zeros in about 0.5 MB
    path = root / "zip_bomb.pth"
    write_zip(path, dumps(bomb, False), {"0": 2**29}, compress=True)
    files["zip_bomb"] = (path, "storage 0 takes 536870912 bytes")
    small = {"conv1.conv.weight": Tensor(Storage("0", 4), (4,), (1,))}
    path = root / "zip_bomb_small_declared.pth"
    write_zip(path, dumps(small, False), {"0": 2**29}, compress=True)
    files["zip_bomb_small_declared"] = (path, "does not fit mfnet3d")
    return files


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    return crafted_files(tmp_path_factory.mktemp("crafted"))


def test_every_crafted_file_is_one_error_line(crafted, tmp_path, capsys):
    out = tmp_path / "out.keras"
    for name, (path, expect) in crafted.items():
        assert convert_main([str(path), str(out), "--preset", "mfnet3d"]) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, (name, err)
        assert expect in err and (str(path) in err or "does not fit" in err), (name, err)
        assert not out.exists()


def test_memory_stays_bounded_on_crafted_files(crafted, tmp_path):
    """Peak RSS (VmHWM) stays under 2x MFNet-3D's weights above the baseline: reading every crafted file
    above the import baseline, converting them (one reads fine and builds the model) above a baseline that
    includes one MFNet-3D build (a first build alone takes about 2.2x the weights)."""
    paths = [str(path) for path, _ in crafted.values()]
    script = textwrap.dedent(
        f"""
        import json
        from mfnet_cli.convert import main
        from mfnet_cli.quiet import import_quietly

        def peak():
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM"):
                    return int(line.split()[1]) * 1024

        import_quietly("mfnet_keras")
        from mfnet_keras import models
        from mfnet_keras.checkpoints import key_mapping
        baseline = peak()
        for path in {paths!r}:
            try:
                key_mapping.read_torch_state_dict(path)
            except Exception:
                pass
        read = peak()
        models.VideoClassifier.from_preset("mfnet3d", load_weights=False)
        built = peak()
        codes = [main([path, {str(tmp_path / "o.keras")!r}, "--preset", "mfnet3d"]) for path in {paths!r}]
        print(json.dumps({{"baseline": baseline, "read": read, "built": built, "converted": peak(), "codes": codes}}))
        """
    )
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(got["codes"]) == {2}
    weight_bytes = 8_033_120 * 4  # MFNet-3D's weights, BatchNorm statistics included
    assert got["read"] - got["baseline"] < 2 * weight_bytes, got
    assert got["converted"] - got["built"] < 2 * weight_bytes, got
