"""`blur check` as a gate and as a second opinion, on real crowd photos.

    python benchmarks/check_faces.py [--dataset DIR] [--composites] [--photos N] [--no-deface] [--json]

On each photo of the dataset (WIDER layout: images/ and faces.json; default
../shared/data/wider-native-dev; `--composites` builds its 12-MP composites first; it skips if
absent), the tool's real files are written and `check_file` reads them, as a user would:

1. Quiet on our own work: blur's default output (camera step included), checked alone. Figure: the
   share of photos the check passes (target: 95 % or more) and the boxes it lists.
2. Loud on faces left: the same photo with one real face of 20 px or more left intact (picked at
   random, seeded, among those blur destroyed; the others destroyed); deface's default output (run
   here, with onnxruntime if installed); blur's `--fast` output; the photo as it was. Figure: the
   share of each the check fails (the first on that very face).
3. The second opinion on blur's output (keeping geometry, so each face box compares pixel for
   pixel): of the faces 20 px or taller still visible (box SSIM above 0.5), the share its best k
   places point at (a place's centre in the face's box or the face's centre in the place), for k
   = 1..10, and the places shown per photo: the curve. Faces the gate lists count as found.

Times are per photo in this process (model loaded once): anonymising, and one check.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.wider import DESTROYED_SSIM, box_ssim, build_composites, deface_command, grey  # noqa: E402
from blur.check import check_file  # noqa: E402
from blur.check.faces import second_opinion_models  # noqa: E402
from blur.decode import read_photo  # noqa: E402
from blur.pipeline import Settings, anonymise_file  # noqa: E402
from blur.regions import combined_mask  # noqa: E402

DEFAULT_DATASET = ROOT.parent / "shared" / "data" / "wider-native-dev"
MIN_FACE = 20
BUCKETS = [(20, 40, "20-40"), (40, 80, "40-80"), (80, 10**9, ">=80")]
CURVE = (1, 2, 3, 4, 5, 6, 8, 10)
SEED = 13


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


def evaluate(dataset: Path, photos: int | None = None, deface: bool = True, maybes: int = max(CURVE)) -> dict:
    entries = json.loads((dataset / "faces.json").read_text())["images"]
    if photos:
        entries = [entries[round(i * len(entries) / photos)] for i in range(min(photos, len(entries)))]
    default, exact = Settings(), Settings(keep_geometry=True)
    fast = Settings(keep_geometry=True, detector_options={"fast": True})
    detector, fast_detector = default.load_detector(), fast.load_detector()
    import blur.check.faces as faces

    faces.MAYBES = maybes  # the curve needs the places past the five shown
    own = dict(photos=0, failed=0, boxes=0, anonymise_seconds=0.0, check_seconds=0.0)
    loud = {kind: dict(photos=0, failed=0) for kind in ("one face left", "deface", "--fast", "as photographed")}
    on_face, by_size = 0, {label: [0, 0] for _, _, label in BUCKETS}
    visible, found_at = 0, {k: 0 for k in CURVE}
    shown_at = {k: 0 for k in CURVE}
    with tempfile.TemporaryDirectory(prefix="check-faces-") as tmp:
        folder = Path(tmp)
        peer = _deface_outputs(dataset, entries, folder / "deface") if deface else None
        for number, entry in enumerate(entries):
            source = dataset / entry["image"]
            rng = lambda: np.random.default_rng(SEED + number)  # noqa: E731
            started = time.perf_counter()
            written = anonymise_file(source, folder / "own.jpg", default, detector=detector, overwrite=True, rng=rng())
            own["anonymise_seconds"] += time.perf_counter() - started
            started = time.perf_counter()
            report = check_file(written.output)
            own["check_seconds"] += time.perf_counter() - started
            own["photos"] += 1
            own["failed"] += not report.clean
            own["boxes"] += len(report.faces)

            # the second opinion, on the same output with every pixel where it was
            kept = anonymise_file(source, folder / "exact.jpg", exact, detector=detector, overwrite=True, rng=rng())
            report = check_file(kept.output)
            original, output = read_photo(source).pixels, read_photo(kept.output).pixels
            a, b = grey(original), grey(output)
            for face in entry["faces"]:
                if face.get("invalid") or face["box"][3] < MIN_FACE or box_ssim(a, b, face["box"]) <= DESTROYED_SSIM:
                    continue
                visible += 1
                if any(covers(d, face["box"]) for d in report.faces):
                    first = 0
                else:
                    first = next((i + 1 for i, m in enumerate(report.maybes) if covers(m.detection, face["box"])), None)
                for k in CURVE:
                    found_at[k] += first is not None and first <= k
            for k in CURVE:
                shown_at[k] += min(k, len(report.maybes))

            # loud: one face left, --fast, the photo as it was, deface
            mask = combined_mask(kept.regions, kept.height, kept.width, exact.shape)
            candidates = [f["box"] for f in entry["faces"] if not f.get("invalid") and f["box"][3] >= MIN_FACE
                          and box_share(mask, f["box"]) >= 0.9]
            for index in np.random.default_rng(SEED + number).permutation(len(candidates)):
                rest = [r for r in kept.regions if not centred_in(r, candidates[index])]
                if box_share(combined_mask(rest, kept.height, kept.width, exact.shape), candidates[index]) > 0.1:
                    continue
                left = anonymise_file(source, folder / "left.jpg", exact, regions=rest, overwrite=True, rng=rng())
                report = check_file(left.output)
                hit = any(covers(d, candidates[index]) for d in report.faces)
                _count(loud["one face left"], report)
                on_face += hit
                label = next(lab for lo, hi, lab in BUCKETS if lo <= candidates[index][3] < hi)
                by_size[label][0] += hit
                by_size[label][1] += 1
                break
            quick = anonymise_file(source, folder / "fast.jpg", fast, detector=fast_detector, overwrite=True, rng=rng())
            _count(loud["--fast"], check_file(quick.output))
            _count(loud["as photographed"], check_file(source))
            if peer is not None:
                _count(loud["deface"], check_file(peer / f"{Path(entry['image']).stem}_anonymized{source.suffix}"))
            print(f"\r{number + 1} of {len(entries)} photos", end="", file=sys.stderr, flush=True)
    n = max(own["photos"], 1)
    return {
        "dataset": str(dataset), "photos": own["photos"], "second_opinion": second_opinion_models(),
        "own_outputs": own, "loud": loud, "one_face_left_on_that_face": on_face,
        "caught_by_face_height": {label: {"caught": c, "photos": t} for label, (c, t) in by_size.items()},
        "visible_faces": visible,
        "curve": [{"places": k, "shown_per_photo": shown_at[k] / n, "found": found_at[k]} for k in CURVE],
    }


def _count(tally: dict, report) -> None:
    tally["photos"] += 1
    tally["failed"] += not report.clean


def _deface_outputs(dataset: Path, entries: list[dict], folder: Path) -> Path | None:
    """deface at its defaults on copies of the photos, in one run; None if it is not installed."""
    command = deface_command()
    if command is None:
        return None
    folder.mkdir()
    for entry in entries:
        shutil.copy(dataset / entry["image"], folder / Path(entry["image"]).name)
    subprocess.run([command, *map(str, sorted(folder.iterdir()))], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return folder


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "-"


def print_figures(result: dict) -> None:
    own, n = result["own_outputs"], max(result["photos"], 1)
    print(f"dataset: {result['dataset']}; {result['photos']} photos; second opinion: {', '.join(result['second_opinion'])}")
    print("| outputs checked alone | photos | check passes | check fails |")
    print("| --- | --- | --- | --- |")
    print(f"| blur, defaults | {own['photos']} | {_percent(own['photos'] - own['failed'], own['photos'])} | "
          f"{_percent(own['failed'], own['photos'])} ({own['boxes'] / n:.1f} boxes a photo) |")
    for kind, tally in result["loud"].items():
        print(f"| {kind} | {tally['photos']} | {_percent(tally['photos'] - tally['failed'], tally['photos'])} | "
              f"{_percent(tally['failed'], tally['photos'])} |")
    left = result["loud"]["one face left"]
    print(f"one face >= {MIN_FACE} px left: the check lists that face in {result['one_face_left_on_that_face']} of "
          f"{left['photos']} photos; by height: " + ", ".join(
              f"{label} px {row['caught']}/{row['photos']}" for label, row in result["caught_by_face_height"].items()))
    print(f"second opinion: faces >= {MIN_FACE} px still visible after blur: {result['visible_faces']}")
    print("| places looked at | shown per photo | visible faces pointed at |")
    print("| --- | --- | --- |")
    for row in result["curve"]:
        print(f"| best {row['places']} | {row['shown_per_photo']:.2f} | {row['found']} "
              f"({_percent(row['found'], result['visible_faces'])}) |")
    print(f"time per photo, one process: anonymise {own['anonymise_seconds'] / n:.2f} s, check "
          f"{own['check_seconds'] / n:.2f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--composites", action="store_true", help="measure on 12-MP composites of the dataset")
    parser.add_argument("--photos", type=int, default=None, help="only N photos, spread over the dataset")
    parser.add_argument("--no-deface", action="store_true", help="do not run deface")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the figures")
    args = parser.parse_args()
    if not (args.dataset / "faces.json").is_file():
        print(f"skipped: no dataset at {args.dataset} (expected images/ and faces.json)")
        return 0
    with tempfile.TemporaryDirectory(prefix="check-composites-") as tmp:
        dataset = build_composites(args.dataset, Path(tmp, "mp12")) if args.composites else args.dataset
        result = evaluate(dataset, args.photos, deface=not args.no_deface)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print_figures(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
