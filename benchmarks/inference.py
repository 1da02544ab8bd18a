"""MFNet-3D inference speed, Keras (this project) against the PyTorch reference, on this machine.

    python benchmarks/inference.py [--batches 1 8] [--repeats 5]

16x224x224 clips, 400 classes, eval mode. Keras runs the model as `predict`
does (a compiled `tf.function` of `model(x, training=False)`); PyTorch runs the
reference of tests/torch_mfnet.py under `torch.inference_mode()` in its default
layout and in `channels_last_3d`. The three are interleaved, round after round,
and the medians are printed with the Keras/PyTorch ratios, the multiply-adds
per second achieved as a fraction of a float32 matmul timed in the same run,
and each side's peak memory (measured in a fresh process each).
"""

import common

SIDES = ("keras", "torch-default", "torch-channels_last_3d")


def make_runner(side, batch):
    import numpy as np

    if side == "keras":
        import tensorflow as tf

        from mfnet_keras import models

        model = models.VideoClassifier.from_preset("mfnet3d", load_weights=False)
        x = tf.constant(np.random.default_rng(0).uniform(0, 255, (batch, *common.CLIP, 3)).astype(np.float32))
        infer = tf.function(lambda clips: model(clips, training=False))
        return lambda: infer(x).numpy()
    import torch

    layout = side.removeprefix("torch-")
    model, x = common.torch_model(layout), common.torch_input(batch, layout)

    def run():
        with torch.inference_mode():
            return model(x).numpy()

    return run


def main(argv=None):
    return common.main(__doc__, __file__, make_runner, SIDES, argv)


if __name__ == "__main__":
    raise SystemExit(main())
