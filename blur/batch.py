"""Batch: turn files and folders into jobs, run them on worker processes, report every outcome.

Each job either writes a complete anonymised copy or nothing; one failing photo never stops the
others. The library yields outcomes and never prints: the CLI decides how to show them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from enum import Enum
from multiprocessing import get_context
from pathlib import Path
from typing import Iterable, Iterator

from .decode import IMAGE_EXTENSIONS
from .detect import Detector
from .encode import output_format_for, write_atomically
from .errors import BlurError, OutputExists
from .pipeline import Settings, anonymise_file

OUTPUT_TAG = ".blurred"
"""Inserted before the extension of every output: photo.jpg -> photo.blurred.jpg."""

_FORMAT_BY_EXTENSION = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".mpo": "JPEG", ".png": "PNG", ".webp": "WEBP",
    ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP", ".gif": "GIF", ".heic": "HEIF", ".heif": "HEIF",
    ".hif": "HEIF",
}


class Status(Enum):
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class Job:
    source: Path
    destination: Path
    problem: str | None = None
    """Set when planning already knows this job cannot run (missing file, clashing output)."""


@dataclass
class Outcome:
    """What happened to one input file."""

    source: Path
    destination: Path | None
    status: Status
    faces: list[dict] = field(default_factory=list)
    method: str = ""
    error: str | None = None
    seconds: float = 0.0

    def record(self) -> dict:
        return {
            "input": os.fsdecode(self.source),
            "output": os.fsdecode(self.destination) if self.destination else None,
            "status": self.status.value,
            "faces": self.faces,
            "method": self.method,
            "error": self.error,
            "seconds": round(self.seconds, 3),
        }


def plan_jobs(
    paths: Iterable[str | Path],
    output_dir: str | Path | None = None,
    *,
    random_names: bool = False,
) -> list[Job]:
    """One job per photo: files as given, folders searched recursively for photo extensions.

    Outputs go beside each input as <stem>.blurred.<ext>, or under `output_dir` mirroring each
    folder's layout. With `random_names`, outputs get random names (flat in `output_dir` if given),
    so neither file nor folder names travel with the photo.
    """
    output_dir = Path(output_dir) if output_dir is not None else None
    jobs: list[Job] = []
    for given in map(Path, paths):
        if given.is_dir():
            for photo in _photos_in(given, output_dir):
                jobs.append(Job(photo, _destination(photo, given, output_dir, random_names)))
        elif given.exists() or given.is_symlink():
            jobs.append(Job(given, _destination(given, None, output_dir, random_names)))
        else:
            jobs.append(Job(given, given, problem="no such file or folder"))
    return _mark_clashes(jobs)


def _photos_in(folder: Path, output_dir: Path | None) -> Iterator[Path]:
    skip = output_dir.resolve() if output_dir is not None and output_dir.exists() else None
    for root, dirs, files in os.walk(folder):
        if skip is not None and Path(root).resolve() == skip:
            dirs[:] = []
            continue
        dirs.sort()
        for name in sorted(files):
            path = Path(root, name)
            if path.suffix.lower() in IMAGE_EXTENSIONS and not _is_our_output(path):
                yield path


def _is_our_output(path: Path) -> bool:
    return path.stem.endswith(OUTPUT_TAG) or path.name.startswith(".blur-")


def _destination(source: Path, root: Path | None, output_dir: Path | None, random_names: bool) -> Path:
    extension = expected_extension(source)
    if random_names:
        folder = output_dir if output_dir is not None else source.parent
        return folder / (secrets.token_hex(8) + extension)
    name = source.stem + OUTPUT_TAG + extension
    if output_dir is None:
        return source.parent / name
    relative = source.parent.relative_to(root) if root is not None else Path()
    return output_dir / relative / name


def expected_extension(source: Path) -> str:
    """The extension the output will most likely have (corrected after decoding if wrong)."""
    input_format = _FORMAT_BY_EXTENSION.get(source.suffix.lower(), "JPEG")
    return output_format_for(input_format).extensions[0]


def _mark_clashes(jobs: list[Job]) -> list[Job]:
    """Fail jobs whose output would be another job's input or output, rather than overwrite it."""
    sources = {os.path.abspath(job.source) for job in jobs}
    seen: set[str] = set()
    checked = []
    for job in jobs:
        target = os.path.abspath(job.destination)
        if job.problem is None and target in sources:
            job = Job(job.source, job.destination, "its output name is another input's name; nothing was written")
        elif job.problem is None and target in seen:
            job = Job(job.source, job.destination, "another input writes the same output name; nothing was written")
        seen.add(target)
        checked.append(job)
    return checked


def run_job(job: Job, settings: Settings, *, overwrite: bool = False, detector: Detector | None = None) -> Outcome:
    """Anonymise one photo; every failure becomes a FAILED outcome with a message (fail closed)."""
    started = time.perf_counter()
    method = settings.method.value

    def outcome(status: Status, error: str | None = None, destination: Path | None = None, faces=()) -> Outcome:
        return Outcome(job.source, destination, status, list(faces), method, error, time.perf_counter() - started)

    if job.problem:
        return outcome(Status.FAILED, job.problem)
    if not overwrite and os.path.lexists(job.destination):
        return outcome(Status.SKIPPED, None, job.destination)
    try:
        result = anonymise_file(job.source, job.destination, settings, overwrite=overwrite, detector=detector)
    except OutputExists as exc:
        return outcome(Status.SKIPPED, None, exc.path)
    except BlurError as exc:
        return outcome(Status.FAILED, str(exc))
    except MemoryError:
        return outcome(Status.FAILED, "ran out of memory; lower --workers or --max-megapixels")
    except Exception as exc:  # fail closed: an unexpected error still means no output for this file
        return outcome(Status.FAILED, f"unexpected error ({type(exc).__name__}: {exc})")
    faces = [
        {"box": [r.x0, r.y0, r.x1, r.y1], "score": round(r.score, 4), "source": r.source}
        for r in result.regions
    ]
    return outcome(Status.DONE, None, result.output, faces)


def run_batch(
    jobs: list[Job],
    settings: Settings = Settings(),
    *,
    workers: int | None = None,
    overwrite: bool = False,
) -> Iterator[Outcome]:
    """Outcomes of all jobs, in completion order, using `workers` processes (default: all cores).

    Each worker builds the detector once. On KeyboardInterrupt, queued jobs are cancelled and
    running ones finish their (atomic) write before the interrupt propagates.
    """
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    if workers == 1:
        detector = settings.load_detector() if jobs else None
        for job in jobs:
            yield run_job(job, settings, overwrite=overwrite, detector=detector)
        return
    context = get_context("spawn")
    executor = ProcessPoolExecutor(workers, context, initializer=_start_worker, initargs=(settings, workers))
    try:
        running: dict[Future, Job] = {
            executor.submit(_worker_job, job, overwrite): job for job in jobs
        }
        while running:
            done, _ = wait_futures(running, return_when=FIRST_COMPLETED)
            for future in done:
                job = running.pop(future)
                yield _outcome_of(future, job, settings)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _outcome_of(future: Future, job: Job, settings: Settings) -> Outcome:
    try:
        return future.result()
    except Exception as exc:  # the worker process died (killed, out of memory): nothing was written
        return Outcome(job.source, None, Status.FAILED, [], settings.method.value,
                       f"the worker processing this photo stopped ({type(exc).__name__}); nothing was written")


_worker_settings: Settings | None = None
_worker_detector: Detector | None = None


def _start_worker(settings: Settings, workers: int) -> None:
    import signal

    import cv2

    global _worker_settings, _worker_detector
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C; a running job completes
    cv2.setNumThreads(max(1, (os.cpu_count() or 1) // workers))
    _worker_settings = settings
    _worker_detector = settings.load_detector()


def _worker_job(job: Job, overwrite: bool) -> Outcome:
    assert _worker_settings is not None
    return run_job(job, _worker_settings, overwrite=overwrite, detector=_worker_detector)


def summarise(outcomes: Iterable[Outcome]) -> dict[str, int]:
    counts = {status.value: 0 for status in Status}
    faces = 0
    for outcome in outcomes:
        counts[outcome.status.value] += 1
        faces += len(outcome.faces)
    counts["faces"] = faces
    return counts


def write_report(outcomes: list[Outcome], path: str | Path, settings: Settings) -> None:
    """Write a JSON report (or CSV if `path` ends in .csv) of every outcome."""
    path = Path(path)
    records = [outcome.record() for outcome in outcomes]
    if path.suffix.lower() == ".csv":
        text = _csv_report(records)
    else:
        text = json.dumps(
            {
                "settings": {
                    "method": settings.method.value,
                    "shape": settings.shape.value,
                    "padding": settings.padding,
                    "detector": settings.detector,
                    "detector_options": settings.detector_options,
                },
                "summary": summarise(outcomes),
                "files": records,
            },
            indent=2,
            ensure_ascii=False,
        )
    write_atomically(text.encode("utf-8", "surrogateescape"), path, overwrite=True)


def _csv_report(records: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["input", "output", "status", "faces", "boxes", "method", "error", "seconds"])
    for r in records:
        boxes = json.dumps([face["box"] for face in r["faces"]])
        writer.writerow([r["input"], r["output"] or "", r["status"], len(r["faces"]), boxes, r["method"],
                         r["error"] or "", r["seconds"]])
    return buffer.getvalue()
