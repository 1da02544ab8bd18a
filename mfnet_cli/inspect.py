"""`mfnet-inspect`: counts, frame statistics, verification and a contact sheet of a packed dataset
(`tfrecords_tools.inspect_records`)."""

import argparse
import json
import os
import sys

import numpy as np

from mfnet_cli.quiet import add_verbose_argument, import_tensorflow
from tfrecords_tools.inspect_records import contact_sheet, scan, split_files


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="mfnet-inspect",
        description="Per-split and per-class counts and frame statistics of a packed dataset.",
    )
    parser.add_argument("output_dir", help="folder written by tfrecords_tools.pack")
    parser.add_argument(
        "--verify", action="store_true", help="decode every JPEG and check counts against manifest.json"
    )
    parser.add_argument("--contact-sheet", metavar="PNG", help="write a grid of frames from a few clips")
    parser.add_argument("--clips", type=int, default=6, help="clips in the contact sheet (default: 6)")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    import_tensorflow(args.verbose)
    splits = split_files(args.output_dir)
    if not splits:
        print(f"error: no <split>-NNNNN-of-NNNNN.tfrecord files in {args.output_dir}", file=sys.stderr)
        return 2
    manifest_path = os.path.join(args.output_dir, "manifest.json")
    manifest = json.load(open(manifest_path)) if os.path.exists(manifest_path) else None
    from tqdm import tqdm

    problems = []
    for split, paths in splits.items():
        expected = manifest["splits"].get(split) if manifest else None
        with tqdm(total=expected["videos"] if expected else None, unit="video", desc=split, file=sys.stderr) as bar:
            report = scan(paths, verify=args.verify, progress=bar)
        frames = np.array(report["frames"] or [0])
        print(
            f"{split}: {report['videos']} videos in {len(paths)} shard(s), {len(report['classes'])} classes, "
            f"frames per video min {frames.min()} / mean {frames.mean():.1f} / max {frames.max()}, total {frames.sum()}"
        )
        for name, count in report["classes"].items():
            print(f"  {name:<40}{count:>7}")
        problems += report["problems"]
        if args.verify and expected:
            if expected["videos"] != report["videos"] or expected["frames"] != int(frames.sum()):
                problems.append(
                    f"{split}: manifest says {expected['videos']} videos / {expected['frames']} frames, "
                    f"records hold {report['videos']} / {int(frames.sum())}"
                )
            if expected["classes"] != report["classes"]:
                problems.append(f"{split}: per-class counts differ from manifest.json")
    if args.verify and manifest is None:
        problems.append("no manifest.json to check counts against")
    if args.contact_sheet:
        paths = [p for ps in splits.values() for p in ps]
        contact_sheet(paths, args.contact_sheet, clips=args.clips)
        print(f"wrote contact sheet {args.contact_sheet}")
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    if args.verify:
        print("verify: " + ("OK" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
