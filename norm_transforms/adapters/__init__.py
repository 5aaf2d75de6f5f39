"""Thin adapters that fit the kernels into frameworks; they translate calls and hold no math."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any


def warn_if_pixel_scale_looks_wrong(
    transform: object, params: Any, dtype: Any, value_range: Callable[[], tuple[float, float]]
) -> None:
    """Warn (once: the transforms call it on their first image) when ``max_pixel_value`` looks
    wrong for the image's values; the rule is ``NormalizeParams.pixel_scale_mistake``.
    ``value_range`` (a pass over the image) is called only in the standard mode, the only one
    that reads ``max_pixel_value``."""
    if params.mode.statistic is not None:
        return
    mistake = params.pixel_scale_mistake(dtype, *value_range())
    if mistake:
        message = f"{type(transform).__name__}: {mistake}. (Checked on the first image only.)"
        warnings.warn(message, UserWarning, stacklevel=4)
