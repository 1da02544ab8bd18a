"""The registry of named presets, filled by each family's table, and the Keras classes presets name.

Each family registers its table (`models/<family>/<family>_presets.py`) with
`register_presets`; the task registers itself with `register_task`. Classes are
found through Keras's registry: this module imports no model.
"""

import inspect
import os

import keras

from mfnet_keras.models.preset_checks import PresetError, PresetParts, clip_size

_PRESETS = {}
# Set by registration: the task class (a backbone read from a `.pth` comes out of one), and the
# architecture a `.pth` whose file name is no release's is read as.
_REGISTERED = {"task": None, "checkpoint_architecture": None}


class classproperty(property):  # noqa: N801 (named like `property`)
    """A read-only property of a class (`VideoClassifier.presets`)."""

    def __get__(self, instance, owner):
        return self.fget(owner)


def register_task(task_cls):
    """Registers the task class that `.pth` checkpoints are read into (a backbone's too).

    Args:
        task_cls: the classifier class (`VideoClassifier`).
    """
    _REGISTERED["task"] = task_cls


def task_class():
    """The registered task class (`register_task`)."""
    if _REGISTERED["task"] is None:
        raise PresetError("no task class is registered: import mfnet_keras.models")
    return _REGISTERED["task"]


def checkpoint_architecture():
    """The architecture a `.pth` file whose name is no registered release's is read as."""
    return _REGISTERED["checkpoint_architecture"]


def register_presets(presets, backbone_cls, checkpoint_architecture=None):
    """Registers a family's table `{name: entry}`; architecture entries get `backbone_cls` as their backbone.

    Args:
        presets: `{name: entry}`, architectures (`backbone` args, `input_shape`, ...) and releases
            (`architecture`, `checkpoint`, `class_names`, ...).
        backbone_cls: the family's backbone class.
        checkpoint_architecture: the architecture a `.pth` file whose name is no release's is read as.
    """
    if checkpoint_architecture is not None:
        _REGISTERED["checkpoint_architecture"] = checkpoint_architecture
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

    Args:
        name: the preset's name.
        **entry: its fields: `architecture` (a registered name whose fields it takes), or `backbone` and
            `config`; a release's `checkpoint`, `class_names`, `preprocessing`, `description`.
    """
    if "architecture" in entry and entry["architecture"] not in _PRESETS:
        raise ValueError(
            f"Unknown architecture {entry['architecture']!r}; expected one of {list_presets(releases=False)}"
        )
    if "architecture" not in entry and "backbone" not in entry:
        raise ValueError(f"A preset needs an `architecture` or a `backbone`. Received: {sorted(entry)}")
    _PRESETS[name] = entry


def unregister_preset(name):
    """Removes a preset `register_preset` added (an unknown name is a `PresetError`).

    Args:
        name: a name that `register_preset` added.
    """
    if name not in _PRESETS:
        raise PresetError(f"Unknown preset {name!r}")
    del _PRESETS[name]


def list_presets(architectures=True, releases=True, backbone_cls=None):
    """Registered names, in the order they were registered; with `backbone_cls`, those whose
    backbone is that class (or a subclass).

    Examples:
    >>> "mfnet3d_kinetics400" in list_presets(architectures=False)
    True

    Args:
        architectures: include the architectures (no weights).
        releases: include the releases (weights from a checkpoint).
        backbone_cls: only presets whose backbone is this class or a subclass.
    """
    names = []
    for name, entry in _PRESETS.items():
        if not (releases if "architecture" in entry else architectures):
            continue
        if backbone_cls is not None:
            found = registered_class(get_preset(name)["backbone"])
            if found is None or not issubclass(found, backbone_cls):
                continue
        names.append(name)
    return names


def get_preset(name):
    """A preset's entry with its architecture's fields filled in.

    Args:
        name: a registered name.
    """
    if name not in _PRESETS:
        raise PresetError(f"Unknown preset {name!r}; expected one of {list_presets()}, a preset folder or a URL")
    entry = dict(_PRESETS[name])
    if "architecture" in entry:
        entry = {**_PRESETS[entry["architecture"]], **entry}
    entry.setdefault("note", "")
    return {"name": name, **entry}


def registered_class(name):
    """This package's Keras class registered as `mfnet_keras>{name}`, or None.

    Args:
        name: the class's registered name.
    """
    return keras.saving.get_custom_objects().get(f"mfnet_keras>{name}")


def backbone_classes(base):
    """`{class name: class}` of this package's registered Keras classes that subclass `base`.

    Args:
        base: the base class (e.g. `Backbone`).
    """
    found = {}
    for key, cls in keras.saving.get_custom_objects().items():
        if key.startswith("mfnet_keras>") and isinstance(cls, type) and issubclass(cls, base):
            found[cls.__name__] = cls
    return found


def backbone_arguments(cls):
    return set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs", "input_shape"}


def backbone_options(name):
    """The backbone arguments a registered preset accepts as options (besides `input_shape`).

    Args:
        name: a registered preset.
    """
    return backbone_arguments(registered_class(get_preset(name)["backbone"]))


def find_release(path):
    """The registered release whose checkpoint file name is the basename of `path`, or None.

    Args:
        path: a checkpoint file.
    """
    base = os.path.basename(path)
    for name, entry in _PRESETS.items():
        if entry.get("checkpoint", {}).get("file_name") == base:
            return name
    return None


def class_names_of(entry):
    """The class names of a release entry (a packaged list), or None.

    Args:
        entry: a registry entry.
    """
    names = entry.get("class_names")
    if names is None or isinstance(names, (list, tuple)):
        return names
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "class_names", f"{names}.txt")
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def entry_parts(entry):
    """The `PresetParts` of a table entry (no source file: errors building it are not a file's).

    Args:
        entry: a registry entry, as `get_preset` returns it.
    """
    shape = entry["input_shape"]
    pre = {**clip_size(shape), **entry.get("preprocessing", {})}
    head = {"name": entry["name"], "num_classes": entry["num_classes"], "class_names": class_names_of(entry)}
    return PresetParts(entry["backbone"], {**entry["args"], "input_shape": shape}, pre, head)
