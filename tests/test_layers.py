"""BNActConv, Multiplexer and MultiFiberUnit: structure, numerics, serialisation."""

import keras
import numpy as np
import pytest
from test_case import (
    assert_config_matches_args,
    assert_fit_step_trains_all_weights,
    assert_keras_round_trip,
    assert_mixed_precision,
    wrap_layer,
)

from mfnet_keras.layers import BNActConv, MultiFiberUnit, Multiplexer, walk_layers

RNG = np.random.default_rng(1)


def randomize_bn(layer):
    """Gives every BatchNorm non-trivial statistics so inference-mode checks mean something."""
    for sub in walk_layers(layer):
        if isinstance(sub, keras.layers.BatchNormalization):
            n = sub.gamma.shape[0]
            sub.gamma.assign(RNG.uniform(0.5, 1.5, n).astype("float32"))
            sub.beta.assign(RNG.normal(0, 0.2, n).astype("float32"))
            sub.moving_mean.assign(RNG.normal(0, 0.2, n).astype("float32"))
            sub.moving_variance.assign(RNG.uniform(0.5, 1.5, n).astype("float32"))


def bn_np(x, bn):
    g, b, m, v = (keras.ops.convert_to_numpy(w) for w in (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance))
    return (x - m) / np.sqrt(v + 1e-5) * g + b


def conv1x1_np(x, conv):
    return x @ keras.ops.convert_to_numpy(conv.kernel).reshape(x.shape[-1], -1)


def pre_act_1x1_np(x, layer):
    return conv1x1_np(np.maximum(bn_np(x, layer.bn), 0), layer.conv)


def test_bn_act_conv_is_bn_relu_conv():
    x = RNG.standard_normal((2, 3, 5, 5, 16)).astype("float32")
    layer = BNActConv(24, 1)
    layer.build(x.shape)
    randomize_bn(layer)
    assert layer.bn.epsilon == 1e-5 and layer.bn.momentum == 0.9
    np.testing.assert_allclose(np.asarray(layer(x, training=False)), pre_act_1x1_np(x, layer), rtol=1e-5, atol=1e-5)


def test_multiplexer_adds_two_pre_activation_projections():
    x = RNG.standard_normal((2, 3, 5, 5, 32)).astype("float32")
    layer = Multiplexer(8)
    layer.build(x.shape)
    randomize_bn(layer)
    want = x + pre_act_1x1_np(pre_act_1x1_np(x, layer.conv_i1), layer.conv_i2)
    np.testing.assert_allclose(np.asarray(layer(x, training=False)), want, rtol=1e-5, atol=1e-5)
    assert tuple(layer.conv_i1.conv.kernel.shape) == (1, 1, 1, 32, 8)
    assert tuple(layer.conv_i2.conv.kernel.shape) == (1, 1, 1, 8, 32)


def kernel_shapes(layer):
    return {w.path.split("/", 1)[1]: tuple(w.shape) for w in layer.weights if w.path.endswith("kernel")}


def test_first_unit_structure_matches_checkpoint():
    # conv2.B01 of the released MF-Net 3D: 16 → 96 channels, temporal stride 2.
    unit = MultiFiberUnit(96, num_fibers=16, strides=(2, 1, 1), first_unit=True, name="conv2_B01")
    unit.build((None, 16, 56, 56, 16))
    assert kernel_shapes(unit) == {
        "conv_i1/conv/kernel": (1, 1, 1, 16, 24),
        "conv_i2/conv/kernel": (1, 1, 1, 24, 16),
        "conv_m1/conv/kernel": (3, 3, 3, 1, 96),
        "conv_m2/conv/kernel": (1, 1, 1, 96, 96),
        "conv_w1/conv/kernel": (1, 1, 1, 16, 96),
    }
    assert unit.compute_output_shape((None, 16, 56, 56, 16)) == (None, 8, 56, 56, 96)


def test_unit_structure_2d_and_no_multiplexer():
    unit = MultiFiberUnit(96, num_fibers=16, multiplexer=False)
    unit.build((None, 56, 56, 96))
    assert kernel_shapes(unit) == {"conv_m1/conv/kernel": (3, 3, 6, 96), "conv_m2/conv/kernel": (3, 3, 6, 96)}


@pytest.mark.parametrize(
    "shape, first_unit, strides",
    [((2, 4, 8, 8, 32), True, (1, 2, 2)), ((2, 4, 8, 8, 64), False, 1), ((2, 8, 8, 64), False, 1)],
    ids=["first-3d", "inner-3d", "inner-2d"],
)
def test_unit_forward_equals_composition(shape, first_unit, strides):
    # In inference the unit folds two BatchNorms into the convs before them and keeps fibers split:
    # it must equal its sublayers called one after the other.
    x = RNG.standard_normal(shape).astype("float32")
    unit = MultiFiberUnit(64, num_fibers=8, strides=strides, first_unit=first_unit)
    y = unit(x, training=False)
    randomize_bn(unit)
    y = np.asarray(unit(x, training=False))
    x_in = x + np.asarray(unit.conv_i2(unit.conv_i1(x, training=False), training=False))
    h = unit.conv_m2(unit.conv_m1(x_in, training=False), training=False)
    want = np.asarray(h) + (np.asarray(unit.conv_w1(x, training=False)) if first_unit else x)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    assert y.shape == unit.compute_output_shape(x.shape)


LAYER_CASES = [
    (BNActConv, dict(filters=32, kernel_size=(1, 3, 3), num_fibers=16, strides=1, padding=None, synchronized_bn=False)),
    (Multiplexer, dict(bottleneck_filters=8, synchronized_bn=False)),
    (
        MultiFiberUnit,
        dict(
            filters=32,
            num_fibers=8,
            strides=(2, 2, 2),
            first_unit=True,
            mid_filters=48,
            multiplexer=True,
            synchronized_bn=False,
        ),
    ),
    (MultiFiberUnit, dict(filters=16, num_fibers=8, strides=1, first_unit=False, multiplexer=True)),
]


@pytest.mark.parametrize("cls, kwargs", LAYER_CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_layer_contract(cls, kwargs, tmp_path):
    assert_config_matches_args(cls(**kwargs), kwargs)
    x = RNG.standard_normal((2, 4, 6, 6, 16)).astype("float32")
    model = wrap_layer(cls(**kwargs), x.shape)
    y = model(x)
    assert_fit_step_trains_all_weights(model, x, np.zeros(y.shape, "float32"))
    assert_keras_round_trip(tmp_path, [(model, x)], atol=1e-6)
    assert_mixed_precision(lambda dtype: wrap_layer(cls(**kwargs, dtype=dtype), x.shape), x)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: MultiFiberUnit(96, num_fibers=5), "Received: mid_filters=96"),
        (lambda: MultiFiberUnit(96, num_fibers=16, strides=2), "Received: strides=2"),
        (lambda: MultiFiberUnit(96, num_fibers=16, multiplexer="yes"), "Received: multiplexer='yes'"),
        (lambda: MultiFiberUnit(96).build((None, 8, 8, 8, 40)), "Received: input_channels=40"),
        (lambda: MultiFiberUnit(96).build((None, 8, 8, 8, 48)), "Received: input_channels=48"),
        (lambda: MultiFiberUnit(96).build((None, 8, 96)), r"Received: input_shape=\(None, 8, 96\)"),
        (lambda: Multiplexer(0), "Received: bottleneck_filters=0"),
        (lambda: BNActConv(32, 3, synchronized_bn=1), "Received: synchronized_bn=1"),
    ],
)
def test_bad_arguments(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_frame_max_pooling_equals_a_3d_pool_and_keeps_its_config(tmp_path):
    from mfnet_keras.layers import FrameMaxPooling

    x = RNG.standard_normal((2, 3, 11, 12, 4)).astype("float32")
    for padding in ("valid", "same"):
        layer = FrameMaxPooling(3, strides=2, padding=padding)
        want = keras.layers.MaxPooling3D((1, 3, 3), strides=(1, 2, 2), padding=padding)(x)
        np.testing.assert_array_equal(np.asarray(layer(x)), np.asarray(want))
        assert layer.compute_output_shape(x.shape) == tuple(want.shape)
        assert_config_matches_args(layer, {"pool_size": 3, "strides": 2, "padding": padding})
    assert_keras_round_trip(tmp_path, [(wrap_layer(FrameMaxPooling(), x.shape), x)])
    with pytest.raises(ValueError, match="Received: padding='full'"):
        FrameMaxPooling(padding="full")


@pytest.mark.parametrize("dtype, bound", [("float32", 1e-5), ("mixed_bfloat16", 2**-7)])
def test_batch_norm_trains_on_tensorflows_fused_kernel_with_keras_numbers(dtype, bound):
    """On TensorFlow, training BatchNorm (and BNActConv's BN + ReLU) runs `FusedBatchNormV3`: outputs, input
    and weight gradients and moving statistics equal Keras's own BatchNormalization's (bfloat16: within a
    rounding of the last bit)."""
    import tensorflow as tf

    from mfnet_keras.layers import BatchNormalization

    rng = np.random.default_rng(3)
    x = tf.constant((rng.standard_normal((2, 3, 6, 5, 8)) * 3 + 1).astype("float32"))
    cotangent = tf.constant(rng.standard_normal(x.shape).astype("float32"))
    gamma, beta = rng.uniform(0.5, 1.5, 8).astype("float32"), rng.normal(0, 0.3, 8).astype("float32")

    def train_call(layer, bn, relu):
        with tf.GradientTape() as tape:
            tape.watch(x)
            if relu:
                y = layer.activate(x, training=True) if layer is not bn else keras.ops.relu(bn(x, training=True))
            else:
                y = bn(x, training=True)
            loss = tf.reduce_sum(tf.cast(y, "float32") * cotangent)
        grads = tape.gradient(loss, [x, bn.gamma.value, bn.beta.value])
        return [tf.cast(y, "float32"), *grads, bn.moving_mean.value, bn.moving_variance.value]

    for relu, fused in (
        (False, BatchNormalization(epsilon=1e-5, momentum=0.9, dtype=dtype)),
        (True, BNActConv(8, 1, dtype=dtype)),
    ):
        keras_bn = keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9, dtype=dtype)
        fused.build(x.shape)
        keras_bn.build(x.shape)
        bn = fused.bn if relu else fused
        assert bn.fuses(x, training=True) and type(bn).__name__ == "BatchNormalization"
        for layer in (bn, keras_bn):
            layer.gamma.assign(gamma)
            layer.beta.assign(beta)
        got, want = train_call(fused, bn, relu), train_call(keras_bn, keras_bn, relu)
        worst = max(float(np.abs(g - w).max() / np.abs(w).max()) for g, w in zip(got, want))
        assert worst <= bound, (relu, worst)
