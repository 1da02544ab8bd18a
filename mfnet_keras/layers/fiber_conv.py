"""Grouped ("multi-fiber") convolution with a portable kernel and a fast CPU path."""

import dataclasses
import math

import keras
from keras import ops

from mfnet_keras.layers import backend_ops
from mfnet_keras.layers.backend_ops.portable import ConvPlan

IMPLEMENTATIONS = ("auto", "split", "grouped", "dense", "frames", "taps", "graph")


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
    """Raises the Keras-style ValueError unless `value` is an int or a sequence of ints, each >= `minimum`.

    Args:
        value: the argument's value.
        name: the argument's name, in the message.
        minimum: the smallest value allowed.
    """
    items = (value,) if isinstance(value, int) else value
    if not isinstance(items, (tuple, list)) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in items
    ):
        raise ValueError(f"`{name}` must be an int or a sequence of ints >= {minimum}. Received: {name}={value}")


def join_fibers(tensors):
    """Concatenates per-fiber tensors along channels (a one-item list is returned as its item).

    Args:
        tensors: per-fiber tensors, channels last.
    """
    return tensors[0] if len(tensors) == 1 else ops.concatenate(tensors, axis=-1)


@keras.saving.register_keras_serializable(package="mfnet_keras")
class FiberConv(keras.layers.Layer):
    """Convolution split into `num_fibers` independent groups (fibers).

    The kernel is ONE variable in Keras's grouped layout
    `(*kernel_size, in_channels // num_fibers, filters)`, exactly what
    `keras.layers.Conv2D/Conv3D(groups=num_fibers)` stores, so weights move
    freely between the two. Only the computation differs, by backend
    (`mfnet_keras.layers.backend_ops`, chosen when the layer is built): on
    TensorFlow, where `keras.ops.conv` compiles a grouped convolution through
    XLA (many times slower on CPU), fiber by fiber, or a kernel one frame deep
    as TensorFlow's grouped 2D convolution over all frames; on PyTorch its own
    grouped convolution on the channels-last memory; on JAX one grouped
    `ops.conv`, with faster forms for XLA's CPU backend. Input that arrives
    already split into fibers (see `fibers`) stays split where the layer can
    convolve fiber by fiber, which saves the concatenation.

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
            with the block-diagonal kernel the grouped one is a block of, which
            `"auto"` picks for narrow layers on JAX's CPU backend) or
            `"frames"` (TensorFlow's
            grouped 2D convolution over all frames; TensorFlow backend, kernels
            one frame deep). Two more are graph forms for export (TensorFlow
            backend, see `mfnet_keras.export.GRAPH_FORMS`): `"taps"` makes
            every convolution a grouped 2D one over the frames, a kernel's
            temporal taps stacked into channels (`tensorflow_ops.taps_conv`), and
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
        # Explicit symmetric padding that "same" reproduces exactly (stride 1,
        # odd kernel) is left to the convolution, saving a padded copy.
        same_pads = tuple(((k - 1) // 2, (k - 1) // 2) for k in kernel)
        if self.padding == "same" or (pads == same_pads and all(s == 1 for s in strides)):
            op_padding, op_pads = "same", None
        else:
            op_padding, op_pads = "valid", None if all(p == (0, 0) for p in pads) else pads
        geometry = ConvPlan(
            implementation=self.implementation,
            rank=rank,
            kernel_size=kernel,
            strides=strides,
            padding=op_padding,
            pads=op_pads,
            symmetric_padding=self._symmetric_padding(kernel, strides, pads),
            num_fibers=self.num_fibers,
            channels=channels,
            dtype=self.compute_dtype,
        )
        self._backend = backend_ops.current()
        self.plan = self._backend.plan_conv(geometry)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(*kernel, channels // self.num_fibers, self.filters),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )

    def _symmetric_padding(self, kernel, strides, pads):
        """`"valid"` or per-dimension symmetric paddings that give this layer's output, or None when "same"
        pads unevenly (even kernel, or stride > 1). What PyTorch's convolution takes."""
        if self.padding == "same":
            if any(k % 2 == 0 for k in kernel) or any(s > 1 for s in strides):
                return None
            return tuple((k - 1) // 2 for k in kernel)
        if any(lo != hi for lo, hi in pads):
            return None
        return "valid" if all(lo == 0 for lo, _ in pads) else tuple(lo for lo, _ in pads)

    def use_implementation(self, implementation):
        """Switches a built layer to another `implementation` (e.g. the graph form an export wants).

        Args:
            implementation: one of `IMPLEMENTATIONS` (e.g. `"grouped"`, a single grouped convolution op).
        """
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(
                f"`implementation` must be one of {IMPLEMENTATIONS}. Received: implementation={implementation!r}"
            )
        self.implementation = implementation
        self.plan = self._backend.plan_conv(dataclasses.replace(self.plan, implementation=implementation))

    @property
    def takes_fibers(self):
        """Whether `fibers` accepts a list of fibers as input without concatenating it first."""
        return self.plan.split

    def call(self, inputs, training=None):
        return join_fibers(self.fibers(inputs, training=training))

    def fibers(self, inputs, kernel=None, training=None):
        """The output as a list: one tensor per fiber on the split path, else one tensor.

        `inputs` may itself be such a list (the fibers of the previous layer),
        which saves the concatenation and split between two fibered layers
        whenever this layer can convolve fibers one by one (`takes_fibers`);
        `kernel` replaces the layer's kernel (e.g. one with a folded
        BatchNorm scale).

        Args:
            inputs: a tensor, or one tensor per fiber.
            kernel: a kernel to use instead of the layer's own.
            training: whether the call is in training mode (some backend paths run in inference only).
        """
        kernel = self.kernel if kernel is None else kernel
        xs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        plan = self.plan
        split = plan.split and (len(xs) == self.num_fibers or not plan.frames)
        split = split or bool(training and plan.split_in_training)
        if not split or len(xs) != self.num_fibers:
            xs = [join_fibers(xs)]
        return self._backend.convolve(xs, kernel, plan, split, training)

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
