"""The PyTorch backend's model ops: FiberConv's convolution, BatchNorm's training step, the frame max-pool.

This is the one place where model code calls PyTorch directly. Keras's
`ops.conv` on PyTorch copies a channels-last input into channels-first memory
and back into channels-last memory before each convolution, and the output
once more. A channels-last tensor `[N, *spatial, C]` seen through
`permute` is already what PyTorch calls `channels_last(_3d)` memory, the
layout its oneDNN and cuDNN convolutions run fastest in, so here the input,
the output and their gradients cross over without a copy; only the small
kernel is rearranged. The same view lets BatchNorm train on PyTorch's
fused kernel instead of Keras's ten or so separate element-wise ops.
"""

import keras
import torch

from mfnet_keras.layers.backend_ops import portable

FUSED_BATCH_NORM = True


def plan_conv(plan):
    """The paths a FiberConv takes here: `"auto"` is one grouped convolution (`conv` where PyTorch's
    symmetric padding gives the layer's output).

    Args:
        plan: as the `backend_ops` seam documents it.
    """
    portable.refuse_tensorflow_only(plan, "torch")
    return portable.explicit_paths(plan)


def convolve(xs, kernel, plan, split, training=None):
    """FiberConv's output as a list of tensors (see `portable.convolve`); `training` is not needed here.

    bfloat16 clips shorter than the kernel convolve in float32, where oneDNN's bfloat16 kernel gradient is
    wrong (`portable.short_for_bfloat16_kernel_gradient`).

    Args:
        xs, kernel, plan, split, training: as the `backend_ops` seam documents them.
    """
    kernel = keras.ops.convert_to_tensor(kernel)
    frames, taps = xs[0].shape[1], plan.kernel_size[0]
    if plan.rank == 3 and xs[0].dtype == torch.bfloat16 and portable.short_for_bfloat16_kernel_gradient(frames, taps):
        return [y.to(torch.bfloat16) for y in convolve([x.float() for x in xs], kernel.float(), plan, split)]
    if not split and plan.symmetric_padding is not None:
        return [conv(xs[0], kernel, plan.strides, plan.symmetric_padding, plan.num_fibers)]
    return portable.convolve(portable.padded(xs, plan, keras.ops.pad), kernel, plan, split)


def _to_first(x):
    """The channels-first view of channels-last `x` (no copy)."""
    return x.permute(0, x.ndim - 1, *range(1, x.ndim - 1))


def _to_last(x):
    return x.permute(0, *range(2, x.ndim), 1)


def conv(x, kernel, strides, padding, groups):
    """Grouped convolution of channels-last `x` with a Keras kernel `(*window, in // groups, out)`.

    `padding`: `"valid"`, or a tuple of symmetric per-dimension paddings.

    Args:
        x: channels-last images or clips.
        kernel: a Keras kernel `(*window, in // groups, out)`.
        strides: one stride per spatial dimension.
        padding: `"valid"`, or a tuple of symmetric per-dimension paddings.
        groups: the number of groups.
    """
    rank = x.ndim - 2
    memory = torch.channels_last_3d if rank == 3 else torch.channels_last
    weights = kernel.permute(rank + 1, rank, *range(rank)).contiguous(memory_format=memory)
    conv_nd = torch.nn.functional.conv3d if rank == 3 else torch.nn.functional.conv2d
    pads = 0 if padding == "valid" else tuple(padding)
    y = conv_nd(_to_first(x), weights, stride=tuple(strides), padding=pads, groups=groups)
    return _to_last(y)


def batch_norm(x, gamma, beta, epsilon, relu=False):
    """Training-mode BatchNorm of channels-last `x` over every axis but the last, as one fused kernel.

    Returns the normalised `x` (in `x`'s dtype; the statistics are accumulated
    in float32 for bfloat16 and float16 input), with a ReLU applied in place
    when `relu`, and the batch's mean and biased variance, detached, for the
    moving statistics.

    Args:
        x, gamma, beta, epsilon, relu: as the `backend_ops` seam documents them.
    """
    y, mean, inverse_std = torch.native_batch_norm(_to_first(x), gamma, beta, None, None, True, 0.0, epsilon)
    if relu:  # in place: BatchNorm's gradient needs its input, not its output
        y = torch.relu_(y)
    variance = inverse_std.detach().float().pow(-2) - epsilon
    return _to_last(y), mean.detach().float(), variance


def moving_average(moving, batch, momentum):
    """`momentum · moving + (1 − momentum) · batch` as one op (Keras's BatchNorm update).

    Args:
        moving, batch, momentum: as the `backend_ops` seam documents them.
    """
    return torch.lerp(moving, batch, 1.0 - momentum)


def max_pool_frames(clips, pool_size, strides, padding):
    """A `1 × k × k` max-pool of clips: unpadded, PyTorch's own 3D pool of the channels-last memory (Keras's
    would copy it to channels-first memory first).

    Args:
        clips, pool_size, strides, padding: as the `backend_ops` seam documents them.
    """
    if padding != "valid":
        return portable.max_pool_frames(clips, pool_size, strides, padding)
    return max_pool(clips, pool_size, strides)


def max_pool(x, pool_size, strides):
    """Unpadded max-pool of channels-last images or clips, clips pooled `1 × k × k`, on the channels-last memory.

    Args:
        x: channels-last images or clips.
        pool_size: the spatial window `k`.
        strides: the spatial stride.
    """
    if x.ndim == 5:
        y = torch.nn.functional.max_pool3d(_to_first(x), (1, pool_size, pool_size), (1, strides, strides))
    else:
        y = torch.nn.functional.max_pool2d(_to_first(x), pool_size, strides)
    return _to_last(y)
