"""Pretrained weights: PyTorch checkpoint parity, safe reading, checkpoint variants, inflation, conversion."""

import os
import pickle
import subprocess
import sys

import keras
import numpy as np
import pytest
import torch
from test_case import build, normalized, raw_clips
from torch_mfnet import MFNet, randomized

from mfnet_cli.convert import main as convert_main
from mfnet_keras import initialization
from mfnet_keras.checkpoints import key_mapping, pth_reader

SHAPES = {"mfnet3d": (8, 64, 64, 3), "mfnet2d": (64, 64, 3)}


def save(obj, path, legacy):
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return str(path)


@pytest.fixture(scope="module")
def torch_models():
    return {"mfnet3d": randomized(MFNet(11, dims=3), seed=1), "mfnet2d": randomized(MFNet(13, dims=2), seed=2)}


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "zip"])
@pytest.mark.parametrize("name", ["mfnet3d", "mfnet2d"])
def test_logits_match_the_pytorch_reference(name, legacy, torch_models, tmp_path):
    reference = torch_models[name]
    path = save(reference.state_dict(), tmp_path / f"{name}.pth", legacy)
    model = build(name, input_shape=SHAPES[name], weights=path)
    x = raw_clips(SHAPES[name])
    fed = normalized(x if name == "mfnet3d" else x[:, 0])
    with torch.no_grad():
        expected = reference(torch.from_numpy(np.moveaxis(fed, -1, 1))).numpy()
    got = keras.ops.convert_to_numpy(model(x, training=False))
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()


def _variant(state, wrapped, prefix, tracked):
    state = {(f"module.{k}" if prefix else k): v for k, v in state.items() if tracked or "num_batches" not in k}
    if wrapped:
        return {"epoch": 12, "state_dict": state, "optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]}}
    return state


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "zip"])
@pytest.mark.parametrize("wrapped", [False, True], ids=["bare", "wrapped"])
@pytest.mark.parametrize("prefix", [False, True], ids=["plain", "module"])
@pytest.mark.parametrize("tracked", [False, True], ids=["untracked", "tracked"])
def test_every_checkpoint_variant_reads_the_same_tensors(legacy, wrapped, prefix, tracked, torch_models, tmp_path):
    state = torch_models["mfnet2d"].state_dict()
    path = save(_variant(state, wrapped, prefix, tracked), tmp_path / "v.pth", legacy)
    read = key_mapping.read_torch_state_dict(path)
    expected = {k: v.numpy() for k, v in state.items() if "num_batches" not in k}
    assert sorted(read) == sorted(expected)
    for key, value in expected.items():
        assert read[key].dtype == value.dtype and np.array_equal(read[key], value), key


def test_a_variant_loads_into_the_model_and_fills_every_weight(torch_models, tmp_path):
    state = torch_models["mfnet3d"].state_dict()
    path = save(_variant(state, True, True, True), tmp_path / "v.pth", legacy=True)
    model = build("mfnet3d", input_shape=SHAPES["mfnet3d"], num_classes=11)
    filled = key_mapping.load_torch_checkpoint(model, path)
    assert sorted(filled) == sorted(w.path for w in model.weights)
    assert np.array_equal(
        keras.ops.convert_to_numpy(model.get_layer("classifier").kernel), state["classifier.weight"].numpy().T
    )


def test_missing_unexpected_and_skipped_classifier(torch_models, tmp_path):
    state = dict(torch_models["mfnet2d"].state_dict())
    del state["conv3.B02.conv_m1.conv.weight"]
    state["extra.weight"] = torch.zeros(3)
    model = build("mfnet2d", input_shape=SHAPES["mfnet2d"], num_classes=5)
    with pytest.raises(ValueError) as error:
        key_mapping.load_torch_checkpoint(model, save(state, tmp_path / "bad.pth", legacy=False))
    assert str(error.value) == (
        "Checkpoint does not fit mfnet2d: missing (1): conv3.B02.conv_m1.conv.weight; unexpected (1): extra.weight; "
        "wrong shape (2): classifier.bias [13] (model needs [5]), classifier.weight [13, 768] (model needs [768, 5])"
    )
    good = dict(torch_models["mfnet2d"].state_dict())
    before = keras.ops.convert_to_numpy(model.get_layer("classifier").kernel)
    filled = key_mapping.load_torch_checkpoint(model, save(good, tmp_path / "ok.pth", False), skip_classifier=True)
    assert len(filled) == len(model.weights) - 2
    assert np.array_equal(keras.ops.convert_to_numpy(model.get_layer("classifier").kernel), before)
    other = build("mfnet2d", input_shape=SHAPES["mfnet2d"], num_classes=5, weights=str(tmp_path / "ok.pth"))
    assert other.get_layer("classifier").units == 5


class _RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("kind", ["pickle", "legacy", "zip"])
def test_a_malicious_pickle_is_refused_and_nothing_runs(kind, tmp_path):
    marker = tmp_path / "ran"
    payload = {"evil": _RunsACommand(marker), "conv1.conv.weight": torch.zeros(2)}
    path = tmp_path / "evil.pth"
    if kind == "pickle":
        path.write_bytes(pickle.dumps(payload, protocol=2))
    else:
        save(payload, path, legacy=kind == "legacy")
    with pytest.raises(pth_reader.UnsafeCheckpointError) as error:
        key_mapping.read_torch_state_dict(str(path))
    assert str(error.value) == (
        f"{path}: Refusing to load '{os.system.__module__}.system' from the checkpoint: only tensors, numbers, "
        "strings and containers can be read, and this file asks for something else"
    )
    assert not marker.exists()


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "text.pth"
    path.write_text("hello")
    with pytest.raises(pth_reader.CheckpointError) as error:
        key_mapping.read_torch_state_dict(str(path))
    assert str(error.value).startswith(f"{path}: not a readable PyTorch checkpoint (")


def test_inflated_conv_equals_the_2d_conv_on_a_static_clip():
    model_2d = build("mfnet2d", input_shape=(32, 32, 3), num_classes=4)
    model_3d = build("mfnet3d", input_shape=(6, 32, 32, 3), num_classes=4)
    filled = initialization.inflate_2d_to_3d(model_2d, model_3d)
    assert sorted(filled) == sorted(w.path for w in model_3d.weights)
    for layer, image_shape in (("conv1_conv", (1, 32, 32, 3)), ("conv2_B02", (1, 8, 8, 96))):
        image = np.random.default_rng(3).standard_normal(image_shape).astype("float32")
        clip = np.repeat(image[:, None], 6, axis=1)  # every frame the same image
        expected = keras.ops.convert_to_numpy(model_2d.backbone.get_layer(layer)(image, training=False))
        got = keras.ops.convert_to_numpy(model_3d.backbone.get_layer(layer)(clip, training=False))
        tolerance = 1e-5 * np.abs(expected).max()
        for t in range(1, got.shape[1] - 1):  # the first and last frames see temporal zero padding
            np.testing.assert_allclose(got[:, t], expected, atol=tolerance)
        assert not np.allclose(got[:, 0], expected, atol=tolerance)


def test_model_init_inflates_a_2d_checkpoint(torch_models, tmp_path):
    state = torch_models["mfnet2d"].state_dict()
    path = save(state, tmp_path / "2d.pth", legacy=False)
    model_3d = build("mfnet3d", input_shape=(4, 32, 32, 3), num_classes=4)
    filled = initialization.initialize(model_3d, path, inflate=True)
    assert len(filled) == len(model_3d.weights) - 2  # 13 classes in the checkpoint, 4 here
    kernel = keras.ops.convert_to_numpy(model_3d.backbone.get_layer("conv1_conv").kernel)
    expected = initialization.inflate_kernel(
        key_mapping.to_keras_layout(state["conv1.conv.weight"].numpy(), "c/kernel"), 3
    )
    np.testing.assert_allclose(kernel, expected, rtol=1e-6)


def test_inflation_methods():
    kernel = np.random.default_rng(5).standard_normal((3, 3, 2, 4)).astype("float32")
    inflated = initialization.inflate_kernel(kernel, 3)
    assert inflated.shape == (3, 3, 3, 2, 4)
    np.testing.assert_allclose(inflated.sum(axis=0), kernel, rtol=1e-6)
    random = initialization.inflate_kernel(kernel, 3, method="random", seed=0)
    np.testing.assert_allclose(random.sum(axis=0), kernel / 3, rtol=1e-5, atol=1e-6)  # one copy, noise cancels
    is_copy = np.isclose(random, kernel / 3)
    assert np.array_equal(is_copy.sum(axis=0), np.ones(kernel.shape))  # one kernel/T slice at every position
    assert np.abs(random[~is_copy]).max() <= np.abs(kernel / 3).mean()
    np.testing.assert_array_equal(random, initialization.inflate_kernel(kernel, 3, method="random", seed=0))
    with pytest.raises(ValueError, match="Received: method='mean'"):
        initialization.inflate_kernel(kernel, 3, method="mean")


def test_convert_command_writes_weights_files_too(torch_models, tmp_path, capsys):
    state = torch_models["mfnet2d"].state_dict()
    src = save({"state_dict": state}, tmp_path / "MFNet2D_ImageNet1k-0000.pth", legacy=True)
    out = str(tmp_path / "mfnet2d.weights.h5")
    assert convert_main([src, out]) == 0
    printed = capsys.readouterr().out
    assert "wrote" in printed and "mean=[0.4863, 0.4588, 0.4078] std=[0.2348, 0.2348, 0.2348]" in printed
    model = build("mfnet2d", num_classes=13)
    model.load_weights(out)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model.get_layer("classifier").bias), state["classifier.bias"].numpy()
    )
    assert convert_main([str(tmp_path / "missing.pth"), out]) == 2
    assert "error: " in capsys.readouterr().err


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "zip"])
def test_truncated_checkpoint_is_one_line_at_any_cut(legacy, torch_models, tmp_path, capsys):
    src = save(torch_models["mfnet3d"].state_dict(), tmp_path / "whole.pth", legacy)
    data = open(src, "rb").read()
    cuts = [1, 3, 30, 64, 200, 1000] + [len(data) * i // 15 for i in range(1, 14)] + [len(data) - 1]
    cut_path, out = tmp_path / "MFNet3D_Kinetics-400_72.8.pth", tmp_path / "out.weights.h5"
    reasons = set()
    for cut in cuts:
        cut_path.write_bytes(data[:cut])
        assert convert_main([str(cut_path), str(out)]) == 2, cut
        err = capsys.readouterr().err
        assert err.startswith(f"error: {cut_path} is truncated: ") and err.endswith(f", file ends at {cut}\n"), err
        assert err.count("\n") == 1 and not out.exists()
        reasons.add(err.split(": ")[2].split(" needs ")[0].split(" ")[0])
    assert "tensor" in reasons  # cuts inside the data name the tensor
    cut_path.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        pth_reader.TruncatedCheckpointError, match=r"tensor conv\S+ needs \d+ bytes at offset \d+, file ends"
    ):
        pth_reader.load(str(cut_path))


def test_convert_of_a_truncated_file_prints_no_traceback(torch_models, tmp_path):
    src = save(torch_models["mfnet2d"].state_dict(), tmp_path / "whole.pth", legacy=False)
    (tmp_path / "cut.pth").write_bytes(open(src, "rb").read()[:100_000])
    command = [sys.executable, "-m", "mfnet_cli.convert", str(tmp_path / "cut.pth"), str(tmp_path / "o.keras")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and not (tmp_path / "o.keras").exists()
    assert result.stderr.startswith(f"error: {tmp_path / 'cut.pth'} is truncated: tensor ")
    assert result.stderr.count("\n") == 1, result.stderr


def test_zero_init_residual_makes_every_identity_unit_the_identity():
    model = build("mfnet3d", num_classes=5, input_shape=(4, 32, 32, 3))
    zeroed = initialization.zero_init_residual(model)
    # 16 units have a multiplexer; 12 of them (not a stage's first) also add to an unchanged input.
    assert len(zeroed) == 16 + 12
    assert "conv2_B02/conv_m2/conv/kernel" in zeroed and "conv2_B01/conv_i2/conv/kernel" in zeroed
    assert "conv2_B01/conv_m2/conv/kernel" not in zeroed
    x = np.random.default_rng(0).standard_normal((2, 4, 16, 16, 96)).astype("float32")
    unit = model.backbone.get_layer("conv2_B02")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(unit(x, training=False)), x)
    first = model.backbone.get_layer("conv2_B01")
    assert np.abs(keras.ops.convert_to_numpy(first(x[..., :16], training=False))).max() > 0
