"""The TensorFlow backend's model ops: FiberConv's fast paths, BatchNorm's fused training kernel, and
resizing to a size known at run time.

This is the one place where model code calls TensorFlow directly. Keras's
`ops.conv` sends every grouped convolution through XLA on TensorFlow, which
is many times slower on CPU, while TensorFlow's own grouped `conv2d` runs as a
single oneDNN (or cuDNN) primitive. FiberConv uses it where
`grouped_conv2d_supported` says it works here, and convolves fiber by fiber
otherwise. Its explicit padding is `zero_pad`, for the reason given there.
`resize_bilinear` serves `VideoClassifierPreprocessor` when the frame size is
unknown until run time (a SavedModel that takes clips of any size):
`keras.ops.image.resize` needs a size known when the graph is built.
"""

import dataclasses
import functools

import tensorflow as tf

from mfnet_keras.layers.backend_ops import portable

FUSED_BATCH_NORM = True


@functools.cache
def grouped_conv2d_supported(dtype):
    """Whether TensorFlow's grouped `conv2d` and both its gradients run on the default device for `dtype`.

    With oneDNN (`TF_ENABLE_ONEDNN_OPTS=1`) or on a GPU they do; TensorFlow's
    plain CPU kernels compute the forward pass but have no gradients.

    Args:
        dtype: the compute dtype.
    """
    with tf.init_scope():
        x, kernel = tf.ones((1, 3, 3, 2), dtype), tf.ones((3, 3, 1, 2), dtype)
        strides = (1, 1, 1, 1)
        try:
            tf.nn.conv2d(x, kernel, strides, "SAME").numpy()
            tf.raw_ops.Conv2DBackpropInput(
                input_sizes=x.shape, filter=kernel, out_backprop=x, strides=strides, padding="SAME"
            ).numpy()
            tf.raw_ops.Conv2DBackpropFilter(
                input=x, filter_sizes=kernel.shape, out_backprop=x, strides=strides, padding="SAME"
            ).numpy()
        except (tf.errors.OpError, TypeError, ValueError):
            return False
    return True


def plan_conv(plan):
    """The paths a FiberConv takes here: `"auto"` convolves fiber by fiber, and a kernel one frame deep as
    TensorFlow's grouped 2D convolution over all frames where that runs (`grouped_conv2d_supported`).

    Args:
        plan: as the `backend_ops` seam documents it.
    """
    one_frame = plan.rank == 2 or plan.kernel_size[0] == 1
    if plan.implementation == "frames" and not one_frame:
        portable.refuse_tensorflow_only(plan, "tensorflow")
    paths = portable.explicit_paths(plan)
    if plan.implementation != "auto" or plan.num_fibers == 1:
        return paths
    return dataclasses.replace(paths, frames=one_frame and grouped_conv2d_supported(plan.dtype), split=True)


def convolve(xs, kernel, plan, split, training=None):
    """FiberConv's output as a list of tensors (see `portable.convolve`); `training` is not needed here.

    Args:
        xs, kernel, plan, split, training: as the `backend_ops` seam documents them.
    """
    xs = portable.padded(xs, plan, zero_pad)
    if plan.frames and not split:
        conv = taps_conv if plan.rank == 3 and plan.kernel_size[0] > 1 else frames_conv
        return [conv(xs[0], kernel, plan.strides, plan.padding)]
    if plan.implementation == "graph":
        return [grouped_conv(xs[0], kernel, plan.strides, plan.padding)]
    return portable.convolve(xs, kernel, plan, split, conv3d if plan.rank == 3 else portable.plain_conv)


# No kernel of this backend's own beats the portable ones.
max_pool_frames = portable.max_pool_frames
moving_average = portable.moving_average


def frames_conv(x, kernel, strides, padding):
    """Grouped convolution with a kernel one frame deep, as one 2D convolution over all frames.

    `x` is `(batch, H, W, C)` or `(batch, T, H, W, C)`; `kernel` is in Keras's
    grouped layout (`(1, kh, kw, C / groups, filters)` for clips), so the
    group count follows from the channels. A temporal stride keeps every
    `strides[0]`-th frame, which is exact for a kernel one frame deep.

    Args:
        x: `(batch, H, W, C)` or `(batch, T, H, W, C)`, channels last.
        kernel: a grouped Keras kernel one frame deep.
        strides: the strides (an int or one per spatial dimension).
        padding: `"valid"` or `"same"`.
    """
    padding = padding.upper()
    if len(x.shape) == 4:
        return tf.nn.conv2d(x, kernel, strides, padding)
    if strides[0] > 1:
        x = x[:, :: strides[0]]
    dims = _dims(x)
    y = tf.nn.conv2d(tf.reshape(x, [-1, *dims[2:]]), kernel[0], strides[1:], padding)
    return tf.reshape(y, [*dims[:2], *_dims(y)[1:]])


def taps_conv(x, kernel, strides, padding):
    """Grouped 3D convolution of clips as one grouped 2D convolution over all frames.

    The `kt` frames each output frame reads (its temporal taps) are stacked
    into channels, fiber by fiber, and the kernel `(kt, kh, kw, C / groups,
    filters)` becomes `(kh, kw, kt * C / groups, filters)`: the same sums, as
    the 2D convolution every runtime runs well (LiteRT has no grouped or int8
    3D convolution). Temporal "same" padding is explicit here; the frame count
    must be known when the graph is built.

    Args:
        x: channels-last clips `(batch, T, H, W, C)`.
        kernel: a grouped Keras kernel `(kt, kh, kw, C / groups, filters)`.
        strides: `(t, h, w)` strides.
        padding: `"valid"` or `"same"`.
    """
    taps, frames, channels = kernel.shape[0], x.shape[1], x.shape[-1]
    groups = channels // kernel.shape[3]
    if padding == "same":
        out = -(-frames // strides[0])
        total = max((out - 1) * strides[0] + taps - frames, 0)
        x = tf.pad(x, [[0, 0], [total // 2, total - total // 2], [0, 0], [0, 0], [0, 0]])
        frames = x.shape[1]
    out = (frames - taps) // strides[0] + 1
    dims = _dims(x)
    shape = [-1, *dims[2:4], groups, channels // groups]
    stacked = [tf.reshape(x[:, t : t + (out - 1) * strides[0] + 1 : strides[0]], shape) for t in range(taps)]
    images = tf.reshape(tf.concat(stacked, -1) if taps > 1 else stacked[0], [-1, *dims[2:4], taps * channels])
    flat = tf.reshape(tf.transpose(kernel, [1, 2, 0, 3, 4]), [*kernel.shape[1:3], -1, kernel.shape[4]])
    y = tf.nn.conv2d(images, flat, strides[1:], padding.upper())
    return tf.reshape(y, [dims[0], out, *_dims(y)[1:]])


def batch_norm(x, gamma, beta, epsilon, relu=False):
    """Training-mode BatchNorm of channels-last `x` over every axis but the last, as TensorFlow's fused
    kernel (`FusedBatchNormV3`, oneDNN's on CPU; statistics in float32 for bfloat16 and float16 input).

    Returns the normalised `x` in its dtype (a ReLU applied when `relu`) and
    the batch's mean and biased variance (what Keras's moving statistics take;
    the kernel gives the unbiased one).

    Args:
        x, gamma, beta, epsilon, relu: as the `backend_ops` seam documents them.
    """
    dims = _dims(x)
    images = tf.reshape(x, [-1, *dims[-3:]] if len(dims) >= 4 else [1, -1, 1, dims[-1]])
    # oneDNN's bfloat16 kernels take channel counts in multiples of 16; others (the multiplexers' 24) fall
    # to its reference kernel, several times slower than normalising them in float32.
    widened = x.dtype == tf.bfloat16 and x.shape[-1] % 16 != 0
    images = tf.cast(images, tf.float32) if widened else images
    y, mean, variance = tf.compat.v1.nn.fused_batch_norm(images, gamma, beta, epsilon=epsilon, is_training=True)
    if relu:  # straight on the kernel's output, where Grappler's remapper fuses it into the kernel
        y = tf.nn.relu(y)
    count = tf.cast(tf.size(x, out_type=tf.int64) // dims[-1], tf.float32)
    y = tf.reshape(tf.cast(y, x.dtype), dims)
    return y, mean, variance * (count - 1.0) / tf.maximum(count, 1.0)


def conv3d(x, kernel, strides, padding):
    """A (dense) 3D convolution; for bfloat16 input fewer frames deep than the kernel, its kernel gradient in float32.

    oneDNN's bfloat16 `Conv3DBackpropFilter` is wrong there (`portable.short_for_bfloat16_kernel_gradient`;
    it ended mixed_bfloat16 training of short clips at its second step), so only there is the kernel gradient
    computed from float32 copies; the forward pass and the input gradient stay bfloat16.

    Args:
        x: channels-last clips.
        kernel: a dense Keras kernel `(kt, kh, kw, in, out)`.
        strides: `(t, h, w)` strides.
        padding: `"valid"` or `"same"`.
    """
    strides5, padding = [1, *strides, 1], padding.upper()
    if x.dtype != tf.bfloat16 or not portable.short_for_bfloat16_kernel_gradient(x.shape[1], kernel.shape[0]):
        return tf.nn.conv3d(x, kernel, strides5, padding)

    @tf.custom_gradient
    def conv(x, kernel):
        def grad(dy):
            dx = tf.raw_ops.Conv3DBackpropInputV2(
                input_sizes=tf.shape(x), filter=kernel, out_backprop=dy, strides=strides5, padding=padding
            )
            dk = tf.raw_ops.Conv3DBackpropFilterV2(
                input=tf.cast(x, tf.float32),
                filter_sizes=tf.shape(kernel),
                out_backprop=tf.cast(dy, tf.float32),
                strides=strides5,
                padding=padding,
            )
            return dx, tf.cast(dk, kernel.dtype)

        return tf.nn.conv3d(x, kernel, strides5, padding), grad

    return conv(x, tf.convert_to_tensor(kernel))  # a variable's value: its gradient flows through the read


def grouped_conv(x, kernel, strides, padding):
    """One grouped convolution op, for graphs handed to another runtime: TensorFlow's CPU kernels cannot run it.

    Args:
        x: channels-last input.
        kernel: a grouped Keras kernel.
        strides: the strides.
        padding: `"valid"` or `"same"`.
    """
    return tf.nn.convolution(x, kernel, strides, padding.upper())


def zero_pad(x, pads):
    """Zero padding of `x` (`pads`: a `(low, high)` pair per dimension) as TensorFlow's `PadV2` op.

    Grappler's oneDNN remapper fuses a plain `Pad` into the convolution that
    follows and deletes it, although the convolution's gradient still reads
    the padded shape (a `ShapeN` on the `Pad`): every training graph then logs
    `remapper failed: ... fanout ... exist for missing node .../Pad` and runs
    without any remapper fusion. The remapper leaves `PadV2` alone, and the
    padded copy costs the same.

    Args:
        x: the tensor.
        pads: a `(low, high)` pair per dimension.
    """
    return tf.pad(x, pads, constant_values=tf.zeros((), x.dtype))


def _dims(x):
    """The static size of each dimension where known, else the dynamic one."""
    dynamic = tf.shape(x)
    return [dynamic[i] if n is None else n for i, n in enumerate(x.shape)]


def resize_bilinear(images, size):
    """Antialiased bilinear resize of `[N, H, W, C]` to `size` (tensors allowed), as `keras.ops.image.resize`.

    Args:
        images: `[N, H, W, C]`.
        size: `(height, width)`, ints or tensors.
    """
    return tf.image.resize(images, size, method="bilinear", antialias=True)
