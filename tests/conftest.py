"""Shared fixtures: small generated images and the shipped sample photos; tools the tests need."""

from __future__ import annotations

import importlib
import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SAMPLES = Path(__file__).resolve().parents[1] / "samples"

ON_CI = os.environ.get("CI", "").lower() == "true"
"""CI (.ci/run) installs every tool the tests use: there a missing tool fails the run, never skips."""


def missing(what: str, how: str) -> None:
    """A test cannot run without `what`: skip it, saying how to install it; under CI=true, fail."""
    message = f"{what} is not installed ({how})"
    if ON_CI:
        pytest.fail(f"{message}: CI installs it, so the setup is broken", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def require_command(name: str, how: str) -> str:
    """The path of the command `name` (exiftool, ffprobe, chromium, ...), or `missing`."""
    path = shutil.which(name)
    if path is None:
        missing(name, how)
    return path


def require_module(name: str, how: str):
    """The module `name` (distributed, pywt, selenium, ...), or `missing`."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"the Python module {name}", how)


@pytest.fixture(autouse=True)
def private_data_folder(tmp_path_factory, monkeypatch) -> Path:
    """The user's data folder (where the random-names key lives), kept inside the test's temporary
    folder so no test writes into the home folder of whoever runs them; one for the whole session."""
    folder = tmp_path_factory.getbasetemp() / "user-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(folder))
    monkeypatch.setenv("LOCALAPPDATA", str(folder))
    return folder


@pytest.fixture(scope="session")
def face_pixels() -> np.ndarray:
    """Upright RGB pixels of a public-domain portrait with one face around (225, 117)."""
    return np.asarray(Image.open(SAMPLES / "astronaut.jpg").convert("RGB"))


@pytest.fixture
def textured() -> np.ndarray:
    """A 64×80 image where almost every pixel differs from its neighbours."""
    return np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)


def encoded(pixels: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **options)
    return buffer.getvalue()


def unlinked_size(size: tuple[int, int], original: tuple[int, int]) -> bool:
    """Whether an output of `size` (width, height) is what the sensor-pattern step makes of a photo of
    `original` size: each side cut by the field's reach and up to EXTRA_CROP more at each end."""
    from blur.fingerprint import EXTRA_CROP, most_moved

    reach = most_moved(original[1], original[0])
    return all(side - 2 * (reach + EXTRA_CROP) <= out <= side - 2 * reach for out, side in zip(size, original))


def write_photo(path: Path, pixels: np.ndarray, fmt: str | None = None, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encoded(pixels, fmt or Image.registered_extensions()[path.suffix.lower()], **options))
    return path
