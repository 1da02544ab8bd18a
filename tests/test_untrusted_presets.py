"""Presets from strangers: crafted archives served over real HTTP on 127.0.0.1, size limits, malformed preset
folders and refused `.keras` files. Each is one `PresetError` (or `error:`) line; nothing lands outside the cache
and no half-extracted folder stays."""

import gzip
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import types
import zipfile

import pytest
from commands import REPO_ROOT, HttpServer, cached_files
from test_case import build, raw_clips

import mfnet_cli.evaluate
import mfnet_cli.export
from mfnet_keras import downloads, models

ZEROS = 5 << 30  # a member of 5 GiB of zeros: past the default limit of 4 GiB


def tar_member(archive, name, data=b"", kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, linkname, len(data)
    archive.addfile(info, io.BytesIO(data))


def write_tar(path, members):
    """A .tar.gz of `(name, data, kind, linkname)` members, written as given (no name clean-up)."""
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT) as archive:
        for member in members:
            tar_member(archive, *member)


def write_zip(path, members):
    """A .zip of `(name, data, unix mode)` members; a mode of S_IFLNK makes the member a symbolic link."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            archive.writestr(info, data)


def write_zero_tar_gz(path, size):
    """A real .tar.gz of one member of `size` zero bytes, a few MB on disk: gzip members of zeros, concatenated."""
    header = tarfile.TarInfo("preset/zeros.bin")
    header.size = size
    block = 256 << 20
    zeros = gzip.compress(bytes(block), compresslevel=9)
    with open(path, "wb") as out:
        out.write(gzip.compress(header.tobuf(format=tarfile.GNU_FORMAT)))
        for _ in range(size // block):
            out.write(zeros)
        out.write(gzip.compress(bytes(size % block + 1024)))  # the rest, then tar's two end blocks


def write_zero_zip(path, size):
    """A real .zip of one deflated member of `size` zero bytes (Zip64)."""
    chunk = bytes(64 << 20)
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("preset/zeros.bin", "w", force_zip64=True) as member,
    ):
        for _ in range(size // len(chunk)):
            member.write(chunk)


@pytest.fixture(scope="module")
def zero_archives(tmp_path_factory):
    root = tmp_path_factory.mktemp("bombs")
    write_zero_tar_gz(root / "zeros.tar.gz", ZEROS)
    write_zero_zip(root / "zeros.zip", ZEROS)
    return root


def evil_archives(outside, victim):
    """`{file name: (writer, members, the bad member's name, what is wrong)}` for every crafted archive."""
    escape = "../../../../outside/DOTDOT.txt"  # from <cache>/.partial/<archive>.preset up to tmp_path
    absolute = f"{outside}/ABSOLUTE.txt"
    link = (tarfile.SYMTYPE, str(outside))
    return {
        "dotdot.tar.gz": (write_tar, [("preset/config.json", b"{}"), (escape, b"x")], escape, "has a '..' component"),
        "absolute.tar.gz": (write_tar, [(absolute, b"x")], absolute, "is an absolute path"),
        "symlink.tar.gz": (
            write_tar,
            [("preset/link", b"", *link), ("preset/link/THROUGH.txt", b"x")],
            "preset/link",
            f"is a symbolic link (to {str(outside)!r})",
        ),
        "hardlink.tar.gz": (
            write_tar,
            [("preset/hard", b"", tarfile.LNKTYPE, str(victim)), ("preset/hard", b"overwritten")],
            "preset/hard",
            f"is a hard link (to {str(victim)!r})",
        ),
        "fifo.tar.gz": (write_tar, [("preset/pipe", b"", tarfile.FIFOTYPE)], "preset/pipe", "is a FIFO"),
        "dotdot.zip": (write_zip, [(escape, b"x", stat.S_IFREG | 0o644)], escape, "has a '..' component"),
        "absolute.zip": (write_zip, [(absolute, b"x", stat.S_IFREG | 0o644)], absolute, "is an absolute path"),
        "symlink.zip": (
            write_zip,
            [("preset/link", str(outside).encode(), stat.S_IFLNK | 0o777), ("preset/link/THROUGH.txt", b"x", 0o644)],
            "preset/link",
            "is a symbolic link",
        ),
    }


def test_crafted_archives_are_refused_whole_and_write_nothing(server, tmp_path):
    running, served = server
    outside, victim = tmp_path / "outside", tmp_path / "victim.txt"
    outside.mkdir()
    victim.write_text("untouched")
    for name, (writer, members, bad, problem) in evil_archives(outside, victim).items():
        writer(served / name, members)
        url = f"{running.url}/{name}"
        with pytest.raises(models.PresetError) as error:
            models.VideoClassifier.from_preset(url)
        assert str(error.value) == f"{url}: refused: member {bad!r} {problem}; nothing was extracted"
        assert os.listdir(outside) == [] and victim.read_text() == "untouched", name
        assert cached_files() == [], name  # the refused archive is not kept; no partial folder
    assert sorted(os.listdir(tmp_path)) == ["keras_home", "outside", "served", "victim.txt"]


@pytest.mark.parametrize("name", ["zeros.tar.gz", "zeros.zip"])
def test_an_archive_of_gigabytes_of_zeros_is_refused_before_it_is_expanded(server, zero_archives, name):
    running, served = server
    shutil.copy(zero_archives / name, served / name)
    assert os.path.getsize(served / name) < 40 << 20
    url = f"{running.url}/{name}"
    with pytest.raises(models.PresetError) as error:
        models.VideoClassifier.from_preset(url)
    assert str(error.value) == (
        f"{url}: refused: its members expand to more than the limit of {downloads.DEFAULT_MAX_BYTES} bytes "
        f"(at 'preset/zeros.bin'; set MFNET_KERAS_MAX_EXTRACT_BYTES to raise it); nothing was extracted"
    )
    assert cached_files() == []


@pytest.fixture(scope="module")
def preset_folder(tmp_path_factory):
    """A small classifier saved as a preset folder, and clips to run it on."""
    folder = tmp_path_factory.mktemp("preset") / "mine"
    model = build("mfnet3d", num_classes=3, input_shape=(4, 32, 32, 3), class_names=["a", "b", "c"])
    model.save_to_preset(str(folder))
    return folder


def test_limits_are_set_by_environment_variables(server, preset_folder, monkeypatch):
    running, served = server
    with tarfile.open(served / "mine.tar.gz", "w:gz") as archive:
        archive.add(preset_folder, arcname="mine")
    url = f"{running.url}/mine.tar.gz"
    monkeypatch.setenv("MFNET_KERAS_MAX_DOWNLOAD_BYTES", "1000")
    with pytest.raises(models.PresetError) as error:
        models.VideoClassifier.from_preset(url)
    assert str(error.value) == (
        f"cannot download {url}: it is larger than the limit of 1000 bytes "
        "(set MFNET_KERAS_MAX_DOWNLOAD_BYTES to raise it)"
    )
    assert cached_files() == []
    monkeypatch.delenv("MFNET_KERAS_MAX_DOWNLOAD_BYTES")
    monkeypatch.setenv("MFNET_KERAS_MAX_EXTRACT_BYTES", "1000")
    with pytest.raises(models.PresetError, match="its members expand to more than the limit of 1000 bytes"):
        models.VideoClassifier.from_preset(url)
    assert cached_files() == []
    monkeypatch.delenv("MFNET_KERAS_MAX_EXTRACT_BYTES")
    loaded = models.VideoClassifier.from_preset(url)  # within the default limits it loads
    assert loaded.class_names == ["a", "b", "c"] and cached_files() == ["mine.tar.gz", "mine.tar.gz.preset"]


def test_a_download_without_content_length_is_counted_as_it_arrives(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    (tmp_path / "big.pth").write_bytes(bytes(300_000))
    running = HttpServer(str(tmp_path), content_length=False)
    try:
        monkeypatch.setenv("MFNET_KERAS_MAX_DOWNLOAD_BYTES", "100000")
        with pytest.raises(models.PresetError) as error:
            models.VideoClassifier.from_preset(f"{running.url}/big.pth")
        assert "it is larger than the limit of 100000 bytes" in str(error.value)
        assert cached_files() == []
        target = downloads.download(f"{running.url}/big.pth", str(tmp_path / "got.pth"), max_bytes=300_000)
        assert os.path.getsize(target) == 300_000
    finally:
        running.close()


def broken_copy(preset_folder, tmp_path, name, change):
    """A copy of the preset folder with `change(text or bytes)` applied to the file `name`."""
    folder = tmp_path / f"broken_{name.replace('.', '_')}"
    shutil.copytree(preset_folder, folder)
    path = folder / name
    if name.endswith(".json"):
        path.write_text(change(path.read_text()))
    else:
        change(path)
    return folder, str(path)


def edited(function):
    """A change for `broken_copy` that edits the parsed JSON with `function`."""

    def change(text):
        data = json.loads(text)
        function(data)
        return json.dumps(data)

    return change


def other_weights(file_name):
    """A change for `broken_copy` that puts in the `file_name` of a preset of another shape (8 fibers, 4 classes)."""

    def change(path):
        folder = path.parent.parent / "other"
        if not folder.exists():
            build("mfnet3d", num_classes=4, input_shape=(4, 32, 32, 3), num_fibers=8).save_to_preset(str(folder))
        shutil.copy(folder / file_name, path)

    return change


MALFORMED = {
    "not JSON": ("config.json", lambda text: text[:-10], "not valid JSON (Unterminated string"),
    "no class_name": ("config.json", edited(lambda d: d.pop("class_name")), "missing key 'class_name'"),
    "a class outside the project": (
        "config.json",
        edited(lambda d: d.update(class_name="os>system", module="os")),
        "class_name 'os>system' is not one of this package's ['MFNetBackbone', 'MobileNetV2Backbone', 'ResNetBackbone']",
    ),
    "a nested class outside the project": (
        "task.json",
        edited(lambda d: d["config"]["backbone"].update(class_name="subprocess>Popen")),
        "config['backbone']: class_name 'subprocess>Popen' is not one of this package's",
    ),
    "a wrong type": ("task.json", edited(lambda d: d["config"].update(num_classes="3")), "'num_classes' must be int"),
    "a list for an object": ("preprocessor.json", lambda text: "[]", "expected a JSON object, found list"),
    "a nested object": (
        "task.json",
        edited(lambda d: d["config"]["backbone"]["config"].update(num_fibers={"module": "os", "class_name": "x"})),
        "config['backbone']: config['num_fibers'] is an object; only plain values are read",
    ),
    "a bad value": (
        "task.json",
        edited(lambda d: d["config"]["backbone"]["config"].update(num_fibers=5)),
        "num_fibers",
    ),
    "metadata of a wrong type": (
        "metadata.json",
        edited(lambda d: d.update(parameter_count="many")),
        "'parameter_count' must be int",
    ),
    "backbone weights of another shape": (
        "model.weights.h5",
        other_weights("model.weights.h5"),
        "does not fit the architecture in config.json",
    ),
    "head weights of another shape": (
        "task.weights.h5",
        other_weights("task.weights.h5"),
        "variable.shape=(768, 3), Received: value.shape=(768, 4)",
    ),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_preset_folder_is_one_line_naming_the_file(preset_folder, tmp_path, case):
    name, change, expected = MALFORMED[case]
    folder, path = broken_copy(preset_folder, tmp_path, name, change)
    with pytest.raises(models.PresetError) as error:
        models.VideoClassifier.from_preset(str(folder))
    message = str(error.value)
    assert message.startswith(f"{path}: ") and expected in message and "\n" not in message, message


def test_a_backbone_folder_is_checked_too(preset_folder, tmp_path):
    folder, path = broken_copy(preset_folder, tmp_path, "config.json", edited(lambda d: d.pop("config")))
    with pytest.raises(models.PresetError) as error:
        models.MFNetBackbone.from_preset(str(folder))
    assert str(error.value) == f"{path}: missing key 'config'"
    intact = models.VideoClassifier.from_preset(str(preset_folder))
    assert intact(raw_clips((4, 32, 32, 3))).shape == (2, 3)


def fake_module(name, **functions):
    module = types.ModuleType(name)
    module.__dict__.update(functions)
    return module


def test_hub_handles_fetch_the_preset_files_only(preset_folder, monkeypatch):
    asked = []

    def snapshot_download(repo_id, allow_patterns=None):
        asked.append(("hf", repo_id, allow_patterns))
        return str(preset_folder)

    def model_download(handle, path=None):
        asked.append(("kaggle", handle, path))
        if not (preset_folder / path).exists():
            raise FileNotFoundError(path)
        return str(preset_folder / path)

    monkeypatch.setitem(
        sys.modules, "huggingface_hub", fake_module("huggingface_hub", snapshot_download=snapshot_download)
    )
    monkeypatch.setitem(sys.modules, "kagglehub", fake_module("kagglehub", model_download=model_download))
    assert models.VideoClassifier.from_preset("hf://someone/mfnet").class_names == ["a", "b", "c"]
    assert asked == [("hf", "someone/mfnet", ["*.json", "*.weights.h5", "README.md"])]
    asked.clear()
    assert models.VideoClassifier.from_preset("kaggle://someone/mfnet/keras/small").class_names == ["a", "b", "c"]
    assert [path for _, _, path in asked] == [
        "config.json",
        "model.weights.h5",
        "metadata.json",
        "task.json",
        "task.weights.h5",
        "preprocessor.json",
        "README.md",
    ]


@pytest.fixture(scope="module")
def lambda_keras(tmp_path_factory):
    """A `.keras` file holding a `Lambda` layer: Python code that Keras's safe mode refuses to run."""
    import keras

    inputs = keras.Input((4, 8, 8, 3))
    path = tmp_path_factory.mktemp("lambda") / "lambda.keras"
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs)).save(path)
    return str(path)


REFUSED = "holds a `Lambda` layer (Python code), which Keras's safe mode refuses to load"


def test_predict_refuses_a_keras_file_with_a_lambda_layer_in_one_line(lambda_keras, tmp_path):
    command = [sys.executable, "-m", "mfnet_cli.predict", "--model", lambda_keras, str(tmp_path / "v.mp4")]
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT, env=env)
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [f"error: {lambda_keras}: {REFUSED}"]


def test_export_and_evaluate_refuse_it_too(lambda_keras, tmp_path, capsys):
    assert mfnet_cli.export.main(["--weights", lambda_keras, "--out", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {lambda_keras}: {REFUSED}"
    assert not (tmp_path / "out").exists()
    records = tmp_path / "x.tfrecord"
    records.touch()  # the config wants data; the model is refused before any is read
    argv = ["--config", "synthetic_demo", "--weights", lambda_keras, "--set", f"data.train={records}"]
    assert mfnet_cli.evaluate.main([*argv, f"data.eval={records}"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {lambda_keras}: {REFUSED}"
