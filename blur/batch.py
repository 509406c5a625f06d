"""Batch: run planned jobs (blur.jobs) on worker processes and yield every outcome (blur.report).

Each job either writes a complete anonymised copy or nothing; one failing photo never stops the
others. The library yields outcomes and never prints: the CLI decides how to show them.
"""

from __future__ import annotations

import os
import signal
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .decode import read_photo
from .detect import Detector
from .encode import remove_stale_temporaries
from .errors import BlurError, OutputExists
from .formats import PHOTO_FORMATS
from .jobs import Job
from .kinds import Kind
from .pipeline import Settings, anonymise_file, find_regions
from .report import Outcome, Status, describe_processing, face_records, people_seen
from .stop import StopRequest
from .video.pipeline import Progress, Stopped, VideoSettings, anonymise_video_file, describe_video_processing

DEFAULT_WORKERS = 1
"""Photos at a time, by default: one process, whose detector runs on every core. On the 2-core test
machine one process did 12-MP photos 1.6-1.7 times as fast as two processes of one thread each
(benchmarks/throughput.py): inference already uses every core, and two copies only compete."""


def run_job(
    job: Job,
    settings: Settings,
    *,
    overwrite: bool = False,
    detector: Detector | None = None,
    video: VideoSettings | None = None,
    progress: Callable[[Path, Progress], None] | None = None,
    stop: StopRequest | None = None,
) -> Outcome | None:
    """Anonymise one photo or video; every failure becomes a FAILED outcome with a message (fail
    closed). Videos use `video` (default: `settings` and no sound), report `progress`
    every frame and check `stop` every frame: once it is set, the video is dropped (nothing is
    written) and None is returned."""
    started = time.perf_counter()
    method = settings.method.value

    def outcome(status: Status, error: str | None = None, destination: Path | None = None, faces=()) -> Outcome:
        faces = None if faces is None else list(faces)
        return Outcome(job.source, destination, status, faces, method, error, time.perf_counter() - started)

    if job.problem:
        return outcome(Status.NOT_READ if job.not_read else Status.FAILED, job.problem)
    if not overwrite and os.path.lexists(job.destination):
        return outcome(Status.SKIPPED, None, job.destination, faces=None)
    if job.kind is Kind.VIDEO:
        return run_video_job(job, video or VideoSettings(settings), overwrite=overwrite, progress=progress, stop=stop)
    try:
        detector = detector or settings.load_detector()
        result = anonymise_file(job.source, job.destination, settings, overwrite=overwrite, detector=detector,
                                output=PHOTO_FORMATS[job.output])
    except OutputExists as exc:
        return outcome(Status.SKIPPED, None, exc.path, faces=None)
    except BlurError as exc:
        return outcome(Status.FAILED, str(exc))
    except MemoryError:
        return outcome(Status.FAILED, "ran out of memory; run fewer photos at a time or lower the pixel limit")
    except Exception as exc:  # fail closed: an unexpected error still means no output for this file
        return outcome(Status.FAILED, f"unexpected error ({type(exc).__name__}: {exc})")
    done = outcome(Status.DONE, None, result.output, face_records(result.regions))
    done.processing = describe_processing(settings, detector)
    done.camera_unlinked = result.camera_unlinked
    return done


def run_video_job(
    job: Job,
    settings: VideoSettings,
    *,
    overwrite: bool = False,
    progress: Callable[[Path, Progress], None] | None = None,
    stop: StopRequest | None = None,
) -> Outcome | None:
    """Anonymise one video (see `run_job`)."""
    started = time.perf_counter()
    method = settings.photo.method.value

    def failed(error: str) -> Outcome:
        return Outcome(job.source, None, Status.FAILED, [], method, error, time.perf_counter() - started)

    try:
        detector = settings.photo.load_detector()
        result = anonymise_video_file(
            job.source, job.destination, settings, overwrite=overwrite, detector=detector,
            progress=(lambda p: progress(job.source, p)) if progress else None,
            stop=stop,
        )
    except Stopped:
        return None
    except OutputExists as exc:
        return Outcome(job.source, exc.path, Status.SKIPPED, None, method, None, time.perf_counter() - started)
    except BlurError as exc:
        return failed(str(exc))
    except MemoryError:
        return failed("ran out of memory; lower the video limits")
    except Exception as exc:  # fail closed: an unexpected error still means no output for this file
        return failed(f"unexpected error ({type(exc).__name__}: {exc})")
    done = Outcome(job.source, result.output, Status.DONE, result.faces, method, None, time.perf_counter() - started)
    done.processing = {**describe_processing(settings.photo, detector), "video": describe_video_processing(settings)}
    done.video = {"frames": result.frames, "width": result.width, "height": result.height, "audio": result.audio,
                  "regions": result.regions, "detections": result.detected, "people": people_seen(result.faces)}
    return done


def run_batch(
    jobs: list[Job],
    settings: Settings = Settings(),
    *,
    workers: int | None = None,
    overwrite: bool = False,
    stop: StopRequest | None = None,
    video: VideoSettings | None = None,
    progress: Callable[[Path, Progress], None] | None = None,
) -> Iterator[Outcome]:
    """Outcomes of all jobs, in completion order, using `workers` processes (default DEFAULT_WORKERS).

    Each worker builds the detector once. At most `workers` jobs are in flight, so when a worker
    dies (killed, out of memory, a crash in a decoder) the jobs it may have taken down are known:
    each is run again alone, and only a job that kills its worker when alone fails. Once `stop`
    is set, no new job starts: the running ones finish their (atomic) write and their outcomes
    are yielded, so every photo written is among the outcomes. (On KeyboardInterrupt, queued jobs
    are dropped and running ones still finish their write, but their outcomes are lost: pass `stop`.)

    Videos come after the photos, one at a time in this process (the detector already uses every
    core on each frame), with `video` settings (default: from `settings`) and `progress` for each
    frame; `stop` drops the video in progress, writing nothing of it.
    """
    for job in jobs:  # planning already knows their outcome: no worker needed
        if job.problem:
            yield run_job(job, settings)
    jobs = [job for job in jobs if not job.problem]
    _remove_stale_temporaries(jobs)
    videos = [job for job in jobs if job.kind is Kind.VIDEO]
    yield from _run_photos([job for job in jobs if job.kind is not Kind.VIDEO], settings,
                           workers=workers, overwrite=overwrite, stop=stop)
    video = video or VideoSettings(settings)
    for job in videos:
        if stop is not None and stop.is_set():
            return
        outcome = run_video_job(job, video, overwrite=overwrite, progress=progress, stop=stop)
        if outcome is None:
            return
        yield outcome


def _run_photos(jobs: list[Job], settings: Settings, *, workers: int | None, overwrite: bool,
                stop: StopRequest | None) -> Iterator[Outcome]:
    if not jobs:
        return
    workers = max(1, min(workers or DEFAULT_WORKERS, len(jobs)))
    stopped = (lambda: stop.is_set()) if stop is not None else (lambda: False)
    if workers == 1:
        detector = settings.load_detector()
        for job in jobs:
            if stopped():
                return
            yield run_job(job, settings, overwrite=overwrite, detector=detector)
        return
    settings.load_detector()  # a missing model is one clear error here, not a crash in every worker
    queued = deque(jobs)
    existed = dict(zip((job.destination for job in jobs), existing_outputs(jobs)))  # before any worker writes
    suspects: deque[Job] = deque()
    running: dict[Future, tuple[Job, bool]] = {}
    executor: ProcessPoolExecutor | None = None
    try:
        while queued or suspects or running:
            if stopped():  # jobs a crashed worker may have been running still run again, alone
                queued.clear()
            if executor is None:
                executor = ProcessPoolExecutor(
                    workers, get_context("spawn"), initializer=_start_worker, initargs=(settings, workers)
                )
            if suspects and not running:
                job = suspects.popleft()
                running[_submit(executor, job, overwrite, existed[job.destination])] = (job, True)
            while queued and not suspects and len(running) < workers:
                job = queued.popleft()
                running[_submit(executor, job, overwrite, existed[job.destination])] = (job, False)
            done, _ = wait_futures(running, return_when=FIRST_COMPLETED)
            crashed = []
            for future in done:
                job, alone = running.pop(future)
                if isinstance(future.exception(), BrokenProcessPool):
                    crashed.append(job)
                    if not alone:
                        suspects.append(job)
                        continue
                yield _outcome_of(future, job, settings)
            if crashed:
                executor.shutdown(wait=True)
                executor = None
                _remove_stale_temporaries(crashed)
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


def _submit(executor: ProcessPoolExecutor, job: Job, overwrite: bool, existed: bool) -> Future:
    # Worker processes are started inside submit. With Ctrl-C blocked (not ignored: a blocked
    # signal waits, it is not lost) they start with it blocked too, so an early Ctrl-C cannot
    # kill half-started workers with tracebacks; each then ignores it in _start_worker.
    with _sigint_blocked():
        return executor.submit(_worker_job, job, overwrite, existed)


@contextmanager
def _sigint_blocked():
    if not hasattr(signal, "pthread_sigmask"):  # Windows
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _remove_stale_temporaries(jobs: Iterable[Job]) -> None:
    for folder in {job.destination.parent for job in jobs if job.problem is None}:
        remove_stale_temporaries(folder)


def _outcome_of(future: Future, job: Job, settings: Settings) -> Outcome:
    try:
        return future.result()
    except BrokenProcessPool:
        error = "the worker processing this photo crashed, also when run alone (a decoder fault or out of memory); nothing was written"
    except Exception as exc:
        error = f"the worker processing this photo stopped ({type(exc).__name__}); nothing was written"
    return Outcome(job.source, None, Status.FAILED, [], settings.method.value, error)


def existing_outputs(jobs: list[Job]) -> list[bool]:
    """For each job, whether its output (its planned name: the job decided its format) exists before
    the batch starts.

    Only these are reported as skipped; an output that appears later was written by an earlier
    attempt at the same job on a worker that was then lost. One directory listing per output folder.
    """
    listings: dict[Path, frozenset[str]] = {}
    for job in jobs:
        folder = job.destination.parent
        if folder not in listings:
            try:
                listings[folder] = frozenset(os.listdir(folder))
            except OSError:
                listings[folder] = frozenset()
    return [job.destination.name in listings[job.destination.parent] for job in jobs]


def run_job_again(job: Job, settings: Settings, *, overwrite: bool, existed: bool, detector: Detector) -> Outcome:
    """`run_job` for a job that may have been run before in this batch by a worker that was lost.

    `existed` says whether the job's output was there before the batch. If not, an output found in
    place was written by the lost worker's attempt at this very job: it is complete (writes are
    atomic), so the job is done; its faces are found again (detection is deterministic) for the report,
    in the original's pixels (that attempt's random crop, blur.fingerprint, is not known and not needed).
    """
    outcome = run_job(job, settings, overwrite=overwrite, detector=detector)
    if outcome.status is Status.SKIPPED and not existed:
        return _done_by_earlier_attempt(job, outcome, settings, detector)
    return outcome


def _done_by_earlier_attempt(job: Job, skipped: Outcome, settings: Settings, detector: Detector) -> Outcome:
    try:
        photo = read_photo(job.source, max_pixels=settings.max_pixels)
        regions = find_regions(photo.pixels, settings, detector)
    except BlurError as exc:
        return Outcome(job.source, None, Status.FAILED, [], skipped.method, str(exc), skipped.seconds)
    return Outcome(job.source, skipped.destination, Status.DONE, face_records(regions), skipped.method, None,
                   skipped.seconds, describe_processing(settings, detector), camera_unlinked=not settings.keep_geometry)


_worker_settings: Settings | None = None
_worker_detector: Detector | None = None


def _start_worker(settings: Settings, workers: int) -> None:
    import cv2

    global _worker_settings, _worker_detector
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C; a running job completes
    threads = max(1, (os.cpu_count() or 1) // workers)
    cv2.setNumThreads(threads)
    _worker_settings = settings
    _worker_detector = settings.open_detector(threads)


def _worker_job(job: Job, overwrite: bool, existed: bool) -> Outcome:
    assert _worker_settings is not None
    return run_job_again(job, _worker_settings, overwrite=overwrite, existed=existed, detector=_worker_detector)
