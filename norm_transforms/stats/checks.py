"""Checked reads of what users hand ``ChannelStats``: the fields of a saved state and the
percentiles asked for, each error naming the field, what it holds and what is accepted.

Why checked by hand: a JSON file can hold anything, and NumPy would turn ``null`` into NaN, fail
on a string with a message that names no field, or read ``true`` as 1 and ``"50"`` as 50. The
saved fields are read by the envelope (serialization.py) and by each accumulator's own fields
(accumulators.py).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np


def shown(value: Any, limit: int = 200) -> str:
    """``repr(value)``, cut short: a corrupt field can be a list of 65536 entries."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({type(value).__name__})"


def integer_field(state: dict[str, Any], key: str, minimum: int) -> int:
    """``state[key]``, an integer >= ``minimum`` (0 or 1), or an error naming the field."""
    value = state.get(key)
    accepted = "a non-negative integer" if minimum == 0 else "a positive integer"
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"'{key}' must be {accepted}, got {shown(value)}")
    if value < minimum:
        raise ValueError(f"'{key}' must be {accepted}, got {value!r}")
    return value


def integer_list(entries: Any, what: str) -> list[int]:
    """A JSON list of integers (not booleans, not floats, however whole), or a TypeError naming
    the first entry that is not one."""
    if not isinstance(entries, list):
        raise TypeError(f"{what} must be a list of integers, got {shown(entries)}")
    for entry in entries:
        if type(entry) is not int:
            raise TypeError(f"{what} must hold integers, got {shown(entry)}")
    return entries


def float_list(state: dict[str, Any], key: str, channels: int) -> np.ndarray:
    """``state[key]``: one finite number per channel, as float64 (NumPy would turn null into
    NaN and fail on a string with its own message)."""
    entries = state.get(key)
    accepted = f"a list of {channels} finite numbers (one per channel)"
    if not isinstance(entries, list):
        raise TypeError(f"'{key}' must be {accepted}, got {shown(entries)}")
    if len(entries) != channels:
        raise ValueError(f"'{key}' must be {accepted}, got {len(entries)}: {shown(entries)}")
    for entry in entries:
        if not isinstance(entry, numbers.Real) or isinstance(entry, bool):
            raise TypeError(f"'{key}' must be {accepted}, got {shown(entry)} in {shown(entries)}")
    try:
        values = np.array(entries, dtype=np.float64)
    except OverflowError:  # an integer beyond float64
        values = np.full(channels, np.inf)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"'{key}' must be {accepted}, got {shown(entries)}")
    return values


def percentile_points(q: Any) -> np.ndarray:
    """``q`` as float64 percentiles (0-d or 1-D), or an error naming ``q``: a ``TypeError`` for
    what is not numbers (NumPy would fail on "a" with its own message, and read "50" as 50),
    a ``ValueError`` for numbers outside [0, 100] or nested deeper than a sequence."""
    accepted = "a number or a 1-D sequence of numbers in [0, 100]"
    try:
        points = np.asarray(q)
    except ValueError:  # ragged nesting
        points = None
    if points is not None and points.dtype == object:
        # Fractions, Decimals...: numbers NumPy keeps as objects.
        if all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in points.flat):
            points = points.astype(np.float64)
    if points is None or points.dtype.kind not in "iuf":
        raise TypeError(f"q must be {accepted}, got {shown(q)}")
    points = points.astype(np.float64)
    fractions = points / 100.0
    if points.ndim > 1 or not np.all((fractions >= 0) & (fractions <= 1)):
        raise ValueError(f"q must be {accepted}, got {shown(q)}")
    return points
