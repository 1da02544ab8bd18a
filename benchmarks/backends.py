"""MFNet-3D on every Keras backend against the PyTorch reference: inference and a training step, on this machine.

    python benchmarks/backends.py [--shape 16x224x224] [--batch 1] [--repeats 3] [--rounds 1] [--dtypes float32 bfloat16]
                                  [--sides keras-tensorflow keras-jax keras-torch torch-channels_last_3d ...]

Each side runs in its own process (a Keras backend is chosen when Keras is
imported): `keras-tensorflow`, `keras-jax` and `keras-torch` run this project's
`VideoClassifier` (inference: `predict_on_batch`; training: `fit` with SGD,
momentum 0.9, 400 classes, the median step of an epoch of `FIT_STEPS`
batches); `torch-default` and
`torch-channels_last_3d` run the reference of tests/torch_mfnet.py (inference
under `torch.inference_mode()`, a training step with `torch.optim.SGD`).
bfloat16: Keras with `dtype="mixed_bfloat16"`, PyTorch under
`torch.autocast("cpu", torch.bfloat16)`. The JAX and PyTorch sides import no
TensorFlow, so the script runs on a machine that has none (a GPU box: the
Keras sides then use its GPU, the reference runs on CUDA when available).
Prints the median seconds per call of each side and its speed relative to
the first PyTorch side of the list; with `--rounds R` every side is measured R
times, the sides taking turns, and the median round is printed, then every
round with its ratio to that round's reference (this machine's speed drifts
by 10–20 % over minutes).
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIDES = ("keras-tensorflow", "keras-jax", "keras-torch", "torch-default", "torch-channels_last_3d")
TASKS = ("infer", "train")
# A Keras training call is one epoch of `fit` over this many batches, timed batch by batch: how models train
# (`train_on_batch` rebuilds some of its state on every call, about 30 ms a step on the PyTorch backend), without
# the epoch's set-up (on TensorFlow now and then seconds: an iterator over the arrays).
FIT_STEPS = 4


def _median(values):
    """The median (the upper one of an even count) of the values that are not None (failed runs), or None."""
    values = sorted(v for v in values if v is not None)
    return values[len(values) // 2] if values else None


def _round_text(seconds, side, reference):
    """One round's figure of `side`, with its ratio to the same round's reference."""
    value, base = seconds[side], seconds.get(reference)
    if value is None:
        return "failed"
    return f"{value:.3f}" + (f" ({base / value:.2f}x)" if base else "")


def _keras_runner(task, dtype, batch, shape):
    import keras
    import numpy as np

    from mfnet_keras import models

    options = {"dtype": "mixed_bfloat16"} if dtype == "bfloat16" else {}
    model = models.VideoClassifier.from_preset(
        "mfnet3d", load_weights=False, clip_length=shape[0], crop_size=shape[1], **options
    )
    x = np.random.default_rng(0).uniform(0, 255, (batch, *shape, 3)).astype("float32")
    if task == "infer":

        def infer():
            keras.ops.convert_to_numpy(model.predict_on_batch(x))

        return infer
    labels = np.random.default_rng(1).integers(0, 400, batch * FIT_STEPS)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=loss)
    clips = np.concatenate([x] * FIT_STEPS)
    times = []

    class StepTimes(keras.callbacks.Callback):
        def on_train_batch_begin(self, step, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, step, logs=None):
            times.append(time.perf_counter() - self.start)

    def fit():
        times.clear()
        model.fit(clips, labels, batch_size=batch, epochs=1, shuffle=False, verbose=0, callbacks=[StepTimes()])
        return _median(times)

    return fit


def _torch_runner(layout, task, dtype, batch, shape):
    import contextlib

    import torch

    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from torch_mfnet import MFNet, randomized

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = randomized(MFNet(400, dims=3)).to(device)
    x = torch.randn((batch, 3, *shape), device=device)
    if layout == "channels_last_3d":
        model, x = model.to(memory_format=torch.channels_last_3d), x.contiguous(memory_format=torch.channels_last_3d)
    autocast = torch.autocast(device, torch.bfloat16) if dtype == "bfloat16" else contextlib.nullcontext()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if task == "infer":

        def infer():
            with torch.inference_mode(), autocast:
                model(x)
            sync()

        return infer
    model.train()
    y = torch.randint(0, 400, (batch,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        optimizer.zero_grad()
        with autocast:
            loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        sync()

    return step


def child(side, task, dtype, batch, shape, repeats):
    """In this process: builds `side` and prints the median seconds of `repeats` calls after two warm-ups."""
    if side.startswith("keras-"):
        run = _keras_runner(task, dtype, batch, shape)
    else:
        run = _torch_runner(side.removeprefix("torch-"), task, dtype, batch, shape)
    run()
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        seconds = run()  # a `fit` times its own steps
        times.append(time.perf_counter() - start if seconds is None else seconds)
    print(json.dumps({"seconds": _median(times), "tensorflow": "tensorflow" in sys.modules}))


def measure(side, task, dtype, batch, shape, repeats):
    """Median seconds per call of `side` in a fresh process, or None when it failed (its last error line is printed)."""
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "1"}
    if side.startswith("keras-"):
        env["KERAS_BACKEND"] = side.removeprefix("keras-")
    shape_text = "x".join(map(str, shape))
    command = [sys.executable, __file__, "--child", side, task, dtype, str(batch), shape_text, str(repeats)]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode:
        print(f"  {side} {task} {dtype}: failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}", flush=True)
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])["seconds"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="16x224x224", help="clip frames x height x width (square)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--rounds", type=int, default=1, help="measure every side this many times, interleaved; report the median"
    )
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--sides", nargs="+", default=list(SIDES), choices=SIDES)
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        side, task, dtype, batch, shape, repeats = args.child
        child(side, task, dtype, int(batch), tuple(int(n) for n in shape.split("x")), int(repeats))
        return 0
    shape = tuple(int(n) for n in args.shape.split("x"))
    reference = next((s for s in args.sides if s.startswith("torch-")), None)
    print(
        f"MFNet-3D, batch {args.batch}, {args.shape}; median of {args.repeats} calls"
        f"{f', median of {args.rounds} interleaved rounds' if args.rounds > 1 else ''}; {os.cpu_count()} cores"
    )
    rounds_header = "  each round: s/call (ratio)" if args.rounds > 1 else ""
    print(f"{'task':<6}{'dtype':<10}{'side':<24}{'s/call':>8}{'vs ' + (reference or '-'):>28}{rounds_header}")
    for task in args.tasks:
        for dtype in args.dtypes:
            rounds = [
                {side: measure(side, task, dtype, args.batch, shape, args.repeats) for side in args.sides}
                for _ in range(args.rounds)
            ]
            seconds = {side: _median([r[side] for r in rounds]) for side in args.sides}
            base = seconds.get(reference)
            for side, value in seconds.items():
                ratio = f"{base / value:.2f}x" if base and value else ""
                shown = f"{value:.3f}" if value else "failed"
                every = " ".join(_round_text(r, side, reference) for r in rounds) if len(rounds) > 1 else ""
                print(f"{task:<6}{dtype:<10}{side:<24}{shown:>8}{ratio:>28}  {every}".rstrip(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
