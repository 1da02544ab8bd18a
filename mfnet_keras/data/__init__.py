"""The tf.data video pipeline: records written by `tfrecords_tools.pack` (or DMVR / Model Garden) → clips.

In parts, as Model Garden splits a decoder from a parser:
- `records`: reading files and records, parsing, bad-data accounting;
- `sampling`: which frames a clip takes, seeds, resumable positions;
- `augment`: crops, flips, colour jitter, evaluation views;
- `data_config`: `DataConfig`, every option of the pipeline, its defaults written once;
- `datasets`: `train_dataset`, `eval_dataset` and `make_dataset`, which picks one by `split`
  (and `calibration_dataset`, the clips int8 export calibrates on);
- `directory`: `video_dataset_from_directory`, clips decoded from a folder of videos without packing.
"""

from mfnet_keras.data.augment import decode_centre_clip
from mfnet_keras.data.data_config import DataConfig
from mfnet_keras.data.datasets import calibration_dataset, eval_dataset, make_dataset, train_dataset
from mfnet_keras.data.directory import video_dataset_from_directory
from mfnet_keras.data.records import BadDataCounter, BadDataLogger, read_labels, records_info
from mfnet_keras.data.sampling import DataPosition, sample_eval_indices, sample_train_indices
from mfnet_keras.defaults import HLS_JITTER

__all__ = [
    "HLS_JITTER",
    "BadDataCounter",
    "BadDataLogger",
    "DataConfig",
    "DataPosition",
    "calibration_dataset",
    "decode_centre_clip",
    "eval_dataset",
    "make_dataset",
    "read_labels",
    "records_info",
    "sample_eval_indices",
    "sample_train_indices",
    "train_dataset",
    "video_dataset_from_directory",
]
