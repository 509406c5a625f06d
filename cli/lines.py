"""What the commands print: one safe line per file, summaries, and progress on a terminal."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path
from typing import TextIO

from blur.jobs import Job
from blur.kinds import Kind
from blur.report import Outcome, Status
from blur.video.pipeline import Progress


def outcome_line(outcome: Outcome) -> str:
    """The one line printed for a file handled: done, skipped or FAILED with the reason."""
    source = printable(os.fsdecode(outcome.source))
    if outcome.status is Status.DONE:
        faces, video = len(outcome.faces), outcome.video
        found = f"{faces} face{'s' * (faces != 1)}"
        if video is not None:
            people = video.get("people", faces)
            found = (f"{people} {'person' if people == 1 else 'people'} seen over {video['frames']} frames "
                     f"({video['regions']:,} regions), {'sound kept' if video['audio'] else 'no sound'}")
        return f"done     {source} -> {printable(os.fsdecode(outcome.destination))} ({found})"
    if outcome.status is Status.SKIPPED:
        return f"skipped  {source}: {printable(os.fsdecode(outcome.destination))} already exists"
    return f"FAILED   {source}: {printable(with_flags(outcome.error or 'unknown error'))}"


def printable(text: str) -> str:
    """`text` with control characters and undecodable bytes escaped, safe to print on a terminal."""
    out = []
    for char in text:
        if 0xDC80 <= ord(char) <= 0xDCFF:  # a byte that was not valid UTF-8 (surrogateescape)
            out.append(f"\\x{ord(char) - 0xDC00:02x}")
        elif unicodedata.category(char).startswith("C"):
            out.append(char.encode("unicode_escape").decode("ascii"))
        else:
            out.append(char)
    return "".join(out)


class _NoBar:
    """What stands for the progress bar where there is none."""

    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def progress_bar(total: int, stream: TextIO):
    """A progress bar on an interactive terminal; nothing when output is piped or captured."""
    if total > 1 and hasattr(stream, "isatty") and stream.isatty():
        from tqdm import tqdm

        return tqdm(total=total, unit="photo", file=stream, dynamic_ncols=True)
    return _NoBar()


def print_line(line: str, bar, stdout: TextIO) -> None:
    if bar is not None:
        bar.write(line, file=stdout)
    else:
        print(line, file=stdout, flush=True)


def counts_line(counts: dict[str, int], photos: bool = True, videos: bool = False) -> str:
    """What a run did, in a summary: done (faces in photos, people in videos), skipped, failed."""
    faces, people = counts["faces"], counts["people"]
    found = [f"{faces} face{'s' * (faces != 1)} destroyed{' in photos' * videos}"] * photos
    found += [f"{people} {'person' if people == 1 else 'people'} seen in videos"] * videos
    return (f"{counts['done']} anonymised ({', '.join(found)}), "
            f"{counts['skipped']} already done earlier, {counts['failed']} failed")


def geometry_note(outcomes: list[Outcome]) -> str:
    """Said once in a summary, when photos were unlinked from their camera: why the copies are a little smaller."""
    if not any(outcome.status is Status.DONE and outcome.camera_unlinked for outcome in outcomes):
        return ""
    return (". The copies are a little smaller (4032×3024 comes out about 3980×2980) and very slightly distorted, "
            "which unlinks them from the camera's sensor pattern (--keep-geometry keeps every pixel where it was)")


def not_read_note(jobs: list[Job], report: str | None) -> str:
    """How many files in the folders were not read, by kind: named when they are few, else where they are listed."""
    files: dict[Kind, list[str]] = {}
    for job in jobs:
        if job.not_read:
            files.setdefault(job.kind, []).append(printable(os.fsdecode(job.source)))
    if not files:
        return ""
    named = sum(map(len, files.values())) <= NAMED_NOT_READ
    parts = []
    for kind, words in _KIND_WORDS.items():
        if kind in files:
            noun, advice = words[len(files[kind]) != 1]
            names = f" ({', '.join(files[kind])})" if named else ""
            parts.append(f"{len(files[kind])} {noun}{names}{advice}")
    listed = "" if named else " (the report lists them)" if report else " (--report FILE lists them)"
    return f". Not read: {', '.join(parts)}{listed}"


NAMED_NOT_READ = 5
"""Up to this many files not read are named in the summary; more are left to the report."""

_KIND_WORDS = {
    Kind.RAW: (("camera raw file", ": export it as JPEG or TIFF first"),
               ("camera raw files", ": export them as JPEG or TIFF first")),
    Kind.OTHER_VIDEO: (("video in a format not read", ": convert it to MP4"),
                       ("videos in formats not read", ": convert them to MP4")),
    Kind.OTHER: (("other file", ""), ("other files", "")),
}


class VideoProgress:
    """Frames done and time left of the video in progress: one line kept up to date on a terminal,
    a line every 10 % otherwise."""

    def __init__(self, stream: TextIO, bar=None):
        self.stream, self.bar = stream, bar
        self.terminal = hasattr(stream, "isatty") and stream.isatty()
        self.last_tenth = -1

    def __call__(self, source: Path, progress: Progress) -> None:
        total = f"/{progress.total}" if progress.total else ""
        left = progress.seconds_left
        left_text = f", about {_duration(left)} left" if left is not None else ""
        line = (f"  {printable(os.fsdecode(source.name))}: frame {progress.frames}{total}, "
                f"{progress.frames / max(progress.seconds, 1e-9):.1f} frames/s{left_text}")
        if self.terminal:
            done = progress.total is not None and progress.frames >= progress.total
            print(f"\r\x1b[K{line}", end="\n" if done else "", file=self.stream, flush=True)
            return
        tenth = progress.frames * 10 // progress.total if progress.total else progress.frames // 300
        if tenth != self.last_tenth:
            self.last_tenth = tenth
            print(line, file=self.stream, flush=True)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"




_FLAGS = {
    "the pixel limit": "--max-megapixels",
    "fewer photos at a time": "-j",
    "the video limits": "--max-minutes",
}
"""The library names what a person can change in its own words; here, each gets its option."""


def with_flags(message: str) -> str:
    """A library message with the option that changes each setting it names: 'raise the pixel limit
    (--max-megapixels)'."""
    for words, flag in _FLAGS.items():
        message = message.replace(words, f"{words} ({flag})")
    return message
