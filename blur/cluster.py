"""Cluster: the same batch as `blur.batch.run_batch`, run on a Dask distributed cluster.

Paths travel, not bytes: every worker reads the photo and writes its copy on storage it shares
with the client, mounted at the same path everywhere (the client sends absolute paths). Each
worker thread builds the detector once and reuses it. A worker lost mid-batch has its photos
rescheduled by Dask on the others; writes are atomic, so a lost worker leaves no half-written
copy, and a retried photo whose copy the lost worker had already written is reported once, as done.

Videos come after the photos, split by time (blur.video.split): the client scans each video and cuts
it into ranges, the workers anonymise the ranges into hidden segment files beside the output, and the
client joins them into the one MP4 a local run writes (same pictures, same order) and removes them.
A lost worker's range is done again elsewhere; a range that fails fails the video, and nothing of
it is left.

Needs the optional extra: pip install 'soft-focus[cluster]' (on the client and on every worker).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

from .batch import existing_outputs, run_job, run_job_again
from .detect import Detector
from .errors import BlurError, OutputExists
from .jobs import Job
from .kinds import Kind
from .pipeline import Settings
from .report import Outcome, Status, describe_processing, people_seen
from .stop import StopRequest
from .video.pipeline import VideoSettings, describe_video_processing
from .video.split import SEGMENT_SECONDS, RangeResult, TimeRange, anonymise_time_range, join_segments, plan_time_ranges

CONNECT_TIMEOUT = 10.0
"""Seconds to wait for the scheduler to answer."""

WORKER_TIMEOUT = 60.0
"""Seconds to wait for at least one worker to join the scheduler."""


class ClusterUnavailable(BlurError):
    """The cluster cannot be used: Dask is not installed, or the scheduler cannot be reached."""


def run_on_cluster(
    jobs: list[Job],
    settings: Settings = Settings(),
    *,
    scheduler: str,
    overwrite: bool = False,
    in_flight: int | None = None,
    stop: StopRequest | None = None,
    video: VideoSettings | None = None,
    segment_seconds: float = SEGMENT_SECONDS,
) -> Iterator[Outcome]:
    """Outcomes of all jobs, in completion order, computed by the workers of the Dask `scheduler`.

    At most `in_flight` photos are queued on the cluster at a time (default: 4 per worker thread,
    at least 64), so an archive of millions of files does not flood the scheduler. Once `stop` is
    set, the photos no worker has started are cancelled and those running are awaited, so their
    outcomes are yielded too. On KeyboardInterrupt all are cancelled; those already running
    finish their atomic write, unreported.
    """
    distributed = _import_distributed()
    client = _connect(distributed, scheduler)
    for job in jobs:  # planning already knows their outcome: nothing to send to the cluster
        if job.problem:
            yield run_job(job, settings)
    videos = [job for job in jobs if not job.problem and job.kind is Kind.VIDEO]
    jobs = [job for job in jobs if not job.problem and job.kind is not Kind.VIDEO]
    absolute = [_absolute(job) for job in jobs]
    existing = existing_outputs(absolute)
    batch = uuid.uuid4().hex[:12]
    pending: dict[object, int] = {}
    stopping = False
    try:
        threads = sum(client.nthreads().values())
        limit = in_flight or max(64, 4 * threads)
        queue = iter(range(len(jobs)))
        finished = distributed.as_completed(loop=client.loop)

        def submit_next() -> None:
            index = next(queue, None)
            if index is None:
                return
            job = absolute[index]
            future = client.submit(
                run_job_on_worker, job, settings, overwrite, existing[index],
                key=f"blur-{batch}-{index}", pure=False,
            )
            pending[future] = index
            finished.add(future)

        for _ in range(limit):
            submit_next()
        for future in finished:
            index = pending.pop(future, None)
            if index is None:  # cancelled on stop
                continue
            yield _as_given(_outcome_of(future, absolute[index], settings), jobs[index])
            if not stopping and stop is not None and stop.is_set():
                stopping = True
                _cancel_unstarted(client, pending)
            if not stopping:
                submit_next()
        video = video or VideoSettings(settings)
        for job in videos:
            if stopping or (stop is not None and stop.is_set()):
                break
            yield _as_given(_video_on_cluster(client, distributed, _absolute(job), video, overwrite, batch,
                                              segment_seconds, stop), job)
    finally:
        if pending:
            client.cancel(list(pending))
        client.close()


def _video_on_cluster(client, distributed, job: Job, settings: VideoSettings, overwrite: bool, batch: str,
                      seconds: float, stop: StopRequest | None) -> Outcome:
    """One video, its time ranges anonymised by the workers and joined here (see the module's docstring)."""
    started = time.perf_counter()
    method = settings.photo.method.value

    def ended(status: Status, error: str | None = None, destination: Path | None = None, faces=()) -> Outcome:
        return Outcome(job.source, destination, status, None if faces is None else list(faces), method, error,
                       time.perf_counter() - started)

    if not overwrite and os.path.lexists(job.destination):
        return ended(Status.SKIPPED, None, job.destination, None)
    try:
        ranges = plan_time_ranges(job.source, settings, seconds)
    except BlurError as exc:
        return ended(Status.FAILED, str(exc))
    segments = [job.destination.with_name(f".{job.destination.name}.{batch}.{n}.segment.mp4") for n in range(len(ranges))]
    futures = [client.submit(anonymise_range_on_worker, job.source, segment, time_range, settings,
                             key=f"blur-{batch}-{job.destination.name}-{n}", pure=False)
               for n, (segment, time_range) in enumerate(zip(segments, ranges))]
    try:
        parts: list[tuple[RangeResult, dict]] = [None] * len(futures)
        for future in distributed.as_completed(futures, loop=client.loop):
            if stop is not None and stop.is_set():
                client.cancel(futures)
                return ended(Status.FAILED, "stopped before this video was done; nothing of it was written")
            try:
                parts[futures.index(future)] = future.result()
            except BlurError as exc:
                client.cancel(futures)
                return ended(Status.FAILED, str(exc))
            except Exception as exc:  # a worker kept dying on it, or lacks this tool
                client.cancel(futures)
                return ended(Status.FAILED, f"the cluster could not process this video ({type(exc).__name__}: {exc}); "
                                            "check that every worker has soft-focus installed and enough memory")
        try:
            result = join_segments(job.source, [part for part, _ in parts], job.destination, settings,
                                   overwrite=overwrite)
        except OutputExists as exc:
            return ended(Status.SKIPPED, None, exc.path, None)
        except BlurError as exc:
            return ended(Status.FAILED, str(exc))
    finally:
        for segment in segments:
            try:
                os.unlink(segment)
            except FileNotFoundError:
                pass
    done = ended(Status.DONE, None, result.output, result.faces)
    done.processing = {**parts[0][1], "video": {**describe_video_processing(settings), "parts": len(parts)}}
    done.video = {"frames": result.frames, "width": result.width, "height": result.height, "audio": result.audio,
                  "regions": result.regions, "detections": result.detected, "people": people_seen(result.faces)}
    return done


def anonymise_range_on_worker(source: Path, segment: Path, time_range: TimeRange,
                              settings: VideoSettings) -> tuple[RangeResult, dict]:
    """Run on a Dask worker: one time range of a video with this thread's detector, and how it was anonymised."""
    detector = _detector_for(settings.photo)
    return (anonymise_time_range(source, segment, time_range, settings, detector=detector),
            describe_processing(settings.photo, detector))


def _cancel_unstarted(client, pending: dict) -> None:
    """Cancel the pending photos the scheduler has not given to a worker yet."""
    started = {key for keys in client.processing().values() for key in keys}
    unstarted = [future for future in pending if future.key not in started]
    client.cancel(unstarted)
    for future in unstarted:
        del pending[future]


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise ClusterUnavailable(
            "running on a cluster needs Dask: pip install 'soft-focus[cluster]'"
        ) from None
    return distributed


def _connect(distributed, scheduler: str):
    try:
        client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterUnavailable(
            f"cannot reach the Dask scheduler at {scheduler} ({exc}); check the address "
            "(tcp://HOST:PORT) and that `dask scheduler` is running there"
        ) from None
    try:
        client.wait_for_workers(1, timeout=WORKER_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        client.close()
        raise ClusterUnavailable(
            f"no Dask worker joined the scheduler at {scheduler} within {WORKER_TIMEOUT:.0f} s "
            f"({exc}); start workers with `dask worker {scheduler}`"
        ) from None
    return client


def _absolute(job: Job) -> Job:
    """The job with absolute paths, which mean the same on every machine of the cluster."""
    return dataclasses.replace(job, source=Path(os.path.abspath(job.source)),
                               destination=Path(os.path.abspath(job.destination)))


def run_job_on_worker(job: Job, settings: Settings, overwrite: bool, existed: bool) -> Outcome:
    """Run on a Dask worker: `run_job_again` (a retried job may find a lost worker's output) with
    this thread's detector."""
    return run_job_again(job, settings, overwrite=overwrite, existed=existed, detector=_detector_for(settings))


_thread_state = threading.local()


def _detector_for(settings: Settings) -> Detector:
    """This worker thread's detector for `settings`, built on first use and then reused.

    One per thread because an OpenCV network is not safe to share between threads. The machine's
    cores are shared among the worker's threads (run one worker process per machine): inference on
    one photo already uses every core it is given.
    """
    detectors = _thread_state.__dict__.setdefault("detectors", {})
    if settings not in detectors:
        import cv2

        threads = max(1, (os.cpu_count() or 1) // _threads_of_this_worker())
        cv2.setNumThreads(threads)
        detectors[settings] = settings.open_detector(threads)
    return detectors[settings]


def _threads_of_this_worker() -> int:
    """How many threads this Dask worker runs tasks on (1 if it cannot be told)."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return 1
    state = getattr(worker, "state", worker)
    return max(1, int(getattr(state, "nthreads", 1) or 1))


def _outcome_of(future, job: Job, settings: Settings) -> Outcome:
    try:
        return future.result()
    except Exception as exc:  # the task itself failed: workers kept dying on it, or a worker lacks this tool
        return Outcome(
            job.source, None, Status.FAILED, [], settings.method.value,
            f"the cluster could not process this photo ({type(exc).__name__}: {exc}); "
            "check that every worker has soft-focus installed and enough memory",
        )


def _as_given(outcome: Outcome, job: Job) -> Outcome:
    """The outcome with paths spelled as the caller gave them (relative stays relative), as in a local run."""
    outcome.source = job.source
    if outcome.destination is not None:
        outcome.destination = job.destination.parent / outcome.destination.name
    return outcome
