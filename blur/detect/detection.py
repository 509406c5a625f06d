"""What every detector gives and is: a `Detection`, the `Detector` protocol, and a registry entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

import numpy as np

from ..errors import InvalidSetting
from ..values import Check


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
    """A detector session: it holds its model, so it is built once and used for every photo."""

    name: str

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        """Return face candidates in an H×W×3 uint8 RGB image."""
        ...

    def describe(self) -> dict:
        """What decides this detector's results (model, its hash, threshold, views), for reports: JSON values."""
        ...


@dataclass(frozen=True)
class DetectorEntry:
    """A detector in the registry: what builds a session of it, and the options a Settings may give it."""

    build: Callable[..., Detector]
    """Builds a session from the options, and `threads` (bounds its inference threads; default: all cores)."""
    options: Mapping[str, Check]
    """Each option a Settings may set, with the check of its value (blur.values)."""
    resolve: Callable[..., dict]
    """The values the detector runs with for some options: every default filled in."""

    def checked(self, options: Any) -> dict:
        """`options` as the detector takes them, each value checked; InvalidSetting for anything else."""
        if not isinstance(options, dict):
            raise InvalidSetting(f"detector_options must be a dict, not {options!r}")
        unknown = sorted(set(options) - set(self.options), key=str)
        if unknown:
            raise InvalidSetting(f"unknown detector option {unknown[0]!r}; known: {', '.join(sorted(self.options))}")
        return {name: self.options[name](name, value) for name, value in options.items()}

    @property
    def defaults(self) -> dict:
        """The values the detector runs with when no option is set."""
        return self.resolve()
