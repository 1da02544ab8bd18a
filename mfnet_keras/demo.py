"""`make demo`: the project's main job end to end on the embedded synthetic dataset, on CPU.

    mfnet-demo [--output runs/demo]

1. writes the synthetic motion dataset (H.264 videos) and packs it into TFRecords;
2. trains MFNet-3D on 8×112×112 clips (the packaged config `synthetic_demo`);
3. evaluates it over multi-view clips;
4. trains and evaluates the single-frame MFNet-2D baseline on the same data
   (`synthetic_demo_2d`): the classes differ only in motion, so
   it should stay near chance while the 3D model does not;
5. exports the 3D model as a TensorFlow SavedModel;
6. writes `report.json` and prints both results side by side.

Each step is skipped when its output is already complete, and training
resumes where it stopped, so an interrupted demo re-runs cheaply.
"""

import os
import time

from mfnet_keras import evaluate, export, train
from mfnet_keras.config import load_config
from mfnet_keras.files import write_json
from tfrecords_tools import pack, synthetic


def run(output="runs/demo", overrides=(), synthetic_options=None, short_side=128):
    """Runs the demo; `overrides` (`key=value`) apply to both configs, `synthetic_options` are
    `tfrecords_tools.synthetic.generate` arguments (tests use them for a small, fast run).

    Args:
        output: the demo's folder.
        overrides: `key=value` strings applied to both configs.
        synthetic_options: `tfrecords_tools.synthetic.generate` arguments (None: its defaults).
        short_side: the short side the videos are packed at.
    """

    started = time.time()
    videos = os.path.join(output, "videos")
    records = os.path.join(output, "records")
    if not os.path.exists(os.path.join(videos, "test.csv")):
        print("== 1/5 synthetic videos", flush=True)
        synthetic.generate(videos, **(synthetic_options or {}))
    if not os.path.exists(os.path.join(records, "manifest.json")):
        print("== 1/5 packing", flush=True)
        pack.pack_dataset(videos, records, layout="list", short_side=short_side, resume=True)

    results = {}
    for key, config_name in (("3d", "synthetic_demo"), ("2d", "synthetic_demo_2d")):
        paths = [f"data.train={records}/train-*.tfrecord", f"data.eval={records}/test-*.tfrecord"]
        config = load_config(config_name, [*paths, *overrides])
        run_dir = os.path.join(output, config["model"]["name"])
        weights = os.path.join(run_dir, "model.keras")
        step = 2 if key == "3d" else 4
        if not os.path.exists(weights):
            print(f"== {step}/5 training {config['model']['name']}", flush=True)
            train.train(config, run_dir)
        print(f"== {step + (key == '3d')}/5 evaluating {config['model']['name']}", flush=True)
        results[key] = evaluate.evaluate(config, weights, os.path.join(run_dir, "eval"))

    print("== 5/5 exporting the 3D model", flush=True)
    export_dir = os.path.join(output, "export", "mfnet3d")
    export.export(os.path.join(output, "mfnet3d", "model.keras"), export_dir)

    report = {
        "video_top1": results["3d"]["video_top1"],
        "video_top5": results["3d"]["video_top5"],
        "clip_top1": results["3d"]["clip_top1"],
        "baseline_2d_video_top1": results["2d"]["video_top1"],
        "baseline_2d_clip_top1": results["2d"]["clip_top1"],
        "chance": 1 / len(results["3d"]["per_class"]),
        "videos": results["3d"]["videos"],
        "export": export_dir,
        "seconds": round(time.time() - started, 1),
    }
    write_json(os.path.join(output, "report.json"), report)
    print()
    print(f"{'held-out videos: ' + str(report['videos']):<34}{'video top-1':>12}{'video top-5':>12}{'clip top-1':>11}")
    print(
        f"{'MFNet-3D, 8x112x112 clips':<34}{100 * report['video_top1']:>11.1f}%{100 * report['video_top5']:>11.1f}%"
        f"{100 * report['clip_top1']:>10.1f}%"
    )
    print(
        f"{'MFNet-2D, single frames':<34}{100 * report['baseline_2d_video_top1']:>11.1f}%{'':>12}"
        f"{100 * report['baseline_2d_clip_top1']:>10.1f}%"
    )
    print(f"chance {100 * report['chance']:.1f}%; total {report['seconds'] / 60:.1f} min; {output}/report.json")
    return report
