"""A synthetic action dataset whose classes differ only in motion, written as real H.264 videos.

    mfnet-synthetic OUTPUT_DIR [--seed 0] [--train-per-class 48] [--test-per-class 8]

Each video shows a textured object (a square, or a disc whose texture alone
shows its rotation, hence a minimum contrast) on a smooth random background
with a static distractor object. The object moves left / right / up / down,
rotates clockwise / counter-clockwise, or grows / shrinks, at a random
speed. Every single frame is drawn from the same distribution whatever the
class (random orientation, size, position and textures), so one frame says
nothing about the class and a model must use motion: a single-frame 2D model
stays near chance, a 3D model does not. Deterministic for a seed.

Writes `<class>/<class>_NNNN.mp4`, and `train.csv` / `test.csv` (`path,label`),
so OUTPUT_DIR packs with `--layout list` (two splits) or `--layout folders`.
"""

import csv
import multiprocessing
import os
import sys

import numpy as np
from tqdm import tqdm

from tfrecords_tools.video import write_video

CLASSES = ("move_left", "move_right", "move_up", "move_down", "rotate_cw", "rotate_ccw", "grow", "shrink")


MIN_CONTRAST = 100  # distance between a texture's two colours (RGB, 0-255): a disc with less barely shows its rotation


def _texture(rng, size):
    """A random colourful texture: two colours mixed by a random stripe or checker pattern plus noise."""
    colors = rng.uniform(0, 255, (2, 3))
    while np.linalg.norm(colors[0] - colors[1]) < MIN_CONTRAST:
        colors = rng.uniform(0, 255, (2, 3))
    yy, xx = np.mgrid[0:size, 0:size] / size
    period = rng.uniform(0.15, 0.4)
    angle = rng.uniform(0, np.pi)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    v = -xx * np.sin(angle) + yy * np.cos(angle)
    if rng.random() < 0.5:
        mask = (np.floor(u / period) % 2).astype(float)
    else:
        mask = ((np.floor(u / period) + np.floor(v / period)) % 2).astype(float)
    image = colors[0] * mask[..., None] + colors[1] * (1 - mask[..., None])
    return np.clip(image + rng.normal(0, 12, image.shape), 0, 255)


def _background(rng, size):
    """Smooth random colour blobs with a little noise: textured, but calmer than the objects."""
    low = rng.uniform(0, 255, (4, 4, 3))
    coords = np.linspace(0, 3, size)
    i0 = np.clip(np.floor(coords).astype(int), 0, 2)
    f = (coords - i0)[:, None]
    rows = low[i0] * (1 - f[..., None]) + low[i0 + 1] * f[..., None]  # interpolate along y
    image = rows[:, i0] * (1 - f[None, :, :]) + rows[:, i0 + 1] * f[None, :, :]  # and along x
    return np.clip(image + rng.normal(0, 6, image.shape), 0, 255)


def _paste(canvas, texture, center, angle, scale, circle):
    """Draws `texture` (a square of side `scale`, or its inscribed disc) rotated by `angle` at `center`."""
    size = canvas.shape[0]
    half = scale / 2 * np.sqrt(2) + 1
    y0, y1 = int(max(0, center[1] - half)), int(min(size, center[1] + half + 1))
    x0, x1 = int(max(0, center[0] - half)), int(min(size, center[0] + half + 1))
    if y0 >= y1 or x0 >= x1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(float)
    dx, dy = xx - center[0], yy - center[1]
    cos, sin = np.cos(-angle), np.sin(-angle)
    u = (dx * cos - dy * sin) / scale + 0.5  # object coordinates in [0, 1]
    v = (dx * sin + dy * cos) / scale + 0.5
    inside = (u >= 0) & (u < 1) & (v >= 0) & (v < 1)
    if circle:
        inside &= (u - 0.5) ** 2 + (v - 0.5) ** 2 < 0.25
    tex = texture.shape[0]
    ty = np.clip((v * tex).astype(int), 0, tex - 1)
    tx = np.clip((u * tex).astype(int), 0, tex - 1)
    region = canvas[y0:y1, x0:x1]
    region[inside] = texture[ty[inside], tx[inside]]


def render_video(label, seed, frames=24, size=128):
    """Frames `(frames, size, size, 3)` uint8 of one video of class `label`.

    Args:
        label: the class index.
        seed: the video's seed.
        frames: frames per video.
        size: frame width and height.
    """
    rng = np.random.default_rng(seed)
    background = _background(rng, size)
    texture = _texture(rng, 32)
    distractor = (_texture(rng, 32), rng.uniform(0.15, 0.3) * size, rng.uniform(0.15, 0.85, 2) * size)
    distractor_angle, distractor_circle = rng.uniform(0, 2 * np.pi), rng.random() < 0.5
    circle = rng.random() < 0.3
    base = rng.uniform(0.22, 0.32) * size
    angle0 = rng.uniform(0, 2 * np.pi)
    t = np.arange(frames) - (frames - 1) / 2  # centred time, so the middle frame is "typical"
    centers = np.repeat(rng.uniform(0.35, 0.65, (1, 2)) * size, frames, axis=0)
    angles = np.full(frames, angle0)
    scales = np.full(frames, base * rng.uniform(0.8, 1.2))
    speed = rng.uniform(2.0, 3.0) * size / 128  # pixels per frame
    if label.startswith("move_"):
        direction = {"move_left": (-1, 0), "move_right": (1, 0), "move_up": (0, -1), "move_down": (0, 1)}[label]
        centers = centers + np.outer(t * speed, direction)
    elif label.startswith("rotate_"):
        sign = 1 if label == "rotate_cw" else -1
        angles = angle0 + sign * t * rng.uniform(0.07, 0.12)  # corners move 1-4 px per frame (translation: 2-3)
    else:
        sign = 1 if label == "grow" else -1
        scales = base * np.exp(sign * t * rng.uniform(0.025, 0.035))
    video = np.empty((frames, size, size, 3), np.uint8)
    for i in range(frames):
        canvas = background.copy()
        _paste(canvas, distractor[0], distractor[2], distractor_angle, distractor[1], distractor_circle)
        _paste(canvas, texture, centers[i], angles[i], scales[i], circle)
        video[i] = canvas
    return video


def _write_one(task):
    path, label, seed, frames, size, fps = task
    write_video(path, render_video(label, seed, frames, size), fps=fps)
    return path


def generate(output_dir, seed=0, train_per_class=48, test_per_class=8, frames=24, size=128, fps=12, workers=None):
    """Writes the dataset; returns `{split: [(relative path, label)]}`.

    Args:
        output_dir: where the videos and lists go.
        seed: the dataset's seed.
        train_per_class: training videos per class.
        test_per_class: test videos per class.
        frames: frames per video.
        size: frame width and height (even).
        fps: frame rate.
        workers: processes (default: all cores).
    """
    splits = {"train": [], "test": []}
    tasks = []
    for c, label in enumerate(CLASSES):
        os.makedirs(os.path.join(output_dir, label), exist_ok=True)
        for i in range(train_per_class + test_per_class):
            rel = f"{label}/{label}_{i:04d}.mp4"
            splits["train" if i < train_per_class else "test"].append((rel, label))
            video_seed = seed * 1_000_003 + c * 10_007 + i
            tasks.append((os.path.join(output_dir, rel), label, video_seed, frames, size, fps))
    with multiprocessing.get_context("spawn").Pool(workers or os.cpu_count()) as pool:
        for _ in tqdm(pool.imap_unordered(_write_one, tasks), total=len(tasks), unit="video", file=sys.stderr):
            pass
    for split, entries in splits.items():
        with open(os.path.join(output_dir, f"{split}.csv"), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["path", "label"])
            writer.writerows(entries)
    return splits
