"""`blur`: the command line. It parses arguments, calls the library, and prints outcomes."""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import signal
import sys
import threading
import time
import unicodedata
from enum import IntEnum
from pathlib import Path
from typing import Callable, NoReturn, Sequence, TextIO

from blur import __version__
from blur.anonymise import Method
from blur.batch import run_batch, run_job
from blur.decode import DEFAULT_MAX_PIXELS
from blur.detect import DETECTORS, DEFAULT_DETECTOR
from blur.detect.centerface import FAST_MIN_FACE, MIN_FACE
from blur.errors import BlurError, InvalidSetting
from blur.jobs import Job, own_copies_in, plan_jobs
from blur.kinds import Kind
from blur.pipeline import Settings, check_setting
from blur.regions import DEFAULT_PADDING, Shape
from blur.report import Outcome, Status, summarise, write_report
from blur.video import VideoLimits, VideoSettings
from blur.video.pipeline import Progress


class ExitStatus(IntEnum):
    OK = 0
    SOME_FAILED = 1
    USAGE = 2
    INTERRUPTED = 130


SUBCOMMANDS_HELP = """\
other commands (each has its own --help):
  blur review PATH...    check every photo in your web browser: cover missed faces, then save
  blur check FILE...     before posting: list leftover metadata and faces still visible
  blur watch IN OUT      anonymise every photo and video copied into the folder IN, into OUT, until stopped
"""


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, but a usage error is one line, naming the option meant when one is misspelt."""

    def error(self, message: str) -> NoReturn:
        unknown = message.removeprefix("unrecognized arguments:").split() if "unrecognized" in message else []
        meant = [match for word in unknown if word.startswith("--")
                 for match in difflib.get_close_matches(word.split("=")[0], self._option_string_actions, 1)]
        hint = f"; did you mean {meant[0]}?" if meant else f" (see {self.prog} --help)"
        self.exit(ExitStatus.USAGE, f"{self.prog}: {message}{hint}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="blur",
        description=(
            "Irreversibly destroy every face found in photos and videos and write copies with no metadata "
            "(no GPS, camera serials, times or thumbnails; videos without sound unless --keep-audio). "
            "Originals are never modified. "
            "Check the results by eye before posting: no detector finds every face."
        ),
        epilog=SUBCOMMANDS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="photos, videos (MP4, MOV, M4V, 3GP, MKV, WebM), or folders searched recursively")
    parser.add_argument("-o", "--output", metavar="DIR",
                        help="write copies under DIR, mirroring folders (default: beside each photo, as NAME.blurred.EXT)")
    parser.add_argument("--random-names", action="store_true",
                        help="give outputs random file names, so names and folder names (often dates and places) do not travel with the photo")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing outputs (default: keep them, so an interrupted batch resumes)")
    parser.add_argument("--method", choices=[m.value for m in Method], default=Method.MOSAIC.value,
                        help="mosaic: coarse 3×3 colour cells with fresh noise, read as a heavy blur (default); "
                             "solid: black fill. Both are irreversible")
    parser.add_argument("--shape", choices=[s.value for s in Shape], default=Shape.ELLIPSE.value,
                        help="shape of each destroyed region (default: ellipse)")
    parser.add_argument("--padding", type=setting_type("padding", float), default=DEFAULT_PADDING, metavar="F",
                        help=f"grow each detected face box by this factor, 1 or more (default: {DEFAULT_PADDING})")
    add_detection_arguments(parser)
    add_geometry_argument(parser)
    parser.add_argument("-j", "--workers", type=_positive_int, metavar="N",
                        help="photos at a time, each in its own process with its share of the cores (default: 1, "
                             "whose detector uses every core: the quickest on 2 cores)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                        help="run on the workers of this Dask cluster instead of local processes; every machine must see "
                             "the photos and DIR at the same paths (needs: pip install 'soft-focus[cluster]')")
    parser.add_argument("--report", metavar="FILE",
                        help="write a report of every file (faces, boxes, status, errors): JSON, or CSV if FILE ends in .csv")
    parser.add_argument("--max-megapixels", type=_positive_float, default=DEFAULT_MAX_PIXELS / 1e6, metavar="N",
                        help=f"refuse larger images (default: {DEFAULT_MAX_PIXELS / 1e6:.0f})")
    parser.add_argument("--quality", type=setting_type("quality", int), default=92, metavar="Q",
                        help="JPEG/WebP quality, 1-100 (default: 92)")
    add_video_arguments(parser)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def add_detection_arguments(parser: argparse.ArgumentParser, show_detector: bool = True) -> None:
    """--detector, --threshold and --fast: the same on every command that finds faces."""
    parser.add_argument("--detector", choices=sorted(DETECTORS), default=DEFAULT_DETECTOR,
                        help=f"face detector (default: {DEFAULT_DETECTOR})" if show_detector else argparse.SUPPRESS)
    parser.add_argument("--threshold", type=setting_type("threshold", float), metavar="T",
                        help="detection threshold between 0 and 1; lower finds more faces and more false alarms")
    parser.add_argument("--min-face", type=setting_type("min_face", float), metavar="PX",
                        help=f"smallest face to look for, in pixels tall (default: {MIN_FACE:.0f}); larger is quicker, "
                             "and faces below it are often missed")
    parser.add_argument("--fast", action="store_true",
                        help=f"the same as --min-face {FAST_MIN_FACE:.0f}: about 2.5 times quicker on 12-MP photos; "
                             f"faces under {FAST_MIN_FACE:.0f} px are found much less often")


def add_geometry_argument(parser: argparse.ArgumentParser) -> None:
    """--keep-geometry: the same on every command that writes photos."""
    parser.add_argument("--keep-geometry", action="store_true",
                        help="keep every pixel where it was: skip the step that unlinks the photo from the camera's "
                             "sensor pattern (a smooth distortion of a few pixels and a crop about 1 %% smaller); "
                             "forensic tools can then match the photo to the phone that took it")


def add_video_arguments(parser: argparse.ArgumentParser) -> None:
    """Options for videos: the same on `blur` and `blur watch`."""
    parser.add_argument("--keep-audio", action="store_true",
                        help="keep a video's sound, re-encoded as AAC with no tags (default: videos are written silent, "
                             "as voices identify people)")
    parser.add_argument("--max-minutes", type=_positive_float, default=VideoLimits.max_seconds / 60, metavar="M",
                        help=f"refuse longer videos (default: {VideoLimits.max_seconds / 60:.0f})")


def video_settings_from(args: argparse.Namespace, settings: Settings) -> VideoSettings:
    """The VideoSettings the arguments choose: the photo settings, sound and the length limit."""
    limits = dataclasses.replace(VideoLimits(), max_seconds=args.max_minutes * 60,
                                 max_frames=round(args.max_minutes * 60 * MAX_FRAME_RATE))
    return VideoSettings(settings, keep_audio=args.keep_audio, limits=limits)


MAX_FRAME_RATE = 240
"""Frames per second allowed for the length limit (slow-motion phone videos film at 240)."""


def detector_options_from(args: argparse.Namespace) -> dict:
    """The detector's options chosen by the arguments of `add_detection_arguments`."""
    options = {} if args.threshold is None else {"threshold": args.threshold}
    if args.fast:
        options["fast"] = True
    if args.min_face is not None:
        options["min_face"] = args.min_face
    return options


def settings_from(args: argparse.Namespace) -> Settings:
    """The Settings the arguments choose; InvalidSetting if they are out of range."""
    return Settings(
        method=Method(args.method),
        shape=Shape(args.shape),
        padding=args.padding,
        detector=args.detector,
        detector_options=detector_options_from(args),
        max_pixels=int(args.max_megapixels * 1e6),
        quality=args.quality,
        keep_geometry=args.keep_geometry,
    )


Subcommand = Callable[[list[str], TextIO, TextIO], int]


def _subcommands() -> dict[str, Subcommand]:
    """`blur NAME ...` runs the subcommand NAME; anything else anonymises the paths given.

    Imported on demand: `blur PATH` does not load the review server, and subcommand modules may
    import helpers from this one.
    """
    from .check import check
    from .review import review
    from .watch import watch_command

    return {"check": check, "review": review, "watch": watch_command}


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run `blur` with `argv` (default: the process arguments) and return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    subcommands = _subcommands()
    if argv and argv[0] in subcommands:
        return subcommands[argv[0]](argv[1:], stdout, stderr)
    meant = difflib.get_close_matches(argv[0], subcommands, 1) if argv and not os.path.lexists(argv[0]) else []
    if meant:
        print(f"blur: '{printable(argv[0])}' is neither a file nor a folder; did you mean 'blur {meant[0]}'?",
              file=stderr)
        return ExitStatus.USAGE
    return anonymise_paths(argv, stdout, stderr)


def anonymise_paths(argv: list[str], stdout: TextIO, stderr: TextIO) -> int:
    """`blur PATH...`: anonymise photos and folders."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 0 for --help/--version and 2 for bad usage
        return int(exc.code or 0)
    try:
        settings = settings_from(args)
    except InvalidSetting as exc:
        print(f"blur: {exc}", file=stderr)
        return ExitStatus.USAGE
    mistake = missing_paths(args.paths) or not_a_folder(args.output, "-o")
    if mistake:
        print(f"blur: {mistake}", file=stderr)
        return ExitStatus.USAGE
    problem = report_location_problem(args)
    if problem and args.random_names:
        print(f"blur: {problem}; with --random-names it would link every random name to its original, "
              "so nothing was done. Write the report elsewhere (e.g. --report report.json)", file=stderr)
        return ExitStatus.USAGE
    if problem:
        print(f"blur: note: {problem}: it names every original photo, so keep it out of what you post", file=stderr)
    try:
        jobs = plan_jobs(args.paths, args.output, random_names=args.random_names, not_read=True)
    except BlurError as exc:  # e.g. the random-names key cannot be kept
        print(f"blur: {exc}", file=stderr)
        return ExitStatus.SOME_FAILED
    photos = sum(not job.not_read for job in jobs)
    noun = "files" if any(job.kind is Kind.VIDEO for job in jobs) else "photos"
    video = video_settings_from(args, settings)
    if not photos:
        copies = own_copies_in(args.paths)
        why = (f": the {copies} files there are copies blur made, which it never anonymises again" if copies > 1 else
               ": the file there is a copy blur made, which it never anonymises again" if copies else "")
        print(f"blur: no photos or videos found in the given folders{why}{_not_read_note(jobs, args)}", file=stderr)
        _report(args, [run_job(job, settings) for job in jobs], stderr)
        return ExitStatus.USAGE
    outcomes: list[Outcome] = []
    stop = SignalStop()

    def request_stop(signum, frame):
        if not stop.is_set():
            print("\nblur: stopping after the photos in progress (each is written whole or not at all; "
                  "a video in progress is dropped) ...",
                  file=stderr, flush=True)
        stop.set()

    previous = install_handlers({signal.SIGINT: request_stop})
    try:
        with _progress(photos, stderr) as bar:
            for outcome in _outcomes(jobs, settings, args, stop, video, VideoProgress(stderr, bar)):
                outcomes.append(outcome)
                if outcome.status is Status.NOT_READ:
                    continue
                _print_line(outcome_line(outcome), bar, stdout)
                if bar is not None:
                    bar.update()
    except InvalidSetting as exc:  # e.g. BLUR_PRECISION names no precision
        print(f"blur: {exc}", file=stderr)
        return ExitStatus.USAGE
    except BlurError as exc:  # e.g. the detector cannot be loaded at all
        print(f"blur: {exc}", file=stderr)
        return ExitStatus.SOME_FAILED
    finally:
        install_handlers(previous)
    counts = summarise(outcomes)
    handled = len(outcomes) - counts[Status.NOT_READ.value]
    kinds = {job.kind for job in jobs if not job.not_read}
    found = _counts_line(counts, photos=Kind.VIDEO not in kinds or Kind.PHOTO in kinds, videos=Kind.VIDEO in kinds)
    if stop.is_set():
        print(f"blur: interrupted after {handled} of {photos} {noun} ({found}{_looked_for(settings)}); "
              f"no partial files were left{geometry_note(outcomes)}. Run the same command again to resume.",
              file=stderr)
    else:
        print(f"blur: {handled} {noun[:-1] if handled == 1 else noun}: {found}{_looked_for(settings)}"
              f"{geometry_note(outcomes)}{_not_read_note(jobs, args)}", file=stderr)
    if not _report(args, outcomes, stderr):
        return ExitStatus.SOME_FAILED
    if stop.is_set():
        return ExitStatus.INTERRUPTED
    return ExitStatus.SOME_FAILED if counts["failed"] else ExitStatus.OK


def _looked_for(settings: Settings) -> str:
    """What the detector looked for, so a bound a person chose (--min-face, --fast) is never silent."""
    used = DETECTORS[settings.detector].resolve(**settings.detector_options)
    return f" (faces looked for from {used['min_face']:g} px tall)" if "min_face" in used else ""


def _counts_line(counts: dict[str, int], photos: bool = True, videos: bool = False) -> str:
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


def _not_read_note(jobs: list[Job], args: argparse.Namespace) -> str:
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
    listed = "" if named else " (the report lists them)" if args.report else " (--report FILE lists them)"
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


def missing_paths(paths: Sequence[str]) -> str | None:
    """What is wrong when some paths given do not exist (a typo, found before any work), or None."""
    missing = [printable(os.fsdecode(path)) for path in paths if not os.path.lexists(path)]
    return f"no such file or folder: {', '.join(missing)}" if missing else None


def not_a_folder(path: str | None, name: str) -> str | None:
    """What is wrong when `path`, to be a folder, is an existing file, or None."""
    if path is not None and os.path.lexists(path) and not os.path.isdir(path):
        return f"{name} {printable(os.fsdecode(path))} is a file, not a folder"
    return None


def report_location_problem(args: argparse.Namespace) -> str | None:
    """Why the report's place is risky (it lies inside the output folder), or None."""
    if not args.report or not args.output:
        return None
    report, output = Path(os.path.abspath(args.report)), Path(os.path.abspath(args.output))
    try:
        report.resolve().relative_to(output.resolve())
    except ValueError:
        return None
    return f"the report {args.report} is inside the output folder {args.output}"


def _outcomes(jobs: list, settings: Settings, args: argparse.Namespace, stop: "SignalStop", video: VideoSettings,
              progress: "VideoProgress"):
    """Outcomes from local worker processes, or from the Dask cluster given with --scheduler."""
    if args.scheduler:
        from blur.cluster import run_on_cluster

        return run_on_cluster(jobs, settings, scheduler=args.scheduler, overwrite=args.overwrite, stop=stop, video=video)
    return run_batch(jobs, settings, workers=args.workers, overwrite=args.overwrite, stop=stop, video=video,
                     progress=progress)


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


class SignalStop:
    """The stop flag that signal handlers set. It takes no lock: a handler runs in the main thread
    between two steps of whatever it interrupted, so waiting there for a lock that the main thread
    holds (as `threading.Event.set` may) would hang the command for good."""

    def __init__(self):
        self.requested = False

    def set(self) -> None:
        self.requested = True

    def is_set(self) -> bool:
        return self.requested

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.requested and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.05))
        return self.requested


def install_handlers(handlers: dict) -> dict:
    """Install signal handlers (only possible in the main thread); return the ones replaced."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.signal(signum, handler) for signum, handler in handlers.items()}


def outcome_line(outcome: Outcome) -> str:
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
    return f"FAILED   {source}: {printable(outcome.error or 'unknown error')}"


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


def _report(args: argparse.Namespace, outcomes: list[Outcome], stderr: TextIO) -> bool:
    if not args.report:
        return True
    try:
        write_report(outcomes, args.report)
    except BlurError as exc:
        print(f"blur: the report was not written: {exc}", file=stderr)
        return False
    return True


class _NoBar:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _progress(total: int, stream: TextIO):
    """A progress bar on an interactive terminal; nothing when output is piped or captured."""
    if total > 1 and hasattr(stream, "isatty") and stream.isatty():
        from tqdm import tqdm

        return tqdm(total=total, unit="photo", file=stream, dynamic_ncols=True)
    return _NoBar()


def _print_line(line: str, bar, stdout: TextIO) -> None:
    if bar is not None:
        bar.write(line, file=stdout)
    else:
        print(line, file=stdout, flush=True)


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def setting_type(name: str, convert: Callable[[str], object]) -> Callable[[str], object]:
    """An argparse type that reads a number and checks it as Settings does (one rule, one message)."""

    def parse(text: str) -> object:
        try:
            return check_setting(name, convert(text))
        except InvalidSetting as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{name} ")) from None

    parse.__name__ = convert.__name__  # argparse names the expected type after it: "invalid float value"
    return parse


def console() -> None:
    """The `blur` command: run, then exit. The work is done and written by then, so a Ctrl-C that
    arrives while Python shuts down (a second press to stop `blur watch`, say) is ignored rather
    than turned into a traceback and a killed process."""
    status = main()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(status)


if __name__ == "__main__":
    console()
