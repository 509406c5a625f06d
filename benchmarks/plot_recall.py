"""Plot the share of faces destroyed by face height, blur against deface, from benchmarks/wider.py's JSON.

    python benchmarks/wider.py --data DIR --composites --precisions auto --json > wider.json
    python benchmarks/plot_recall.py wider.json -o docs/recall-by-size.png
    python benchmarks/wider.py ... --json | python benchmarks/plot_recall.py - -o recall.png

One group of bars per face-height bin of wider.py, one bar per tool in the JSON (the tool once for
each precision it ran in, and deface when it ran), each labelled with its share; the number of faces
in each bin is under its name. Recall only: the timings in the JSON are not drawn. Needs matplotlib
(the `benchmarks` extra).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.wider import BUCKETS  # noqa: E402

BIN_NAMES = {"<10": "< 10 px", "10-20": "10–20 px", "20-40": "20–40 px", "40-80": "40–80 px", ">=80": "≥ 80 px"}
PRECISION_NAMES = {"bf16": "bfloat16", "f32": "32-bit floats"}
BLUR_COLOURS, DEFACE_COLOUR = ["#1b6ca8", "#6fa8dc"], "#c0504d"


def series(result: dict) -> list[tuple[str, dict]]:
    """(legend name, figures by bin) for each tool in wider.py's result: blur in each precision, then deface."""
    tools = result["tools"]
    named = [(f"blur ({PRECISION_NAMES.get(p, p)})" if len(tools) > 1 else "blur", figures)
             for p, figures in tools.items()]
    if "deface" in result:
        named.append(("deface", result["deface"]))
    return named


def plot_recall(result: dict, path: Path) -> None:
    """Write the bar chart of `result` (wider.py's JSON) as a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [label for _, _, label in BUCKETS]
    named = series(result)
    counts = [result["tool"][label]["faces"] for label in labels]
    width = 0.8 / len(named)
    figure, axes = plt.subplots(figsize=(8, 4.6), dpi=100)
    for index, (name, figures) in enumerate(named):
        shares = [figures[label]["percent"] or 0.0 for label in labels]
        positions = [i + (index - (len(named) - 1) / 2) * width for i in range(len(labels))]
        colour = DEFACE_COLOUR if name == "deface" else BLUR_COLOURS[index % len(BLUR_COLOURS)]
        bars = axes.bar(positions, shares, width, label=name, color=colour)
        axes.bar_label(bars, [f"{s:.1f}" for s in shares], fontsize=8, padding=2)
    axes.set_xticks(range(len(labels)),
                    [f"{BIN_NAMES.get(label, label)}\n{n:,} faces" for label, n in zip(labels, counts)])
    axes.set_ylim(0, 105)
    axes.set_ylabel("faces destroyed (%)")
    axes.set_xlabel("face height in the photo")
    axes.set_title(f"Faces destroyed by size: {result['photos']} photos of {result['megapixels']} MP, "
                   f"{sum(counts):,} faces", fontsize=11)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=len(named), frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    figure.savefig(path, metadata={"Software": None})  # no version string: the same data gives the same file
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", help="wider.py's --json output, or - for standard input")
    parser.add_argument("-o", "--output", type=Path, default=Path("recall-by-size.png"), help="the PNG to write")
    args = parser.parse_args()
    text = sys.stdin.read() if args.json == "-" else Path(args.json).read_text()
    if not text.lstrip().startswith("{"):
        print(f"no figures to plot: wider.py printed {text.strip()[:200]!r}", file=sys.stderr)
        return 1
    plot_recall(json.loads(text), args.output)
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
