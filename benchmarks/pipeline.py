"""Input pipeline throughput per core: our `train_dataset` against TF Model Garden's `video_input` on the same records.

    python benchmarks/pipeline.py [--shapes 8x112 16x224 32x224] [--seconds 10] [--rounds 1]
                                  [--sides ours model-garden video] [--records "DIR/train-*.tfrecord"]

Makes a synthetic dataset of 256×256 H.264 videos of 7 s at 25 fps (175
frames; UCF-101's videos average 7 s at 25 fps, 320×240) and packs it at a
short side of 256 (or reads `--records`), then measures training clips/s,
batch 8, frame interval 2, each side in its own process on every core:

- ours: `train_dataset` (random clip, scale and aspect jitter decoding only
  the crop window, flip, HLS jitter), as `mfnet-train` reads;
- ours-no-jitter: the same without the HLS colour jitter (`color_jitter=None`),
  the augmentations Model Garden's parser does;
- model-garden: Model Garden's `video_input.Decoder` and `Parser` (random
  clip, whole-frame JPEG decode, random resized crop, flip), assembled as
  its input reader does (interleaved files, shuffle buffer 64, parallel map,
  batch). It runs from `benchmarks/.model_garden/`, a folder this script
  fills with `pip install --no-deps --target` (tf-models-official and the
  few modules `video_input` imports) on first use: Model Garden is not a
  dependency of ours;
- video: each clip decoded from its video file with PyAV in one process per
  core (seek, decode up to the sampled frames, resize, crop, flip), as the
  official PyTorch loader does with OpenCV; no colour jitter, which only
  favours it. Skipped with `--records`.

Prints clips/s and clips/s per core, the median of `--rounds` interleaved
rounds (this machine drifts by 10-20 % over minutes), our pipeline's stage
costs (as `mfnet-doctor` prints them) and our rate over Model Garden's.
"""

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import mfnet_keras  # noqa: E402,F401  (TensorFlow options before it loads)

FRAMES, FPS, BATCH, INTERVAL = 175, 25, 8, 2
MODEL_GARDEN = os.path.join(ROOT, "benchmarks", ".model_garden")
# What `official.vision.dataloaders.video_input` imports, without the rest of tf-models-official's dependencies.
MODEL_GARDEN_PACKAGES = [
    "tf-models-official==2.20.0",
    "tf-keras==2.21.0",
    "gin-config==0.5.0",
    "tensorflow-datasets",
    "etils",
    "immutabledict",
    "pycocotools",
    "opencv-python-headless",
]
SIDES = ("ours", "ours-no-jitter", "model-garden", "video")


def install_model_garden():
    """`MODEL_GARDEN` filled once; None, or the reason it could not be."""
    if os.path.isdir(os.path.join(MODEL_GARDEN, "official")):
        return None
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", MODEL_GARDEN]
    result = subprocess.run(command + MODEL_GARDEN_PACKAGES, capture_output=True, text=True)
    return None if result.returncode == 0 else (result.stderr.strip().splitlines() or ["pip failed"])[-1]


def model_garden_dataset(pattern, clip_length, crop_size, num_classes):
    """Model Garden's training pipeline over `pattern`, as its `InputReader` assembles it."""
    import tensorflow as tf
    from official.vision.configs import video_classification
    from official.vision.dataloaders import video_input

    config = video_classification.DataConfig(
        feature_shape=(clip_length, crop_size, crop_size, 3),
        temporal_stride=INTERVAL,
        num_classes=num_classes,
        global_batch_size=BATCH,
        is_training=True,
    )
    decoder, parse = video_input.Decoder(), video_input.Parser(config).parse_fn(is_training=True)
    files = tf.data.Dataset.list_files(pattern, shuffle=True, seed=0)
    ds = files.interleave(
        tf.data.TFRecordDataset, cycle_length=config.cycle_length, num_parallel_calls=tf.data.AUTOTUNE
    )
    ds = ds.repeat().shuffle(config.shuffle_buffer_size, seed=0)
    ds = ds.map(lambda record: parse(decoder.decode(record)), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(BATCH, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def straight_from_video(task):
    """One training clip decoded from the video file with PyAV, augmented in NumPy."""
    import av
    from PIL import Image

    path, clip_length, crop, seed = task
    rng = np.random.default_rng(seed)
    with av.open(path) as container:
        stream = container.streams.video[0]
        total = stream.frames or FRAMES
        span = (clip_length - 1) * INTERVAL + 1
        start = int(rng.integers(0, max(total - span, 0) + 1))
        wanted = {(start + i * INTERVAL) % total for i in range(clip_length)}
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


def video_rate(videos, clip_length, crop, seconds):
    from mfnet_keras.data import throughput

    tasks = ((videos[i % len(videos)], clip_length, crop, i) for i in range(10**9))
    with multiprocessing.get_context("spawn").Pool(throughput.cores()) as pool:
        clips = ((np.empty(1),) for _ in pool.imap_unordered(straight_from_video, tasks, chunksize=2))
        return throughput.clips_per_second(clips, seconds)


def child(side, pattern, clip_length, crop, seconds, num_classes):
    """In this process: prints `{"rate": clips/s}` of one side, and our stage costs after ours."""
    from mfnet_keras.data import throughput, train_dataset

    result = {}
    if side.startswith("ours"):
        options = {"color_jitter": None} if side == "ours-no-jitter" else {}
        ds = train_dataset(pattern, BATCH, seed=0, clip_length=clip_length, crop_size=crop, **options).repeat()
        result["rate"] = throughput.clips_per_second(ds, seconds)
        if side == "ours":
            result["stages"] = throughput.stage_costs(pattern, clip_length, crop, BATCH, seconds=seconds / 6)
    else:
        ds = model_garden_dataset(pattern, clip_length, crop, num_classes)
        result["rate"] = throughput.clips_per_second(ds, seconds)
    print(json.dumps(result))


def measure(side, pattern, clip_length, crop, seconds, num_classes):
    """One side's result in a fresh process, or None when it failed (its last error line is printed)."""
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    if side == "model-garden":
        env["PYTHONPATH"] = os.pathsep.join([ROOT, MODEL_GARDEN])
    arguments = [side, pattern, str(clip_length), str(crop), str(seconds), str(num_classes)]
    result = subprocess.run([sys.executable, __file__, "--child", *arguments], env=env, capture_output=True, text=True)
    if result.returncode:
        print(f"  {side} {clip_length}x{crop}: failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def make_records(tmp, videos):
    """Synthetic videos packed at short side 256: `(records pattern, video paths)`."""
    from tfrecords_tools import pack, synthetic

    source = os.path.join(tmp, "videos")
    per_class = max(1, videos // len(synthetic.CLASSES))
    synthetic.generate(source, seed=0, train_per_class=per_class, test_per_class=0, frames=FRAMES, size=256, fps=FPS)
    pack.pack_dataset(source, os.path.join(tmp, "records"), layout="list", short_side=256)
    names = [line.split(",")[0] for line in open(os.path.join(source, "train.csv")).read().split()[1:]]
    return os.path.join(tmp, "records", "train-*.tfrecord"), [os.path.join(source, n) for n in names]


def report(shape, results, cores):
    """Prints one shape's row of the table, and our stage costs."""
    rates = {side: statistics.median(r["rate"] for r in rs) if rs else None for side, rs in results.items()}
    cells = "".join(f"{v:>20.1f}{v / cores:>10.1f}" if v else f"{'-':>20}{'-':>10}" for v in rates.values())
    ratio = rates.get("ours") and rates.get("model-garden") and rates["ours"] / rates["model-garden"]
    print(f"{shape:>10}{cells}{f'{ratio:.2f}x' if ratio else '-':>14}", flush=True)
    if results.get("ours"):
        stages = results["ours"][len(results["ours"]) // 2]["stages"]
        print(f"{'':>10}ours, core-ms per clip: " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()))


def run(args):
    from mfnet_keras.data import read_labels, throughput

    cores, sides = throughput.cores(), list(args.sides)
    if "model-garden" in sides and (problem := install_model_garden()):
        print(f"model-garden: not installed ({problem})")
        sides.remove("model-garden")
    with tempfile.TemporaryDirectory() as tmp:
        pattern, videos = (args.records, []) if args.records else make_records(tmp, args.videos)
        if not videos and "video" in sides:
            sides.remove("video")
        num_classes = len(read_labels(pattern)) or 1
        print(f"\n{cores} cores; records {pattern}; batch {BATCH}, interval {INTERVAL}; median of {args.rounds}")
        print(f"{'clip':>10}" + "".join(f"{s + ' clips/s':>20}{'per core':>10}" for s in sides) + f"{'ours/MG':>14}")
        for shape in args.shapes:
            clip_length, crop = (int(n) for n in shape.split("x"))
            results = {side: [] for side in sides}
            for _ in range(args.rounds):
                for side in sides:
                    if side == "video":
                        value = {"rate": video_rate(videos, clip_length, crop, args.seconds)}
                    else:
                        value = measure(side, pattern, clip_length, crop, args.seconds, num_classes)
                    results[side] += [value] if value else []
            report(f"{clip_length}x{crop}", results, cores)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=["8x112", "16x224", "32x224"], help="FRAMESxCROP")
    parser.add_argument("--videos", type=int, default=48, help="synthetic videos (default: 48)")
    parser.add_argument("--records", help="measure these records instead of synthetic ones")
    parser.add_argument("--seconds", type=float, default=10, help="timing per measurement (default: 10)")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds; the median is printed")
    parser.add_argument("--sides", nargs="+", default=list(SIDES), choices=SIDES)
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        side, pattern, clip_length, crop, seconds, num_classes = args.child
        return child(side, pattern, int(clip_length), int(crop), float(seconds), int(num_classes))
    return run(args)


if __name__ == "__main__":
    main()
