"""MF-Net, 3D and 2D: the paper's network and its released checkpoints."""

from mfnet_keras.models.mfnet.mfnet_backbone import MFNetBackbone
from mfnet_keras.models.mfnet.mfnet_presets import backbone_presets
from mfnet_keras.models.preset_registry import register_presets

# A `.pth` file whose name is no release's is read as the paper's 3D network.
register_presets(backbone_presets, MFNetBackbone, checkpoint_architecture="mfnet3d")

__all__ = ["MFNetBackbone"]
