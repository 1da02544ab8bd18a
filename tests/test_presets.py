"""Presets: convert → preset folder → `from_preset` against PyTorch, save/load, and downloads from a real
HTTP server on 127.0.0.1 (cache, sha256, 404, connection refused)."""

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile

import keras
import numpy as np
import pytest
import torch
from commands import REPO_ROOT, cached_files
from test_case import build, raw_clips
from torch_mfnet import MFNet, randomized, torch_logits

from mfnet_cli.convert import main as convert_main
from mfnet_keras import models
from mfnet_keras.models import preset_handles, preset_registry

PRESET_FILES = {
    "config.json",
    "model.weights.h5",
    "task.json",
    "task.weights.h5",
    "preprocessor.json",
    "metadata.json",
    "README.md",
}


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def pth_3d(tmp_path_factory):
    """A random PyTorch MF-Net 3D (11 classes) with non-trivial BatchNorm statistics, as a `.pth`."""
    path = tmp_path_factory.mktemp("pth") / "random_mfnet3d.pth"
    torch.save(randomized(MFNet(11, dims=3), seed=4).state_dict(), path)
    return str(path)


def test_convert_writes_a_preset_folder_that_matches_pytorch_on_uint8_256(pth_3d, tmp_path, capsys):
    folder = str(tmp_path / "preset")
    assert convert_main([pth_3d, folder]) == 0
    assert "input 16x224x224 (short side 256, every 2 frames), 11 classes" in capsys.readouterr().out
    assert set(os.listdir(folder)) == PRESET_FILES
    model = models.VideoClassifier.from_preset(folder)
    clips = np.random.default_rng(1).integers(0, 256, (2, 16, 256, 256, 3), dtype=np.uint8)
    got = model.predict(clips, verbose=0)
    want = torch_logits(pth_3d, 3, clips, model.preprocessor.mean, model.preprocessor.std)
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    metadata = json.load(open(os.path.join(folder, "metadata.json")))
    assert metadata["parameter_count"] == model.count_params() and metadata["keras_version"] == keras.__version__


def test_a_release_file_name_brings_its_preprocessing_and_class_names(tmp_path):
    name = preset_registry.get_preset("mfnet2d_imagenet1k")["checkpoint"]["file_name"]
    src = tmp_path / name
    torch.save({"state_dict": randomized(MFNet(1000, dims=2), seed=5).state_dict()}, src)
    model = models.VideoClassifier.from_preset(str(src))
    assert model.preprocessor.mean == pytest.approx((124 / 255, 117 / 255, 104 / 255))
    frames = np.random.default_rng(2).integers(0, 256, (1, 1, 256, 300, 3), dtype=np.uint8)
    got = model.predict(frames, verbose=0)
    # The preprocessor's resize of a 256x300 frame to short side 256 is the identity on the rows it keeps.
    want = torch_logits(str(src), 2, frames, model.preprocessor.mean, model.preprocessor.std)
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    assert convert_main([str(src), str(tmp_path / "out.weights.h5")]) == 0


def test_preprocessor_equals_the_evaluation_pipeline():
    import tensorflow as tf

    from mfnet_keras.data.augment import eval_clips

    frames = np.random.default_rng(3).integers(0, 256, (4, 90, 131, 3), dtype=np.uint8)
    jpegs = tf.stack([tf.io.encode_jpeg(f) for f in frames])
    decoded = tf.map_fn(lambda j: tf.image.decode_jpeg(j, channels=3), jpegs, fn_output_signature=tf.uint8)
    pipeline = eval_clips(jpegs, 1, 1, 4, 56, 64).numpy()
    preprocessor = models.VideoClassifierPreprocessor(clip_length=4, crop_size=56)
    assert preprocessor.short_side == 64
    inside = keras.ops.convert_to_numpy(preprocessor(decoded.numpy()[None]))
    mean, std = np.array(preprocessor.mean), np.array(preprocessor.std)
    np.testing.assert_allclose(inside[0], (pipeline[0] / 255.0 - mean) / std, atol=1e-4)
    crop = raw_clips((4, 56, 56, 3))  # already the crop size: only normalised
    np.testing.assert_allclose(keras.ops.convert_to_numpy(preprocessor(crop)), (crop / 255.0 - mean) / std, atol=1e-6)


def test_save_to_preset_round_trip_and_a_new_head(tmp_path):
    model = build("mfnet3d", num_classes=3, input_shape=(4, 32, 32, 3), class_names=["a", "b", "c"])
    model.save_to_preset(str(tmp_path))
    assert set(os.listdir(tmp_path)) == PRESET_FILES
    clips = raw_clips((4, 40, 48, 3))
    again = models.VideoClassifier.from_preset(str(tmp_path))
    np.testing.assert_array_equal(np.asarray(again(clips)), np.asarray(model(clips)))
    assert again.class_names == ["a", "b", "c"]
    fresh = models.VideoClassifier.from_preset(str(tmp_path), num_classes=5)
    assert fresh.class_names == ["0", "1", "2", "3", "4"]
    for ours, theirs in zip(fresh.backbone.weights, model.backbone.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs))
    backbone = models.MFNetBackbone.from_preset(str(tmp_path))
    assert backbone.output_shape == (None, 2, 1, 1, 768)
    with pytest.raises(models.PresetError, match="holds a MFNetBackbone, not a ResNetBackbone"):
        models.ResNetBackbone.from_preset(str(tmp_path))


def test_class_names_survive_a_keras_file_in_a_fresh_process(tmp_path):
    model = build("mfnet2d", num_classes=2, input_shape=(32, 32, 3), class_names=["walk", "run"])
    model.save(tmp_path / "m.keras")
    # keras-hub's habit: `import mfnet_keras` is enough for Keras's own loader.
    path = str(tmp_path / "m.keras")
    script = f"import keras, mfnet_keras; c = keras.saving.load_model({path!r}); print(type(c).__name__, c.class_names)"
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.stdout.strip().splitlines()[-1] == "VideoClassifier ['walk', 'run']", result.stderr[-2000:]


@pytest.mark.parametrize("scheme, package", [("hf", "huggingface_hub"), ("kaggle", "kagglehub")])
def test_a_hub_handle_without_its_package_names_it(scheme, package, monkeypatch):
    monkeypatch.setitem(sys.modules, package, None)  # as if not installed
    with pytest.raises(models.PresetError) as error:
        models.VideoClassifier.from_preset(f"{scheme}://someone/mfnet")
    assert str(error.value) == f"{scheme}://someone/mfnet: {scheme}:// presets need {package}: pip install {package}"


def test_a_preset_archive_downloads_once_and_is_verified(server, tmp_path):
    running, served = server
    model = build("mfnet3d", num_classes=3, input_shape=(4, 32, 32, 3), class_names=["a", "b", "c"])
    model.save_to_preset(str(tmp_path / "mine"))
    with tarfile.open(served / "mine.tar.gz", "w:gz") as archive:
        archive.add(tmp_path / "mine", arcname="mine")
    url, digest = f"{running.url}/mine.tar.gz", sha256(served / "mine.tar.gz")
    clips = raw_clips((4, 32, 32, 3))
    for _ in range(2):  # the second call is served from the cache
        loaded = models.VideoClassifier.from_preset(url, sha256=digest)
        np.testing.assert_array_equal(np.asarray(loaded(clips)), np.asarray(model(clips)))
    assert running.requests == ["/mine.tar.gz"] and loaded.class_names == ["a", "b", "c"]

    shutil.copy(served / "mine.tar.gz", served / "other.tar.gz")
    with pytest.raises(models.PresetError) as error:
        models.VideoClassifier.from_preset(f"{running.url}/other.tar.gz", sha256="0" * 64)
    assert str(error.value) == (
        f"{running.url}/other.tar.gz: sha256 {digest} does not match the expected {'0' * 64}; nothing was kept"
    )
    assert "other.tar.gz" not in cached_files() and ".partial" not in cached_files()


def test_a_released_pth_behind_a_preset_name_is_converted_once(server, pth_3d):
    running, served = server
    shutil.copy(pth_3d, served / "random_mfnet3d.pth")
    preset_registry.register_preset(
        "test_release",
        architecture="mfnet3d",
        num_classes=11,
        checkpoint={
            "file_name": "random_mfnet3d.pth",
            "url": f"{running.url}/random_mfnet3d.pth",
            "sha256": sha256(pth_3d),
        },
    )
    try:
        first = models.VideoClassifier.from_preset("test_release", clip_length=4, crop_size=32)
        converted = os.path.join(preset_handles.cache_dir(), "random_mfnet3d.pth.preset", "task.json")
        written = os.path.getmtime(converted)
        second = models.VideoClassifier.from_preset("test_release", clip_length=4, crop_size=32)
    finally:
        preset_registry.unregister_preset("test_release")
    assert running.requests == ["/random_mfnet3d.pth"] and os.path.getmtime(converted) == written
    direct = models.VideoClassifier.from_preset(pth_3d, clip_length=4, crop_size=32)
    clips = raw_clips((4, 32, 32, 3))
    for model in (first, second):
        np.testing.assert_allclose(np.asarray(model(clips)), np.asarray(direct(clips)), rtol=1e-6, atol=1e-6)


def test_a_missing_file_and_a_closed_port_are_one_line_each(server):
    running, _ = server
    with pytest.raises(models.PresetError) as error:
        models.VideoClassifier.from_preset(f"{running.url}/nothing.pth")
    assert str(error.value) == f"cannot download {running.url}/nothing.pth: 404 File not found"
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(models.PresetError) as error:
        models.VideoClassifier.from_preset(f"http://127.0.0.1:{port}/x.tar.gz")
    assert str(error.value) == f"cannot download http://127.0.0.1:{port}/x.tar.gz: [Errno 111] Connection refused"
    assert cached_files() == []


def test_the_convert_command_line_prints_no_traceback_for_a_bad_preset_name(pth_3d, tmp_path):
    command = [sys.executable, "-m", "mfnet_cli.convert", pth_3d, str(tmp_path / "p"), "--preset", "nope"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert result.returncode == 2 and "unknown preset 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


def small_classifier(num_classes=3, **kwargs):
    return models.VideoClassifier.from_preset(
        "mfnet3d", num_classes=num_classes, clip_length=4, crop_size=32, stage_depths=(1, 1, 1, 1), **kwargs
    )


def test_keras_hub_reads_the_head_through_load_weights_with_objects_to_skip(tmp_path):
    """`task.weights.h5` is what Keras's `save_weights` writes, read with the call keras-hub's
    `Task.load_task_weights` makes; the folder also carries keras-hub's metadata keys and a model card."""
    model = small_classifier(class_names=["a", "b", "c"])
    head = model.get_layer("classifier")
    head.kernel.assign(np.random.default_rng(0).normal(size=head.kernel.shape).astype("float32"))
    folder = tmp_path / "preset"
    model.save_to_preset(str(folder))
    fresh = small_classifier()
    fresh.backbone.load_weights(str(folder / "model.weights.h5"))
    keras.saving.load_weights(fresh, str(folder / "task.weights.h5"), objects_to_skip=[fresh.backbone])
    clips = np.random.default_rng(1).uniform(0, 255, (2, 4, 40, 48, 3)).astype("float32")
    np.testing.assert_array_equal(fresh.predict(clips, verbose=0), model.predict(clips, verbose=0))
    assert model.has_task_weights()
    metadata = json.loads((folder / "metadata.json").read_text())
    assert {"keras_version", "keras_hub_version", "parameter_count", "date"} <= set(metadata)
    card = (folder / "README.md").read_text()
    assert "MFNetBackbone" in card and "Classes (3): a, b, c." in card and "from_preset" in card


def test_a_folder_written_by_mfnet_keras_0_1_still_loads():
    """Flat `task.weights.h5` (`classifier/kernel` datasets) and the old layer names: same logits."""
    before = os.path.join(os.path.dirname(__file__), "data", "before_rename")
    expected = np.load(os.path.join(before, "expected.npz"))
    model = models.VideoClassifier.from_preset(preset=os.path.join(before, "preset"))
    got = model.predict(expected["clips"], verbose=0)
    assert np.abs(got - expected["logits"]).max() / np.abs(expected["logits"]).max() < 1e-5


def test_presets_are_listed_on_the_classes_and_taken_by_name():
    assert models.VideoClassifier.presets == models.list_presets()
    assert "mfnet3d_kinetics400" in models.MFNetBackbone.presets and "resnet18" not in models.MFNetBackbone.presets
    assert models.ResNetBackbone.presets == ["resnet18", "resnet18_mf", "resnext26_8x16d"]
    assert set(models.Backbone.presets) == set(models.list_presets())
    backbone = models.MFNetBackbone.from_preset(preset="mfnet2d", input_shape=(64, 64, 3))
    assert backbone.output_shape == (None, 2, 2, 768)
    with pytest.raises(models.PresetError, match="holds a MFNetBackbone, not a ResNetBackbone"):
        models.ResNetBackbone.from_preset("mfnet2d")


def test_a_callable_softmax_compiles_a_loss_on_probabilities(tmp_path):
    model = small_classifier(activation=keras.activations.softmax)
    model.compile()
    assert model.outputs_probabilities and not model.loss.from_logits
    assert model.get_config()["activation"] == "softmax"
    logits_model = small_classifier()
    logits_model.compile()
    assert logits_model.loss.from_logits
    model.save_to_preset(str(tmp_path / "soft"))
    assert models.VideoClassifier.from_preset(str(tmp_path / "soft")).outputs_probabilities


def test_save_to_preset_shards_the_backbone_weights(tmp_path):
    model = small_classifier()
    folder = tmp_path / "sharded"
    model.save_to_preset(str(folder), max_shard_size=0.003)  # GB: about 3 MB per shard
    assert (folder / "model.weights.json").exists() and len(list(folder.glob("model*.weights.h5"))) > 1
    loaded = models.VideoClassifier.from_preset(str(folder))
    clips = np.random.default_rng(2).uniform(0, 255, (1, 4, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(loaded.predict(clips, verbose=0), model.predict(clips, verbose=0))
