"""Weight initialisation for training: 2D→3D inflation, copying from another model, zero-init residuals."""

import os

import keras
import numpy as np

from mfnet_keras.checkpoints.key_mapping import classifier_matches, load_state_dict, read_torch_state_dict
from mfnet_keras.layers import MultiFiberUnit, Multiplexer, walk_layers
from mfnet_keras.models import VideoClassifier

INFLATION_METHODS = ("inflation", "random")


def inflate_kernel(kernel_2d, time_size, method="inflation", seed=None):
    """A 2D kernel `(kh, kw, in, out)` made 3D `(time_size, kh, kw, in, out)`.

    "inflation" (I3D, the paper's §3.3): the kernel repeated along time and
    divided by `time_size`, so a clip of identical frames gives the 2D response.
    "random" (the official code's alternative): kernel/T in the first slice,
    then groups of (noise, kernel/T, -noise), (noise, -noise) or kernel/T that
    fill the rest, with noise uniform in ±mean|kernel/T|; the slices are then
    shuffled along time independently at every kernel position.

    Args:
        kernel_2d: a 2D kernel `(kh, kw, in, out)`.
        time_size: the temporal size of the 3D kernel.
        method: `"inflation"` or `"random"`.
        seed: the seed of `"random"`.

    Examples:
    >>> import numpy as np
    >>> inflated = inflate_kernel(np.ones((3, 3, 2, 4), "float32"), 3)
    >>> inflated.shape, float(inflated.sum(axis=0).max())
    ((3, 3, 3, 2, 4), 1.0)
    """
    if method not in INFLATION_METHODS:
        raise ValueError(f"method must be one of {INFLATION_METHODS}. Received: method={method!r}")
    scaled = kernel_2d / time_size
    if method == "inflation" or time_size == 1:
        return np.repeat(scaled[None], time_size, axis=0)
    rng = np.random.default_rng(seed)
    scale = np.abs(scaled).mean()
    slices, remaining = [scaled], time_size - 1
    while remaining:
        if remaining >= 2:
            noise = rng.uniform(-scale, scale, scaled.shape).astype(scaled.dtype)
            group = [noise, scaled, -noise] if remaining >= 3 else [noise, -noise]
            slices += group
            remaining -= len(group)
        else:
            slices.append(scaled)
            remaining -= 1
    stacked = np.stack(slices)
    order = rng.permuted(np.broadcast_to(np.arange(time_size)[:, None], (time_size, scaled.size)), axis=0)
    flat = stacked.reshape(time_size, -1)
    return np.take_along_axis(flat, order, axis=0).reshape(stacked.shape)


def transfer(source, target, inflate=False, skip_classifier=False, method="inflation", seed=None):
    """Copies weights from `source` into the same-named weights of `target`; returns the paths filled.

    A weight whose shape differs is an error, except: with `inflate`, a 2D
    kernel going into a 3D kernel is inflated along time (`inflate_kernel`); the
    classifier is skipped when `skip_classifier` or when the class counts differ.

    Args:
        source: the model to copy from.
        target: the model to copy into.
        inflate: inflate 2D kernels into 3D ones.
        skip_classifier: leave the target's classifier as it is.
        method: how kernels are inflated (`inflate_kernel`).
        seed: the seed of `"random"` inflation.
    """
    source_weights = {w.path: w for w in source.weights}
    filled, problems = [], []
    for weight in target.weights:
        if skip_classifier and weight.path.startswith("classifier/"):
            continue
        match = source_weights.get(weight.path)
        if match is None:
            problems.append(f"{weight.path}: not in the source")
            continue
        value = keras.ops.convert_to_numpy(match)
        if value.shape != tuple(weight.shape):
            if weight.path.startswith("classifier/"):
                continue
            if inflate and value.ndim + 1 == len(weight.shape) and value.shape == tuple(weight.shape[1:]):
                value = inflate_kernel(value, weight.shape[0], method, seed)
            else:
                problems.append(f"{weight.path}: shape {value.shape} in the source, {tuple(weight.shape)} here")
                continue
        weight.assign(value.astype(keras.backend.standardize_dtype(weight.dtype)))
        filled.append(weight.path)
    if problems:
        raise ValueError("Cannot initialise the model: " + "; ".join(problems[:10]))
    return filled


def inflate_2d_to_3d(model_2d, model_3d, method="inflation", seed=None):
    """Initialises a 3D model from its 2D counterpart (paper §3.3); returns the weight paths filled.

    Every 2D kernel becomes a 3D kernel by `inflate_kernel(..., method)`;
    BatchNorm and the classifier are copied as they are, and the classifier is
    skipped when the class counts differ.

    Args:
        model_2d: the trained 2D model (e.g. `VideoClassifier.from_preset("mfnet2d")`).
        model_3d: the 3D model whose weights are set.
        method: one of `INFLATION_METHODS` (see `inflate_kernel`).
        seed: the noise of `method="random"`.

    Examples:
    >>> from mfnet_keras.models import VideoClassifier
    >>> model_2d = VideoClassifier.from_preset("mfnet2d", num_classes=5, crop_size=64)
    >>> model_3d = VideoClassifier.from_preset("mfnet3d", num_classes=5, clip_length=4, crop_size=64)
    >>> len(inflate_2d_to_3d(model_2d, model_3d)) == len(model_3d.weights)
    True
    """
    if method not in INFLATION_METHODS:
        raise ValueError(f"method must be one of {INFLATION_METHODS}. Received: method={method!r}")
    return transfer(model_2d, model_3d, inflate=True, method=method, seed=seed)


def initialize(model, path, inflate=False, skip_classifier=False):
    """Loads weights into `model`; returns the paths filled.

    `path` is a `.pth`, `.keras` or `.weights.h5` file, or any preset handle
    (a preset folder, a registered release, a URL). A classifier of another
    class count is skipped (fine-tuning on other classes). With `inflate`, it holds
    the 2D counterpart of this 3D model (for a `.pth`, the 2D checkpoint is
    loaded into the 2D twin of this model first).

    Args:
        model: the model to fill.
        path: a `.pth`, `.keras` or `.weights.h5` file, or any preset handle.
        inflate: `path` holds the 2D counterpart of `model`; its kernels are inflated.
        skip_classifier: leave `model`'s classifier as it is.
    """
    is_file = os.path.isfile(path) and path.endswith((".pth", ".keras", ".weights.h5"))
    if not is_file:
        source = VideoClassifier.from_preset(path)  # a PresetError says what is wrong with the handle
        return transfer(source, model, inflate=inflate, skip_classifier=skip_classifier)
    if path.endswith(".pth"):
        state = read_torch_state_dict(path)
        if not inflate:  # a classifier of another class count stays as it is (fine-tuning)
            return load_state_dict(
                model, state, skip_classifier=skip_classifier or not classifier_matches(model, state)
            )
        source = _model_2d_like(model, state)
        return transfer(source, model, inflate=True, skip_classifier=skip_classifier)
    if path.endswith(".weights.h5"):
        model.load_weights(path)
        return [w.path for w in model.weights]
    source = keras.saving.load_model(path, compile=False)
    return transfer(source, model, inflate=inflate, skip_classifier=skip_classifier)


def _model_2d_like(model_3d, state):
    """The 2D twin of a 3D classifier (or backbone) with a 2D checkpoint loaded into it."""
    backbone = getattr(model_3d, "backbone", model_3d)
    config = backbone.get_config()
    config.update(input_shape=tuple(config["input_shape"][1:]), name=f"{backbone.name}_2d")
    source = type(backbone).from_config(config)
    kernel = state.get("classifier.weight")
    if kernel is not None:
        source = VideoClassifier(source, int(kernel.shape[0]))
    load_state_dict(source, state)
    return source


def zero_init_residual(model):
    """Zeroes the last kernel of every residual branch that adds to an unchanged input; returns the paths.

    Those are `conv_m2` of the units that are not a stage's first and
    `conv_i2` of every multiplexer. Each such unit then starts as the
    identity, so a deep network from scratch begins as a shallow one and
    learns faster (Goyal et al. 2017, "zero-γ"; in a pre-activation unit the
    last conv plays the role of the last BatchNorm's γ).

    Args:
        model: a model or backbone made of `MultiFiberUnit`s.

    Examples:
    >>> from mfnet_keras.models import MFNetBackbone
    >>> zeroed = zero_init_residual(MFNetBackbone(input_shape=(4, 32, 32, 3)))
    >>> len(zeroed), zeroed[0]
    (28, 'conv2_B01/conv_i2/conv/kernel')
    """
    zeroed = []
    for layer in walk_layers(model):
        branches = []
        if isinstance(layer, MultiFiberUnit):
            branches = [getattr(layer, "conv_i2", None), None if layer.first_unit else layer.conv_m2]
        elif isinstance(layer, Multiplexer):
            branches = [layer.conv_i2]
        for branch in filter(None, branches):
            kernel = branch.conv.kernel
            kernel.assign(keras.ops.zeros(kernel.shape, kernel.dtype))
            zeroed.append(kernel.path)
    return zeroed
