"""MobileNet-v2 (1.4) and its multi-fiber version: the paper's Table 1 baselines (no weights)."""

_IMAGE = {"input_shape": (224, 224, 3), "num_classes": 1000}

backbone_presets = {
    "mobilenet_v2_1.4": {
        "args": {"alpha": 1.4},
        **_IMAGE,
        "paper": {"params": 6.9e6, "flops": 585e6},
        "description": "MobileNet-v2 (1.4)",
        "note": "paper's 6.9 M is from the MobileNet-v2 paper; the standard architecture has 6.11 M",
    },
    "mobilenet_v2_1.4_mf": {
        "args": {"alpha": 1.4, "multi_fiber": True},
        **_IMAGE,
        "paper": {"params": 6.0e6, "flops": 578e6},
        "description": "MobileNet-v2 (1.4), MF embedded",
        "note": "our design: multiplexer per block, 2-fiber projections, 4-fiber last conv; 13% < baseline",
    },
}
