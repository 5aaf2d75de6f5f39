"""The JSON form of ``ChannelStats``: the envelope (format, version, kind, channels, images,
count, a readable summary) around its accumulator's own fields, and the checks that refuse a
state no counting can produce.

Version 1, as ``ChannelStats.save`` writes it::

    {"format": "norm_transforms.ChannelStats", "version": 1, "kind": "uint8", "channels": 3,
     "images": 2, "count": 20, "histogram": [{"values": [...], "counts": [...]}, ...],
     "summary": {"mean": [...], "std": [...], "min": [...], "max": [...]}}

int16 histograms list the pixel values themselves (from -32768). int32 statistics hold the exact
integer ``sum``, ``sum_of_squares``, ``min`` and ``max`` of each channel (JSON integers of any size)
in place of ``histogram``; float statistics ``mean``, ``m2``, ``min`` and ``max`` (float64,
round-tripping). Empty statistics have ``kind`` and ``channels`` null and nothing after ``count``.
``ChannelStats(nonzero=True)`` adds ``"nonzero": true`` (only then, so plain files stay as they
were), its float and int32 statistics add ``nonzero_counts`` (the non-zero pixels of each
channel), and its summary ``counts``; a channel with no non-zero value has ``null`` in the
summary (and 0 for its int32 ``min`` and ``max``).
"""

from __future__ import annotations

import math
from typing import Any

from .accumulators import ACCUMULATORS, Accumulator, accumulator_class
from .checks import integer_field, shown

SCHEMA = "norm_transforms.ChannelStats"
SCHEMA_VERSION = 1


def state_dict(totals: Accumulator | None, images: int, nonzero: bool = False) -> dict[str, Any]:
    """The JSON-ready dict of ``images`` images counted into ``totals`` (``None``: nothing yet)."""
    count = 0 if totals is None else totals.count
    state: dict[str, Any] = {
        "format": SCHEMA,
        "version": SCHEMA_VERSION,
        "kind": None if totals is None else totals.kind,
        "channels": None if totals is None else totals.channels,
        "images": images,
        "count": count,
    }
    if nonzero:
        state["nonzero"] = True
    if totals is not None:
        state.update(totals.state())
    if count:
        summary = totals.summary()
        # NaN (a channel without a non-zero value) is not JSON: null.
        state["summary"] = {
            key: [None if math.isnan(v) else v for v in getattr(summary, key).tolist()]
            for key in ("mean", "std", "min", "max")
        }
        if nonzero:
            state["summary"]["counts"] = totals.channel_counts().tolist()
    return state


def read_state_dict(state: Any) -> tuple[Accumulator | None, int, bool]:
    """The totals (``None`` for empty statistics), image count and ``nonzero`` of a dict that
    :func:`state_dict` wrote, or an error naming the field that is wrong."""
    if not isinstance(state, dict) or state.get("format") != SCHEMA:
        raise ValueError(f"not a ChannelStats dict: expected 'format': {SCHEMA!r}")
    if state.get("version") != SCHEMA_VERSION:
        raise ValueError(
            f"ChannelStats format version {state.get('version')!r} is not supported "
            f"(this version of norm_transforms reads version {SCHEMA_VERSION})"
        )
    kind = state.get("kind")
    images = integer_field(state, "images", 0)
    nonzero = state.get("nonzero", False)
    if not isinstance(nonzero, bool):
        raise TypeError(f"'nonzero' must be true or false (or absent), got {shown(nonzero)}")
    totals = None
    if kind is not None:
        if kind not in ACCUMULATORS:
            kinds = ", ".join(repr(name) for name in ACCUMULATORS)
            raise ValueError(f"'kind' must be {kinds} or null, got {kind!r}")
        channels = integer_field(state, "channels", 1)
        totals = accumulator_class(kind, nonzero).from_state(state, kind, channels)
    count = 0 if totals is None else totals.count
    if images > count:
        raise ValueError(
            f"'images' {images} exceeds 'count' {count} (pixels per channel): every "
            "image counted has at least one pixel, so images <= count"
        )
    return totals, images, nonzero
