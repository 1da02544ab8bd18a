"""The tf.data video pipeline: records written by `tfrecords_tools.pack` (or DMVR / Model Garden) → clips."""

from mfnet_keras.data.pipeline import (
    HLS_JITTER,
    BadDataCounter,
    BadDataLogger,
    DataPosition,
    make_dataset,
    sample_eval_indices,
    sample_train_indices,
)

__all__ = [
    "HLS_JITTER",
    "BadDataCounter",
    "BadDataLogger",
    "DataPosition",
    "make_dataset",
    "sample_eval_indices",
    "sample_train_indices",
]
