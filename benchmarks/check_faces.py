"""`blur check` as a gate: does it fail photos with a face left intact, and pass the tool's own outputs?

    python benchmarks/check_faces.py [--dataset ../shared/data/wider-native-dev] [--photos N] [--json]

On each photo of the dataset (real photos at their native size, JPEG as published; it skips if
absent), with the default settings, as the `blur` command does:

1. The tool's own output: `anonymise_file` writes the anonymised JPEG and `check_file` checks it.
   Figures: the share of these outputs the check fails (false alarms: as few as possible), and of
   the candidates the detector finds on the tool's own destroyed regions, the share the check
   recognises as destroyed; collateral and time.
2. One real face left intact: of the valid faces 20 px or taller that the tool destroyed, one is
   picked at random (seeded), and the photo is written again with the tool's regions except
   those centred in that face, so it stays intact (at most 10 % of its box altered). Figure: the
   share of these outputs the check fails, and the share it fails on that very face (target: all).

Everything runs in one process with the tool's real files (written to a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.wider import context_mask  # noqa: E402
from blur.check import check_file  # noqa: E402
from blur.detect import DEFAULT_DETECTOR, load_detector  # noqa: E402
from blur.pipeline import Settings, anonymise_file  # noqa: E402
from blur.regions import combined_mask  # noqa: E402

DEFAULT_DATASET = ROOT.parent / "shared" / "data" / "wider-native-dev"
MIN_FACE = 20
BUCKETS = [(20, 40, "20-40"), (40, 80, "40-80"), (80, 10**9, ">=80")]


def box_share(mask: np.ndarray, box: list[float]) -> float:
    """The share of the face box [x, y, w, h] that `mask` covers."""
    x, y, w, h = box
    x0, y0 = max(int(np.ceil(x)), 0), max(int(np.ceil(y)), 0)
    x1, y1 = min(int(np.floor(x + w)), mask.shape[1]), min(int(np.floor(y + h)), mask.shape[0])
    return float(mask[y0:y1, x0:x1].mean()) if x1 > x0 and y1 > y0 else 0.0


def covers(detection, box: list[float]) -> bool:
    """The candidate's centre lies in the face box, or the face's centre in the candidate."""
    x, y, w, h = box
    cx, cy = (detection.x0 + detection.x1) / 2, (detection.y0 + detection.y1) / 2
    fx, fy = x + w / 2, y + h / 2
    return (x <= cx <= x + w and y <= cy <= y + h) or (detection.x0 <= fx <= detection.x1 and detection.y0 <= fy <= detection.y1)


def centred_in(region, box: list[float]) -> bool:
    x, y, w, h = box
    cx, cy = (region.x0 + region.x1) / 2, (region.y0 + region.y1) / 2
    return x <= cx <= x + w and y <= cy <= y + h


def evaluate(dataset: Path, photos: int | None = None, seed: int = 13) -> dict:
    entries = json.loads((dataset / "faces.json").read_text())["images"]
    if photos:
        entries = [entries[round(i * len(entries) / photos)] for i in range(min(photos, len(entries)))]
    # The tool's regions are compared with the data set's boxes, pixel for pixel: the sensor-pattern step,
    # which moves every pixel by a few after the fill (benchmarks/camera_link.py), would misalign them.
    settings = Settings(keep_geometry=True)
    detector = settings.load_detector()
    describe = detector.describe() if hasattr(detector, "describe") else {"name": detector.name}
    load_detector(DEFAULT_DETECTOR)  # what `check_file` uses: the same, loaded once
    own = dict(photos=0, failed=0, faces_flagged=0, seconds=0.0, check_seconds=0.0, on_regions=0, recognised=0,
               away_from_faces=0, pixels_away_from_faces=0)
    intact = dict(photos=0, failed=0, failed_on_face=0, no_face_to_leave=0)
    by_size = {label: [0, 0] for _, _, label in BUCKETS}
    failures: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="check-faces-") as tmp:
        for number, entry in enumerate(entries):
            source = dataset / entry["image"]
            started = time.perf_counter()
            detected = anonymise_file(source, Path(tmp, "own.jpg"), settings, detector=detector, overwrite=True,
                                      rng=np.random.default_rng(number))
            own["seconds"] += time.perf_counter() - started
            started = time.perf_counter()
            report = check_file(detected.output)
            own["check_seconds"] += time.perf_counter() - started
            own["photos"] += 1
            own["failed"] += not report.clean
            own["faces_flagged"] += len(report.faces)
            if not report.clean:
                failures.append({"image": entry["image"], "faces": [vars(f) for f in report.faces],
                                 "metadata": [str(m) for m in report.metadata]})

            height, width = detected.height, detected.width
            mask = combined_mask(detected.regions, height, width, settings.shape)
            for candidate in report.candidates:
                d = candidate.detection
                inside = mask[max(int(d.y0), 0):int(np.ceil(d.y1)), max(int(d.x0), 0):int(np.ceil(d.x1))]
                if inside.size and inside.mean() >= 0.5:  # mostly on a destroyed region
                    own["on_regions"] += 1
                    own["recognised"] += candidate.destroyed
            away = ~context_mask((height, width), entry["faces"])
            own["away_from_faces"] += int(mask[away].sum())
            own["pixels_away_from_faces"] += int(away.sum())
            faces = [f["box"] for f in entry["faces"] if not f.get("invalid") and f["box"][3] >= MIN_FACE
                     and box_share(mask, f["box"]) >= 0.9]
            rng = np.random.default_rng(seed + number)
            chosen = None
            for index in rng.permutation(len(faces)):
                rest = [r for r in detected.regions if not centred_in(r, faces[index])]
                if box_share(combined_mask(rest, height, width, settings.shape), faces[index]) <= 0.1:
                    chosen = faces[index], rest
                    break
            if chosen is None:
                intact["no_face_to_leave"] += 1
                continue
            face, rest = chosen
            left = anonymise_file(source, Path(tmp, "intact.jpg"), settings, regions=rest, overwrite=True,
                                  rng=np.random.default_rng(number))
            report = check_file(left.output)
            on_face = any(covers(d, face) for d in report.faces)
            intact["photos"] += 1
            intact["failed"] += not report.clean
            intact["failed_on_face"] += on_face
            label = next(lab for lo, hi, lab in BUCKETS if lo <= face[3] < hi)
            by_size[label][0] += on_face
            by_size[label][1] += 1
    return {
        "dataset": str(dataset),
        "detector": describe,
        "own_outputs": own,
        "one_face_left": intact,
        "caught_by_face_height": {label: {"caught": c, "photos": n} for label, (c, n) in by_size.items()},
        "own_failures": failures,
    }


def print_figures(result: dict) -> None:
    own, left = result["own_outputs"], result["one_face_left"]
    print(f"dataset: {result['dataset']}; detector: {json.dumps(result['detector'])}")
    print(f"photos: {result['own_outputs']['photos']}")
    print(f"tool's own outputs failed by blur check: {own['failed']} of {own['photos']} "
          f"({100 * own['failed'] / max(own['photos'], 1):.1f} %); {own['faces_flagged']} candidates flagged in all")
    print(f"photos with one real face >= {MIN_FACE} px left intact: check fails {left['failed']} of {left['photos']} "
          f"({100 * left['failed'] / max(left['photos'], 1):.1f} %), on that face {left['failed_on_face']} "
          f"({100 * left['failed_on_face'] / max(left['photos'], 1):.1f} %); "
          f"{left['no_face_to_leave']} photos had no destroyed face >= {MIN_FACE} px to leave")
    for label, row in result["caught_by_face_height"].items():
        share = f"{100 * row['caught'] / row['photos']:.1f} %" if row["photos"] else "-"
        print(f"  face {label} px: caught {row['caught']} of {row['photos']} ({share})")
    photos = max(own["photos"], 1)
    print(f"candidates on the tool's own destroyed regions recognised as destroyed: {own['recognised']} of "
          f"{own['on_regions']} ({100 * own['recognised'] / max(own['on_regions'], 1):.1f} %)")
    print(f"collateral: {100 * own['away_from_faces'] / max(own['pixels_away_from_faces'], 1):.2f} % of the pixels "
          f"away from faces (boxes enlarged 1.5x) destroyed")
    print(f"time per photo, one process: anonymise {own['seconds'] / photos:.2f} s, check {own['check_seconds'] / photos:.2f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--photos", type=int, default=None, help="only N photos, spread over the dataset")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the figures")
    args = parser.parse_args()
    if not (args.dataset / "faces.json").is_file():
        print(f"skipped: no dataset at {args.dataset} (expected images/ and faces.json)")
        return 0
    result = evaluate(args.dataset, args.photos)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print_figures(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
