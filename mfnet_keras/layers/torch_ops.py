"""PyTorch-only piece of the model code: FiberConv's convolution on the PyTorch backend.

This is the one place where model code calls PyTorch directly. Keras's
`ops.conv` on PyTorch copies a channels-last input into channels-first memory
and back into channels-last memory before each convolution, and the output
once more. A channels-last tensor `[N, *spatial, C]` seen through
`permute` is already what PyTorch calls `channels_last(_3d)` memory, the
layout its oneDNN and cuDNN convolutions run fastest in, so here the input,
the output and their gradients cross over without a copy; only the small
kernel is rearranged.
"""


def conv(x, kernel, strides, padding, groups):
    """Grouped convolution of channels-last `x` with a Keras kernel `(*window, in // groups, out)`.

    `padding`: `"valid"`, or a tuple of symmetric per-dimension paddings.
    """
    import torch

    rank = x.ndim - 2
    to_first = (0, rank + 1, *range(1, rank + 1))
    to_last = (0, *range(2, rank + 2), 1)
    memory = torch.channels_last_3d if rank == 3 else torch.channels_last
    weights = kernel.permute(rank + 1, rank, *range(rank)).contiguous(memory_format=memory)
    conv_nd = torch.nn.functional.conv3d if rank == 3 else torch.nn.functional.conv2d
    pads = 0 if padding == "valid" else tuple(padding)
    y = conv_nd(x.permute(to_first), weights, stride=tuple(strides), padding=pads, groups=groups)
    return y.permute(to_last)
