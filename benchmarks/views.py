"""How many pixels a face needs in the view the model sees: the measurement behind `model_face`.

    python benchmarks/views.py [--data ../shared/data/wider-native-dev] [--photos N] [--scales 0.5,1,1.5,2]

Looks at each photo of the set (WIDER layout, read where it lies) once at each scale, alone (no
fusion), and counts for every valid face whether the model gives a candidate overlapping its box
(IoU >= 0.3) at scores 0.05, 0.1 and 0.2, by the face's height in the view. The default pyramid
enlarges the smallest face to be found to the height where this curve flattens.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from blur.detect.centerface import CenterFace  # noqa: E402
from blur.detect.fusion import iou_rows  # noqa: E402
from blur.detect.views import view_windows  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "wider-native-dev"
BINS = [5, 7, 10, 14, 20, 28, 40, 56, 80, 113, 160, 226, 320, 640]
SCORES = (0.05, 0.1, 0.2)


def view_candidates(detector: CenterFace, pixels: np.ndarray, scale: float) -> np.ndarray:
    found = [np.empty((0, 5), np.float32)]
    for x, y, window in view_windows(pixels, scale, False, detector.pyramid.window, detector.pyramid.overlap):
        boxes = detector.infer(window, min(SCORES))
        boxes[:, [0, 2]] += x
        boxes[:, [1, 3]] += y
        found.append(boxes)
    boxes = np.concatenate(found)
    boxes[:, :4] /= scale
    return boxes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--photos", type=int, default=0)
    parser.add_argument("--scales", default="0.5,1,1.5,2")
    args = parser.parse_args()
    if not (args.data / "faces.json").is_file():
        print(f"skipped: no dataset at {args.data} (expected images/ and faces.json)")
        return 0
    entries = json.loads((args.data / "faces.json").read_text())["images"]
    if args.photos:
        entries = entries[:: max(1, len(entries) // args.photos)][: args.photos]
    detector = CenterFace()
    counts = np.zeros((len(BINS) - 1, len(SCORES) + 1), int)
    for entry in entries:
        pixels = np.asarray(Image.open(args.data / entry["image"]).convert("RGB"))
        faces = np.array([[x, y, x + w, y + h] for x, y, w, h in
                          (f["box"] for f in entry["faces"] if not f.get("invalid"))], np.float64).reshape(-1, 4)
        for scale in map(float, args.scales.split(",")):
            boxes = view_candidates(detector, pixels, scale).astype(np.float64)
            for face in faces:
                height = (face[3] - face[1]) * scale
                row = np.searchsorted(BINS, height, "right") - 1
                if not 0 <= row < len(BINS) - 1:
                    continue
                overlap = iou_rows(np.repeat(face[None], len(boxes), 0), boxes[:, :4]) >= 0.3 if len(boxes) else []
                best = boxes[overlap, 4].max() if np.any(overlap) else 0.0
                counts[row, 0] += 1
                counts[row, 1:] += [best >= s for s in SCORES]
    print(f"{len(entries)} photos from {args.data} at scales {args.scales}; one view alone, no fusion")
    print(f"{'face height in the view':>24} {'faces':>6} " + " ".join(f"{'score >= ' + str(s):>13}" for s in SCORES))
    for (lo, hi), row in zip(zip(BINS, BINS[1:]), counts):
        if row[0]:
            print(f"{f'{lo}-{hi} px':>24} {row[0]:>6} " + " ".join(f"{100 * c / row[0]:>12.1f}%" for c in row[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
