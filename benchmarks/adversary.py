"""Can a face-recognition model still tell who it was? dlib's ResNet embedding against anonymised faces.

    pip install dlib-bin face_recognition_models && pip install --no-deps face_recognition
    python benchmarks/adversary.py [--dataset ../shared/data/wider-dev] [--min-height 60] [--seed N]

For every face at least --min-height px tall in the dataset, the attacker holds a photo of the
person and tries to pick, among all the people, the one behind each anonymised face:

- "same photo": the reference is the original, unanonymised face in the very same photo
  (the strongest reference an attacker can have);
- "another photo": the reference is the original mirrored, rescaled to 60 %, re-lit and
  recompressed, standing in for another photo of the same person.

Rank-1 is the share of anonymised faces whose nearest reference is the right person (chance:
1 / faces). ROC AUC is the chance that the right person's reference is nearer than a wrong
person's (0.5: no information). The default must stay at or below 0.6; the script also says whether its
bootstrap interval reaches down to the solid fill's AUC (statistically indistinguishable).

Regions are the ground-truth boxes padded as the tool pads detections, so this measures the
method, not the detector. Every anonymised photo goes through the tool's JPEG encoder and back,
as the attacker would receive it. The dataset is read where it lies and never copied.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from blur.anonymise import GRID, Method  # noqa: E402
from blur.detect import Detection  # noqa: E402
from blur.encode import encode_image  # noqa: E402
from blur.formats import OUTPUT_FORMATS  # noqa: E402
from blur.pipeline import Settings, anonymise_image  # noqa: E402
from blur.regions import DEFAULT_PADDING, Region, Shape, pad_detection, region_mask  # noqa: E402

DEFAULT_DATASET = ROOT.parent / "shared" / "data" / "wider-dev"
SAFE_AUC = 0.6


# --- the methods compared -----------------------------------------------------------------------


def tool(method: Method, shape: Shape = Shape.ELLIPSE):
    def run(pixels: np.ndarray, regions: list[Region], heights: list[float], rng: np.random.Generator) -> np.ndarray:
        return anonymise_image(pixels, Settings(method=method, shape=shape), regions=regions, rng=rng).pixels

    return run


def masked_filter(filter_box):
    """A reference method: `filter_box(box, face_height)` applied under the same ellipse masks as the tool."""

    def run(pixels: np.ndarray, regions: list[Region], heights: list[float], rng: np.random.Generator) -> np.ndarray:
        out = pixels.copy()
        height, width = pixels.shape[:2]
        for region, face_height in zip(regions, heights):
            x0, y0, x1, y1 = region.clipped(height, width)
            if x1 <= x0 or y1 <= y0:
                continue
            mask = region_mask(region, height, width, Shape.ELLIPSE)
            box = out[y0:y1, x0:x1]
            box[mask] = filter_box(pixels, (x0, y0, x1, y1), face_height)[mask]
        return out

    return run


def gaussian_box(pixels: np.ndarray, box: tuple[int, int, int, int], face_height: float) -> np.ndarray:
    sigma = face_height / 16
    x0, y0, x1, y1 = box
    margin = int(3 * sigma) + 1
    h, w = pixels.shape[:2]
    a, b, c, d = max(x0 - margin, 0), max(y0 - margin, 0), min(x1 + margin, w), min(y1 + margin, h)
    blurred = cv2.GaussianBlur(pixels[b:d, a:c], (0, 0), sigma)
    return blurred[y0 - b : y1 - b, x0 - a : x1 - a]


def pixelate_box(pixels: np.ndarray, box: tuple[int, int, int, int], face_height: float, cells: int = 16) -> np.ndarray:
    x0, y0, x1, y1 = box
    crop = pixels[y0:y1, x0:x1]
    small = cv2.resize(crop, (min(cells, x1 - x0), min(cells, y1 - y0)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)


METHODS = {
    "none (original face)": lambda pixels, regions, heights, rng: pixels,
    "solid fill (baseline)": tool(Method.SOLID),
    f"mosaic {GRID}x{GRID}+noise (default)": tool(Method.MOSAIC),
    f"mosaic {GRID}x{GRID}+noise, rectangle": tool(Method.MOSAIC, Shape.RECTANGLE),
    "gaussian blur s=h/16 (weak)": masked_filter(gaussian_box),
    "16x16 pixelation (weak)": masked_filter(pixelate_box),
}


# --- the attacker's view ------------------------------------------------------------------------


def as_received(pixels: np.ndarray) -> np.ndarray:
    """The pixels after the tool's JPEG encoding and a decode, as they would be posted."""
    data = encode_image(pixels, None, OUTPUT_FORMATS["JPEG"])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def another_photo(pixels: np.ndarray, box: list[float]) -> tuple[np.ndarray, list[float]]:
    """The photo mirrored, rescaled to 60 %, re-lit (darker, warmer, less contrast) and recompressed."""
    x, y, w, h = box
    mirrored = pixels[:, ::-1]
    x = pixels.shape[1] - x - w
    scale = 0.6
    size = (round(pixels.shape[1] * scale), round(pixels.shape[0] * scale))
    small = cv2.resize(np.ascontiguousarray(mirrored), size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    relit = 255 * (0.8 * small ** 1.3 + 0.05) * np.array([1.06, 1.0, 0.88], np.float32)
    relit = np.clip(relit, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(relit).save(buffer, "JPEG", quality=50)
    return np.asarray(Image.open(buffer).convert("RGB")), [x * scale, y * scale, w * scale, h * scale]


def embed(face_recognition, pixels: np.ndarray, box: list[float]) -> np.ndarray:
    x, y, w, h = box
    location = (int(round(y)), int(round(x + w)), int(round(y + h)), int(round(x)))  # top, right, bottom, left
    return np.asarray(face_recognition.face_encodings(np.ascontiguousarray(pixels), [location])[0])


# --- scores -------------------------------------------------------------------------------------


def rank1(distances: np.ndarray) -> float:
    return float(np.mean(distances.argmin(axis=1) == np.arange(len(distances))))


def auc(distances: np.ndarray) -> float:
    """P(the right person is nearer than a wrong one), ties counted half (Mann-Whitney)."""
    n = len(distances)
    genuine = np.diag(distances)[:, None]
    impostor = distances[~np.eye(n, dtype=bool)].reshape(n, n - 1)
    return float(np.mean((genuine < impostor) + 0.5 * (genuine == impostor)))


def bootstrap_auc(distances: np.ndarray, rng: np.random.Generator, rounds: int = 1000) -> tuple[float, float]:
    """95 % interval of the AUC, resampling people."""
    n = len(distances)
    values = []
    for _ in range(rounds):
        pick = rng.choice(n, n)
        sub = distances[np.ix_(pick, pick)]
        same = pick[:, None] == pick[None, :]
        genuine = np.diag(sub)[:, None]
        impostor = np.where(same, np.nan, sub)
        wins = (genuine < impostor) + 0.5 * (genuine == impostor)
        values.append(np.nanmean(np.where(same, np.nan, wins)))
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def evaluate(dataset: Path, min_height: float, seed: int) -> dict:
    import face_recognition

    entries = json.loads((dataset / "faces.json").read_text())["images"]
    rng = np.random.default_rng(seed)
    references = {"same photo": [], "another photo": []}
    probes = {name: [] for name in METHODS}
    started = time.perf_counter()
    photos = 0
    for entry in entries:
        targets = [f for f in entry["faces"] if not f.get("invalid") and f["box"][3] >= min_height]
        if not targets:
            continue
        photos += 1
        pixels = np.asarray(Image.open(dataset / entry["image"]).convert("RGB"))
        faces = [f for f in entry["faces"] if not f.get("invalid")]
        regions = [pad_detection(Detection(x, y, x + w, y + h, 1.0), DEFAULT_PADDING) for x, y, w, h in (f["box"] for f in faces)]
        heights = [f["box"][3] for f in faces]
        for face in targets:
            references["same photo"].append(embed(face_recognition, pixels, face["box"]))
            other, box = another_photo(pixels, face["box"])
            references["another photo"].append(embed(face_recognition, other, box))
        for name, method in METHODS.items():
            anonymised = as_received(method(pixels, regions, heights, rng))
            probes[name].extend(embed(face_recognition, anonymised, face["box"]) for face in targets)
    results = {}
    for name, vectors in probes.items():
        results[name] = {}
        for kind, gallery in references.items():
            distances = np.linalg.norm(np.stack(vectors)[:, None, :] - np.stack(gallery)[None, :, :], axis=2)
            low, high = bootstrap_auc(distances, np.random.default_rng(seed))
            results[name][kind] = {"rank1": rank1(distances), "auc": auc(distances), "auc_95": [low, high]}
    return {
        "faces": len(references["same photo"]),
        "photos": photos,
        "min_height": min_height,
        "seconds": time.perf_counter() - started,
        "results": results,
    }


def print_table(result: dict) -> None:
    faces = result["faces"]
    print(f"faces: {faces} (>= {result['min_height']:.0f} px tall) in {result['photos']} photos; "
          f"chance rank-1 = {100 / faces:.1f} %; {result['seconds']:.0f} s")
    print(f"{'method':<30} {'same photo: rank-1':>19} {'AUC [95 % CI]':>20}   {'another photo: rank-1':>22} {'AUC [95 % CI]':>20}")
    for name, row in result["results"].items():
        cells = []
        for kind in ("same photo", "another photo"):
            r = row[kind]
            cells.append(f"{100 * r['rank1']:>18.1f}% {r['auc']:>7.3f} [{r['auc_95'][0]:.2f}-{r['auc_95'][1]:.2f}]")
        print(f"{name:<30} {cells[0]}   {cells[1]:>43}")
    default = result["results"][f"mosaic {GRID}x{GRID}+noise (default)"]
    solid = result["results"]["solid fill (baseline)"]
    for kind in ("same photo", "another photo"):
        value, (low, _) = default[kind]["auc"], default[kind]["auc_95"]
        verdict = f"<= {SAFE_AUC}: safe" if value <= SAFE_AUC else f"> {SAFE_AUC}: LEAKS IDENTITY"
        versus = "overlaps" if low <= solid[kind]["auc"] else "lies above"
        print(f"default, {kind}: AUC {value:.3f} {verdict}; its 95 % interval {versus} "
              f"the solid fill's AUC {solid[kind]['auc']:.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--min-height", type=float, default=60)
    parser.add_argument("--seed", type=int, default=0, help="seeds the anonymisers' noise and the bootstrap")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    if not (args.dataset / "faces.json").is_file():
        print(f"skipped: no dataset at {args.dataset} (expected images/ and faces.json)")
        return 0
    try:
        import face_recognition  # noqa: F401
    except ImportError:
        print("skipped: dlib's face embedding is not installed "
              "(pip install dlib-bin face_recognition_models && pip install --no-deps face_recognition)")
        return 0
    result = evaluate(args.dataset, args.min_height, args.seed)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
