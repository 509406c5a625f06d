"""`blur check FILE...`: say what in each photo could still identify someone, before it is posted."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Iterator, TextIO

from blur.check import FACE_ALARM_THRESHOLD, FACE_CHECK_THRESHOLD, CheckReport, check_file
from blur.decode import IMAGE_EXTENSIONS
from blur.detect import load_detector
from blur.errors import BlurError

from .main import ExitStatus, printable, setting_type


SHOWN_WEAK = 10
"""Weak candidates listed per photo, strongest first (a crowd photo can have dozens)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blur check",
        description=(
            "List the identifying metadata each photo carries (GPS, camera serials, owner names, times, "
            "thumbnails, colour profiles, comments, hidden images, bytes after the end) and the faces "
            "still detectable in it. Exit status 0 only if every photo is clean. "
            "Still look at every photo yourself: no detector finds every face."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="FILE", help="photos, or folders searched recursively")
    parser.add_argument("--no-faces", action="store_true", help="check metadata only (fast: no face detection)")
    parser.add_argument("--threshold", type=setting_type("threshold", float), default=FACE_ALARM_THRESHOLD, metavar="T",
                        help=f"a face scoring T or more fails the check (default {FACE_ALARM_THRESHOLD}); weaker "
                             f"candidates down to {FACE_CHECK_THRESHOLD} are listed to look at")
    return parser


def check(argv: list[str], stdout: TextIO, stderr: TextIO) -> int:
    """Check every file given; 0 if all are clean, 1 if anything was found or unreadable, 2 on usage errors."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits 0 for --help and 2 for bad usage
        return int(exc.code or 0)
    files = list(_files(args.paths))
    if not files:
        print("blur check: no photos found in the given folders", file=stderr)
        return ExitStatus.USAGE
    try:
        detector = None if args.no_faces else load_detector("centerface", threshold=FACE_CHECK_THRESHOLD)
    except BlurError as exc:
        print(f"blur check: {exc}", file=stderr)
        return ExitStatus.SOME_FAILED
    counts = {"clean": 0, "found": 0, "unreadable": 0}
    for path in files:
        name = printable(os.fsdecode(path))
        try:
            report = check_file(path, faces=detector is not None, alarm_threshold=args.threshold, detector=detector)
        except BlurError as exc:
            counts["unreadable"] += 1
            print(f"ERROR    {name}: {printable(str(exc))}", file=stdout)
            continue
        counts["clean" if report.clean else "found"] += 1
        for line in report_lines(name, report):
            print(line, file=stdout, flush=True)
    print(f"blur check: {len(files)} photo{'s' * (len(files) != 1)}: {counts['clean']} clean, {counts['found']} with something found, "
          f"{counts['unreadable']} could not be checked", file=stderr)
    return ExitStatus.OK if counts["clean"] == len(files) else ExitStatus.SOME_FAILED


def report_lines(name: str, report: CheckReport) -> list[str]:
    """The lines printed for one checked photo."""
    faces_checked = report.candidates is not None
    weak = report.possible_faces
    if report.clean:
        faces = ", no faces detected" if faces_checked else " (faces not checked)"
        if weak:
            faces = f", no clear face; look at {len(weak)} weak candidate{'s' * (len(weak) != 1)}"
        lines = [f"clean    {name}: no metadata found{faces}"]
    else:
        lines = [f"FOUND    {name}:"]
        lines += [f"  - {printable(str(finding))}" for finding in report.metadata]
        lines += [f"  - face {_box(d)} (score {d.score:.2f})" for d in report.faces]
        if report.face_error:
            lines.append(f"  - faces not checked: {printable(report.face_error)}")
    lines += [f"  look at: possible face {_box(d)} (score {d.score:.2f})"
              for d in weak[:SHOWN_WEAK]]
    if len(weak) > SHOWN_WEAK:
        lines.append(f"  look at: ... and {len(weak) - SHOWN_WEAK} weaker candidates")
    return lines


def _box(detection) -> str:
    return f"at x {detection.x0:.0f}-{detection.x1:.0f}, y {detection.y0:.0f}-{detection.y1:.0f}"


def _files(paths: list[str]) -> Iterator[Path]:
    for given in map(Path, paths):
        if given.is_dir():
            for root, dirs, names in os.walk(given):
                dirs.sort()
                yield from (Path(root, n) for n in sorted(names) if Path(n).suffix.lower() in IMAGE_EXTENSIONS)
        else:
            yield given
