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

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_MODEL = {"num_fibers": 4, "stem_filters": 8, "stage_filters": [16, 16, 32, 32], "stage_depths": [1, 1, 1, 1]}


def write_config(folder, records, **train):
    config = {
        "model": {"name": "mfnet3d", "clip_length": 4, "crop_size": 32, "options": TINY_MODEL},
        "data": {"train": f"{records}/train-*.tfrecord", "eval": f"{records}/test-*.tfrecord", "flip": False},
        "train": {"epochs": 3, "batch_size": 2, "base_lr": 0.01, "base_batch_size": 2, "save_every_steps": 1, **train},
        "eval": {"num_clips": 1, "num_crops": 1, "batch_size": 4},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def train_command(config, out):
    return [sys.executable, "-m", "mfnet_keras.train", "--config", str(config), "--output", str(out)]


def run_env():
    return dict(os.environ, PYTHONPATH=REPO_ROOT)


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


def optimizer_steps(run):
    with zipfile.ZipFile(run / "model.keras") as archive, archive.open("model.weights.h5") as f:
        with h5py.File(f, "r") as h5:
            return int(h5["optimizer/vars/0"][()])


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


KILLS = 8  # each restart costs a TensorFlow start-up (~10 s on 2 cores)


def watch_first_save(config, out):
    """Runs training to the end; returns (seconds to the first checkpoint, seconds in all)."""
    started, first = time.time(), None
    process = subprocess.Popen(
        train_command(config, out), env=run_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    while process.poll() is None:
        if first is None and (out / "checkpoints" / "state.json").exists():
            first = time.time() - started
        time.sleep(0.05)
    assert process.returncode == 0, process.stderr.read()[-3000:]
    return first, time.time() - started


def test_sigkill_at_random_instants_loses_nothing(tmp_path, demo_records):
    config = write_config(tmp_path, demo_records, steps_per_epoch=24, save_every_steps=2)
    reference = tmp_path / "reference"
    first_save, duration = watch_first_save(config, reference)

    run, rng, kills = tmp_path / "killed", random.Random(0), 0
    while kills < KILLS:  # instants from start-up to well into training, saves included
        process = subprocess.Popen(
            train_command(config, run), env=run_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(first_save - 2, first_save + (duration - first_save) / KILLS))
        assert process.poll() is None, "the run finished before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        kills += 1
        check_files_open(run)
    finish = subprocess.run(train_command(config, run), env=run_env(), capture_output=True, text=True, timeout=600)
    assert finish.returncode == 0, finish.stderr[-3000:]
    assert "resuming from epoch " in finish.stdout
    check_files_open(run)

    assert optimizer_steps(run) == optimizer_steps(reference) == 3 * 24  # no step lost or repeated
    rows = list(csv.DictReader((run / "log.csv").open()))
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]
    again = subprocess.run(train_command(config, run), env=run_env(), capture_output=True, text=True, timeout=600)
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
    full = subprocess.run(train_command(config, run), env=run_env(), capture_output=True, text=True, timeout=600)
    assert full.returncode == 1, (full.returncode, full.stderr[-3000:])  # not 139: no segmentation fault
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "No space left on device" in last and str(small_disk) in last, last
    assert "Traceback" not in full.stderr
    state = json.loads((run / "checkpoints" / "state.json").read_text())
    check_files_open(run)  # the last good checkpoint, and everything else written, intact
    assert (run / "checkpoints" / state["checkpoint"]).exists()

    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)
    resumed = subprocess.run(train_command(config, run), env=run_env(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from epoch {state['epoch'] + 1}, step {state['step']} (of 8)" in resumed.stdout
    assert optimizer_steps(run) == 16


def test_read_only_and_impossible_output_folders_are_one_line(tmp_path, demo_records, small_disk):
    config = write_config(tmp_path, demo_records, epochs=1, steps_per_epoch=2)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    (tmp_path / "a_file").write_text("not a folder")
    for out, cause in ((small_disk / "run", "Read-only file system"), (tmp_path / "a_file" / "run", "Not a directory")):
        result = subprocess.run(train_command(config, out), env=run_env(), capture_output=True, text=True, timeout=600)
        assert result.returncode == 1, result.stderr[-3000:]
        assert (
            result.stderr.strip().splitlines()[-1] == f"error: [Errno {30 if 'Read' in cause else 20}] {cause}: '{out}'"
        )
        assert "Traceback" not in result.stderr
