"""What every backend module shares: a convolution's plan, the `keras.ops` convolution paths, the
frame-by-frame max-pool and the moving average that backends without a kernel of their own use."""

import dataclasses

from keras import ops

TENSORFLOW_ONLY = ("taps", "graph", "frames")


@dataclasses.dataclass(frozen=True)
class ConvPlan:
    """How a built `FiberConv` convolves: its geometry, then the paths the backend lets it take.

    Args:
        implementation: the layer's `implementation` argument.
        rank: 2 (images) or 3 (clips).
        kernel_size, strides: one int per spatial dimension.
        padding: `"same"` or `"valid"`, what the convolution op itself pads.
        pads: `(low, high)` zero padding per spatial dimension applied before the op, or None.
        symmetric_padding: `"valid"` or per-dimension paddings that give the layer's output from a
            convolution that pads symmetrically (PyTorch's), or None where none does.
        num_fibers, channels: groups and input channels.
        dtype: the compute dtype.
        frames: whole tensors may convolve as one 2D convolution over all frames (TensorFlow).
        split: fibers may convolve one by one.
        split_in_training: fibers convolve one by one in training, whatever the input.
        over_frames: in inference, a clip convolves as 2D convolutions per temporal tap (JAX's CPU).
        frames_dense: `over_frames` uses the block-diagonal dense kernel.
        dense: a whole tensor convolves with the block-diagonal dense kernel.
    """

    implementation: str
    rank: int
    kernel_size: tuple
    strides: tuple
    padding: str
    pads: tuple | None
    symmetric_padding: object
    num_fibers: int
    channels: int
    dtype: str
    frames: bool = False
    split: bool = False
    split_in_training: bool = False
    over_frames: bool = False
    frames_dense: bool = False
    dense: bool = False


def explicit_paths(plan):
    """`plan` with the paths of its `implementation` as every backend reads it (`"auto"`: none yet).

    Args:
        plan: a layer's `ConvPlan`.
    """
    fibered = plan.num_fibers > 1 or plan.implementation == "taps"
    kind = plan.implementation if fibered else None
    return dataclasses.replace(
        plan,
        frames=kind in ("frames", "taps"),
        split=kind == "split",
        split_in_training=False,
        over_frames=False,
        frames_dense=False,
        dense=plan.num_fibers > 1 and plan.implementation == "dense",
    )


def refuse_tensorflow_only(plan, backend):
    """Raises the ValueError for an implementation that only the TensorFlow backend has.

    Args:
        plan: a layer's `ConvPlan`.
        backend: the running backend's name, in the message.
    """
    if plan.implementation == "frames":
        raise ValueError(
            '`implementation="frames"` needs the TensorFlow backend and a kernel one frame deep. '
            f"Received: backend={backend}, kernel_size={plan.kernel_size}"
        )
    if plan.implementation in TENSORFLOW_ONLY:
        raise ValueError(
            f"`implementation={plan.implementation!r}` needs the TensorFlow backend. Received: backend={backend}"
        )


def short_for_bfloat16_kernel_gradient(frames, taps):
    """Whether a bfloat16 3D kernel gradient must be computed in float32: the input has fewer frames than the kernel
    has taps, or a depth unknown until run time.

    oneDNN, under both TensorFlow's and PyTorch's CPU convolutions, returns wrong bfloat16 kernel gradients
    (NaN, or off by up to 10^36 of their largest value, differing from call to call) when padding meets input
    fewer frames deep than the kernel: 2 frames under 3 taps, which 4-frame clips reach after conv2's temporal
    stride. Every other case probed (depths 1 to 17, strided or not) stayed close to float32: within 0.6 % of
    the gradient's largest value at MFNet's layer shapes.

    Args:
        frames: the input's depth, or None where it is unknown when the graph is built.
        taps: the kernel's depth.
    """
    return frames is None or frames < taps


def block_diagonal(kernel, num_fibers):
    """The dense kernel `(*window, in, out)` that a grouped kernel `(*window, in // num_fibers, out)` is a block of:
    fiber g's block maps input channels `g·in/N…` to output channels `g·out/N…`, zeros elsewhere.

    Args:
        kernel: a grouped kernel `(*window, in // num_fibers, out)`.
        num_fibers: the number of groups.
    """
    *window, per_fiber, filters = kernel.shape
    blocks = ops.reshape(kernel, (-1, per_fiber, num_fibers, filters // num_fibers))
    eye = ops.eye(num_fibers, dtype=kernel.dtype)
    dense = ops.einsum("kcgo,hg->khcgo", blocks, eye)
    return ops.reshape(dense, (*window, num_fibers * per_fiber, filters))


def plain_conv(x, kernel, strides, padding):
    """`keras.ops.conv`, positionally.

    Args:
        x: channels-last input.
        kernel: a dense kernel.
        strides: the strides.
        padding: `"valid"` or `"same"`.
    """
    return ops.conv(x, kernel, strides=strides, padding=padding)


def padded(xs, plan, pad):
    """Each of `xs` zero-padded by `plan.pads` with `pad(x, pad_width)` (unchanged when there are none).

    Args:
        xs: tensors to pad.
        plan: the layer's `ConvPlan` (its `pads`).
        pad: the backend's `pad(x, pad_width)`.
    """
    if plan.pads is None:
        return xs
    return [pad(x, ((0, 0), *plan.pads, (0, 0))) for x in xs]


def convolve(xs, kernel, plan, split, conv=plain_conv):
    """The `keras.ops` paths: one fiber at a time when `split`, else one dense or grouped convolution.

    `xs` is one tensor or one per fiber; `conv(x, kernel, strides, padding)`
    is the backend's plain convolution (a grouped one is always Keras's own).

    Args:
        xs: one tensor, or one per fiber.
        kernel: the layer's kernel, `(*window, in // num_fibers, out)`.
        plan: the layer's `ConvPlan`.
        split: convolve fiber by fiber.
        conv: the backend's plain convolution, `conv(x, kernel, strides, padding)`.
    """
    if not split:
        if plan.dense:
            return [conv(xs[0], block_diagonal(kernel, plan.num_fibers), plan.strides, plan.padding)]
        if plan.num_fibers > 1:
            return [ops.conv(xs[0], kernel, strides=plan.strides, padding=plan.padding)]
        return [conv(xs[0], kernel, plan.strides, plan.padding)]
    if len(xs) == 1:
        xs = ops.split(xs[0], plan.num_fibers, axis=-1)
    kernels = ops.split(kernel, plan.num_fibers, axis=-1)
    return [conv(x, k, plan.strides, plan.padding) for x, k in zip(xs, kernels)]


def dims(x):
    """`x`'s shape, each dimension unknown when the graph is built read at run time.

    Args:
        x: a tensor.
    """
    return [d if d is not None else ops.shape(x)[i] for i, d in enumerate(x.shape)]


def max_pool_frames(clips, pool_size, strides, padding):
    """A `1 × k × k` max-pool of clips as one 2D pool of all frames.

    Args:
        clips, pool_size, strides, padding: as the `backend_ops` seam documents them.
    """
    images = ops.reshape(clips, (-1, *dims(clips)[2:]))
    pooled = ops.max_pool(images, pool_size, strides, padding)
    return ops.reshape(pooled, (-1, dims(clips)[1], *dims(pooled)[1:]))


def moving_average(moving, batch, momentum):
    """`momentum · moving + (1 − momentum) · batch` (Keras's BatchNorm update).

    Args:
        moving, batch, momentum: as the `backend_ops` seam documents them.
    """
    return moving * momentum + batch * (1.0 - momentum)
