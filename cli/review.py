"""`blur review PHOTOS|FOLDER`: check and correct every photo in the browser before saving it."""

from __future__ import annotations

import argparse
import logging
import webbrowser
from typing import TextIO

from blur.anonymise import Method
from blur.errors import BlurError, InvalidSetting
from blur.pipeline import Settings
from blur.regions import DEFAULT_PADDING, Shape
from blur.review import ReviewServer, ReviewSession

from .main import (ArgumentParser, ExitStatus, add_detection_arguments, add_geometry_argument, detector_options_from,
                   missing_paths, not_a_folder, setting_type)


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
    parser.add_argument("-o", "--output", metavar="DIR",
                        help="save copies under DIR, mirroring folders (default: beside each photo, as NAME.blurred.EXT)")
    parser.add_argument("--random-names", action="store_true",
                        help="give saved copies random file names (names often hold dates and places)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace copies that already exist (default: keep them and report it)")
    parser.add_argument("--method", choices=[m.value for m in Method], default=Method.MOSAIC.value,
                        help="how faces are hidden at first; the page can change it per photo (default: mosaic)")
    parser.add_argument("--shape", choices=[s.value for s in Shape], default=Shape.ELLIPSE.value,
                        help="shape of hidden areas at first (default: ellipse)")
    parser.add_argument("--padding", type=setting_type("padding", float), default=DEFAULT_PADDING, metavar="F",
                        help=f"grow each detected face box by this factor, 1 or more (default: {DEFAULT_PADDING})")
    add_detection_arguments(parser, show_detector=False)
    add_geometry_argument(parser)
    parser.add_argument("--no-browser", action="store_true",
                        help="do not open a browser; only print the page's address")
    return parser


def review(argv: list[str], stdout: TextIO, stderr: TextIO) -> int:
    """Serve the review page until the person presses Finish or Ctrl-C."""

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        settings = Settings(method=args.method, shape=args.shape, padding=args.padding, detector=args.detector,
                            detector_options=detector_options_from(args), keep_geometry=args.keep_geometry)
    except InvalidSetting as exc:
        print(f"blur: {exc}", file=stderr)
        return ExitStatus.USAGE
    mistake = missing_paths(args.paths) or not_a_folder(args.output, "-o")
    if mistake:
        print(f"blur review: {mistake}", file=stderr)
        return ExitStatus.USAGE
    try:
        settings.load_detector()  # fail now, with one clear message, rather than on every photo
        session = ReviewSession(args.paths, settings, output_dir=args.output, random_names=args.random_names,
                                overwrite=args.overwrite)
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
