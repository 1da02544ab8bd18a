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


@pytest.fixture(scope="session", autouse=True)
def jax_compilation_cache(tmp_path_factory):
    """The JAX child processes share XLA's compiled programs through JAX's persistent cache (a folder of
    the session): the same model compiled again, in a resumed run or a later test, loads instead."""
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path_factory.mktemp("jax_cache"))
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "-1"


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


# `make test-fast` leaves these out (`-m "not slow"`): whole modules that train, start child processes on
# other backends or runtimes, or execute notebooks, and the slowest tests of the others.
SLOW_MODULES = {
    "test_backends.py",
    "test_data_service.py",
    "test_deploy.py",
    "test_export.py",
    "test_faults.py",
    "test_notebooks.py",
    "test_packaging.py",
    "test_streaming.py",
    "test_timeline_explain.py",
}
SLOW_TESTS = (
    "test_demo_runs_end_to_end",
    "test_two_worker_processes",
    "test_training_and_evaluation_go_on_past_corrupt_shards",
    "test_train_then_evaluate",
    "test_mixed_precision_is_the_models_policy",
    "test_five_lines_fine_tune_and_predict",
    "test_every_preset_round_trips",
    "test_docstring_examples_run",
    "test_multi_label_training_and_evaluation",
    "test_doctor_measures_the_pipeline_and_its_stages",
    "test_kill_and_resume_gives_the_same_records",
    "test_memory_stays_bounded_on_crafted_files",
    "test_synchronized_batch_norm_uses_global_statistics",
)


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.name in SLOW_MODULES or item.name.startswith(SLOW_TESTS):
            item.add_marker(pytest.mark.slow)
