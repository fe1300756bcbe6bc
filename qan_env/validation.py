"""Refusing a bad setting, always in one shape: the field, the value, and what is allowed."""

from __future__ import annotations

import math
from typing import NoReturn


def refuse(field: str, value: object, allowed: str) -> NoReturn:
    raise ValueError(f"{field}={value!r} is not allowed: {allowed}")


def check_flag(owner: object, field: str) -> None:
    value = getattr(owner, field)
    if not isinstance(value, bool):
        refuse(field, value, "True or False")


def check_choice(owner: object, field: str, choices: tuple[str, ...]) -> None:
    value = getattr(owner, field)
    if value not in choices:
        refuse(field, value, f"one of {choices}")


def check_int(owner: object, field: str, minimum: int) -> None:
    value = getattr(owner, field)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        refuse(field, value, f"an integer >= {minimum}")


def check_float(
    owner: object, field: str, low: float, high: float = math.inf, low_open: bool = False
) -> None:
    """A real number (not a bool) in ``[low, high]``, or ``(low, high]`` with ``low_open``."""
    value = getattr(owner, field)
    ok = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value > low if low_open else value >= low)
        and value <= high
    )
    if not ok:
        bound = f"> {low}" if low_open else f">= {low}"
        upper = "" if high == math.inf else f" and <= {high}"
        refuse(field, value, f"a finite number {bound}{upper}")
