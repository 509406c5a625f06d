"""Values: the checks every setting goes through where it enters, one rule and one message each.

Each check takes the setting's name and its value, and returns the value as it is held (a float, an
int, an enum member) or raises InvalidSetting with a message a person can act on. `Settings` checks
its fields with them, and each detector in the registry its own options (blur.detect).
"""

from __future__ import annotations

import math
from enum import Enum
from numbers import Integral, Real
from typing import Any, Callable

from .errors import InvalidSetting

Check = Callable[[str, Any], Any]
"""A value check: (name, value) -> the value as held, or InvalidSetting."""


def member(enum: type[Enum]) -> Check:
    """A check that takes `enum`'s members, or their exact values ('mosaic', not 'Mosaic')."""

    def check(name: str, value: Any) -> Enum:
        if isinstance(value, enum):
            return value
        for choice in enum:
            if isinstance(value, str) and value == choice.value:
                return choice
        choices = ", ".join(repr(choice.value) for choice in enum)
        raise InvalidSetting(f"{name} must be one of {choices}, not {value!r}")

    return check


def one_of(choices: Callable[[], Any]) -> Check:
    """A check that takes the names in `choices()` (a registry, looked at when a value is checked)."""

    def check(name: str, value: Any) -> str:
        names = choices()
        if value not in names:
            raise InvalidSetting(f"{name} must be one of {', '.join(map(repr, sorted(names)))}, not {value!r}")
        return value

    return check


def number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise InvalidSetting(f"{name} must be a finite number, not {value!r}")
    return float(value)


def whole(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InvalidSetting(f"{name} must be a whole number, not {value!r}")
    return int(value)


def flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidSetting(f"{name} must be True or False, not {value!r}")
    return value


def at_least(lowest: float, why: str = "") -> Check:
    """A number of at least `lowest`; `why` says what a smaller one would do."""

    def check(name: str, value: Any) -> float:
        value = number(name, value)
        if value < lowest:
            raise InvalidSetting(f"{name} must be at least {lowest:g}{f' ({why})' if why else ''}, not {value:g}")
        return value

    return check


def whole_from(lowest: int, highest: int | None = None) -> Check:
    """A whole number from `lowest` (to `highest`, if given)."""

    def check(name: str, value: Any) -> int:
        value = whole(name, value)
        if highest is None and value < lowest:
            raise InvalidSetting(f"{name} must be {lowest} or more, not {value}")
        if highest is not None and not lowest <= value <= highest:
            raise InvalidSetting(f"{name} must be from {lowest} to {highest}, not {value}")
        return value

    return check


def between(low: float, high: float, unit: str = "") -> Check:
    """A number from `low` to `high`, both included, in `unit` ('pixels')."""

    def check(name: str, value: Any) -> float:
        value = number(name, value)
        if not low <= value <= high:
            raise InvalidSetting(f"{name} must be from {low:g} to {high:g}{f' {unit}' if unit else ''}, not {value:g}")
        return value

    return check


def fraction(name: str, value: Any) -> float:
    """A number strictly between 0 and 1 (a threshold on a score)."""
    value = number(name, value)
    if not 0 < value < 1:
        raise InvalidSetting(f"{name} must be between 0 and 1, not {value:g}")
    return value
