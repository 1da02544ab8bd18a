"""Named model variants: `build(name, ...)` and `list_models()`."""

import dataclasses
import inspect

from mfnet_keras import weights as weights_lib
from mfnet_keras.models.mfnet import MFNet
from mfnet_keras.models.mobilenet_v2 import MobileNetV2
from mfnet_keras.models.resnet import ResNet


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A registered variant: its class, design arguments and the paper's figures."""

    name: str
    cls: type
    design: dict
    input_shape: tuple
    num_classes: int
    paper_params: float
    paper_flops: float
    description: str
    note: str = ""


_IMAGE = (224, 224, 3)
_SPECS = (
    ModelSpec("mfnet3d", MFNet, {}, (16, 224, 224, 3), 400, 8.0e6, 11.1e9, "MF-Net 3D, Table 2"),
    ModelSpec("mfnet2d", MFNet, {}, _IMAGE, 1000, 5.8e6, 861e6, "MF-Net 2D (N=16), Table 2"),
    ModelSpec(
        "mfnet2d_n12",
        MFNet,
        {"num_fibers": 12, "stem_filters": 12, "stage_filters": (96, 180, 360, 720)},
        _IMAGE,
        1000,
        5.9e6,
        895e6,
        "MF-Net 2D, N=12",
        "our widths: stem 12, stages 96/180/360/720 (multiples of 12)",
    ),
    ModelSpec(
        "mfnet2d_n24",
        MFNet,
        {"num_fibers": 24, "stem_filters": 24, "stage_filters": (120, 192, 432, 840)},
        _IMAGE,
        1000,
        5.8e6,
        897e6,
        "MF-Net 2D, N=24",
        "our widths: stem 24, stages 120/192/432/840 (multiples of 24)",
    ),
    ModelSpec(
        "mfnet2d_no_mux",
        MFNet,
        {"multiplexer": False},
        _IMAGE,
        1000,
        4.5e6,
        600e6,
        "MF-Net 2D without multiplexers",
    ),
    ModelSpec(
        "mfnet2d_no_mux_deeper_wider",
        MFNet,
        {"multiplexer": False, "stage_filters": (112, 224, 448, 896), "stage_depths": (3, 4, 8, 3)},
        _IMAGE,
        1000,
        6.4e6,
        897e6,
        "MF-Net 2D without multiplexers, deeper & wider",
        "our design: stages 112/224/448/896 channels, 3/4/8/3 units",
    ),
    ModelSpec("resnet18", ResNet, {"block": "basic"}, _IMAGE, 1000, 11.7e6, 1.8e9, "ResNet-18"),
    ModelSpec(
        "resnet18_mf",
        ResNet,
        {"block": "multi_fiber", "stage_filters": (176, 336, 672, 1280), "num_fibers": 16},
        _IMAGE,
        1000,
        9.6e6,
        1.6e9,
        "ResNet-18, MF embedded",
        "our design: MF units (N=16) of 176/336/672/1280 channels in ResNet-18's 2/2/2/2 layout",
    ),
    ModelSpec(
        "mobilenet_v2_1.4",
        MobileNetV2,
        {"alpha": 1.4},
        _IMAGE,
        1000,
        6.9e6,
        585e6,
        "MobileNet-v2 (1.4)",
        "paper's 6.9 M is from the MobileNet-v2 paper; the standard architecture has 6.11 M",
    ),
    ModelSpec(
        "mobilenet_v2_1.4_mf",
        MobileNetV2,
        {"alpha": 1.4, "multi_fiber": True},
        _IMAGE,
        1000,
        6.0e6,
        578e6,
        "MobileNet-v2 (1.4), MF embedded",
        "our design: multiplexer per block, 2-fiber projections, 4-fiber last conv; 13% < baseline",
    ),
    ModelSpec(
        "resnext26_8x16d",
        ResNet,
        {
            "block": "bottleneck",
            "stage_filters": (64, 128, 256, 512),
            "bottleneck_filters": (128, 256, 512, 1024),
            "cardinality": 8,
        },
        _IMAGE,
        1000,
        6.3e6,
        1.1e9,
        "ResNeXt-26 (8x16d)",
        "our design: 2/2/2/2 bottlenecks, 8 groups of 16 channels in stage 1, doubling",
    ),
)
_REGISTRY = {spec.name: spec for spec in _SPECS}


def list_models():
    """Names of every registered variant, in the paper's order."""
    return list(_REGISTRY)


def get_spec(name):
    """The `ModelSpec` of a registered variant."""
    if name not in _REGISTRY:
        raise ValueError(f"Unknown model name; expected one of {list_models()}. Received: name={name!r}")
    return _REGISTRY[name]


def accepted_options(name):
    """The constructor arguments a registered variant takes as `build` options."""
    return set(inspect.signature(get_spec(name).cls.__init__).parameters) - {"self", "kwargs"}


def build(name, num_classes=None, input_shape=None, weights=None, **options):
    """Builds a registered variant.

    Args:
        name: one of `list_models()`.
        num_classes: classifier size; defaults to the paper's (400 or 1000), or
            to the checkpoint's when `weights` is given.
        input_shape: e.g. `(8, 112, 112, 3)`; defaults to the paper's.
        weights: a local weights file: a released PyTorch checkpoint (`.pth`,
            see `mfnet_keras.weights.PRESETS`), `.keras` or `.weights.h5`.
            When `num_classes` differs from the checkpoint's, the classifier
            keeps its random initialisation (fine-tuning on other classes).
        **options: constructor arguments of the variant's class, e.g.
            `num_fibers`, `multiplexer`, `dropout`, `include_top`, `pooling`,
            `synchronized_bn`, `dtype`.
    """
    spec = get_spec(name)
    accepted = accepted_options(name)
    for key in options:
        if key not in accepted:
            raise ValueError(
                f"Unknown option for model {name!r}; expected some of {sorted(accepted)}. "
                f"Received: {key}={options[key]!r}"
            )
    state = None
    if weights is not None and str(weights).endswith(".pth"):
        state = weights_lib.read_torch_state_dict(weights)
        if num_classes is None and "classifier.weight" in state:
            num_classes = state["classifier.weight"].shape[0]
    kwargs = {
        **spec.design,
        "num_classes": spec.num_classes if num_classes is None else num_classes,
        "input_shape": spec.input_shape if input_shape is None else tuple(input_shape),
        "name": name,
        **options,
    }
    model = spec.cls(**kwargs)
    if state is not None:
        weights_lib.load_state_dict(model, state, skip_classifier=not weights_lib.classifier_matches(model, state))
    elif weights is not None:
        weights_lib.initialize(model, str(weights))
    return model
