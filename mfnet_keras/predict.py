"""Classifies video files with an exported SavedModel (or a `.keras` model from a training run).

    python -m mfnet_keras.predict VIDEO [VIDEO ...] --model DIR_OR_KERAS [--clips 10] [--top-k 5] [--json]
    python -m mfnet_keras.predict LONG_VIDEO --model DIR --timeline 2

Decodes each video with PyAV, samples `--clips` uniformly spaced clips over
the whole video (short side resized, centre crop), averages their softmax and
prints the top-k classes. `--timeline S` also prints the prediction of every
S-second window. A file that cannot be read gets one error line; the others are
still processed, and the exit code is then 1. A truncated or partly corrupt
video is classified from the frames that decode, with a warning line.
"""

import argparse
import json
import os
import sys

import numpy as np

import mfnet_keras  # noqa: F401  (TensorFlow options, before TensorFlow loads)
from tfrecords_tools.quiet import add_verbose_argument, import_tensorflow


class Classifier:
    """Wraps a SavedModel from `mfnet_keras.export` or a `.keras` model with its run's settings."""

    def __init__(self, path):
        import tensorflow as tf

        if os.path.isdir(path):
            loaded = tf.saved_model.load(path)
            self._serve = loaded.signatures["serve_float"]
            self.class_names = [n.decode() for n in loaded.class_names.numpy()]
            pre = {k: v.numpy() for k, v in loaded.preprocessing.items()}
            self.mean, self.std = pre["mean"], pre["std"]
            self.clip_length, self.crop_size = int(pre["clip_length"]), int(pre["crop_size"])
            self.frame_interval = int(pre["frame_interval"])
            self._keras = None
        else:
            from mfnet_keras import models
            from mfnet_keras.export import run_settings

            self._keras = models.load_model(path)
            names, mean, std, interval = run_settings(path)
            shape = self._keras.input_shape[1:]
            self.clip_length = 1 if len(shape) == 3 else shape[0]
            self.crop_size = shape[-2]
            classes = self._keras.output_shape[-1]
            self.class_names = names or [str(i) for i in range(classes)]
            from mfnet_keras.data.pipeline import VIDEO_MEAN, VIDEO_STD

            self.mean, self.std = np.array(mean or VIDEO_MEAN), np.array(std or VIDEO_STD)
            self.frame_interval = interval

    def probabilities(self, clips):
        """Softmax of a batch of uint8 clips `[N, T, H, W, 3]`."""
        x = (clips.astype(np.float32) / 255.0 - self.mean) / self.std
        x = x.astype(np.float32)
        if self._keras is None:
            return self._serve(clips=x)["probabilities"].numpy()
        logits = np.asarray(self._keras(x[:, 0] if len(self._keras.input_shape) == 4 else x, training=False))
        e = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)


def clip_starts(num_frames, span, clips):
    """Uniformly spaced clip starts covering the frames (as the eval pipeline's)."""
    last = max(num_frames - span, 0)
    if clips == 1:
        return [last // 2]
    return [round(i * last / (clips - 1)) for i in range(clips)]


def make_clips(frames, starts, clip_length, interval, crop_size):
    """uint8 clips `[len(starts), T, crop, crop, 3]`: frames resized (short side crop×256/224), centre-cropped."""
    from PIL import Image

    n = len(frames)
    short = round(crop_size * 256 / 224)
    out = []
    cache = {}
    for start in starts:
        clip = []
        for i in range(clip_length):
            index = (start + i * interval) % n
            if index not in cache:
                image = Image.fromarray(frames[index])
                scale = short / min(image.size)
                size = (max(crop_size, round(image.width * scale)), max(crop_size, round(image.height * scale)))
                resized = np.asarray(image.resize(size, Image.BILINEAR))
                y, x = (resized.shape[0] - crop_size) // 2, (resized.shape[1] - crop_size) // 2
                cache[index] = resized[y : y + crop_size, x : x + crop_size]
            clip.append(cache[index])
        out.append(np.stack(clip))
    return np.stack(out)


def top_k(probabilities, names, k):
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [{"label": names[i], "index": int(i), "probability": float(probabilities[i])} for i in order]


def predict_video(classifier, path, clips=10, k=5, timeline=None):
    """`{"video", "frames", "fps", "width", "height", "top_k", "timeline"?, "warning"?}` for one file.

    Frames are decoded at display geometry (`width` × `height`, square pixels).
    A truncated or partly corrupt video is classified from the frames that
    decode, with the reason in `warning`; an unreadable one raises `VideoError`.
    """
    from tfrecords_tools.video import decode_video

    short = round(classifier.crop_size * 256 / 224)
    video = decode_video(path, short_side=short, keep_partial=True)
    frames, fps = video.frames, video.fps
    span = (classifier.clip_length - 1) * classifier.frame_interval + 1

    def mean_probabilities(part, count):
        """Average softmax of `count` clips spread over the frames `part`."""
        starts = clip_starts(len(part), span, count)
        batch = make_clips(part, starts, classifier.clip_length, classifier.frame_interval, classifier.crop_size)
        return classifier.probabilities(batch).mean(axis=0)

    result = {
        "video": path,
        "frames": len(frames),
        "fps": fps,
        "width": int(frames[0].shape[1]),
        "height": int(frames[0].shape[0]),
        "top_k": top_k(mean_probabilities(frames, clips), classifier.class_names, k),
    }
    if video.problem:
        result["warning"] = video.problem
    if timeline:
        window = max(1, round(timeline * fps))
        windows = []
        for begin in range(0, len(frames), window):
            part = frames[begin : begin + window]
            count = max(1, min(clips, len(part) // max(span, 1)))
            best = top_k(mean_probabilities(part, count), classifier.class_names, 1)[0]
            windows.append({"start": begin / fps, "end": min(begin + window, len(frames)) / fps, **best})
        result["timeline"] = windows
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m mfnet_keras.predict",
        description="Classify video files with an exported model (SavedModel folder) or a .keras model.",
    )
    parser.add_argument("videos", nargs="+", metavar="VIDEO")
    parser.add_argument("--model", required=True, help="SavedModel folder from mfnet_keras.export, or a .keras file")
    parser.add_argument("--clips", type=int, default=10, help="clips sampled over each video (default: 10)")
    parser.add_argument("--top-k", type=int, default=5, help="classes to print (default: 5)")
    parser.add_argument("--timeline", type=float, metavar="SECONDS", help="also predict every SECONDS-long window")
    parser.add_argument("--json", action="store_true", help="print one JSON object per video")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    if args.clips < 1 or args.top_k < 1 or (args.timeline is not None and args.timeline <= 0):
        parser.error("--clips and --top-k must be >= 1, --timeline > 0")
    if not os.path.exists(args.model):
        print(f"error: --model {args.model} does not exist", file=sys.stderr)
        return 2
    from tfrecords_tools.video import VideoError

    import_tensorflow(args.verbose)
    classifier = Classifier(args.model)
    failed = False
    for path in args.videos:
        try:
            if not os.path.isfile(path):
                raise VideoError("no such file")
            result = predict_video(classifier, path, args.clips, args.top_k, args.timeline)
        except VideoError as error:
            failed = True
            if args.json:
                print(json.dumps({"video": path, "error": str(error)}))
            else:
                print(f"error: {path}: {error}", file=sys.stderr)
            continue
        if "warning" in result:
            print(f"warning: {path}: {result['warning']}; classified from the frames that decode", file=sys.stderr)
        if args.json:
            print(json.dumps(result))
            continue
        print(f"{path} ({result['frames']} frames at {result['fps']:.1f} fps)")
        for rank, item in enumerate(result["top_k"], 1):
            print(f"  {rank}. {item['label']:<30} {100 * item['probability']:6.2f}%")
        for window in result.get("timeline", []):
            print(
                f"  {window['start']:7.1f}-{window['end']:6.1f} s  {window['label']:<30} {100 * window['probability']:6.2f}%"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
