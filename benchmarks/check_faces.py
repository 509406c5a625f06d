"""How well `blur check` points at faces the anonymiser missed, on the tool's own outputs.

    python benchmarks/check_faces.py [--dataset ../shared/data/wider-dev] [blur options...]

Each wider-dev photo is anonymised in memory with the given settings (default: the tool's),
JPEG-encoded and decoded as it would be posted, then searched the way `blur check` searches.
A ground-truth face (>= 10 px, valid) counts as missed by the anonymiser when under 90 % of its box
was altered. For the check's candidates, the script reports how many missed faces they cover
(as failing faces, score >= 0.5, or as "look at" candidates) and how many land on no face at all.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.wider import DEFAULT_DATASET, face_destroyed  # noqa: E402
from blur.check import FACE_ALARM_THRESHOLD, find_face_candidates  # noqa: E402
from blur.encode import OUTPUT_FORMATS, encode_image  # noqa: E402
from blur.pipeline import anonymise_image  # noqa: E402
from cli.main import build_parser, settings_from  # noqa: E402


def covers(detection, box: list[float]) -> bool:
    """The candidate's centre lies in the face box, or the face's centre in the candidate."""
    x, y, w, h = box
    cx, cy = (detection.x0 + detection.x1) / 2, (detection.y0 + detection.y1) / 2
    fx, fy = x + w / 2, y + h / 2
    return (x <= cx <= x + w and y <= cy <= y + h) or (detection.x0 <= fx <= detection.x1 and detection.y0 <= fy <= detection.y1)


def evaluate(dataset: Path, blur_args: list[str]) -> dict:
    entries = json.loads((dataset / "faces.json").read_text())["images"]
    settings = settings_from(build_parser().parse_args([*blur_args, "unused"]))
    detector = settings.load_detector()
    counts = dict(faces=0, missed=0, missed_failing=0, missed_look=0, missed_hidden_as_blob=0,
                  false_failing=0, false_look=0, blobs=0, photos_failing=0)
    started = time.perf_counter()
    for entry in entries:
        pixels = np.asarray(Image.open(dataset / entry["image"]).convert("RGB"))
        result = anonymise_image(pixels, settings, detector=detector)
        data = encode_image(result.pixels, None, OUTPUT_FORMATS["JPEG"], settings.quality)
        posted = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        change = np.any(pixels != result.pixels, axis=2)
        faces = [f["box"] for f in entry["faces"] if not f.get("invalid") and f["box"][3] >= 10]
        missed = [box for box in faces if not face_destroyed(change, box)]
        candidates = find_face_candidates(posted)
        counts["faces"] += len(faces)
        counts["missed"] += len(missed)
        failing = [c for c in candidates if not c.destroyed and c.detection.score >= FACE_ALARM_THRESHOLD]
        look = [c for c in candidates if not c.destroyed and c.detection.score < FACE_ALARM_THRESHOLD]
        blobs = [c for c in candidates if c.destroyed]
        counts["blobs"] += len(blobs)
        counts["photos_failing"] += bool(failing)
        for box in missed:
            if any(covers(c.detection, box) for c in failing):
                counts["missed_failing"] += 1
            elif any(covers(c.detection, box) for c in look):
                counts["missed_look"] += 1
            elif any(covers(c.detection, box) for c in blobs):
                counts["missed_hidden_as_blob"] += 1
        counts["false_failing"] += sum(not any(covers(c.detection, box) for box in faces) for c in failing)
        counts["false_look"] += sum(not any(covers(c.detection, box) for box in faces) for c in look)
    counts["photos"] = len(entries)
    counts["seconds_per_photo"] = (time.perf_counter() - started) / len(entries)
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    args, blur_args = parser.parse_known_args()
    if not (args.dataset / "faces.json").is_file():
        print(f"skipped: no dataset at {args.dataset} (expected images/ and faces.json)")
        return 0
    c = evaluate(args.dataset, blur_args)
    print(f"{c['photos']} photos, {c['faces']} faces >= 10 px; the anonymiser missed {c['missed']}")
    print(f"of the missed faces, blur check fails on {c['missed_failing']}, lists {c['missed_look']} to look at, "
          f"takes {c['missed_hidden_as_blob']} for already-destroyed blobs, and does not see the rest")
    print(f"false alarms on no face: {c['false_failing']} failing, {c['false_look']} to look at; "
          f"{c['blobs']} blobs set aside; photos failing the face check: {c['photos_failing']}")
    print(f"time: {c['seconds_per_photo']:.2f} s per photo (anonymise + check, 1 process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
