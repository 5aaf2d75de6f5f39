"""Thin adapters that fit the kernels into frameworks; they translate calls and hold no math."""

from __future__ import annotations

import warnings
from typing import Any


def warn_if_pixel_scale_looks_wrong(
    transform: object, params: Any, dtype: Any, value_range: tuple[float, float]
) -> None:
    """Warn (once: the transforms call it on their first image) when ``max_pixel_value`` looks
    wrong for the image's values; the rule is ``NormalizeParams.pixel_scale_mistake``."""
    mistake = params.pixel_scale_mistake(dtype, *value_range)
    if mistake:
        message = f"{type(transform).__name__}: {mistake}. (Checked on the first image only.)"
        warnings.warn(message, UserWarning, stacklevel=4)
