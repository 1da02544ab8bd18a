"""FiberConv against Keras's grouped convolution and a NumPy reference."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops
from test_case import (
    assert_config_matches_args,
    assert_fit_step_trains_all_weights,
    assert_keras_round_trip,
    assert_mixed_precision,
    wrap_layer,
)

from mfnet_keras.layers import FiberConv
from mfnet_keras.layers.backend_ops import tensorflow_ops

RNG = np.random.default_rng(0)


def numpy_grouped_conv(x, kernel, strides, pads):
    """Direct grouped convolution, channels last, symmetric zero padding; loops over output positions."""
    rank = x.ndim - 2
    x = np.pad(x, [(0, 0), *[(p, p) for p in pads], (0, 0)])
    window = kernel.shape[:rank]
    cin_g, cout = kernel.shape[-2:]
    groups = x.shape[-1] // cin_g
    cout_g = cout // groups
    out_sizes = [(x.shape[1 + i] - window[i]) // strides[i] + 1 for i in range(rank)]
    out = np.zeros((x.shape[0], *out_sizes, cout), np.float64)
    for pos in np.ndindex(*out_sizes):
        sl = tuple(slice(p * s, p * s + w) for p, s, w in zip(pos, strides, window))
        patch = x[(slice(None), *sl)]
        for g in range(groups):
            xin = patch[..., g * cin_g : (g + 1) * cin_g].reshape(x.shape[0], -1)
            k = kernel[..., g * cout_g : (g + 1) * cout_g].reshape(-1, cout_g)
            out[(slice(None), *pos, slice(g * cout_g, (g + 1) * cout_g))] = xin @ k
    return out


def keras_grouped(kernel, rank, groups, strides, padding):
    cls = keras.layers.Conv3D if rank == 3 else keras.layers.Conv2D
    layer = cls(kernel.shape[-1], kernel.shape[:rank], strides=strides, padding=padding, groups=groups, use_bias=False)
    return layer, kernel


def values_and_grads(layer, x):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * tf.cos(y))  # a non-linear loss, so gradients depend on y
    gx, gk = tape.gradient(loss, [x, layer.kernel])
    return y.numpy(), gx.numpy(), gk.numpy()


CASES = [
    # rank, input shape, filters, kernel, fibers, strides, padding
    (3, (2, 5, 9, 9, 32), 48, (3, 3, 3), 16, (1, 2, 2), "same"),
    (3, (2, 4, 8, 8, 32), 32, (1, 3, 3), 16, 1, "same"),
    (3, (1, 6, 7, 7, 16), 96, 3, 16, (2, 1, 1), "valid"),
    (2, (2, 9, 9, 24), 24, 3, 12, 2, "same"),
    (2, (2, 8, 8, 16), 32, 5, 1, 2, "valid"),
]


# "frames" takes kernels one frame deep: every 2D case, and 3D ones with a (1, k, k) kernel.
FRAMES_CASES = [
    (3, (2, 4, 8, 8, 32), 32, (1, 3, 3), 16, 1, "same"),
    (3, (2, 5, 9, 9, 32), 48, (1, 3, 3), 16, (2, 2, 2), "same"),
    (3, (2, 5, 9, 9, 32), 48, (1, 3, 3), 8, (1, 2, 2), (0, 1, 1)),
    (2, (2, 9, 9, 24), 24, 3, 12, 2, "same"),
    (2, (2, 8, 8, 16), 32, 5, 1, 2, "valid"),
    (2, (2, 9, 9, 32), 64, 3, 16, 2, 1),
]


# "taps" (an export form) takes any kernel; these add temporal strides and padding with deep kernels.
TAPS_CASES = [
    *CASES,
    *FRAMES_CASES,
    (3, (1, 6, 7, 7, 16), 32, 3, 4, (2, 2, 2), (1, 1, 1)),
    (3, (2, 5, 6, 6, 16), 16, (3, 1, 1), 1, 1, "same"),
    (3, (1, 7, 6, 6, 8), 8, (3, 3, 3), 2, (2, 1, 1), "same"),
]


@pytest.mark.parametrize(
    "case, implementation",
    [(c, i) for i in ("split", "grouped", "auto") for c in CASES]
    + [(c, "frames") for c in FRAMES_CASES]
    + [(c, "taps") for c in TAPS_CASES],
)
def test_matches_keras_grouped_conv_forward_and_gradients(case, implementation):
    rank, shape, filters, kernel_size, fibers, strides, padding = case
    x = RNG.standard_normal(shape).astype("float32")
    fiber = FiberConv(filters, kernel_size, fibers, strides, padding, implementation=implementation)
    fiber.build(shape)
    fiber.kernel.assign(RNG.standard_normal(fiber.kernel.shape).astype("float32"))
    cls = keras.layers.Conv3D if rank == 3 else keras.layers.Conv2D
    if not isinstance(padding, str):  # Keras layers only pad "same"/"valid": pad first, then "valid"
        pads = (padding,) * rank if isinstance(padding, int) else padding
        x = np.pad(x, [(0, 0), *[(p, p) for p in pads], (0, 0)])
        fiber = FiberConv(filters, kernel_size, fibers, strides, "valid", implementation=implementation)
        fiber.build(x.shape)
        fiber.kernel.assign(RNG.standard_normal(fiber.kernel.shape).astype("float32"))
        shape, padding = x.shape, "valid"
    grouped = cls(filters, kernel_size, strides=strides, padding=padding, groups=fibers, use_bias=False)
    grouped.build(shape)
    assert tuple(grouped.kernel.shape) == tuple(fiber.kernel.shape)  # same storage layout
    grouped.kernel.assign(fiber.kernel)
    got, want = values_and_grads(fiber, x), values_and_grads(grouped, x)
    for g, w, what in zip(got, want, ("output", "input gradient", "kernel gradient")):
        scale = np.abs(w).max()
        assert np.abs(g - w).max() <= 1e-5 * scale, what
    assert fiber.compute_output_shape(shape) == got[0].shape


@pytest.mark.parametrize("rank", [2, 3])
def test_explicit_padding_matches_numpy(rank):
    shape = (2, 5, 8, 8, 16) if rank == 3 else (2, 8, 8, 16)
    kernel_size, strides, pads = ((3, 3, 3), (1, 2, 2), (1, 1, 1)) if rank == 3 else ((3, 3), (2, 2), (1, 1))
    x = RNG.standard_normal(shape).astype("float32")
    layer = FiberConv(32, kernel_size, num_fibers=4, strides=strides, padding=pads)
    y = np.asarray(layer(x))
    want = numpy_grouped_conv(x.astype("float64"), np.asarray(layer.kernel).astype("float64"), strides, pads)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)
    assert layer.compute_output_shape(shape) == y.shape


def test_auto_path_on_tensorflow():
    """With oneDNN on (tests/conftest.py), one-frame-deep kernels take the frames path, others split."""
    assert tensorflow_ops.grouped_conv2d_supported("float32")
    flat, deep, image = FiberConv(32, (1, 3, 3), 16), FiberConv(32, 3, 16), FiberConv(32, 3, 16)
    flat.build((None, 4, 8, 8, 32))
    deep.build((None, 4, 8, 8, 32))
    image.build((None, 8, 8, 32))
    assert (flat.plan.frames, deep.plan.frames, image.plan.frames) == (True, False, True)
    assert flat.takes_fibers and deep.takes_fibers
    x = ops.convert_to_tensor(RNG.standard_normal((2, 4, 8, 8, 32)).astype("float32"))
    fibers = ops.split(x, 16, axis=-1)
    assert len(flat.fibers(fibers)) == 16  # split input stays split: no concatenation
    assert len(flat.fibers(x)) == 1  # a whole tensor goes through one grouped 2D convolution
    np.testing.assert_allclose(np.concatenate(flat.fibers(fibers), -1), np.asarray(flat(x)), atol=1e-5)


def test_auto_path_without_grouped_conv2d(monkeypatch):
    """Where TensorFlow's grouped conv2d has no gradients (oneDNN off on a CPU), auto convolves fiber by fiber."""
    monkeypatch.setattr(tensorflow_ops, "grouped_conv2d_supported", lambda dtype: False)
    layer = FiberConv(32, (1, 3, 3), 16)
    layer.build((None, 4, 8, 8, 32))
    assert not layer.plan.frames and layer.plan.split
    x = ops.convert_to_tensor(RNG.standard_normal((2, 4, 8, 8, 32)).astype("float32"))
    assert len(layer.fibers(x)) == 16


def test_stride_one_symmetric_padding_equals_same():
    x = RNG.standard_normal((1, 4, 6, 6, 8)).astype("float32")
    explicit = FiberConv(8, (1, 3, 3), num_fibers=8, padding=(0, 1, 1))
    same = FiberConv(8, (1, 3, 3), num_fibers=8, padding="same")
    explicit.build(x.shape)
    same.build(x.shape)
    same.kernel.assign(explicit.kernel)
    np.testing.assert_allclose(np.asarray(explicit(x)), np.asarray(same(x)), atol=1e-6)


def test_config_round_trip_and_fit_step(tmp_path):
    kwargs = dict(
        filters=32,
        kernel_size=(3, 3, 3),
        num_fibers=8,
        strides=(1, 2, 2),
        padding=(1, 1, 1),
        implementation="split",
        kernel_initializer="he_normal",
        kernel_regularizer=None,
    )
    layer = FiberConv(**kwargs)
    assert_config_matches_args(layer, kwargs)
    x = RNG.standard_normal((2, 4, 8, 8, 16)).astype("float32")
    model = wrap_layer(FiberConv(**kwargs), x.shape)
    assert_fit_step_trains_all_weights(model, x, np.zeros((2, 4, 4, 4, 32), "float32"))
    assert_keras_round_trip(tmp_path, [(model, x)])


def test_mixed_precision():
    x = RNG.standard_normal((2, 4, 8, 8, 16)).astype("float32")
    assert_mixed_precision(lambda dtype: wrap_layer(FiberConv(32, 3, 16, dtype=dtype), x.shape), x)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(filters=30, kernel_size=3, num_fibers=16), "Received: filters=30"),
        (dict(filters=32, kernel_size=3, num_fibers=0), "Received: num_fibers=0"),
        (dict(filters=32, kernel_size=(3, 3, 0)), "Received: kernel_size=(3, 3, 0)"),
        (dict(filters=32, kernel_size=3, padding="full"), "Received: padding=full"),
        (dict(filters=32, kernel_size=3, implementation="fast"), "Received: implementation='fast'"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        FiberConv(**kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"Received: input_channels=24"):
        FiberConv(32, 3, num_fibers=16).build((None, 4, 8, 8, 24))
    with pytest.raises(ValueError, match=r"Received: input_shape=\(None, 8, 16\)"):
        FiberConv(32, 3).build((None, 8, 16))
    with pytest.raises(ValueError, match=r"Received: kernel_size=\(3, 3, 3\)"):
        FiberConv(32, (3, 3, 3)).build((None, 8, 8, 16))
    with pytest.raises(ValueError, match=r"Received: backend=tensorflow, kernel_size=\(3, 3, 3\)"):
        FiberConv(32, 3, 16, implementation="frames").build((None, 4, 8, 8, 16))


@pytest.mark.parametrize("frames", [2, 3, 8])
def test_tensorflow_3d_kernel_gradients_stay_finite_in_bfloat16(frames):
    """TensorFlow's oneDNN `Conv3DBackpropFilter` in bfloat16 returned wrong kernel gradients, often NaN, for
    "same" padding over fewer frames than the kernel's taps (2 under 3), ending mixed_bfloat16 training of short
    clips at step 2: `tensorflow_ops.conv3d` computes that case in float32 and the others in bfloat16. Repeated
    calls stay finite and close to the float32 gradient either way."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((4, frames, 2, 2, 8)).astype("float32"))
    kernel = tf.constant(rng.standard_normal((3, 3, 3, 8, 8)).astype("float32") * 0.1)

    def kernel_gradient(dtype):
        xc, kc = tf.cast(x, dtype), tf.cast(kernel, dtype)
        with tf.GradientTape() as tape:
            tape.watch(kc)
            loss = tf.reduce_sum(tf.cast(tensorflow_ops.conv3d(xc, kc, (1, 1, 1), "same"), "float32") ** 2)
        return tape.gradient(loss, kc).numpy().astype("float32")

    want = kernel_gradient(tf.float32)
    for _ in range(5):
        got = kernel_gradient(tf.bfloat16)
        assert np.all(np.isfinite(got)) and np.abs(got - want).max() <= 0.05 * np.abs(want).max()
