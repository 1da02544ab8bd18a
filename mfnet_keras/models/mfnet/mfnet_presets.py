"""MF-Net presets: the paper's architectures (Table 2) and the released checkpoints (cypw/PyTorch-MFNet).

An architecture entry names its backbone arguments, the paper's input size,
classes and figures; a release entry names the architecture it holds and adds
its checkpoint, preprocessing and class names (in the checkpoint's label order).
The checkpoints' Google Drive links are dead: a release loads from a local
`.pth` or a mirror registered with its URL and sha256.
"""

from mfnet_keras.defaults import FRAME_INTERVAL, VIDEO_MEAN, VIDEO_STD

_VIDEO = {"mean": VIDEO_MEAN, "std": VIDEO_STD, "frame_interval": FRAME_INTERVAL}
_IMAGE = {"input_shape": (224, 224, 3), "num_classes": 1000}

backbone_presets = {
    # Architectures (the paper's Table 2); no weights.
    "mfnet3d": {
        "args": {},
        "input_shape": (16, 224, 224, 3),
        "num_classes": 400,
        "paper": {"params": 8.0e6, "flops": 11.1e9},
        "description": "MF-Net 3D, Table 2",
    },
    "mfnet2d": {
        "args": {},
        **_IMAGE,
        "paper": {"params": 5.8e6, "flops": 861e6},
        "description": "MF-Net 2D (N=16), Table 2",
    },
    "mfnet2d_n12": {
        "args": {"num_fibers": 12, "stem_filters": 12, "stage_filters": (96, 180, 360, 720)},
        **_IMAGE,
        "paper": {"params": 5.9e6, "flops": 895e6},
        "description": "MF-Net 2D, N=12",
        "note": "our widths: stem 12, stages 96/180/360/720 (multiples of 12)",
    },
    "mfnet2d_n24": {
        "args": {"num_fibers": 24, "stem_filters": 24, "stage_filters": (120, 192, 432, 840)},
        **_IMAGE,
        "paper": {"params": 5.8e6, "flops": 897e6},
        "description": "MF-Net 2D, N=24",
        "note": "our widths: stem 24, stages 120/192/432/840 (multiples of 24)",
    },
    "mfnet2d_no_mux": {
        "args": {"multiplexer": False},
        **_IMAGE,
        "paper": {"params": 4.5e6, "flops": 600e6},
        "description": "MF-Net 2D without multiplexers",
    },
    "mfnet2d_no_mux_deeper_wider": {
        "args": {"multiplexer": False, "stage_filters": (112, 224, 448, 896), "stage_depths": (3, 4, 8, 3)},
        **_IMAGE,
        "paper": {"params": 6.4e6, "flops": 897e6},
        "description": "MF-Net 2D without multiplexers, deeper & wider",
        "note": "our design: stages 112/224/448/896 channels, 3/4/8/3 units",
    },
    # The released checkpoints.
    "mfnet2d_imagenet1k": {
        "architecture": "mfnet2d",
        "checkpoint": {"file_name": "MFNet2D_ImageNet1k-0000.pth", "url": None, "sha256": None},
        # Trained on RGB in [0, 255] as (x - [124, 117, 104]) × 0.0167: the same map for [0, 1] input.
        "preprocessing": {"mean": (124 / 255, 117 / 255, 104 / 255), "std": (1 / (0.0167 * 255),) * 3},
        "description": "MF-Net 2D trained on ImageNet-1k",
    },
    "mfnet3d_kinetics400": {
        "architecture": "mfnet3d",
        "checkpoint": {"file_name": "MFNet3D_Kinetics-400_72.8.pth", "url": None, "sha256": None},
        "preprocessing": _VIDEO,
        "class_names": "kinetics400",
        "description": "MF-Net 3D on Kinetics-400: 72.8 % top-1 on val",
    },
    "mfnet3d_ucf101_split1": {
        "architecture": "mfnet3d",
        "num_classes": 101,
        "checkpoint": {"file_name": "MFNet3D_UCF-101_Split-1_96.3.pth", "url": None, "sha256": None},
        "preprocessing": _VIDEO,
        "class_names": "ucf101",
        "description": "MF-Net 3D fine-tuned from Kinetics-400: 96.3 % on UCF-101 split 1",
    },
    "mfnet3d_hmdb51_split1": {
        "architecture": "mfnet3d",
        "num_classes": 51,
        "checkpoint": {"file_name": "MFNet3D_HMDB51_Split-1_74.6.pth", "url": None, "sha256": None},
        "preprocessing": _VIDEO,
        "class_names": "hmdb51",
        "description": "MF-Net 3D fine-tuned from Kinetics-400: 74.6 % on HMDB51 split 1",
        "note": "the file name is our guess: pass --preset mfnet3d_hmdb51_split1 to convert if yours differs",
    },
}
