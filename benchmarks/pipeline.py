"""Input pipeline throughput: tf.data from TFRecords vs decoding clips straight from the video files.

    python benchmarks/pipeline.py [--videos 48] [--seconds 20]

Makes a synthetic dataset of 256×256 H.264 videos of 7 s at 25 fps (175
frames; UCF-101's videos average 7 s at 25 fps, 320×240), packs it (short side
256), then measures clips/s for 16×224×224 and 16×112×112:

- tf.data train: `make_dataset(split="train")` (random interval-2 clip, random
  rescale + crop, flip, HLS jitter, normalise), batch 8;
- tf.data eval: one centre clip per video (resize to 256, centre crop);
- straight from video: what the official PyTorch loader does with OpenCV —
  open the video, seek (to the keyframe before the clip: x264's default GOP
  of 250 frames puts the only one at the start), decode sequentially to the
  sampled frames, resize, crop, flip, normalise in NumPy — in a process pool
  with one process per core. It does no colour jitter, which only favours it.

All on the same cores. Prints a table of medians over several timed windows.
"""

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mfnet_keras  # noqa: E402,F401  (TensorFlow options before it loads)
from tfrecords_tools import pack, synthetic  # noqa: E402

FRAMES, FPS = 175, 25


def straight_from_video(task):
    """One training clip decoded from the video file with PyAV, augmented in NumPy."""
    import av
    from PIL import Image

    path, clip_length, interval, crop, seed = task
    rng = np.random.default_rng(seed)
    with av.open(path) as container:
        stream = container.streams.video[0]
        total = stream.frames or FRAMES
        span = (clip_length - 1) * interval + 1
        start = int(rng.integers(0, max(total - span, 0) + 1))
        wanted = {(start + i * interval) % total for i in range(clip_length)}
        frames = {}
        for index, frame in enumerate(container.decode(stream)):
            if index in wanted:
                frames[index] = frame.to_ndarray(format="rgb24")
            if len(frames) == len(wanted):
                break
    short = rng.uniform(crop, crop * 288 / 224)
    clip = []
    for index in sorted(wanted):
        image = frames[index]
        scale = short / min(image.shape[:2])
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        clip.append(np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR)))
    clip = np.stack(clip).astype(np.float32)
    y = int(rng.integers(0, clip.shape[1] - crop + 1))
    x = int(rng.integers(0, clip.shape[2] - crop + 1))
    clip = clip[:, y : y + crop, x : x + crop]
    if rng.random() < 0.5:
        clip = clip[:, :, ::-1]
    return ((clip / 255.0 - 0.45) / 0.225).shape


def rate(iterator, clips_per_item, seconds, windows=3):
    """Median clips/s over `windows` timed windows of `seconds / windows` each, after one warm-up item."""
    next(iterator)
    rates = []
    for _ in range(windows):
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds / windows:
            next(iterator)
            count += clips_per_item
        rates.append(count / (time.perf_counter() - started))
    return statistics.median(rates)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=48, help="synthetic videos (default: 48)")
    parser.add_argument("--seconds", type=float, default=20, help="timing per measurement (default: 20)")
    args = parser.parse_args()
    from mfnet_keras.data import make_dataset

    cores = os.cpu_count()
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "videos")
        per_class = max(1, args.videos // len(synthetic.CLASSES))
        synthetic.generate(
            source, seed=0, train_per_class=per_class, test_per_class=0, frames=FRAMES, size=256, fps=FPS
        )
        records = os.path.join(tmp, "records")
        pack.pack_dataset(source, records, layout="list", short_side=256)
        pattern = os.path.join(records, "train-*.tfrecord")
        videos = [
            os.path.join(source, line.split(",")[0])
            for line in open(os.path.join(source, "train.csv")).read().split()[1:]
        ]
        print(
            f"\nmachine: {cores} cores; {len(videos)} videos of {FRAMES} frames, 256x256 H.264; 16-frame clips, interval 2"
        )
        print(f"{'clip':>12}{'tf.data train':>16}{'tf.data eval':>15}{'from video':>13}{'train/video':>14}")
        for crop in (224, 112):
            train = make_dataset(pattern, "train", batch_size=8, clip_length=16, crop_size=crop, seed=0).repeat()
            evaluate = make_dataset(pattern, "eval", batch_size=8, clip_length=16, crop_size=crop).repeat()
            train_rate = rate(iter(train), 8, args.seconds)
            eval_rate = rate(iter(evaluate), 8, args.seconds)
            tasks = ((videos[i % len(videos)], 16, 2, crop, i) for i in range(10**9))
            with multiprocessing.get_context("spawn").Pool(cores) as pool:
                video_rate = rate(pool.imap_unordered(straight_from_video, tasks, chunksize=2), 1, args.seconds)
            print(
                f"{f'16x{crop}x{crop}':>12}{train_rate:>16.1f}{eval_rate:>15.1f}{video_rate:>13.1f}"
                f"{train_rate / video_rate:>13.1f}x"
            )


if __name__ == "__main__":
    main()
