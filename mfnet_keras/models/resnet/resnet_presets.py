"""ResNet-18, its multi-fiber version and ResNeXt-26: the paper's Table 1 image baselines (no weights)."""

_IMAGE = {"input_shape": (224, 224, 3), "num_classes": 1000}

backbone_presets = {
    "resnet18": {
        "args": {"block": "basic"},
        **_IMAGE,
        "paper": {"params": 11.7e6, "flops": 1.8e9},
        "description": "ResNet-18",
    },
    "resnet18_mf": {
        "args": {"block": "multi_fiber", "stage_filters": (176, 336, 672, 1280), "num_fibers": 16},
        **_IMAGE,
        "paper": {"params": 9.6e6, "flops": 1.6e9},
        "description": "ResNet-18, MF embedded",
        "note": "our design: MF units (N=16) of 176/336/672/1280 channels in ResNet-18's 2/2/2/2 layout",
    },
    "resnext26_8x16d": {
        "args": {
            "block": "bottleneck",
            "stage_filters": (64, 128, 256, 512),
            "bottleneck_filters": (128, 256, 512, 1024),
            "cardinality": 8,
        },
        **_IMAGE,
        "paper": {"params": 6.3e6, "flops": 1.1e9},
        "description": "ResNeXt-26 (8x16d)",
        "note": "our design: 2/2/2/2 bottlenecks, 8 groups of 16 channels in stage 1, doubling",
    },
}
