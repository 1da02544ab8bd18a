"""Presets, for every model family: the registry of named presets, handles, loading and saving.

Each family registers its table (`models/<family>/<family>_presets.py`) with
`register_presets`. Classes are found through Keras's registry and the class
whose `from_preset` was called; this module imports no model.

A handle for `from_preset` is one of:
- a registered name (`list_presets()`);
- a preset folder (`config.json`, `model.weights.h5`, and for a classifier
  `task.json`, `task.weights.h5`, `preprocessor.json`), keras-hub's layout;
- a released PyTorch checkpoint `.pth` (recognised by its file name);
- an `http(s)://` URL of a `.pth` or of a preset folder archived as `.tar.gz`,
  `.tgz` or `.zip`, downloaded once into the Keras cache (`sha256=` verifies it);
- `hf://OWNER/NAME` (needs `huggingface_hub`) or `kaggle://OWNER/MODEL/keras/VARIANT`
  (needs `kagglehub`).
"""

import datetime
import hashlib
import importlib
import os
import urllib.parse
import warnings

import keras

from mfnet_keras import __version__, downloads
from mfnet_keras.checkpoints import key_mapping
from mfnet_keras.downloads import ARCHIVES
from mfnet_keras.files import remove_empty_partial, replacing, save_model, sha256_of, write_json, write_text
from mfnet_keras.models.preset_checks import PresetError, blaming, clip_size, folder_parts

CACHE_SUBDIR = "mfnet_keras"
HEAD_WEIGHTS = "task.weights.h5"


_PRESETS = {}


class classproperty(property):  # noqa: N801 (named like `property`)
    """A read-only property of a class (`VideoClassifier.presets`)."""

    def __get__(self, instance, owner):
        return self.fget(owner)


def register_presets(presets, backbone_cls):
    """Registers a family's table `{name: entry}`; architecture entries get `backbone_cls` as their backbone."""
    for name, entry in presets.items():
        entry = dict(entry)
        if "architecture" not in entry:
            entry["backbone"] = backbone_cls.__name__
        register_preset(name, **entry)


def register_preset(name, **entry):
    """Adds a preset to the registry, e.g. a mirror of a release with its URL and sha256.

    Examples:
    >>> register_preset(
    ...     "my_kinetics_mirror",
    ...     architecture="mfnet3d",
    ...     checkpoint={"file_name": "mine.pth", "url": "https://example.org/mine.pth", "sha256": None},
    ... )
    >>> get_preset("my_kinetics_mirror")["num_classes"]
    400
    """
    if "architecture" in entry and entry["architecture"] not in _PRESETS:
        raise ValueError(
            f"Unknown architecture {entry['architecture']!r}; expected one of {list_presets(releases=False)}"
        )
    if "architecture" not in entry and "backbone" not in entry:
        raise ValueError(f"A preset needs an `architecture` or a `backbone`. Received: {sorted(entry)}")
    _PRESETS[name] = entry


def unregister_preset(name):
    """Removes a preset `register_preset` added (an unknown name is a `PresetError`)."""
    if name not in _PRESETS:
        raise PresetError(f"Unknown preset {name!r}")
    del _PRESETS[name]


def list_presets(architectures=True, releases=True, backbone_cls=None):
    """Registered names, in the order they were registered; with `backbone_cls`, those whose
    backbone is that class (or a subclass).

    Examples:
    >>> "mfnet3d_kinetics400" in list_presets(architectures=False)
    True
    """
    names = []
    for name, entry in _PRESETS.items():
        if not (releases if "architecture" in entry else architectures):
            continue
        if backbone_cls is not None:
            found = _registered_class(get_preset(name)["backbone"])
            if found is None or not issubclass(found, backbone_cls):
                continue
        names.append(name)
    return names


def get_preset(name):
    """A preset's entry with its architecture's fields filled in."""
    if name not in _PRESETS:
        raise PresetError(f"Unknown preset {name!r}; expected one of {list_presets()}, a preset folder or a URL")
    entry = dict(_PRESETS[name])
    if "architecture" in entry:
        entry = {**_PRESETS[entry["architecture"]], **entry}
    entry.setdefault("note", "")
    return {"name": name, **entry}


def _registered_class(name):
    """This package's Keras class registered as `mfnet_keras>{name}`, or None."""
    return keras.saving.get_custom_objects().get(f"mfnet_keras>{name}")


def _backbone_classes(base):
    """`{class name: class}` of this package's registered Keras classes that subclass `base`."""
    found = {}
    for key, cls in keras.saving.get_custom_objects().items():
        if key.startswith("mfnet_keras>") and isinstance(cls, type) and issubclass(cls, base):
            found[cls.__name__] = cls
    return found


def _backbone_arguments(cls):
    import inspect

    return set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs", "input_shape"}


def backbone_options(name):
    """The backbone arguments a registered preset accepts as options (besides `input_shape`)."""
    return _backbone_arguments(_registered_class(get_preset(name)["backbone"]))


def find_release(path):
    """The registered release whose checkpoint file name is the basename of `path`, or None."""
    base = os.path.basename(path)
    for name, entry in _PRESETS.items():
        if entry.get("checkpoint", {}).get("file_name") == base:
            return name
    return None


def class_names_of(entry):
    """The class names of a release entry (a packaged list), or None."""
    names = entry.get("class_names")
    if names is None or isinstance(names, (list, tuple)):
        return names
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "class_names", f"{names}.txt")
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


# --- Handles -------------------------------------------------------------------------------------


def cache_dir():
    """Where downloads and converted presets are kept: `$KERAS_HOME/mfnet_keras` (default `~/.keras`)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, CACHE_SUBDIR)


def _download(url, sha256=None):
    """The cached copy of `url`, downloaded once (see `mfnet_keras.downloads.download`: size limit,
    `sha256`, nothing kept from a failed or refused download)."""
    name = os.path.basename(urllib.parse.urlparse(url).path) or hashlib.sha256(url.encode()).hexdigest()[:16]
    target = os.path.join(cache_dir(), name)
    if os.path.exists(target) and (sha256 is None or sha256_of(target) == sha256.lower()):
        return target
    os.makedirs(cache_dir(), exist_ok=True)
    try:
        return downloads.download(url, target, sha256)
    except downloads.DownloadError as error:
        raise PresetError(str(error)) from None


def _extract(archive, url):
    """The preset folder inside a downloaded archive, extracted once beside it, safely
    (`mfnet_keras.downloads.extract_archive`); a refused archive is removed from the cache."""
    folder = archive + ".preset"
    if not os.path.isdir(folder) or os.path.exists(os.path.join(folder, ".complete")):  # .complete: unchecked, old
        try:
            downloads.extract_archive(archive, folder, label=url)
        except downloads.DownloadError as error:
            os.remove(archive)
            raise PresetError(str(error)) from None
    for root, _, files in os.walk(folder):
        if "config.json" in files:
            return root
    raise PresetError(f"{url}: the archive holds no config.json (not a preset folder)")


# The files a preset folder may hold: what hub downloads fetch, and no more.
PRESET_FILES = ("config.json", "model.weights.h5", "metadata.json", "task.json", "task.weights.h5", "preprocessor.json")
PRESET_PATTERNS = ("*.json", "*.weights.h5", "README.md")


def _hub_folder(handle):
    """The local folder of an `hf://` or `kaggle://` handle: its preset files only, fetched by the hub's client."""
    scheme, rest = handle.split("://", 1)
    package = {"hf": "huggingface_hub", "kaggle": "kagglehub"}[scheme]
    try:
        module = importlib.import_module(package)
    except ImportError as error:
        raise PresetError(f"{handle}: {scheme}:// presets need {package}: pip install {package}") from error
    try:
        if scheme == "hf":
            return module.snapshot_download(repo_id=rest, allow_patterns=list(PRESET_PATTERNS))
        return _kaggle_files(module, rest)
    except Exception as error:
        raise PresetError(
            f"{handle}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        ) from error


def _kaggle_files(kagglehub, handle):
    """Fetches a Kaggle model variant's preset files one by one (`config.json` required, the others if there)."""
    folder = os.path.dirname(kagglehub.model_download(handle, path="config.json"))
    for name in (*PRESET_FILES[1:], "README.md"):
        try:
            kagglehub.model_download(handle, path=name)
        except Exception:  # the file is not in this variant; kagglehub's error types vary by version
            continue
    return folder


def resolve(handle, sha256=None):
    """`("folder", path)`, `("pth", path)` or `("registered", name)` for a handle (see the module doc)."""
    handle = os.fspath(handle)
    if handle.startswith(("http://", "https://")):
        if not handle.endswith((".pth", *ARCHIVES)):
            raise PresetError(f"{handle}: a URL must end in .pth or {', '.join(ARCHIVES)}")
        path = _download(handle, sha256)
        return ("pth", path) if handle.endswith(".pth") else ("folder", _extract(path, handle))
    if handle.startswith(("hf://", "kaggle://")):
        return "folder", _hub_folder(handle)
    if os.path.isdir(handle):
        if not os.path.exists(os.path.join(handle, "config.json")):
            raise PresetError(f"{handle}: not a preset folder (no config.json)")
        return "folder", handle
    if handle.endswith(".pth"):
        if not os.path.exists(handle):
            raise PresetError(f"{handle}: no such checkpoint file")
        return "pth", handle
    get_preset(handle)  # an unknown name is a PresetError
    return "registered", handle


# --- Building --------------------------------------------------------------------------------------


def _parts_of_entry(entry):
    """`(backbone class name, backbone config, preprocessor config, head config, None)` of a table entry."""
    shape = entry["input_shape"]
    pre = {**clip_size(shape), **entry.get("preprocessing", {})}
    head = {"name": entry["name"], "num_classes": entry["num_classes"], "class_names": class_names_of(entry)}
    return entry["backbone"], {**entry["args"], "input_shape": shape}, pre, head, None


def _check_overrides(cls, overrides):
    """Refuses a constructor override the backbone class does not take (the caller's mistake, not the preset's)."""
    accepted = _backbone_arguments(cls)
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
    """A `task_cls` classifier from `(backbone class, backbone config, preprocessor config, head config,
    source file)`; returns `(classifier, head_kept)`: whether the saved head fits (same classes)."""
    class_name, backbone_config, pre, head, source = parts
    backbone_cls = _backbone_classes(task_cls.backbone_cls)[class_name]
    pre_over, head_over, backbone_over = _split_overrides(dict(kwargs))
    _check_overrides(backbone_cls, backbone_over)
    pre = _preprocessor_config(pre, pre_over)
    head = dict(head or {})
    saved_classes = head.get("num_classes")
    classes = saved_classes if num_classes is None else num_classes
    if classes is None:
        raise ValueError("This preset has no classifier: pass `num_classes`.")
    kept = saved_classes == classes
    names = class_names if class_names is not None else (head.get("class_names") if kept else None)
    head_args = {**{k: head[k] for k in _HEAD_KEYS if k in head}, **head_over}
    with blaming(source):
        preprocessor = task_cls.preprocessor_cls(name="preprocessor", **pre)  # checks the clip size first
        backbone = _build_backbone(backbone_cls, backbone_config, pre, backbone_over)
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
    import h5py

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
    `release`, else of the release recognised by the file name, else
    `mfnet3d`'s. The classifier takes the checkpoint's class count unless
    `num_classes` differs; then (or with `skip_classifier=True`) it stays random.
    `kwargs` as for `from_preset`.
    """
    skip_classifier = kwargs.pop("skip_classifier", False)
    name = release or find_release(path) or "mfnet3d"
    state = key_mapping.read_torch_state_dict(path)
    backbone, args, pre, head, _ = _parts_of_entry(get_preset(name))
    kernel = state.get("classifier.weight")
    if kernel is not None and kernel.shape[0] != head["num_classes"]:
        head = {"name": head["name"], "num_classes": int(kernel.shape[0])}
    model, _ = _assemble(task_cls, (backbone, args, pre, head, None), num_classes, class_names, kwargs)
    skip = skip_classifier or not key_mapping.classifier_matches(model, state)
    key_mapping.load_state_dict(model, state, skip_classifier=skip)
    return model


def _registered_parts(task_cls, name, load_weights, sha256):
    """Parts of a registered preset, and the folder its weights come from (or None)."""
    entry = get_preset(name)
    parts = _parts_of_entry(entry)
    checkpoint = entry.get("checkpoint")
    if not (load_weights and checkpoint):
        return parts, None
    if not checkpoint.get("url"):
        raise PresetError(
            f"preset {name!r} has no download link (the release's links are dead): get "
            f"{checkpoint['file_name']} and pass its path, or pass load_weights=False"
        )
    pth = _download(checkpoint["url"], sha256 or checkpoint.get("sha256"))
    folder = pth + ".preset"
    if not os.path.exists(os.path.join(folder, "task.json")):  # converted on first use, then cached
        save_task(classifier_from_checkpoint(task_cls, pth, release=name), folder)
    return folder_parts(folder, _backbone_classes(task_cls.backbone_cls)), folder


def load_task(task_cls, preset, num_classes=None, class_names=None, load_weights=True, **kwargs):
    """`VideoClassifier.from_preset`; see there."""
    sha256 = kwargs.pop("sha256", None)
    kind, where = resolve(preset, sha256)
    if kind == "pth":
        if load_weights:
            return classifier_from_checkpoint(
                task_cls, where, num_classes=num_classes, class_names=class_names, **kwargs
            )
        kind, where = "registered", find_release(where) or "mfnet3d"
    if kind == "registered":
        parts, folder = _registered_parts(task_cls, where, load_weights, sha256)
        kind, where = ("folder", folder) if folder else ("none", None)
    else:
        parts = folder_parts(where, _backbone_classes(task_cls.backbone_cls))
    classifier, kept = _assemble(task_cls, parts, num_classes, class_names, kwargs)
    if load_weights and kind == "folder":
        _load_backbone_weights(classifier.backbone, where)
        if kept:
            _load_head_weights(classifier, where)
    return classifier


def load_backbone(cls, base, preset, load_weights=True, **kwargs):
    """`Backbone.from_preset` (`base`: `Backbone`, whose registered subclasses a folder may name); see there."""
    sha256 = kwargs.pop("sha256", None)
    pre_over, _, backbone_over = _split_overrides(dict(kwargs))
    shape = backbone_over.pop("input_shape", None)
    if shape is not None:  # the backbone's input size, as the clip length and crop size of a preprocessor
        pre_over.update(clip_size(tuple(shape)))
    kind, where = resolve(preset, sha256)
    if kind == "pth" or (kind == "registered" and load_weights and get_preset(where).get("checkpoint")):
        # `where` is the local file or the name: a URL is not downloaded and hashed a second time.
        task_cls = _registered_class("VideoClassifier")
        task = load_task(task_cls, where, load_weights=load_weights, sha256=sha256, **pre_over, **backbone_over)
        backbone = task.backbone
    else:
        classes = _backbone_classes(base)
        parts = folder_parts(where, classes) if kind == "folder" else _parts_of_entry(get_preset(where))
        backbone_cls = classes[parts[0]]
        _check_overrides(backbone_cls, backbone_over)
        with blaming(parts[4]):
            backbone = _build_backbone(backbone_cls, parts[1], {**parts[2], **pre_over}, backbone_over)
        if load_weights and kind == "folder":
            _load_backbone_weights(backbone, where)
    if not isinstance(backbone, cls):
        raise PresetError(f"{preset} holds a {type(backbone).__name__}, not a {cls.__name__}")
    return backbone


# --- Saving ----------------------------------------------------------------------------------------

BACKBONE_WEIGHTS = "model.weights.h5"
SHARDED_BACKBONE_WEIGHTS = "model.weights.json"


def _metadata(model):
    """keras-hub's `metadata.json` keys (no keras-hub here: `keras_hub_version` is null) and ours."""
    return {
        "keras_version": keras.__version__,
        "keras_hub_version": None,
        "mfnet_keras_version": __version__,
        "parameter_count": int(model.count_params()),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def save_backbone(backbone, folder, max_shard_size=None):
    """Writes a backbone's `config.json`, weights, `metadata.json` and `README.md` into `folder`."""
    os.makedirs(folder, exist_ok=True)
    write_json(os.path.join(folder, "config.json"), keras.saving.serialize_keras_object(backbone))
    if max_shard_size is None:
        save_model(backbone, os.path.join(folder, BACKBONE_WEIGHTS))
    else:
        backbone.save_weights(os.path.join(folder, SHARDED_BACKBONE_WEIGHTS), max_shard_size=max_shard_size)
    write_json(os.path.join(folder, "metadata.json"), _metadata(backbone))
    write_text(os.path.join(folder, "README.md"), model_card(backbone))
    remove_empty_partial(folder)


def save_task(model, folder, max_shard_size=None):
    """Writes a classifier's preset folder: the backbone's files, `preprocessor.json`, `task.json`,
    `task.weights.h5` (Keras's `save_weights` of the head, as keras-hub writes it)."""
    save_backbone(model.backbone, folder, max_shard_size=max_shard_size)
    write_json(os.path.join(folder, "preprocessor.json"), keras.saving.serialize_keras_object(model.preprocessor))
    with replacing(os.path.join(folder, HEAD_WEIGHTS)) as tmp:
        model.save_task_weights(tmp)
    write_json(os.path.join(folder, "task.json"), keras.saving.serialize_keras_object(model))
    write_json(os.path.join(folder, "metadata.json"), _metadata(model))
    write_text(os.path.join(folder, "README.md"), model_card(model))
    remove_empty_partial(folder)


def model_card(model):
    """A short `README.md` for a preset folder: what it holds and how to load it."""
    classifier = hasattr(model, "backbone")
    backbone = model.backbone if classifier else model
    shape = "×".join(str(d) for d in backbone.input_shape[1:])
    lines = [
        f"# {model.name}",
        "",
        f"An mfnet-keras {type(model).__name__} (Multi-Fiber Networks, Keras {keras.__version__}), "
        f"{model.count_params():,} parameters.",
        "",
        f"- Architecture: {type(backbone).__name__}, input {shape} (frames × height × width × channels).",
    ]
    if classifier:
        pre = model.preprocessor
        names = ", ".join(model.class_names[:10]) + (", …" if model.num_classes > 10 else "")
        lines += [
            f"- Input: uint8 RGB clips of {pre.clip_length} frames, every {pre.frame_interval} frames of the video;"
            f" resized to a {pre.short_side}-pixel short side, centre-cropped to {pre.crop_size}, normalised with"
            f" mean {[round(m, 4) for m in pre.mean]} and std {[round(s, 4) for s in pre.std]} inside the model.",
            f"- Classes ({model.num_classes}): {names}.",
        ]
    call = "VideoClassifier.from_preset" if classifier else f"{type(model).__name__}.from_preset"
    lines += [
        "",
        "```python",
        "import mfnet_keras.models as models",
        "",
        f'model = models.{call}("PATH/TO/THIS/FOLDER")  # or hf://OWNER/NAME, kaggle://OWNER/MODEL/keras/VARIANT',
        "```",
        "",
    ]
    return "\n".join(lines)
