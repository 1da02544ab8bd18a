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


def loss_and_metrics(config):
    """`(loss on logits, metrics)`; the first metric picks the best checkpoint.

    Single-label: softmax cross-entropy, accuracy and top-5 (on logits of any dtype). With
    `data.multi_label`: sigmoid cross-entropy on multi-hot targets and the
    area under each class's precision-recall curve, averaged (`pr_auc`, what
    `evaluate`'s exact mean average precision measures).

    Args:
        config: the training config (its `data.multi_label` and `model.num_classes`).
    """
    classes, smoothing = config["model"]["num_classes"], config["train"]["label_smoothing"]
    if config["data"]["multi_label"]:
        loss = keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=smoothing)
        auc = keras.metrics.AUC(curve="PR", multi_label=True, num_labels=classes, from_logits=True, name="pr_auc")
        return loss, [auc]
    metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    if classes > 5:
        metrics.append(TopKAccuracy(5, name="top5"))
    if not smoothing:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics
    categorical = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=smoothing)

    def smoothed(y_true, y_pred):
        return categorical(keras.ops.one_hot(keras.ops.cast(y_true, "int32"), classes), y_pred)

    return smoothed, metrics
