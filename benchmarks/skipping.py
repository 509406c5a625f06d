"""What the finest level could skip, and what each way of skipping would cost in faces found.

    python benchmarks/skipping.py [--data ../shared/data/wider-native-dev] [--composites] [--photos N]

The finest view (the photo enlarged 1.5 times) is most of the model's work. For each photo of the
set (WIDER layout, read where it lies; `--composites` first builds the 12-MP composites), every
level of the default pyramid is looked at whole once, with candidates kept from a very low score,
plus a 1× level. Each way of choosing the finest level's tiles (128 view pixels, as the detector's
partial looks) is then replayed on those candidates: the finest level's candidates outside the
chosen tiles are dropped, the rest fused and put to the detector's bar. Printed for each: the share
of the finest level's pixels looked at (tiles with their margins, against the whole level's
windows; the whole level where the tiles would cost more than PARTIAL_SHARE of it, as the detector
does), the detector's CPU seconds per photo that implies (its measured seconds per view pixel),
and the share of the data set's faces found (a fused box overlapping its box by IoU >= 0.3) by
height. The ways: the photo's flat cells skipped (what the detector does), the next level's
candidates from a score up (grown 1.5 times, larger ones from 0.1), and a 1× level's candidates up
to 30 px from a score up (that level then replaces the 0.75 one in the sums).
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

from benchmarks.wider import build_composites  # noqa: E402
from blur.detect.centerface import CANDIDATE_THRESHOLD, PARTIAL_SHARE, SUPPORT, TEXTURE, TEXTURE_CELL, CenterFace  # noqa: E402
from blur.detect.fusion import fuse_views, iou_rows  # noqa: E402
from blur.detect.views import (Areas, chosen_tiles, detect_in_views, level_pixels, merge_boxes,  # noqa: E402
                               textured_areas, view_windows)

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "wider-native-dev"
BINS = [(10, 20), (20, 40), (40, 10**9)]
LOW = 0.005


def looked_at(detector: CenterFace, pixels: np.ndarray) -> dict:
    """Every level's candidates from LOW up, a 1× level's, and the detector's CPU seconds per view pixel."""
    infer = lambda window: detector.infer(window, LOW)  # noqa: E731
    started = time.process_time()
    detector.detect(pixels)
    seconds = (time.process_time() - started) / detector.pyramid.view_pixels(pixels.shape[:2])
    levels = detect_in_views(pixels, infer, detector.pyramid)
    windows = list(view_windows(pixels, 1.0, False, detector.pyramid.window, detector.pyramid.overlap))
    boxes = [np.empty((0, 5), np.float32)]
    for x, y, window in windows:
        found = infer(window)
        found[:, [0, 2]] += x
        found[:, [1, 3]] += y
        boxes.append(found)
    return {"levels": levels, "one": merge_boxes(np.concatenate(boxes), 0.3), "seconds_per_pixel": seconds,
            "textured": textured_areas(pixels, TEXTURE_CELL, TEXTURE)}


def areas_of(boxes: np.ndarray, shape: tuple[int, int], cell: int = 16) -> Areas:
    cells = np.zeros((-(-shape[0] // cell), -(-shape[1] // cell)), bool)
    for x0, y0, x1, y1 in np.clip(boxes[:, :4] // cell, 0, None).astype(int):
        cells[y0 : y1 + 1, x0 : x1 + 1] = True
    return Areas(cells, cell)


def grown(boxes: np.ndarray, factor: float) -> np.ndarray:
    centre, half = (boxes[:, :2] + boxes[:, 2:4]) / 2, (boxes[:, 2:4] - boxes[:, :2]) * factor / 2
    return np.concatenate([centre - half, centre + half], axis=1)


def ways(detector: CenterFace) -> dict:
    """name -> (areas for the finest level from what was looked at, whether the 1× level replaces the 0.75 one)."""
    def next_level(bar):
        def choose(seen, shape):
            found = seen["levels"][1]
            height = found[:, 3] - found[:, 1]
            small, large = found[(height <= 40) & (found[:, 4] >= bar)], found[(height > 40) & (found[:, 4] >= 0.1)]
            return areas_of(np.concatenate([grown(small, 1.5), large[:, :4]]), shape)
        return choose

    def one_level(bar):
        def choose(seen, shape):
            found = seen["one"]
            return areas_of(grown(found[(found[:, 3] - found[:, 1] <= 30) & (found[:, 4] >= bar)], 1.5), shape)
        return choose

    chosen = {"whole finest level": (None, False), "flat cells skipped (the default)": (lambda s, _: s["textured"], False)}
    chosen.update({f"next level's candidates >= {bar}": (next_level(bar), False) for bar in (0.005, 0.02, 0.04, 0.08)})
    chosen.update({f"1x level instead, candidates <= 30 px >= {bar}": (one_level(bar), True) for bar in (0.01, 0.03, 0.05)})
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--composites", action="store_true")
    parser.add_argument("--photos", type=int, default=0)
    args = parser.parse_args()
    if not (args.data / "faces.json").is_file():
        print(f"skipped: no dataset at {args.data} (expected images/ and faces.json)")
        return 0
    detector = CenterFace(everywhere=True)
    chosen = ways(detector)
    totals = {name: np.zeros((len(BINS), 2)) for name in chosen}
    shares, seconds = {name: [] for name in chosen}, {name: [] for name in chosen}
    with tempfile.TemporaryDirectory(prefix="skipping-") as tmp:
        data = build_composites(args.data, Path(tmp)) if args.composites else args.data
        entries = json.loads((data / "faces.json").read_text())["images"]
        if args.photos:
            entries = entries[:: max(1, len(entries) // args.photos)][: args.photos]
        for entry in entries:
            pixels = np.asarray(Image.open(data / entry["image"]).convert("RGB"))
            shape, pyramid = pixels.shape[:2], detector.pyramid
            seen = looked_at(detector, pixels)
            faces = np.array([[x, y, x + w, y + h] for x, y, w, h in
                              (f["box"] for f in entry["faces"] if not f.get("invalid"))], float).reshape(-1, 4)
            scales = pyramid.scales(shape)
            finest_pixels = level_pixels(shape, scales[0], pyramid)
            for name, (choose, with_one) in chosen.items():
                finest = seen["levels"][0]
                areas = choose(seen, shape) if choose else None
                if areas is not None and level_pixels(shape, scales[0], pyramid, areas) > PARTIAL_SHARE * finest_pixels:
                    areas = None  # as the detector does: then the whole level costs less than its parts
                looked = finest_pixels if areas is None else level_pixels(shape, scales[0], pyramid, areas)
                if areas is not None:
                    tiles = chosen_tiles(shape, scales[0], False, areas, pyramid.tile)
                    row = np.clip(((finest[:, 1] + finest[:, 3]) / 2 * scales[0] // pyramid.tile).astype(int), 0, tiles.shape[0] - 1)
                    col = np.clip(((finest[:, 0] + finest[:, 2]) / 2 * scales[0] // pyramid.tile).astype(int), 0, tiles.shape[1] - 1)
                    finest = finest[tiles[row, col]]
                coarse = seen["levels"][1:]
                others = level_pixels(shape, 1.0, pyramid) if with_one else level_pixels(shape, scales[1], pyramid)
                if with_one:
                    coarse = [seen["one"], *coarse[1:]]
                others += sum(level_pixels(shape, scale, pyramid) for scale in scales[2:])
                fused = fuse_views([v[v[:, 4] >= CANDIDATE_THRESHOLD] for v in [finest, *coarse]], SUPPORT)
                fused = fused[detector.clears(fused)]
                found = np.array([len(fused) and (iou_rows(np.repeat(face[None], len(fused), 0), fused[:, :4].astype(float)) >= 0.3).any()
                                  for face in faces], bool)
                heights = faces[:, 3] - faces[:, 1]
                for i, (low, high) in enumerate(BINS):
                    in_bin = (heights >= low) & (heights < high)
                    totals[name][i] += [in_bin.sum(), (found & in_bin).sum()]
                shares[name].append(looked / finest_pixels)
                seconds[name].append((looked + others) * seen["seconds_per_pixel"])
    print(f"{len(entries)} photos from {args.data}{' (12-MP composites)' if args.composites else ''}; "
          f"faces found (box IoU >= 0.3) by height")
    print(f"{'finest level looks at':>48} {'share':>6} {'model CPU s':>11} " + " ".join(f"{f'{lo}-{hi} px' if hi < 10**9 else f'>={lo} px':>9}" for lo, hi in BINS))
    for name in chosen:
        print(f"{name:>48} {100 * np.mean(shares[name]):5.1f}% {np.mean(seconds[name]):11.2f} "
              + " ".join(f"{100 * t[1] / max(t[0], 1):8.1f}%" for t in totals[name]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
