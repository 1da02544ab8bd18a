"""Deployment: every exported runtime and precision against Keras and the PyTorch reference, side by side.

    python benchmarks/deploy.py [--sizes 16x224 8x112] [--repeats 10] [--demo runs/demo]

For each clip size, an MFNet-3D classifier is exported as `mfnet_keras.export`
writes it (each runtime's graph form): LiteRT float32 and int8, ONNX (run by
onnxruntime), OpenVINO (run at float32 and at bf16) and OpenVINO int8 (NNCF). At batch 1 they run
interleaved, round after round, with Keras (a compiled `tf.function`, as
`predict` runs it) and the PyTorch MF-Net of tests/torch_mfnet.py in
`channels_last_3d`, each timed call after an untimed one of the same runtime (so
that no runtime pays for another's spinning threads); medians are printed as ms per clip with the speed-up over
PyTorch, MB on disk, and the largest logit difference from Keras on random clips.

With `--demo` (a `make demo` output folder), every size uses the demo's
trained classifier (rebuilt for the size, see `classifier`), int8 is calibrated
on demo training clips, and each runtime's top-1 is compared on every held-out
demo clip (the eval split, `--demo-views` clips per video) with Keras's and,
for a reduced precision, with the same runtime's float32. Without it the
weights are random (400 classes) and int8 is calibrated on random clips.
"""

import argparse
import os
import tempfile

import common
import numpy as np

# name, export format, precision, OpenVINO's inference precision
RUNTIMES = [
    ("LiteRT float32", "litert", "float32", None),
    ("LiteRT int8", "litert", "int8", None),
    ("ONNX Runtime float32", "onnx", "float32", None),
    ("OpenVINO float32", "openvino", "float32", "f32"),
    ("OpenVINO bf16", "openvino", "float32", "bf16"),
    ("OpenVINO int8", "openvino", "int8", None),
]
FLOAT_OF = {"LiteRT int8": "LiteRT float32", "OpenVINO bf16": "OpenVINO float32", "OpenVINO int8": "OpenVINO float32"}


def classifier(size, demo):
    """`(model, trained)`: the demo's trained classifier, rebuilt for clips of `size` when it was trained at
    another (the same weights: the network is convolutional up to its global pooling; the frame interval
    becomes 1, so that 16 frames fit the demo's 24-frame videos), else MFNet-3D with seeded random weights."""
    import keras

    from mfnet_keras import models

    frames, crop = size
    path = demo and os.path.join(demo, "mfnet3d", "model.keras")
    if not (path and os.path.exists(path)):
        keras.utils.set_random_seed(0)
        return models.VideoClassifier.from_preset(
            "mfnet3d", load_weights=False, clip_length=frames, crop_size=crop
        ), False
    model = models.load_model(path)
    if (model.preprocessor.clip_length, model.preprocessor.crop_size) == size:
        return model, True
    config = model.get_config()
    config["backbone"]["config"]["input_shape"] = [frames, crop, crop, 3]
    pre = config["preprocessor"]["config"]
    pre.update(clip_length=frames, crop_size=crop, short_side=round(crop * 256 / 224), frame_interval=1)
    resized = models.VideoClassifier.from_config(config)
    resized.set_weights(model.get_weights())
    return resized, True


def export_all(model, folder, calibration):
    """`{name: (artefact path, MB on disk)}` of every runtime's export."""
    from mfnet_keras.export import ARTEFACTS, export_runtime

    paths = {}
    for name, format, precision, _ in RUNTIMES:
        out = os.path.join(folder, f"{format}-{precision}")
        if not os.path.isdir(out):
            export_runtime(model, out, format, precision, calibration if precision == "int8" else None)
        path = os.path.join(out, ARTEFACTS[format])
        size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out)) / 2**20
        paths[name] = (path, size)
    return paths


def runners(model, paths, size):
    """`{name: function of clips [N, T, crop, crop, 3] → logits}` for Keras, PyTorch and each runtime."""
    import tensorflow as tf
    import torch

    from mfnet_keras.inference import runtime_logits

    infer = tf.function(lambda clips: model(clips, training=False))
    out = {"Keras (TensorFlow) float32": lambda clips: infer(tf.constant(clips)).numpy()}
    for name, _, _, openvino in RUNTIMES:
        out[name] = runtime_logits(paths[name][0], openvino)
    reference = common.torch_model("channels_last_3d")
    frames, crop = size
    x = torch.randn((1, 3, frames, crop, crop)).contiguous(memory_format=torch.channels_last_3d)

    def pytorch(clips):
        with torch.inference_mode():
            return reference(x).numpy()

    out["PyTorch channels_last_3d float32"] = pytorch
    return out


def demo_clips(demo, model, views):
    """Every held-out demo clip as the eval pipeline cuts it, `views` per video, with the labels."""
    from mfnet_keras.data import make_dataset

    pre = model.preprocessor
    ds = make_dataset(
        os.path.join(demo, "records", "test-*.tfrecord"),
        "eval",
        batch_size=8,
        clip_length=pre.clip_length,
        crop_size=pre.crop_size,
        eval_short_side=pre.short_side,
        frame_intervals=(pre.frame_interval,),
        num_clips=views,
    )
    clips, labels = zip(*[(c.numpy(), y.numpy()) for c, y, _ in ds])
    return np.concatenate(clips), np.concatenate(labels)


def agreement(run, clips):
    """Top-1 of each clip, one clip at a time (batch 1, as timed)."""
    return np.array([int(np.argmax(run(clip[None])[0])) for clip in clips])


def benchmark(size, args, folder):
    """Times every runtime at `size`; returns table rows."""
    model, trained = classifier(size, args.demo)
    rng = np.random.default_rng(0)
    if trained:
        from mfnet_keras.export import read_calibration_clips

        records = os.path.join(args.demo, "records", "train-*.tfrecord")
        calibration = read_calibration_clips(model, records, args.calibration_clips)
    else:
        calibration = [rng.uniform(0, 255, (1, *size, size[1], 3)).astype(np.float32) for _ in range(8)]
    paths = export_all(model, os.path.join(folder, f"{size[0]}x{size[1]}"), calibration)
    run = runners(model, paths, size)
    clip = rng.uniform(0, 255, (1, *size, size[1], 3)).astype(np.float32)
    keras_logits = run["Keras (TensorFlow) float32"](clip)
    times = common.interleave({name: (lambda f=f: f(clip)) for name, f in run.items()}, args.repeats, settle=1)
    torch_ms = 1000 * common.median(times["PyTorch channels_last_3d float32"])
    top1 = {}
    if trained:
        clips, labels = demo_clips(args.demo, model, args.demo_views)
        top1 = {name: agreement(f, clips) for name, f in run.items() if not name.startswith("PyTorch")}
        print(
            f"{size}: {len(clips)} held-out demo clips; Keras top-1 accuracy {np.mean(top1['Keras (TensorFlow) float32'] == labels):.3f}"
        )
    rows = []
    for name, f in run.items():
        ms = 1000 * common.median(times[name])
        mb = paths[name][1] if name in paths else None
        error = None
        if not name.startswith("PyTorch"):
            error = float(np.abs(f(clip) - keras_logits).max() / np.abs(keras_logits).max())
        agree = float(np.mean(top1[name] == top1["Keras (TensorFlow) float32"])) if name in top1 else None
        own = float(np.mean(top1[name] == top1[FLOAT_OF[name]])) if name in top1 and name in FLOAT_OF else None
        rows.append((size, name, ms, torch_ms / ms, mb, error, agree, own))
        print(f"{size} {name}: {ms:.1f} ms", flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["16x224", "8x112"], help="clip sizes FRAMESxCROP")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--demo", help="a `make demo` output folder (runs/demo): its classifier and held-out clips")
    parser.add_argument("--demo-views", type=int, default=4, help="clips per held-out demo video (default: 4)")
    parser.add_argument("--calibration-clips", type=int, default=64, help="demo clips calibrating int8 (default: 64)")
    parser.add_argument("--work", help="where the exports go (default: a temporary folder); reused when present")
    args = parser.parse_args(argv)
    import torch

    import mfnet_keras  # noqa: F401

    print(f"machine: {common.machine()}; torch {torch.__version__} ({torch.get_num_threads()} threads)")
    sizes = [tuple(int(n) for n in s.split("x")) for s in args.sizes]
    with tempfile.TemporaryDirectory() as tmp:
        rows = [row for size in sizes for row in benchmark(size, args, args.work or tmp)]
    print()
    print(
        "| clip | runtime | ms / clip | × PyTorch | MB | max logit diff / max logit | top-1 = Keras | top-1 = own float32 |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for size, name, ms, speedup, mb, error, agree, own in rows:
        cells = [
            f"{size[0]}×{size[1]}×{size[1]}",
            name,
            f"{ms:.1f}",
            f"{speedup:.2f}",
            "" if mb is None else f"{mb:.1f}",
            "" if error is None else f"{error:.1e}",
            "" if agree is None else f"{100 * agree:.1f} %",
            "" if own is None else f"{100 * own:.1f} %",
        ]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
