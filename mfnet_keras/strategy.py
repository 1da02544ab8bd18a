"""Picks the tf.distribute strategy for the machine: TPU, several workers, several GPUs, or the default."""

import json
import os


def choose_strategy(verbose=True):
    """`TPUStrategy` on a TPU runtime, `MultiWorkerMirroredStrategy` when `TF_CONFIG` names several
    workers, `MirroredStrategy` over all visible GPUs when there are several, else the default strategy."""
    import tensorflow as tf

    name = "default"
    if os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR"):
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        strategy, name = tf.distribute.TPUStrategy(resolver), "TPUStrategy"
    elif len(json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {}).get("worker", [])) > 1:
        strategy, name = tf.distribute.MultiWorkerMirroredStrategy(), "MultiWorkerMirroredStrategy"
    elif len(tf.config.list_logical_devices("GPU")) > 1:
        strategy, name = tf.distribute.MirroredStrategy(), "MirroredStrategy"
    else:
        strategy = tf.distribute.get_strategy()
    if verbose:
        print(f"strategy: {name}, {strategy.num_replicas_in_sync} replica(s)")
    return strategy
