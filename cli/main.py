"""`blur`: the command line. It parses arguments, calls the library, and prints outcomes.

`blur PATH...` anonymises photos and videos (this module); `blur check`, `blur review` and
`blur watch` are subcommands of their own modules. What they share is in `options` and `lines`.
"""

from __future__ import annotations

import argparse
import difflib
import os
import signal
import sys
from typing import Callable, Iterator, Sequence, TextIO

from blur import __version__
from blur.batch import run_batch, run_job
from blur.detect import DETECTORS
from blur.errors import BlurError, InvalidSetting
from blur.formats import VIDEOS_READ
from blur.jobs import Job, own_copies_in, plan_jobs
from blur.kinds import Kind
from blur.pipeline import Settings
from blur.report import Outcome, Status, summarise, write_report
from blur.video import VideoSettings

from .lines import (VideoProgress, counts_line, geometry_note, not_read_note, outcome_line, print_line, printable,
                    progress_bar)
from .options import (ArgumentParser, ExitStatus, SignalStop, add_output_arguments, add_report_argument,
                      add_settings_arguments, install_handlers, positive_int, read_arguments, report_location_problem,
                      say_from_handler, video_settings_from)

SUBCOMMANDS_HELP = """\
other commands (each has its own --help):
  blur review PATH...    check every photo in your web browser: cover missed faces, then save
  blur check FILE...     before posting: list leftover metadata and faces still visible
  blur watch IN OUT      anonymise every photo and video copied into the folder IN, into OUT, until stopped
"""


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
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help=f"photos, videos ({VIDEOS_READ}), or folders searched recursively")
    add_output_arguments(parser)
    add_settings_arguments(parser, videos=True)
    parser.add_argument("-j", "--workers", type=positive_int, metavar="N",
                        help="photos at a time, each in its own process with its share of the cores (default: 1, "
                             "whose detector uses every core: the quickest on 2 cores)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                        help="run on the workers of this Dask cluster instead of local processes; every machine must see "
                             "the photos and DIR at the same paths (needs: pip install 'soft-focus[cluster]')")
    add_report_argument(parser)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


Subcommand = Callable[[list[str], TextIO, TextIO], int]


def _subcommands() -> dict[str, Subcommand]:
    """`blur NAME ...` runs the subcommand NAME; anything else anonymises the paths given.

    Imported on demand: `blur PATH` does not load the review server.
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
    read = read_arguments(build_parser(), argv, stderr)
    if isinstance(read, int):
        return read
    args, settings = read
    problem = report_location_problem(args.report, args.output)
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
        print(f"blur: no photos or videos found in the given folders{why}{not_read_note(jobs, args.report)}", file=stderr)
        _report(args, [run_job(job, settings) for job in jobs], stderr)
        return ExitStatus.USAGE
    outcomes: list[Outcome] = []
    stop = SignalStop()

    def request_stop(signum, frame):
        if not stop.is_set():
            say_from_handler(stderr, "\nblur: stopping after the photos in progress (each is written whole or not "
                                     "at all; a video in progress is dropped) ...")
        stop.set()

    previous = install_handlers({signal.SIGINT: request_stop})
    try:
        with progress_bar(photos, stderr) as bar:
            for outcome in _outcomes(jobs, settings, args, stop, video, VideoProgress(stderr, bar)):
                outcomes.append(outcome)
                if outcome.status is Status.NOT_READ:
                    continue
                print_line(outcome_line(outcome), bar, stdout)
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
    found = counts_line(counts, photos=Kind.VIDEO not in kinds or Kind.PHOTO in kinds, videos=Kind.VIDEO in kinds)
    if stop.is_set():
        print(f"blur: interrupted after {handled} of {photos} {noun} ({found}{_looked_for(settings)}); "
              f"no partial files were left{geometry_note(outcomes)}. Run the same command again to resume.",
              file=stderr)
    else:
        print(f"blur: {handled} {noun[:-1] if handled == 1 else noun}: {found}{_looked_for(settings)}"
              f"{geometry_note(outcomes)}{not_read_note(jobs, args.report)}", file=stderr)
    if not _report(args, outcomes, stderr):
        return ExitStatus.SOME_FAILED
    if stop.is_set():
        return ExitStatus.INTERRUPTED
    return ExitStatus.SOME_FAILED if counts["failed"] else ExitStatus.OK


def _looked_for(settings: Settings) -> str:
    """What the detector looked for, so a bound a person chose (--min-face, --fast) is never silent."""
    used = DETECTORS[settings.detector].resolve(**settings.detector_options)
    return f" (faces looked for from {used['min_face']:g} px tall)" if "min_face" in used else ""


def _outcomes(jobs: list[Job], settings: Settings, args: argparse.Namespace, stop: SignalStop, video: VideoSettings,
              progress: VideoProgress) -> Iterator[Outcome]:
    """Outcomes from local worker processes, or from the Dask cluster given with --scheduler."""
    if args.scheduler:
        from blur.cluster import run_on_cluster

        return run_on_cluster(jobs, settings, scheduler=args.scheduler, overwrite=args.overwrite, stop=stop, video=video)
    return run_batch(jobs, settings, workers=args.workers, overwrite=args.overwrite, stop=stop, video=video,
                     progress=progress)


def _report(args: argparse.Namespace, outcomes: list[Outcome], stderr: TextIO) -> bool:
    if not args.report:
        return True
    try:
        write_report(outcomes, args.report)
    except BlurError as exc:
        print(f"blur: the report was not written: {exc}", file=stderr)
        return False
    return True


def console() -> None:
    """The `blur` command: run, then exit. The work is done and written by then, so a Ctrl-C that
    arrives while Python shuts down (a second press to stop `blur watch`, say) is ignored rather
    than turned into a traceback and a killed process."""
    status = main()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(status)


if __name__ == "__main__":
    console()
