"""The paper's model family and a registry of named variants."""

from mfnet_keras.models.mfnet import MFNet
from mfnet_keras.models.mobilenet_v2 import MobileNetV2
from mfnet_keras.models.registry import ModelSpec, accepted_options, build, get_spec, list_models
from mfnet_keras.models.resnet import ResNet

__all__ = [
    "MFNet",
    "MobileNetV2",
    "ModelSpec",
    "ResNet",
    "accepted_options",
    "build",
    "get_spec",
    "list_models",
    "load_model",
]


def load_model(path):
    """A `.keras` file of this project's models, uncompiled; importing this package registered their classes."""
    import keras

    return keras.saving.load_model(path, compile=False)
