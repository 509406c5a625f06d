"""Rebuild samples/ from two public-domain portraits that ship inside PyPI packages.

    python tools/make_samples.py ASTRONAUT_PNG GRACE_HOPPER_JPG

ASTRONAUT_PNG: skimage/data/astronaut.png from scikit-image (NASA photo of Eileen Collins,
public domain). GRACE_HOPPER_JPG: matplotlib/mpl-data/sample_data/grace_hopper.jpg from the
matplotlib wheel (U.S. Navy photo, public domain). The planted metadata is fake, made up here to
show that the tool strips it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, PngImagePlugin

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def fake_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "SampleCam"  # Make
    exif[0x0110] = "Model S"  # Model
    exif[0x0131] = "sample-generator"  # Software
    exif[0x0132] = "2001:02:03 04:05:06"  # DateTime
    exif[0x013B] = "Sample Owner"  # Artist
    exif[0x0112] = orientation
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (51.0, 30.0, 0.0)  # fake position
    gps[3], gps[4] = "E", (0.0, 7.0, 0.0)
    details = exif.get_ifd(0x8769)
    details[0xA431] = "SAMPLE-SERIAL-0001"  # BodySerialNumber
    details[0x9003] = "2001:02:03 04:05:06"  # DateTimeOriginal
    return exif


def crowd(faces: list[Image.Image], seed: int = 7) -> Image.Image:
    """A made-up crowd: many copies of the portraits at sizes from 24 to 160 px on a plain scene."""
    rng = np.random.default_rng(seed)
    width, height = 1280, 800
    sky = np.linspace(200, 120, height)[:, None, None] * np.array([0.75, 0.85, 1.0])
    scene = Image.fromarray(np.broadcast_to(sky, (height, width, 3)).astype(np.uint8))
    draw = ImageDraw.Draw(scene)
    draw.rectangle([0, height * 0.55, width, height], fill=(95, 90, 85))
    draw.rectangle([380, 650, 900, 770], fill=(235, 225, 40))  # a placard, no face on it
    draw.text((420, 690), "NO FACES HERE", fill=(20, 20, 20))
    rows = [(160, 110, 4), (330, 70, 7), (470, 44, 11), (570, 28, 16)]
    for row, (y, size, count) in enumerate(rows):
        for i in range(count):
            face = faces[(i + row) % len(faces)]
            if rng.random() < 0.4:
                face = face.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            scaled = face.resize((size, round(size * face.height / face.width)), Image.Resampling.LANCZOS)
            x = int((i + 0.5) * width / count - size / 2 + rng.integers(-10, 10))
            scene.paste(scaled, (x, int(y - scaled.height / 2)))
    return scene.filter(ImageFilter.GaussianBlur(0.6))


def main(astronaut_png: str, hopper_jpg: str) -> None:
    astronaut = Image.open(astronaut_png).convert("RGB")
    hopper = Image.open(hopper_jpg).convert("RGB")
    SAMPLES.mkdir(exist_ok=True)

    astronaut.save(SAMPLES / "astronaut.jpg", quality=90, exif=fake_exif(), comment=b"sample comment: fake")

    # Stored sideways with EXIF orientation 6 (rotate 90 degrees clockwise to display), as phones do.
    hopper.transpose(Image.Transpose.ROTATE_90).save(SAMPLES / "hopper-sideways.jpg", quality=90, exif=fake_exif(6))

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "fake location: sample square")
    info.add_text("Author", "Sample Owner")
    heads = [astronaut.crop((150, 20, 300, 220)), hopper.crop((120, 40, 400, 380))]
    crowd(heads).save(SAMPLES / "crowd.png", pnginfo=info)


if __name__ == "__main__":
    main(*sys.argv[1:3])
