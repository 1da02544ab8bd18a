"""Test session set-up: TensorFlow backend, quiet logs, mfnet_keras imported before TensorFlow."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

import mfnet_keras.models  # noqa: E402,F401  (oneDNN set before TensorFlow loads; Keras classes registered)
from tfrecords_tools import pack, synthetic  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def keras_home(tmp_path_factory):
    """Downloads, converted presets and cached runtime exports go to a folder of the session, not ~/.keras."""
    os.environ["KERAS_HOME"] = str(tmp_path_factory.mktemp("keras_home"))


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A real HTTP server on 127.0.0.1 serving `tmp_path/served`, with a cache of this test's own."""
    from commands import HttpServer

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    served = tmp_path / "served"
    served.mkdir()
    running = HttpServer(str(served))
    yield running, served
    running.close()


@pytest.fixture(scope="session")
def demo_records(tmp_path_factory):
    """The synthetic motion classes, 2 training and 1 test video each, packed at a short side of 40."""
    root = tmp_path_factory.mktemp("demo")
    synthetic.generate(str(root / "videos"), seed=0, train_per_class=2, test_per_class=1, frames=12, size=64, workers=1)
    pack.pack_dataset(root / "videos", root / "records", layout="list", short_side=40, workers=1)
    return root / "records"
