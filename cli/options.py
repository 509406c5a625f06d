"""What every command shares: the exit status, the parser, the options that make Settings, and signals.

Every command that anonymises (`blur`, `blur review`, `blur watch`) takes the same settings the same
way (`add_settings_arguments`, `settings_from`); those that take videos take the same video options.
Subcommands import this module and `lines`, never `main`.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import signal
import threading
import time
from enum import IntEnum
from pathlib import Path
from typing import Callable, NoReturn, Sequence, TextIO

from blur.anonymise import Method
from blur.decode import DEFAULT_MAX_PIXELS
from blur.detect import DEFAULT_DETECTOR, DETECTORS
from blur.detect.engines import requested_precision
from blur.encode import DEFAULT_QUALITY
from blur.errors import InvalidSetting
from blur.pipeline import Settings, check_setting
from blur.regions import DEFAULT_PADDING, Shape
from blur.video import VideoLimits, VideoSettings

from .lines import printable


class ExitStatus(IntEnum):
    OK = 0
    SOME_FAILED = 1
    USAGE = 2
    INTERRUPTED = 130


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, but a usage error is one line, naming the option meant when one is misspelt."""

    def error(self, message: str) -> NoReturn:
        unknown = message.removeprefix("unrecognized arguments:").split() if "unrecognized" in message else []
        meant = [match for word in unknown if word.startswith("--")
                 for match in difflib.get_close_matches(word.split("=")[0], self._option_string_actions, 1)]
        hint = f"; did you mean {meant[0]}?" if meant else f" (see {self.prog} --help)"
        self.exit(ExitStatus.USAGE, f"{self.prog}: {message}{hint}\n")


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace | int:
    """The arguments, or the exit status when argparse is done: 0 after --help or --version, 2 on a usage error."""
    try:
        return parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def read_arguments(parser: argparse.ArgumentParser, argv: list[str], stderr: TextIO,
                   *, paths: bool = True) -> tuple[argparse.Namespace, Settings] | int:
    """The arguments and the Settings they choose, or the exit status when there is nothing to do:
    0 after --help or --version, 2 on a usage error, said in one line. With `paths`, the paths given
    must exist and -o must not be a file: a typo is found before any work starts."""
    args = parse(parser, argv)
    if isinstance(args, int):
        return args
    try:
        settings = settings_from(args)
        requested_precision()  # BLUR_PRECISION, read when a detector is built: a typo fails here, not per file
    except InvalidSetting as exc:
        print(f"{parser.prog}: {exc}", file=stderr)
        return ExitStatus.USAGE
    mistake = paths and (missing_paths(args.paths) or not_a_folder(args.output, "-o"))
    if mistake:
        print(f"{parser.prog}: {mistake}", file=stderr)
        return ExitStatus.USAGE
    return args, settings


# --- options -------------------------------------------------------------------------------------

def add_output_arguments(parser: argparse.ArgumentParser, *, folder: bool = True) -> None:
    """-o DIR, --random-names and --overwrite (only --random-names where the output folder is given
    otherwise, as `blur watch`'s OUT)."""
    if folder:
        parser.add_argument("-o", "--output", metavar="DIR",
                            help="write copies under DIR, mirroring folders (default: beside each photo, "
                                 "as NAME.blurred.EXT)")
    parser.add_argument("--random-names", action="store_true",
                        help="give copies random file names, so names and folder names (often dates and places) "
                             "do not travel with the photo")
    if folder:
        parser.add_argument("--overwrite", action="store_true",
                            help="replace copies that already exist (default: keep them, so an interrupted batch "
                                 "resumes)")


def add_report_argument(parser: argparse.ArgumentParser, where: str = "") -> None:
    parser.add_argument("--report", metavar="FILE",
                        help=f"write a report of every file{where} (faces, boxes, status, errors): JSON, or CSV if "
                             "FILE ends in .csv; it names every original, so keep it out of what you post")


def add_settings_arguments(parser: argparse.ArgumentParser, *, videos: bool = False) -> None:
    """Every option that makes the Settings (and, with `videos`, the VideoSettings): the same on each command."""
    parser.add_argument("--method", choices=[m.value for m in Method], default=Method.MOSAIC.value,
                        help="mosaic: coarse 3×3 colour cells with fresh noise, read as a heavy blur (default); "
                             "solid: black fill. Both are irreversible")
    parser.add_argument("--shape", choices=[s.value for s in Shape], default=Shape.ELLIPSE.value,
                        help="shape of each destroyed region (default: ellipse)")
    parser.add_argument("--padding", type=setting_type("padding", float), default=DEFAULT_PADDING, metavar="F",
                        help=f"grow each detected face box by this factor, 1 or more (default: {DEFAULT_PADDING})")
    add_detection_arguments(parser)
    parser.add_argument("--keep-geometry", action="store_true",
                        help="keep every pixel where it was: skip the step that unlinks the photo from the camera's "
                             "sensor pattern (a smooth distortion of a few pixels and a crop about 1 %% smaller); "
                             "forensic tools can then match the photo to the phone that took it")
    parser.add_argument("--max-megapixels", type=positive_float, default=DEFAULT_MAX_PIXELS / 1e6, metavar="N",
                        help=f"refuse larger images (default: {DEFAULT_MAX_PIXELS / 1e6:.0f})")
    parser.add_argument("--quality", type=setting_type("quality", int), default=DEFAULT_QUALITY, metavar="Q",
                        help=f"JPEG/WebP quality, 1-100 (default: {DEFAULT_QUALITY})")
    if videos:
        parser.add_argument("--keep-audio", action="store_true",
                            help="keep a video's sound, re-encoded as AAC with no tags (default: videos are written "
                                 "silent, as voices identify people)")
        parser.add_argument("--max-minutes", type=positive_float, default=VideoLimits.max_seconds / 60, metavar="M",
                            help=f"refuse longer videos (default: {VideoLimits.max_seconds / 60:.0f})")


def add_detection_arguments(parser: argparse.ArgumentParser) -> None:
    """--detector, --threshold, --min-face and --fast, with the defaults the detector's registry entry gives."""
    defaults = DETECTORS[DEFAULT_DETECTOR].defaults
    fast = DETECTORS[DEFAULT_DETECTOR].resolve(fast=True)["min_face"]
    parser.add_argument("--detector", choices=sorted(DETECTORS), default=DEFAULT_DETECTOR,
                        help=f"face detector (default: {DEFAULT_DETECTOR})")
    parser.add_argument("--threshold", type=setting_type("threshold", float), metavar="T",
                        help=f"the bar for small faces, between 0 and 1 (default: {defaults['threshold']:g}); lower "
                             "finds more faces and more false alarms")
    parser.add_argument("--min-face", type=setting_type("min_face", float), metavar="PX",
                        help=f"smallest face to look for, in pixels tall (default: {defaults['min_face']:.0f}); "
                             "larger is quicker, and faces below it are often missed")
    parser.add_argument("--fast", action="store_true",
                        help=f"the same as --min-face {fast:.0f}: about 2.5 times quicker on 12-MP photos; "
                             f"faces under {fast:.0f} px are found much less often")


def detector_options_from(args: argparse.Namespace) -> dict:
    """The detector's options chosen by the arguments of `add_detection_arguments`."""
    options = {} if args.threshold is None else {"threshold": args.threshold}
    if args.fast:
        options["fast"] = True
    if args.min_face is not None:
        options["min_face"] = args.min_face
    return options


def settings_from(args: argparse.Namespace) -> Settings:
    """The Settings the arguments of `add_settings_arguments` choose; InvalidSetting if out of range."""
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


def video_settings_from(args: argparse.Namespace, settings: Settings) -> VideoSettings:
    """The VideoSettings the arguments choose: the photo settings, sound and the length limit."""
    limits = dataclasses.replace(VideoLimits(), max_seconds=args.max_minutes * 60,
                                 max_frames=round(args.max_minutes * 60 * MAX_FRAME_RATE))
    return VideoSettings(settings, keep_audio=args.keep_audio, limits=limits)


MAX_FRAME_RATE = 240
"""Frames per second allowed for the length limit (slow-motion phone videos film at 240)."""


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def positive_int(text: str) -> int:
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


# --- usage checks, before any work --------------------------------------------------------------

def missing_paths(paths: Sequence[str]) -> str | None:
    """What is wrong when some paths given do not exist (a typo, found before any work), or None."""
    missing = [printable(os.fsdecode(path)) for path in paths if not os.path.lexists(path)]
    return f"no such file or folder: {', '.join(missing)}" if missing else None


def not_a_folder(path: str | None, name: str) -> str | None:
    """What is wrong when `path`, to be a folder, is an existing file, or None."""
    if path is not None and os.path.lexists(path) and not os.path.isdir(path):
        return f"{name} {printable(os.fsdecode(path))} is a file, not a folder"
    return None


def report_location_problem(report: str | None, output: str | None) -> str | None:
    """Why the report's place is risky (it lies inside the output folder), or None."""
    if not report or not output:
        return None
    try:
        Path(os.path.abspath(report)).resolve().relative_to(Path(os.path.abspath(output)).resolve())
    except ValueError:
        return None
    return f"the report {report} is inside the output folder {output}"


# --- signals -------------------------------------------------------------------------------------

class SignalStop:
    """The stop flag that signal handlers set (a blur.stop.StopRequest). It takes no lock: a handler
    runs in the main thread between two steps of whatever it interrupted, so waiting there for a lock
    that the main thread holds (as `threading.Event.set` may) would hang the command for good."""

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


def say_from_handler(stream: TextIO, line: str) -> None:
    """Print `line` from a signal handler: at once, and never a crash if the handler interrupted a
    write to the same stream (a buffered stream refuses a write inside its own write)."""
    try:
        print(line, file=stream, flush=True)
    except RuntimeError:
        pass


def install_handlers(handlers: dict) -> dict:
    """Install signal handlers (only possible in the main thread); return the ones replaced."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.signal(signum, handler) for signum, handler in handlers.items()}
