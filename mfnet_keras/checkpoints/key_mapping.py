"""The contract with the released PyTorch checkpoints: key mapping, reading a state dict, loading it.

Keras weight paths and the released checkpoint keys are one naming contract,
`checkpoint_key` one way and `keras_path` the other:
`conv2_B01/conv_m1/conv/kernel` is `conv2.B01.conv_m1.conv.weight`. Layer
names carry `_` where the checkpoint has `.` between a block and its part
(`conv1_bn`, `conv2_B01`, `tail_bn`), since the PyTorch backend of Keras
accepts no dots in names; a layer's own name (`conv_m1`) keeps its `_`.
Kernels differ only in layout: PyTorch `(out, in/groups, *window)` against
Keras `(*window, in/groups, out)`.
"""

import os

import keras
import numpy as np

from mfnet_keras.checkpoints import pth_reader

_TORCH_LEAF = {
    "kernel": "weight",
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
    "bias": "bias",
}


_KERAS_LEAF = {"weight": "kernel", "bias": "bias", "running_mean": "moving_mean", "running_var": "moving_variance"}
_BATCH_NORM_LEAF = {"weight": "gamma", "bias": "beta"}


def checkpoint_key(path):
    """Keras weight path → released PyTorch checkpoint key.

    Args:
        path: a Keras weight path.

    Examples:
    >>> checkpoint_key("conv2_B01/conv_m1/conv/kernel")
    'conv2.B01.conv_m1.conv.weight'
    >>> checkpoint_key("tail_bn/moving_variance")
    'tail.bn.running_var'
    """
    scope, _, leaf = path.rpartition("/")
    block, *parts = scope.split("/")
    return ".".join([block.replace("_", ".", 1), *parts, _TORCH_LEAF[leaf]])


def keras_path(key):
    """Released PyTorch checkpoint key → Keras weight path (the inverse of `checkpoint_key`).

    Args:
        key: a checkpoint key.

    Examples:
    >>> keras_path("conv2.B01.conv_m1.bn.weight")
    'conv2_B01/conv_m1/bn/gamma'
    >>> keras_path("classifier.bias")
    'classifier/bias'
    """
    *scope, leaf = key.split(".")
    block = "_".join(scope[:2]) if len(scope) > 1 else scope[0]
    leaf = (_BATCH_NORM_LEAF.get(leaf) if scope[-1] == "bn" else None) or _KERAS_LEAF[leaf]
    return "/".join([block, *scope[2:], leaf])


def to_keras_layout(value, path):
    """A PyTorch tensor in the layout of the Keras weight at `path` (kernels transposed, the rest unchanged).

    Args:
        value: a PyTorch tensor as a NumPy array.
        path: the Keras weight path it goes to.
    """
    if not path.endswith("/kernel"):
        return value
    if value.ndim == 2:  # linear: (out, in) → (in, out)
        return value.T
    return np.moveaxis(value, (0, 1), (-1, -2))  # (out, in/g, *window) → (*window, in/g, out)


def read_torch_state_dict(path):
    """The tensors of a `.pth` file as `{key: ndarray}`, unwrapped and normalised.

    Accepts a bare state dict or one wrapped as `{"state_dict": ...}`, keys with
    or without DataParallel's `module.` prefix; drops `num_batches_tracked`.
    Nothing in the file is executed (see `mfnet_keras.checkpoints.pth_reader`).

    Args:
        path: a `.pth` file.
    """
    if not os.path.exists(path):
        raise ValueError(f"No such checkpoint file. Received: path={path}")
    data = pth_reader.load(path)
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, np.ndarray) for v in data.values()):
        raise ValueError(f"{path}: not a state dict of tensors")
    state = {}
    for key, value in data.items():
        key = key[len("module.") :] if key.startswith("module.") else key
        if not key.endswith("num_batches_tracked"):
            state[key] = value
    return state


def load_state_dict(model, state, skip_classifier=False):
    """Fills every weight of `model` exactly once from a PyTorch state dict `{key: ndarray}`.

    Missing, unexpected or misshapen tensors raise one ValueError listing them;
    with `skip_classifier` the classifier is left as it is (fine-tuning on other
    classes) and the checkpoint's classifier is ignored.

    Args:
        model: the Keras model.
        state: `{checkpoint key: ndarray}`.
        skip_classifier: leave the classifier as it is.
    """
    unused = set(state)
    if not any(w.path.startswith("classifier/") for w in model.weights):  # a backbone: the head is not ours
        skip_classifier = True
    missing, misshapen, assignments = [], [], []
    for weight in model.weights:
        key = checkpoint_key(weight.path)
        if key.startswith("classifier."):
            unused.discard(key)
            if skip_classifier:
                continue
        if key not in state:
            missing.append(key)
            continue
        unused.discard(key)
        value = state[key] if state[key].ndim != len(weight.shape) else to_keras_layout(state[key], weight.path)
        if value.shape != tuple(weight.shape):
            misshapen.append(f"{key} {list(state[key].shape)} (model needs {list(weight.shape)})")
            continue
        assignments.append((weight, value))
    if skip_classifier:
        unused = {k for k in unused if not k.startswith("classifier.")}
    problems = [
        f"{label} ({len(keys)}): {', '.join(sorted(keys)[:12])}{' …' if len(keys) > 12 else ''}"
        for label, keys in (("missing", missing), ("unexpected", unused), ("wrong shape", misshapen))
        if keys
    ]
    if problems:
        raise ValueError(f"Checkpoint does not fit {model.name}: " + "; ".join(problems))
    for weight, value in assignments:
        weight.assign(value.astype(keras.backend.standardize_dtype(weight.dtype)))
    return [weight.path for weight, _ in assignments]


def load_torch_checkpoint(model, path, skip_classifier=False):
    """Loads a released PyTorch MF-Net checkpoint (`.pth`) into `model`; returns the weight paths filled.

    PyTorch need not be installed. See `read_torch_state_dict` for the accepted
    file variants and `load_state_dict` for the checks.

    Args:
        model: the Keras model.
        path: a `.pth` file.
        skip_classifier: leave the classifier as it is.
    """
    return load_state_dict(model, read_torch_state_dict(path), skip_classifier=skip_classifier)


def classifier_matches(model, state):
    """Whether the checkpoint's classifier has the shape of the model's.

    Args:
        model: the Keras model.
        state: `{checkpoint key: ndarray}`.
    """
    kernel = next((w for w in model.weights if w.path == "classifier/kernel"), None)
    found = state.get("classifier.weight")
    return kernel is not None and found is not None and found.shape[::-1] == tuple(kernel.shape)
