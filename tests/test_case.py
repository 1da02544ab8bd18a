"""Shared checks for every layer and model of the project (in the spirit of keras-hub's TestCase).

- `assert_config_matches_args`: `get_config()` carries every constructor
  argument with the value passed, and `from_config` rebuilds the same config.
- `assert_keras_round_trip`: `.keras` save, then load in a *fresh* Python
  process that only imports `mfnet_keras`, gives identical outputs.
- `assert_fit_step_trains_all_weights`: one `model.fit` step moves every
  trainable weight (so every one received a gradient).
- `assert_mixed_precision`: the same computation under `mixed_float16` is
  float16, finite and close to float32.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A small MF-Net 3D for tests that train: four fibers, one unit per stage.
SMALL_MFNET = {"num_fibers": 4, "stem_filters": 8, "stage_filters": (16, 32, 64, 128), "stage_depths": (1, 1, 1, 1)}
# A tiny one for tests that only need the machinery to run (lists: it goes into YAML configs too).
TINY_MFNET = {"num_fibers": 4, "stem_filters": 8, "stage_filters": [16, 16, 32, 32], "stage_depths": [1, 1, 1, 1]}


def _plain(value):
    """Config values as JSON would carry them (tuples become lists)."""
    return json.loads(json.dumps(value, default=lambda v: keras.saving.serialize_keras_object(v)))


def assert_config_matches_args(obj, init_kwargs):
    """Every constructor argument is in the config with the value passed; the config round-trips."""
    config = obj.get_config()
    for key, value in init_kwargs.items():
        assert key in config, f"get_config() of {type(obj).__name__} drops argument {key!r}"
        expected = value
        if key.endswith("_initializer") and isinstance(value, str):
            expected = keras.initializers.serialize(keras.initializers.get(value))
        assert _plain(config[key]) == _plain(expected), f"{key}: config has {config[key]!r}, passed {value!r}"
    rebuilt = type(obj).from_config(config)
    assert _plain(rebuilt.get_config()) == _plain(config)


def wrap_layer(layer, input_shape):
    """A functional model around one layer, for saving and fitting."""
    inputs = keras.Input(shape=input_shape[1:], batch_size=None)
    return keras.Model(inputs, layer(inputs))


def assert_keras_round_trip(tmp_path, cases, atol=0.0):
    """Saves each `(model, x)` as `.keras`, reloads all in one fresh process and compares outputs.

    The fresh process imports nothing but `mfnet_keras`, keras and numpy, so
    it proves that the custom objects register themselves on import.
    """
    expected, jobs = [], []
    for i, (model, x) in enumerate(cases):
        model_path = os.path.join(tmp_path, f"model_{i}.keras")
        model.save(model_path)
        np.save(os.path.join(tmp_path, f"x_{i}.npy"), x)
        expected.append(np.asarray(model(x, training=False)))
        jobs.append(i)
    script = textwrap.dedent(
        f"""
        import os, sys
        import keras, mfnet_keras, numpy as np  # `import mfnet_keras` registers the classes (keras-hub's habit)
        for i in {jobs!r}:
            model = keras.saving.load_model(os.path.join({str(tmp_path)!r}, f"model_{{i}}.keras"))
            x = np.load(os.path.join({str(tmp_path)!r}, f"x_{{i}}.npy"))
            np.save(os.path.join({str(tmp_path)!r}, f"y_{{i}}.npy"), np.asarray(model(x, training=False)))
        """
    )
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    for i, want in enumerate(expected):
        got = np.load(os.path.join(tmp_path, f"y_{i}.npy"))
        np.testing.assert_allclose(got, want, rtol=0, atol=atol, err_msg=f"case {i}: {cases[i][0].name}")


def assert_fit_step_trains_all_weights(model, x, y, loss="mse", zero_gradient=()):
    """One `fit` step with plain SGD changes every trainable weight but those in `zero_gradient` (paths of
    weights whose gradient is zero by construction)."""
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss=loss, metrics=[])
    before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    history = model.fit(x, y, batch_size=len(x), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    frozen = [
        w.path
        for w, b in zip(model.trainable_weights, before)
        if np.array_equal(keras.ops.convert_to_numpy(w), b) and w.path not in zero_gradient
    ]
    assert not frozen, f"weights that received no gradient: {frozen}"


def assert_mixed_precision(build, x, rtol=5e-2):
    """`build(dtype)` run under `mixed_float16` gives float16 outputs close to float32 ones.

    `build` receives the dtype policy name and returns a model; the float32
    model's weights are copied into the mixed one, so only precision differs.
    No global dtype policy is touched.
    """
    reference = build("float32")
    mixed = build("mixed_float16")
    mixed.set_weights(reference.get_weights())
    want = np.asarray(reference(x, training=False))
    got = mixed(x, training=False)
    assert keras.backend.standardize_dtype(got.dtype) == "float16"
    got = np.asarray(got).astype("float32")
    assert np.all(np.isfinite(got))
    scale = np.abs(want).max() + 1e-6
    assert np.abs(got - want).max() / scale < rtol


def build(name, num_classes=None, input_shape=None, weights=None, **options):
    """A random-weight `VideoClassifier` of a registered preset whose backbone takes `input_shape`
    (`(T, H, W, 3)`, or `(H, W, 3)` for a 2D backbone), then `weights` loaded by `initialization.initialize`."""
    from mfnet_keras import initialization, models
    from mfnet_keras.checkpoints import key_mapping

    shape = tuple(input_shape or models.get_preset(name)["input_shape"])
    if weights and num_classes is None:
        kernel = key_mapping.read_torch_state_dict(weights).get("classifier.weight")
        num_classes = None if kernel is None else int(kernel.shape[0])
    options.setdefault("clip_length", 1 if len(shape) == 3 else shape[0])
    model = models.VideoClassifier.from_preset(
        name, num_classes=num_classes, load_weights=False, crop_size=shape[-2], **options
    )
    if weights:
        initialization.initialize(model, weights)
    return model


def raw_clips(input_shape, batch=2, seed=0):
    """Random float clips in [0, 255] `[batch, T, H, W, 3]` for a backbone's `input_shape` (2D: T = 1)."""
    shape = input_shape if len(input_shape) == 4 else (1, *input_shape)
    return np.random.default_rng(seed).uniform(0, 255, (batch, *shape)).astype("float32")


def normalized(clips, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)):
    """What the default preprocessor feeds the backbone for crop-sized clips."""
    return ((clips / 255.0 - np.array(mean)) / np.array(std)).astype("float32")
