"""Backbones of the paper's model family, the video classifier task and the preset table."""

from mfnet_keras.models.base import Backbone
from mfnet_keras.models.mfnet import MFNetBackbone
from mfnet_keras.models.mobilenet_v2 import MobileNetV2Backbone
from mfnet_keras.models.preprocessor import VideoClassifierPreprocessor
from mfnet_keras.models.presets import PresetError, backbone_options, get_preset, list_presets, register_preset
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
    """A classifier from a `.keras` file (uncompiled) or any `VideoClassifier.from_preset` handle."""
    import keras

    if str(path).endswith(".keras"):
        return keras.saving.load_model(path, compile=False)
    return VideoClassifier.from_preset(path)
