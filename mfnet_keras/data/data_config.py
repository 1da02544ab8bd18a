"""`DataConfig`: every option of the clip pipeline in one frozen dataclass, its defaults written once.

`train_dataset`, `eval_dataset`, `video_dataset_from_directory` and the YAML
config (`DataConfig.from_config`) read their options from it; keyword options
given to a builder replace fields of the config it is given (or of the
defaults). What is not configuration (seeds, counters, positions, input
contexts) stays an argument of the builders.

Examples:
>>> config = DataConfig(clip_length=8, crop_size=112)
>>> config.train_scale_range, config.eval_side
((112, 144), 128)
>>> config.updated("train_dataset", DataConfig.TRAIN, flip=False).flip
False
"""

import dataclasses

from mfnet_keras.defaults import HLS_JITTER, check_num_crops, default_short_side
from tfrecords_tools import schema


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """The options of the clip pipeline.

    Args:
        clip_length: frames per clip.
        frame_intervals: train: the interval is drawn from this list per clip
            (the official Kinetics recipe: `(1, 2, 2, 3)`); eval uses the first.
        crop_size: clip height and width.
        speed_jitter: train: the interval is multiplied by U(1 - j, 1 + j).
        scale_range: train: the short side is rescaled to U(low, high) before
            cropping; None: `crop_size × (1, 288/224)`, i.e. (224, 288) at 224.
        aspect_range: train: aspect-ratio jitter (log-uniform).
        flip: train: random horizontal flip of the whole clip.
        color_jitter: train: max (hue, lightness, saturation) offsets in HLS
            space (OpenCV scales), or None.
        eval_short_side: eval: the short side is resized to this; None:
            `crop_size × 256/224`, i.e. 256 at 224 (pass the model's `preprocessor.short_side`).
        num_clips, num_crops: eval views per video (crops: 1 = centre,
            3 = start/centre/end of the long side).
        dtype: of the clips: "float32", "bfloat16" or "float16".
        num_classes: labels outside `[0, num_classes)` are bad data.
        multi_label: multi-hot float labels of `num_classes` (DMVR multi-label
            records); otherwise a record's first label is used, and training
            counts records with several as bad data.
        image_key, label_key: feature keys (DMVR / Model Garden records may differ).
        shuffle_buffer: train: after the order of the files is shuffled, each
            block of this many records is permuted, then a buffer of as many
            mixes across blocks (up to twice this many records are held).
        skip_bad: eval: skip bad records instead of failing (train always drops and counts).
        return_video_index: eval: add the video index (for per-video averaging).
        drop_remainder: None: True for train, False for eval.
    """

    clip_length: int = 16
    frame_intervals: tuple = (2,)
    crop_size: int = 224
    speed_jitter: float = 0.0
    scale_range: tuple | None = None
    aspect_range: tuple = (0.8, 1.25)
    flip: bool = True
    color_jitter: tuple | None = HLS_JITTER
    eval_short_side: int | None = None
    num_clips: int = 1
    num_crops: int = 1
    dtype: str = "float32"
    num_classes: int | None = None
    multi_label: bool = False
    image_key: str = schema.IMAGE
    label_key: str = schema.LABEL_INDEX
    shuffle_buffer: int = 256
    skip_bad: bool = False
    return_video_index: bool = True
    drop_remainder: bool | None = None

    # The fields each kind of builder takes (the others do not apply to it).
    COMMON = ("clip_length", "frame_intervals", "crop_size", "dtype", "num_classes", "multi_label")
    COMMON += ("image_key", "label_key", "drop_remainder")
    AUGMENTATION = ("speed_jitter", "scale_range", "aspect_range", "flip", "color_jitter")
    TRAIN = (*COMMON, *AUGMENTATION, "shuffle_buffer")
    EVAL = (*COMMON, "eval_short_side", "num_clips", "num_crops", "skip_bad", "return_video_index")

    def __post_init__(self):
        for name in ("frame_intervals", "scale_range", "aspect_range", "color_jitter"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(value))
        intervals = self.frame_intervals
        if not intervals or any(i < 1 for i in intervals):
            raise ValueError(f"`frame_intervals` must be positive. Received: frame_intervals={intervals!r}")
        check_num_crops(self.num_crops)
        if self.multi_label and not self.num_classes:
            raise ValueError("`multi_label=True` needs `num_classes`. Received: num_classes=None")

    @property
    def train_scale_range(self):
        """`scale_range`, or its default for the crop size."""
        return self.scale_range or (self.crop_size, round(self.crop_size * 288 / 224))

    @property
    def eval_side(self):
        """`eval_short_side`, or its default for the crop size."""
        return self.eval_short_side or default_short_side(self.crop_size)

    def updated(self, builder, fields, **options):
        """This config with `options` (of `fields`) replaced; an option not in `fields` is the `TypeError` a
        keyword argument `builder` does not take would be.

        Args:
            builder: the function the options were given to, named in the error.
            fields: the option names that `builder` takes.
            **options: the values to replace.
        """
        for name in options:
            if name not in fields:
                raise TypeError(f"{builder}() got an unexpected keyword argument {name!r}")
        return dataclasses.replace(self, **options) if options else self

    def options(self):
        """The fields as a dict, the scale range and evaluation short side resolved (the pipeline's functions
        read them so, inside `tf.function`s)."""
        options = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        return {**options, "scale_range": self.train_scale_range, "eval_short_side": self.eval_side}

    @classmethod
    def calibration(cls, preprocessor):
        """Clips cut as `preprocessor`'s model sees them (short side at its own, a crop of its size, no
        augmentation), in the order of the records: what int8 export calibrates on.

        Args:
            preprocessor: the model's `VideoClassifierPreprocessor`.
        """
        side = preprocessor.short_side
        return cls(
            clip_length=preprocessor.clip_length,
            frame_intervals=(preprocessor.frame_interval,),
            crop_size=preprocessor.crop_size,
            scale_range=(side, side),
            aspect_range=(1.0, 1.0),
            flip=False,
            color_jitter=None,
        )

    @classmethod
    def from_config(cls, config):
        """The pipeline options of a training config (`mfnet_keras.config.load_config`): the model's clip
        size and the `data` section's sampling and augmentation."""
        data, model = config["data"], config["model"]
        return cls(
            clip_length=model["clip_length"],
            crop_size=model["crop_size"],
            frame_intervals=tuple(data["frame_intervals"]),
            speed_jitter=data["speed_jitter"],
            flip=data["flip"],
            color_jitter=tuple(data["color_jitter"]) or None,
            scale_range=tuple(data["scale_range"]) or None,
            aspect_range=tuple(data["aspect_range"]),
            num_classes=model["num_classes"],
            multi_label=data["multi_label"],
            shuffle_buffer=data["shuffle_buffer"],
        )
