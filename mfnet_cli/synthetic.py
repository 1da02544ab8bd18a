"""`mfnet-synthetic`: `tfrecords_tools.synthetic.generate`, the synthetic motion dataset as H.264 videos."""

import argparse
import os
import sys
import time

from tfrecords_tools.synthetic import CLASSES, generate


def main(argv=None):
    """`mfnet-synthetic`: parses `argv`, then runs the command; returns the exit code.

    Args:
        argv: the command's arguments (default: `sys.argv[1:]`).
    """
    parser = argparse.ArgumentParser(
        prog="mfnet-synthetic",
        description="Write a synthetic motion-only action dataset as H.264 mp4 videos with train/test lists.",
    )
    parser.add_argument("output_dir")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--train-per-class", type=int, default=48, help="training videos per class (default: 48)")
    parser.add_argument("--test-per-class", type=int, default=8, help="test videos per class (default: 8)")
    parser.add_argument("--frames", type=int, default=24, help="frames per video (default: 24)")
    parser.add_argument("--size", type=int, default=128, help="frame width and height, even (default: 128)")
    parser.add_argument("--fps", type=int, default=12, help="frame rate (default: 12)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="processes (default: all cores)")
    args = parser.parse_args(argv)
    if args.size < 32 or args.size % 2:
        parser.error(f"--size must be an even number >= 32, got {args.size}")
    for name in ("train_per_class", "test_per_class", "frames", "fps", "workers"):
        if getattr(args, name) < (0 if name.endswith("per_class") else 1):
            parser.error(f"--{name.replace('_', '-')} is too small: {getattr(args, name)}")
    started = time.time()
    splits = generate(
        args.output_dir,
        args.seed,
        args.train_per_class,
        args.test_per_class,
        args.frames,
        args.size,
        args.fps,
        args.workers,
    )
    count = sum(len(v) for v in splits.values())
    print(
        f"wrote {count} videos of {len(CLASSES)} classes to {args.output_dir} in {time.time() - started:.1f} s "
        f"(train {len(splits['train'])}, test {len(splits['test'])})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
