"""The pipeline for one photo: decode → detect → regions → anonymise → fingerprint → encode → verify → write."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .anonymise import Method, anonymise, level_alpha
from .decode import DEFAULT_MAX_PIXELS, read_photo
from .detect import DEFAULT_DETECTOR, DETECTORS, Detector, detect_faces, load_detector, open_detector
from .encode import DEFAULT_QUALITY, encode_image, verify_encoded, verify_no_metadata, write_atomically
from .errors import InvalidSetting, OutputError, OutputExists
from .formats import PHOTO_EXTENSIONS, Format, output_format
from .fingerprint import unlink_sensor
from .regions import DEFAULT_PADDING, Region, Shape, regions_from_detections
from .values import Check, at_least, flag, member, one_of, whole_from


MIN_PADDING = 1.0
"""Detected boxes are tight around eyes and mouth: a smaller region would leave part of them intact."""


@dataclass(frozen=True)
class Settings:
    """Everything that decides how a photo is anonymised. The defaults are the safe ones.

    Every value is checked when a Settings is made (InvalidSetting otherwise), so no typo or
    out-of-range number can quietly weaken protection: methods and shapes are their enum or its
    exact name, the padding is at least 1, and detector options are those the detector's registry
    entry knows, each checked by it (blur.detect).

    `keep_geometry` skips the step that unlinks the photo from its camera's sensor pattern (a smooth
    random distortion of a few pixels and a crop a little larger: see blur.fingerprint), for
    newsrooms that must keep every pixel where it was; the photo can then be matched to the camera.
    """

    method: Method = Method.MOSAIC
    shape: Shape = Shape.ELLIPSE
    padding: float = DEFAULT_PADDING
    detector: str = DEFAULT_DETECTOR
    detector_options: dict = field(default_factory=dict, hash=False)
    max_pixels: int = DEFAULT_MAX_PIXELS
    quality: int = DEFAULT_QUALITY
    keep_geometry: bool = False

    def __post_init__(self):
        for name, check in _FIELD_CHECKS.items():
            object.__setattr__(self, name, check(name, getattr(self, name)))
        # The detector chosen checks its own options: its registry entry owns them.
        object.__setattr__(self, "detector_options", DETECTORS[self.detector].checked(self.detector_options))

    def load_detector(self) -> Detector:
        """The process's shared session of the detector these settings choose (blur.detect.load_detector)."""
        return load_detector(self.detector, **self.detector_options)

    def open_detector(self, threads: int | None = None) -> Detector:
        """A new session of the detector these settings choose, for a thread or process of its own;
        `threads` bounds its inference threads (default: every core)."""
        return open_detector(self.detector, self.detector_options, threads=threads)


_FIELD_CHECKS: dict[str, Check] = {
    "method": member(Method),
    "shape": member(Shape),
    "padding": at_least(MIN_PADDING, "the box the detector finds, or larger"),
    "detector": one_of(lambda: DETECTORS),
    "max_pixels": whole_from(1),
    "quality": whole_from(1, 100),
    "keep_geometry": flag,
}


def check_setting(name: str, value: Any) -> Any:
    """`value` as Settings would hold it for field `name` (but the detector's options), or for the
    default detector's option `name`; InvalidSetting if it is out of range or no setting has that name."""
    check = _FIELD_CHECKS.get(name) or DETECTORS[DEFAULT_DETECTOR].options.get(name)
    if check is None:
        raise InvalidSetting(f"unknown setting {name!r}")
    return check(name, value)


@dataclass(frozen=True, eq=False)
class Anonymised:
    """An anonymised image in memory and the regions that were destroyed in it."""

    pixels: np.ndarray
    alpha: np.ndarray | None
    regions: list[Region]


def find_regions(pixels: np.ndarray, settings: Settings = Settings(), detector: Detector | None = None) -> list[Region]:
    """The padded regions around every face the detector finds in `pixels`."""
    detections = detect_faces(pixels, detector or settings.load_detector())
    height, width = pixels.shape[:2]
    return regions_from_detections(detections, height, width, settings.padding)


def anonymise_image(
    pixels: np.ndarray,
    settings: Settings = Settings(),
    *,
    alpha: np.ndarray | None = None,
    regions: list[Region] | None = None,
    detector: Detector | None = None,
    rng: np.random.Generator | None = None,
) -> Anonymised:
    """Destroy every face in an upright H×W×3 uint8 RGB image.

    Pass `regions` to skip detection (e.g. regions a person reviewed). Alpha keeps its level in each
    region but no outline (`level_alpha`): transparency cannot carry a face's outline.
    """
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ValueError("pixels must be an H×W×3 uint8 RGB array")
    if regions is None:
        regions = find_regions(pixels, settings, detector)
    out = anonymise(pixels, regions, settings.method, settings.shape, rng)
    if alpha is not None and regions:
        alpha = level_alpha(alpha, regions, settings.shape)
    return Anonymised(out, alpha, regions)


@dataclass(frozen=True, eq=False)
class FileResult:
    """What happened to one photo that was anonymised and written."""

    output: Path
    regions: list[Region]
    width: int
    height: int
    camera_unlinked: bool = False
    """Whether the sensor-pattern step ran: then `width`×`height` (the output's) is about 1 % smaller
    than the original's. `regions` are always in the original's pixels."""


def anonymise_file(
    source: str | Path,
    destination: str | Path,
    settings: Settings = Settings(),
    *,
    overwrite: bool = False,
    detector: Detector | None = None,
    rng: np.random.Generator | None = None,
    regions: list[Region] | None = None,
    output: Format | None = None,
) -> FileResult:
    """Anonymise the photo at `source` and write it to `destination`, or raise a BlurError.

    Nothing is written unless every stage succeeds, and the source is never overwritten. The copy
    is written in `output` (a batch decides it once, when it plans the job), by default in the
    format blur.formats gives the photo's. If the destination's extension does not match the format
    written (a PNG named .jpg, a HEIC photo written as JPEG), the extension is corrected:
    `FileResult.output` is the path written.
    Pass `regions` (in upright full-resolution pixels) to destroy those instead of detecting faces.
    Unless `settings.keep_geometry`, the anonymised image is then unlinked from its camera's sensor
    pattern (blur.fingerprint: after the fill, on the whole image, so the destroyed regions move with
    everything else and stay covered), and everything after works on that slightly smaller image.
    """
    source = Path(source)
    photo = read_photo(source, max_pixels=settings.max_pixels)
    output = output or output_format(photo.format)
    destination = with_extension(Path(destination), output)
    if _same_file(source, destination):
        raise OutputError("the output would replace the original photo; choose another output name")
    if not overwrite and os.path.lexists(destination):
        raise OutputExists(destination)
    detector = detector or (settings.load_detector() if regions is None else None)
    result = anonymise_image(photo.pixels, settings, alpha=photo.alpha, regions=regions, detector=detector, rng=rng)
    del photo  # the original pixels are not needed again: one full-size copy fewer from here on
    pixels, alpha = result.pixels, result.alpha
    if not settings.keep_geometry:
        unlinked = unlink_sensor(pixels, alpha, rng)
        pixels, alpha = unlinked.pixels, unlinked.alpha
    height, width = pixels.shape[:2]
    data = encode_image(pixels, alpha, output, settings.quality)
    verify_encoded(data, output, height, width)
    verify_no_metadata(data)  # the container walk `blur check` does: nothing but the image, or no file
    write_atomically(data, destination, overwrite=overwrite)
    return FileResult(destination, result.regions, width, height, not settings.keep_geometry)


def with_extension(path: Path, output: Format) -> Path:
    """`path` with its extension replaced by the output format's, unless it already names that format."""
    suffix = path.suffix.lower()
    if suffix in output.extensions:
        return path
    if suffix in PHOTO_EXTENSIONS:
        return path.with_suffix(output.extension)
    return path.with_name(path.name + output.extension)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and a.samefile(b))
    except OSError:
        return False
