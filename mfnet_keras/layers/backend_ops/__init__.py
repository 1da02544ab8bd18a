"""The one place model layers learn which backend runs them.

`current()` is the module of Keras's backend: `tensorflow_ops`, `jax_ops`
or `torch_ops`. Each has the same functions, which the layers call after
choosing the module once, when they are built:

- `plan_conv(plan)`: the paths a `FiberConv` takes (`portable.ConvPlan`);
- `convolve(xs, kernel, plan, split, training)`: its output, a list of tensors;
- `FUSED_BATCH_NORM` and `batch_norm(x, gamma, beta, epsilon, relu)`: BatchNorm's
  training step as the backend's fused kernel, where it has one;
- `moving_average(moving, batch, momentum)`: BatchNorm's statistics update;
- `max_pool_frames(clips, pool_size, strides, padding)`: a `1 × k × k` max-pool.

Each imports its framework at the top, and only `current()` imports one of
them: the model code runs where only one framework is installed.

Their arguments, the same in every module:

- `plan`: the layer's `portable.ConvPlan`;
- `xs`: one tensor, or one per fiber (channels last);
- `kernel`: the layer's kernel, `(*window, in // num_fibers, out)`;
- `split`: convolve fiber by fiber;
- `training`: the call's training flag (some backends run a path in inference only);
- `x`, `gamma`, `beta`, `epsilon`, `relu`: the channels-last input, the scale, the offset, what is
  added to the variance, and whether a ReLU follows;
- `moving`, `batch`, `momentum`: the moving statistic, the batch's, and the weight of `moving`;
- `clips`, `pool_size`, `strides`, `padding`: channels-last clips `[batch, T, H, W, C]`, the spatial
  window `k`, the spatial stride, `"valid"` or `"same"`.
"""

import importlib

import keras

MODULES = {"tensorflow": "tensorflow_ops", "jax": "jax_ops", "torch": "torch_ops"}


def current():
    """The ops module of the backend Keras runs on (e.g. `torch_ops` under `KERAS_BACKEND=torch`)."""
    backend = keras.backend.backend()
    if backend not in MODULES:
        raise ValueError(f"mfnet_keras layers run on the {', '.join(MODULES)} backends. Received: backend={backend}")
    return importlib.import_module(f"{__name__}.{MODULES[backend]}")
