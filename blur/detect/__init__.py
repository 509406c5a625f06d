"""Detect: find candidate faces. A detector is a session (`Detector`): it holds its model, built once.

Detectors live in an explicit registry (no import-time discovery). Each entry owns the options a
Settings may give it, with their checks and defaults, and each detector describes itself for
reports. `open_detector` builds a new session (one per thread or process that needs its own);
`load_detector` gives the process's shared session for a set of options, for callers that hold none.
"""

from __future__ import annotations

import functools

import numpy as np

from ..errors import DetectorUnavailable
from . import centerface
from .detection import Detection, Detector, DetectorEntry

__all__ = ["DEFAULT_DETECTOR", "DETECTORS", "Detection", "Detector", "DetectorEntry", "detect_faces",
           "load_detector", "open_detector"]

DETECTORS: dict[str, DetectorEntry] = {
    "centerface": DetectorEntry(centerface.CenterFace, centerface.OPTIONS, centerface.resolve_options),
}
DEFAULT_DETECTOR = "centerface"


def open_detector(name: str = DEFAULT_DETECTOR, options: dict | None = None, *, threads: int | None = None) -> Detector:
    """A new session of the detector `name` with `options` (checked as Settings checks them);
    `threads` bounds its inference threads (default: every core)."""
    try:
        entry = DETECTORS[name]
    except KeyError:
        raise DetectorUnavailable(
            f"unknown detector {name!r}; choose one of: {', '.join(sorted(DETECTORS))}"
        ) from None
    runtime = {} if threads is None else {"threads": threads}
    return entry.build(**entry.checked(dict(options or {})), **runtime)


@functools.cache
def load_detector(name: str = DEFAULT_DETECTOR, **options) -> Detector:
    """The process's shared session of the detector `name` for `options`, built on first use: for
    callers that hold no session of their own (a photo at a time from Python, the tests)."""
    return open_detector(name, options)


def detect_faces(pixels: np.ndarray, detector: Detector | None = None) -> list[Detection]:
    """Face candidates in `pixels`, found with `detector` (the default detector if None)."""
    return (detector or load_detector()).detect(pixels)
