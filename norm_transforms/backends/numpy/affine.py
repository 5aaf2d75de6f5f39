"""The per-channel affine of the NumPy backend, ``y = (x - center) * scale``: fused in one C
pass when that is provably exact (below 2e-6), else centered (a float64-built table for uint8,
float64 arithmetic for float64, a split center otherwise)."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

import cv2
import numpy as np

from ...modes import EPS, scale_from_spread
from .. import kernels as _kernels

_UINT8 = np.dtype(np.uint8)

# Dtypes whose values float32 does not hold exactly (beyond its 24-bit significand): the centered
# route subtracts the center from them in float64, before any rounding.
_WIDE_DTYPES = (np.dtype(np.float64), np.dtype(np.int32))


# cv2.LUT handles up to 4 interleaved channels; more go through NumPy on the rare centered route.
_OPENCV_MAX_CHANNELS = 4


# Clip bounds that leave every value (and NaN) as it is.
_NO_BOUNDS = (-math.inf, math.inf)


# The fused form x * scale + offset rounds |x * scale| and |offset| to float32; when that
# rounding could exceed this bound (a near-constant image, tiny std) we subtract the
# center first instead, which is exact for the pixels that matter.
_FUSED_MAX_ERROR = 2e-6


_FLOAT32_UNIT_ROUNDOFF = 2.0**-24


def _apply(
    sample: np.ndarray,
    out: np.ndarray,
    clip: tuple[float, float] | None,
    channels: int,
    center: list[float],
    scale: list[float],
    spread: list[float],
    low: list[float],
    high: list[float],
) -> None:
    """The affine with per-scope terms, clipped to ``clip``: fused when that is exact enough,
    else centered."""
    if _regular(sample.dtype, center, scale, spread, low, high):
        _kernels.affine(sample, out, *_fused_constants(center, scale), *(clip or _NO_BOUNDS))
        return
    center, scale = _defined_terms(sample.dtype, center, scale, spread)
    _apply_centered(sample, out, np.array(center), np.array(scale), channels, clip)


def _defined_terms(
    dtype: np.dtype, center: list[float], scale: list[float], spread: list[float]
) -> tuple[list[float], list[float]]:
    """The terms as applied: NaN for every scope whose statistics are undefined.

    Documented: a NaN (image modes) or ±inf (all modes) in a scope, the image or one channel,
    leaves its statistics undefined, and its whole output is NaN. Integer images have none.
    """
    if dtype.kind != "f":
        return center, scale
    broken = _broken_scopes(center, spread)
    center = [math.nan if b else c for b, c in zip(broken, center, strict=True)]
    scale = [math.nan if b else c for b, c in zip(broken, scale, strict=True)]
    return center, scale


def _regular(
    dtype: np.dtype,
    center: list[float],
    scale: list[float],
    spread: list[float],
    low: list[float],
    high: list[float],
) -> bool:
    """True when every scope has finite statistics and the fused affine is exact enough."""
    if dtype.kind == "f" and any(_broken_scopes(center, spread)):
        return False
    return _fused_error_bound(low, high, center, scale) <= _FUSED_MAX_ERROR


def _broken_scopes(center: list[float], spread: list[float]) -> list[bool]:
    # A +inf maximum (or percentile) gives an infinite spread and a scale of 0, not NaN: both
    # terms are checked.
    return [not (math.isfinite(c) and math.isfinite(s)) for c, s in zip(center, spread, strict=True)]


def _fused_constants(center: Sequence[float], scale: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """float32 ``scale`` and ``offset = -center * scale``, folded in float64 and rounded once."""
    offset = [-float(c) * float(s) for c, s in zip(center, scale, strict=True)]
    constants = np.array((scale, offset), dtype=np.float32)  # one array: one allocation
    return constants[0], constants[1]


def _fused_error_bound(
    low: Sequence[float], high: Sequence[float], center: Sequence[float], scale: Sequence[float]
) -> float:
    """Worst float32 rounding error of ``x * scale + offset`` for x in [low, high]."""
    worst = 0.0  # a plain loop: nested max() over generators cost ~1 µs a call
    for a, b, c, s in zip(low, high, center, scale, strict=True):
        reach = (max(abs(a), abs(b)) + abs(c)) * s
        worst = reach if reach > worst else worst
    return 3 * _FLOAT32_UNIT_ROUNDOFF * worst


def _apply_centered(
    source: np.ndarray,
    out: np.ndarray,
    center: np.ndarray,
    scale: np.ndarray,
    channels: int,
    bounds: tuple[float, float] | None,
) -> None:
    """``(x - center) * scale`` for ill-conditioned samples (near-constant, tiny std)."""
    center, scale = np.broadcast_to(center, channels), np.broadcast_to(scale, channels)
    if source.dtype == _UINT8 and channels <= _OPENCV_MAX_CHANNELS:
        # A 256-entry table per channel, computed and clipped in float64: exact for every pixel.
        levels = np.arange(256, dtype=np.float64)[:, None]
        table = (levels - center) * scale
        if bounds is not None:
            table = np.clip(table, *bounds)
        table = np.ascontiguousarray(table.astype(np.float32).reshape(256, 1, channels))
        cv2.LUT(
            source.reshape(source.shape[0], -1, channels), table, dst=out.reshape(out.shape[0], -1, channels)
        )
        return
    tiles = source.shape[1] // channels
    if source.dtype in _WIDE_DTYPES:
        # Subtract before rounding to float32, so a constant image gives exactly 0 (and an int32
        # image near 2**30 with a small spread keeps the digits its float32 form would lose).
        centered = np.subtract(source, np.tile(center, tiles))
        np.multiply(centered, np.tile(scale, tiles), out=out, casting="same_kind")
    else:
        np.copyto(out, source, casting="unsafe")
        # The center as a float32 pair, high + low: subtracting the high part is exact for pixels
        # near the center (where the fused form loses digits), the low part then costs one rounding.
        center_high = center.astype(np.float32)
        center_low = (center - center_high).astype(np.float32)
        for part in (center_high, center_low):
            np.subtract(out, np.tile(part, tiles), out=out)
        np.multiply(out, np.tile(scale.astype(np.float32), tiles), out=out)
    if bounds is not None:
        np.clip(out, *bounds, out=out)


_LARGEST = sys.float_info.max


def prescaled_scale(spread: float, exponent: int) -> float:
    """``1 / (spread + EPS * 2**-exponent)``: the scale of statistics taken on the image scaled
    by ``2**-exponent`` (``statistics._prescaled``), for the affine of that scaled image, at
    most float64's largest. A constant scope of values beyond ~4e304 (exponent above 1011)
    needs 1e4 * 2**exponent, beyond float64: the capped scale still maps each of its pixels,
    all at the center, to exactly 0, where inf gave 0 * inf = NaN."""
    return min(scale_from_spread(spread, math.ldexp(EPS, -exponent)), _LARGEST)


def _in_input_units(
    center: list[float], scale: list[float], spread: list[float], exponents: list[int]
) -> tuple[list[float], list[float]]:
    """Terms of prescaled scopes (see :func:`_prescaled`) back in the input's units; a scale
    capped by :func:`prescaled_scale` is the scale of the spread in the input's units (1e4
    for a constant scope, as at any magnitude)."""
    if not any(exponents):
        return center, scale
    center = [math.ldexp(c, e) for c, e in zip(center, exponents, strict=True)]
    scale = [
        math.ldexp(s, -e) if s < _LARGEST else scale_from_spread(math.ldexp(spread_s, e))
        for s, spread_s, e in zip(scale, spread, exponents, strict=True)
    ]
    return center, scale
