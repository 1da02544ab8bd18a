"""Each convolution shape of MFNet-3D alone, Keras `FiberConv` against PyTorch's grouped `Conv3d`.

    python benchmarks/conv_layers.py [--batch 1] [--seconds 1] [--train]

Shows where the model's time goes and which layers trail PyTorch: for every
distinct convolution of MFNet-3D at 16x224x224 (stem, the multiplexer's 1x1x1
convs, conv_m1, conv_m2, conv_w1 of each stage), the median milliseconds of
Keras's `FiberConv` as the model runs it (a compiled `tf.function`, default
implementation) and of `torch.nn.Conv3d(groups=N)` in `channels_last_3d`,
their ratio, the multiply-adds per second, and the total weighted by how often
each layer occurs in the model. `--train` times forward plus both gradients.
"""

import argparse
import time

import common

# name, input (T, H, W, C), filters, kernel, strides, fibers, padding, occurrences in MFNet-3D
LAYERS = [
    ("stem", (16, 224, 224, 3), 16, (3, 5, 5), (1, 2, 2), 1, (1, 2, 2), 1),
    ("conv2 m1 first", (16, 56, 56, 16), 96, (3, 3, 3), (2, 1, 1), 16, (1, 1, 1), 1),
    ("conv2 m2 first", (8, 56, 56, 96), 96, (1, 1, 1), (1, 1, 1), 1, (0, 0, 0), 1),
    ("conv2 w1", (16, 56, 56, 16), 96, (1, 1, 1), (2, 1, 1), 1, (0, 0, 0), 1),
    ("conv2 i1", (8, 56, 56, 96), 24, (1, 1, 1), (1, 1, 1), 1, (0, 0, 0), 2),
    ("conv2 i2", (8, 56, 56, 24), 96, (1, 1, 1), (1, 1, 1), 1, (0, 0, 0), 2),
    ("conv2 m1", (8, 56, 56, 96), 96, (3, 3, 3), (1, 1, 1), 16, (1, 1, 1), 2),
    ("conv2 m2", (8, 56, 56, 96), 96, (1, 3, 3), (1, 1, 1), 16, (0, 1, 1), 2),
    ("conv3 m1 first", (8, 56, 56, 96), 192, (3, 3, 3), (1, 2, 2), 16, (1, 1, 1), 1),
    ("conv3 m1", (8, 28, 28, 192), 192, (3, 3, 3), (1, 1, 1), 16, (1, 1, 1), 3),
    ("conv3 m2", (8, 28, 28, 192), 192, (1, 3, 3), (1, 1, 1), 16, (0, 1, 1), 3),
    ("conv3 i1", (8, 28, 28, 192), 48, (1, 1, 1), (1, 1, 1), 1, (0, 0, 0), 3),
    ("conv4 m1 first", (8, 28, 28, 192), 384, (3, 3, 3), (1, 2, 2), 16, (1, 1, 1), 1),
    ("conv4 m1", (8, 14, 14, 384), 384, (3, 3, 3), (1, 1, 1), 16, (1, 1, 1), 5),
    ("conv4 m2", (8, 14, 14, 384), 384, (1, 3, 3), (1, 1, 1), 16, (0, 1, 1), 5),
    ("conv4 i1", (8, 14, 14, 384), 96, (1, 1, 1), (1, 1, 1), 1, (0, 0, 0), 5),
    ("conv5 m1 first", (8, 14, 14, 384), 768, (3, 3, 3), (1, 2, 2), 16, (1, 1, 1), 1),
    ("conv5 m1", (8, 7, 7, 768), 768, (3, 3, 3), (1, 1, 1), 16, (1, 1, 1), 2),
    ("conv5 m2", (8, 7, 7, 768), 768, (1, 3, 3), (1, 1, 1), 16, (0, 1, 1), 2),
]


def timed(run, seconds):
    """Median seconds of `run` over at least `seconds` (and 3 calls), after 2 warm-up calls."""
    run()
    run()
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 3:
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return common.median(times)


def keras_runner(shape, filters, kernel, strides, fibers, padding, train):
    import numpy as np
    import tensorflow as tf

    from mfnet_keras.layers import FiberConv

    layer = FiberConv(filters, kernel, fibers, strides, padding)
    x = tf.constant(np.random.default_rng(0).standard_normal(shape, dtype=np.float32))
    layer.build(x.shape)

    @tf.function
    def step():
        if not train:
            return layer(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
        return tape.gradient(y, [x, layer.kernel], output_gradients=y)

    return lambda: tf.nest.map_structure(lambda t: t.numpy(), step())


def torch_runner(shape, filters, kernel, strides, fibers, padding, train):
    import torch

    conv = torch.nn.Conv3d(shape[-1], filters, kernel, strides, padding, groups=fibers, bias=False)
    conv = conv.to(memory_format=torch.channels_last_3d)
    x = torch.randn(shape[0], shape[-1], *shape[1:-1]).contiguous(memory_format=torch.channels_last_3d)
    if not train:

        def run():
            with torch.inference_mode():
                return conv(x)

        return run
    x.requires_grad_(True)

    def run():
        conv.zero_grad()
        y = conv(x)
        y.backward(y.detach())

    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=1.0, help="timing window per layer and side")
    parser.add_argument("--train", action="store_true", help="forward and both gradients")
    args = parser.parse_args(argv)
    import torch

    torch.set_grad_enabled(args.train)
    print(f"machine: {common.machine()}; batch {args.batch}, {'training' if args.train else 'inference'}")
    print(
        f"{'layer':<16}{'x':>3}{'keras ms':>10}{'torch ms':>10}{'keras/torch':>13}{'keras GMAC/s':>14}{'torch GMAC/s':>14}"
    )
    totals = [0.0, 0.0]
    for name, size, filters, kernel, strides, fibers, padding, count in LAYERS:
        shape = (args.batch, *size)
        spec = (shape, filters, kernel, strides, fibers, padding, args.train)
        keras_s = timed(keras_runner(*spec), args.seconds)
        torch_s = timed(torch_runner(*spec), args.seconds)
        out = [(n + 2 * p - k) // s + 1 for n, p, k, s in zip(size[:3], padding, kernel, strides)]
        macs = args.batch * out[0] * out[1] * out[2] * filters * (size[3] // fibers) * kernel[0] * kernel[1] * kernel[2]
        macs *= 3 if args.train else 1
        totals[0] += count * keras_s
        totals[1] += count * torch_s
        print(
            f"{name:<16}{count:>3}{1e3 * keras_s:>10.2f}{1e3 * torch_s:>10.2f}{torch_s / keras_s:>13.2f}"
            f"{macs / keras_s / 1e9:>14.1f}{macs / torch_s / 1e9:>14.1f}",
            flush=True,
        )
    print(f"{'all, weighted':<19}{1e3 * totals[0]:>10.1f}{1e3 * totals[1]:>10.1f}{totals[1] / totals[0]:>13.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
