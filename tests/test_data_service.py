"""Decoding on more machines: tf.data service servers started by `mfnet-data-service` on 127.0.0.1, and
training through them while one worker is killed."""

import os
import signal
import subprocess
import sys
import threading
import time

import keras
import pytest
from test_training import _free_ports, tiny_config

import mfnet_cli.train
from mfnet_keras import train
from mfnet_keras.config import ConfigError, load_config
from mfnet_keras.data.service import check_address

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start_server(*args):
    """`mfnet-data-service ARGS` in its own process, once it has printed where it listens (that line too)."""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-m", "mfnet_cli.data_service", *args]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return process, process.stdout.readline().strip()


def kill_when_saved(folder, process):
    """Kills `process` (SIGKILL) once training has saved its first resumable state in `folder` (mid-epoch)."""

    def watch():
        deadline = time.monotonic() + 300
        while not os.path.exists(os.path.join(folder, "state.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        process.kill()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_training_goes_on_through_data_service_workers_when_one_is_killed(tmp_path, demo_records):
    dispatcher_port, *worker_ports = _free_ports(3)
    address = f"grpc://127.0.0.1:{dispatcher_port}"
    servers = []
    try:
        dispatcher, line = start_server("dispatcher", "--port", str(dispatcher_port))
        servers.append(dispatcher)
        assert line == f"dispatcher listening on grpc://localhost:{dispatcher_port}", line
        for port in worker_ports:
            worker, line = start_server("worker", "--dispatcher", f"127.0.0.1:{dispatcher_port}", "--port", str(port))
            servers.append(worker)
            assert line == f"worker localhost:{port} serving grpc://127.0.0.1:{dispatcher_port}", line
        path = tiny_config(tmp_path, demo_records, epochs=2, steps_per_epoch=6, save_every_steps=2)
        config = load_config(str(path), [f"data.service={address}", "data.eval="])  # validation: as without
        out = tmp_path / "run"
        watcher = kill_when_saved(str(out / "checkpoints"), servers[1])
        train.train(config, str(out), verbose=0)
        watcher.join(10)
        assert servers[1].wait(10) == -signal.SIGKILL  # killed during the first epoch, training went on
        model = keras.saving.load_model(str(out / "model.keras"))
        assert int(model.optimizer.iterations.numpy()) == 12
        assert len((out / "log.csv").read_text().strip().splitlines()) == 3
        servers[2].send_signal(signal.SIGTERM)  # a server stops cleanly on SIGTERM
        assert servers[2].wait(30) == 0
    finally:
        for server in servers:
            server.kill()


def test_service_addresses_are_checked_in_one_line(tmp_path, demo_records, capsys):
    assert check_address("host:5050") == "grpc://host:5050"
    with pytest.raises(ValueError, match=r"^a tf.data service address is grpc://HOST:PORT. Received: 'http://h:1'$"):
        check_address("http://h:1")
    path = tiny_config(tmp_path, demo_records)
    assert (
        mfnet_cli.train.main(["--config", str(path), "--output", str(tmp_path / "run"), "--data-service", "host"]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert err == "config error: data.service: a tf.data service address is grpc://HOST:PORT. Received: 'host'"
    with pytest.raises(ConfigError):
        load_config(str(path), ["data.service=grpc://h:port"])
