"""Shared pieces of the model benchmarks: the PyTorch reference, matmul peak, interleaved timing, memory."""

import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as `import mfnet_keras` does, whatever is imported first
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # mfnet_keras and the PyTorch reference (tests/torch_mfnet.py)

CLIP = (16, 224, 224)
MACS_PER_CLIP = 11_045_449_728  # MFNet-3D at 16x224x224 (mfnet-profile)


def matmul_peak(seconds=3.0, n=2048):
    """Measured float32 matmul throughput of this machine in multiply-adds per second (NumPy, all cores)."""
    import numpy as np

    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    a @ b
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        a @ b
        best = max(best, n**3 / (time.perf_counter() - start))
    return best


def interleave(runners, repeats, warmup=1, settle=0):
    """Calls each runner in turn, `repeats` rounds after `warmup`; returns `{name: [seconds, ...]}`.

    `settle` untimed calls precede each timed one, so that threads the previous runner left spinning
    (OpenMP, TBB) have gone idle and caches hold this runner's data: needed when runners of different
    runtimes share the cores.
    """
    for run in runners.values():
        for _ in range(warmup):
            run()
    times = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            for _ in range(settle):
                run()
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return times


def median(values):
    return statistics.median(values)


def rss_mb():
    """Resident memory of this process now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb():
    """High-water resident memory of this process (VmHWM: unlike ru_maxrss, not inherited across fork and exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(make_runner, side, batch):
    """In a fresh process: imports the framework, then prints the peak memory of building and running `side`."""
    if side == "keras":
        import tensorflow  # noqa: F401

        import mfnet_keras  # noqa: F401
    else:
        import torch  # noqa: F401
    base = rss_mb()
    run = make_runner(side, batch)
    run()
    run()
    print(f"peak_mb {peak_rss_mb() - base:.0f}")


def measure_memory(script, side, batch):
    """Peak memory (MB) above the framework's import of building and running `side` at `batch`, in a fresh process."""
    command = [sys.executable, script, "--memory-child", side, str(batch)]
    out = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    lines = [line for line in out.stdout.splitlines() if line.startswith("peak_mb")]
    return float(lines[-1].split()[1]) if lines else float("nan")


def torch_model(layout):
    """The PyTorch reference MFNet-3D in eval mode; `layout` is "default" or "channels_last_3d"."""
    import torch
    from torch_mfnet import MFNet, randomized

    model = randomized(MFNet(400, dims=3))
    if layout == "channels_last_3d":
        model = model.to(memory_format=torch.channels_last_3d)
    return model


def torch_input(batch, layout, seed=0):
    import torch

    x = torch.randn((batch, 3, *CLIP), generator=torch.Generator().manual_seed(seed))
    return x.contiguous(memory_format=torch.channels_last_3d) if layout == "channels_last_3d" else x


def machine():
    import platform

    cpu = "unknown CPU"
    if os.path.exists("/proc/cpuinfo"):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def main(doc, script, make_runner, sides, argv=None, macs_factor=1):
    """The command line shared by inference.py and train_step.py: interleaved timing, ratios, peak, memory.

    `macs_factor` is the multiply-adds of one clip in units of the forward pass (3 for a training step:
    forward, input gradients and weight gradients).
    """
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    parser.add_argument("--memory-child", nargs=2, metavar=("SIDE", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(make_runner, args.memory_child[0], int(args.memory_child[1]))
        return 0
    import torch

    print(f"machine: {machine()}; torch {torch.__version__} ({torch.get_num_threads()} threads)")
    peak = matmul_peak()
    print(f"float32 matmul peak: {peak / 1e9:.1f} GMAC/s (NumPy 2048x2048)")
    rows = []
    for batch in args.batches:
        runners = {side: make_runner(side, batch) for side in sides}
        times = interleave(runners, args.repeats)
        speed = {side: batch / median(t) for side, t in times.items()}
        del runners
        memory = {side: None if args.no_memory else measure_memory(script, side, batch) for side in sides}
        rows.append((batch, speed, memory))
        print(f"batch {batch}: " + ", ".join(f"{side} {speed[side]:.2f} clips/s" for side in sides), flush=True)
    print()
    print(f"{'batch':>5}  {'side':<24}{'clips/s':>9}{'keras/side':>12}{'of peak':>9}{'peak MB':>9}")
    for batch, speed, memory in rows:
        for side in sides:
            mem = "" if memory[side] is None else f"{memory[side]:.0f}"
            fraction = speed[side] * MACS_PER_CLIP * macs_factor / peak
            print(
                f"{batch:>5}  {side:<24}{speed[side]:>9.2f}{speed[sides[0]] / speed[side]:>12.2f}"
                f"{100 * fraction:>8.0f}%{mem:>9}"
            )
    return 0
