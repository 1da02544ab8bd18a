"""The paper's model family and a registry of named variants."""

from mfnet_keras.models.mfnet import MFNet
from mfnet_keras.models.mobilenet_v2 import MobileNetV2
from mfnet_keras.models.registry import ModelSpec, build, get_spec, list_models
from mfnet_keras.models.resnet import ResNet

__all__ = ["MFNet", "MobileNetV2", "ModelSpec", "ResNet", "build", "get_spec", "list_models"]
