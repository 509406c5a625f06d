"""Batch: turn files and folders into jobs, run them on worker processes, report every outcome.

Each job either writes a complete anonymised copy or nothing; one failing photo never stops the
others. The library yields outcomes and never prints: the CLI decides how to show them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Iterable, Iterator, Protocol

from . import __version__
from .decode import sniff_format
from .detect import Detector
from .encode import remove_stale_temporaries, write_atomically
from .formats import VIDEO_OUTPUT, extension_of, photo_output
from .errors import BlurError, OutputExists
from .kinds import NOT_READ_KINDS, READ_KINDS, Kind, kind_of, kind_of_file
from .names import is_random_output, random_stem
from .pipeline import Settings, anonymise_file
from .video.pipeline import Progress, Stopped, VideoSettings, anonymise_video_file, describe_video_processing

DEFAULT_WORKERS = 1
"""Photos at a time, by default: one process, whose detector runs on every core. On the 2-core test
machine one process did 12-MP photos 1.6-1.7 times as fast as two processes of one thread each
(benchmarks/throughput.py): inference already uses every core, and two copies only compete."""
OUTPUT_TAG = ".blurred"
"""Inserted before the extension of every output: photo.jpg -> photo.blurred.jpg."""

class Status(Enum):
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    NOT_READ = "not read"
    """A file in a folder that is not a photo this tool reads (camera raw, video, anything else)."""


@dataclass(frozen=True)
class Job:
    source: Path
    destination: Path
    problem: str | None = None
    """Set when planning already knows this job cannot run (missing file, clashing output)."""
    not_read: Kind | None = None
    """Set for a file found in a folder that is not a photo this tool reads; `problem` says why."""


@dataclass
class Outcome:
    """What happened to one input file."""

    source: Path
    destination: Path | None
    status: Status
    faces: list[dict] | None = field(default_factory=list)
    """The regions destroyed; None when not known (a photo done by an earlier run is not looked at again)."""
    method: str = ""
    error: str | None = None
    seconds: float = 0.0
    processing: dict | None = None
    """How the photo was anonymised (`describe_processing`), for the photos anonymised in this run."""
    camera_unlinked: bool | None = None
    """Whether the output was unlinked from its camera's sensor pattern; None when not known."""
    video: dict | None = None
    """For a video anonymised: frames, size, audio kept, regions destroyed over all frames."""

    def record(self) -> dict:
        record = {
            "input": os.fsdecode(self.source),
            "output": os.fsdecode(self.destination) if self.destination else None,
            "status": self.status.value,
            "faces": self.faces,
            "method": self.method,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "processing": self.processing,
            "camera_unlinked": self.camera_unlinked,
        }
        if self.video is not None:
            record["video"] = self.video
        return record

    @classmethod
    def from_record(cls, record: dict) -> "Outcome":
        """The outcome a `record()` describes (as saved in a report or state file), every field by name."""
        output = record["output"]
        return cls(Path(record["input"]), Path(output) if output else None, Status(record["status"]),
                   faces=record["faces"], method=record["method"], error=record["error"], seconds=record["seconds"],
                   processing=record.get("processing"), camera_unlinked=record.get("camera_unlinked"),
                   video=record.get("video"))


def describe_processing(settings: Settings, detector: Detector) -> dict:
    """Everything that decided how a photo was anonymised: the tool's version, every setting, and
    the detector's own description (model file and hash, threshold, views)."""
    describe = getattr(detector, "describe", None)
    return {
        "tool": f"soft-focus {__version__}",
        "settings": settings_record(settings),
        "detector": describe() if describe else {"name": detector.name},
    }


def settings_record(settings: Settings) -> dict:
    return {
        "method": settings.method.value,
        "shape": settings.shape.value,
        "padding": settings.padding,
        "detector": settings.detector,
        "detector_options": settings.detector_options,
        "max_pixels": settings.max_pixels,
        "quality": settings.quality,
        "keep_geometry": settings.keep_geometry,
    }


def plan_jobs(
    paths: Iterable[str | Path],
    output_dir: str | Path | None = None,
    *,
    random_names: bool = False,
    not_read: bool = False,
) -> list[Job]:
    """One job per photo: files as given, folders searched recursively for photo extensions.

    Outputs go beside each input as <stem>.blurred.<ext>, or under `output_dir` mirroring each
    folder's layout. With `random_names`, outputs get random names (flat in `output_dir` if given),
    so neither file nor folder names travel with the photo; the same photo gets the same name on
    every run (see `blur.names`). The tool's own outputs are never inputs. A file given by name
    that is no photo (a camera raw file, a video) fails with the reason. With `not_read`, each
    other file found in the folders also gets a job, which only reports it as not read.
    """
    output_dir = Path(output_dir) if output_dir is not None else None
    jobs: list[Job] = []
    for given in map(Path, paths):
        if given.is_dir():
            for path, problem in _files_in(given, output_dir):
                kind = None if problem else kind_of_file(path)
                if problem:
                    jobs.append(Job(path, path, problem))
                elif kind in READ_KINDS:
                    jobs.append(Job(path, _destination(path, given, output_dir, random_names)))
                elif not_read:
                    jobs.append(Job(path, path, NOT_READ_KINDS[kind], not_read=kind))
        elif given.exists() or given.is_symlink():
            kind = kind_of_file(given)
            if kind in READ_KINDS or not given.is_file():
                jobs.append(Job(given, _destination(given, None, output_dir, random_names)))
            else:  # claims no output name, so it cannot block a photo of the same name
                jobs.append(Job(given, given, NOT_READ_KINDS[kind]))
        else:
            jobs.append(Job(given, given, problem="no such file or folder"))
    return _mark_clashes(jobs)


def _files_in(folder: Path, output_dir: Path | None) -> Iterator[tuple[Path, str | None]]:
    """(path, None) for each file under `folder` that the tool did not write itself; (path,
    problem) for each folder that cannot be searched, so no photo is left out silently. Links to
    folders are reported, not followed: they can loop, and outputs beside the photos would land
    outside the folder given. So are links to files outside it (see `leads_outside`)."""
    skip = output_dir.resolve() if output_dir is not None and output_dir.exists() else None
    unreadable: list[OSError] = []
    for root, dirs, files in os.walk(folder, onerror=unreadable.append):
        yield from ((Path(error.filename), _folder_problem(error)) for error in unreadable)
        unreadable.clear()
        if skip is not None and Path(root).resolve() == skip:
            dirs[:] = []
            continue
        dirs.sort()
        for name in [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            dirs.remove(name)
            yield Path(root, name), "is a link to a folder, which is not followed; give that folder itself to include it"
        for name in sorted(files):
            path = Path(root, name)
            if is_our_output(path):
                continue
            if leads_outside(path, folder):
                yield path, ("is a link to a file outside the folder given, which is not followed; "
                             "give that file itself to include it")
            else:
                yield path, None
    yield from ((Path(error.filename), _folder_problem(error)) for error in unreadable)


def leads_outside(path: Path, folder: Path) -> bool:
    """Whether `path` is a link whose target, followed to the end, lies outside `folder`.

    A folder from someone else (an archive, a shared drive, a hot folder others drop files into) may
    link to a photo of yours elsewhere: followed, its anonymised copy would land among the copies
    you post. Links inside the folder bring in nothing that is not there already."""
    if not os.path.islink(path):
        return False
    inside = os.path.realpath(folder)
    try:
        return os.path.commonpath([os.path.realpath(path), inside]) != inside
    except ValueError:  # another drive (Windows)
        return True


def own_copies_in(paths: Iterable[str | Path]) -> int:
    """How many files in the folders among `paths` are copies this tool made (never taken as inputs)."""
    return sum(is_our_output(Path(root, name)) and not name.startswith(".blur-")
               for given in paths if os.path.isdir(given) for root, _, names in os.walk(given) for name in names)


def _folder_problem(error: OSError) -> str:
    return f"cannot search this folder ({error.strerror or error}); its photos were not anonymised"


def is_our_output(path: Path) -> bool:
    """Whether `path` names a file this tool writes: a copy (named or random), a temporary, its state."""
    if path.name.startswith(".blur-"):
        return True
    return kind_of(path) in READ_KINDS and (path.stem.endswith(OUTPUT_TAG) or is_random_output(path))


def _destination(source: Path, root: Path | None, output_dir: Path | None, random_names: bool) -> Path:
    extension = expected_extension(source)
    if random_names:
        folder = output_dir if output_dir is not None else source.parent
        return folder / (random_stem(source) + extension)
    name = source.stem + OUTPUT_TAG + extension
    if output_dir is None:
        return source.parent / name
    relative = source.parent.relative_to(root) if root is not None else Path()
    return output_dir / relative / name


def expected_extension(source: Path) -> str:
    """The extension the output will have: from the file's first bytes, so that a PNG named .jpg
    and a real a.png cannot both claim a.blurred.png unnoticed; from its name if it cannot be read.
    Every video is written as MP4."""
    if kind_of(source) is Kind.VIDEO:
        return extension_of(VIDEO_OUTPUT)
    return photo_output(source, sniff_format(source)).extension


def _mark_clashes(jobs: list[Job]) -> list[Job]:
    """Fail jobs whose output would be another job's input or output, rather than overwrite it."""
    sources = {os.path.abspath(job.source) for job in jobs}
    claimed: dict[str, Path] = {}  # output name -> the input that writes it
    checked = []
    for job in jobs:
        target = os.path.abspath(job.destination)
        if job.problem is None and target in sources:
            job = Job(job.source, job.destination, "its output name is another input's name; nothing was written")
        elif job.problem is None and target in claimed:
            job = Job(job.source, job.destination, f"another input ({os.fsdecode(claimed[target])}) writes the same "
                                                   f"output name, {job.destination.name}; nothing was written: "
                                                   "rename one of them")
        claimed.setdefault(target, job.source)
        checked.append(job)
    return checked


class StopRequest(Protocol):
    """Asks a batch to stop: a `threading.Event`, or any flag with `is_set` (set from a signal handler)."""

    def is_set(self) -> bool: ...


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
    if kind_of(job.source) is Kind.VIDEO:
        return run_video_job(job, video or VideoSettings(settings), overwrite=overwrite, progress=progress, stop=stop)
    try:
        detector = detector or settings.load_detector()
        result = anonymise_file(job.source, job.destination, settings, overwrite=overwrite, detector=detector)
    except OutputExists as exc:
        return outcome(Status.SKIPPED, None, exc.path, faces=None)
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
    done = outcome(Status.DONE, None, result.output, faces)
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
            stop=stop.is_set if stop is not None else None,
        )
    except Stopped:
        return None
    except OutputExists as exc:
        return Outcome(job.source, exc.path, Status.SKIPPED, None, method, None, time.perf_counter() - started)
    except BlurError as exc:
        return failed(str(exc))
    except MemoryError:
        return failed("ran out of memory; lower --workers or the video limits")
    except Exception as exc:  # fail closed: an unexpected error still means no output for this file
        return failed(f"unexpected error ({type(exc).__name__}: {exc})")
    done = Outcome(job.source, result.output, Status.DONE, result.faces, method, None, time.perf_counter() - started)
    done.processing = {**describe_processing(settings.photo, detector), "video": describe_video_processing(settings)}
    done.video = {"frames": result.frames, "width": result.width, "height": result.height, "audio": result.audio,
                  "regions": result.regions, "detections": result.detected, "people": people_seen(result.faces)}
    return done


def people_seen(faces: list[dict]) -> int:
    """The most faces tracked at once in a video (`faces`: one per track, with its first and last frame).

    A face lost and found again starts a new track, so tracks over-count people; faces at once do
    not (and count fewer than were seen when people come and go, as in a pan)."""
    changes = sorted(change for face in faces for change in ((face["frames"][0], 1), (face["frames"][1] + 1, -1)))
    most = now = 0
    for _, change in changes:
        now += change
        most = max(most, now)
    return most


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
    videos = [job for job in jobs if kind_of(job.source) is Kind.VIDEO]
    yield from _run_photos([job for job in jobs if kind_of(job.source) is not Kind.VIDEO], settings,
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
                running[_submit(executor, job, overwrite)] = (job, True)
            while queued and not suspects and len(running) < workers:
                job = queued.popleft()
                running[_submit(executor, job, overwrite)] = (job, False)
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


def _submit(executor: ProcessPoolExecutor, job: Job, overwrite: bool) -> Future:
    # Worker processes are started inside submit. With Ctrl-C blocked (not ignored: a blocked
    # signal waits, it is not lost) they start with it blocked too, so an early Ctrl-C cannot
    # kill half-started workers with tracebacks; each then ignores it in _start_worker.
    with _sigint_blocked():
        return executor.submit(_worker_job, job, overwrite)


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


_worker_settings: Settings | None = None
_worker_detector: Detector | None = None


def _start_worker(settings: Settings, workers: int) -> None:
    import cv2

    global _worker_settings, _worker_detector
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C; a running job completes
    threads = max(1, (os.cpu_count() or 1) // workers)
    cv2.setNumThreads(threads)
    _worker_settings = settings
    _worker_detector = settings.load_detector(threads)


def _worker_job(job: Job, overwrite: bool) -> Outcome:
    assert _worker_settings is not None
    return run_job(job, _worker_settings, overwrite=overwrite, detector=_worker_detector)


def summarise(outcomes: Iterable[Outcome]) -> dict[str, int]:
    """How many outcomes of each status, "faces": the faces destroyed in the photos done (this run),
    and "people": those seen in the videos done (`people_seen`)."""
    counts = {status.value: 0 for status in Status}
    faces = people = 0
    for outcome in outcomes:
        counts[outcome.status.value] += 1
        if outcome.video is None:
            faces += len(outcome.faces or ())
        else:
            people += outcome.video.get("people", 0)
    counts["faces"], counts["people"] = faces, people
    return counts


def write_report(outcomes: list[Outcome], path: str | Path) -> None:
    """Write a JSON report (or CSV if `path` ends in .csv) of every outcome, readable by the owner only.

    Each photo anonymised names the way it was processed (`describe_processing`): in JSON, an entry
    of "processing" that its "processed_with" refers to; in CSV, the tool, settings and detector
    columns. A photo skipped because an earlier run did it takes its faces and processing from the
    report this one replaces (a resumed batch writes its report where the first run did); without
    one they are unknown (null). The summary counts this run's outcomes.
    """
    path = Path(path)
    records = _with_earlier_records([outcome.record() for outcome in outcomes], path)
    if path.suffix.lower() == ".csv":
        text = _csv_report(records)
    else:
        processing: dict[str, dict] = {}
        ids: dict[str, str] = {}
        for record in records:
            description = record.pop("processing")
            key = json.dumps(description, sort_keys=True)
            if description is not None and key not in ids:
                ids[key] = str(len(ids) + 1)
                processing[ids[key]] = description
            record["processed_with"] = ids.get(key)
        text = json.dumps(
            {"processing": processing, "summary": summarise(outcomes), "files": records},
            indent=2,
            ensure_ascii=False,
        )
    # A file name that is not valid UTF-8 becomes a \udcXX escape: valid JSON that json.loads and
    # os.fsencode turn back into the original bytes, instead of bytes that break every JSON parser.
    write_atomically(text.encode("utf-8", "backslashreplace"), path, overwrite=True, private=True)


def _with_earlier_records(records: list[dict], path: Path) -> list[dict]:
    """`records`, where skipped photos take their faces and processing from the JSON report at `path`."""
    if path.suffix.lower() == ".csv" or not any(r["status"] == Status.SKIPPED.value for r in records):
        return records
    try:
        earlier = json.loads(path.read_text(encoding="utf-8", errors="surrogateescape"))
        processing = earlier["processing"]
        done = {(r["input"], r["output"]): r for r in earlier["files"] if r["status"] in ("done", "skipped")}
    except (OSError, ValueError, KeyError, TypeError):  # no earlier report, or not one of ours
        return records
    for record in records:
        before = done.get((record["input"], record["output"]))
        if record["status"] == Status.SKIPPED.value and before is not None and before.get("faces") is not None:
            record["faces"] = before["faces"]
            record["processing"] = processing.get(before.get("processed_with"))
            record["camera_unlinked"] = before.get("camera_unlinked")
    return records


def _csv_report(records: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["input", "output", "status", "faces", "boxes", "method", "error", "seconds", "tool",
                     "settings", "detector", "camera_unlinked"])
    for r in records:
        known = r["faces"] is not None
        boxes = json.dumps([face["box"] for face in r["faces"]]) if known else ""
        processing = r["processing"] or {}
        described = [json.dumps(processing[key], sort_keys=True) if key in processing else ""
                     for key in ("settings", "detector")]
        writer.writerow([r["input"], r["output"] or "", r["status"], len(r["faces"]) if known else "", boxes,
                         r["method"], r["error"] or "", r["seconds"], processing.get("tool", ""), *described,
                         "" if r["camera_unlinked"] is None else str(r["camera_unlinked"]).lower()])
    return buffer.getvalue()
