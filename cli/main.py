"""`blur`: the command line. It parses arguments, calls the library, and prints outcomes."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import unicodedata
from enum import IntEnum
from typing import Callable, Sequence, TextIO

from blur import __version__
from blur.anonymise import Method
from blur.batch import Outcome, Status, plan_jobs, run_batch, summarise, write_report
from blur.decode import DEFAULT_MAX_PIXELS
from blur.detect import DETECTORS, DEFAULT_DETECTOR
from blur.errors import BlurError, InvalidSetting
from blur.pipeline import Settings, check_setting
from blur.regions import DEFAULT_PADDING, Shape


class ExitStatus(IntEnum):
    OK = 0
    SOME_FAILED = 1
    USAGE = 2
    INTERRUPTED = 130


SUBCOMMANDS_HELP = """\
other commands (each has its own --help):
  blur review PATH...    check every photo in your web browser: cover missed faces, then save
  blur check FILE...     before posting: list leftover metadata and faces still visible
  blur watch IN OUT      anonymise every photo copied into the folder IN, into OUT, until stopped
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blur",
        description=(
            "Irreversibly destroy every face found in photos and write copies with no metadata "
            "(no GPS, camera serials, times or thumbnails). Originals are never modified. "
            "Check the results by eye before posting: no detector finds every face."
        ),
        epilog=SUBCOMMANDS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="photos, or folders searched recursively")
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
    parser.add_argument("-j", "--workers", type=_positive_int, metavar="N",
                        help="worker processes (default: one per CPU core)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                        help="run on the workers of this Dask cluster instead of local processes; every machine must see "
                             "the photos and DIR at the same paths (needs: pip install 'soft-focus[cluster]')")
    parser.add_argument("--report", metavar="FILE",
                        help="write a report of every file (faces, boxes, status, errors): JSON, or CSV if FILE ends in .csv")
    parser.add_argument("--max-megapixels", type=_positive_float, default=DEFAULT_MAX_PIXELS / 1e6, metavar="N",
                        help=f"refuse larger images (default: {DEFAULT_MAX_PIXELS / 1e6:.0f})")
    parser.add_argument("--quality", type=setting_type("quality", int), default=92, metavar="Q",
                        help="JPEG/WebP quality, 1-100 (default: 92)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def add_detection_arguments(parser: argparse.ArgumentParser, show_detector: bool = True) -> None:
    """--detector, --threshold and --fast: the same on every command that finds faces."""
    parser.add_argument("--detector", choices=sorted(DETECTORS), default=DEFAULT_DETECTOR,
                        help=f"face detector (default: {DEFAULT_DETECTOR})" if show_detector else argparse.SUPPRESS)
    parser.add_argument("--threshold", type=setting_type("threshold", float), metavar="T",
                        help="detection threshold between 0 and 1; lower finds more faces and more false alarms")
    parser.add_argument("--fast", action="store_true",
                        help="look at fewer views of each photo: 2 to 4 times quicker, and misses more small and "
                             "turned faces (measured: 93 %% of crowd faces instead of 95 %%)")


def detector_options_from(args: argparse.Namespace) -> dict:
    """The detector's options chosen by the arguments of `add_detection_arguments`."""
    options = {} if args.threshold is None else {"threshold": args.threshold}
    if args.fast:
        options["fast"] = True
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
    jobs = plan_jobs(args.paths, args.output, random_names=args.random_names)
    if not jobs:
        print("blur: no photos found in the given folders", file=stderr)
        return ExitStatus.USAGE
    outcomes: list[Outcome] = []
    try:
        with _progress(len(jobs), stderr) as bar:
            for outcome in _outcomes(jobs, settings, args):
                outcomes.append(outcome)
                _print_line(outcome_line(outcome), bar, stdout)
                if bar is not None:
                    bar.update()
    except KeyboardInterrupt:
        print(f"\nblur: interrupted after {len(outcomes)} of {len(jobs)} photos; no partial files were left. "
              "Run the same command again to resume.", file=stderr)
        _report(args, outcomes, settings, stderr)
        return ExitStatus.INTERRUPTED
    except BlurError as exc:  # e.g. the detector cannot be loaded at all
        print(f"blur: {exc}", file=stderr)
        return ExitStatus.SOME_FAILED
    counts = summarise(outcomes)
    print(f"blur: {len(outcomes)} photo{'s' * (len(outcomes) != 1)}: {counts['done']} anonymised, {counts['skipped']} already done, "
          f"{counts['failed']} failed; {counts['faces']} faces destroyed", file=stderr)
    if not _report(args, outcomes, settings, stderr):
        return ExitStatus.SOME_FAILED
    return ExitStatus.SOME_FAILED if counts["failed"] else ExitStatus.OK


def _outcomes(jobs: list, settings: Settings, args: argparse.Namespace):
    """Outcomes from local worker processes, or from the Dask cluster given with --scheduler."""
    if args.scheduler:
        from blur.cluster import run_on_cluster

        return run_on_cluster(jobs, settings, scheduler=args.scheduler, overwrite=args.overwrite)
    return run_batch(jobs, settings, workers=args.workers, overwrite=args.overwrite)


def outcome_line(outcome: Outcome) -> str:
    source = printable(os.fsdecode(outcome.source))
    if outcome.status is Status.DONE:
        faces = len(outcome.faces)
        return f"done     {source} -> {printable(os.fsdecode(outcome.destination))} ({faces} face{'s' * (faces != 1)})"
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


def _report(args: argparse.Namespace, outcomes: list[Outcome], settings: Settings, stderr: TextIO) -> bool:
    if not args.report:
        return True
    try:
        write_report(outcomes, args.report, settings)
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
