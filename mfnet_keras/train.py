"""Trains a model of the family on packed TFRecords, or on a folder of videos, with `model.fit`.

    mfnet-train --config NAME_OR_FILE [--set key=value ...] [--output runs/NAME]
    mfnet-train --videos DIR [--config own_videos] [--set model.init=PRESET ...]

`--videos` reads `DIR/<class>/<video>` as it trains (no packing; the packaged
`own_videos` config holds back a fifth of the videos for validation); packed
records remain the fast path for big data.

Run the same command again after an interruption (even `kill -9`): training
continues from the last saved step. Writes to the output folder:
`config.yaml` (resolved), `labels.txt`, `checkpoints/` (resumable state,
`best.keras`, `last.keras`), `log.csv`, `tensorboard/`, and `model.keras`
(the final `VideoClassifier`, carrying its class names and preprocessing).
"""

import math
import os
import sys
import warnings

import keras
import yaml

from mfnet_keras import initialization
from mfnet_keras.callbacks import EpochLog, ResumableCheckpoint, TerminateOnNaN
from mfnet_keras.config import has_validation
from mfnet_keras.data import BadDataCounter, BadDataLogger, DataPosition
from mfnet_keras.files import save_model, write_text
from mfnet_keras.metrics import loss_and_metrics
from mfnet_keras.models import VideoClassifier
from mfnet_keras.optimizers import make_optimizer
from mfnet_keras.strategy import (
    choose_strategy,
    enable_multi_worker_fit,
    is_multi_worker,
    is_tf_strategy,
    mixed_policy,
    worker_role,
)
from mfnet_keras.training_data import check_against_records, make_datasets, reverse_labels, training_set


def build_model(config, class_names, strategy, dtype=None):
    """The `VideoClassifier` of the config, initialised from `model.init` when given; returns
    `(model, loaded_paths)`. Its preprocessor carries the config's clip size and normalisation.

    `dtype`: the layers' dtype policy, e.g. "mixed_float16" (the global policy is left alone).

    Args:
        config: the training config.
        class_names: the class names, in label order.
        strategy: the distribution strategy (the model is built in its scope).
        dtype: the layers' dtype policy (None: the global one).
    """

    model_cfg, data = config["model"], config["data"]
    classes = model_cfg["num_classes"]
    names = class_names if class_names and len(class_names) == classes else None
    model = VideoClassifier.from_preset(
        model_cfg["name"],
        num_classes=classes,
        class_names=names,
        load_weights=False,
        clip_length=model_cfg["clip_length"],
        crop_size=model_cfg["crop_size"],
        mean=tuple(data["mean"]),
        std=tuple(data["std"]),
        frame_interval=data["frame_intervals"][0],
        dropout=model_cfg["dropout"],
        synchronized_bn=strategy.num_replicas_in_sync > 1 and is_tf_strategy(strategy),
        **({"dtype": dtype} if dtype else {}),
        **model_cfg["options"],
    )
    loaded = []
    if model_cfg["zero_init_residual"]:
        initialization.zero_init_residual(model)
    if model_cfg["init"]:
        loaded = initialization.initialize(
            model, model_cfg["init"], inflate=model_cfg["inflate"], skip_classifier=model_cfg["skip_classifier"]
        )
    return model, loaded


def write_run_files(config, output, labels):
    """The resolved `config.yaml` and the class names' `labels.txt` in the run folder.

    Args:
        config: the resolved config.
        output: the run folder.
        labels: the class names.
    """

    write_text(os.path.join(output, "config.yaml"), yaml.safe_dump(config, sort_keys=False))
    if labels:
        write_text(os.path.join(output, "labels.txt"), "".join(name + "\n" for name in labels))


def make_callbacks(output, checkpoints, counter, chief):
    """`(callbacks, nan_guard)` of a run: checkpoints, the NaN guard, bad-data logs, and on the chief the
    CSV log and TensorBoard (the other workers hold the same weights and read the chief's checkpoints).

    Args:
        output: the run folder.
        checkpoints: the run's `ResumableCheckpoint`.
        counter: the train stream's `BadDataCounter`.
        chief: this worker writes the logs.
    """

    nan_guard = TerminateOnNaN()
    callbacks = [checkpoints, nan_guard, BadDataLogger(counter)]
    if chief:
        callbacks += [
            EpochLog(os.path.join(output, "log.csv")),
            keras.callbacks.TensorBoard(os.path.join(output, "tensorboard"), write_graph=False),
        ]
    return callbacks, nan_guard


def fit_options(config, callbacks, eval_ds, verbose):
    """The keyword arguments every `fit` call of a run takes (`verbose="auto"`: a progress bar on a terminal,
    a line per epoch otherwise).

    Args:
        config: the training config.
        callbacks: the run's callbacks.
        eval_ds: the validation dataset (None: none).
        verbose: `fit`'s verbosity, or `"auto"`.
    """
    if verbose == "auto":
        verbose = 1 if sys.stdout.isatty() else 2
    return dict(
        callbacks=callbacks,
        validation_data=eval_ds,
        validation_freq=config["train"]["validate_every_epochs"],
        verbose=verbose,
        shuffle=False,  # the dataset shuffles itself
    )


def announce(output, epoch, step, epochs, steps):
    """Says when a run resumes, or is already finished.

    Args:
        output: the run folder.
        epoch: the epoch it resumes at.
        step: the step within that epoch.
        epochs: epochs in all.
        steps: steps per epoch.
    """
    if epoch >= epochs:
        print(f"training in {output} is already finished ({epochs} of {epochs} epochs)")
    elif epoch or step:
        print(f"resuming from epoch {epoch + 1}, step {step} (of {steps}) in {output}")


def fit_epochs(model, train_ds, restart, fit, start, lengths, nan_guard):
    """`model.fit` from `start` (epoch, step) to the end of `lengths` (epochs, steps per epoch): an
    interrupted epoch is finished first, then `restart(epoch)` gives the stream for the epochs after it.
    Returns the History of the last `fit`; stops early when `nan_guard` fired.

    Args:
        model: the compiled model.
        train_ds: the train stream from `start`.
        restart: `restart(epoch)` -> the train stream from the start of `epoch`.
        fit: `fit_options`'s keyword arguments.
        start: `(epoch, step)` to start at.
        lengths: `(epochs, steps per epoch)`.
        nan_guard: the run's `TerminateOnNaN`.
    """
    (epoch, step), (epochs, steps) = start, lengths
    history = None
    with warnings.catch_warnings():
        # The training data repeat, so only the finite validation set "runs out": that is how a pass over it ends.
        warnings.filterwarnings("ignore", message="Your input ran out of data", category=UserWarning)
        if step and epoch < epochs:
            history = model.fit(train_ds, initial_epoch=epoch, epochs=epoch + 1, steps_per_epoch=steps - step, **fit)
            epoch += 1
            train_ds = restart(epoch)
        if epoch < epochs and not nan_guard.message:
            history = model.fit(train_ds, initial_epoch=epoch, epochs=epochs, steps_per_epoch=steps, **fit)
    return history


def train(config, output, mixed_precision=False, jit_compile=False, verbose="auto"):
    """Runs (or resumes) training; returns the Keras History of the last `fit` call.

    Args:
        config: a loaded config (`mfnet_keras.config.load_config`).
        output: the run folder: checkpoints, `log.csv`, `model.keras`; a run found there resumes.
        mixed_precision: train under the machine's mixed policy (`strategy.mixed_policy`).
        jit_compile: compile the step with XLA on TensorFlow (or `torch.compile` on PyTorch); on JAX
            the step is always compiled, as un-jitted JAX runs it op by op.
        verbose: Keras's `fit` verbosity.
    """

    labels, videos = training_set(config["data"], config["train"]["seed"])
    reverse = reverse_labels(config["data"]["reverse_pairs"], labels, config["model"]["clip_length"])
    strategy = choose_strategy()  # before any TensorFlow op: multi-worker collectives are set up at start-up
    check_against_records(config, labels)
    os.makedirs(output, exist_ok=True)
    # The model's own policy (nothing global is changed for the caller): bfloat16 on TPUs and CPUs, float16 on GPUs.
    policy = mixed_policy(strategy) if mixed_precision else None
    batch = config["train"]["batch_size"]
    steps = config["train"]["steps_per_epoch"] or max(1, math.ceil(videos / batch))
    chief = worker_role()[1]
    if chief:
        write_run_files(config, output, labels)
    loss, metrics = loss_and_metrics(config)
    monitor = ("val_" if has_validation(config["data"]) else "") + metrics[0].name
    checkpoints = ResumableCheckpoint(
        os.path.join(output, "checkpoints"), config["train"]["save_every_steps"], steps, monitor=monitor, write=chief
    )
    # Multi-worker runs resume every worker at the chief's place in its own shard: exact for one worker.
    # The same initial weights for the same seed, and the same data order in every (re)built stream.
    keras.utils.set_random_seed(config["train"]["seed"])
    position = DataPosition(checkpoints.read_state().get("data") or (0, 0, 0))
    checkpoints.data_position, counter = position, BadDataCounter()
    train_ds, eval_ds = make_datasets(config, strategy, position, counter, reverse)
    with strategy.scope():
        model, loaded = build_model(config, labels, strategy, policy)
        optimizer = make_optimizer(config, steps, loaded)
        if policy == "mixed_float16":  # what compile() adds under a global mixed_float16 policy
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        jit = jit_compile or keras.backend.backend() == "jax"
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=jit)
    if is_multi_worker(strategy):
        enable_multi_worker_fit(model)
    callbacks, nan_guard = make_callbacks(output, checkpoints, counter, chief)
    with strategy.scope():
        model.optimizer.build(model.trainable_variables)
        checkpoints.set_model(model)
        epoch, step = checkpoints.load_state()
    epochs = config["train"]["epochs"]
    announce(output, epoch, step, epochs, steps)
    fit = fit_options(config, callbacks, eval_ds, verbose)
    if step and epoch < epochs:
        checkpoints.step_offset = step

    def restart(epoch):
        # A new fit() iterates its data from the start: the stream is rebuilt to begin where the last one is.
        position.start = position.after_steps(epoch * steps) or position.start
        return make_datasets(config, strategy, position, counter, reverse)[0]

    history = fit_epochs(model, train_ds, restart, fit, (epoch, step), (epochs, steps), nan_guard)
    if nan_guard.message:
        raise RuntimeError(nan_guard.message)
    if chief:
        save_model(model, os.path.join(output, "model.keras"))
        save_model(model, os.path.join(output, "checkpoints", "last.keras"))
        print(f"saved {os.path.join(output, 'model.keras')}")
    return history
