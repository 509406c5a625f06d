"""Encode: fresh file bytes from a pixel array, and the atomic write of those bytes.

The image handed to the encoder is built from the array alone, so it has no metadata to copy;
the save options come from a fixed allow-list (blur.formats). Before it is written, `verify_encoded`
re-reads the result and `verify_no_metadata` walks its container, so a Pillow change that starts
adding metadata fails closed instead of leaking.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from .decode import pillow_pixel_limit
from .errors import OutputError, OutputExists, UnreadableImage, VerificationFailed
from .formats import Format, find_metadata

DEFAULT_QUALITY = 92
"""JPEG and WebP quality of the copies written."""


def encode_image(
    pixels: np.ndarray,
    alpha: np.ndarray | None,
    output: Format,
    quality: int = DEFAULT_QUALITY,
) -> bytes:
    """Encode RGB pixels (and alpha where the format keeps it) into fresh file bytes in `output`,
    a format that is written (blur.formats), with its encoder's allow-listed options."""
    if output.encoder is None:
        raise ValueError(f"{output.name} is read, never written; its copies are written as {output.written_as}")
    if alpha is not None and not output.keeps_alpha:
        pixels = _flatten_on_white(pixels, alpha)
        alpha = None
    if alpha is not None:
        image = Image.fromarray(np.dstack([pixels, alpha]), "RGBA")
    else:
        image = Image.fromarray(np.ascontiguousarray(pixels), "RGB")
    buffer = io.BytesIO()
    output.encoder(image, buffer, quality)
    return buffer.getvalue()


def verify_encoded(data: bytes, output: Format, height: int, width: int) -> None:
    """Raise VerificationFailed unless `data` is a plain image of the expected format and size."""
    try:
        # Twice the size: Pillow warns above half its limit, and this size is the expected one.
        with pillow_pixel_limit(2 * height * width), Image.open(io.BytesIO(data)) as image:
            image.load()
            unexpected = set(image.info) - output.allowed_info
            if image.format != output.name or image.size != (width, height):
                raise VerificationFailed(f"the encoded output is not a {width}×{height} {output.name}")
            if unexpected:
                raise VerificationFailed(f"the encoded output carries metadata ({', '.join(sorted(unexpected))})")
    except VerificationFailed:
        raise
    except Exception as exc:
        raise VerificationFailed(f"the encoded output cannot be read back ({exc})") from None


def verify_no_metadata(data: bytes) -> None:
    """Raise VerificationFailed if the encoded `data` carries anything beyond the image itself: the
    walk of its container that `blur check` does (blur.containers), before every write."""
    try:
        findings = find_metadata(data)
    except UnreadableImage as exc:
        raise VerificationFailed(f"the encoded output cannot be checked for metadata ({exc})") from None
    if findings:
        listed = "; ".join(str(f) for f in findings)
        raise VerificationFailed(f"the encoded output still carries metadata ({listed}), so it was not written")


def write_atomically(data: bytes, destination: Path, *, overwrite: bool = False, private: bool = False) -> None:
    """Write `data` to `destination` completely or not at all.

    The bytes go to a hidden temporary file in the destination folder, are flushed to disk, and are
    then linked (or, with `overwrite`, renamed) into place, so no reader ever sees a partial file.
    The file gets the permissions of any new file (the process's umask), or owner-only if `private`
    (reports, which name the original photos).
    """
    with atomic_output(destination, overwrite=overwrite, private=private) as temporary:
        try:
            temporary.write_bytes(data)
        except OSError as exc:
            raise OutputError(f"cannot write {destination.name} ({exc.strerror or exc})") from None


@contextmanager
def atomic_output(destination: Path, *, overwrite: bool = False, private: bool = False) -> Iterator[Path]:
    """A temporary path in the destination folder to write a file to; when the block ends without
    an exception (Ctrl-C included), the file is flushed to disk and linked (or, with `overwrite`,
    renamed) into place as `destination`. Otherwise, or if that fails, it is deleted: nothing is left.
    An OSError in the block (a full disk while a video is written) becomes an OutputError naming
    `destination`. Permissions as for `write_atomically`."""
    folder = destination.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".blur-{os.getpid()}-", suffix=".part")
    except OSError as exc:
        raise OutputError(f"cannot write in {folder} ({exc.strerror or exc})") from None
    try:
        try:
            if not private and hasattr(os, "fchmod"):  # mkstemp creates files owner-only
                os.fchmod(fd, 0o666 & ~_umask())
        except OSError as exc:
            raise OutputError(f"cannot write {destination.name} ({exc.strerror or exc})") from None
        finally:
            os.close(fd)
        try:
            yield Path(temporary)
        except OSError as exc:
            raise OutputError(f"cannot write {destination.name} ({exc.strerror or exc})") from None
        try:
            with open(temporary, "rb+") as handle:
                os.fsync(handle.fileno())
            if overwrite:
                os.replace(temporary, destination)
            else:
                _link_without_overwrite(temporary, destination)
        except OSError as exc:
            raise OutputError(f"cannot write {destination.name} ({exc.strerror or exc})") from None
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)


def _umask() -> int:
    """The process's umask. Reading it means setting it: set to owner-only meanwhile, so a file
    another thread creates in between is too private rather than too open."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


_TEMPORARY_NAME = re.compile(r"\.blur-([0-9]+)-[a-z0-9_]{8}\.part")
"""The exact names `write_atomically` gives its temporary files: .blur-<writer's pid>-<8 random>.part"""

STALE_AFTER_SECONDS = 600
"""A temporary file unchanged this long is abandoned: a live writer finishes in seconds."""


def remove_stale_temporaries(folder: Path) -> int:
    """Delete temporary files a killed writer left in `folder`; return how many.

    A killed process (SIGKILL, power loss) cannot clean up after itself. Only regular files with
    exactly our temporary names are touched, and only if their writer is no longer running on
    this machine or they have not changed for STALE_AFTER_SECONDS (a writer on another machine
    sharing the folder). Nothing else in the folder is ever deleted.
    """
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        match = _TEMPORARY_NAME.fullmatch(entry.name)
        try:
            if match and entry.is_file(follow_symlinks=False) and (
                time.time() - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_SECONDS
                or not _process_exists(int(match.group(1)))
            ):
                os.unlink(entry.path)
                removed += 1
        except OSError:
            continue
    return removed


def _process_exists(pid: int) -> bool:
    if os.name != "posix":  # os.kill(pid, 0) is not a harmless probe on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, owned by someone else
    return True


def _link_without_overwrite(temporary: str, destination: Path) -> None:
    try:
        os.link(temporary, destination)  # fails if the destination exists: never clobbers
    except FileExistsError:
        raise OutputExists(destination) from None
    except OSError:
        # File systems without hard links (FAT, exFAT on USB sticks): check, then rename.
        if os.path.lexists(destination):
            raise OutputExists(destination) from None
        os.replace(temporary, destination)


def _flatten_on_white(pixels: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite over white, as a viewer would show it, for formats without transparency."""
    weight = alpha.astype(np.float32)[..., None] / 255.0
    return np.rint(pixels * weight + 255.0 * (1.0 - weight)).astype(np.uint8)
