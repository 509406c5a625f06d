"""The most work one review request may ask for, within the server's bounds (blur.review.photos).

    .venv/bin/python benchmarks/review_bounds.py [--megapixels 12]

Times, on random pixels, the preview (on the 1600-px display copy) and the export's anonymise step
(at full resolution) for the two worst cases the bounds allow: MAX_COVER boxes each covering the
whole photo, and MAX_REGIONS small boxes; mosaic and solid. Then the check that refuses nesting
before any JSON parser runs, on the largest bodies read (MAX_BODY_BYTES): it stays linear. Prints
wall-clock and CPU seconds (the CPU figure is the work itself, whatever else the machine runs).
Nothing is written to disk.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from blur.anonymise import Method, anonymise
from blur.regions import Region, Shape
from blur.review.photos import MAX_COVER, MAX_REGIONS
from blur.review.requests import MAX_BODY_BYTES, json_depth
from blur.review.session import VIEW_LONG_SIDE


def worst_cases(height: int, width: int) -> dict[str, list[Region]]:
    side = max(1, math.isqrt(MAX_COVER * height * width // MAX_REGIONS))  # small boxes: the same total area
    rng = np.random.default_rng(0)
    small = [Region(int(x), int(y), int(x) + side, int(y) + side)
             for x, y in zip(rng.integers(0, max(1, width - side), MAX_REGIONS),
                             rng.integers(0, max(1, height - side), MAX_REGIONS))]
    return {f"{MAX_COVER} whole-photo boxes": [Region(0, 0, width, height)] * MAX_COVER,
            f"{MAX_REGIONS} boxes of {side} px": small}


def seconds(pixels: np.ndarray, regions: list[Region], method: Method) -> tuple[float, float]:
    """(wall, CPU) seconds of anonymising `regions` in `pixels`."""
    wall, cpu = time.perf_counter(), time.process_time()
    anonymise(pixels, regions, method, Shape.ELLIPSE)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=12.0, help="size of the photo exported (default 12)")
    args = parser.parse_args()
    width = round(math.sqrt(args.megapixels * 1e6 * 4 / 3))
    height = round(width * 3 / 4)
    view = (round(VIEW_LONG_SIDE * 3 / 4), VIEW_LONG_SIDE)
    rng = np.random.default_rng(1)
    for label, (h, w) in (("preview", view), ("export", (height, width))):
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        for case, regions in worst_cases(h, w).items():
            for method in Method:
                wall, cpu = seconds(pixels, regions, method)
                print(f"{label:8} {w}×{h}  {case:28} {method.value:7} {wall:6.2f} s wall {cpu:6.2f} s CPU", flush=True)
    for case, body in (("brackets", b"[" * MAX_BODY_BYTES), ("unterminated strings", b'"\\"' * (MAX_BODY_BYTES // 3))):
        wall, cpu = time.perf_counter(), time.process_time()
        json_depth(body)
        print(f"nesting  {len(body) / 1e6:.1f} MB of {case:22} {time.perf_counter() - wall:6.2f} s wall "
              f"{time.process_time() - cpu:6.2f} s CPU", flush=True)


if __name__ == "__main__":
    main()
