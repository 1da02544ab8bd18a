"""Draws docs/architecture.svg: the packages of the project and which way imports go, from the code itself.

    python docs/architecture_diagram.py           # rewrites docs/architecture.svg, prints the edges
    python docs/architecture_diagram.py --check   # exit 1 when docs/architecture.md lists other edges

Modules are grouped into the boxes below; an arrow A → B means some module of A imports one of B
(imports inside functions included). Data flows left to right along the same arrows, reversed.
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from test_structure import imported_modules, modules  # noqa: E402  (the import graph the tests check)

# Box: (module prefixes, x, y) on a 10 × 7 canvas; the first matching prefix wins (longest listed first).
BOXES = {
    "tfrecords_tools": (("tfrecords_tools",), 0.9, 5.8),
    "defaults / errors": (("mfnet_keras.defaults", "mfnet_keras.errors", "mfnet_keras.version"), 5.0, 0.5),
    "data": (("mfnet_keras.data",), 2.6, 5.8),
    "layers": (("mfnet_keras.layers", "mfnet_keras.metrics"), 2.6, 1.5),
    "checkpoints": (("mfnet_keras.checkpoints",), 6.0, 2.3),
    "models": (("mfnet_keras.models",), 4.3, 3.0),
    "initialization": (("mfnet_keras.initialization",), 6.3, 4.1),
    "train / evaluate": (
        (
            "mfnet_keras.train",
            "mfnet_keras.training_data",
            "mfnet_keras.evaluate",
            "mfnet_keras.callbacks",
            "mfnet_keras.optimizers",
            "mfnet_keras.schedules",
            "mfnet_keras.strategy",
            "mfnet_keras.config",
            "mfnet_keras.doctor",
        ),
        4.6,
        5.8,
    ),
    "export": (("mfnet_keras.export",), 7.0, 5.8),
    "inference": (("mfnet_keras.inference",), 8.2, 4.3),
    "predict / streaming": (
        ("mfnet_keras.predict", "mfnet_keras.streaming", "mfnet_keras.timeline", "mfnet_keras.explain"),
        9.2,
        5.8,
    ),
    "convert / profiling": (("mfnet_keras.convert", "mfnet_keras.profiling"), 8.3, 2.6),
    "demo": (("mfnet_keras.demo",), 6.0, 6.7),
    "files / downloads": (("mfnet_keras.files", "mfnet_keras.downloads"), 8.5, 1.0),
    "commands (mfnet_cli)": (("mfnet_cli",), 0.9, 3.6),
}
# Left out: the package `mfnet_keras` itself (every module is inside it; it holds the version and the
# oneDNN switch, and imports `models` so that `import mfnet_keras` registers the Keras classes).


SHARED = ("defaults / errors", "files / downloads")


def box_of(module):
    """The box a module is drawn in, or None (the package `mfnet_keras` itself)."""
    best = None
    for name, (prefixes, _, _) in BOXES.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[1]):
                best = (name, len(prefix))
    return best and best[0]


def edges():
    """Sorted `(importer box, imported box)` pairs."""
    known = modules()
    found = set()
    for module, path in known.items():
        for imported in imported_modules(path, module, known):
            a, b = box_of(module), box_of(imported)
            if a and b and a != b:
                found.add((a, b))
    return sorted(found)


def draw(pairs, path):
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch

    fig = Figure(figsize=(12, 8))
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, 10.2)
    ax.set_ylim(0, 7.3)
    ax.axis("off")
    for name, (_, x, y) in BOXES.items():
        ax.text(
            x,
            y,
            name,
            ha="center",
            va="center",
            fontsize=11,
            zorder=3,
            bbox={"boxstyle": "round,pad=0.4", "fc": "#e8f0fe", "ec": "#3367d6"},
        )
    for a, b in pairs:
        if b in SHARED:
            continue
        (_, xa, ya), (_, xb, yb) = BOXES[a], BOXES[b]
        ax.add_patch(
            FancyArrowPatch(
                (xa, ya),
                (xb, yb),
                arrowstyle="-|>",
                mutation_scale=12,
                color="#888888",
                shrinkA=18,
                shrinkB=18,
                connectionstyle="arc3,rad=0.08",
                zorder=1,
            )
        )
    ax.text(
        0.1,
        7.1,
        "A → B: A imports B (no cycle). Data: videos → tfrecords_tools → data → models → "
        "train/evaluate → export/predict",
        fontsize=10,
        va="center",
    )
    ax.text(
        0.1,
        0.2,
        f"Not drawn: arrows into {' and '.join(SHARED)} (imported throughout; they import nothing of the project)",
        fontsize=9,
        va="center",
        color="#555555",
    )
    fig.savefig(path, metadata={"Date": None})


def listed_edges(markdown):
    """The `A → B` lines of the edge list in docs/architecture.md."""
    lines = open(markdown, encoding="utf-8").read().split("<!-- edges -->")[1].strip().splitlines()
    return sorted(tuple(part.strip(" -`") for part in line.split("→")) for line in lines if "→" in line)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with docs/architecture.md, draw nothing")
    args = parser.parse_args(argv)
    pairs = edges()
    if args.check:
        listed = listed_edges(os.path.join(HERE, "architecture.md"))
        if listed != pairs:
            print("docs/architecture.md is out of date; run python docs/architecture_diagram.py", file=sys.stderr)
            print("missing:", sorted(set(pairs) - set(listed)), "extra:", sorted(set(listed) - set(pairs)))
            return 1
        return 0
    draw(pairs, os.path.join(HERE, "architecture.svg"))
    for a, b in pairs:
        print(f"- `{a}` → `{b}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
