"""`VideoClassifier`: a backbone with its preprocessing, pooling and classifier, as one Keras model."""

import keras
from keras import ops

from mfnet_keras.layers import walk_layers
from mfnet_keras.metrics import TopKAccuracy
from mfnet_keras.models import preset_loader, preset_registry, preset_saver
from mfnet_keras.models.backbone import Backbone
from mfnet_keras.models.preprocessor import VideoClassifierPreprocessor

POOLINGS = ("avg", "max")


@keras.saving.register_keras_serializable(package="mfnet_keras")
class MergeFrames(keras.layers.Layer):
    """`[batch, T, H, W, C]` → `[batch × T, H, W, C]`: a 2D backbone sees every frame as an image."""

    def call(self, clips):
        return ops.reshape(clips, (-1, *clips.shape[2:]))

    def compute_output_shape(self, input_shape):
        batch = None if input_shape[0] is None or input_shape[1] is None else input_shape[0] * input_shape[1]
        return (batch, *input_shape[2:])


@keras.saving.register_keras_serializable(package="mfnet_keras")
class SplitFrames(keras.layers.Layer):
    """`[batch × T, h, w, C]` → `[batch, T, h, w, C]`, undoing `MergeFrames`.

    Args:
        frames: T, the frames per clip.
        **kwargs: `keras.layers.Layer` arguments (name, dtype).
    """

    def __init__(self, frames, **kwargs):
        super().__init__(**kwargs)
        self.frames = frames

    def call(self, features):
        return ops.reshape(features, (-1, self.frames, *features.shape[1:]))

    def compute_output_shape(self, input_shape):
        return (None, self.frames, *input_shape[1:])

    def get_config(self):
        return {**super().get_config(), "frames": self.frames}


@keras.saving.register_keras_serializable(package="mfnet_keras")
class VideoClassifier(keras.Model):
    """Classifies raw RGB clips with any backbone of the family.

    `classifier(clips)` and `classifier.predict(clips)` take `[batch, T, H, W, 3]`
    clips, uint8 or float in [0, 255], of any H and W; the preprocessor inside
    resizes, centre-crops and normalises them as evaluation does. A 2D backbone
    runs on every frame and the features are averaged over the frames. Then
    global pooling, dropout and the `classifier` Dense layer (logits unless
    `activation`). Weight names are the backbone's plus `classifier/kernel` and
    `classifier/bias`: the released checkpoints' `classifier.weight` and `.bias`.

    Args:
        backbone: a `Backbone` (e.g. `MFNetBackbone`).
        num_classes: classifier outputs.
        preprocessor: a `VideoClassifierPreprocessor`; default: clips of the
            backbone's input size (one frame for a 2D backbone).
        class_names: a name per class, saved with the model (default "0", "1", …).
        pooling: "avg" or "max" over time and space.
        dropout: rate before the classifier.
        activation: of the classifier, e.g. "softmax" or `keras.activations.softmax`;
            None gives logits.
        head_dtype: dtype policy of the pooling and the classifier (default:
            the backbone's).

    Examples:
    >>> import numpy as np
    >>> from mfnet_keras.models import MFNetBackbone, VideoClassifier
    >>> backbone = MFNetBackbone(input_shape=(4, 32, 32, 3), stage_depths=(1, 1, 1, 1))
    >>> classifier = VideoClassifier(backbone, num_classes=3, class_names=["a", "b", "c"])
    >>> classifier.predict(np.zeros((2, 4, 40, 48, 3), "uint8"), verbose=0).shape
    (2, 3)
    """

    backbone_cls = Backbone
    preprocessor_cls = VideoClassifierPreprocessor

    def __init__(
        self,
        backbone,
        num_classes,
        preprocessor=None,
        class_names=None,
        pooling="avg",
        dropout=0.0,
        activation=None,
        head_dtype=None,
        **kwargs,
    ):
        if not (isinstance(num_classes, int) and num_classes >= 1):
            raise ValueError(f"`num_classes` must be a positive int. Received: num_classes={num_classes!r}")
        if pooling not in POOLINGS:
            raise ValueError(f"`pooling` must be one of {POOLINGS}. Received: pooling={pooling!r}")
        if not (isinstance(dropout, (int, float)) and 0 <= dropout < 1):
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")
        class_names = [str(i) for i in range(num_classes)] if class_names is None else [str(n) for n in class_names]
        if len(class_names) != num_classes:
            raise ValueError(
                f"`class_names` needs one name per class ({num_classes}). Received: {len(class_names)} names"
            )
        shape = tuple(backbone.input_shape[1:])
        two_d = len(shape) == 3
        if preprocessor is None:
            preprocessor = VideoClassifierPreprocessor(
                clip_length=1 if two_d else shape[0], crop_size=shape[-2] or 224, name="preprocessor"
            )
        frames = preprocessor.clip_length
        dtype = head_dtype or backbone.get_config().get("dtype")

        inputs = keras.Input((frames, None, None, 3), name="clips")
        x = preprocessor(inputs)
        if two_d:
            x = SplitFrames(frames, name="split_frames")(backbone(MergeFrames(name="merge_frames")(x)))
        else:
            x = backbone(x)
        pool = keras.layers.GlobalAveragePooling3D if pooling == "avg" else keras.layers.GlobalMaxPooling3D
        x = pool(name="pool", dtype=dtype)(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name="dropout", dtype=dtype)(x)
        activation = None if activation is None else keras.activations.serialize(keras.activations.get(activation))
        outputs = keras.layers.Dense(num_classes, activation=activation, name="classifier", dtype=dtype)(x)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.backbone, self.preprocessor = backbone, preprocessor
        self.num_classes, self.class_names = num_classes, class_names
        self.pooling, self.dropout, self.activation, self.head_dtype = pooling, dropout, activation, head_dtype

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "preprocessor": keras.saving.serialize_keras_object(self.preprocessor),
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "pooling": self.pooling,
            "dropout": self.dropout,
            "activation": self.activation,
            "head_dtype": self.head_dtype,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        config["preprocessor"] = keras.saving.deserialize_keras_object(config["preprocessor"])
        return cls(**config)

    @property
    def outputs_probabilities(self):
        """Whether the classifier ends in a softmax (then the default loss is not on logits)."""
        return self.activation == "softmax"  # the activation is kept serialised: a callable softmax is "softmax"

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """Keras `compile` with defaults for fine-tuning.

        Args:
            optimizer: `"auto"` is AdamW at 1e-4.
            loss: `"auto"` is sparse cross-entropy on the logits (on the probabilities with a softmax
                `activation`).
            metrics: `"auto"` is accuracy, and top-5 accuracy over more than 5 classes.
            **kwargs: the rest of Keras's `compile` arguments.
        """
        if optimizer == "auto":
            optimizer = keras.optimizers.AdamW(1e-4)
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=not self.outputs_probabilities)
        if metrics == "auto":
            metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
            if self.num_classes > 5:
                metrics.append(TopKAccuracy(5, name="top5"))  # on float16/bfloat16 logits too
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def compile_from_config(self, config):
        """Recompiles a loaded `.keras` file with its saved optimizer, loss and metrics (Keras skips
        models that override `compile` unless they define this).

        Args:
            config: the compile config saved in the `.keras` file.
        """
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    @preset_registry.classproperty
    def presets(cls):
        """Every registered preset name: each builds a classifier (an architecture's from scratch)."""
        return preset_registry.list_presets()

    @classmethod
    def from_preset(cls, preset, num_classes=None, class_names=None, load_weights=True, **kwargs):
        """A classifier from a preset: a registered name (`VideoClassifier.presets`), a preset folder,
        a `.pth` checkpoint, an `http(s)://` URL (`sha256=` to verify), `hf://` or `kaggle://`.

        Args:
            preset: the handle.
            num_classes: a number other than the preset's replaces the classifier (random) and keeps
                the rest.
            class_names: one name per class; by default the preset's, where its classifier is kept.
            load_weights: False builds the architecture with random weights.
            **kwargs: `clip_length`, `crop_size`, `mean`, `std`, `frame_interval` (the preprocessor),
                `dropout`, `pooling`, `activation`, `sha256`, and backbone arguments (`dtype`,
                `synchronized_bn`, `num_fibers`, ...).

        Examples:
        >>> from mfnet_keras.models import VideoClassifier
        >>> model = VideoClassifier.from_preset("mfnet3d", num_classes=5, clip_length=8, crop_size=112)
        >>> model.output_shape
        (None, 5)
        """
        return preset_loader.load_task(
            cls, preset, num_classes=num_classes, class_names=class_names, load_weights=load_weights, **kwargs
        )

    def save_to_preset(self, preset_dir, max_shard_size=None):
        """Writes a preset folder in keras-hub's layout: `config.json` and `model.weights.h5` (the
        backbone; with `max_shard_size` in GB, `model.weights.json` and its shards), `task.json`,
        `task.weights.h5` (the head), `preprocessor.json`, `metadata.json` and a `README.md` model card.

        Args:
            preset_dir: the folder (created).
            max_shard_size: split the backbone's weights into files of at most this many GB.

        Examples:
        >>> import tempfile
        >>> from mfnet_keras.models import VideoClassifier
        >>> model = VideoClassifier.from_preset("mfnet2d", num_classes=3, crop_size=64)
        >>> folder = tempfile.mkdtemp()
        >>> model.save_to_preset(folder)
        >>> VideoClassifier.from_preset(folder).num_classes
        3
        """
        preset_saver.save_task(self, preset_dir, max_shard_size=max_shard_size)

    # keras-hub's task-weights protocol: the head is what is not in the backbone.

    def has_task_weights(self):
        """Whether the classifier has weights outside its backbone (it always does: the classifier)."""
        inside = {id(w) for w in self.backbone.weights}
        return any(id(w) not in inside for w in self.weights)

    def save_task_weights(self, filepath):
        """Saves the weights outside the backbone with `keras.saving.save_weights`, as keras-hub does.

        Args:
            filepath: a `.weights.h5` file.
        """
        if not str(filepath).endswith(".weights.h5"):
            raise ValueError(f"The file name must end in `.weights.h5`. Received: filepath={filepath}")
        keras.saving.save_weights(self, filepath, objects_to_skip=self._backbone_layers())

    def load_task_weights(self, filepath):
        """Loads weights saved by `save_task_weights` (keras-hub's `Task.load_task_weights` call).

        Args:
            filepath: a `.weights.h5` file written by `save_task_weights`.
        """
        if not str(filepath).endswith(".weights.h5"):
            raise ValueError(f"The file name must end in `.weights.h5`. Received: filepath={filepath}")
        keras.saving.load_weights(self, filepath, objects_to_skip=self._backbone_layers())

    def _backbone_layers(self):
        return [self.backbone, *walk_layers(self.backbone)]


preset_registry.register_task(VideoClassifier)  # the task `.pth` checkpoints are read into
