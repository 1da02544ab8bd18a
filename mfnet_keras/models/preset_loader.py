"""Models built from preset parts (`PresetParts`: a registry entry's, a folder's or a `.pth` file's) and
their weights loaded: `load_task` and `load_backbone`, behind `from_preset`."""

import dataclasses
import os
import warnings

import h5py

from mfnet_keras.checkpoints import key_mapping
from mfnet_keras.models.preset_checks import (
    BACKBONE_WEIGHTS,
    HEAD_WEIGHTS,
    SHARDED_BACKBONE_WEIGHTS,
    PresetError,
    blaming,
    clip_size,
    folder_parts,
)
from mfnet_keras.models.preset_handles import download, resolve
from mfnet_keras.models.preset_registry import (
    backbone_arguments,
    backbone_classes,
    checkpoint_architecture,
    entry_parts,
    find_release,
    get_preset,
    task_class,
)
from mfnet_keras.models.preset_saver import save_task


def _check_overrides(cls, overrides):
    """Refuses a constructor override the backbone class does not take (the caller's mistake, not the preset's)."""
    accepted = backbone_arguments(cls)
    unknown = sorted(set(overrides) - accepted)
    if unknown:
        raise ValueError(
            f"Unknown option for {cls.__name__}; expected some of {sorted(accepted)}. "
            f"Received: {unknown[0]}={overrides[unknown[0]]!r}"
        )


def _build_backbone(cls, config, pre, overrides):
    """The backbone for clips of the preprocessor's size, with (checked) constructor overrides."""
    config = {k: v for k, v in config.items() if k != "trainable"}
    size = pre["crop_size"]
    two_d = len(config["input_shape"]) == 3
    config["input_shape"] = (size, size, 3) if two_d else (pre["clip_length"], size, size, 3)
    return cls(**{**config, **overrides})


_PREPROCESSOR_KEYS = ("clip_length", "crop_size", "short_side", "mean", "std", "frame_interval")


_HEAD_KEYS = ("pooling", "dropout", "activation", "head_dtype")


def _split_overrides(kwargs):
    pre = {k: kwargs.pop(k) for k in _PREPROCESSOR_KEYS if k in kwargs and kwargs[k] is not None}
    head = {k: kwargs.pop(k) for k in _HEAD_KEYS if k in kwargs}
    return pre, head, kwargs


def _preprocessor_config(saved, overrides):
    pre = {k: v for k, v in saved.items() if k in _PREPROCESSOR_KEYS}
    if "crop_size" in overrides and "short_side" not in overrides:
        pre.pop("short_side", None)
    return {**pre, **overrides}


def _assemble(task_cls, parts, num_classes, class_names, kwargs):
    """A `task_cls` classifier from `PresetParts`; returns `(classifier, head_kept)`: whether the saved head
    fits (same classes)."""
    backbone_cls = backbone_classes(task_cls.backbone_cls)[parts.backbone_class]
    pre_over, head_over, backbone_over = _split_overrides(dict(kwargs))
    _check_overrides(backbone_cls, backbone_over)
    pre = _preprocessor_config(parts.preprocessor_config, pre_over)
    head = dict(parts.head_config or {})
    saved_classes = head.get("num_classes")
    classes = saved_classes if num_classes is None else num_classes
    if classes is None:
        raise ValueError("This preset has no classifier: pass `num_classes`.")
    kept = saved_classes == classes
    names = class_names if class_names is not None else (head.get("class_names") if kept else None)
    head_args = {**{k: head[k] for k in _HEAD_KEYS if k in head}, **head_over}
    with blaming(parts.source):
        preprocessor = task_cls.preprocessor_cls(name="preprocessor", **pre)  # checks the clip size first
        backbone = _build_backbone(backbone_cls, parts.backbone_config, pre, backbone_over)
        classifier = task_cls(
            backbone,
            classes,
            preprocessor=preprocessor,
            class_names=names,
            name=head.get("name", "video_classifier"),
            **head_args,
        )
    return classifier, kept


def _first_line(error):
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:300]


def _load_backbone_weights(backbone, folder):
    """`model.weights.h5` (or the sharded `model.weights.json`) into `backbone`; a file that does not fit
    is one `PresetError` line naming it."""
    path = os.path.join(folder, BACKBONE_WEIGHTS)
    sharded = os.path.join(folder, SHARDED_BACKBONE_WEIGHTS)
    path = sharded if os.path.exists(sharded) and not os.path.exists(path) else path
    with blaming(path):
        if not os.path.exists(path):
            raise PresetError(f"{path}: missing")
        try:
            backbone.load_weights(path)
        except Exception as error:  # h5py and Keras raise several types for a file that does not fit
            raise PresetError(f"{path}: does not fit the architecture in config.json: {_first_line(error)}") from None


def _load_head_weights(model, folder):
    """The classifier head's weights from `task.weights.h5`, when the folder has them: the file Keras's
    `save_weights` writes (keras-hub's format), or the flat one of mfnet-keras 0.1."""
    path = os.path.join(folder, HEAD_WEIGHTS)
    if not os.path.exists(path):
        return
    with blaming(path), h5py.File(path, "r") as f:
        flat = "layers" not in f
        if flat:
            _load_flat_head_weights(model, f, path)
            return
    try:
        with warnings.catch_warnings():  # Keras warns about each part it skips before it raises
            warnings.simplefilter("ignore", UserWarning)
            model.load_task_weights(path)
    except Exception as error:  # Keras raises ValueError, KeyError and others for a file that does not fit
        text = " ".join(str(error).split())[:400] or type(error).__name__
        raise PresetError(f"{path}: does not fit the classifier in task.json: {text}") from None


def _load_flat_head_weights(model, f, path):
    """Head weights stored as `{weight path: array}` (mfnet-keras 0.1)."""
    for weight in _head_weights(model):
        if weight.path not in f:
            raise PresetError(f"{path}: has no {weight.path!r}")
        value = f[weight.path][()]
        if tuple(value.shape) != tuple(weight.shape):
            raise PresetError(f"{path}: {weight.path!r} has shape {value.shape}, the model needs {weight.shape}")
        weight.assign(value)


def _head_weights(model):
    inside = {id(w) for w in model.backbone.weights}
    return [w for w in model.weights if id(w) not in inside]


def classifier_from_checkpoint(task_cls, path, release=None, num_classes=None, class_names=None, **kwargs):
    """A `task_cls` classifier holding a PyTorch checkpoint (`.pth`), PyTorch not needed.

    The architecture, preprocessing and class names are those of the registered
    `release`, else of the release recognised by the file name, else of the
    architecture registered for checkpoints (`register_presets`). The classifier takes the checkpoint's class count unless
    `num_classes` differs; then (or with `skip_classifier=True`) it stays random.
    `kwargs` as for `from_preset`.

    Args:
        task_cls: the classifier class to build.
        path: the `.pth` file.
        release: a registered release to take the architecture and preprocessing from.
        num_classes: the classifier's size (default: the checkpoint's).
        class_names: the class names (default: the release's).
        **kwargs: backbone options (e.g. `clip_length`).
    """
    skip_classifier = kwargs.pop("skip_classifier", False)
    name = release or find_release(path) or checkpoint_architecture()
    state = key_mapping.read_torch_state_dict(path)
    parts = entry_parts(get_preset(name))
    kernel = state.get("classifier.weight")
    if kernel is not None and kernel.shape[0] != parts.head_config["num_classes"]:
        head = {"name": parts.head_config["name"], "num_classes": int(kernel.shape[0])}
        parts = dataclasses.replace(parts, head_config=head)
    model, _ = _assemble(task_cls, parts, num_classes, class_names, kwargs)
    skip = skip_classifier or not key_mapping.classifier_matches(model, state)
    key_mapping.load_state_dict(model, state, skip_classifier=skip)
    return model


def _registered_parts(task_cls, name, load_weights, sha256):
    """Parts of a registered preset, and the folder its weights come from (or None)."""
    entry = get_preset(name)
    parts = entry_parts(entry)
    checkpoint = entry.get("checkpoint")
    if not (load_weights and checkpoint):
        return parts, None
    if not checkpoint.get("url"):
        raise PresetError(
            f"preset {name!r} has no download link (the release's links are dead): get "
            f"{checkpoint['file_name']} and pass its path, or pass load_weights=False"
        )
    pth = download(checkpoint["url"], sha256 or checkpoint.get("sha256"))
    folder = pth + ".preset"
    if not os.path.exists(os.path.join(folder, "task.json")):  # converted on first use, then cached
        save_task(classifier_from_checkpoint(task_cls, pth, release=name), folder)
    return folder_parts(folder, backbone_classes(task_cls.backbone_cls)), folder


def load_task(task_cls, preset, num_classes=None, class_names=None, load_weights=True, **kwargs):
    """`VideoClassifier.from_preset`; see there.

    Args:
        task_cls: the classifier class.
        preset: a preset handle.
        num_classes: the classifier's size.
        class_names: the class names.
        load_weights: load the preset's weights.
        **kwargs: backbone and preprocessor options.
    """
    sha256 = kwargs.pop("sha256", None)
    kind, where = resolve(preset, sha256)
    if kind == "pth":
        if load_weights:
            return classifier_from_checkpoint(
                task_cls, where, num_classes=num_classes, class_names=class_names, **kwargs
            )
        kind, where = "registered", find_release(where) or checkpoint_architecture()
    if kind == "registered":
        parts, folder = _registered_parts(task_cls, where, load_weights, sha256)
        kind, where = ("folder", folder) if folder else ("none", None)
    else:
        parts = folder_parts(where, backbone_classes(task_cls.backbone_cls))
    classifier, kept = _assemble(task_cls, parts, num_classes, class_names, kwargs)
    if load_weights and kind == "folder":
        _load_backbone_weights(classifier.backbone, where)
        if kept:
            _load_head_weights(classifier, where)
    return classifier


def load_backbone(cls, base, preset, load_weights=True, **kwargs):
    """`Backbone.from_preset` (`base`: `Backbone`, whose registered subclasses a folder may name); see there.

    Args:
        cls: the class `from_preset` was called on.
        base: `Backbone`, whose registered subclasses a folder may name.
        preset: a preset handle.
        load_weights: load the preset's weights.
        **kwargs: backbone options.
    """
    sha256 = kwargs.pop("sha256", None)
    pre_over, _, backbone_over = _split_overrides(dict(kwargs))
    shape = backbone_over.pop("input_shape", None)
    if shape is not None:  # the backbone's input size, as the clip length and crop size of a preprocessor
        pre_over.update(clip_size(tuple(shape)))
    kind, where = resolve(preset, sha256)
    if kind == "pth" or (kind == "registered" and load_weights and get_preset(where).get("checkpoint")):
        # `where` is the local file or the name: a URL is not downloaded and hashed a second time.
        task = load_task(task_class(), where, load_weights=load_weights, sha256=sha256, **pre_over, **backbone_over)
        backbone = task.backbone
    else:
        classes = backbone_classes(base)
        parts = folder_parts(where, classes) if kind == "folder" else entry_parts(get_preset(where))
        backbone_cls = classes[parts.backbone_class]
        _check_overrides(backbone_cls, backbone_over)
        with blaming(parts.source):
            pre = {**parts.preprocessor_config, **pre_over}
            backbone = _build_backbone(backbone_cls, parts.backbone_config, pre, backbone_over)
        if load_weights and kind == "folder":
            _load_backbone_weights(backbone, where)
    if not isinstance(backbone, cls):
        raise PresetError(f"{preset} holds a {type(backbone).__name__}, not a {cls.__name__}")
    return backbone
