"""`blur watch IN OUT`: anonymise every photo and video that lands in a hot folder, until stopped."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from typing import TextIO

from blur.errors import BlurError
from blur.report import summarise
from blur.watch import (DEFAULT_INTERVAL, DEFAULT_SETTLE, REPORT_NAME, STATE_NAME, folders_problem, records_folder,
                        watch_folder)

from .lines import geometry_note, outcome_line
from .options import (ArgumentParser, ExitStatus, SignalStop, add_output_arguments, add_report_argument,
                      add_settings_arguments, install_handlers, missing_paths, positive_float, read_arguments,
                      report_location_problem, say_from_handler, video_settings_from)


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
    parser.add_argument("--settle", type=positive_float, default=DEFAULT_SETTLE, metavar="SECONDS",
                        help=f"a file is complete once its size and time are unchanged this long (default: {DEFAULT_SETTLE:g})")
    parser.add_argument("--interval", type=positive_float, default=DEFAULT_INTERVAL, metavar="SECONDS",
                        help=f"look for new files this often (default: {DEFAULT_INTERVAL:g})")
    add_output_arguments(parser, folder=False)
    add_report_argument(parser, " handled, here instead of the private folder")
    add_settings_arguments(parser, videos=True)
    return parser


def watch_command(argv: list[str], stdout: TextIO, stderr: TextIO) -> int:
    """Run `blur watch` until Ctrl-C (exit 130) or SIGTERM (exit 0)."""
    read = read_arguments(build_parser(), argv, stderr, paths=False)
    if isinstance(read, int):
        return read
    args, settings = read
    video = video_settings_from(args, settings)
    mistake = missing_paths([args.input]) or folders_problem(Path(args.input), Path(args.output))
    if mistake:
        print(f"blur watch: {mistake}", file=stderr)
        return ExitStatus.USAGE
    problem = report_location_problem(args.report, args.output)
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
        if not stop.is_set():
            again = "; Ctrl-C again to stop at once" if signum == signal.SIGINT and working else ""
            say_from_handler(stderr, f"blur watch: stopping after the file in progress{again} ...")
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
                                        random_names=args.random_names, report=report, stop=stop, video=video):
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
