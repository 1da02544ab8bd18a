"""`mfnet-inspect` after parsing: `tfrecords_tools.inspect_records` over each split, checked against the manifest."""

import json
import os
import sys

import numpy as np
from tqdm import tqdm

from tfrecords_tools.inspect_records import contact_sheet, scan, split_files


def run(parser, args):
    """Prints each split's counts and frame statistics; 1 if `--verify` finds a problem, 2 for no records.

    Args:
        parser: the command's `ArgumentParser`, for usage errors.
        args: the parsed arguments.
    """
    splits = split_files(args.output_dir)
    if not splits:
        print(f"error: no <split>-NNNNN-of-NNNNN.tfrecord files in {args.output_dir}", file=sys.stderr)
        return 2
    manifest_path = os.path.join(args.output_dir, "manifest.json")
    manifest = json.load(open(manifest_path)) if os.path.exists(manifest_path) else None
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
