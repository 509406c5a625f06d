"""The review page's requests, read strictly: exactly what the page sends, or BadRequest.

A body is UTF-8 JSON of one fixed shape. Anything else (another type, an unknown field, a
duplicate key, NaN, nesting deeper than the page ever sends) refuses the whole request, so a
mistake can never be read as a different choice: the string "false" is not a boolean, and a
face is never kept visible by accident.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np

from ..anonymise import Method
from ..regions import Shape
from .photos import PERSON, Changes, RegionEdit

MAX_BODY_BYTES = 2 << 20
"""The largest body read: a few thousand boxes. A longer one is refused before it is read."""

MAX_DEPTH = 3
"""Nesting of the deepest body the page sends: an object, its list of regions, each region an object."""

_CHANGE_FIELDS = frozenset({"method", "shape", "regions"})
_EXPORT_FIELDS = _CHANGE_FIELDS | {"replace"}
_REGION_FIELDS = frozenset({"x0", "y0", "x1", "y1", "keep", "score", "source"})
_CONTENT_TYPE = re.compile(r"application/json\s*(;\s*charset\s*=\s*\"?utf-8\"?\s*)?", re.IGNORECASE)
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"?', re.DOTALL)  # linear: the closing quote may be missing
_INDEX = re.compile(r"[0-9]{1,7}", re.ASCII)


class BadRequest(Exception):
    """The request is not what the page sends; the message says what was wrong."""


def is_json_content_type(value: str | None) -> bool:
    """True for `application/json`, alone or with `charset=utf-8`, and nothing else."""
    return value is not None and _CONTENT_TYPE.fullmatch(value.strip()) is not None


def parse_json(data: bytes) -> object:
    """The JSON value in `data`, refusing invalid UTF-8, duplicate keys, NaN and deep nesting."""
    if len(data) > MAX_BODY_BYTES:
        raise BadRequest("the request is too large")
    if json_depth(data) > MAX_DEPTH:
        raise BadRequest("the request is nested deeper than the page ever sends")
    try:
        text = data.decode("utf-8")
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise BadRequest("the request is not valid JSON") from None


def json_depth(data: bytes) -> int:
    """How deeply arrays and objects nest in `data`, brackets inside strings not counted (linear time)."""
    brackets = np.frombuffer(_STRING.sub(b"", data), np.uint8)
    brackets = brackets[np.isin(brackets, np.frombuffer(b"[]{}", np.uint8))]
    if not len(brackets):
        return 0
    steps = np.where(np.isin(brackets, np.frombuffer(b"[{", np.uint8)), 1, -1)
    return int(np.cumsum(steps).max())


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise BadRequest("a field is given twice")
    return dict(pairs)


def _no_constant(name: str) -> None:
    raise BadRequest(f"{name} is not a number")


def parse_changes(body: object) -> Changes:
    """A PUT or preview body: {"method"?, "shape"?, "regions"?}, each of its exact type."""
    return _changes(_object(body, _CHANGE_FIELDS, "the request"))


def parse_export(body: object) -> tuple[Changes, bool]:
    """An export body: the changes, plus "replace": true to replace a copy that already exists."""
    fields = _object(body, _EXPORT_FIELDS, "the request")
    replace = fields.get("replace", False)
    if not isinstance(replace, bool):
        raise BadRequest('"replace" must be true or false')
    return _changes(fields), replace


def parse_photos_query(query: str) -> int | None:
    """The `current=N` of GET api/photos (the photo on screen), or None when there is no query."""
    if not query:
        return None
    name, equals, value = query.partition("=")
    if name != "current" or not equals or not _INDEX.fullmatch(value):
        raise BadRequest("the only question api/photos takes is current=N")
    return int(value)


def _changes(fields: dict) -> Changes:
    method = _enum(Method, fields, "method")
    shape = _enum(Shape, fields, "shape")
    regions = None
    if "regions" in fields:
        if not isinstance(fields["regions"], list):
            raise BadRequest('"regions" must be a list of boxes')
        regions = tuple(_region(item) for item in fields["regions"])
    return Changes(method, shape, regions)


def _object(value: object, allowed: frozenset[str], what: str) -> dict:
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be a JSON object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise BadRequest(f"{what} has fields the page never sends: {', '.join(unknown)[:200]}")
    return value


def _enum(kind, fields: dict, name: str):
    if name not in fields:
        return None
    value = fields[name]
    allowed = [member.value for member in kind]
    if not isinstance(value, str) or value not in allowed:
        raise BadRequest(f'"{name}" must be one of {", ".join(allowed)}')
    return kind(value)


def _region(item: object) -> RegionEdit:
    fields = _object(item, _REGION_FIELDS, "a region")
    corners = []
    for name in ("x0", "y0", "x1", "y1"):
        if name not in fields:
            raise BadRequest(f"a region needs x0, y0, x1 and y1; {name} is missing")
        corners.append(_number(fields[name], name))
    keep = fields.get("keep", False)
    if not isinstance(keep, bool):
        raise BadRequest('"keep" must be true or false')
    score = _number(fields.get("score", 1.0), "score")
    if not 0.0 <= score <= 1.0:
        raise BadRequest('"score" must be between 0 and 1')
    source = fields.get("source", PERSON)
    if not isinstance(source, str) or not 0 < len(source) <= 40:
        raise BadRequest('"source" must be a short name')
    return RegionEdit(*corners, keep=keep, score=score, source=source)


def _number(value: object, name: str) -> float:
    try:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError
        return float(value)
    except (ValueError, OverflowError):  # an integer past any float
        raise BadRequest(f'"{name}" must be a number') from None
