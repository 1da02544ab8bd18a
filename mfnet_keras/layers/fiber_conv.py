"""Grouped ("multi-fiber") convolution with a portable kernel and a fast CPU path."""

import math

import keras
from keras import ops

from mfnet_keras.layers import tf_ops, torch_ops

IMPLEMENTATIONS = ("auto", "split", "grouped", "dense", "frames", "taps", "graph")
# On JAX's CPU backend XLA runs a grouped convolution of few channels per fiber several times slower than
# the dense one it is a block of (MFNet-3D conv2, 96 channels: 316 vs 105 ms; 192: 77 vs 67 ms; 384: 12 vs
# 32 ms): "auto" convolves with the block-diagonal dense kernel up to this width, in inference. Its
# gradients are slower still, so in training "auto" convolves fiber by fiber there (MFNet-3D training
# step at 16x224x224: grouped 14.1 s, per fiber 9.3 s; inference: grouped 1.92 s, dense 1.26 s).
JAX_CPU_DENSE_MAX_CHANNELS = 192
JAX_CPU_FRAMES_DENSE_MAX_CHANNELS = 96


def _as_tuple(value, rank, name):
    """Expands an int to a `rank`-tuple; checks the length of a sequence."""
    if isinstance(value, int):
        return (value,) * rank
    value = tuple(value)
    if len(value) != rank:
        raise ValueError(
            f"`{name}` must be an int or a sequence of {rank} ints for a {rank}D convolution. Received: {name}={value}"
        )
    return value


def check_ints(value, name, minimum):
    """Raises the Keras-style ValueError unless `value` is an int or a sequence of ints, each >= `minimum`."""
    items = (value,) if isinstance(value, int) else value
    if not isinstance(items, (tuple, list)) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in items
    ):
        raise ValueError(f"`{name}` must be an int or a sequence of ints >= {minimum}. Received: {name}={value}")


def block_diagonal(kernel, num_fibers):
    """The dense kernel `(*window, in, out)` that a grouped kernel `(*window, in // num_fibers, out)` is a block of:
    fiber g's block maps input channels `g·in/N…` to output channels `g·out/N…`, zeros elsewhere."""
    *window, per_fiber, filters = kernel.shape
    blocks = ops.reshape(kernel, (-1, per_fiber, num_fibers, filters // num_fibers))
    eye = ops.eye(num_fibers, dtype=kernel.dtype)
    dense = ops.einsum("kcgo,hg->khcgo", blocks, eye)
    return ops.reshape(dense, (*window, num_fibers * per_fiber, filters))


def _on_jax_cpu():
    if keras.backend.backend() != "jax":
        return False
    import jax

    return jax.default_backend() == "cpu"


def conv_over_frames(x, kernel, strides, padding):
    """A 3D convolution as one 2D convolution of all frames per temporal tap, summed: on JAX's CPU backend
    XLA runs 2D convolutions several times faster than 3D ones. `padding` "valid", or "same" for a
    kernel one frame deep or an odd one at temporal stride 1 (whose frames are then zero-padded
    symmetrically, as "same" does); the kernel's input channels may be a fraction of `x`'s (a grouped
    convolution)."""
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


def join_fibers(tensors):
    """Concatenates per-fiber tensors along channels (a one-item list is returned as its item)."""
    return tensors[0] if len(tensors) == 1 else ops.concatenate(tensors, axis=-1)


@keras.saving.register_keras_serializable(package="mfnet_keras")
class FiberConv(keras.layers.Layer):
    """Convolution split into `num_fibers` independent groups (fibers).

    The kernel is ONE variable in Keras's grouped layout
    `(*kernel_size, in_channels // num_fibers, filters)`, exactly what
    `keras.layers.Conv2D/Conv3D(groups=num_fibers)` stores, so weights move
    freely between the two. Only the computation differs. On the TensorFlow
    backend `keras.ops.conv` compiles a grouped convolution through XLA, many
    times slower on CPU, so `implementation="auto"` does without it there:
    each fiber is convolved on its own and the results concatenated
    ("split"), except that a kernel one frame deep (`(1, k, k)`, and every 2D
    kernel) applied to a whole tensor runs as TensorFlow's own grouped 2D
    convolution over all frames ("frames": one oneDNN or cuDNN primitive),
    where it and its gradients run on this device (with oneDNN on, as
    `import mfnet_keras` sets it, or on a GPU). Input that arrives already
    split into fibers (see `fibers`) stays on the split path, which saves the
    concatenation. On PyTorch it is PyTorch's own grouped convolution on the
    channels-last memory it already has (`torch_ops.conv`); on JAX one
    grouped `ops.conv`, except on the CPU, where in inference a clip
    convolution runs as one 2D convolution of all frames per temporal tap
    (`conv_over_frames`; XLA's CPU 2D convolutions are faster than its 3D
    ones), with the block-diagonal dense kernel up to
    `JAX_CPU_FRAMES_DENSE_MAX_CHANNELS` input channels, and in training every
    layer convolves fiber by fiber ("split"), faster there.

    The rank (2D images or 3D clips, channels last) follows the input.

    Args:
        filters: output channels, divisible by `num_fibers`.
        kernel_size: int or tuple, one entry per spatial dimension.
        num_fibers: number of groups; 1 is a dense convolution.
        strides: int or tuple.
        padding: `"same"`, `"valid"`, or an int / tuple of ints giving the
            symmetric zero padding of each spatial dimension, as PyTorch's
            `Conv*d(padding=...)` does (needed for checkpoint parity at
            stride 2, where `"same"` pads only at the end).
        implementation: `"auto"`, `"split"` (per-fiber convolutions),
            `"grouped"` (one grouped `ops.conv`), `"dense"` (one dense `ops.conv`
            with the block-diagonal kernel the grouped one is a block of: on
            JAX's CPU backend, where XLA's grouped convolution of few channels
            per fiber is slow, `"auto"` picks it up to
            `JAX_CPU_DENSE_MAX_CHANNELS` input channels in inference, and
            "split" in training) or `"frames"` (TensorFlow's
            grouped 2D convolution over all frames; TensorFlow backend, kernels
            one frame deep). Two more are graph forms for export (TensorFlow
            backend, see `mfnet_keras.export.GRAPH_FORMS`): `"taps"` makes
            every convolution a grouped 2D one over the frames, a kernel's
            temporal taps stacked into channels (`tf_ops.taps_conv`), and
            `"graph"` writes one grouped convolution op that TensorFlow's CPU
            kernels cannot run but converters read. All give the same numbers.
        kernel_initializer, kernel_regularizer: as for `keras.layers.Conv3D`.

    Examples:
    >>> import numpy as np
    >>> conv = FiberConv(32, 3, num_fibers=16, padding=1)
    >>> conv(np.zeros((1, 4, 7, 7, 32), "float32")).shape
    TensorShape([1, 4, 7, 7, 32])
    >>> tuple(conv.kernel.shape)  # (*window, in_channels / fibers, out_channels), as Conv3D(groups=16)
    (3, 3, 3, 2, 32)
    """

    def __init__(
        self,
        filters,
        kernel_size,
        num_fibers=1,
        strides=1,
        padding="same",
        implementation="auto",
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_ints(filters, "filters", 1)
        check_ints(num_fibers, "num_fibers", 1)
        check_ints(kernel_size, "kernel_size", 1)
        check_ints(strides, "strides", 1)
        if filters % num_fibers:
            raise ValueError(f"`filters` must be divisible by `num_fibers`={num_fibers}. Received: filters={filters}")
        if padding not in ("same", "valid"):
            check_ints(padding, "padding", 0)
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(
                f"`implementation` must be one of {IMPLEMENTATIONS}. Received: implementation={implementation!r}"
            )
        self.filters = filters
        self.kernel_size = tuple(kernel_size) if isinstance(kernel_size, (list, tuple)) else kernel_size
        self.num_fibers = num_fibers
        self.strides = tuple(strides) if isinstance(strides, (list, tuple)) else strides
        self.padding = tuple(padding) if isinstance(padding, (list, tuple)) else padding
        self.implementation = implementation
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def _resolve(self, input_shape):
        """Normalised (rank, kernel, strides, per-dim (lo, hi) padding) for an input shape."""
        if len(input_shape) not in (4, 5):
            raise ValueError(
                f"{type(self).__name__} expects a 4D (batch, H, W, C) or 5D "
                f"(batch, T, H, W, C) input. Received: input_shape={tuple(input_shape)}"
            )
        rank = len(input_shape) - 2
        kernel = _as_tuple(self.kernel_size, rank, "kernel_size")
        strides = _as_tuple(self.strides, rank, "strides")
        if self.padding == "valid":
            pads = ((0, 0),) * rank
        elif self.padding == "same":
            pads = None  # depends on the input size; only used when stride is 1
        else:
            pads = tuple((p, p) for p in _as_tuple(self.padding, rank, "padding"))
        return rank, kernel, strides, pads

    def build(self, input_shape):
        rank, kernel, strides, pads = self._resolve(input_shape)
        channels = input_shape[-1]
        if channels is None or channels % self.num_fibers:
            raise ValueError(
                f"Input channels must be divisible by `num_fibers`={self.num_fibers}. "
                f"Received: input_channels={channels}"
            )
        self._rank, self._kernel, self._strides = rank, kernel, strides
        # Explicit symmetric padding that "same" reproduces exactly (stride 1,
        # odd kernel) is left to the convolution, saving a padded copy.
        same_pads = tuple(((k - 1) // 2, (k - 1) // 2) for k in kernel)
        if self.padding == "same" or (pads == same_pads and all(s == 1 for s in strides)):
            self._conv_padding, self._pads = "same", None
        elif all(p == (0, 0) for p in pads):
            self._conv_padding, self._pads = "valid", None
        else:
            self._conv_padding, self._pads = "valid", pads
        self._channels = channels
        self._torch_padding = self._symmetric_padding(kernel, strides, pads)
        self._frames, self._split = self._pick_path(rank, kernel)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(*kernel, channels // self.num_fibers, self.filters),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )

    def _symmetric_padding(self, kernel, strides, pads):
        """`"valid"` or per-dimension symmetric paddings that give this layer's output, or None when "same"
        pads unevenly (even kernel, or stride > 1). What PyTorch's convolution takes (`torch_ops.conv`)."""
        if self.padding == "same":
            if any(k % 2 == 0 for k in kernel) or any(s > 1 for s in strides):
                return None
            return tuple((k - 1) // 2 for k in kernel)
        if any(lo != hi for lo, hi in pads):
            return None
        return "valid" if all(lo == 0 for lo, _ in pads) else tuple(lo for lo, _ in pads)

    def _pick_path(self, rank, kernel):
        """(frames, split): whether `fibers` may take each path; see the class docstring and `fibers`."""
        on_tf = keras.backend.backend() == "tensorflow"
        one_frame = rank == 2 or kernel[0] == 1
        if self.implementation in ("taps", "graph") and not on_tf:
            raise ValueError(
                f"`implementation={self.implementation!r}` needs the TensorFlow backend. "
                f"Received: backend={keras.backend.backend()}"
            )
        if self.implementation == "frames" and not (on_tf and one_frame):
            raise ValueError(
                '`implementation="frames"` needs the TensorFlow backend and a kernel one frame deep. '
                f"Received: backend={keras.backend.backend()}, kernel_size={kernel}"
            )
        auto_on_jax_cpu = self.implementation == "auto" and _on_jax_cpu()
        # Over frames, "same" pads time itself: symmetrically, so only for one-frame or odd kernels at stride 1.
        symmetric_time = kernel[0] == 1 or (kernel[0] % 2 == 1 and self._strides[0] == 1)
        self._over_frames = auto_on_jax_cpu and rank == 3 and (self._conv_padding == "valid" or symmetric_time)
        self._frames_dense = self.num_fibers > 1 and self._channels <= JAX_CPU_FRAMES_DENSE_MAX_CHANNELS
        auto_on_jax_cpu = auto_on_jax_cpu and self.num_fibers > 1
        self._split_in_training = auto_on_jax_cpu
        self._dense = self.num_fibers > 1 and (
            self.implementation == "dense" or (auto_on_jax_cpu and self._channels <= JAX_CPU_DENSE_MAX_CHANNELS)
        )
        if self.num_fibers == 1 and self.implementation != "taps":
            return False, False
        if self.implementation == "auto":
            if not on_tf:
                return False, False
            return one_frame and tf_ops.grouped_conv2d_supported(self.compute_dtype), True
        return self.implementation in ("frames", "taps"), self.implementation == "split"

    def use_implementation(self, implementation):
        """Switches a built layer to another `implementation` (e.g. the graph form an export wants)."""
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(
                f"`implementation` must be one of {IMPLEMENTATIONS}. Received: implementation={implementation!r}"
            )
        self.implementation = implementation
        self._frames, self._split = self._pick_path(self._rank, self._kernel)

    @property
    def takes_fibers(self):
        """Whether `fibers` accepts a list of fibers as input without concatenating it first."""
        return self._split

    def call(self, inputs, training=None):
        return join_fibers(self.fibers(inputs, training=training))

    def fibers(self, inputs, kernel=None, training=None):
        """The output as a list: one tensor per fiber on the split path, else one tensor.

        `inputs` may itself be such a list (the fibers of the previous layer),
        which saves the concatenation and split between two fibered layers
        whenever this layer can convolve fibers one by one (`takes_fibers`);
        `kernel` replaces the layer's kernel (e.g. one with a folded
        BatchNorm scale).
        """
        kernel = self.kernel if kernel is None else kernel
        xs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        split = self._split and (len(xs) == self.num_fibers or not self._frames)
        split = split or bool(training and self._split_in_training)
        if not split or len(xs) != self.num_fibers:
            xs = [join_fibers(xs)]
        if not split and keras.backend.backend() == "torch" and self._torch_padding is not None:
            kernel = ops.convert_to_tensor(kernel)
            return [torch_ops.conv(xs[0], kernel, self._strides, self._torch_padding, self.num_fibers)]
        if self._pads is not None:
            pad = tf_ops.zero_pad if keras.backend.backend() == "tensorflow" else ops.pad
            xs = [pad(x, ((0, 0), *self._pads, (0, 0))) for x in xs]
        if self._frames and not split:
            conv = tf_ops.taps_conv if self._rank == 3 and self._kernel[0] > 1 else tf_ops.frames_conv
            return [conv(xs[0], kernel, self._strides, self._conv_padding)]
        if self.implementation == "graph":
            return [tf_ops.grouped_conv(xs[0], kernel, self._strides, self._conv_padding)]
        if not split and self._over_frames and not training:
            kernel = block_diagonal(kernel, self.num_fibers) if self._frames_dense else kernel
            return [conv_over_frames(xs[0], kernel, self._strides, self._conv_padding)]
        if not split:
            kernel = block_diagonal(kernel, self.num_fibers) if self._dense else kernel
            if self.num_fibers > 1 and not self._dense:  # one grouped op ("grouped"): Keras's own
                return [ops.conv(xs[0], kernel, strides=self._strides, padding=self._conv_padding)]
            return [self._conv(xs[0], kernel, strides=self._strides, padding=self._conv_padding)]
        if len(xs) == 1:
            xs = ops.split(xs[0], self.num_fibers, axis=-1)
        ks = ops.split(kernel, self.num_fibers, axis=-1)
        conv = self._conv
        return [conv(xi, ki, strides=self._strides, padding=self._conv_padding) for xi, ki in zip(xs, ks)]

    def _conv(self, x, kernel, strides, padding):
        """`ops.conv`, except for 3D convolutions on TensorFlow (`tf_ops.conv3d`: bfloat16 kernel gradients)."""
        if self._rank == 3 and keras.backend.backend() == "tensorflow":
            return tf_ops.conv3d(x, kernel, strides, padding)
        return ops.conv(x, kernel, strides=strides, padding=padding)

    def compute_output_shape(self, input_shape):
        rank, kernel, strides, pads = self._resolve(input_shape)
        spatial = []
        for i, n in enumerate(input_shape[1:-1]):
            if n is None:
                spatial.append(None)
            elif pads is None:
                spatial.append(math.ceil(n / strides[i]))
            else:
                spatial.append((n + sum(pads[i]) - kernel[i]) // strides[i] + 1)
        return (input_shape[0], *spatial, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            num_fibers=self.num_fibers,
            strides=self.strides,
            padding=self.padding,
            implementation=self.implementation,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
        )
        return config
