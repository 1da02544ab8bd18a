"""Learning-rate schedules of the paper's recipes, per epoch, with linear warm-up."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mfnet_keras")
class EpochSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up, then step decay (× `decay` at each of `decay_epochs`) or cosine decay to 0.

    Args:
        base_lr: learning rate after warm-up.
        steps_per_epoch: optimizer steps in one epoch.
        epochs: total epochs (for cosine).
        kind: "step" or "cosine".
        decay_epochs, decay: step decay.
        warmup_epochs: epochs of linear warm-up from 0 (may be fractional).
    """

    def __init__(self, base_lr, steps_per_epoch, epochs, kind="step", decay_epochs=(), decay=0.1, warmup_epochs=0.0):
        self.base_lr = float(base_lr)
        self.steps_per_epoch = int(steps_per_epoch)
        self.epochs = int(epochs)
        self.kind = kind
        self.decay_epochs = [float(e) for e in decay_epochs]
        self.decay = float(decay)
        self.warmup_epochs = float(warmup_epochs)

    def __call__(self, step):
        epoch = ops.cast(step, "float32") / float(self.steps_per_epoch)
        if self.kind == "cosine":
            span = max(float(self.epochs) - self.warmup_epochs, 1e-8)
            progress = ops.clip((epoch - self.warmup_epochs) / span, 0.0, 1.0)
            lr = 0.5 * self.base_lr * (1.0 + ops.cos(math.pi * progress))
        else:
            passed = sum(ops.cast(epoch >= e, "float32") for e in self.decay_epochs) if self.decay_epochs else 0.0
            lr = self.base_lr * ops.power(self.decay, passed)
        if self.warmup_epochs > 0:
            lr = lr * ops.minimum(1.0, (epoch + 1.0 / self.steps_per_epoch) / self.warmup_epochs)
        return lr

    def get_config(self):
        return {
            "base_lr": self.base_lr,
            "steps_per_epoch": self.steps_per_epoch,
            "epochs": self.epochs,
            "kind": self.kind,
            "decay_epochs": self.decay_epochs,
            "decay": self.decay,
            "warmup_epochs": self.warmup_epochs,
        }
