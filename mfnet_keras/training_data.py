"""The data side of a training run: its class names and size, the checks of a config against its
records, and its training and validation datasets (packed records, or a folder of videos), spread
over the strategy's replicas. `train` calls it."""

import sys

import tensorflow as tf

from mfnet_keras.config import ConfigError
from mfnet_keras.data import DataConfig, eval_dataset, records_info, train_dataset, video_dataset_from_directory
from mfnet_keras.data.directory import list_videos, split_subset
from mfnet_keras.strategy import is_tf_strategy
from tfrecords_tools import schema


def training_set(data, seed):
    """`(class names, training videos)`: from `labels.txt` and the manifest beside the records, or from
    the class folders of `data.videos` (less its validation part).

    Args:
        data: the config's `data` section.
        seed: the seed of the validation split of `data.videos`.
    """
    if not data["videos"]:
        return records_info(data["train"])

    paths, _, names = list_videos(data["videos"])
    subset = "training" if data["validation_split"] else None
    return names, len(split_subset([paths], data["validation_split"], subset, seed)[0])


def check_against_records(config, labels):
    """Sets `model.num_classes` from the class names (`labels.txt` or the class folders) when unset, refuses
    fewer classes than they name, and warns when the crop is larger than the stored frames (clips would be
    upscaled).

    Args:
        config: the training config (updated in place).
        labels: the class names the data holds.
    """

    classes, source = config["model"]["num_classes"], "the class folders" if config["data"]["videos"] else "labels.txt"
    if classes is None:
        if not labels:
            raise ConfigError("config error: model.num_classes is not set and there is no labels.txt beside data.train")
        config["model"]["num_classes"] = len(labels)
    elif labels and classes < len(labels):
        raise ConfigError(
            f"config error: model.num_classes must be >= the {len(labels)} classes of {source}, got {classes}"
        )
    if config["data"]["videos"]:
        return
    first = sorted(tf.io.gfile.glob(config["data"]["train"]))[0]
    for record in tf.data.TFRecordDataset(first).take(1):
        _, context = schema.parse_sequence_example(record)
        height, width = int(context[schema.HEIGHT]), int(context[schema.WIDTH])
        if 0 < min(height, width) < config["model"]["crop_size"]:
            print(
                f"warning: model.crop_size {config['model']['crop_size']} is larger than the stored frames "
                f"({width}x{height} in {first}): clips will be upscaled",
                file=sys.stderr,
            )


def reverse_labels(pairs, class_names, clip_length):
    """`make_dataset`'s `reverse_labels` for `data.reverse_pairs`, or None without pairs.

    For classes that are each other's time reversal (move left / move right,
    grow / shrink): the reversed clip of one is a genuine clip of the other.

    Args:
        pairs: `data.reverse_pairs`, pairs of class names.
        class_names: the class names, in label order.
        clip_length: frames per clip (a one-frame clip has no direction).
    """
    if not pairs:
        return None
    if clip_length < 2:
        raise ConfigError("config error: data.reverse_pairs needs clips of several frames (model.clip_length >= 2)")
    names = list(class_names or [])
    table = list(range(len(names)))
    for pair in pairs:
        if not isinstance(pair, list) or len(pair) != 2 or any(name not in names for name in pair):
            raise ConfigError(
                f"config error: data.reverse_pairs takes pairs of class names from labels.txt, got {pair!r}"
            )
        a, b = names.index(pair[0]), names.index(pair[1])
        table[a], table[b] = b, a
    return table


def make_datasets(config, strategy, position, counter, reverse=None):
    """Distributed train and validation datasets of the config.

    `position` is the `DataPosition` the endless train stream starts from and
    records its place in, `counter` the `BadDataCounter` of its dropped
    elements, `reverse` `reverse_labels`'s table.

    Args:
        config: the training config.
        strategy: the distribution strategy.
        position: the `DataPosition` of the train stream.
        counter: the `BadDataCounter` of the train stream.
        reverse: `reverse_labels`'s table (None: no reversal).
    """

    data, train = config["data"], config["train"]
    service = data["service"] or None
    data_config = DataConfig.from_config(config)
    if data["videos"]:
        return _video_folder_datasets(config, strategy, data_config)

    def train_fn(context):
        position.batches_per_step = context.num_replicas_in_sync // context.num_input_pipelines
        return train_dataset(
            data["train"],
            batch_size=context.get_per_replica_batch_size(train["batch_size"]),
            seed=train["seed"],
            input_context=context,
            config=data_config,
            bad_data_counter=counter,
            reverse_labels=reverse,
            position=None if service else position,  # workers elsewhere cannot record where the stream is
            data_service=service,
        )

    def eval_fn(context):
        return eval_dataset(
            data["eval"],
            batch_size=context.get_per_replica_batch_size(train["batch_size"]),
            input_context=context,
            config=data_config,
            return_video_index=False,
        )

    return _distribute(strategy, train_fn, eval_fn if data["eval"] else None)


def _distribute(strategy, train_fn, eval_fn):
    """`(train, validation or None)` datasets of functions of an input context, spread over the replicas."""

    if strategy.num_replicas_in_sync > 1 and is_tf_strategy(strategy):
        train_ds = strategy.distribute_datasets_from_function(train_fn)
        return train_ds, strategy.distribute_datasets_from_function(eval_fn) if eval_fn else None
    single = tf.distribute.InputContext()
    return train_fn(single), (eval_fn(single) if eval_fn else None)


def _video_folder_datasets(config, strategy, data_config):
    """`make_datasets` for `data.videos`: the folder's training and validation subsets, decoded as they run
    (each epoch starts the stream over: a resumed run does not see exactly the clips it would have)."""

    data, train = config["data"], config["train"]
    split = data["validation_split"] or None

    def subset_fn(subset):
        def make(context):
            batch = context.get_per_replica_batch_size(train["batch_size"])
            ds = video_dataset_from_directory(
                data["videos"],
                batch_size=batch,
                seed=train["seed"],
                validation_split=split,
                subset=subset,
                config=data_config,
            )
            return ds.repeat() if subset != "validation" else ds

        return make

    return _distribute(strategy, subset_fn("training" if split else None), subset_fn("validation") if split else None)
