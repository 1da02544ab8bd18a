"""ResNet-18, ResNet-18 with multi-fiber units, ResNeXt-26 (the paper's Table 1)."""

from mfnet_keras.models.preset_registry import register_presets
from mfnet_keras.models.resnet.resnet_backbone import ResNetBackbone
from mfnet_keras.models.resnet.resnet_presets import backbone_presets

register_presets(backbone_presets, ResNetBackbone)

__all__ = ["ResNetBackbone"]
