"""The JAX backend's model ops: `keras.ops` throughout, with the paths XLA's CPU backend runs faster.

On the CPU, XLA runs a grouped convolution of few channels per fiber several
times slower than the dense one it is a block of, its gradients slower still,
and its 3D convolutions slower than 2D ones (docs/performance.md has the
figures). So there `"auto"` convolves a clip in inference as 2D convolutions
of all frames per temporal tap (`conv_over_frames`), narrow layers with the
block-diagonal dense kernel, and in training every fibered layer fiber by
fiber. On accelerators it is Keras's own grouped convolution.
"""

import dataclasses

import jax
from keras import ops

from mfnet_keras.layers.backend_ops import portable

FUSED_BATCH_NORM = False
# Input channels up to which "auto" uses the dense kernel on JAX's CPU: whole tensors, and over frames.
CPU_DENSE_MAX_CHANNELS = 192
CPU_FRAMES_DENSE_MAX_CHANNELS = 96


def on_cpu():
    """Whether JAX computes on the CPU."""
    return jax.default_backend() == "cpu"


def plan_conv(plan):
    """The paths a FiberConv takes here (see the module docstring).

    Args:
        plan: as the `backend_ops` seam documents it.
    """
    portable.refuse_tensorflow_only(plan, "jax")
    paths = portable.explicit_paths(plan)
    if plan.implementation != "auto" or not on_cpu():
        return paths
    # Over frames, "same" pads time itself: symmetrically, so only for one-frame or odd kernels at stride 1.
    taps, stride = plan.kernel_size[0], plan.strides[0]
    symmetric_time = taps == 1 or (taps % 2 == 1 and stride == 1)
    fibered = plan.num_fibers > 1
    return dataclasses.replace(
        paths,
        over_frames=plan.rank == 3 and (plan.padding == "valid" or symmetric_time),
        frames_dense=fibered and plan.channels <= CPU_FRAMES_DENSE_MAX_CHANNELS,
        split_in_training=fibered,
        dense=fibered and plan.channels <= CPU_DENSE_MAX_CHANNELS,
    )


def convolve(xs, kernel, plan, split, training=None):
    """FiberConv's output as a list of tensors (see `portable.convolve`); over frames in inference only.

    Args:
        xs, kernel, plan, split, training: as the `backend_ops` seam documents them.
    """
    xs = portable.padded(xs, plan, ops.pad)
    if not split and plan.over_frames and not training:
        kernel = portable.block_diagonal(kernel, plan.num_fibers) if plan.frames_dense else kernel
        return [conv_over_frames(xs[0], kernel, plan.strides, plan.padding)]
    return portable.convolve(xs, kernel, plan, split)


def conv_over_frames(x, kernel, strides, padding):
    """A 3D convolution as one 2D convolution of all frames per temporal tap, summed.

    `padding` is "valid", or "same" for a kernel one frame deep or an odd one
    at temporal stride 1 (whose frames are then zero-padded symmetrically, as
    "same" does); the kernel's input channels may be a fraction of `x`'s (a
    grouped convolution).

    Args:
        x: channels-last clips `[batch, T, H, W, C]`.
        kernel: a Keras kernel `(kt, kh, kw, in // groups, out)`.
        strides: `(t, h, w)` strides.
        padding: `"valid"` or `"same"`.
    """
    taps, st = kernel.shape[0], strides[0]
    if padding == "same" and taps > 1:
        half = (taps - 1) // 2
        x = ops.pad(x, ((0, 0), (half, half), (0, 0), (0, 0), (0, 0)))
    frames = x.shape[1]
    count = (frames - 1) // st + 1 if padding == "same" and taps == 1 else (frames - taps) // st + 1
    out = None
    for tap in range(taps):
        part = x[:, tap : tap + st * (count - 1) + 1 : st]
        part = ops.reshape(part, (-1, *part.shape[2:]))
        y = ops.conv(part, kernel[tap], strides=strides[1:], padding=padding)
        out = y if out is None else out + y
    return ops.reshape(out, (-1, count, *out.shape[1:]))


def batch_norm(x, gamma, beta, epsilon, relu=False):
    """Not on JAX (`FUSED_BATCH_NORM` is False): Keras's BatchNormalization, which XLA fuses, trains here.

    Args:
        x, gamma, beta, epsilon, relu: as the `backend_ops` seam documents them.
    """
    raise NotImplementedError("BatchNorm has no fused kernel of its own on JAX; Keras's runs there.")


# No kernel of this backend's own beats the portable ones.
max_pool_frames = portable.max_pool_frames
moving_average = portable.moving_average
