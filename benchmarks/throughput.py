"""Throughput: photos per second on 12-megapixel photos, locally and on a loopback Dask cluster.

    .venv/bin/pip install -e '.[cluster]'
    .venv/bin/python benchmarks/throughput.py [--photos 6] [--repeat 2] [--folder DIR]

Runs the same batch (generated 4032×3024 JPEGs: the sample crowd scene upscaled, with the sample
portraits pasted in at several sizes; or the photos in --folder) with the local runner on 1 and 2
worker processes (each detector gets its share of the cores), and on a Dask scheduler with one
worker process of one thread on 127.0.0.1 (its detector uses every core).
Times are wall-clock for the whole batch as a user sees it: worker start-up and detector loading
included for the local runner; the cluster is a long-running service, so its start-up is not.
One untimed photo warms the caches first, and the order of the runs rotates from round to round.
With 1 local worker the photo is processed in the calling process, where the detector uses every core.
Scaling efficiency = (photos/s with N workers) / (N × photos/s with 1 local worker).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from blur.batch import run_batch  # noqa: E402
from blur.jobs import plan_jobs  # noqa: E402
from blur.report import Status  # noqa: E402
from blur.pipeline import Settings  # noqa: E402

SIZE = (4032, 3024)  # 12.2 megapixels, a phone camera's 4:3 photo


def make_photos(folder: Path, count: int) -> list[Path]:
    """`count` 12-MP scenes: the crowd sample upscaled, with the portraits pasted at several sizes."""
    folder.mkdir(parents=True, exist_ok=True)
    with Image.open(ROOT / "samples" / "crowd.png") as crowd:
        background = crowd.convert("RGB").resize(SIZE, Image.Resampling.BICUBIC)
    portraits = [Image.open(ROOT / "samples" / name).convert("RGB") for name in ("astronaut.jpg", "hopper-sideways.jpg")]
    paths = []
    for number in range(count):
        scene = background.copy() if number % 2 == 0 else background.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        for index, side in enumerate((900, 500, 260)):
            portrait = portraits[(number + index) % 2].copy()
            portrait.thumbnail((side, side))
            x = (400 + 1100 * index + 97 * number) % (SIZE[0] - side)
            y = (300 + 700 * index + 53 * number) % (SIZE[1] - side)
            scene.paste(portrait, (x, y))
        path = folder / f"photo-{number:03}.jpg"
        scene.save(path, quality=90)
        paths.append(path)
    return paths


def timed(outcomes) -> tuple[float, int, int]:
    """Seconds to exhaust `outcomes`, photos done, faces destroyed; any failure aborts the benchmark."""
    started = time.perf_counter()
    done = faces = 0
    for outcome in outcomes:
        if outcome.status is not Status.DONE:
            raise SystemExit(f"benchmark: {outcome.source} was {outcome.status.value}: {outcome.error}")
        done += 1
        faces += len(outcome.faces)
    return time.perf_counter() - started, done, faces


def measure(label: str, workers: int, folder: Path, scratch: Path, run) -> dict:
    out = scratch / f"out-{label.replace(' ', '-')}-{workers}"
    shutil.rmtree(out, ignore_errors=True)
    load = os.getloadavg()[0]
    seconds, done, faces = timed(run(plan_jobs([folder], out)))
    shutil.rmtree(out, ignore_errors=True)
    return {"label": label, "workers": workers, "photos": done, "faces": faces, "seconds": seconds,
            "rate": done / seconds, "load": load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=6, help="photos to generate (default 6)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of all runs (default 2)")
    parser.add_argument("--folder", type=Path, help="use the photos in this folder instead of generating them")
    parser.add_argument("--no-cluster", action="store_true", help="local runs only")
    args = parser.parse_args()
    settings = Settings()

    with tempfile.TemporaryDirectory(prefix="blur-throughput-") as temporary:
        scratch = Path(temporary)
        folder = args.folder or scratch / "photos"
        if args.folder is None:
            make_photos(folder, args.photos)
        sample = next(iter(sorted(p for p in folder.iterdir() if p.is_file())))
        with Image.open(sample) as image:
            width, height = image.size
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}; "
              f"photos: {folder} ({width}×{height} = {width * height / 1e6:.1f} MP)", flush=True)

        cluster = None
        if not args.no_cluster:
            from cluster_helpers import local_dask_cluster

            from blur.cluster import run_on_cluster

            cluster = local_dask_cluster(scratch / "dask", workers=1, threads=1)
            address = cluster.__enter__().address
        try:
            warm_up = scratch / "warm-up"
            warm_up.mkdir()
            shutil.copy(sample, warm_up)
            measure("warm-up", 1, warm_up, scratch, lambda jobs: run_batch(jobs, settings, workers=1))
            results = []
            for round_number in range(1, args.repeat + 1):
                runs = [
                    ("local", 1, lambda jobs: run_batch(jobs, settings, workers=1)),
                    ("local", 2, lambda jobs: run_batch(jobs, settings, workers=2)),
                ]
                if cluster is not None:
                    runs.append(("dask loopback", 1, lambda jobs: run_on_cluster(jobs, settings, scheduler=address)))
                shift = (round_number - 1) % len(runs)  # whatever runs first tends to run slow: rotate
                for label, workers, run in runs[shift:] + runs[:shift]:
                    result = measure(label, workers, folder, scratch, run)
                    result["round"] = round_number
                    results.append(result)
                    print(f"  round {round_number}: {label} × {workers}: {result['photos']} photos, "
                          f"{result['faces']} faces, {result['seconds']:.1f} s (load avg {result['load']:.1f})",
                          flush=True)
        finally:
            if cluster is not None:
                cluster.__exit__(None, None, None)

    print()
    print("| round | runner | workers | photos | seconds | photos/s | scaling efficiency | load avg at start |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for round_number in range(1, args.repeat + 1):
        rows = [r for r in results if r["round"] == round_number]
        base = next(r["rate"] for r in rows if r["label"] == "local" and r["workers"] == 1)
        for r in rows:
            efficiency = r["rate"] / (r["workers"] * base)
            print(f"| {round_number} | {r['label']} | {r['workers']} | {r['photos']} | {r['seconds']:.1f} | "
                  f"{r['rate']:.3f} | {efficiency:.0%} | {r['load']:.1f} |")


if __name__ == "__main__":
    main()
