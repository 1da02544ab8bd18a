"""Training callbacks: fault-tolerant resumable checkpoints, best/last models, a clear NaN stop."""

import csv
import io
import json
import math
import os

import keras

from mfnet_keras.files import save_model, write_json, write_text


class ResumableCheckpoint(keras.callbacks.Callback):
    """Saves the whole training state every `save_every_steps` steps and at each epoch end.

    Keras's `BackupAndRestore` restores the epoch but replays it from its
    first step, and overwrites its file in place. Here each save writes a new
    `ckpt-<global step>.weights.h5` (weights and optimizer state), then
    atomically replaces `state.json` that points to it, then deletes the
    previous file: a kill at any moment leaves a complete checkpoint that
    `state.json` names. `load_state` reads it back; the trainer then continues
    from that step of that epoch.

    Also keeps `last.keras` (each epoch) and `best.keras` (best `monitor`), the
    best value surviving restarts through `state.json`, and, mid-epoch, the
    metrics' accumulated sums, which are added back after the first step of
    a resumed epoch: the epoch's logs then cover all of its steps (every
    compiled metric is a sum: means, accuracies, AUC counts; single-replica
    runs only). Also saved: the layers' random-seed states (dropout), which
    weight files leave out, and, when `data_position` is set (a
    `mfnet_keras.data.DataPosition`), where the training data stream stands,
    so a resumed run trains on what an uninterrupted one would have. With
    `write=False` (the non-chief workers of a multi-worker run) it only
    restores. Every file is written atomically (`mfnet_keras.files`).

    Args:
        directory: the run's checkpoint folder.
        save_every_steps: training steps between saves.
        steps_per_epoch: training steps per epoch.
        monitor: the metric that picks `best.keras`.
        mode: `"max"` or `"min"`: which `monitor` values are better.
        write: write files (False on the non-chief workers of a multi-worker run).
    """

    def __init__(self, directory, save_every_steps, steps_per_epoch, monitor="val_accuracy", mode="max", write=True):
        super().__init__()
        self.directory = directory
        self.write = write
        self.save_every_steps = save_every_steps
        self.steps_per_epoch = steps_per_epoch
        self.monitor = monitor
        self.mode = mode
        self.state = {"epoch": 0, "step": 0, "checkpoint": None, "best": None}
        self.step_offset = 0  # steps of the current epoch done before this fit() call
        self.data_position = None
        self._epoch = 0
        self._resumed_metrics = None
        os.makedirs(directory, exist_ok=True)

    @property
    def state_path(self):
        return os.path.join(self.directory, "state.json")

    def read_state(self):
        """The saved state (`epoch`, `step`, `checkpoint`, `best`, `data`, ...), or the initial one."""
        if os.path.exists(self.state_path):
            with open(self.state_path) as f:
                self.state = json.load(f)
        return self.state

    def _seed_states(self):
        """The layers' random-seed state variables: in `model.variables`, not in its weights."""
        weights = {v.path for v in self.model.weights}
        return [v for v in self.model.variables if v.path not in weights]

    def load_state(self):
        """Restores weights, optimizer and seeds from the last checkpoint; returns `(epoch, step)` to resume at."""
        self.read_state()
        if self.state["checkpoint"]:
            if not self.model.optimizer.built:
                self.model.optimizer.build(self.model.trainable_variables)
            self.model.load_weights(os.path.join(self.directory, self.state["checkpoint"]))
        seeds = self.state.get("seeds") or {}
        for variable in self._seed_states():
            if variable.path in seeds:
                variable.assign(keras.ops.cast(seeds[variable.path], variable.dtype))
        self._resumed_metrics = self.state.get("metrics") if self.state["step"] else None
        return self.state["epoch"], self.state["step"]

    def _save(self, epoch, step):
        if not self.write:
            return
        name = f"ckpt-{int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)):09d}.weights.h5"
        previous = self.state.get("checkpoint")
        if name == previous:
            return
        save_model(self.model, os.path.join(self.directory, name))
        # Metric variables of several replicas are summed by a collective when read, which only the chief
        # would join: their sums are kept for single-replica runs.
        strategy = getattr(self.model, "distribute_strategy", None)  # TensorFlow's; JAX's DataParallel has none
        single = strategy is None or strategy.num_replicas_in_sync == 1
        metrics = None
        if step and single:
            metrics = {v.path: keras.ops.convert_to_numpy(v).tolist() for v in self.model.metrics_variables}
        seeds = {v.path: keras.ops.convert_to_numpy(v).tolist() for v in self._seed_states()}
        self.state.update(epoch=epoch, step=step, checkpoint=name, metrics=metrics, seeds=seeds)
        if self.data_position is not None:
            self.state["data"] = self.data_position.after_steps(epoch * self.steps_per_epoch + step)
        write_json(self.state_path, self.state)
        if previous and os.path.exists(os.path.join(self.directory, previous)):
            os.remove(os.path.join(self.directory, previous))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._resumed_metrics:  # the metrics exist once a step has run: add the sums saved before the stop
            for variable in self.model.metrics_variables:
                if variable.path in self._resumed_metrics:
                    variable.assign_add(keras.ops.cast(self._resumed_metrics[variable.path], variable.dtype))
            self._resumed_metrics = None
        step = self.step_offset + batch + 1
        if step % self.save_every_steps == 0 and step < self.steps_per_epoch:
            self._save(self._epoch, step)

    def on_epoch_end(self, epoch, logs=None):
        self.step_offset = 0
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is not None:
            best = self.state.get("best")
            better = best is None or (value > best if self.mode == "max" else value < best)
            if better and self.write:
                self.state["best"] = float(value)
                save_model(self.model, os.path.join(self.directory, "best.keras"))
        if self.write:
            save_model(self.model, os.path.join(self.directory, "last.keras"))
        self._save(epoch + 1, 0)


class EpochLog(keras.callbacks.Callback):
    """`log.csv`: one row per epoch, rewritten whole and atomically at each epoch end.

    A resumed epoch replaces any row of that epoch or later (left by a run
    that got further before it was stopped), so the file always holds one row
    per finished epoch.

    Args:
        path: the CSV file.
    """

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        rows = []
        if os.path.exists(self.path):
            with open(self.path, newline="") as f:
                rows = [row for row in csv.DictReader(f) if int(row["epoch"]) < epoch]
        rows.append({"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}})
        columns = ["epoch", *sorted({key for row in rows for key in row} - {"epoch"})]
        out = io.StringIO()
        writer = csv.DictWriter(out, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text(self.path, out.getvalue())


class TerminateOnNaN(keras.callbacks.Callback):
    """Stops training at the first non-finite loss, saying where and what to try."""

    def __init__(self):
        super().__init__()
        self.message = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.message = (
                f"training stopped: loss became {loss} at epoch {self._epoch + 1}, step {batch + 1}; "
                "lower train.base_lr, add warm-up (train.warmup_epochs) or check the data"
            )
            print(self.message)
            self.model.stop_training = True
