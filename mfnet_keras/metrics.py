"""Metrics that hold under every dtype policy."""

import keras


@keras.saving.register_keras_serializable(package="mfnet_keras")
class TopKAccuracy(keras.metrics.SparseTopKCategoricalAccuracy):
    """`SparseTopKCategoricalAccuracy` on logits of any float dtype.

    TensorFlow's `in_top_k` takes float32 predictions only, so Keras's metric
    fails on the float16 or bfloat16 logits of a `mixed_*` model; this one
    casts them to float32 first.

    Examples:
    >>> metric = TopKAccuracy(k=2, name="top2")
    >>> metric.update_state([1, 0], keras.ops.cast([[0.1, 0.9, 0.0], [0.1, 0.2, 0.7]], "bfloat16"))
    >>> float(metric.result())
    0.5
    """

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(y_true, keras.ops.cast(y_pred, "float32"), sample_weight)
