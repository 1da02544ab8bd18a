"""The model registry: paper rows, checkpoint names, serialisation, training, bad arguments."""

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
)

from mfnet_keras import models, profiling
from mfnet_keras.layers import walk_layers
from mfnet_keras.profile import main as profile_main
from mfnet_keras.profile import profile_rows
from mfnet_keras.weights import checkpoint_key

RNG = np.random.default_rng(2)
LAYOUT = os.path.join(os.path.dirname(__file__), "data", "official-checkpoint-layout.tsv")
SMALL_3D = (4, 32, 32, 3)
SMALL_2D = (32, 32, 3)


def small_input(name, batch=2):
    shape = SMALL_3D if name == "mfnet3d" else SMALL_2D
    return RNG.standard_normal((batch, *shape)).astype("float32")


def test_registry_lists_the_paper_rows():
    assert models.list_models() == [
        "mfnet3d",
        "mfnet2d",
        "mfnet2d_n12",
        "mfnet2d_n24",
        "mfnet2d_no_mux",
        "mfnet2d_no_mux_deeper_wider",
        "resnet18",
        "resnet18_mf",
        "mobilenet_v2_1.4",
        "mobilenet_v2_1.4_mf",
        "resnext26_8x16d",
    ]


def test_mfnet3d_reference_figures():
    model = models.build("mfnet3d")
    assert model.input_shape == (None, 16, 224, 224, 3)
    assert model.output_shape == (None, 400)
    assert profiling.count_params(model) == 7_996_368
    assert round(profiling.count_flops(model) / 1e9, 2) == 11.05


def test_every_row_within_tolerance_of_the_paper():
    params_of = {}
    for spec, params, flops in profile_rows(models.list_models()):
        params_of[spec.name] = params
        assert abs(flops / spec.paper_flops - 1) <= 0.03, (spec.name, flops)
        if not spec.name.startswith("mobilenet"):
            assert abs(params / spec.paper_params - 1) <= 0.02, (spec.name, params)
    # MobileNet-v2: the standard architecture's count, and the paper's 13 % saving (±3 points).
    reference = keras.applications.MobileNetV2(alpha=1.4, weights=None)
    standard = profiling.count_params(reference)
    assert abs(params_of["mobilenet_v2_1.4"] / standard - 1) <= 0.01
    saving = 1 - params_of["mobilenet_v2_1.4_mf"] / params_of["mobilenet_v2_1.4"]
    assert 0.10 <= saving <= 0.16


def test_mobilenet_v2_matches_keras_applications_layer_by_layer():
    ours = models.build("mobilenet_v2_1.4")
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
    model = models.build(name)
    ours = {checkpoint_key(w.path): torch_shape(w, w.path.rpartition("/")[2]) for w in model.weights}
    assert len(ours) == len(model.weights)
    assert ours == expected


@pytest.mark.parametrize("name", ["mfnet3d", "mfnet2d"])
def test_config_round_trip(name):
    kwargs = dict(
        num_classes=7,
        input_shape=SMALL_3D if name == "mfnet3d" else SMALL_2D,
        num_fibers=8,
        multiplexer=False,
        dropout=0.5,
        include_top=True,
        pooling=None,
        classifier_activation="softmax",
        synchronized_bn=True,
    )
    model = models.build(name, **kwargs)
    assert_config_matches_args(model, kwargs)


def test_every_registry_model_round_trips_through_keras_file(tmp_path):
    cases = [
        (models.build(name, num_classes=5, input_shape=small_input(name).shape[1:]), small_input(name))
        for name in models.list_models()
    ]
    assert_keras_round_trip(tmp_path, cases, atol=1e-6)


@pytest.mark.parametrize("name", ["mfnet3d", "resnet18_mf", "mobilenet_v2_1.4_mf", "resnext26_8x16d", "resnet18"])
def test_fit_step_trains_every_weight(name):
    x = small_input(name)
    model = models.build(name, num_classes=3, input_shape=x.shape[1:])
    y = keras.utils.to_categorical([0, 2], 3)
    assert_fit_step_trains_all_weights(model, x, y, loss=keras.losses.CategoricalCrossentropy(from_logits=True))


def test_mixed_precision_mfnet3d():
    x = small_input("mfnet3d")
    assert_mixed_precision(lambda dtype: models.build("mfnet3d", num_classes=4, input_shape=SMALL_3D, dtype=dtype), x)


def test_clip_sizes_and_feature_extraction():
    model = models.build("mfnet3d", num_classes=10, input_shape=(8, 112, 112, 3))
    assert model.output_shape == (None, 10)
    features = models.build("mfnet3d", input_shape=(8, 112, 112, 3), include_top=False)
    assert features.output_shape == (None, 4, 4, 4, 768)
    pooled = models.build("mfnet3d", input_shape=(None, None, None, 3), include_top=False, pooling="avg")
    assert pooled.output_shape == (None, 768)
    assert pooled(small_input("mfnet3d")).shape == (2, 768)
    with pytest.raises(ValueError, match="unknown dimensions"):
        profiling.count_flops(pooled)


def test_dropout_and_synchronized_bn_options():
    model = models.build("mfnet2d", num_classes=3, input_shape=SMALL_2D, dropout=0.5, synchronized_bn=True)
    assert model.get_layer("dropout").rate == 0.5
    bns = [sub for sub in walk_layers(model) if isinstance(sub, keras.layers.BatchNormalization)]
    assert bns and all(bn.synchronized for bn in bns)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: models.build("mfnet4d"), "Received: name='mfnet4d'"),
        (lambda: models.build("mfnet3d", num_fibers=5), "Received: stem_filters=16"),
        (lambda: models.build("mfnet3d", stem_filters=64, num_fibers=64), "Received: mid_filters=96"),
        (lambda: models.build("mfnet3d", input_shape=(224, 224)), r"Received: input_shape=\(224, 224\)"),
        (lambda: models.build("resnet18", input_shape=(8, 224, 224, 3)), r"Received: input_shape=\(8, 224, 224, 3\)"),
        (lambda: models.build("mfnet3d", num_classes=0), "Received: num_classes=0"),
        (lambda: models.build("mfnet3d", pooling="sum"), "Received: pooling='sum'"),
        (lambda: models.build("mfnet3d", dropout=1.5), "Received: dropout=1.5"),
        (lambda: models.build("mfnet3d", fibres=16), "Received: fibres=16"),
    ],
)
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()
