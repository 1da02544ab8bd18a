"""Presets: the one table of named models, and loading and saving preset folders.

`PRESETS` is plain data. An architecture entry names its backbone class and
arguments, the paper's input size, classes and figures; a release entry names
the architecture it holds and adds its checkpoint, preprocessing and class
names (in the released checkpoint's label order).

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

import keras

from mfnet_keras import downloads
from mfnet_keras.downloads import ARCHIVES
from mfnet_keras.files import sha256_of
from mfnet_keras.models.preset_folder import PresetError, blaming, clip_size, folder_parts

_CHECKPOINTS = "https://github.com/cypw/PyTorch-MFNet (README, 'Pretrained models'; its Google Drive links are dead)"
_VIDEO = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), "frame_interval": 2}
_IMAGE = {"input_shape": (224, 224, 3), "num_classes": 1000}

PRESETS = {
    # Architectures (the paper's Tables 1 and 2); no weights.
    "mfnet3d": {
        "backbone": "MFNetBackbone",
        "args": {},
        "input_shape": (16, 224, 224, 3),
        "num_classes": 400,
        "paper": {"params": 8.0e6, "flops": 11.1e9},
        "description": "MF-Net 3D, Table 2",
    },
    "mfnet2d": {
        "backbone": "MFNetBackbone",
        "args": {},
        **_IMAGE,
        "paper": {"params": 5.8e6, "flops": 861e6},
        "description": "MF-Net 2D (N=16), Table 2",
    },
    "mfnet2d_n12": {
        "backbone": "MFNetBackbone",
        "args": {"num_fibers": 12, "stem_filters": 12, "stage_filters": (96, 180, 360, 720)},
        **_IMAGE,
        "paper": {"params": 5.9e6, "flops": 895e6},
        "description": "MF-Net 2D, N=12",
        "note": "our widths: stem 12, stages 96/180/360/720 (multiples of 12)",
    },
    "mfnet2d_n24": {
        "backbone": "MFNetBackbone",
        "args": {"num_fibers": 24, "stem_filters": 24, "stage_filters": (120, 192, 432, 840)},
        **_IMAGE,
        "paper": {"params": 5.8e6, "flops": 897e6},
        "description": "MF-Net 2D, N=24",
        "note": "our widths: stem 24, stages 120/192/432/840 (multiples of 24)",
    },
    "mfnet2d_no_mux": {
        "backbone": "MFNetBackbone",
        "args": {"multiplexer": False},
        **_IMAGE,
        "paper": {"params": 4.5e6, "flops": 600e6},
        "description": "MF-Net 2D without multiplexers",
    },
    "mfnet2d_no_mux_deeper_wider": {
        "backbone": "MFNetBackbone",
        "args": {"multiplexer": False, "stage_filters": (112, 224, 448, 896), "stage_depths": (3, 4, 8, 3)},
        **_IMAGE,
        "paper": {"params": 6.4e6, "flops": 897e6},
        "description": "MF-Net 2D without multiplexers, deeper & wider",
        "note": "our design: stages 112/224/448/896 channels, 3/4/8/3 units",
    },
    "resnet18": {
        "backbone": "ResNetBackbone",
        "args": {"block": "basic"},
        **_IMAGE,
        "paper": {"params": 11.7e6, "flops": 1.8e9},
        "description": "ResNet-18",
    },
    "resnet18_mf": {
        "backbone": "ResNetBackbone",
        "args": {"block": "multi_fiber", "stage_filters": (176, 336, 672, 1280), "num_fibers": 16},
        **_IMAGE,
        "paper": {"params": 9.6e6, "flops": 1.6e9},
        "description": "ResNet-18, MF embedded",
        "note": "our design: MF units (N=16) of 176/336/672/1280 channels in ResNet-18's 2/2/2/2 layout",
    },
    "mobilenet_v2_1.4": {
        "backbone": "MobileNetV2Backbone",
        "args": {"alpha": 1.4},
        **_IMAGE,
        "paper": {"params": 6.9e6, "flops": 585e6},
        "description": "MobileNet-v2 (1.4)",
        "note": "paper's 6.9 M is from the MobileNet-v2 paper; the standard architecture has 6.11 M",
    },
    "mobilenet_v2_1.4_mf": {
        "backbone": "MobileNetV2Backbone",
        "args": {"alpha": 1.4, "multi_fiber": True},
        **_IMAGE,
        "paper": {"params": 6.0e6, "flops": 578e6},
        "description": "MobileNet-v2 (1.4), MF embedded",
        "note": "our design: multiplexer per block, 2-fiber projections, 4-fiber last conv; 13% < baseline",
    },
    "resnext26_8x16d": {
        "backbone": "ResNetBackbone",
        "args": {
            "block": "bottleneck",
            "stage_filters": (64, 128, 256, 512),
            "bottleneck_filters": (128, 256, 512, 1024),
            "cardinality": 8,
        },
        **_IMAGE,
        "paper": {"params": 6.3e6, "flops": 1.1e9},
        "description": "ResNeXt-26 (8x16d)",
        "note": "our design: 2/2/2/2 bottlenecks, 8 groups of 16 channels in stage 1, doubling",
    },
    # The released checkpoints (cypw/PyTorch-MFNet).
    "mfnet2d_imagenet1k": {
        "architecture": "mfnet2d",
        "checkpoint": {"file_name": "MFNet2D_ImageNet1k-0000.pth", "url": None, "sha256": None},
        # Trained on RGB in [0, 255] as (x - [124, 117, 104]) × 0.0167: the same map for [0, 1] input.
        "preprocessing": {"mean": (124 / 255, 117 / 255, 104 / 255), "std": (1 / (0.0167 * 255),) * 3},
        "description": "MF-Net 2D trained on ImageNet-1k",
    },
    "mfnet3d_kinetics400": {
        "architecture": "mfnet3d",
        "checkpoint": {"file_name": "MFNet3D_Kinetics-400_72.8.pth", "url": None, "sha256": None},
        "preprocessing": _VIDEO,
        "class_names": "kinetics400",
        "description": "MF-Net 3D on Kinetics-400: 72.8 % top-1 on val",
    },
    "mfnet3d_ucf101_split1": {
        "architecture": "mfnet3d",
        "num_classes": 101,
        "checkpoint": {"file_name": "MFNet3D_UCF-101_Split-1_96.3.pth", "url": None, "sha256": None},
        "preprocessing": _VIDEO,
        "class_names": "ucf101",
        "description": "MF-Net 3D fine-tuned from Kinetics-400: 96.3 % on UCF-101 split 1",
    },
    "mfnet3d_hmdb51_split1": {
        "architecture": "mfnet3d",
        "num_classes": 51,
        "checkpoint": {"file_name": "MFNet3D_HMDB51_Split-1_74.6.pth", "url": None, "sha256": None},
        "preprocessing": _VIDEO,
        "class_names": "hmdb51",
        "description": "MF-Net 3D fine-tuned from Kinetics-400: 74.6 % on HMDB51 split 1",
        "note": "the file name is our guess: pass --preset mfnet3d_hmdb51_split1 to convert if yours differs",
    },
}
CACHE_SUBDIR = "mfnet_keras"
HEAD_WEIGHTS = "task.weights.h5"


def list_presets(architectures=True, releases=True):
    """Registered names, in the table's order."""
    return [n for n, p in PRESETS.items() if (releases if "architecture" in p else architectures)]


def register_preset(name, **entry):
    """Adds a preset to the table, e.g. a mirror of a release with its URL and sha256:
    `register_preset("mine", architecture="mfnet3d", checkpoint={"url": ..., "sha256": ...})`."""
    if "architecture" in entry and entry["architecture"] not in PRESETS:
        raise ValueError(
            f"Unknown architecture {entry['architecture']!r}; expected one of {list_presets(releases=False)}"
        )
    PRESETS[name] = entry


def get_preset(name):
    """A preset's entry with its architecture's fields filled in."""
    if name not in PRESETS:
        raise PresetError(f"Unknown preset {name!r}; expected one of {list_presets()}, a preset folder or a URL")
    entry = dict(PRESETS[name])
    if "architecture" in entry:
        entry = {**PRESETS[entry["architecture"]], **entry}
    entry.setdefault("note", "")
    return {"name": name, **entry}


def backbone_options(name):
    """The backbone arguments a registered preset accepts as options (besides `input_shape`)."""
    import inspect

    cls = _backbone_classes()[get_preset(name)["backbone"]]
    return set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs", "input_shape"}


def find_release(path):
    """The registered release whose checkpoint file name is the basename of `path`, or None."""
    base = os.path.basename(path)
    for name, entry in PRESETS.items():
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


def _parts_of_folder(folder):
    return folder_parts(folder, _backbone_classes())


def _backbone_classes():
    from mfnet_keras import models

    return {cls.__name__: cls for cls in (models.MFNetBackbone, models.ResNetBackbone, models.MobileNetV2Backbone)}


def _check_overrides(class_name, overrides):
    """Refuses a constructor override the backbone class does not take (the caller's mistake, not the preset's)."""
    import inspect

    cls = _backbone_classes()[class_name]
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs", "input_shape"}
    unknown = sorted(set(overrides) - accepted)
    if unknown:
        raise ValueError(
            f"Unknown option for {class_name}; expected some of {sorted(accepted)}. "
            f"Received: {unknown[0]}={overrides[unknown[0]]!r}"
        )


def _build_backbone(class_name, config, pre, overrides):
    """The backbone for clips of the preprocessor's size, with (checked) constructor overrides."""
    cls = _backbone_classes()[class_name]
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


def _assemble(parts, num_classes, class_names, kwargs):
    """A `VideoClassifier` from `(backbone class, backbone config, preprocessor config, head config)`;
    returns `(classifier, head_kept)`: whether the saved head fits (same classes)."""
    from mfnet_keras.models.preprocessor import VideoClassifierPreprocessor
    from mfnet_keras.models.video_classifier import VideoClassifier

    class_name, backbone_config, pre, head, source = parts
    pre_over, head_over, backbone_over = _split_overrides(dict(kwargs))
    _check_overrides(class_name, backbone_over)
    pre = {k: v for k, v in pre.items() if k in _PREPROCESSOR_KEYS}
    if "crop_size" in pre_over and "short_side" not in pre_over:
        pre.pop("short_side", None)
    pre.update(pre_over)
    head = dict(head or {})
    saved_classes = head.get("num_classes")
    classes = saved_classes if num_classes is None else num_classes
    if classes is None:
        raise ValueError("This preset has no classifier: pass `num_classes`.")
    kept = saved_classes == classes
    names = class_names if class_names is not None else (head.get("class_names") if kept else None)
    head_args = {k: head[k] for k in _HEAD_KEYS if k in head}
    head_args.update(head_over)
    with blaming(source):
        preprocessor = VideoClassifierPreprocessor(name="preprocessor", **pre)  # checks the clip size first
        backbone = _build_backbone(class_name, backbone_config, pre, backbone_over)
        classifier = VideoClassifier(
            backbone,
            classes,
            preprocessor=preprocessor,
            class_names=names,
            name=head.get("name", "video_classifier"),
            **head_args,
        )
    return classifier, kept


def _load_backbone_weights(backbone, folder):
    """`model.weights.h5` into `backbone`; a file that does not fit is one `PresetError` line naming it."""
    path = os.path.join(folder, "model.weights.h5")
    with blaming(path):
        if not os.path.exists(path):
            raise PresetError(f"{path}: missing")
        try:
            backbone.load_weights(path)
        except Exception as error:  # h5py and Keras raise several types for a file that does not fit
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise PresetError(f"{path}: does not fit the architecture in config.json: {first[:300]}") from None


def _load_head_weights(model, folder):
    """The classifier head's weights from `task.weights.h5`, when the folder has them."""
    import h5py

    path = os.path.join(folder, HEAD_WEIGHTS)
    if not os.path.exists(path):
        return
    with blaming(path), h5py.File(path, "r") as f:
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


def classifier_from_checkpoint(path, preset=None, num_classes=None, class_names=None, skip_classifier=False, **kwargs):
    """A `VideoClassifier` holding a PyTorch checkpoint (`.pth`), PyTorch not needed.

    The architecture, preprocessing and class names are those of `preset`, else
    of the release recognised by the file name, else `mfnet3d`'s. The classifier
    takes the checkpoint's class count unless `num_classes` differs; then (or
    with `skip_classifier`) it stays random. `kwargs` as for `from_preset`.
    """
    from mfnet_keras import weights

    name = preset or find_release(path) or "mfnet3d"
    state = weights.read_torch_state_dict(path)
    backbone, args, pre, head, _ = _parts_of_entry(get_preset(name))
    kernel = state.get("classifier.weight")
    if kernel is not None and kernel.shape[0] != head["num_classes"]:
        head = {"name": head["name"], "num_classes": int(kernel.shape[0])}
    model, _ = _assemble((backbone, args, pre, head, None), num_classes, class_names, kwargs)
    skip = skip_classifier or not weights.classifier_matches(model, state)
    weights.load_state_dict(model, state, skip_classifier=skip)
    return model


def _registered_parts(name, load_weights, sha256):
    """Parts of a registered preset, and the folder or `.pth` its weights come from (or None)."""
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
        save_classifier(classifier_from_checkpoint(pth, preset=name), folder)
    return _parts_of_folder(folder), folder


def load_classifier(handle, num_classes=None, class_names=None, load_weights=True, **kwargs):
    """`VideoClassifier.from_preset`; see there."""
    sha256 = kwargs.pop("sha256", None)
    kind, where = resolve(handle, sha256)
    if kind == "pth":
        if load_weights:
            return classifier_from_checkpoint(where, num_classes=num_classes, class_names=class_names, **kwargs)
        kind, where = "registered", find_release(where) or "mfnet3d"
    if kind == "registered":
        parts, folder = _registered_parts(where, load_weights, sha256)
        kind, where = ("folder", folder) if folder else ("none", None)
    else:
        parts = _parts_of_folder(where)
    classifier, kept = _assemble(parts, num_classes, class_names, kwargs)
    if load_weights and kind == "folder":
        _load_backbone_weights(classifier.backbone, where)
        if kept:
            _load_head_weights(classifier, where)
    return classifier


def load_backbone(handle, load_weights=True, cls=None, **kwargs):
    """`Backbone.from_preset`; see there."""
    sha256 = kwargs.pop("sha256", None)
    pre_over, _, backbone_over = _split_overrides(dict(kwargs))
    kind, where = resolve(handle, sha256)
    if kind == "pth" or (kind == "registered" and load_weights and get_preset(where).get("checkpoint")):
        # `where` is the local file or the name: a URL is not downloaded and hashed a second time.
        backbone = load_classifier(where, load_weights=load_weights, sha256=sha256, **kwargs).backbone
    else:
        parts = _parts_of_folder(where) if kind == "folder" else _parts_of_entry(get_preset(where))
        _check_overrides(parts[0], backbone_over)
        with blaming(parts[4]):
            backbone = _build_backbone(parts[0], parts[1], {**parts[2], **pre_over}, backbone_over)
        if load_weights and kind == "folder":
            _load_backbone_weights(backbone, where)
    if cls is not None and not isinstance(backbone, cls):
        raise PresetError(f"{handle} holds a {type(backbone).__name__}, not a {cls.__name__}")
    return backbone


# --- Saving ----------------------------------------------------------------------------------------


def _write_json(folder, name, data):
    from mfnet_keras.files import write_json

    write_json(os.path.join(folder, name), data)


def _metadata(model):
    from mfnet_keras import __version__

    return {
        "keras_version": keras.__version__,
        "mfnet_keras_version": __version__,
        "parameter_count": int(model.count_params()),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def save_backbone(backbone, folder):
    from mfnet_keras.files import remove_empty_partial, save_model

    os.makedirs(folder, exist_ok=True)
    _write_json(folder, "config.json", keras.saving.serialize_keras_object(backbone))
    save_model(backbone, os.path.join(folder, "model.weights.h5"))
    _write_json(folder, "metadata.json", _metadata(backbone))
    remove_empty_partial(folder)


def save_classifier(model, folder):
    import h5py

    from mfnet_keras.files import remove_empty_partial, replacing

    save_backbone(model.backbone, folder)
    _write_json(folder, "preprocessor.json", keras.saving.serialize_keras_object(model.preprocessor))
    with replacing(os.path.join(folder, HEAD_WEIGHTS)) as tmp, h5py.File(tmp, "w") as f:
        for weight in _head_weights(model):
            f[weight.path] = keras.ops.convert_to_numpy(weight)
    _write_json(folder, "task.json", keras.saving.serialize_keras_object(model))
    _write_json(folder, "metadata.json", _metadata(model))
    remove_empty_partial(folder)
