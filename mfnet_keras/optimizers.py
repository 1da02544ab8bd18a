"""SGD as the paper's PyTorch recipe uses it: coupled L2 weight decay and per-layer learning-rate multipliers."""

import keras
from keras import ops

from mfnet_keras.schedules import EpochSchedule


@keras.saving.register_keras_serializable(package="mfnet_keras")
class SGD(keras.optimizers.SGD):
    """`keras.optimizers.SGD` plus PyTorch-style weight decay and learning-rate multipliers.

    Args:
        l2: added to each gradient as `l2 * variable` before momentum, as
            PyTorch's `SGD(weight_decay=...)` does (Keras's `weight_decay` is
            decoupled instead, and ignores learning-rate multipliers).
        lr_multipliers: `{variable path prefix: multiplier}`; the longest
            matching prefix wins ("" matches everything). Fine-tuning from
            pretrained weights uses e.g. `{"": 0.2, "classifier": 1.0}`.
        Other arguments: as `keras.optimizers.SGD`.
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, l2=0.0, lr_multipliers=None, **kwargs):
        super().__init__(learning_rate=learning_rate, momentum=momentum, nesterov=nesterov, **kwargs)
        if l2 < 0:
            raise ValueError(f"`l2` must be >= 0. Received: l2={l2}")
        self.l2 = float(l2)
        self.lr_multipliers = dict(lr_multipliers or {})

    def multiplier(self, variable):
        """The learning-rate multiplier of a (Keras) variable: its longest matching prefix, else 1.0.

        Args:
            variable: a Keras variable.
        """
        matches = [p for p in self.lr_multipliers if variable.path.startswith(p)]
        return float(self.lr_multipliers[max(matches, key=len)]) if matches else 1.0

    def build(self, variables):
        super().build(variables)
        self._multipliers = [self.multiplier(v) for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        if self.l2:
            gradient = ops.add(gradient, ops.multiply(ops.cast(self.l2, variable.dtype), variable))
        # The backend may hand over its own variable type, so look the multiplier up by index.
        multiplier = self._multipliers[self._get_variable_index(variable)]
        if multiplier != 1.0:
            learning_rate = ops.multiply(learning_rate, ops.cast(multiplier, learning_rate.dtype))
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config.update(l2=self.l2, lr_multipliers=self.lr_multipliers)
        return config


def make_optimizer(config, steps_per_epoch, loaded_paths):
    """The optimizer of a training config: its SGD (or AdamW) on its learning-rate schedule, with the
    pretrained layers' multiplier on `loaded_paths` (weights loaded from `model.init`).

    Args:
        config: the training config (its `train` section).
        steps_per_epoch: training steps per epoch, for the schedule.
        loaded_paths: the weight paths loaded from `model.init`.
    """
    train = config["train"]
    lr = train["base_lr"] * train["batch_size"] / train["base_batch_size"]
    schedule = EpochSchedule(
        lr,
        steps_per_epoch,
        train["epochs"],
        kind=train["lr_schedule"],
        decay_epochs=train["lr_decay_epochs"],
        decay=train["lr_decay"],
        warmup_epochs=train["warmup_epochs"],
    )
    if train["optimizer"] == "adamw":
        return keras.optimizers.AdamW(schedule, weight_decay=train["weight_decay"])
    multipliers = {}
    if loaded_paths and train["pretrained_lr_mult"] != 1.0:
        multipliers = {path: train["pretrained_lr_mult"] for path in loaded_paths}
    return SGD(
        schedule,
        momentum=train["momentum"],
        nesterov=train["nesterov"],
        l2=train["weight_decay"],
        lr_multipliers=multipliers,
    )
