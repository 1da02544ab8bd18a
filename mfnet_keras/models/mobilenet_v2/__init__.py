"""MobileNet-v2 and its multi-fiber version (the paper's Table 1)."""

from mfnet_keras.models.mobilenet_v2.mobilenet_v2_backbone import MobileNetV2Backbone
from mfnet_keras.models.mobilenet_v2.mobilenet_v2_presets import backbone_presets
from mfnet_keras.models.preset_registry import register_presets

register_presets(backbone_presets, MobileNetV2Backbone)

__all__ = ["MobileNetV2Backbone"]
