"""Training configs: YAML files checked against one schema of defaults, with `--set key=value` overrides.

The package ships the paper's recipes and the demo's in `mfnet_keras/configs/`:
`load_config` takes a path or one of their names (`list_configs()`).

Every key has a default here; a config file or override may only set keys
that exist, with a value of the default's type. Problems raise `ConfigError`
with one line naming the key, before anything starts.
"""

import copy
import difflib
import os

import tensorflow as tf
import yaml

from mfnet_keras import models
from mfnet_keras.data.data_config import DataConfig
from mfnet_keras.data.service import check_address
from mfnet_keras.defaults import NUM_CROPS, VIDEO_MEAN, VIDEO_STD
from mfnet_keras.errors import MFNetError

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
_DATA = DataConfig()  # the pipeline's defaults, as YAML values

SCHEMA = {
    "model": {
        "name": "mfnet3d",  # a preset name from mfnet_keras.models.list_presets()
        "num_classes": None,  # None: the number of lines of labels.txt beside the training records
        "clip_length": _DATA.clip_length,  # frames per clip (1 for a 2D model: one frame)
        "crop_size": _DATA.crop_size,
        "dropout": 0.0,
        "options": {},  # backbone arguments, e.g. {num_fibers: 16}
        "init": None,  # initial weights: .keras / .weights.h5 / .pth / preset folder or name / URL
        "inflate": False,  # `init` is a 2D model to inflate into this 3D one
        "skip_classifier": False,  # do not load the classifier from `init` (other classes)
        "zero_init_residual": False,  # from scratch: residual branches start at zero (initialization.zero_init_residual)
    },
    "data": {
        "train": "",  # glob of training TFRecords (this or data.videos is required)
        "eval": "",  # glob of evaluation TFRecords ("" = no validation)
        "videos": "",  # instead of records: a folder of <class>/<video> decoded as training runs (no packing)
        "validation_split": 0.0,  # data.videos: the fraction of videos held out for validation
        "frame_intervals": list(_DATA.frame_intervals),
        "speed_jitter": _DATA.speed_jitter,
        "flip": _DATA.flip,
        "reverse_pairs": [],  # [[a, b], ...]: a clip of class a played backwards is one of b (and b's of a)
        "color_jitter": list(_DATA.color_jitter),  # [] = off
        "scale_range": [],  # [] = crop_size x [1, 288/224]
        "aspect_range": list(_DATA.aspect_range),
        "mean": list(VIDEO_MEAN),
        "std": list(VIDEO_STD),
        "shuffle_buffer": _DATA.shuffle_buffer,
        "multi_label": _DATA.multi_label,  # records with several labels train on all (multi-hot, sigmoid); else on the first
        "service": "",  # grpc://HOST:PORT of a tf.data service dispatcher whose workers decode the training clips
    },
    "train": {
        "epochs": 10,
        "optimizer": "sgd",  # sgd (the paper's) | adamw
        "steps_per_epoch": None,  # None: training videos / batch size
        "batch_size": 8,  # global, across replicas
        "base_lr": 0.1,
        "base_batch_size": 1024,  # lr = base_lr * batch_size / base_batch_size
        "lr_schedule": "step",  # step | cosine
        "lr_decay_epochs": [],  # step: multiply by lr_decay at these epochs
        "lr_decay": 0.1,
        "warmup_epochs": 0.0,
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 1e-4,  # L2, coupled as in PyTorch's SGD
        "pretrained_lr_mult": 1.0,  # lr multiplier of layers loaded from `model.init` (official fine-tuning: 0.2)
        "label_smoothing": 0.0,
        "save_every_steps": 100,  # resumable checkpoint interval
        "seed": 0,  # seeds the data order and augmentation and the initial weights
        "validate_every_epochs": 1,
    },
    "eval": {
        "num_clips": 10,
        "num_crops": 3,
        "batch_size": 8,
    },
}


# Keys whose default is None (meaning "derive it"): the type a set value must have.
NULLABLE_TYPES = {"model.num_classes": 1, "model.init": "", "train.steps_per_epoch": 1}


class ConfigError(MFNetError, ValueError):
    """A config problem; the message is one line naming the key (it starts with "config error:")."""

    prefix = ""


def _type_name(value):
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict"}.get(type(value), "value")


def _check_value(key, value, default):
    if value is None and (default is None or key in NULLABLE_TYPES):
        return value
    if default is None:
        default = NULLABLE_TYPES[key]
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ConfigError(f"config error: {key} must be {_type_name(default)}, got {value!r}")
    return value


def _merge(config, updates, prefix=""):
    for key, value in updates.items():
        full = f"{prefix}{key}"
        if key not in config:
            close = difflib.get_close_matches(key, list(config), n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
            raise ConfigError(f"config error: unknown key {full}{hint}")
        default = config[key]
        if SCHEMA_FLAT.get(full) == {} and isinstance(value, dict):  # a free section (model.options): keys add up
            config[key] = {**default, **value}
        elif isinstance(default, dict) and default and isinstance(value, dict):
            _merge(default, value, f"{full}.")
        elif isinstance(default, dict) and default and not isinstance(value, dict):
            raise ConfigError(f"config error: {full} must be a section of keys, got {value!r}")
        else:
            config[key] = _check_value(full, value, SCHEMA_FLAT[full])


def _flatten(tree, prefix=""):
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


SCHEMA_FLAT = _flatten(SCHEMA)


def parse_override(text):
    """`a.b=value` → `{"a": {"b": value}}`, the value read as YAML (`3`, `0.1`, `[1, 2]`, `true`).

    Args:
        text: `key=value`, the key dotted (`train.epochs=2`).
    """
    if "=" not in text:
        raise ConfigError(f"config error: --set takes key=value, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as error:
        raise ConfigError(f"config error: {key} has an unreadable value {raw!r}") from error
    tree = value
    for part in reversed(key.strip().split(".")):
        tree = {part: tree}
    return tree


def list_configs():
    """Names of the configs that ship with the package (`load_config` takes them)."""
    return sorted(name[: -len(".yaml")] for name in os.listdir(CONFIG_DIR) if name.endswith(".yaml"))


def config_path(path_or_name):
    """A config file's path: the path itself when it exists, else the packaged config of that name.

    Args:
        path_or_name: a YAML file, or a packaged config's name (`ucf101`, `synthetic_demo`, ...).
    """
    if os.path.exists(path_or_name):
        return path_or_name
    name = os.path.basename(path_or_name)
    name = name[: -len(".yaml")] if name.endswith(".yaml") else name
    if os.sep not in path_or_name and name in list_configs():
        return os.path.join(CONFIG_DIR, name + ".yaml")
    raise ConfigError(
        f"config error: config file {path_or_name} does not exist (packaged configs: {', '.join(list_configs())})"
    )


def load_config(path=None, overrides=(), check_paths=True):
    """The full config: defaults, then the YAML file (a path or a packaged config's name), then `key=value`
    overrides; validated.

    Args:
        path: a YAML file or a packaged config's name (None: the defaults alone).
        overrides: `key=value` strings, applied last.
        check_paths: refuse records and folders that do not exist.

    Examples:
    >>> config = load_config("ucf101", ["train.epochs=2", "model.crop_size=112"], check_paths=False)
    >>> config["model"]["name"], config["train"]["epochs"], config["model"]["crop_size"]
    ('mfnet3d', 2, 112)
    >>> load_config("ucf101", ["train.epoch=2"], check_paths=False)
    Traceback (most recent call last):
    ...
    mfnet_keras.config.ConfigError: config error: unknown key train.epoch (did you mean train.epochs?)
    """
    config = copy.deepcopy(SCHEMA)
    if path:
        path = config_path(path)
        with open(path) as f:
            try:
                loaded = yaml.safe_load(f) or {}
            except yaml.YAMLError as error:
                raise ConfigError(f"config error: {path} is not valid YAML ({error.__class__.__name__})") from error
        if not isinstance(loaded, dict):
            raise ConfigError(f"config error: {path} must hold a mapping of sections")
        _merge(config, loaded)
    for text in overrides:
        _merge(config, parse_override(text))
    _validate(config, check_paths)
    return config


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numbers(value, count, low=None):
    """A list of `count` numbers (any count when None), each above `low` (or >= 0 when low is 0)."""
    if not isinstance(value, list) or (count is not None and len(value) != count) or not all(map(_number, value)):
        return False
    return low is None or all(v > low or (low == 0 and v == 0) for v in value)


def _ordered_pair(value):
    return _numbers(value, 2) and 0 < value[0] <= value[1]


_AT_LEAST_1 = (lambda v: v >= 1, ">= 1")
_NON_NEGATIVE = (lambda v: v >= 0, ">= 0")
_FRACTION = (lambda v: 0 <= v < 1, "in [0, 1)")
# Ranges of values whose type the schema already checked; None (derive it) is always allowed.
RANGES = {
    "model.num_classes": _AT_LEAST_1,
    "model.clip_length": _AT_LEAST_1,
    "model.crop_size": _AT_LEAST_1,
    "model.dropout": _FRACTION,
    "data.frame_intervals": (
        lambda v: bool(v) and all(isinstance(i, int) and not isinstance(i, bool) and i >= 1 for i in v),
        "a non-empty list of integers >= 1",
    ),
    "data.speed_jitter": _FRACTION,
    "data.validation_split": _FRACTION,
    "data.color_jitter": (lambda v: v == [] or _numbers(v, 3, 0), "[] or 3 numbers >= 0 (hue, lightness, saturation)"),
    "data.scale_range": (lambda v: v == [] or _ordered_pair(v), "[] or [low, high] with 0 < low <= high"),
    "data.aspect_range": (_ordered_pair, "[low, high] with 0 < low <= high"),
    "data.mean": (lambda v: _numbers(v, 3), "3 numbers (R, G, B)"),
    "data.std": (lambda v: _numbers(v, 3, 0.0) and 0 not in v, "3 numbers > 0 (R, G, B)"),
    "data.shuffle_buffer": _AT_LEAST_1,
    "train.epochs": _AT_LEAST_1,
    "train.steps_per_epoch": _AT_LEAST_1,
    "train.batch_size": _AT_LEAST_1,
    "train.base_lr": (lambda v: v > 0, "> 0"),
    "train.base_batch_size": _AT_LEAST_1,
    "train.lr_decay_epochs": (lambda v: _numbers(v, None, 0), "a list of epochs >= 0"),
    "train.lr_decay": (lambda v: v > 0, "> 0"),
    "train.warmup_epochs": _NON_NEGATIVE,
    "train.momentum": _FRACTION,
    "train.weight_decay": _NON_NEGATIVE,
    "train.pretrained_lr_mult": _NON_NEGATIVE,
    "train.label_smoothing": _FRACTION,
    "train.save_every_steps": _AT_LEAST_1,
    "train.validate_every_epochs": _AT_LEAST_1,
    "eval.num_clips": _AT_LEAST_1,
    "eval.batch_size": _AT_LEAST_1,
}
# Set through their own keys: as model.options they would reach the model twice.
_OWN_KEYS = {"num_classes": "model.num_classes", "input_shape": "model.crop_size", "dropout": "model.dropout"}


def _check_ranges(config):
    for key, (check, wanted) in RANGES.items():
        section, name = key.split(".")
        value = config[section][name]
        if value is not None and not check(value):
            raise ConfigError(f"config error: {key} must be {wanted}, got {value!r}")


def _check_model_options(model):
    accepted = models.backbone_options(model["name"]) - {"name", "synchronized_bn"}
    for key in model["options"]:
        if key in _OWN_KEYS:
            raise ConfigError(f"config error: model.options.{key} is set by {_OWN_KEYS[key]}, not model.options")
        if key not in accepted:
            close = difflib.get_close_matches(key, sorted(accepted), n=1)
            hint = f" (did you mean model.options.{close[0]}?)" if close else ""
            raise ConfigError(f"config error: unknown key model.options.{key} for {model['name']}{hint}")


def _check_data_source(data):
    """Packed records (`data.train`, `data.eval`) or a folder of videos (`data.videos`), not both."""
    if not data["train"] and not data["videos"]:
        raise ConfigError("config error: data.train (a glob of training TFRecords) or data.videos is required")
    if data["videos"] and (data["train"] or data["eval"]):
        raise ConfigError("config error: data.videos replaces data.train and data.eval: set one or the other")
    if data["validation_split"] and not data["videos"]:
        raise ConfigError("config error: data.validation_split goes with data.videos (records have data.eval)")
    if data["videos"] and data["reverse_pairs"]:
        raise ConfigError("config error: data.reverse_pairs needs packed records (data.train), not data.videos")


def has_validation(data):
    """Whether a config's data section validates: `data.eval` records, or a held-out part of `data.videos`.

    Args:
        data: the config's `data` section.
    """
    return bool(data["eval"] or (data["videos"] and data["validation_split"]))


def _validate(config, check_paths):
    model, data, train = config["model"], config["data"], config["train"]
    if model["name"] not in models.list_presets():
        raise ConfigError(f"config error: model.name must be one of {models.list_presets()}, got {model['name']!r}")
    _check_ranges(config)
    _check_model_options(model)
    if train["optimizer"] not in ("sgd", "adamw"):
        raise ConfigError(f"config error: train.optimizer must be 'sgd' or 'adamw', got {train['optimizer']!r}")
    if train["lr_schedule"] not in ("step", "cosine"):
        raise ConfigError(f"config error: train.lr_schedule must be 'step' or 'cosine', got {train['lr_schedule']!r}")
    if config["eval"]["num_crops"] not in NUM_CROPS:
        raise ConfigError(f"config error: eval.num_crops must be 1 or 3, got {config['eval']['num_crops']}")
    _check_data_source(data)
    if data["service"]:
        try:
            check_address(data["service"])
        except ValueError as error:
            raise ConfigError(f"config error: data.service: {error}") from None
    if check_paths:
        for key in ("data.train", "data.eval"):
            pattern = data[key.split(".")[1]]
            if pattern and not tf.io.gfile.glob(pattern):
                raise ConfigError(f"config error: {key} matches no files: {pattern}")
        if data["videos"] and not os.path.isdir(data["videos"]):
            raise ConfigError(f"config error: data.videos is not a folder: {data['videos']}")
        init = model["init"]
        if init and not (os.path.exists(init) or init in models.list_presets() or "://" in init):
            raise ConfigError(f"config error: model.init does not exist: {model['init']}")
