"""BatchNorm that trains on the backend's fused kernel when Keras runs on PyTorch or TensorFlow."""

import keras

from mfnet_keras.layers import backend_ops


@keras.saving.register_keras_serializable(package="mfnet_keras")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` with the same name, arguments, weights and numbers.

    On the PyTorch and TensorFlow backends, training over the last axis (the
    only case the models use) runs as the backend's fused batch-norm kernel,
    forward and backward (`torch.native_batch_norm`, `FusedBatchNormV3`),
    instead of Keras's separate mean, square, subtract, multiply and add ops.
    Synchronised BatchNorm and every other case, and the JAX backend, are
    Keras's own code. It keeps Keras's class name because Keras
    names a model's layers in its weights files after their classes
    (`layers/batch_normalization_1/...`): files saved before this class
    existed, or with Keras's layer, load either way.

    Examples:
    >>> import numpy as np
    >>> bn = BatchNormalization(epsilon=1e-5, momentum=0.9)
    >>> y = bn(np.arange(8, dtype="float32").reshape(4, 2), training=True)
    >>> keras.ops.convert_to_numpy(y)[:, 0].astype("float64").round(3).tolist()
    [-1.342, -0.447, 0.447, 1.342]
    >>> keras.ops.convert_to_numpy(bn.moving_mean).astype("float64").round(3).tolist()  # 0.9 * 0 + 0.1 * batch mean
    [0.3, 0.4]
    """

    def build(self, input_shape):
        super().build(input_shape)
        self._backend = backend_ops.current()

    def fuses(self, inputs, training=None, mask=None):
        """Whether this call runs the backend's fused kernel (see the class docstring).

        Args:
            inputs: the call's input.
            training: the call's training flag.
            mask: the call's mask (a masked call never fuses).
        """
        return (
            self._backend.FUSED_BATCH_NORM
            and training
            and self.trainable
            and mask is None
            and self.center
            and self.scale
            and not self.renorm
            and not self.synchronized
            and self.axis in (-1, len(inputs.shape) - 1)
        )

    def call(self, inputs, training=None, mask=None):
        if not self.fuses(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        return self.train_fused(inputs)

    def train_fused(self, inputs, relu=False):
        """Training-mode output, ReLU applied when `relu`, moving statistics updated; needs `fuses`.

        Args:
            inputs: the input, channels last.
            relu: apply a ReLU after the normalisation.
        """
        backend = self._backend
        outputs, mean, variance = backend.batch_norm(inputs, self.gamma.value, self.beta.value, self.epsilon, relu)
        for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
            moving.assign(backend.moving_average(moving.value, batch, self.momentum))
        return outputs
