"""`blur watch IN OUT`: anonymise every photo that lands in a hot folder, until stopped."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from typing import TextIO

from blur.anonymise import Method
from blur.report import summarise
from blur.decode import DEFAULT_MAX_PIXELS
from blur.errors import BlurError, InvalidSetting
from blur.regions import DEFAULT_PADDING, Shape
from blur.watch import (DEFAULT_INTERVAL, DEFAULT_SETTLE, REPORT_NAME, STATE_NAME, folders_problem, records_folder,
                        watch_folder)

from .main import (ArgumentParser, ExitStatus, SignalStop, _positive_float, add_detection_arguments,
                   add_geometry_argument, geometry_note, install_handlers, missing_paths, outcome_line,
                   report_location_problem, setting_type, settings_from)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="blur watch",
        description=(
            "Watch the folder IN and anonymise every photo and video copied into it, once the copy is complete, "
            "into OUT (mirroring IN's folders). OUT gets the copies and nothing else: the report, and the list of "
            "files already handled (so a restart does not process them again), name every original, so they are "
            "kept in a private folder of yours, printed at the start. Originals are never modified. Ctrl-C or "
            "SIGTERM stops after the current file; a second Ctrl-C stops at once, leaving no partial file."
        ),
    )
    parser.add_argument("input", metavar="IN", help="the folder to watch (searched recursively)")
    parser.add_argument("output", metavar="OUT", help="the folder for the anonymised copies")
    parser.add_argument("--settle", type=_positive_float, default=DEFAULT_SETTLE, metavar="SECONDS",
                        help=f"a file is complete once its size and time are unchanged this long (default: {DEFAULT_SETTLE:g})")
    parser.add_argument("--interval", type=_positive_float, default=DEFAULT_INTERVAL, metavar="SECONDS",
                        help=f"look for new files this often (default: {DEFAULT_INTERVAL:g})")
    parser.add_argument("--random-names", action="store_true",
                        help="give outputs random file names, so names and folder names do not travel with the photo")
    parser.add_argument("--report", metavar="FILE",
                        help="write the report here instead (JSON, or CSV if FILE ends in .csv); it names every "
                             "original, so keep it out of what you post")
    parser.add_argument("--method", choices=[m.value for m in Method], default=Method.MOSAIC.value,
                        help="mosaic (default) or solid; both are irreversible")
    parser.add_argument("--shape", choices=[s.value for s in Shape], default=Shape.ELLIPSE.value,
                        help="shape of each destroyed region (default: ellipse)")
    parser.add_argument("--padding", type=setting_type("padding", float), default=DEFAULT_PADDING, metavar="F",
                        help=f"grow each detected face box by this factor, 1 or more (default: {DEFAULT_PADDING})")
    add_detection_arguments(parser)
    add_geometry_argument(parser)
    parser.add_argument("--max-megapixels", type=_positive_float, default=DEFAULT_MAX_PIXELS / 1e6, metavar="N",
                        help=f"refuse larger images (default: {DEFAULT_MAX_PIXELS / 1e6:.0f})")
    parser.add_argument("--quality", type=setting_type("quality", int), default=92, metavar="Q", help="JPEG/WebP quality, 1-100 (default: 92)")
    return parser


def watch_command(argv: list[str], stdout: TextIO, stderr: TextIO) -> int:
    """Run `blur watch` until Ctrl-C (exit 130) or SIGTERM (exit 0)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        settings = settings_from(args)
    except InvalidSetting as exc:
        print(f"blur watch: {exc}", file=stderr)
        return ExitStatus.USAGE
    mistake = missing_paths([args.input]) or folders_problem(Path(args.input), Path(args.output))
    if mistake:
        print(f"blur watch: {mistake}", file=stderr)
        return ExitStatus.USAGE
    problem = report_location_problem(args)
    if problem and args.random_names:
        print(f"blur watch: {problem}; with --random-names it would link every random name to its original",
              file=stderr)
        return ExitStatus.USAGE
    report = Path(args.report) if args.report else records_folder(args.output) / REPORT_NAME
    stop = SignalStop()
    working = True  # a photo may be in progress: a second Ctrl-C abandons it
    received: list[int] = []

    def request_stop(signum, frame):
        if stop.is_set() and signum == signal.SIGINT and working:
            raise KeyboardInterrupt  # a second Ctrl-C: abandon the current photo (its write is atomic)
        received.append(signum)
        stop.set()

    previous = install_handlers({signal.SIGINT: request_stop, signal.SIGTERM: request_stop})
    outcomes = []
    try:
        try:
            print(f"blur watch: watching {args.input} -> {args.output}; report in {report}; Ctrl-C to stop",
                  file=stderr, flush=True)
            if problem:
                print(f"blur watch: note: {problem}: it names every original, so keep it out of what you post",
                      file=stderr)
            for earlier in (Path(args.output) / REPORT_NAME, Path(args.output) / STATE_NAME):
                if earlier.is_file() and earlier.resolve() != report.resolve():
                    print(f"blur watch: note: {earlier}, left by an earlier version, names every original: move it "
                          "out of OUT", file=stderr)
            for outcome in watch_folder(args.input, args.output, settings, settle=args.settle, interval=args.interval,
                                        random_names=args.random_names, report=report, stop=stop):
                outcomes.append(outcome)
                print(outcome_line(outcome), file=stdout, flush=True)
        except KeyboardInterrupt:
            working = False
            received.append(signal.SIGINT)
            print("blur watch: stopped at once; the photo in progress was abandoned and left no partial file",
                  file=stderr)
        finally:
            working = False  # from here on, more Ctrl-C only ask for the stop already under way
        counts = summarise(outcomes)
        print(f"blur watch: stopped; {counts['done']} anonymised, {counts['skipped']} already done, "
              f"{counts['failed']} failed this session; report in {report}{geometry_note(outcomes)}", file=stderr)
        return ExitStatus.INTERRUPTED if signal.SIGINT in received else ExitStatus.OK
    except BlurError as exc:
        print(f"blur watch: {exc}", file=stderr)
        return ExitStatus.SOME_FAILED
    finally:
        install_handlers(previous)
