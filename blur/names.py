"""Names: random output names that are the same on every run, and that only this tool recognises.

`--random-names` hides file and folder names (dates, places), so nothing in the output folder may
link a random name back to its original. Yet a rerun must find the copies it already wrote (to
resume, not duplicate), and must not take them for new photos when they sit among the inputs.

Both come from a secret key kept outside the output folder, in the user's data folder (created on
first use, readable by the user alone): a photo's name is a keyed hash of its content (the same
photo gets the same name on every run), followed by a keyed tag of that hash, by which the tool
recognises its own outputs. Without the key neither says anything about the photo; with it, one
still needs the original photo to find its copy.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import string
from pathlib import Path

from .errors import OutputError

_HASH_DIGITS = 16
"""64 bits of the photo's keyed hash: two different photos of one batch share a name about once in 10^11 batches of 10^4."""
_TAG_DIGITS = 8
"""32 bits of tag: a stranger's file named like ours is taken for ours about once in 4·10^9."""
NAME_LENGTH = _HASH_DIGITS + _TAG_DIGITS
_HEX = frozenset(string.hexdigits.lower())
KEY_NAME = "random-names.key"


def key_folder() -> Path:
    """Where the key lives: the user's data folder for soft-focus, never beside photos or outputs."""
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "soft-focus"
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "soft-focus"


def random_stem(source: Path) -> str:
    """The random output name (without extension) for the photo at `source`: the same for the same content."""
    key = _key(create=True)
    try:
        digest = _content_hash(source)
    except OSError:  # it will fail when read for anonymising, with the reason; the name is never used
        return secrets.token_hex(NAME_LENGTH // 2)
    name = hmac.new(key, b"name\0" + digest, hashlib.sha256).hexdigest()[:_HASH_DIGITS]
    return name + _tag(key, name)


def is_random_output(path: Path) -> bool:
    """Whether the file at `path` has a random name this tool (with this user's key) gave it."""
    stem = path.stem
    if len(stem) != NAME_LENGTH or not set(stem) <= _HEX:
        return False
    key = _key(create=False)
    return key is not None and hmac.compare_digest(stem[_HASH_DIGITS:], _tag(key, stem[:_HASH_DIGITS]))


def _tag(key: bytes, name: str) -> str:
    return hmac.new(key, b"tag\0" + name.encode("ascii"), hashlib.sha256).hexdigest()[:_TAG_DIGITS]


def _content_hash(path: Path) -> bytes:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.digest()


def _key(create: bool) -> bytes | None:
    path = key_folder() / KEY_NAME
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        return _create_key(path) if create else None
    except OSError as exc:
        raise OutputError(f"cannot read the random-names key {path} ({exc.strerror or exc})") from None
    if len(key) < 32:
        raise OutputError(f"the random-names key {path} is damaged; move it away to start with a new one")
    return key


def _create_key(path: Path) -> bytes:
    key = secrets.token_bytes(32)
    temporary = path.with_name(f".{KEY_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # another process may have made one meanwhile: then use that
        except FileExistsError:
            return path.read_bytes()
        except OSError:  # no hard links on this file system
            if os.path.lexists(path):
                return path.read_bytes()
            os.replace(temporary, path)
        return key
    except OSError as exc:
        raise OutputError(
            f"cannot keep the random-names key in {path.parent} ({exc.strerror or exc}); without it, "
            "reruns cannot recognise the copies already made"
        ) from None
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)
