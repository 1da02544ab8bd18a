"""Preset folders written in keras-hub's layout: `save_backbone`, `save_task` and the folder's model card."""

import datetime
import os

import keras

from mfnet_keras.files import remove_empty_partial, replacing, save_model, write_json, write_text
from mfnet_keras.models.preset_checks import BACKBONE_WEIGHTS, HEAD_WEIGHTS, SHARDED_BACKBONE_WEIGHTS
from mfnet_keras.version import __version__


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
    """Writes a backbone's `config.json`, weights, `metadata.json` and `README.md` into `folder`.

    Args:
        backbone: the `Backbone` to save.
        folder: the preset folder (created if missing).
        max_shard_size: shard the weights into files of at most this many GB (None: one file).
    """
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
    `task.weights.h5` (Keras's `save_weights` of the head, as keras-hub writes it).

    Args:
        model: the classifier to save.
        folder: the preset folder (created if missing).
        max_shard_size: shard the weights into files of at most this many GB (None: one file).
    """
    save_backbone(model.backbone, folder, max_shard_size=max_shard_size)
    write_json(os.path.join(folder, "preprocessor.json"), keras.saving.serialize_keras_object(model.preprocessor))
    with replacing(os.path.join(folder, HEAD_WEIGHTS)) as tmp:
        model.save_task_weights(tmp)
    write_json(os.path.join(folder, "task.json"), keras.saving.serialize_keras_object(model))
    write_json(os.path.join(folder, "metadata.json"), _metadata(model))
    write_text(os.path.join(folder, "README.md"), model_card(model))
    remove_empty_partial(folder)


def model_card(model):
    """A short `README.md` for a preset folder: what it holds and how to load it.

    Args:
        model: the classifier or backbone the folder holds.
    """
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
    call = f"{type(model).__name__}.from_preset"
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
