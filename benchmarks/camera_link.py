"""Can a posted photo still be linked to the phone that took it? The standard sensor-fingerprint attack.

Each simulated camera multiplies real photos (wider-native-dev, cropped to one size) by its own fixed
sensor pattern (PRNU, Gaussian, `--strength` standard deviation) before JPEG encoding, as a phone would.
The attacker (Lukáš, Fridrich, Goljan) estimates the camera's fingerprint from `--photos` of its
photos: wavelet-denoising residuals (PyWavelets, db8, 4 levels, local Wiener), weighted by intensity,
rows and columns made zero-mean, periodic (JPEG grid) peaks flattened in the Fourier domain. Each test
photo's residual is then cross-correlated with the fingerprint over every shift (which covers any crop),
after resampling the fingerprint to each candidate scale and rotation; the highest peak-to-correlation
energy (PCE) found is the score, and above 60 counts as a match.

Printed for each camera: PCE of its own originals, of `blur`'s outputs without the fingerprint step
(`keep_geometry`), of outputs with it (the default), and of another camera's photos (unrelated), with
the PSNR and SSIM of the step's result against the anonymised image. The faces are found once per
photo and passed to `anonymise_file` (as `blur review` saves), so both outputs destroy the same regions.

    .venv/bin/python benchmarks/camera_link.py --data ../shared/data/wider-native-dev [--cameras 3 --photos 30 --tests 4]

The data are for research use: they are read from where they are and skipped cleanly when absent.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

try:
    import pywt
    from skimage.metrics import structural_similarity
except ImportError:  # pragma: no cover - a benchmark dependency only
    sys.exit("camera_link: needs PyWavelets and scikit-image (pip install -e '.[test]')")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from blur import Settings, anonymise_file  # noqa: E402
from blur.decode import read_photo  # noqa: E402
from blur.fingerprint import random_distortion, resample  # noqa: E402
from blur.pipeline import anonymise_image, find_regions  # noqa: E402

MATCH = 60.0
"""PCE above which forensic practice calls it the same camera."""
GREY = np.array([0.299, 0.587, 0.114], np.float32)


# --- the attacker ------------------------------------------------------------------------------

def _local_wiener(coefficients: np.ndarray, noise_var: float) -> np.ndarray:
    """Keep the part of wavelet coefficients that looks like noise of `noise_var` (smallest local
    variance over windows of 3 to 9), as the Binghamton NoiseExtract does."""
    energy = coefficients.astype(np.float32) ** 2
    local = np.min([cv2.blur(energy, (k, k), borderType=cv2.BORDER_REFLECT) for k in (3, 5, 7, 9)], axis=0)
    signal = np.maximum(local - noise_var, 0)
    return coefficients * noise_var / (signal + noise_var)


def noise_residual(grey: np.ndarray, sigma: float = 5.0) -> np.ndarray:
    """The image minus its wavelet-denoised version: what the sensor pattern lives in."""
    levels = min(4, pywt.dwt_max_level(min(grey.shape), "db8"))
    coefficients = pywt.wavedec2(grey.astype(np.float32), "db8", level=levels)
    coefficients[0] = np.zeros_like(coefficients[0])
    coefficients[1:] = [tuple(_local_wiener(c, sigma**2) for c in level) for level in coefficients[1:]]
    return pywt.waverec2(coefficients, "db8")[: grey.shape[0], : grey.shape[1]].astype(np.float32)


def _zero_mean(pattern: np.ndarray) -> np.ndarray:
    """Rows and columns of each of the four colour-filter phases made zero-mean (removes stripes)."""
    pattern = pattern - pattern.mean()
    for dy in (0, 1):
        for dx in (0, 1):
            phase = pattern[dy::2, dx::2]
            phase -= phase.mean(axis=1, keepdims=True)
            phase -= phase.mean(axis=0, keepdims=True)
    return pattern


def _flatten_spectrum(pattern: np.ndarray) -> np.ndarray:
    """Wiener-filter the Fourier magnitude: periodic peaks (the JPEG 8×8 grid, shared by every JPEG) go."""
    spectrum = np.fft.fft2(pattern)
    magnitude = np.abs(spectrum) / np.sqrt(pattern.size)
    filtered = _local_wiener(magnitude, float(pattern.std()) ** 2)
    ratio = np.divide(filtered, magnitude, out=np.zeros_like(filtered), where=magnitude > 0)
    return np.real(np.fft.ifft2(spectrum * ratio)).astype(np.float32)


def grey_of(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float32) @ GREY).astype(np.float32)


def test_residual(rgb: np.ndarray) -> np.ndarray:
    return _flatten_spectrum(_zero_mean(noise_residual(grey_of(rgb))))


def estimate_fingerprint(photos: list[np.ndarray]) -> np.ndarray:
    """Maximum-likelihood fingerprint K = sum(W·I) / sum(I²) over a camera's photos (grey)."""
    weighted = np.zeros(photos[0].shape[:2], np.float64)
    energy = np.zeros_like(weighted)
    for rgb in photos:
        grey = grey_of(rgb)
        intensity = np.where(grey < 250, grey / 255.0, 0.0)  # saturated pixels carry no pattern
        weighted += noise_residual(grey) * intensity
        energy += intensity**2
    return _flatten_spectrum(_zero_mean((weighted / (energy + 1)).astype(np.float32)))


def pce(correlation: np.ndarray, exclude: int = 5) -> float:
    """Peak-to-correlation energy: the peak squared over the mean square away from it, signed."""
    y, x = np.unravel_index(int(np.argmax(correlation)), correlation.shape)
    peak = float(correlation[y, x])
    rolled = np.roll(correlation, (exclude - y, exclude - x), axis=(0, 1))
    floor = np.ones(correlation.shape, bool)
    floor[: 2 * exclude + 1, : 2 * exclude + 1] = False
    return float(np.sign(peak) * peak**2 / np.mean(rolled[floor] ** 2))


class Matcher:
    """PCE of test photos against one fingerprint, searching scale, rotation and (by correlating over
    every shift) crop, as Goljan and Fridrich do for cropped and scaled photos: the test photo's residual
    is resampled into the sensor's geometry for each candidate scale and rotation. Scales near 1 (±4 %)
    are searched finely (0.1 %), the rest of 0.5–1.1 in 1 % steps; rotations of ±0.4° in 0.1° steps
    around the three best scales."""

    def __init__(self, fingerprint: np.ndarray):
        self.shape = fingerprint.shape
        self.spectrum = np.conj(np.fft.rfft2(fingerprint))

    def _pce_at(self, residual: np.ndarray, scale: float, degrees: float) -> float:
        """PCE with the photo taken to be the sensor's image scaled by `scale` and turned by `degrees`."""
        angle = np.deg2rad(degrees)
        turn = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        sensor_centre = np.array([self.shape[1], self.shape[0]]) / 2
        photo_centre = np.array([residual.shape[1], residual.shape[0]]) / 2
        matrix = np.hstack([turn, (photo_centre - turn @ sensor_centre)[:, None]])
        aligned = cv2.warpAffine(residual, matrix, (self.shape[1], self.shape[0]),
                                 flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=0)
        return pce(np.fft.irfft2(np.fft.rfft2(aligned) * self.spectrum, s=self.shape))

    def score(self, rgb: np.ndarray) -> tuple[float, float, float]:
        """(best PCE, its scale, its rotation in degrees) for one test photo."""
        residual = test_residual(rgb)
        scales = np.unique(np.round(np.concatenate([np.arange(0.5, 0.96, 0.01), np.arange(0.96, 1.04, 0.001),
                                                    np.arange(1.04, 1.1001, 0.01)]), 4))
        scored = sorted(((self._pce_at(residual, s, 0.0), s, 0.0) for s in scales), reverse=True)
        refined = [
            (self._pce_at(residual, s + ds, r), s + ds, r)
            for _, s, _ in scored[:3]
            for ds in (-0.0005, 0.0, 0.0005)
            for r in np.arange(-0.4, 0.41, 0.1) if abs(r) > 1e-9
        ]
        return max(scored + refined)


# --- the cameras --------------------------------------------------------------------------------

def photos_from(data: Path, size: tuple[int, int]) -> list[np.ndarray]:
    """Every photo of the data set at least `size` (height, width), cropped to it at its centre."""
    photos = []
    for path in sorted((data / "images").glob("*.jpg")):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        h, w = rgb.shape[:2]
        if h >= size[0] and w >= size[1]:
            y, x = (h - size[0]) // 2, (w - size[1]) // 2
            photos.append(np.ascontiguousarray(rgb[y : y + size[0], x : x + size[1]]))
    return photos


def shoot(scene: np.ndarray, pattern: np.ndarray, quality: int = 92) -> bytes:
    """What a phone with this sensor pattern writes: the scene times (1 + pattern), as a JPEG."""
    exposed = np.clip(scene.astype(np.float32) * (1 + pattern[..., None]), 0, 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(exposed).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / mse)) if mse else float("inf")


def visible_change(anonymised: np.ndarray, rng: np.random.Generator) -> tuple[float, float, float]:
    """(PSNR, SSIM, PSNR without alignment) of the step's result against the anonymised image. The
    reference is the anonymised image read at the same displaced positions with Lanczos (close to
    exact interpolation): what the eye sees change, the sub-pixel geometry aside. The last figure
    compares pixel to pixel (crop aligned), counting every sub-pixel move as an error."""
    distortion = random_distortion(*anonymised.shape[:2], rng)
    result = resample(anonymised, distortion)
    reference = resample(anonymised, distortion, cv2.INTER_LANCZOS4)
    unaligned = anonymised[distortion.top : distortion.top + result.shape[0], distortion.left : distortion.left + result.shape[1]]
    similarity = structural_similarity(grey_of(reference), grey_of(result), data_range=255)
    return psnr(reference, result), float(similarity), psnr(unaligned, result)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/wider-native-dev")
    parser.add_argument("--cameras", type=int, default=3)
    parser.add_argument("--photos", type=int, default=30, help="photos per camera for its fingerprint")
    parser.add_argument("--tests", type=int, default=4, help="test photos per camera")
    parser.add_argument("--strength", type=float, default=0.01, help="sensor pattern standard deviation (1 %%)")
    parser.add_argument("--size", default="680x1024", help="photo size HxW (cropped from the data)")
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args(argv)
    if not (args.data / "images").is_dir():
        print(f"camera_link: skipped, no data at {args.data}")
        return 0
    size = tuple(int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(args.seed)
    scenes = photos_from(args.data, size)
    rng.shuffle(scenes)  # neighbours in the data set are often from one event: no camera gets a burst
    per_camera = args.photos + args.tests
    if len(scenes) < args.cameras * per_camera:
        print(f"camera_link: skipped, {len(scenes)} photos of {size} or more, {args.cameras * per_camera} needed")
        return 0
    settings_on, settings_off = Settings(), Settings(keep_geometry=True)
    detector = settings_on.load_detector()
    rows, changes = [], []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        cameras = []
        for camera in range(args.cameras):
            pattern = rng.normal(0, args.strength, size).astype(np.float32)
            shots = [shoot(s, pattern) for s in scenes[camera * per_camera : (camera + 1) * per_camera]]
            cameras.append((estimate_fingerprint([decoded(s) for s in shots[: args.photos]]), shots[args.photos :]))
        for camera, (fingerprint, tests) in enumerate(cameras):
            matcher = Matcher(fingerprint)
            unrelated = cameras[(camera + 1) % len(cameras)][1]
            scores = {"original": [], "step off": [], "step on": [], "unrelated": []}
            for index, shot in enumerate(tests):
                source = folder / f"c{camera}-{index}.jpg"
                source.write_bytes(shot)
                scores["original"].append(matcher.score(decoded(shot)))
                scores["unrelated"].append(matcher.score(decoded(unrelated[index])))
                photo = read_photo(source)
                regions = find_regions(photo.pixels, settings_off, detector)
                for label, settings in (("step off", settings_off), ("step on", settings_on)):
                    result = anonymise_file(source, folder / f"c{camera}-{index}-{label[-2:].strip()}.jpg", settings, regions=regions)
                    scores[label].append(matcher.score(np.asarray(Image.open(result.output).convert("RGB"))))
                anonymised = anonymise_image(photo.pixels, settings_off, regions=regions).pixels
                changes.append(visible_change(anonymised, rng))
            rows.append((camera, scores))
            print(f"camera {camera}: done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    print(f"\n{args.cameras} cameras, fingerprint from {args.photos} photos each, {args.tests} test photos each, "
          f"{size[1]}×{size[0]} px, sensor pattern {args.strength:.1%}, JPEG 92; search: scale 0.5–1.1, rotation ±0.4°, any crop\n")
    print("| camera | originals | outputs, step off | outputs, step on | another camera's photos |")
    print("| --- | --- | --- | --- | --- |")
    for camera, scores in rows:
        cells = [f"{min(p for p, _, _ in v):,.0f}–{max(p for p, _, _ in v):,.0f}" for v in scores.values()]
        print(f"| {camera} | " + " | ".join(cells) + " |")
    on = [p for _, s in rows for p, _, _ in s["step on"]]
    originals = [p for _, s in rows for p, _, _ in s["original"]]
    print(f"\nlinked: originals {sum(p > MATCH for p in originals)}/{len(originals)}, "
          f"outputs with the step {sum(p > MATCH for p in on)}/{len(on)} (PCE > {MATCH:g})")
    values = np.array(changes)
    print(f"step against the anonymised image: PSNR {values[:, 0].min():.1f}–{values[:, 0].max():.1f} dB, "
          f"SSIM {values[:, 1].min():.4f}–{values[:, 1].max():.4f} (aligned); pixel to pixel PSNR "
          f"{values[:, 2].min():.1f}–{values[:, 2].max():.1f} dB; {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
