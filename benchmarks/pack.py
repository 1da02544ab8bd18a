"""Packing throughput on the synthetic dataset: videos/s and decoded frames/s, per core.

    python benchmarks/pack.py [--workers 1 2] [--repeats 3]

Generates the default synthetic dataset once (448 H.264 videos of 24 frames at
128x128), then packs it with each worker count, several times, and prints the
median. Times the decode + JPEG encode + write work only (`pack` reports its
own elapsed time, which excludes Python/TensorFlow start-up).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfrecords_tools import pack, synthetic  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count()])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--short-side", type=int, default=128)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "synthetic")
        splits = synthetic.generate(source, seed=0)
        count = sum(len(v) for v in splits.values())
        print(f"machine: {os.cpu_count()} cores; default synthetic dataset: {count} videos x 24 frames, 128x128 H.264")
        print(f"{'workers':>8}{'videos/s':>12}{'frames/s':>12}{'videos/s/core':>16}{'frames/s/core':>16}")
        for workers in args.workers:
            rates = []
            for r in range(args.repeats):
                out = os.path.join(tmp, f"out-{workers}-{r}")
                started = time.perf_counter()
                manifest = pack.pack_dataset(source, out, layout="list", workers=workers, short_side=args.short_side)
                elapsed = time.perf_counter() - started
                videos = sum(s["videos"] for s in manifest["splits"].values())
                frames = sum(s["frames"] for s in manifest["splits"].values())
                rates.append((videos / elapsed, frames / elapsed))
            v = statistics.median(r[0] for r in rates)
            f = statistics.median(r[1] for r in rates)
            cores = min(workers, os.cpu_count())
            print(f"{workers:>8}{v:>12.1f}{f:>12.0f}{v / cores:>16.1f}{f / cores:>16.0f}")


if __name__ == "__main__":
    main()
