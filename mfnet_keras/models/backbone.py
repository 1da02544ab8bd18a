"""`Backbone`: the base class of the family's feature extractors, and the checks they share."""

import keras

from mfnet_keras.models import preset_loader, preset_registry, preset_saver


class Backbone(keras.Model):
    """A functional feature extractor that remembers its constructor arguments.

    Subclasses build their graph in `__init__` and pass every constructor
    argument to `_init_model`; `get_config` returns exactly those, so
    `cls.from_config(backbone.get_config())` rebuilds the same architecture.
    The output is the last feature map; `pyramid_outputs` maps `"P2"`…`"P5"`
    to the output of the stage at spatial stride 2**k (for MF-Net and ResNet
    the stages conv2…conv5, P5 being the output), for feature extraction:
    `keras.Model(backbone.inputs, backbone.pyramid_outputs)`.

    Examples:
    >>> from mfnet_keras.models import MFNetBackbone
    >>> backbone = MFNetBackbone(input_shape=(4, 32, 32, 3), stage_depths=(1, 1, 1, 1))
    >>> backbone.output_shape
    (None, 2, 1, 1, 768)
    >>> sorted(backbone.pyramid_outputs)
    ['P2', 'P3', 'P4', 'P5']
    """

    def _init_model(self, inputs, outputs, pyramid, name, init_args, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self._init_args = dict(init_args)
        self.pyramid_outputs = dict(pyramid)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, **self._init_args}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @preset_registry.classproperty
    def presets(cls):
        """The registered preset names whose backbone is this class (all of them for `Backbone`)."""
        return preset_registry.list_presets(backbone_cls=cls)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """The backbone of a preset: a registered name (`cls.presets`), a preset folder, a `.pth`,
        an `http(s)://`, `hf://` or `kaggle://` handle.

        Args:
            preset: the handle.
            load_weights: False builds the architecture with random weights.
            **kwargs: constructor arguments that override the preset's (e.g. `input_shape`, `dtype`).

        Examples:
        >>> from mfnet_keras.models import MFNetBackbone
        >>> backbone = MFNetBackbone.from_preset("mfnet2d", input_shape=(64, 64, 3))
        >>> backbone.output_shape
        (None, 2, 2, 768)
        """
        return preset_loader.load_backbone(cls, Backbone, preset, load_weights=load_weights, **kwargs)

    def save_to_preset(self, preset_dir, max_shard_size=None):
        """Writes `config.json`, `model.weights.h5`, `metadata.json` and a `README.md` model card.

        Args:
            preset_dir: the folder (created).
            max_shard_size: split the weights into files of at most this many GB.
        """
        preset_saver.save_backbone(self, preset_dir, max_shard_size=max_shard_size)


def constructor_args(local_variables):
    """A model constructor's arguments, from its `locals()` at the top of `__init__`.

    Args:
        local_variables: `locals()` at the top of the constructor.
    """
    return {k: v for k, v in local_variables.items() if k not in ("self", "kwargs", "name", "__class__")}


def check_input_shape(input_shape, ranks):
    """Validates a backbone's `input_shape`; returns it as a tuple.

    Args:
        input_shape: the shape given to the backbone.
        ranks: the ranks allowed (3 for images, 4 for clips).
    """
    shape = tuple(input_shape) if isinstance(input_shape, (list, tuple)) else None
    if shape is None or len(shape) not in ranks or shape[-1] is None:
        dims = " or ".join(f"{r}" for r in ranks)
        raise ValueError(
            f"`input_shape` must have {dims} entries (frames/height/width..., channels) "
            f"with known channels. Received: input_shape={input_shape!r}"
        )
    if any(d is not None and (not isinstance(d, int) or d < 1) for d in shape):
        raise ValueError(f"`input_shape` entries must be positive ints or None. Received: input_shape={input_shape!r}")
    return shape


class Pyramid(dict):
    """Stage outputs keyed `P{level}`, the level being log2 of the spatial stride so far."""

    def __init__(self):
        super().__init__()
        self.level = 0

    def downsample(self, strides):
        """Counts a stage's spatial stride (an int, or `(t, h, w)` for clips).

        Args:
            strides: the stage's strides, an int or `(t, h, w)`.
        """
        spatial = strides[-1] if isinstance(strides, (list, tuple)) else strides
        self.level += {1: 0, 2: 1}[spatial]

    def record(self, x):
        """Keeps `x` as the output of the current level (`P2` and up).

        Args:
            x: a stage's output.
        """
        if self.level >= 2:
            self[f"P{self.level}"] = x
