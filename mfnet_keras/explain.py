"""Why the model said so: Grad-CAM over space and time, as an overlay video and a contact sheet.

    mfnet-predict VIDEO --model model.keras --explain [--output DIR]

Grad-CAM (Selvaraju et al., 2017): the gradient of the class score with
respect to a feature map `A` (`[t, h, w, channels]`), averaged over its
positions, weighs each channel; `relu(sum_k weight_k * A_k)` is the map. `A`
is the backbone's last convolution stage (after its BatchNorm and ReLU), or,
where that grid is coarser than 4 cells a side (small crops), the last
layer whose grid is not. The score is a function of `A` built from the
model's own layers, differentiated by the running backend (TensorFlow, JAX or
PyTorch), and the map is upsampled to the clip, frame by frame and in time.
"""

import dataclasses
import os

import keras
import numpy as np
from keras import ops

from mfnet_keras.errors import MFNetError
from mfnet_keras.files import remove_empty_partial, replacing, save_figure
from tfrecords_tools.video import write_video

MIN_GRID = 4  # cells a side below which a map cannot say where in the frame


class ExplainError(MFNetError, ValueError):
    """A model that `--explain` cannot read (another head, an unknown layer): one line."""


@dataclasses.dataclass
class Explanation:
    """The clip as the model saw it (`view`, uint8 `[T, crop, crop, 3]`), the saliency over it (`saliency`,
    float `[T, crop, crop]` in [0, 1]), the class it explains and the layer it was taken at.

    Attributes:
        view: uint8 `[T, crop, crop, 3]`, the clip as the model saw it.
        saliency: float `[T, crop, crop]` in [0, 1].
        index: the class explained.
        label: its name.
        probability: its probability.
        layer: the backbone layer the saliency was read at.
    """

    view: np.ndarray
    saliency: np.ndarray
    index: int
    label: str
    probability: float
    layer: str


def saliency_layer(backbone):
    """The name of the layer Grad-CAM reads: the backbone's last whose grid has >= `MIN_GRID` cells a side.

    Args:
        backbone: the classifier's backbone.
    """
    found = None
    for layer in backbone.layers:
        shape = getattr(layer, "output", None) is not None and tuple(layer.output.shape)
        if shape and len(shape) >= 4 and None not in shape[-3:-1] and min(shape[-3:-1]) >= MIN_GRID:
            found = layer.name
    return found or backbone.layers[-1].name


def split_at(model, layer):
    """`(clips -> A, A -> logits)`: a `VideoClassifier` cut at the backbone layer named `layer`.

    Args:
        model: a `VideoClassifier`.
        layer: the name of a backbone layer.
    """
    backbone = model.backbone
    try:
        features = backbone.get_layer(layer).output
    except ValueError:
        raise ExplainError(f"the backbone has no layer {layer!r}") from None
    names = {item.name for item in model.layers}
    if "pool" not in names or "classifier" not in names:
        raise ExplainError("--explain needs a VideoClassifier (a backbone, then pooling and a classifier)")
    to_features = keras.Model(backbone.input, features)
    rest = (lambda a: a) if features is backbone.output else keras.Model(features, backbone.output)

    def encode(clips):
        x = model.preprocessor(clips)
        return to_features(model.get_layer("merge_frames")(x) if "merge_frames" in names else x)

    def score(a):  # dropout, between the pooling and the classifier, does nothing at inference
        x = rest(a)
        x = model.get_layer("split_frames")(x) if "split_frames" in names else x
        return model.get_layer("classifier")(model.get_layer("pool")(x))

    return encode, score


def gradient(fn, x):
    """`(fn(x), d sum(fn(x)) / dx)` by the running backend's automatic differentiation.

    Args:
        fn: a function of one tensor whose output is differentiated.
        x: the input.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
        return y, tape.gradient(y, x)
    if backend == "jax":
        import jax

        y, pullback = jax.vjp(fn, x)
        return y, pullback(jax.numpy.ones_like(y))[0]
    if backend == "torch":
        import torch

        x = x.detach().requires_grad_(True)
        y = fn(x)
        return y, torch.autograd.grad(y.sum(), x)[0]
    raise ExplainError(f"--explain runs on TensorFlow, JAX or PyTorch, not {backend}")


def grad_cam(features, gradients):
    """`relu(sum_k mean(gradients_k) * features_k)` over the last axis (channels): `[t, h, w]` in numpy.

    Args:
        features: the layer's output `[t, h, w, channels]`.
        gradients: the top class's gradient with respect to it.
    """
    weights = gradients.reshape(-1, gradients.shape[-1]).mean(axis=0)
    return np.maximum(np.einsum("...k,k->...", features, weights), 0)


def upsample(grid, frames, size):
    """A `[t, h, w]` map resized to `[frames, size, size]`: bilinear in space, linear in time (cell centres).

    Args:
        grid: a `[t, h, w]` map.
        frames: frames of the output.
        size: the output's height and width.
    """
    spatial = ops.convert_to_numpy(ops.image.resize(ops.convert_to_tensor(grid[..., None]), (size, size)))[..., 0]
    position = np.clip((np.arange(frames) + 0.5) * len(grid) / frames - 0.5, 0, len(grid) - 1)
    low = np.floor(position).astype(int)
    high, weight = np.minimum(low + 1, len(grid) - 1), (position - low)[:, None, None]
    return spatial[low] * (1 - weight) + spatial[high] * weight


def explain_clip(model, clip, index=None, layer=None):
    """The `Explanation` of one uint8 clip `[T, H, W, 3]` for class `index` (default: the top class), at the
    backbone layer `layer` (default: `saliency_layer`).

    Args:
        model: a `VideoClassifier`.
        clip: a uint8 clip `[T, H, W, 3]`.
        index: the class to explain (default: the top class).
        layer: the backbone layer to read (default: `saliency_layer`).

    Examples:
    >>> from mfnet_keras.models import VideoClassifier
    >>> model = VideoClassifier.from_preset("mfnet3d", num_classes=3, clip_length=4, crop_size=64)
    >>> explained = explain_clip(model, np.zeros((4, 72, 96, 3), np.uint8))
    >>> explained.view.shape, explained.saliency.shape, explained.layer
    ((4, 64, 64, 3), (4, 64, 64), 'conv4_B06')
    """
    layer = layer or saliency_layer(model.backbone)
    encode, score = split_at(model, layer)
    features = encode(ops.convert_to_tensor(clip[None]))
    logits = ops.convert_to_numpy(ops.cast(score(features), "float32"))[0]
    index = int(np.argmax(logits)) if index is None else int(index)
    _, grads = gradient(lambda a: ops.cast(score(a)[:, index], "float32"), features)
    as_numpy = lambda t: ops.convert_to_numpy(ops.cast(t, "float32"))  # noqa: E731
    grid = grad_cam(as_numpy(features), as_numpy(grads))
    pre = model.preprocessor
    grid = grid.reshape(-1, *grid.shape[-2:])  # a 2D backbone's frames: [T, h, w] already
    saliency = upsample(grid, pre.clip_length, pre.crop_size)
    saliency = saliency / saliency.max() if saliency.max() > 0 else saliency
    view = np.clip(ops.convert_to_numpy(pre.resize_and_crop(clip[None]))[0], 0, 255).astype(np.uint8)
    if model.activation is None:
        probability = float(np.exp(logits[index] - logits.max()) / np.exp(logits - logits.max()).sum())
    else:
        probability = float(logits[index])
    return Explanation(view, saliency.astype(np.float32), index, model.class_names[index], probability, layer)


def overlay(explained, alpha=0.45):
    """uint8 frames `[T, crop, crop, 3]`: the view with the saliency drawn over it (matplotlib's jet).

    Args:
        explained: an `Explanation`.
        alpha: the saliency's opacity.
    """
    from matplotlib import colormaps  # plotting libraries load only when a plot is asked for

    heat = colormaps["jet"](explained.saliency)[..., :3] * 255
    weight = alpha * explained.saliency[..., None] ** 0.5
    return np.clip(explained.view * (1 - weight) + heat * weight, 0, 255).astype(np.uint8)


def write_explanation(explained, stem, fps):
    """Writes `stem.explain.mp4` (the overlay at `fps`) and `stem.explain.png` (a contact sheet: each frame
    above its overlay); returns their paths.

    Args:
        explained: an `Explanation`.
        stem: the path of the files, less their suffixes.
        fps: the video's frame rate.
    """
    frames = overlay(explained)
    video, sheet = stem + ".explain.mp4", stem + ".explain.png"
    os.makedirs(os.path.dirname(os.path.abspath(stem)), exist_ok=True)
    even = frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]  # H.264 in yuv420p: even sides
    with replacing(video) as tmp:
        write_video(tmp, even, fps=max(1, round(fps)))
    count = len(frames)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.3 * count, 3.0))
    axes = fig.subplots(2, count, squeeze=False)
    for t in range(count):
        axes[0, t].imshow(explained.view[t])
        axes[1, t].imshow(frames[t])
        axes[0, t].axis("off")
        axes[1, t].axis("off")
    title = f"{explained.label} {100 * explained.probability:.1f}%: Grad-CAM at {explained.layer}"
    fig.suptitle(title, fontsize=9)
    save_figure(fig, sheet)
    remove_empty_partial(os.path.dirname(os.path.abspath(stem)))
    return video, sheet
