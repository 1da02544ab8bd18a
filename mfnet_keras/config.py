"""Training configs: YAML files checked against one schema of defaults, with `--set key=value` overrides.

Every key has a default here; a config file or override may only set keys
that exist, with a value of the default's type. Problems raise `ConfigError`
with one line naming the key, before anything starts.
"""

import copy
import difflib
import os

import yaml

SCHEMA = {
    "model": {
        "name": "mfnet3d",  # a name from mfnet_keras.models.list_models()
        "num_classes": None,  # None: the number of lines of labels.txt beside the training records
        "clip_length": 16,  # frames per clip (1 for a 2D model: one frame)
        "crop_size": 224,
        "dropout": 0.0,
        "options": {},  # more models.build() options, e.g. {num_fibers: 16}
        "init": None,  # initial weights: .keras / .weights.h5 / .pth
        "inflate": False,  # `init` is a 2D model to inflate into this 3D one
        "skip_classifier": False,  # do not load the classifier from `init` (other classes)
        "zero_init_residual": False,  # from scratch: residual branches start at zero (weights.zero_init_residual)
    },
    "data": {
        "train": "",  # glob of training TFRecords (required)
        "eval": "",  # glob of evaluation TFRecords ("" = no validation)
        "frame_intervals": [2],
        "speed_jitter": 0.0,
        "flip": True,
        "reverse_pairs": [],  # [[a, b], ...]: a clip of class a played backwards is one of b (and b's of a)
        "color_jitter": [15, 35, 25],  # [] = off
        "scale_range": [],  # [] = crop_size x [1, 288/224]
        "aspect_range": [0.8, 1.25],
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "shuffle_buffer": 256,
        "multi_label": False,  # records with several labels train on all (multi-hot, sigmoid); else on the first
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


class ConfigError(ValueError):
    """A config problem; the message is one line naming the key."""


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
        if isinstance(default, dict) and default and isinstance(value, dict):
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
    """`a.b=value` → `{"a": {"b": value}}`, the value read as YAML (`3`, `0.1`, `[1, 2]`, `true`)."""
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


def load_config(path=None, overrides=(), check_paths=True):
    """The full config: defaults, then the YAML file, then `key=value` overrides; validated."""
    config = copy.deepcopy(SCHEMA)
    if path:
        if not os.path.exists(path):
            raise ConfigError(f"config error: config file {path} does not exist")
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


def _validate(config, check_paths):
    from mfnet_keras import models

    model, data, train = config["model"], config["data"], config["train"]
    if model["name"] not in models.list_models():
        raise ConfigError(f"config error: model.name must be one of {models.list_models()}, got {model['name']!r}")
    positive = [
        ("model.clip_length", model["clip_length"]),
        ("model.crop_size", model["crop_size"]),
        ("train.epochs", train["epochs"]),
        ("train.batch_size", train["batch_size"]),
        ("train.save_every_steps", train["save_every_steps"]),
        ("eval.num_clips", config["eval"]["num_clips"]),
        ("eval.batch_size", config["eval"]["batch_size"]),
    ]
    for key, value in positive:
        if value < 1:
            raise ConfigError(f"config error: {key} must be >= 1, got {value}")
    if train["optimizer"] not in ("sgd", "adamw"):
        raise ConfigError(f"config error: train.optimizer must be 'sgd' or 'adamw', got {train['optimizer']!r}")
    if train["lr_schedule"] not in ("step", "cosine"):
        raise ConfigError(f"config error: train.lr_schedule must be 'step' or 'cosine', got {train['lr_schedule']!r}")
    if config["eval"]["num_crops"] not in (1, 3):
        raise ConfigError(f"config error: eval.num_crops must be 1 or 3, got {config['eval']['num_crops']}")
    if not data["train"]:
        raise ConfigError("config error: data.train is required (a glob of training TFRecords)")
    if check_paths:
        import tensorflow as tf

        for key in ("data.train", "data.eval"):
            pattern = data[key.split(".")[1]]
            if pattern and not tf.io.gfile.glob(pattern):
                raise ConfigError(f"config error: {key} matches no files: {pattern}")
        if model["init"] and not os.path.exists(model["init"]):
            raise ConfigError(f"config error: model.init does not exist: {model['init']}")
