"""MFNet-3D training-step speed, Keras (this project) against the PyTorch reference, on this machine.

    python benchmarks/train_step.py [--batches 1 8] [--repeats 5]

One step = forward, loss, backward and an SGD update (momentum 0.9, weight decay
1e-4) on 16x224x224 clips with 400 classes. Keras runs `model.train_on_batch`
(the same compiled step as `model.fit`); PyTorch runs the reference of
tests/torch_mfnet.py in train mode, default layout and `channels_last_3d`.
Interleaved rounds, medians, Keras/PyTorch ratios, the multiply-adds per second
(3x the forward pass per clip) as a fraction of a float32 matmul timed in the
same run, and each side's peak memory in a fresh process.
"""

import common

SIDES = ("keras", "torch-default", "torch-channels_last_3d")


def make_runner(side, batch):
    import numpy as np

    labels = np.random.default_rng(1).integers(0, 400, batch)
    if side == "keras":
        import keras

        from mfnet_keras import models
        from mfnet_keras.optimizers import SGD

        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model = models.VideoClassifier.from_preset("mfnet3d", load_weights=False)
        model.compile(optimizer=SGD(0.01, momentum=0.9, l2=1e-4), loss=loss)
        x = np.random.default_rng(0).uniform(0, 255, (batch, *common.CLIP, 3)).astype(np.float32)
        return lambda: model.train_on_batch(x, labels)
    import torch

    layout = side.removeprefix("torch-")
    model, x = common.torch_model(layout).train(), common.torch_input(batch, layout)
    y = torch.from_numpy(labels)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)

    def run():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    return run


def main(argv=None):
    return common.main(__doc__, __file__, make_runner, SIDES, argv, macs_factor=3)


if __name__ == "__main__":
    raise SystemExit(main())
