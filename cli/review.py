"""`blur review PHOTOS|FOLDER`: check and correct every photo in the browser before saving it."""

from __future__ import annotations

import argparse
import logging
import webbrowser
from typing import TextIO

from blur.errors import BlurError
from blur.review import ReviewServer, ReviewSession

from .options import ArgumentParser, ExitStatus, add_output_arguments, add_settings_arguments, read_arguments


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="blur review",
        description=(
            "Open a page in your web browser to check every photo: see the faces found, cover faces that "
            "were missed, remove false alarms, then save blurred copies with no metadata. The page runs "
            "only on this computer and needs no internet. Originals are never modified."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="photos, or folders searched recursively")
    add_output_arguments(parser)
    add_settings_arguments(parser)
    parser.add_argument("--no-browser", action="store_true",
                        help="do not open a browser; only print the page's address")
    return parser


def review(argv: list[str], stdout: TextIO, stderr: TextIO) -> int:
    """Serve the review page until the person presses Finish or Ctrl-C."""
    read = read_arguments(build_parser(), argv, stderr)
    if isinstance(read, int):
        return read
    args, settings = read
    try:
        detector = settings.open_detector()  # fail now, with one clear message, rather than on every photo
        session = ReviewSession(args.paths, settings, output_dir=args.output, random_names=args.random_names,
                                overwrite=args.overwrite, detector=detector)
    except BlurError as exc:
        print(f"blur: {exc}", file=stderr)
        return ExitStatus.SOME_FAILED
    if not session.photos:
        print("blur: no photos found in the given folders", file=stderr)
        return ExitStatus.USAGE
    server = ReviewServer(session)
    log = _log_to(stderr)
    print(f"blur: reviewing {len(session.photos)} photo{'s' * (len(session.photos) != 1)} at\n\n    {server.url}\n\n"
          "Keep this window open while you work. Press Finish on the page, or Ctrl-C here, to stop.",
          file=stdout, flush=True)
    if not args.no_browser and not webbrowser.open(server.url):
        print("blur: could not open a browser; copy the address above into one", file=stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nblur: review stopped", file=stderr)
        return ExitStatus.INTERRUPTED
    finally:
        server.stop()
        logging.getLogger("blur.review").removeHandler(log)
    saved = sum(photo.exported is not None for photo in session.photos)
    print(f"blur: review finished; {saved} photo{'s' * (saved != 1)} saved", file=stderr)
    return ExitStatus.OK


def _log_to(stderr: TextIO) -> logging.Handler:
    """Show the server's one-line notes (refused or failed requests) on `stderr`."""
    handler = logging.StreamHandler(stderr)
    handler.setFormatter(logging.Formatter("blur review: %(message)s"))
    logger = logging.getLogger("blur.review")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return handler
