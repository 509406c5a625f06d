"""`blur check FILE...`: say what in each photo could still identify someone, before it is posted."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Iterator, TextIO

from blur.check import CheckReport, check_file
from blur.detect import DEFAULT_DETECTOR, load_detector
from blur.errors import BlurError
from blur.kinds import DESCRIPTIONS, Kind, kind_of_file
from blur.video.check import VideoCheckReport, check_video

from .main import ArgumentParser, ExitStatus, missing_paths, printable, setting_type


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="blur check",
        description=(
            "List the identifying metadata each photo carries (GPS, camera serials, owner names, times, "
            "thumbnails, colour profiles, comments, hidden images, bytes after the end) and every face that "
            "blur's default detector would still destroy in it. For videos: their tags, extra tracks, "
            "chapters and sound, and faces in a sample of frames. Exit status 0 only if every file is "
            "clean. Still look at every photo and video yourself: no detector finds every face. It cannot "
            "tell whether a photo can still be matched to the camera that took it (its sensor pattern): "
            "blur's report says, per photo (camera_unlinked)."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="FILE", help="photos, or folders searched recursively")
    parser.add_argument("--no-faces", action="store_true", help="check metadata only (fast: no face detection)")
    parser.add_argument("--threshold", type=setting_type("threshold", float), metavar="T",
                        help="look harder: fail on faces scoring T or more, below the detector's default "
                             "threshold (a higher one is refused: the check would pass faces blur destroys)")
    return parser


def check(argv: list[str], stdout: TextIO, stderr: TextIO) -> int:
    """Check every file given; 0 if all are clean, 1 if anything was found or unreadable, 2 on usage errors."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits 0 for --help and 2 for bad usage
        return int(exc.code or 0)
    mistake = missing_paths(args.paths)
    if mistake:
        print(f"blur check: {mistake}", file=stderr)
        return ExitStatus.USAGE
    files = list(_files(args.paths))
    if not files:
        print("blur check: no files found in the given folders", file=stderr)
        return ExitStatus.USAGE
    try:
        detector = None if args.no_faces else load_detector(DEFAULT_DETECTOR)
        if detector is not None and args.threshold is not None:
            default = detector.describe()["threshold"]
            if args.threshold > default:
                print(f"blur check: --threshold must be at most the detector's default, {default:g}", file=stderr)
                return ExitStatus.USAGE
            detector = load_detector(DEFAULT_DETECTOR, threshold=args.threshold)
    except BlurError as exc:
        print(f"blur check: {exc}", file=stderr)
        return ExitStatus.SOME_FAILED
    counts = {"clean": 0, "found": 0, "unreadable": 0}
    faces_listed = False
    for path in files:
        name = printable(os.fsdecode(path))
        kind = kind_of_file(path)
        if kind not in CHECKERS and path.is_file():
            counts["unreadable"] += 1
            print(f"ERROR    {name}: {DESCRIPTIONS[kind]}; not checked", file=stdout, flush=True)
            continue
        check_one, lines_of = CHECKERS[kind if path.is_file() else Kind.PHOTO]  # a missing file: read_file says why
        try:
            report = check_one(path, faces=detector is not None, detector=detector)
        except BlurError as exc:
            counts["unreadable"] += 1
            print(f"ERROR    {name}: {printable(str(exc))}", file=stdout, flush=True)
            continue
        counts["clean" if report.clean else "found"] += 1
        faces_listed |= bool(report.faces)
        for line in lines_of(name, report):
            print(line, file=stdout, flush=True)
    print(f"blur check: {len(files)} file{'s' * (len(files) != 1)}: {counts['clean']} clean, {counts['found']} with "
          f"something found, {counts['unreadable']} could not be checked", file=stderr)
    if faces_listed:
        print("blur check: look at every box listed: a face there is still visible (`blur review` shows and hides "
              "it); on photos blur anonymised, many boxes are faces it destroyed or shapes that are not faces",
              file=stderr)
    print(SENSOR_NOTE, file=stderr)
    return ExitStatus.OK if counts["clean"] == len(files) else ExitStatus.SOME_FAILED


SENSOR_NOTE = (
    "blur check: not checked: whether a photo can be matched to the camera that took it. Its sensor pattern "
    "cannot be seen in one file without that camera's other photos; blur unlinks it unless --keep-geometry "
    "is given, and its report says so for each photo (camera_unlinked)"
)


def report_lines(name: str, report: CheckReport) -> list[str]:
    """The lines printed for one checked photo."""
    if report.clean:
        faces = ", no face found" if report.candidates is not None else " (faces not checked)"
        return [f"clean    {name}: no metadata found{faces}"]
    lines = [f"FOUND    {name}:"]
    lines += [f"  - {printable(str(finding))}" for finding in report.metadata]
    lines += [f"  - face {_box(d)} (score {d.score:.2f})" for d in report.faces]
    if report.face_error:
        lines.append(f"  - faces not checked: {printable(report.face_error)}")
    return lines


def video_report_lines(name: str, report: VideoCheckReport) -> list[str]:
    """The lines printed for one checked video."""
    sample = f"{report.frames_checked} frames checked"
    if report.clean:
        faces = f", no face found in {sample}" if report.face_frames is not None else " (faces not checked)"
        return [f"clean    {name}: no metadata or sound found{faces}"]
    lines = [f"FOUND    {name}:"]
    lines += [f"  - {printable(str(finding))}" for finding in report.metadata]
    lines += [f"  - face in frame {index} {_box(d)} (score {d.score:.2f})" for index, d in report.face_frames or ()]
    if report.face_frames is not None and not report.faces:
        lines.append(f"  - no face found in {sample}")
    if report.face_error:
        lines.append(f"  - faces not checked in every sampled frame: {printable(report.face_error)}")
    return lines


def _box(detection) -> str:
    return f"at x {detection.x0:.0f}-{detection.x1:.0f}, y {detection.y0:.0f}-{detection.y1:.0f}"


def _files(paths: list[str]) -> Iterator[Path]:
    """Files given, and every file in folders given (all of them: anything in a folder may be posted)."""
    for given in map(Path, paths):
        if given.is_dir():
            for root, dirs, names in os.walk(given):
                dirs.sort()
                yield from (Path(root, n) for n in sorted(names))
        else:
            yield given


CHECKERS = {Kind.PHOTO: (check_file, report_lines), Kind.VIDEO: (check_video, video_report_lines)}
"""How each kind of file `blur` reads is checked, and how its report is printed."""
