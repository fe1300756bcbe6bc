"""Refusing a bad setting, always in one shape: the field, the value, and what is allowed.

Numbers are checked for their type first (a bool is not a number here; numpy scalars are),
then converted and stored as plain Python ``int`` / ``float``, so that a value as large as
``10**400`` is refused by its range instead of overflowing somewhere later.
"""

from __future__ import annotations

import math
import numbers
from typing import NoReturn

#: The largest integer a seed or size may be: torch and numpy hold them as int64.
INT64_MAX = 2**63 - 1


def refuse(field: str, value: object, allowed: str) -> NoReturn:
    raise ValueError(f"{field}={_short(value)} is not allowed: {allowed}")


def _short(value: object) -> str:
    """``repr(value)``, cut short: a 400-digit number or a long list stays readable."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}...({len(text)} characters)"


def check_flag(owner: object, field: str) -> None:
    value = getattr(owner, field)
    if not isinstance(value, bool):
        refuse(field, value, "True or False")


def check_choice(owner: object, field: str, choices: tuple[str, ...]) -> None:
    value = getattr(owner, field)
    if not isinstance(value, str) or value not in choices:
        refuse(field, value, f"one of {choices}")


def check_int(owner: object, field: str, minimum: int, maximum: int = INT64_MAX) -> None:
    """An integer (not a bool) in ``[minimum, maximum]``, stored as an ``int``."""
    value = getattr(owner, field)
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or not minimum <= value <= maximum
    ):
        refuse(field, value, f"an integer >= {minimum} and <= {maximum}")
    object.__setattr__(owner, field, int(value))


def real_number(value: object) -> float | None:
    """``value`` as a finite float, or None: not a real number, a bool, or not finite."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def check_float(
    owner: object, field: str, low: float, high: float = math.inf, low_open: bool = False
) -> None:
    """A finite real number (not a bool) in ``[low, high]``, or ``(low, high]`` with
    ``low_open``, stored as a ``float``."""
    number = real_number(getattr(owner, field))
    if number is None or not (number > low if low_open else number >= low) or number > high:
        bound = f"> {low}" if low_open else f">= {low}"
        upper = "" if high == math.inf else f" and <= {high}"
        refuse(field, getattr(owner, field), f"a finite number {bound}{upper}")
    object.__setattr__(owner, field, number)
