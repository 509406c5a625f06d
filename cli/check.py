"""`blur check FILE...`: say what in each photo could still identify someone, before it is posted."""

from __future__ import annotations

import argparse
import itertools
import json
import os
from pathlib import Path
from typing import Iterator, TextIO

from blur.check import CheckReport, check_file
from blur.check.faces import second_opinion_models
from blur.check.sheet import Tile, contact_sheet, tile
from blur.detect import DEFAULT_DETECTOR, DETECTORS, load_detector
from blur.encode import encode_image, write_atomically
from blur.formats import OUTPUT_FORMATS
from blur.errors import BlurError
from blur.kinds import DESCRIPTIONS, Kind, kind_of_file
from blur.video.check import VideoCheckReport, check_video

from .lines import printable
from .options import ArgumentParser, ExitStatus, missing_paths, parse, setting_type


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="blur check",
        description=(
            "List the identifying metadata each photo carries (GPS, camera serials, owner names, times, "
            "thumbnails, colour profiles, comments, hidden images, bytes after the end) and every face that "
            "blur's default detector would still destroy in it. For videos: their tags, extra tracks, "
            "chapters and sound, and faces in a sample of frames. Exit status 0 only if every file is "
            "clean. A second opinion lists a handful of places per photo where a face may have been missed "
            "(they do not change the exit status): look at them, e.g. on a contact sheet (--sheet). "
            "Still look at every photo and video yourself: no detector finds every face. It cannot "
            "tell whether a photo can still be matched to the camera that took it (its sensor pattern): "
            "blur's report says, per photo (camera_unlinked)."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="FILE", help="photos, or folders searched recursively")
    parser.add_argument("--no-faces", action="store_true", help="check metadata only (fast: no face detection)")
    parser.add_argument("--threshold", type=setting_type("threshold", float), metavar="T",
                        help="look harder: fail on faces scoring T or more, below the detector's default "
                             "threshold (a higher one is refused: the check would pass faces blur destroys)")
    parser.add_argument("--sheet", type=Path, metavar="FILE.png",
                        help="write a contact sheet: every face found and every place the second opinion points "
                             "at, cropped with its surroundings and numbered as listed (readable by you alone; "
                             "it may show faces: never post it)")
    parser.add_argument("--json", action="store_true",
                        help=f"print one JSON document (schema {JSON_SCHEMA!r}) instead of lines, for pipelines")
    return parser


JSON_SCHEMA = "soft-focus-check/1"
"""Name and version of the --json layout; a change that breaks a reader gets a new number."""


def check(argv: list[str], stdout: TextIO, stderr: TextIO) -> int:
    """Check every file given; 0 if all are clean, 1 if anything was found or unreadable, 2 on usage errors."""
    args = parse(build_parser(), argv)
    if isinstance(args, int):
        return args
    mistake = missing_paths(args.paths)
    if mistake:
        print(f"blur check: {mistake}", file=stderr)
        return ExitStatus.USAGE
    if args.sheet is not None and (args.no_faces or args.sheet.suffix.lower() != ".png"):
        print("blur check: --sheet needs a file name ending in .png, and faces checked", file=stderr)
        return ExitStatus.USAGE
    files = list(_files(args.paths))
    if not files:
        print("blur check: no files found in the given folders", file=stderr)
        return ExitStatus.USAGE
    default = DETECTORS[DEFAULT_DETECTOR].defaults["threshold"]
    if args.threshold is not None and args.threshold > default:
        print(f"blur check: --threshold must be at most the detector's default, {default:g}", file=stderr)
        return ExitStatus.USAGE
    faces = not args.no_faces

    def video_detector():
        """Videos' frames are looked at by the detector as blur runs it (photos, by the check's own look)."""
        return load_detector(DEFAULT_DETECTOR, **({} if args.threshold is None else {"threshold": args.threshold}))
    counts = {"clean": 0, "found": 0, "unreadable": 0}
    numbers = itertools.count(1)
    tiles: list[Tile] = []
    records = []
    faces_listed = False
    for path in files:
        name = printable(os.fsdecode(path))
        kind = kind_of_file(path)
        if kind not in CHECKERS and path.is_file():
            counts["unreadable"] += 1
            records.append(_error_record(path, kind, DESCRIPTIONS[kind] + "; not checked"))
            _say(args, f"ERROR    {name}: {DESCRIPTIONS[kind]}; not checked", stdout)
            continue
        kind = kind if path.is_file() else Kind.PHOTO  # a missing file: read_file says why
        try:
            if kind is Kind.VIDEO:
                report = check_video(path, faces=faces, detector=video_detector() if faces else None)
            else:
                report = check_file(path, faces=faces, bar=args.threshold, keep_pixels=args.sheet is not None)
        except BlurError as exc:
            counts["unreadable"] += 1
            records.append(_error_record(path, kind, str(exc)))
            _say(args, f"ERROR    {name}: {printable(str(exc))}", stdout)
            continue
        counts["clean" if report.clean else "found"] += 1
        faces_listed |= bool(report.faces)
        if isinstance(report, VideoCheckReport):
            records.append(_video_record(path, report, numbers))
            lines = video_report_lines(name, report)
        else:
            record = _photo_record(path, report, numbers)
            records.append(record)
            lines = report_lines(name, report, record)
            if report.pixels is not None:
                tiles += [tile(f["number"], "face", report.pixels, d) for f, d in zip(record["faces"], report.faces)]
                tiles += [tile(m["number"], "maybe", report.pixels, maybe.detection)
                          for m, maybe in zip(record["maybes"], report.maybes)]
        for line in lines:
            _say(args, line, stdout)
    if args.sheet is not None:
        try:
            write_atomically(encode_image(contact_sheet(tiles), None, OUTPUT_FORMATS["PNG"]), args.sheet,
                             overwrite=True, private=True)
        except BlurError as exc:
            print(f"blur check: the contact sheet was not written: {exc}", file=stderr)
            return ExitStatus.SOME_FAILED
        print(f"blur check: contact sheet of {len(tiles)} places written to {printable(os.fsdecode(args.sheet))} "
              "(it may show faces: never post it)", file=stderr)
    if args.json:
        json.dump({"schema": JSON_SCHEMA, "files": records, "summary": {"files": len(files), **counts},
                   "second_opinion": second_opinion_models() if faces else None,
                   "not_checked": SENSOR_NOTE.removeprefix("blur check: not checked: ")}, stdout, indent=2)
        stdout.write("\n")
    print(f"blur check: {len(files)} file{'s' * (len(files) != 1)}: {counts['clean']} clean, {counts['found']} with "
          f"something found, {counts['unreadable']} could not be checked", file=stderr)
    if faces_listed:
        print("blur check: look at every face listed: it is still visible (`blur review` shows and hides it)",
              file=stderr)
    print(SENSOR_NOTE, file=stderr)
    return ExitStatus.OK if counts["clean"] == len(files) else ExitStatus.SOME_FAILED


def _say(args, line: str, stdout: TextIO) -> None:
    if not args.json:
        print(line, file=stdout, flush=True)


def _box_list(d) -> list[float]:
    return [round(float(v), 1) for v in (d.x0, d.y0, d.x1, d.y1)]


def _photo_record(path: Path, report: CheckReport, numbers) -> dict:
    """One photo as --json gives it (see docs/check.md: the schema)."""
    return _record(path, "photo", report, report.candidates is not None, [(d, None) for d in report.faces],
                   report.maybes, numbers)


def _video_record(path: Path, report: VideoCheckReport, numbers) -> dict:
    return _record(path, "video", report, report.face_frames is not None,
                   [(d, index) for index, d in report.face_frames or ()], (), numbers)


def _record(path: Path, kind: str, report, faces_checked: bool, faces, maybes, numbers) -> dict:
    return {
        "path": os.fsdecode(path), "kind": kind, "status": "clean" if report.clean else "found",
        "error": report.face_error, "faces_checked": faces_checked,
        "metadata": [{"kind": f.kind, "detail": f.detail, "offset": f.offset} for f in report.metadata],
        "faces": [{"number": next(numbers), "box": _box_list(d), "score": round(float(d.score), 3), "frame": frame}
                  for d, frame in faces],
        "maybes": [{"number": next(numbers), "rank": rank, "box": _box_list(m.detection),
                    "score": round(float(m.detection.score), 3), "why": m.why} for rank, m in enumerate(maybes, 1)],
    }


def _error_record(path: Path, kind: Kind, error: str) -> dict:
    return {"path": os.fsdecode(path), "kind": "video" if kind is Kind.VIDEO else "photo" if kind is Kind.PHOTO
            else "other", "status": "error", "error": error, "faces_checked": False, "metadata": [], "faces": [],
            "maybes": []}


SENSOR_NOTE = (
    "blur check: not checked: whether a photo can be matched to the camera that took it. Its sensor pattern "
    "cannot be seen in one file without that camera's other photos; blur unlinks it unless --keep-geometry "
    "is given, and its report says so for each photo (camera_unlinked)"
)


def report_lines(name: str, report: CheckReport, record: dict) -> list[str]:
    """The lines printed for one checked photo; numbers as in `record` (and on the contact sheet)."""
    if report.clean:
        faces = ", no face found" if report.candidates is not None else " (faces not checked)"
        lines = [f"clean    {name}: no metadata found{faces}"]
    else:
        lines = [f"FOUND    {name}:"]
        lines += [f"  - {printable(str(finding))}" for finding in report.metadata]
        lines += [f"  - face {_box(d)} (score {d.score:.2f}) [{f['number']}]" for f, d in zip(record["faces"], report.faces)]
        if report.face_error:
            lines.append(f"  - faces not checked: {printable(report.face_error)}")
    lines += [f"  . maybe {_box(maybe.detection)}: {maybe.why} [{m['number']}]"
              for m, maybe in zip(record["maybes"], report.maybes)]
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


CHECKERS = (Kind.PHOTO, Kind.VIDEO)
"""The kinds of file `blur check` reads."""
