"""Reading a preset folder that someone else may have written: every file checked, one line per problem.

A preset folder holds `config.json` (the backbone), `model.weights.h5`, and for
a classifier `task.json`, `task.weights.h5` and `preprocessor.json`, with
`metadata.json`. Each JSON file must be an object of the expected shape, and
each class it names must be one of this package's: nothing is imported by the
module name a file gives, and nested Keras objects are not deserialised. A
problem is a `PresetError` naming the file and what is wrong with it.
"""

import contextlib
import dataclasses
import json
import os

from mfnet_keras.errors import MFNetError

BACKBONE_WEIGHTS = "model.weights.h5"
SHARDED_BACKBONE_WEIGHTS = "model.weights.json"
HEAD_WEIGHTS = "task.weights.h5"
# The files a preset folder may hold: what hub downloads fetch, and no more.
PRESET_FILES = ("config.json", "model.weights.h5", "metadata.json", "task.json", "task.weights.h5", "preprocessor.json")
PRESET_PATTERNS = ("*.json", "*.weights.h5", "README.md")
TASK_CLASSES = ("VideoClassifier",)
PREPROCESSOR_CLASSES = ("VideoClassifierPreprocessor",)
# Types of the classifier's own settings in task.json (other keys are left alone).
HEAD_TYPES = {
    "name": (str,),
    "num_classes": (int,),
    "class_names": (list, type(None)),
    "pooling": (str,),
    "dropout": (int, float),
    "activation": (str, type(None)),
    "head_dtype": (str, type(None)),
}
METADATA_TYPES = {
    "keras_version": (str,),
    "keras_hub_version": (str, type(None)),
    "mfnet_keras_version": (str,),
    "parameter_count": (int,),
    "date": (str,),
}
_DTYPE_POLICIES = ("DTypePolicy", "FloatDTypePolicy")


class PresetError(MFNetError, ValueError):
    """A handle that cannot be loaded: one line saying why.

    Exit code 1 at the command lines: the model file or preset itself is refused (damaged, unsafe or
    of another layout), which no change of the command's options mends.
    """

    exit_code = 1


@dataclasses.dataclass(frozen=True)
class PresetParts:
    """What a model is built from: a registry entry's, a preset folder's or a checkpoint's settings.

    Args:
        backbone_class: the registered backbone class's name.
        backbone_config: its constructor arguments (`input_shape` included).
        preprocessor_config: the preprocessor's (clip length, crop size, normalisation, ...).
        head_config: the classifier's (`num_classes`, `class_names`, ...), or None for a backbone alone.
        source: the file they were read from, named in errors; None for a registry entry.
    """

    backbone_class: str
    backbone_config: dict
    preprocessor_config: dict
    head_config: dict | None = None
    source: str | None = None


def read_json(folder, name):
    """The JSON object in `folder/name`, or None when there is no such file.

    Args:
        folder: the preset folder.
        name: the file's name in it.
    """
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (ValueError, UnicodeDecodeError) as error:  # json.JSONDecodeError is a ValueError
        raise PresetError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise PresetError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def _plain(path, where, config):
    """`config` with a saved dtype policy turned back into its name; any other nested object is refused."""
    config = dict(config)
    for key, value in config.items():
        if isinstance(value, dict):
            if key == "dtype" and value.get("class_name") in _DTYPE_POLICIES and isinstance(value.get("config"), dict):
                config[key] = value["config"].get("name")
                continue
            raise PresetError(f"{path}: {where}config[{key!r}] is an object; only plain values are read")
    return config


def serialized_object(path, data, classes, where="", nested=False):
    """`(class_name, config)` of a serialised Keras object in a preset file, checked against `classes`;
    its config may hold objects only with `nested` (a task's backbone and preprocessor, checked apart).

    Args:
        path: the file, named in errors.
        data: its parsed JSON object.
        classes: the class names it may name.
        where: the key path inside the file, named in errors.
        nested: allow serialised objects inside the config.
    """
    if not isinstance(data, dict):
        raise PresetError(f"{path}: {where}expected an object, found {type(data).__name__}")
    for key in ("class_name", "config"):
        if key not in data:
            raise PresetError(f"{path}: {where}missing key {key!r}")
    name, config = data["class_name"], data["config"]
    if not (isinstance(name, str) and name in classes):
        raise PresetError(f"{path}: {where}class_name {name!r} is not one of this package's {sorted(classes)}")
    if not isinstance(config, dict):
        raise PresetError(f"{path}: {where}'config' must be an object, found {type(config).__name__}")
    return name, dict(config) if nested else _plain(path, where, config)


def _check_types(path, data, types, where=""):
    for key, allowed in types.items():
        value = data.get(key)
        if key in data and (not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed)):
            expected = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
            raise PresetError(f"{path}: {where}{key!r} must be {expected}, found {json.dumps(value)[:60]}")


def clip_size(input_shape):
    """The preprocessor's clip length and crop size for a backbone input shape (a 2D backbone: one frame).

    Args:
        input_shape: the backbone's input shape.
    """
    return {"clip_length": 1 if len(input_shape) == 3 else input_shape[0], "crop_size": input_shape[-2]}


def _task_parts(folder, task, backbone_classes):
    path = os.path.join(folder, "task.json")
    _, config = serialized_object(path, task, TASK_CLASSES, nested=True)
    for key in ("backbone", "preprocessor", "num_classes"):
        if key not in config:
            raise PresetError(f"{path}: config is missing key {key!r}")
    backbone = serialized_object(path, config.pop("backbone"), backbone_classes, "config['backbone']: ")
    _, pre = serialized_object(path, config.pop("preprocessor"), PREPROCESSOR_CLASSES, "config['preprocessor']: ")
    _check_types(path, config, HEAD_TYPES, "config: ")
    if config.get("class_names") is not None and not all(isinstance(n, str) for n in config["class_names"]):
        raise PresetError(f"{path}: config: 'class_names' must be a list of strings")
    return PresetParts(*backbone, pre, config, path)


def folder_parts(folder, backbone_classes):
    """The `PresetParts` of a preset folder, every JSON file in it checked; `backbone_classes` are the class names it may name.
    A classifier's parts come from `task.json`, a backbone's from `config.json` and `preprocessor.json`.

    Args:
        folder: the preset folder.
        backbone_classes: the backbone class names it may name.
    """
    metadata = read_json(folder, "metadata.json")
    if metadata is not None:
        _check_types(os.path.join(folder, "metadata.json"), metadata, METADATA_TYPES)
    path = os.path.join(folder, "config.json")
    backbone = read_json(folder, "config.json")
    if backbone is None:
        raise PresetError(f"{folder}: not a preset folder (no config.json)")
    class_name, config = serialized_object(path, backbone, backbone_classes)
    shape = config.get("input_shape")
    if not (isinstance(shape, list) and len(shape) in (3, 4)):
        raise PresetError(f"{path}: config['input_shape'] must be a list of 3 or 4 sizes, found {shape!r}")
    pre_path = os.path.join(folder, "preprocessor.json")
    pre = read_json(folder, "preprocessor.json")
    pre = clip_size(shape) if pre is None else serialized_object(pre_path, pre, PREPROCESSOR_CLASSES)[1]
    task = read_json(folder, "task.json")
    if task is not None:
        return _task_parts(folder, task, backbone_classes)
    return PresetParts(class_name, config, pre, None, path)


@contextlib.contextmanager
def blaming(source):
    """Turns an error while building from (or loading) a preset file into one `PresetError` line naming
    the file; without a `source` (a registered preset) errors pass unchanged.

    Args:
        source: the preset file being read (None: a registered preset).
    """
    try:
        yield
    except PresetError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OSError) as error:
        if source is None:
            raise
        text = " ".join(str(error).split()) or type(error).__name__
        raise PresetError(f"{source}: {text[:300]}") from None
