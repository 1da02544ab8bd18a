"""Every Keras backend, each in a fresh process (JAX and PyTorch with `import tensorflow` failing): a converted
PyTorch MF-Net gives the PyTorch network's logits, a `.keras` file saved on any backend loads on the others with
the same outputs, and files written before the layers lost the dots in their names still load."""

import contextlib
import io
import json
import os

import numpy as np
import pytest
import torch
from commands import BACKENDS, REPO_ROOT, run_on_backend
from test_case import TINY_MFNET
from torch_mfnet import MFNet, randomized, torch_logits

BEFORE_RENAME = os.path.join(REPO_ROOT, "tests", "data", "before_rename")


def max_relative(got, want):
    return float(np.abs(got - want).max() / np.abs(want).max())


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A random PyTorch MF-Net 3D (5 classes, non-trivial BatchNorm statistics) and uint8 clips larger than the crop."""
    root = tmp_path_factory.mktemp("backends")
    torch.save(randomized(MFNet(5, dims=3), seed=7).state_dict(), root / "random.pth")
    clips = np.random.default_rng(8).integers(0, 256, (2, 4, 37, 45, 3), dtype=np.uint8)
    np.save(root / "clips.npy", clips)
    return root


def run_script(backend, script, **options):
    """`run_on_backend`, except that TensorFlow's part runs in this (TensorFlow) test process: one child fewer."""
    if backend != "tensorflow":
        return run_on_backend(backend, script, **options)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(script, "<backend script>", "exec"), {})
    return json.loads(printed.getvalue().strip().splitlines()[-1])


PARITY = """
import json, sys
import numpy as np
import keras
from mfnet_keras import models

model = models.VideoClassifier.from_preset({pth!r}, clip_length=4, crop_size=32)
logits = model.predict(np.load({clips!r}), verbose=0)
np.save({out!r}, keras.ops.convert_to_numpy(logits))
print(json.dumps({{"backend": keras.backend.backend(), "tensorflow": "tensorflow" in sys.modules}}))
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_converted_checkpoint_gives_the_pytorch_logits_on_every_backend(checkpoint, backend):
    out = checkpoint / f"{backend}.npy"
    script = PARITY.format(pth=str(checkpoint / "random.pth"), clips=str(checkpoint / "clips.npy"), out=str(out))
    ran = run_script(backend, script)
    assert ran == {"backend": backend, "tensorflow": backend == "tensorflow"}
    clips = np.load(checkpoint / "clips.npy")
    # The short side is already the preprocessor's (37 for a 32 crop): the resize keeps every pixel.
    want = torch_logits(str(checkpoint / "random.pth"), 3, clips, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 32)
    assert max_relative(np.load(out), want) <= 1e-4


PORTABLE = """
import glob, json, os
import numpy as np
import keras
from mfnet_keras import models

backend, folder = keras.backend.backend(), {folder!r}
clips = np.load(os.path.join(folder, "clips.npy"))
mine = os.path.join(folder, backend + ".keras")
if not os.path.exists(mine):
    keras.utils.set_random_seed(1)
    backbone = models.MFNetBackbone(
        input_shape=(4, 32, 32, 3), num_fibers=4, stem_filters=8, stage_filters=(16, 16, 32, 32), stage_depths=(1, 2, 1, 1)
    )
    model = models.VideoClassifier(backbone, 3, class_names=["a", "b", "c"])
    for weight in model.weights:
        if weight.path.endswith("moving_variance"):
            weight.assign(np.random.default_rng(2).uniform(0.5, 1.5, weight.shape))
    model.save(mine)
    np.save(os.path.join(folder, backend + ".npy"), keras.ops.convert_to_numpy(model.predict(clips, verbose=0)))
for path in sorted(glob.glob(os.path.join(folder, "*.keras"))):
    other = os.path.basename(path)[: -len(".keras")]
    out = keras.ops.convert_to_numpy(models.load_model(path).predict(clips, verbose=0))
    np.save(os.path.join(folder, f"{{other}}_on_{{backend}}.npy"), out)
before, errors = {before!r}, []
expected = np.load(os.path.join(before, "expected.npz"))
for model in (models.load_model(os.path.join(before, "model.keras")), models.VideoClassifier.from_preset(os.path.join(before, "preset"))):
    got = keras.ops.convert_to_numpy(model.predict(expected["clips"], verbose=0))
    errors.append(float(np.abs(got - expected["logits"]).max() / np.abs(expected["logits"]).max()))
print(json.dumps(errors))
"""


def test_keras_files_move_between_backends_and_files_from_before_the_rename_load(tmp_path):
    np.save(tmp_path / "clips.npy", np.random.default_rng(3).integers(0, 256, (2, 4, 40, 48, 3), dtype=np.uint8))
    script = PORTABLE.format(folder=str(tmp_path), before=BEFORE_RENAME)
    # Each run saves its own file and loads every file there; the last two load the files saved after them.
    for backend in ("tensorflow", "jax", "torch", "tensorflow", "jax"):
        errors = run_script(backend, script)
        assert max(errors) <= 1e-5, backend  # the files saved by the code before the rename, on TensorFlow
    for saved in BACKENDS:
        want = np.load(tmp_path / f"{saved}.npy")
        for loader in BACKENDS:
            assert max_relative(np.load(tmp_path / f"{saved}_on_{loader}.npy"), want) <= 1e-5, (saved, loader)


TRAIN = """
import json, os
import numpy as np
import keras
from mfnet_keras import models, train
from mfnet_keras.config import load_config

results = {{}}
for name, runs, mixed in {runs!r}:  # runs: the epochs of each call; several calls: stop, then resume
    config = load_config({config!r})
    config["model"]["options"] = {tiny!r}
    out = os.path.join({root!r}, name)
    for epochs in runs:
        config["train"]["epochs"] = epochs
        train.train(config, out, mixed_precision=mixed, verbose=0)
    model = models.load_model(os.path.join(out, "model.keras"))
    clips = np.random.default_rng(0).integers(0, 256, (2, 4, 32, 32, 3), dtype=np.uint8)
    logits = np.asarray(model.predict(clips, verbose=0)).astype("float32")  # bfloat16 under mixed precision
    np.save(os.path.join(out, "logits.npy"), logits)
    log = open(os.path.join(out, "log.csv")).read().splitlines()
    finite = lambda v: bool(np.isfinite(keras.ops.convert_to_numpy(keras.ops.cast(v, "float32"))).all())
    results[name] = {{"header": log[0].split(","), "epochs": len(log) - 1, "last": log[-1],
                      "dtype": model.backbone.get_layer("conv2_B01").dtype_policy.name,
                      "nonfinite": [v.path for v in model.weights if not finite(v)]}}
results["devices"] = len(keras.distribution.list_devices()) if keras.backend.backend() == "jax" else 1
print(json.dumps(results))
"""


def train_on(backend, tmp_path, records, runs, env=None):
    """Trains a small MF-Net once per `(name, [epochs of each call], mixed precision)` in one process of
    `backend`; returns what it reports and each run's logits on the same clips."""
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "model: {name: mfnet3d, clip_length: 4, crop_size: 32}\n"
        f"data: {{train: '{records}/train-*.tfrecord', eval: '{records}/test-*.tfrecord', flip: false}}\n"
        "train: {batch_size: 4, base_lr: 0.01, base_batch_size: 4, save_every_steps: 2, steps_per_epoch: 2}\n"
        "eval: {num_clips: 1, num_crops: 1, batch_size: 4}\n"
    )
    script = TRAIN.format(runs=runs, config=str(config), root=str(tmp_path), tiny=TINY_MFNET)
    ran = run_on_backend(backend, script, env=env, tensorflow=True)
    return ran, {name: np.load(tmp_path / name / "logits.npy") for name, _, _ in runs}


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_training_runs_and_resumes_exactly_on_jax_and_torch(backend, tmp_path, demo_records):
    runs = [("straight", [2], False), ("resumed", [1, 2], False)]
    ran, logits = train_on(
        backend, tmp_path, demo_records, runs + ([("mixed", [1], True)] if backend == "torch" else [])
    )
    assert ran["straight"]["epochs"] == ran["resumed"]["epochs"] == 2
    assert {"val_accuracy", "top5"} <= set(ran["straight"]["header"])  # 8 classes: top-5 too
    assert max_relative(logits["resumed"], logits["straight"]) <= 1e-5
    if backend == "torch":  # mixed precision: the model's policy, top-5 on half-precision logits, finite outputs
        assert ran["mixed"]["dtype"] in ("mixed_bfloat16", "mixed_float16") and "top5" in ran["mixed"]["header"]
        assert np.isfinite(logits["mixed"]).all(), (ran["mixed"]["last"], ran["mixed"]["nonfinite"])
    else:  # the same training data-parallel over two simulated devices
        two = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
        parallel, got = train_on("jax", tmp_path, demo_records, [("two_devices", [2], False)], env=two)
        assert (ran["devices"], parallel["devices"]) == (1, 2)
        assert max_relative(got["two_devices"], logits["straight"]) <= 1e-4


GRADIENTS = """
import json
import numpy as np
import keras
from keras import ops
from mfnet_keras.layers import FiberConv

CASES = [  # rank, input shape, filters, kernel, fibers, strides, padding
    (3, (2, 5, 9, 9, 32), 48, (3, 3, 3), 16, (1, 2, 2), "same"),
    (3, (2, 4, 8, 8, 32), 32, (1, 3, 3), 16, 1, "same"),
    (3, (1, 6, 7, 7, 16), 96, 3, 16, (2, 1, 1), "valid"),
    (3, (1, 6, 9, 9, 16), 32, 3, 4, (1, 2, 2), (1, 1, 1)),
    (2, (2, 9, 9, 24), 24, 3, 12, 2, "same"),
    (2, (2, 8, 8, 16), 32, 5, 1, 2, "valid"),
    (2, (2, 9, 9, 32), 64, 3, 16, 2, 1),
]


def values_and_grads(layer, x):
    if keras.backend.backend() == "jax":
        import jax
        import jax.numpy as jnp

        def loss(kernel, x):
            y = layer.stateless_call([kernel], [], x)[0]
            return jnp.sum(y * jnp.cos(y)), y

        (_, y), (gk, gx) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(layer.kernel.value, jnp.asarray(x))
        return [np.asarray(v) for v in (y, gx, gk)]
    import torch

    x = torch.tensor(x, requires_grad=True)
    y = layer(x)
    (y * torch.cos(y)).sum().backward()
    return [v.detach().numpy() for v in (y, x.grad, layer.kernel.value.grad)]


rng = np.random.default_rng(0)
worst = {{}}
for rank, shape, filters, kernel_size, fibers, strides, padding in CASES:
    x = rng.standard_normal(shape).astype("float32")
    cls = keras.layers.Conv3D if rank == 3 else keras.layers.Conv2D
    explicit = not isinstance(padding, str)
    reference = cls(filters, kernel_size, strides=strides, padding="valid" if explicit else padding, groups=fibers, use_bias=False)
    pads = [(p, p) for p in ((padding,) * rank if isinstance(padding, int) else padding)] if explicit else None
    padded = np.pad(x, [(0, 0), *pads, (0, 0)]) if explicit else x
    reference.build(padded.shape)
    kernel = rng.standard_normal(reference.kernel.shape).astype("float32")
    reference.kernel.assign(kernel)
    want = values_and_grads(reference, padded)
    if explicit:  # the input gradient of the padded input, cut back to the input
        want[1] = want[1][(slice(None), *[slice(p, p + n) for (p, _), n in zip(pads, shape[1:-1])])]
    for implementation in {implementations!r}:
        layer = FiberConv(filters, kernel_size, fibers, strides, padding, implementation=implementation)
        layer.build(shape)
        layer.kernel.assign(kernel)
        got = values_and_grads(layer, x)
        error = max(float(np.abs(g - w).max() / np.abs(w).max()) for g, w in zip(got, want))
        worst[implementation] = max(worst.get(implementation, 0.0), error)
print(json.dumps(worst))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_fiber_conv_equals_keras_grouped_conv_with_gradients_on_jax_and_torch(backend):
    implementations = ["auto", "split", "grouped", "dense"]
    worst = run_on_backend(backend, GRADIENTS.format(implementations=implementations))
    assert set(worst) == set(implementations) and max(worst.values()) <= 1e-5, worst


SHORT_CLIPS = """
import json
import numpy as np
import torch
from mfnet_keras.layers import FiberConv

def kernel_gradient(dtype, x, kernel, implementation):
    layer = FiberConv(16, 3, 4, 1, "same", implementation=implementation, dtype=dtype)
    layer.build(x.shape)
    layer.kernel.assign(kernel)
    y = layer(torch.tensor(x)).float()
    (y ** 2).sum().backward()
    return layer.kernel.value.grad.float().numpy()

rng = np.random.default_rng(0)
worst = {}
for frames in (2, 3, 8):
    x = rng.standard_normal((4, frames, 4, 4, 16)).astype("float32")
    kernel = (rng.standard_normal((3, 3, 3, 4, 16)) * 0.1).astype("float32")
    for implementation in ("auto", "split"):
        want = kernel_gradient("float32", x, kernel, implementation)
        for _ in range(3):  # oneDNN's wrong gradients differ from call to call
            got = kernel_gradient("mixed_bfloat16", x, kernel, implementation)
            error = float(np.abs(got - want).max() / np.abs(want).max())
            key = f"{frames} frames, {implementation}"
            worst[key] = max(worst.get(key, 0.0), error if np.isfinite(error) else float("inf"))
print(json.dumps(worst))
"""


def test_bfloat16_kernel_gradients_of_clips_shorter_than_the_kernel_are_right_on_torch():
    """PyTorch's oneDNN, like TensorFlow's, returns wrong bfloat16 kernel gradients (NaN, or off by up to 10^36)
    for 2 frames under 3 taps with padding, which ended mixed-precision training of 4-frame clips on CI:
    `torch_ops.convolve` computes those clips in float32."""
    worst = run_on_backend("torch", SHORT_CLIPS)
    assert len(worst) == 6 and max(worst.values()) <= 0.02, worst


FUSED_BATCH_NORM = """
import json
import numpy as np
import keras
import torch
from mfnet_keras.layers import BatchNormalization, BNActConv, FrameMaxPooling

rng = np.random.default_rng(3)
x = (rng.standard_normal((2, 3, 6, 5, 8)) * 3 + 1).astype("float32")
cotangent = torch.tensor(rng.standard_normal(x.shape).astype("float32"))


def train_call(layer, x, relu):
    inputs = torch.tensor(x, requires_grad=True)
    if relu:
        y = layer.activate(inputs, training=True) if isinstance(layer, BNActConv) else keras.ops.relu(layer(inputs, training=True))
    else:
        y = layer(inputs, training=True)
    (y.float() * cotangent).sum().backward()
    bn = layer.bn if isinstance(layer, BNActConv) else layer
    weights = [bn.gamma.value.grad, bn.beta.value.grad, bn.moving_mean.value, bn.moving_variance.value]
    return [y.detach().float().numpy(), inputs.grad.numpy()] + [w.detach().numpy() for w in weights]


worst = {{}}
for dtype in ("float32", "mixed_bfloat16"):
    gamma, beta = rng.uniform(0.5, 1.5, 8).astype("float32"), rng.normal(0, 0.3, 8).astype("float32")
    for relu, fused in ((False, BatchNormalization(epsilon=1e-5, momentum=0.9, dtype=dtype)), (True, BNActConv(8, 1, dtype=dtype))):
        keras_bn = keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9, dtype=dtype)
        fused.build(x.shape)
        keras_bn.build(x.shape)
        bn = fused.bn if relu else fused
        assert bn.fuses(torch.tensor(x), training=True)
        for layer in (bn, keras_bn):
            layer.gamma.assign(gamma)
            layer.beta.assign(beta)
        got, want = train_call(fused, x, relu), train_call(keras_bn, x, relu)
        key = dtype + (" relu" if relu else "")
        worst[key] = max(float(np.abs(g - w).max() / np.abs(w).max()) for g, w in zip(got, want))

inputs = torch.tensor(x, requires_grad=True)
pooled = FrameMaxPooling(3, strides=2)(inputs)
pooled.sum().backward()
reference = torch.tensor(x, requires_grad=True)
want = keras.layers.MaxPooling3D((1, 3, 3), strides=(1, 2, 2))(reference)
want.sum().backward()
worst["pool"] = max(float(np.abs(a - b).max()) for a, b in ((pooled.detach(), want.detach()), (inputs.grad, reference.grad)))
print(json.dumps(worst))
"""


def test_batch_norm_trains_on_pytorchs_fused_kernel_with_keras_numbers():
    worst = run_on_backend("torch", FUSED_BATCH_NORM.format())
    # bfloat16 outputs differ from Keras's by at most a rounding of the last bit (2^-8 relative).
    assert worst["float32"] <= 1e-5 and worst["float32 relu"] <= 1e-5 and worst["pool"] == 0.0, worst
    assert worst["mixed_bfloat16"] <= 2**-7 and worst["mixed_bfloat16 relu"] <= 2**-7, worst
