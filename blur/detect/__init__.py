"""Detect: find candidate faces. A detector is any object with `name` and `detect(pixels)`.

Detectors live in an explicit registry (no import-time discovery). Each holds its model, so it is
created once per process by `load_detector` and reused for every photo.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from ..errors import DetectorUnavailable


@dataclass(frozen=True)
class Detection:
    """A face candidate in pixel coordinates of the upright image (floats, x1/y1 exclusive)."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float
    source: str = ""


class Detector(Protocol):
    name: str

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        """Return face candidates in an H×W×3 uint8 RGB image."""
        ...

    def describe(self) -> dict:
        """What decides this detector's results (model, its hash, threshold, views), for reports: JSON values."""
        ...


def _centerface(**options) -> Detector:
    from .centerface import CenterFace

    return CenterFace(**options)


DETECTORS: dict[str, Callable[..., Detector]] = {
    "centerface": _centerface,
}
DEFAULT_DETECTOR = "centerface"


@functools.cache
def load_detector(name: str = DEFAULT_DETECTOR, **options) -> Detector:
    """The detector `name`, built once per process for each set of options."""
    try:
        factory = DETECTORS[name]
    except KeyError:
        raise DetectorUnavailable(
            f"unknown detector {name!r}; choose one of: {', '.join(sorted(DETECTORS))}"
        ) from None
    return factory(**options)


def detect_faces(pixels: np.ndarray, detector: Detector | None = None) -> list[Detection]:
    """Face candidates in `pixels`, found with `detector` (the default detector if None)."""
    return (detector or load_detector()).detect(pixels)
