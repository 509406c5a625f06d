"""Recall and collateral of the tool's real output files on a WIDER-style dataset.

    python benchmarks/wider.py [--dataset ../shared/data/wider-dev] [--json] [blur options...]

The dataset (`images/` + `faces.json`) is read where it lies and never copied into the repo. The
photos are converted to PNG in a temporary folder and run through the batch exactly as the `blur`
command does (decode, detect, anonymise, encode, atomic write), so outputs are lossless and every
altered pixel is the tool's doing.

A ground-truth face counts as destroyed when at least 90 % of the pixels of its box were altered.
Collateral is the share of pixels outside every face box (all faces, enlarged 1.5×) that were altered.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from blur.batch import Status, plan_jobs, run_batch  # noqa: E402
from cli.main import build_parser, settings_from  # noqa: E402

DEFAULT_DATASET = ROOT.parent / "shared" / "data" / "wider-dev"
BUCKETS = [(0, 10, "<10"), (10, 20, "10-20"), (20, 40, "20-40"), (40, 80, "40-80"), (80, 10**9, ">=80")]
DESTROYED_SHARE = 0.90
CONTEXT_SCALE = 1.5


def load_dataset(folder: Path) -> list[dict]:
    return json.loads((folder / "faces.json").read_text())["images"]


def altered(original: np.ndarray, output: np.ndarray) -> np.ndarray:
    return np.any(original != output, axis=2)


def face_destroyed(change: np.ndarray, box: list[float]) -> bool:
    x, y, w, h = box
    x0, y0 = int(np.ceil(x)), int(np.ceil(y))
    x1, y1 = int(np.floor(x + w)), int(np.floor(y + h))
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, change.shape[1]), min(y1, change.shape[0])
    if x1 <= x0 or y1 <= y0:
        cx, cy = int(x + w / 2), int(y + h / 2)
        return bool(change[min(max(cy, 0), change.shape[0] - 1), min(max(cx, 0), change.shape[1] - 1)])
    return change[y0:y1, x0:x1].mean() >= DESTROYED_SHARE


def context_mask(shape: tuple[int, int], faces: list[dict]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    for face in faces:
        x, y, w, h = face["box"]
        cx, cy = x + w / 2, y + h / 2
        hw, hh = w * CONTEXT_SCALE / 2, h * CONTEXT_SCALE / 2
        mask[max(int(cy - hh), 0) : int(np.ceil(cy + hh)), max(int(cx - hw), 0) : int(np.ceil(cx + hw))] = True
    return mask


def evaluate(dataset: Path, blur_args: list[str], workers: int | None) -> dict:
    entries = load_dataset(dataset)
    args = build_parser().parse_args([*blur_args, "unused"])
    settings = settings_from(args)
    with tempfile.TemporaryDirectory(prefix="wider-bench-") as tmp:
        inputs, outputs = Path(tmp, "in"), Path(tmp, "out")
        inputs.mkdir()
        originals = {}
        for entry in entries:
            name = Path(entry["image"]).stem + ".png"
            pixels = np.asarray(Image.open(dataset / entry["image"]).convert("RGB"))
            Image.fromarray(pixels).save(inputs / name)
            originals[name] = pixels
        jobs = plan_jobs([inputs], outputs)
        started = time.perf_counter()
        outcomes = list(run_batch(jobs, settings, workers=workers))
        seconds = time.perf_counter() - started
        failed = [o for o in outcomes if o.status is not Status.DONE]
        if failed:
            raise SystemExit(f"{len(failed)} photos failed: {failed[0].error}")
        by_source = {o.source.name: o for o in outcomes}
        counts = {label: [0, 0] for _, _, label in BUCKETS}
        collateral_altered = collateral_total = 0
        for entry in entries:
            name = Path(entry["image"]).stem + ".png"
            original = originals[name]
            output = np.asarray(Image.open(by_source[name].destination).convert("RGB"))
            change = altered(original, output)
            for face in entry["faces"]:
                if face.get("invalid"):
                    continue
                height = face["box"][3]
                label = next(lab for lo, hi, lab in BUCKETS if lo <= height < hi)
                counts[label][1] += 1
                counts[label][0] += face_destroyed(change, face["box"])
            outside = ~context_mask(change.shape, entry["faces"])
            collateral_altered += int(change[outside].sum())
            collateral_total += int(outside.sum())
    valid = [counts[label] for _, _, label in BUCKETS[1:]]
    destroyed, total = sum(c[0] for c in valid), sum(c[1] for c in valid)
    return {
        "photos": len(entries),
        "settings": " ".join(blur_args) or "defaults",
        "buckets": {label: {"destroyed": d, "faces": t, "percent": 100 * d / t if t else None}
                    for label, (d, t) in counts.items()},
        "valid_faces": total,
        "destroyed_percent": 100 * destroyed / total,
        "collateral_percent": 100 * collateral_altered / collateral_total,
        "seconds_per_photo": seconds / len(entries),
        "workers": workers,
    }


def print_table(result: dict) -> None:
    print(f"settings: {result['settings']}  photos: {result['photos']}  workers: {result['workers'] or 'all cores'}")
    print(f"{'face height':>12} {'faces':>6} {'destroyed':>10}")
    for label, row in result["buckets"].items():
        percent = "-" if row["percent"] is None else f"{row['percent']:.1f} %"
        print(f"{label + ' px':>12} {row['faces']:>6} {percent:>10}")
    print(f"{'>=10 px':>12} {result['valid_faces']:>6} {result['destroyed_percent']:>8.1f} %")
    print(f"collateral: {result['collateral_percent']:.2f} % of pixels away from faces altered")
    print(f"time: {result['seconds_per_photo']:.3f} s per photo, end to end")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--workers", type=int, default=None)
    args, blur_args = parser.parse_known_args()
    if not (args.dataset / "faces.json").is_file():
        print(f"skipped: no dataset at {args.dataset} (expected images/ and faces.json)")
        return 0
    result = evaluate(args.dataset, blur_args, args.workers)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
