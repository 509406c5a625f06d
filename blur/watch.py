"""Watch: a hot folder. Photos dropped into IN are anonymised into OUT once completely copied.

A file counts as complete when its size and modification time have not changed for `settle`
seconds: a copy in progress keeps changing them. Hidden and temporary names (`.name`, `~$name`,
`name.part`, ...) are ignored, so tools that copy under a temporary name and rename at the end
are picked up only after the rename. OUT gets the copies (mirroring IN's folders) and nothing else:
a report and a small state file, so a restart processes nothing twice, name every original and are
kept in a private folder of the user's (`records_folder`). Originals are only ever read.

Polling with the standard library, not inotify: it works the same on network shares, where
inotify sees nothing written by other machines, and it is cheap (one directory walk per interval);
settling needs a timer either way.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from .batch import run_job
from .detect import Detector
from .encode import remove_stale_temporaries, write_atomically
from .errors import BlurError, OutputError
from .jobs import OUTPUT_TAG, Job, leads_outside, plan_file
from .kinds import READ_KINDS, kind_of
from .names import key_folder
from .pipeline import Settings
from .report import Outcome, Status, write_report
from .stop import StopRequest
from .video import VideoSettings

STATE_NAME = ".blur-watch-state.json"
REPORT_NAME = "blur-report.json"
DEFAULT_SETTLE = 2.0
DEFAULT_INTERVAL = 1.0

_TEMPORARY_PREFIXES = (".", "~", "_tmp")
_TEMPORARY_SUFFIXES = (".part", ".partial", ".crdownload", ".download", ".tmp", ".temp", ".filepart", "~")


@dataclass(frozen=True)
class SizeAndTime:
    """What changes while a file is being written."""

    size: int
    mtime_ns: int


def is_candidate(relative: Path) -> bool:
    """Whether a file at `relative` (inside the watched folder) is a photo or video to process."""
    if any(part.startswith(_TEMPORARY_PREFIXES) for part in relative.parts):
        return False
    name = relative.name.lower()
    if name.endswith(_TEMPORARY_SUFFIXES):
        return False
    return kind_of(relative) in READ_KINDS and not relative.stem.endswith(OUTPUT_TAG)


def scan(folder: Path, skip: Path | None = None) -> dict[Path, SizeAndTime]:
    """The size and time of each candidate file under `folder`, by path relative to it; `skip` is not entered."""
    found = {}
    skip = skip.resolve() if skip is not None else None
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        dirs[:] = [d for d in dirs if skip is None or (root_path / d).resolve() != skip]
        for name in files:
            relative = (root_path / name).relative_to(folder)
            if not is_candidate(relative):
                continue
            try:
                status = (root_path / name).stat()
            except OSError:  # removed or renamed between listing and stat
                continue
            found[relative] = SizeAndTime(status.st_size, status.st_mtime_ns)
    return found


class SettleTracker:
    """Tells which files have kept the same size and time for `settle` seconds."""

    def __init__(self, settle: float, clock: Callable[[], float] = time.monotonic):
        self.settle = settle
        self.clock = clock
        self._since: dict[Path, tuple[SizeAndTime, float]] = {}

    def settled(self, seen: dict[Path, SizeAndTime]) -> list[Path]:
        """Update with one scan; return the files unchanged for at least `settle` seconds, sorted."""
        now = self.clock()
        since = {}
        for path, current in seen.items():
            previous = self._since.get(path)
            since[path] = previous if previous and previous[0] == current else (current, now)
        self._since = since
        return sorted(path for path, (_, changed) in since.items() if now - changed >= self.settle)


class WatchState:
    """The photos already handled, persisted in `records_folder` so a restart does not process them again.

    Done and skipped photos are never processed again unless the file in IN changes (a new version
    replaces its copy). Failed ones have no output: they are retried after a restart.
    """

    def __init__(self, out_dir: Path):
        self.path = out_dir / STATE_NAME
        self.entries: dict[str, dict] = {}
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            raise OutputError(f"cannot read the watch state {self.path} ({exc}); move it away to start afresh") from None
        self.entries = {path: entry for path, entry in saved.get("files", {}).items()
                        if entry["record"]["status"] != Status.FAILED.value}

    def handled(self, relative: Path, seen: SizeAndTime) -> bool:
        entry = self.entries.get(relative.as_posix())
        return entry is not None and (entry["size"], entry["mtime_ns"]) == (seen.size, seen.mtime_ns)

    def seen_before(self, relative: Path) -> bool:
        return relative.as_posix() in self.entries

    def record(self, relative: Path, seen: SizeAndTime, outcome: Outcome) -> None:
        self.entries[relative.as_posix()] = {
            "size": seen.size, "mtime_ns": seen.mtime_ns, "record": outcome.record(),
        }
        data = json.dumps({"version": 1, "files": self.entries}, indent=1, ensure_ascii=False)
        write_atomically(data.encode("utf-8", "surrogateescape"), self.path, overwrite=True, private=True)

    def outcomes(self) -> list[Outcome]:
        return [Outcome.from_record(entry["record"]) for entry in self.entries.values()]


def watch_folder(
    in_dir: str | Path,
    out_dir: str | Path,
    settings: Settings = Settings(),
    *,
    settle: float = DEFAULT_SETTLE,
    interval: float = DEFAULT_INTERVAL,
    random_names: bool = False,
    report: str | Path | None = None,
    stop: StopRequest | None = None,
    video: VideoSettings | None = None,
) -> Iterator[Outcome]:
    """Outcomes of the photos and videos that arrive in `in_dir`, each processed once, until `stop` is set.

    Videos are anonymised with `video` (default: `settings`, no sound, the default limits).
    After each photo, the state (in `records_folder(out_dir)`) and the report (all photos so far,
    also across restarts; at `report`, default REPORT_NAME beside the state) are rewritten
    atomically. `stop` is checked between photos: the current photo is always finished, so nothing
    is left half-done. What a killed run left (its temporary files) is removed from a folder before
    anything is written there.
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    problem = folders_problem(in_dir, out_dir)
    if problem:
        raise BlurError(problem)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = records_folder(out_dir)
    records.mkdir(mode=0o700, parents=True, exist_ok=True)
    report = Path(report) if report is not None else records / REPORT_NAME
    stop = stop or threading.Event()
    state = WatchState(records)
    tracker = SettleTracker(settle)
    detector: Detector | None = None
    cleaned: set[Path] = set()  # folders rid of what a killed run left (see remove_stale_temporaries)
    while not stop.is_set():
        for relative in tracker.settled(scan(in_dir, skip=out_dir)):
            if stop.is_set():
                break
            source = in_dir / relative
            seen = _size_and_time(source)
            if seen is None or state.handled(relative, seen):
                continue
            detector = detector or settings.load_detector()
            if leads_outside(source, in_dir):  # not read at all: not even its name's format
                job = Job(source, source, kind_of(source),
                          problem="is a link to a file outside the watched folder, which is not followed")
            else:
                job = plan_file(source, in_dir, out_dir, random_names)
            for folder in {out_dir, records, *([job.destination.parent] if job.problem is None else [])} - cleaned:
                remove_stale_temporaries(folder)
                cleaned.add(folder)
            outcome = run_job(job, settings, overwrite=state.seen_before(relative), detector=detector, stop=stop,
                              video=video)
            if outcome is None:  # stopped in the middle of a video: nothing of it written, retried next time
                return
            state.record(relative, seen, outcome)
            write_report(state.outcomes(), report)
            yield outcome
        stop.wait(interval)


def folders_problem(in_dir: Path, out_dir: Path) -> str | None:
    """Why `in_dir` cannot be watched into `out_dir`, or None."""
    if not in_dir.is_dir():
        return f"{in_dir} is not a folder; give the folder to watch"
    if in_dir.resolve() == out_dir.resolve():
        return "the output folder must differ from the watched folder"
    if out_dir.exists() and not out_dir.is_dir():
        return f"{out_dir} is a file, not a folder"
    return None


def records_folder(out_dir: str | Path) -> Path:
    """Where the state and the report are kept: as both name every original (and link each random
    name to its original), a private folder of the user's, one per OUT, never OUT itself."""
    digest = hashlib.sha256(os.fsencode(os.path.abspath(out_dir))).hexdigest()[:16]
    return key_folder() / "watch" / digest


def _size_and_time(path: Path) -> SizeAndTime | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return SizeAndTime(status.st_size, status.st_mtime_ns)
