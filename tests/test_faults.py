"""Training under faults: SIGKILL at random instants, a disk that fills up."""

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
import zipfile

import h5py
import numpy as np
import pytest
import yaml
from commands import LOG_LINE, user_env
from test_case import TINY_MFNET


def write_config(folder, records, dropout=0.0, **train):
    config = {
        "model": {"name": "mfnet3d", "clip_length": 4, "crop_size": 32, "dropout": dropout, "options": TINY_MFNET},
        "data": {"train": f"{records}/train-*.tfrecord", "eval": f"{records}/test-*.tfrecord", "flip": False},
        "train": {"epochs": 3, "batch_size": 2, "base_lr": 0.01, "base_batch_size": 2, "save_every_steps": 1, **train},
        "eval": {"num_clips": 1, "num_crops": 1, "batch_size": 4},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def train_command(config, out):
    return [sys.executable, "-m", "mfnet_cli.train", "--config", str(config), "--output", str(out)]


def check_files_open(run):
    """Every file the run wrote opens (what a kill leaves in .partial/ is never read)."""
    for path in run.rglob("*"):
        if ".partial" in path.parts or not path.is_file():
            continue
        if path.suffix == ".keras":
            assert zipfile.ZipFile(path).testzip() is None, path
        elif path.suffix == ".h5":
            with h5py.File(path, "r") as f:
                assert len(f.keys()) > 0, path
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".csv":
            rows = list(csv.DictReader(path.open()))
            assert all(None not in row and None not in row.values() for row in rows), path


def saved_arrays(run):
    """Every array in the run's `model.keras`: weights and optimizer state."""
    arrays = {}
    with zipfile.ZipFile(run / "model.keras") as archive, archive.open("model.weights.h5") as f:
        with h5py.File(f, "r") as h5:
            h5.visititems(
                lambda name, item: arrays.update({name: item[()]}) if isinstance(item, h5py.Dataset) else None
            )
    return arrays


def optimizer_steps(run):
    return int(saved_arrays(run)["optimizer/vars/0"])


def test_a_resumed_epoch_logs_metrics_over_all_its_steps(tmp_path):
    import keras

    from mfnet_keras.callbacks import ResumableCheckpoint

    x, y = np.arange(8, dtype="float32")[:, None], np.array([0, 1] * 4)
    counts = []

    class Counts(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            counts.append({v.path: float(np.sum(v.numpy())) for v in self.model.metrics_variables if "count" in v.path})

    class Stop(keras.callbacks.Callback):  # a kill after the second step's checkpoint: no epoch end runs
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                raise KeyboardInterrupt

    def fit(steps, offset, *extra):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2)])
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        model.optimizer.build(model.trainable_variables)
        checkpoint = ResumableCheckpoint(str(tmp_path), 1, 4, monitor="accuracy")
        checkpoint.set_model(model)
        checkpoint.load_state()
        checkpoint.step_offset = offset
        callbacks = [checkpoint, Counts(), *extra]
        model.fit(x, y, batch_size=2, epochs=1, steps_per_epoch=steps, callbacks=callbacks, verbose=0)

    with pytest.raises(KeyboardInterrupt):
        fit(4, 0, Stop())  # two of the epoch's four steps, each saved, then stopped
    fit(2, 2)  # resumed: the other two
    assert counts and all(v == 8 for v in counts[0].values())  # four steps of two samples, not only the last two


KILLS = 12  # each restart costs a TensorFlow start-up (~8 s on 2 cores)


def state_written(run):
    """When `state.json` was last replaced (each checkpoint replaces it), or None before the first."""
    path = run / "checkpoints" / "state.json"
    return path.stat().st_mtime_ns if path.exists() else None


def kill_at_random(config, run, rng, start_up=None):
    """Starts training and SIGKILLs it: at a random instant within `start_up` seconds (the time a run takes to
    its first save), or once it has saved a checkpoint of its own, at a random instant of the next few steps
    (saves, epoch ends and validation included)."""
    before = state_written(run)
    process = subprocess.Popen(
        train_command(config, run), env=user_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    if start_up:
        time.sleep(rng.uniform(0, start_up))
    else:
        while state_written(run) == before:
            assert process.poll() is None, "the run ended before it saved"
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.5))
    assert process.poll() is None, "the run finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def test_sigkill_at_random_instants_loses_nothing(tmp_path, demo_records):
    config = write_config(tmp_path, demo_records, dropout=0.3, steps_per_epoch=24, save_every_steps=1)
    reference = tmp_path / "reference"
    started = time.perf_counter()
    with open(tmp_path / "out.txt", "w+") as out, open(tmp_path / "err.txt", "w+") as err:
        finished = subprocess.Popen(train_command(config, reference), env=user_env(), stdout=out, stderr=err)
        while state_written(reference) is None and finished.poll() is None:
            time.sleep(0.01)
        start_up = time.perf_counter() - started  # to the first save
        assert finished.wait(timeout=600) == 0, (tmp_path / "err.txt").read_text()[-3000:]
    printed, errors = (tmp_path / "out.txt").read_text(), (tmp_path / "err.txt").read_text()
    assert not LOG_LINE.search(printed + errors), errors  # as quiet as a user expects
    assert "remapper failed" not in errors

    run, rng = tmp_path / "killed", random.Random(0)
    for kill in range(KILLS):
        kill_at_random(config, run, rng, start_up=start_up if kill % 5 == 0 else None)
        check_files_open(run)
    finish = subprocess.run(train_command(config, run), env=user_env(), capture_output=True, text=True, timeout=600)
    assert finish.returncode == 0, finish.stderr[-3000:]
    assert "resuming from epoch " in finish.stdout
    check_files_open(run)

    assert optimizer_steps(run) == optimizer_steps(reference) == 3 * 24  # no step lost or repeated
    resumed, uninterrupted = saved_arrays(run), saved_arrays(reference)
    assert resumed.keys() == uninterrupted.keys()
    for name, value in uninterrupted.items():  # the same clips in the same order, the same dropout: the same run
        np.testing.assert_allclose(resumed[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
    rows = list(csv.DictReader((run / "log.csv").open()))
    reference_rows = list(csv.DictReader((reference / "log.csv").open()))
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]
    for row, expected in zip(rows, reference_rows):  # each row covers its whole epoch
        assert float(row["accuracy"]) == pytest.approx(float(expected["accuracy"]), abs=1e-6)
        assert float(row["loss"]) == pytest.approx(float(expected["loss"]), rel=1e-4)
    again = subprocess.run(train_command(config, run), env=user_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and f"training in {run} is already finished (3 of 3 epochs)" in again.stdout


@pytest.fixture
def small_disk(tmp_path):
    """A 1.2 MB tmpfs: the tiny model's checkpoints fill it within the first epoch."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk_is_one_line_and_the_run_resumes_with_space(tmp_path, demo_records, small_disk):
    config = write_config(tmp_path, demo_records, epochs=2, steps_per_epoch=8, save_every_steps=2)
    run = small_disk / "run"
    full = subprocess.run(train_command(config, run), env=user_env(), capture_output=True, text=True, timeout=600)
    assert full.returncode == 1, (full.returncode, full.stderr[-3000:])  # not 139: no segmentation fault
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "No space left on device" in last and str(small_disk) in last, last
    assert "Traceback" not in full.stderr
    state = json.loads((run / "checkpoints" / "state.json").read_text())
    check_files_open(run)  # the last good checkpoint, and everything else written, intact
    assert (run / "checkpoints" / state["checkpoint"]).exists()

    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)
    resumed = subprocess.run(train_command(config, run), env=user_env(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from epoch {state['epoch'] + 1}, step {state['step']} (of 8)" in resumed.stdout
    assert optimizer_steps(run) == 16


def test_read_only_and_impossible_output_folders_are_one_line(tmp_path, demo_records, small_disk):
    config = write_config(tmp_path, demo_records, epochs=1, steps_per_epoch=2)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    (tmp_path / "a_file").write_text("not a folder")
    for out, cause in ((small_disk / "run", "Read-only file system"), (tmp_path / "a_file" / "run", "Not a directory")):
        result = subprocess.run(train_command(config, out), env=user_env(), capture_output=True, text=True, timeout=600)
        assert result.returncode == 1, result.stderr[-3000:]
        assert (
            result.stderr.strip().splitlines()[-1] == f"error: [Errno {30 if 'Read' in cause else 20}] {cause}: '{out}'"
        )
        assert "Traceback" not in result.stderr
