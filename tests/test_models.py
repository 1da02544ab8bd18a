"""Backbones, the video classifier and the preset table: paper rows, checkpoint names, serialisation, training."""

import csv
import os

import keras
import numpy as np
import pytest
from test_case import (
    assert_config_matches_args,
    assert_fit_step_trains_all_weights,
    assert_keras_round_trip,
    assert_mixed_precision,
    build,
    raw_clips,
)

from mfnet_cli.profile import main as profile_main
from mfnet_keras import models, profiling
from mfnet_keras.checkpoints.key_mapping import checkpoint_key, keras_path
from mfnet_keras.layers import walk_layers
from mfnet_keras.profiling import profile_rows

LAYOUT = os.path.join(os.path.dirname(__file__), "data", "official-checkpoint-layout.tsv")
SMALL_3D = (4, 32, 32, 3)
SMALL_2D = (32, 32, 3)


def small_shape(name):
    return SMALL_3D if name == "mfnet3d" else SMALL_2D


def test_preset_table_lists_the_paper_rows_and_the_releases():
    assert models.list_presets(releases=False) == [
        "mfnet3d",
        "mfnet2d",
        "mfnet2d_n12",
        "mfnet2d_n24",
        "mfnet2d_no_mux",
        "mfnet2d_no_mux_deeper_wider",
        "mobilenet_v2_1.4",
        "mobilenet_v2_1.4_mf",
        "resnet18",
        "resnet18_mf",
        "resnext26_8x16d",
    ]
    assert models.list_presets(architectures=False) == [
        "mfnet2d_imagenet1k",
        "mfnet3d_kinetics400",
        "mfnet3d_ucf101_split1",
        "mfnet3d_hmdb51_split1",
    ]


def test_releases_carry_their_class_names_in_label_order():
    kinetics = models.VideoClassifier.from_preset("mfnet3d_kinetics400", load_weights=False)
    assert kinetics.num_classes == 400 and len(set(kinetics.class_names)) == 400
    assert kinetics.class_names[:2] == ["abseiling", "air_drumming"] and kinetics.class_names[-1] == "zumba"
    ucf = models.VideoClassifier.from_preset("mfnet3d_ucf101_split1", load_weights=False, clip_length=4, crop_size=32)
    assert ucf.class_names[0] == "ApplyEyeMakeup" and ucf.class_names[100] == "YoYo"
    hmdb = models.get_preset("mfnet3d_hmdb51_split1")
    assert hmdb["num_classes"] == 51 and hmdb["checkpoint"]["file_name"] == "MFNet3D_HMDB51_Split-1_74.6.pth"
    assert models.preset_registry.class_names_of(hmdb)[:3] == ["brush_hair", "cartwheel", "catch"]
    image = models.VideoClassifier.from_preset("mfnet2d_imagenet1k", load_weights=False, crop_size=32)
    assert image.preprocessor.mean[0] == pytest.approx(124 / 255) and image.num_classes == 1000
    with pytest.raises(models.PresetError, match="has no download link"):
        models.VideoClassifier.from_preset("mfnet3d_kinetics400")


def test_mfnet3d_reference_figures():
    model = models.VideoClassifier.from_preset("mfnet3d", load_weights=False)
    assert model.input_shape == (None, 16, None, None, 3)
    assert model.backbone.input_shape == (None, 16, 224, 224, 3)
    assert model.output_shape == (None, 400)
    assert profiling.count_params(model) == 7_996_368
    assert round(profiling.count_flops(model) / 1e9, 2) == 11.05


def test_every_row_within_tolerance_of_the_paper():
    params_of = {}
    for entry, params, flops in profile_rows(models.list_presets(releases=False)):
        name, paper = entry["name"], entry["paper"]
        params_of[name] = params
        assert abs(flops / paper["flops"] - 1) <= 0.03, (name, flops)
        if not name.startswith("mobilenet"):
            assert abs(params / paper["params"] - 1) <= 0.02, (name, params)
    # MobileNet-v2: the standard architecture's count, and the paper's 13 % saving (±3 points).
    reference = keras.applications.MobileNetV2(alpha=1.4, weights=None)
    standard = profiling.count_params(reference)
    assert abs(params_of["mobilenet_v2_1.4"] / standard - 1) <= 0.01
    saving = 1 - params_of["mobilenet_v2_1.4_mf"] / params_of["mobilenet_v2_1.4"]
    assert 0.10 <= saving <= 0.16


def test_mobilenet_v2_matches_keras_applications_layer_by_layer():
    ours = models.VideoClassifier.from_preset("mobilenet_v2_1.4", load_weights=False)
    reference = keras.applications.MobileNetV2(alpha=1.4, weights=None)
    shapes = lambda m: sorted(tuple(w.shape) for w in m.trainable_weights if len(w.shape) > 1)  # noqa: E731
    assert shapes(ours) == shapes(reference)
    assert profiling.count_flops(ours) == profiling.count_flops(reference)


def test_profile_cli_prints_every_model(capsys):
    assert profile_main(["mfnet3d", "mfnet2d"]) == 0
    out = capsys.readouterr().out
    assert "7,996,368" in out and "11.05 G" in out and "mfnet2d" in out
    with pytest.raises(SystemExit):
        profile_main(["mfnet4d"])


def torch_shape(weight, leaf):
    shape = tuple(weight.shape)
    if leaf == "kernel" and len(shape) > 2:  # (*window, in/groups, out) → (out, in/groups, *window)
        return (shape[-1], shape[-2], *shape[:-2])
    if leaf == "kernel":
        return shape[::-1]
    return shape


@pytest.mark.parametrize("name, checkpoint", [("mfnet3d", "mfnet3d_kinetics400"), ("mfnet2d", "mfnet2d_imagenet1k")])
def test_weight_names_map_one_to_one_onto_the_released_checkpoint(name, checkpoint):
    with open(LAYOUT) as f:
        rows = [r for r in csv.reader(f, delimiter="\t") if r and r[0] == checkpoint]
    expected = {key: tuple(int(d) for d in shape.strip("[]").split(",") if d) for _, key, shape in rows}
    expected = {k: v for k, v in expected.items() if not k.endswith("num_batches_tracked")}
    model = models.VideoClassifier.from_preset(name, load_weights=False)
    ours = {checkpoint_key(w.path): torch_shape(w, w.path.rpartition("/")[2]) for w in model.weights}
    assert len(ours) == len(model.weights)
    assert ours == expected
    assert {keras_path(key) for key in expected} == {w.path for w in model.weights}  # the mapping both ways
    assert all("." not in layer.name for layer in model.backbone.layers)  # names every backend accepts


@pytest.mark.parametrize("name", ["mfnet3d", "mfnet2d"])
def test_config_round_trip(name):
    backbone_args = dict(input_shape=small_shape(name), num_fibers=8, multiplexer=False, synchronized_bn=True)
    backbone = models.MFNetBackbone(**backbone_args)
    assert_config_matches_args(backbone, backbone_args)
    preprocessor_args = dict(
        clip_length=small_shape(name)[0] if name == "mfnet3d" else 3,
        crop_size=32,
        short_side=40,
        mean=[0.5, 0.4, 0.3],
        std=[0.2, 0.25, 0.3],
        frame_interval=3,
    )
    preprocessor = models.VideoClassifierPreprocessor(**preprocessor_args)
    assert_config_matches_args(preprocessor, preprocessor_args)
    classifier_args = dict(
        backbone=backbone,
        num_classes=3,
        preprocessor=preprocessor,
        class_names=["a", "b", "c"],
        pooling="max",
        dropout=0.5,
        activation="softmax",
    )
    assert_config_matches_args(models.VideoClassifier(**classifier_args), classifier_args)


def test_every_preset_round_trips_through_keras_file_with_its_class_names(tmp_path):
    cases = []
    for name in models.list_presets(releases=False):
        model = build(name, num_classes=5, input_shape=small_shape(name), class_names=list("vwxyz"))
        cases.append((model, raw_clips(small_shape(name))))
    assert_keras_round_trip(tmp_path, cases, atol=1e-6)
    reloaded = models.load_model(os.path.join(tmp_path, "model_0.keras"))
    assert reloaded.class_names == list("vwxyz") and reloaded.preprocessor.crop_size == 32


@pytest.mark.parametrize("name", ["mfnet3d", "resnet18_mf", "mobilenet_v2_1.4_mf", "resnext26_8x16d", "resnet18"])
def test_fit_step_trains_every_weight(name):
    x = raw_clips(small_shape(name))
    model = build(name, num_classes=3, input_shape=small_shape(name))
    y = keras.utils.to_categorical([0, 2], 3)
    # MobileNet-v2's last projection BatchNorm (no activation, no residual) feeds a bias-free 1x1 conv and a
    # training-mode BatchNorm, which removes any per-channel constant: its beta's gradient is exactly zero
    # (fused BatchNorm kernels give 0.0; Keras's separate ops gave roundoff).
    zero = ("block16_project_bn/beta",) if name.startswith("mobilenet_v2") else ()
    loss = keras.losses.CategoricalCrossentropy(from_logits=True)
    assert_fit_step_trains_all_weights(model, x, y, loss=loss, zero_gradient=zero)


def test_mixed_precision_mfnet3d():
    x = raw_clips(SMALL_3D)
    assert_mixed_precision(lambda dtype: build("mfnet3d", num_classes=4, input_shape=SMALL_3D, dtype=dtype), x)


def test_pyramid_outputs_for_feature_extraction():
    backbone = models.MFNetBackbone(input_shape=(8, 112, 112, 3))
    assert backbone.output_shape == (None, 4, 4, 4, 768)
    extractor = keras.Model(backbone.inputs, backbone.pyramid_outputs)
    shapes = {k: tuple(v.shape) for k, v in extractor.output.items()}
    assert shapes == {
        "P2": (None, 4, 28, 28, 96),
        "P3": (None, 4, 14, 14, 192),
        "P4": (None, 4, 7, 7, 384),
        "P5": (None, 4, 4, 4, 768),
    }
    for cls, args in ((models.ResNetBackbone, {}), (models.MobileNetV2Backbone, {"alpha": 1.0})):
        image = cls(input_shape=(64, 64, 3), **args)
        assert {k: v.shape[1] for k, v in image.pyramid_outputs.items()} == {"P2": 16, "P3": 8, "P4": 4, "P5": 2}
    free = models.MFNetBackbone(input_shape=(None, None, None, 3))
    assert free(raw_clips(SMALL_3D)).shape == (2, 2, 1, 1, 768)
    with pytest.raises(ValueError, match="unknown dimensions"):
        profiling.count_flops(free)


def test_a_2d_backbone_classifies_every_frame_and_averages():
    model = build("mfnet2d", num_classes=4, input_shape=SMALL_2D, clip_length=3)
    clips = raw_clips((3, 32, 32, 3))
    per_frame = [np.asarray(model(clips[:, t : t + 1].repeat(3, axis=1))) for t in range(3)]
    features = keras.Model(model.input, model.get_layer("pool").output)
    pooled = np.asarray(features(clips))
    frames = [np.asarray(features(clips[:, t : t + 1].repeat(3, axis=1))) for t in range(3)]
    np.testing.assert_allclose(pooled, np.mean(frames, axis=0), rtol=1e-5, atol=1e-5)
    assert per_frame[0].shape == (2, 4)


def test_dropout_and_synchronized_bn_options():
    model = build("mfnet2d", num_classes=3, input_shape=SMALL_2D, dropout=0.5, synchronized_bn=True)
    assert model.get_layer("dropout").rate == 0.5
    bns = [sub for sub in walk_layers(model) if isinstance(sub, keras.layers.BatchNormalization)]
    assert bns and all(bn.synchronized for bn in bns)


def _classifier(**kwargs):
    return models.VideoClassifier.from_preset("mfnet3d", load_weights=False, **kwargs)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: _classifier(num_fibers=5), "Received: stem_filters=16"),
        (lambda: _classifier(stem_filters=64, num_fibers=64), "Received: mid_filters=96"),
        (lambda: models.MFNetBackbone(input_shape=(224, 224)), r"Received: input_shape=\(224, 224\)"),
        (lambda: models.ResNetBackbone(input_shape=(8, 224, 224, 3)), r"Received: input_shape=\(8, 224, 224, 3\)"),
        (lambda: _classifier(num_classes=0), "Received: num_classes=0"),
        (lambda: _classifier(pooling="sum"), "Received: pooling='sum'"),
        (lambda: _classifier(dropout=1.5), "Received: dropout=1.5"),
        (lambda: _classifier(fibres=16), "Received: fibres=16"),
        (lambda: _classifier(crop_size=0), "Received: crop_size=0"),
        (lambda: _classifier(short_side=100), "Received: short_side=100"),
        (lambda: _classifier(num_classes=3, class_names=["a"]), "Received: 1 names"),
    ],
)
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_an_unknown_preset_is_one_line():
    with pytest.raises(models.PresetError) as error:
        models.VideoClassifier.from_preset("mfnet4d")
    assert str(error.value).startswith("Unknown preset 'mfnet4d'; expected one of ['mfnet3d', ")
