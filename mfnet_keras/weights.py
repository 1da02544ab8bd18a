"""Initialising a model from saved weights: same-named layers, optionally inflating 2D kernels to 3D."""

import os

import keras
import numpy as np


def inflate_kernel(kernel_2d, time_size):
    """A 2D kernel `(kh, kw, in, out)` replicated `time_size` times along time and divided by it (I3D inflation)."""
    return np.repeat(kernel_2d[None], time_size, axis=0) / time_size


def transfer(source, target, inflate=False, skip_classifier=False):
    """Copies weights from `source` into the same-named weights of `target`; returns the paths filled.

    A weight whose shape differs is an error, except: with `inflate`, a 2D
    kernel going into a 3D kernel is inflated along time; the classifier is
    skipped when `skip_classifier` or when the class counts differ.
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
                value = inflate_kernel(value, weight.shape[0])
            else:
                problems.append(f"{weight.path}: shape {value.shape} in the source, {tuple(weight.shape)} here")
                continue
        weight.assign(value.astype(keras.backend.standardize_dtype(weight.dtype)))
        filled.append(weight.path)
    if problems:
        raise ValueError("Cannot initialise the model: " + "; ".join(problems[:10]))
    return filled


def initialize(model, path, inflate=False, skip_classifier=False):
    """Loads `.keras` (or `.weights.h5` of the same architecture) weights into `model`; returns the paths filled."""
    if path.endswith(".pth"):
        raise ValueError(
            "Importing PyTorch checkpoints is not available yet; convert to .keras first. Received: path=" + path
        )
    if path.endswith(".weights.h5"):
        model.load_weights(path)
        return [w.path for w in model.weights]
    if not os.path.exists(path):
        raise ValueError(f"No such weights file. Received: path={path}")
    source = keras.saving.load_model(path, compile=False)
    return transfer(source, model, inflate=inflate, skip_classifier=skip_classifier)
