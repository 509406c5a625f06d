"""Peak memory of one worker anonymising the largest photo the default limit accepts.

    .venv/bin/python benchmarks/memory_peak.py [--megapixels 100] [--format jpeg|png|tiff]

Builds a synthetic photo of exactly the pixel limit (10000×10000 for 100 MP) in a temporary
folder, then anonymises it in a fresh process, as one worker does (detector built, decode,
detect, anonymise, encode, verify, write), and prints that process's peak resident memory
(VmHWM, Linux) and time. Nothing is downloaded; the photo is deleted afterwards.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHILD = """
import sys, time
from blur.pipeline import Settings, anonymise_file

def peak_mb():
    # VmHWM: this process's own resident high-water mark (ru_maxrss would include the parent's
    # at fork time on Linux).
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024

settings = Settings(max_pixels=int(sys.argv[3]))
detector = settings.load_detector()
before = peak_mb()
started = time.perf_counter()
result = anonymise_file(sys.argv[1], sys.argv[2], settings, detector=detector)
seconds = time.perf_counter() - started
print(f"{result.width}x{result.height} faces={len(result.regions)} seconds={seconds:.1f} "
      f"peak_before_photo_mb={before} peak_mb={peak_mb()}")
"""


def make_photo(path: Path, side: int, pillow_format: str) -> None:
    """A smooth synthetic photo (gradients and blocks), built in horizontal bands to keep this process small."""
    import numpy as np
    from PIL import Image

    image = Image.new("RGB", (side, side))
    band = 500
    for top in range(0, side, band):
        rows = min(band, side - top)
        y, x = np.mgrid[top : top + rows, 0:side]
        pixels = np.dstack([(x * 255 // side), (y * 255 // side), ((x // 97 + y // 89) % 2) * 180 + 40]).astype(np.uint8)
        image.paste(Image.fromarray(pixels), (0, top))
    image.save(path, pillow_format, **({"quality": 90} if pillow_format == "JPEG" else {}))


def main() -> None:
    if sys.argv[1:2] == ["--make"]:
        make_photo(Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megapixels", type=float, default=100)
    parser.add_argument("--format", choices=["jpeg", "png", "tiff"], default="jpeg")
    args = parser.parse_args()
    side = math.isqrt(int(args.megapixels * 1e6))
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder, f"big.{args.format}")
        started = time.perf_counter()
        subprocess.run(  # in a child, so this process stays small
            [sys.executable, __file__, "--make", str(source), str(side), args.format.upper()], check=True
        )
        print(f"built {side}x{side} {args.format} ({source.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.0f} s")
        run = subprocess.run(
            [sys.executable, "-c", _CHILD, str(source), str(Path(folder, "out")), str(side * side)],
            capture_output=True, text=True,
        )
        print(run.stdout.strip() or run.stderr.strip()[-2000:])


if __name__ == "__main__":
    main()
