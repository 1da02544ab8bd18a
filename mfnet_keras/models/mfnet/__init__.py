"""MF-Net, 3D and 2D: the paper's network and its released checkpoints."""

from mfnet_keras.models.mfnet.mfnet_backbone import MFNetBackbone
from mfnet_keras.models.mfnet.mfnet_presets import backbone_presets
from mfnet_keras.models.preset_utils import register_presets

register_presets(backbone_presets, MFNetBackbone)

__all__ = ["MFNetBackbone"]
