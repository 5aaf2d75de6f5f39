"""Statistics over selected pixels on the NumPy backend: ``nonzero=True`` (the non-zero pixels
of each scope, zero pixels left at exactly 0) and ``mask=`` (the pixels the caller selects).

How: the selected values of each scope (a channel, or the whole sample) are gathered into one
buffer by the ``select`` kernel, and the mode's own statistic (``statistics.STATISTICS``)
reduces them, so a masked mode is the plain mode applied to those values alone, by the same
code, for every statistic and dtype. The affine then runs on every pixel of the sample with the
same kernels (``affine._apply``), and with ``nonzero`` the ``keep_selected`` kernel sets the
zero pixels back to 0. Both kernels are branch-free loops, where NumPy's boolean indexing and
``np.copyto(where=)`` branch on each flag: on 27 % scattered zeros (224x224x3 uint8, one
thread) ``image`` went from 480 to 139 µs and ``image_per_channel`` from 878 to 186 µs (plain:
32-38 µs); on zeros outside a disc, where the branches are predictable, 132 -> 137 and
265 -> 184 µs. Masked reductions without a copy (``cv2.meanStdDev`` with a mask) would serve
one statistic of one scope shape; the gather serves all of them.

Exceptions, where passes over every pixel give the gather's terms exactly
(:func:`_terms_without_a_gather`): the ``image`` modes on uint8, uint16 and int16 (a z-score
over the foreground, as nnU-Net and MONAI normalize MRI) take the moments of every pixel, the
unselected ones made 0, less their share; with ``nonzero=True`` alone, the ``min_max`` modes on
uint8 and uint16 take the extremes of every pixel (zero is the least value). With
``nonzero=True`` that is 77-88 µs instead of 124-186 (224x224x3 uint8). The percentile modes
would gain nothing: a histogram of every pixel costs what the gather saves.

A scope without a selected pixel has no statistics: it maps to 0 (center 0, scale 0), as the
SPEC asks of an all-zero scope with ``nonzero``.
"""

from __future__ import annotations

import numpy as np

from ...modes import NormalizeParams
from .. import kernels as _kernels
from .affine import _apply, _defined_terms, _in_input_units, prescaled_scale
from .statistics import (
    _EXACT_INTEGERS,
    STATISTICS,
    Statistic,
    _min_max,
    _prescale_exponent,
    exact_mean_std,
    scaled_by_scope,
    sums_exactly,
)

# A scope's (center, spread), or None where no pixel of it is selected.
ScopeTerms = tuple[float, float] | None


def normalize_selected_sample(
    sample: np.ndarray,
    mask: np.ndarray | None,
    out: np.ndarray,
    params: NormalizeParams,
    channels: int,
    record: list[tuple[list[float], list[float]]] | None = None,
) -> None:
    """One per-image normalization with statistics over the selected pixels only: those of
    ``mask`` (booleans of the sample's shape, or None for all), and with ``params.nonzero`` only
    the non-zero ones (NaN is non-zero), the zeros then set back to exactly 0.

    ``sample``: rows of interleaved values (``channels`` per pixel) of the input dtype, or one
    planar scope as a single row with ``channels=1``; ``out``: float32 of its shape. ``record``,
    when given, receives the ``(center, scale)`` terms of each scope. One sample at a time, so
    that the selection (a bool per value) stays in cache for batches.
    """
    if params.nonzero:
        # One bool buffer: the selection now, the zeros after the affine (fresh temporaries
        # cost page faults at these sizes: a second one measured ~10% of the call).
        selected = np.not_equal(sample, 0)
        if mask is not None:
            selected &= mask
    else:
        assert mask is not None, "a selection needs nonzero=True or a mask"
        selected = mask
    source = sample
    mode = params.mode
    statistic = STATISTICS[mode.statistic]
    if sample.dtype == np.float16:  # OpenCV has no float16 reductions: converted into out, exact
        np.copyto(out, sample)
        sample = out
    scopes = channels if mode.per_channel else 1
    # The rounding guard of the fused affine takes the extremes of every pixel, selected or not.
    low, high = _min_max(sample, 1)
    exponents = [0] * scopes  # integers: none (below statistics.PRESCALE_ABOVE)
    terms = _terms_without_a_gather(sample, selected, scopes, mode.statistic, masked=mask is not None)
    if terms is None:
        values, exponents = _prescaled_selections(_values_per_scope(sample, selected, scopes))
        terms = [_scope_terms(scope_values, statistic, params) for scope_values in values]
    if any(exponents):  # the affine's guard then bounds the scaled values of every scope
        sample = scaled_by_scope(sample, exponents)
        low, high = _min_max(sample, 1)
    center, scale, spread = _folded(terms, exponents)
    _apply(sample, out, params.clip, channels, center, scale, spread, low * scopes, high * scopes)
    _zero_empty_scopes(out, terms, scopes)
    if params.nonzero:
        # The zeros back to exactly 0, whatever the affine gave them (kernel: 3.4x faster
        # than np.copyto with where= on scattered zeros).
        _kernels.keep_selected(out, np.not_equal(source, 0, out=selected))
    if record is not None:
        defined = _defined_terms(sample.dtype, center, scale, spread)
        record.append(_in_input_units(*defined, spread, exponents))


# The dtypes whose zero is the least value.
_UNSIGNED = (np.dtype(np.uint8), np.dtype(np.uint16))


def _terms_without_a_gather(
    sample: np.ndarray, selected: np.ndarray, scopes: int, statistic: str | None, masked: bool
) -> list[ScopeTerms] | None:
    """The terms of each scope's selected values from passes over every value instead of a
    gather, where they give the gather's terms exactly; None elsewhere.

    - The moments of uint8, uint16 and int16: those of every value of a copy whose unselected
      values are 0 (the sample itself with ``nonzero`` alone), less the zeros' share.
    - The extremes of uint8 and uint16 with ``nonzero`` alone (zero is the least value, and no
      selected value is 0).
    - Not the percentiles: a histogram pass over every value costs what the gather saves.
    """
    if statistic == "mean_std" and sums_exactly(sample.dtype):
        # x * flag: one pass of the input's dtype, a fifth of a gather's time.
        zeroed = np.multiply(sample, selected, dtype=sample.dtype) if masked else sample
        return _moments_of_selected(zeroed, selected, scopes)
    if statistic == "min_max" and sample.dtype in _UNSIGNED and not masked:
        return _extremes_of_non_zero(sample, selected, scopes)
    return None


def _extremes_of_non_zero(sample: np.ndarray, selected: np.ndarray, scopes: int) -> list[ScopeTerms]:
    """Min and max of each scope's non-zero values of an unsigned sample: the largest is the
    scope's maximum (zero is the least value), the least is 1 + the minimum of ``x - 1``, where
    0 wraps to the dtype's largest value. The gather's terms, bit for bit; the min_max call on
    224x224x3 uint8 with 27 % zeros took 77-81 µs instead of 124-127."""
    _, high = _min_max(sample, scopes)
    low, _ = _min_max(np.subtract(sample, sample.dtype.type(1)), scopes)
    kept = _selected_counts(selected, scopes)
    return [
        (least + 1, most - least - 1) if count else None
        for least, most, count in zip(low, high, kept, strict=True)
    ]


def _selected_counts(selected: np.ndarray, scopes: int) -> list[int]:
    """How many values of each scope ``selected`` (bool, interleaved scopes) selects: the moments
    kernel's sum of the flags as uint8, less the first flag of each scope that it subtracts
    (9 µs for 224x224x3, where NumPy's count along an axis of three columns took 620)."""
    entries = np.empty((4, scopes))
    _kernels.moments(selected.reshape(-1).view(np.uint8), *entries)
    first = selected.reshape(-1)[:scopes].tolist()
    values = selected.size // scopes
    return [int(total) + values * int(flag) for total, flag in zip(entries[2].tolist(), first, strict=True)]


def _moments_of_selected(zeroed: np.ndarray, selected: np.ndarray, scopes: int) -> list[ScopeTerms] | None:
    """Mean and std of each scope's selected values without gathering them, from ``zeroed``, the
    sample with every unselected value 0: a zero adds nothing to a sum of values, so the moments
    of every value, less the unselected zeros' share of the kernel's shift, are the selected
    values' own. Exact integers, so the terms are those of the gather, bit for bit; None where a
    sum reaches past them (the gather then serves). Measured on 224x224x3 uint8 with 27 %
    zeros: 17 µs for the moments and the counts, where the gather and the moments of its values
    took 60-85."""
    entries = np.empty((4, scopes))
    _kernels.moments(zeroed.reshape(-1), *entries)
    _, _, sums, squares = entries.tolist()
    values = zeroed.size // scopes
    first = zeroed.reshape(-1)[:scopes].tolist()
    terms: list[ScopeTerms] = []
    for shift, total, squared, kept in zip(
        first, sums, squares, _selected_counts(selected, scopes), strict=True
    ):
        if squared >= _EXACT_INTEGERS:
            return None
        if kept == 0:
            terms.append(None)
            continue
        zeros = values - kept
        # Sums of x - shift over the selected values: each unselected 0 added 0 - shift, and its
        # square.
        terms.append(
            exact_mean_std(shift, kept, int(total) + zeros * shift, int(squared) - zeros * shift * shift)
        )
    return terms


def _values_per_scope(sample: np.ndarray, selected: np.ndarray, scopes: int) -> list[np.ndarray]:
    """The selected values of each scope, each a contiguous 1-D run of one buffer, gathered by
    the ``select`` kernel in one pass: NumPy's boolean indexing branches on every flag, and on
    scattered zeros (27 % of a 224x224x3 uint8 image) took 231 µs for the sample and 195 µs for
    each channel, where the kernel takes 56 and 81 µs for all three (512x512x3 float32: 1205
    against 320 µs)."""
    gathered = np.empty(sample.size, sample.dtype)
    counts = np.empty(scopes, np.int64)
    _kernels.select(sample.reshape(-1), selected.reshape(-1), gathered, counts)
    length = sample.size // scopes
    return [gathered[scope * length : scope * length + count] for scope, count in enumerate(counts.tolist())]


def _prescaled_selections(values: list[np.ndarray]) -> tuple[list[np.ndarray], list[int]]:
    """Each scope's selected ``values`` scaled by its own power of two ``2**-e``
    (``statistics._prescaled``), and each ``e``: from the selected values alone, where a float64
    pixel of 1e300 outside a mask (or in another channel) had scaled selected values of 1 to
    1e-300, whose squares underflowed (a variance of 0, a scale of 1e4; found in review)."""
    if values[0].dtype.kind != "f":  # integers stay far below PRESCALE_ABOVE
        return values, [0] * len(values)
    exponents = [_exponent_of(scope_values) for scope_values in values]
    scaled = [np.ldexp(v, -e, dtype=np.float64) if e else v for v, e in zip(values, exponents, strict=True)]
    return scaled, exponents


def _exponent_of(values: np.ndarray) -> int:
    """The prescaling exponent of one scope's selected values (0 for none)."""
    if values.size == 0:
        return 0
    low, high = _min_max(values.reshape(1, -1), 1)
    return _prescale_exponent(low + high)


def _scope_terms(values: np.ndarray, statistic: Statistic, params: NormalizeParams) -> ScopeTerms:
    """The mode's statistic of ``values`` (one scope's selected values), as the plain mode
    computes it for a 1-channel image of those values; None when there are none."""
    if values.size == 0:
        return None
    row = values.reshape(1, -1)
    low: list[float] = []
    high: list[float] = []
    if statistic.extremes is not None:
        low, high = _min_max(row, 1)
    center, spread, _, _ = statistic.terms(row, 1, params, low, high)
    return center[0], spread[0]


def _folded(terms: list[ScopeTerms], exponents: list[int]) -> tuple[list[float], list[float], list[float]]:
    """Per-scope ``(center, scale, spread)`` of a sample whose scopes are scaled by
    ``2**-exponent`` each: the mode's fold, and 0, 0, 0 for empty scopes."""
    center = [0.0 if scope is None else scope[0] for scope in terms]
    spread = [0.0 if scope is None else scope[1] for scope in terms]
    scale = [
        0.0 if scope is None else prescaled_scale(scope[1], exponent)
        for scope, exponent in zip(terms, exponents, strict=True)
    ]
    return center, scale, spread


def _zero_empty_scopes(out: np.ndarray, terms: list[ScopeTerms], scopes: int) -> None:
    """Exactly 0 for scopes without a selected pixel (their scale 0 already gives 0, except
    for NaN or infinite pixels outside a mask)."""
    if all(scope is not None for scope in terms):
        return
    if scopes == 1:
        out[...] = 0.0
        return
    columns = out.reshape(-1, scopes)
    for index, scope in enumerate(terms):
        if scope is None:
            columns[:, index] = 0.0
