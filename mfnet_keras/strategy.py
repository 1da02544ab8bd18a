"""Picks how training spreads over the machine: a tf.distribute strategy on TensorFlow (TPU, several
workers, several GPUs, or the default), Keras's `DataParallel` distribution over JAX's devices, one device
on PyTorch."""

import contextlib
import json
import os

import keras
import tensorflow as tf


class KerasDistribution:
    """What training needs of a tf.distribute strategy on the JAX and PyTorch backends.

    `scope()` sets Keras's `DataParallel` distribution over `devices` (JAX, more
    than one device) for the block and restores the caller's afterwards; the
    training data stay one global batch per step, which Keras shards.

    Args:
        devices: the devices to train on (default: every device of the backend).
    """

    def __init__(self, devices=None):
        self.devices = list(devices or [])
        self.num_replicas_in_sync = max(1, len(self.devices))

    @contextlib.contextmanager
    def scope(self):
        if self.num_replicas_in_sync == 1:
            yield
            return
        before = keras.distribution.distribution()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=self.devices))
        try:
            yield
        finally:
            keras.distribution.set_distribution(before)


def is_tf_strategy(strategy):
    """Whether `strategy` is a `tf.distribute` strategy (not a `KerasDistribution`).

    Args:
        strategy: the training strategy.
    """
    return not isinstance(strategy, KerasDistribution)


def cpu_has_bfloat16():
    """Whether this CPU has bfloat16 arithmetic (x86 AVX512_BF16 or AMX, Arm BF16), from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = {flag for line in f if line.startswith(("flags", "Features")) for flag in line.split()}
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def mixed_policy(strategy):
    """The mixed-precision policy for this machine: float16 on GPUs, bfloat16 on TPUs and on CPUs that
    have bfloat16 instructions, float16 on other CPUs.

    Args:
        strategy: the training strategy (its devices decide).
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        if isinstance(strategy, tf.distribute.TPUStrategy):
            return "mixed_bfloat16"
        gpu = bool(tf.config.list_logical_devices("GPU"))
    elif backend == "jax":
        import jax

        if jax.default_backend() == "tpu":
            return "mixed_bfloat16"
        gpu = jax.default_backend() in ("gpu", "cuda", "rocm")
    else:
        import torch

        gpu = torch.cuda.is_available()
    return "mixed_bfloat16" if not gpu and cpu_has_bfloat16() else "mixed_float16"


def choose_strategy(verbose=True):
    """On TensorFlow: `TPUStrategy` on a TPU runtime, `MultiWorkerMirroredStrategy` when `TF_CONFIG` names
    several workers, `MirroredStrategy` over all visible GPUs when there are several, else the default
    strategy. On JAX: `DataParallel` over every device when there are several (`KerasDistribution`). On
    PyTorch: one device (Keras has no multi-device `fit` there; see docs/performance.md, "Keras backends").

    Args:
        verbose: print which strategy was chosen.
    """
    if keras.backend.backend() != "tensorflow":
        devices = keras.distribution.list_devices() if keras.backend.backend() == "jax" else []
        strategy = KerasDistribution(devices if len(devices) > 1 else None)
        if verbose:
            kind = "DataParallel" if strategy.num_replicas_in_sync > 1 else "one device"
            print(f"strategy: {kind} ({keras.backend.backend()}), {strategy.num_replicas_in_sync} replica(s)")
        return strategy
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


def worker_role():
    """`(index, is_chief)` of this process in a `TF_CONFIG` cluster; `(0, True)` without one.

    Worker 0 is the chief (there is no separate "chief" task in our clusters):
    only it writes checkpoints, logs and the final model.
    """
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    index = int(task.get("index", 0))
    return index, task.get("type", "worker") == "chief" or (task.get("type", "worker") == "worker" and index == 0)


def is_multi_worker(strategy):
    """Whether `strategy` runs on several workers (`MultiWorkerMirroredStrategy` with more than one).

    Args:
        strategy: the training strategy.
    """
    if not is_tf_strategy(strategy):
        return False
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    return sum(len(cluster.get(job, [])) for job in ("chief", "worker")) > 1


def enable_multi_worker_fit(model):
    """Lets `model.fit` / `evaluate` run under `MultiWorkerMirroredStrategy` in Keras 3 (keras-team/keras#20585).

    Keras fails there twice: before the first step it all-reduces a data batch
    eagerly just to learn its shapes (`Attempt to convert a value (PerReplica…)`),
    and after each step it reduces every logged scalar with `axis=0`. This
    instance-level patch takes the shapes from the local replica's batch, and
    gives each logged value a leading axis of 1 so that the reduction averages
    it over the workers into a scalar. Only the model passed in is changed.

    Args:
        model: the compiled model, built in the strategy's scope.
    """
    symbolic_build = model._maybe_symbolic_build
    train_step, test_step = model.train_step, model.test_step

    def local_symbolic_build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, batches in iterator:
                batch = next(batches)
                break
            strategy = model.distribute_strategy
            data_batch = keras.tree.map_structure(lambda v: strategy.experimental_local_results(v)[0], batch)
        return symbolic_build(iterator=None, data_batch=data_batch)

    def with_leading_axis(step):
        def wrapped(data):
            return keras.tree.map_structure(lambda v: tf.expand_dims(v, 0), step(data))

        return wrapped

    model._maybe_symbolic_build = local_symbolic_build
    model.train_step = with_leading_axis(train_step)
    model.test_step = with_leading_axis(test_step)
    return model
