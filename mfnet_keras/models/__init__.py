"""The model families (a folder each: backbone, preset table), the video classifier task and presets.

Importing this package registers the Keras classes (so `.keras` files load) and every family's presets.
"""

import re
import zipfile

import keras

from mfnet_keras.models.backbone import Backbone
from mfnet_keras.models.mfnet import MFNetBackbone
from mfnet_keras.models.mobilenet_v2 import MobileNetV2Backbone
from mfnet_keras.models.preprocessor import VideoClassifierPreprocessor
from mfnet_keras.models.preset_checks import PresetError
from mfnet_keras.models.preset_registry import backbone_options, get_preset, list_presets, register_preset
from mfnet_keras.models.resnet import ResNetBackbone
from mfnet_keras.models.video_classifier import VideoClassifier

__all__ = [
    "Backbone",
    "MFNetBackbone",
    "MobileNetV2Backbone",
    "PresetError",
    "ResNetBackbone",
    "VideoClassifier",
    "VideoClassifierPreprocessor",
    "backbone_options",
    "get_preset",
    "list_presets",
    "load_model",
    "register_preset",
]


def load_model(path):
    """A classifier from a `.keras` file (uncompiled, in Keras's safe mode) or any
    `VideoClassifier.from_preset` handle; a file Keras refuses is one `PresetError` line.

    Examples:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "model.keras")
    >>> VideoClassifier.from_preset("mfnet2d", num_classes=3, crop_size=32).save(path)
    >>> load_model(path).num_classes
    3

    Args:
        path: a `.keras` file, or a `VideoClassifier.from_preset` handle.
    """
    if not str(path).endswith(".keras"):
        return VideoClassifier.from_preset(path)
    if not zipfile.is_zipfile(path):
        raise PresetError(f"{path}: not a .keras file (not a zip archive)")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises ValueError, TypeError and others for a file it refuses
        text = " ".join(str(error).split())
        unknown = re.search(r"Could not locate (?:class|function) '[^']+'", text)
        if unknown:
            reason = f"{unknown.group(0)} (neither Keras's nor this package's)"
        elif "`Lambda` layer" in text and "safe_mode" in text:
            reason = "holds a `Lambda` layer (Python code), which Keras's safe mode refuses to load"
        else:
            reason = text.split(". ")[0][:300] or type(error).__name__
        raise PresetError(f"{path}: {reason}") from None
