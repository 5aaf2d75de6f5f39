"""Statistics of the NumPy backend, as data: ``STATISTICS`` maps each statistic that a mode
names (``modes.MODES``) to the function that reduces it, and the reductions they share
(min/max, percentiles from exact histograms, float64 moments), with the prescaling that keeps
them scale-safe."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple

import numpy as np

from ...dtypes import PIXEL_TYPES
from ...modes import NormalizeParams
from .. import kernels as _kernels

# Scopes whose values reach beyond this magnitude are normalized as a float64 copy scaled by a
# power of two (exact; see _prescaled). Far below where anything overflows (squares in the
# moments at 1e154, a float32 scale or affine at 1e37), far above any real image.
PRESCALE_ABOVE = 2.0**100


# The moments kernel sums d = x - k and d² in float64 (k: the scope's first value), and
# var = E[d²] - E[d]² loses digits to cancellation when the std is small against |mean - k|
# (k far out in the tail): below this ratio the scope is recomputed in two passes (about 1e-12
# relative error at the ratio; integer scopes are exact and never need it).
_ONE_PASS_MIN_STD_OVER_SHIFT = 1e-2

# Integer sums of the moments kernel are exact below this (float64 holds every integer).
_EXACT_INTEGERS = 2.0**53


class Statistic(NamedTuple):
    """How this backend reduces one statistic named by ``modes.MODES``.

    ``terms(sample, scopes, params, low, high)`` returns per-scope ``(center, spread, low,
    high)`` lists of Python floats: the mode maps ``x`` to ``(x - center) / (spread + eps)``,
    and ``low``/``high`` bound the values whose output is not clipped (the rounding guard reads
    them). ``sample`` holds rows of interleaved values, ``scopes`` per row (the channels, or 1
    for the whole sample); it receives the extremes that ``extremes`` asks for, prescaled like
    the sample: ``"scope"`` (one per scope), ``"sample"`` (of the whole sample, one channel: the
    fastest pass; float samples always read at least these, to prescale) or ``None`` (none;
    then ``low`` and ``high`` are empty for integer samples).
    """

    terms: Callable[..., tuple[list[float], list[float], list[float], list[float]]]
    extremes: Literal["scope", "sample"] | None
    #: False when ``terms`` reads only the extremes: rows of planar data then take one call.
    reads_pixels: bool = True
    #: One pass that gives the extremes and the terms together, where it exists:
    #: ``fused(values, entries, block=1)`` returns per-entry ``(low, high, center, spread)``
    #: (entries as the kernels' tables: value i in entry ``(i // block) % entries``), used
    #: instead of ``extremes`` then ``terms``.
    fused: Callable[..., tuple[list[float], list[float], list[float], list[float]]] | None = None


def _extremes_grain(statistic: Statistic, dtype: np.dtype) -> str | None:
    """The min/max pass a sample needs: the statistic's, and for floats at least the sample's
    (the prescaling reads it)."""
    return statistic.extremes or ("sample" if dtype.kind == "f" else None)


def _moments_terms(
    sample: np.ndarray, scopes: int, params: NormalizeParams, low: list[float], high: list[float]
) -> tuple[list[float], list[float], list[float], list[float]]:
    """``image`` modes: mean and std; the sample's extremes bound every scope's values."""
    _, _, mean, std = _moments(sample, scopes)
    return mean, std, low * scopes, high * scopes


def _range_terms(
    sample: np.ndarray, scopes: int, params: NormalizeParams, low: list[float], high: list[float]
) -> tuple[list[float], list[float], list[float], list[float]]:
    """``min_max`` modes: the extremes themselves, read per scope."""
    return low, [h - lo for lo, h in zip(low, high, strict=True)], low, high


def _percentile_terms(
    sample: np.ndarray, scopes: int, params: NormalizeParams, low: list[float], high: list[float]
) -> tuple[list[float], list[float], list[float], list[float]]:
    """``percentile`` modes: the two percentiles; they bound what is not clipped to [0, 1]."""
    low, high = _percentiles(sample, scopes, params.percentiles)
    return low, [h - lo for lo, h in zip(low, high, strict=True)], low, high


def _robust_terms(
    sample: np.ndarray, scopes: int, params: NormalizeParams, low: list[float], high: list[float]
) -> tuple[list[float], list[float], list[float], list[float]]:
    """``robust`` modes: the median and the interquartile range (RobustScaler on pixels); no
    clip, so the sample's extremes bound the values."""
    lower_quartile, median, upper_quartile = _percentiles(sample, scopes, (25.0, 50.0, 75.0))
    spread = [q3 - q1 for q1, q3 in zip(lower_quartile, upper_quartile, strict=True)]
    return median, spread, low * scopes, high * scopes


def _moments(
    values: np.ndarray, entries: int, block: int = 1
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Per-entry minimum, maximum (NaN skipped), mean and population std in float64, from one
    pass of the moments kernel (value i in entry ``(i // block) % entries``, as in the kernels).

    One pass where the route before read the image three times (min_max, cv2.meanStdDev on a
    12-channel view, the affine): cv2.meanStdDev alone cost 1.3 ms at 1024x1024x3 float32,
    the kernel 0.5 ms with the extremes. uint8, uint16 and int16 sums are exact integers: the
    mean and variance come from Python's integer division, correctly rounded. Float sums are
    taken from the entry's first value k, which keeps the cancellation of E[d²] - E[d]² small
    unless k lies far out in the tail; such entries are recomputed in two passes. A constant
    entry has sums of exactly 0: its mean is its value and its std 0. NaN or inf give NaN.
    """
    low, high, sums, squares = np.empty((4, entries))
    _kernels.moments(values, low, high, sums, squares, block)
    count = values.size // entries
    first = values.reshape(-1)[: entries * block : block].tolist()
    exact = sums_exactly(values.dtype)
    means, stds, inexact = [], [], False
    for shift, total, squared in zip(first, sums.tolist(), squares.tolist(), strict=True):
        if exact and squared < _EXACT_INTEGERS:
            mean, std = exact_mean_std(shift, count, int(total), int(squared))
            means.append(mean)
            stds.append(std)
            continue
        offset = total / count
        std = math.sqrt(max(squared / count - offset * offset, 0.0))
        means.append(shift + offset)
        stds.append(std)
        inexact = inexact or std < _ONE_PASS_MIN_STD_OVER_SHIFT * abs(offset)
    if inexact:
        means, stds = _two_pass_mean_std(values, entries, block)
    return low.tolist(), high.tolist(), means, stds


def sums_exactly(dtype: np.dtype) -> bool:
    """Whether the moments kernel sums ``dtype``'s values as exact integers (uint8, uint16,
    int16: below 2**53 unless the image is huge, which ``_EXACT_INTEGERS`` guards)."""
    return dtype.itemsize <= 2 and dtype.kind in "ui"


def exact_mean_std(shift: int, count: int, total: int, squared: int) -> tuple[float, float]:
    """Mean and population std of ``count`` integers from the exact sums of ``x - shift``
    (``total``) and of its square (``squared``): Python's integer division, correctly rounded."""
    return (shift * count + total) / count, math.sqrt((count * squared - total * total) / (count * count))


def _two_pass_mean_std(values: np.ndarray, entries: int, block: int) -> tuple[list[float], list[float]]:
    """Mean and std of each entry in float64 NumPy, centered before squaring."""
    by_entry = values.reshape(-1, entries, block).transpose(1, 0, 2).reshape(entries, -1).astype(np.float64)
    mean = by_entry.mean(axis=1)
    # One correction pass removes the rounding of the first mean: exact for constant data.
    mean = mean + (by_entry - mean[:, None]).mean(axis=1)
    return mean.tolist(), np.sqrt(((by_entry - mean[:, None]) ** 2).mean(axis=1)).tolist()


#: Statistic name (``Mode.statistic``) -> how this backend reduces it.
STATISTICS: dict[str, Statistic] = {
    "mean_std": Statistic(_moments_terms, extremes="sample", fused=_moments),
    "min_max": Statistic(_range_terms, extremes="scope", reads_pixels=False),
    "percentile": Statistic(_percentile_terms, extremes=None),
    "robust": Statistic(_robust_terms, extremes="sample"),
}


def _prescaled(values: np.ndarray, extremes: list[float]) -> tuple[np.ndarray, int]:
    """``(values * 2**-e, e)``, a float64 copy scaled into [-1, 1], when the values reach beyond
    ``PRESCALE_ABOVE``; else ``(values, 0)``. ``extremes``: the sample's (or its channels')
    minima and maxima; only the finite ones count, so that a NaN or infinite channel (whose own
    output is NaN anyway) does not turn the scaling off for the others.

    Scale safety: statistics and the affine of huge values would overflow (squares in the
    moments, ``max - min``, the float32 affine), so they are computed on the scaled copy, with
    eps scaled alike: the same output within rounding for any finite input. Multiplying by a
    power of two is exact (short of values 2**-922 times smaller than the largest, which
    underflow and were far below a float32 step of the output anyway).
    """
    if values.dtype.kind != "f":  # integers stay far below PRESCALE_ABOVE (int32: 2**31)
        return values, 0
    exponent = _prescale_exponent(extremes)
    if exponent == 0:
        return values, 0
    return np.ldexp(values, -exponent, dtype=np.float64), exponent


def _prescale_exponent(extremes: list[float]) -> int:
    # A plain loop: the generator and max() cost ~1 µs a call here, ~5% of a 224² image.
    magnitude = 0.0
    for value in extremes:
        if math.isfinite(value) and abs(value) > magnitude:
            magnitude = abs(value)
    return math.frexp(magnitude)[1] if magnitude > PRESCALE_ABOVE else 0


def scaled_by_scope(sample: np.ndarray, exponents: list[int]) -> np.ndarray:
    """``sample`` (rows of ``len(exponents)`` interleaved scopes) with each scope's values times
    ``2**-e`` of its own ``e``, a float64 copy (exact); the sample itself where every ``e`` is 0."""
    if not any(exponents):
        return sample
    if len(set(exponents)) == 1:
        return np.ldexp(sample, -exponents[0], dtype=np.float64)
    by_scope = np.ldexp(sample.reshape(-1, len(exponents)), -np.array(exponents), dtype=np.float64)
    return by_scope.reshape(sample.shape)


def _min_max(sample: np.ndarray, scopes: int, block: int = 1) -> tuple[list[float], list[float]]:
    """Minimum and maximum of the sample (``scopes == 1``) or of each interleaved channel; with
    ``block``, of each entry as the kernels index them (value i in ``(i // block) % scopes``).

    NaN pixels are skipped, as in the reference (its min_max goes through cv2.normalize). One
    pass of the C kernel: as fast as cv2.minMaxLoc for the whole sample, which stops being
    right at a NaN pixel, and OpenCV has no per-channel call.
    """
    extremes = np.empty((2, scopes))
    _kernels.min_max(sample, extremes[0], extremes[1], block)
    low, high = extremes.tolist()
    return low, high


# A histogram costs a pass over its bins per scope (zeroing them, their cumulative sum, the
# searches: ~200 us for the 65536 bins of a 16-bit channel) besides its pass over the pixels;
# np.percentile's partition costs per pixel only. int16 on the 2-core Xeon, one scope: the
# partition 2-8x faster at 32² and 64², even near 110², the histogram 1.4x faster at 128² and 3x
# at 256² (three interleaved channels: even near 150²). Scopes of fewer pixels than a quarter
# of the bins (16-bit: 128², uint8: 64 pixels) take the partition.
HISTOGRAM_MIN_PIXELS_PER_BIN = 0.25


def _percentiles(sample: np.ndarray, scopes: int, percentiles: Sequence[float]) -> list[list[float]]:
    """The ``percentiles`` of the sample or of each interleaved channel (one list of per-scope
    values per percentile), interpolated linearly as ``np.percentile`` does; NaN pixels are
    skipped (as min_max skips them).

    uint8, uint16 and int16 images: exact from a per-channel histogram, one C pass (~5x faster
    than the partition inside np.percentile at 224² uint8, measured in benchmarks/), except
    where the scopes hold few pixels for the histogram's bins (``HISTOGRAM_MIN_PIXELS_PER_BIN``).
    Floats and int32 (2**32 bins would not fit): the partition, the fastest exact route without a
    histogram. Both give np.percentile's values, bit for bit.
    """
    pixel = PIXEL_TYPES[sample.dtype.name]
    bins = pixel.histogram_bins
    if bins and sample.size >= scopes * bins * HISTOGRAM_MIN_PIXELS_PER_BIN:
        counts = np.zeros((scopes, bins), dtype=np.int64)
        _kernels.histogram(sample, counts)
        return histogram_percentiles(counts, percentiles, first_value=-pixel.histogram_offset).tolist()
    values = sample.reshape(-1, scopes)
    if values.dtype.kind in "iu":
        # np.percentile interpolates with b - a in the input's dtype, which wraps around for int32
        # values more than 2**31 apart (measured: the median of [-2**31, 2**31 - 1] came out
        # 2147483647.5); float64 holds every integer exactly.
        values = values.astype(np.float64)
    result = _partitioned_percentiles(values, percentiles)
    if result is None:  # NaN pixels, which np.nanpercentile skips
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a channel of only NaN gives NaN
            result = np.nanpercentile(values, percentiles, axis=0)
    return result.tolist()


def _partitioned_percentiles(values: np.ndarray, percentiles: Sequence[float]) -> np.ndarray | None:
    """``np.percentile(values, percentiles, axis=0)``, bit for bit, from one partition around
    the ranks it interpolates between; None where a column holds NaN (or ``values`` none).
    np.percentile's own checks and index arithmetic took 60 us a call: 93 us for 4096 values
    where this takes 34, 876 against 526 us for a 224² float32 image (2-core Xeon)."""
    total = values.shape[0]
    if total == 0:
        return None
    around = [_ranks_around(total, percentile / 100.0, "linear") for percentile in percentiles]
    # The first and last ranks too, as np.percentile partitions (which of -0.0 and 0.0 lands on
    # a rank depends on them); the last holds the largest value, NaN if a column has one.
    ranks = sorted({rank for below, above, _ in around for rank in (below, above)} | {0, total - 1})
    partitioned = np.partition(values, ranks, axis=0)
    if np.isnan(partitioned[-1]).any():
        return None
    result = []
    for below, above, weight in around:
        # The step in the values' dtype, then the interpolation in float64, as NumPy does.
        result.append(_lerp(partitioned[below], partitioned[above], np.float64(weight)))
    return np.array(result)


def histogram_percentiles(
    counts: np.ndarray, percentiles: Sequence[float], method: str = "linear", *, first_value: int = 0
) -> np.ndarray:
    """Percentiles ``(len(percentiles), rows)`` of each row of ``counts``, a histogram of the
    integer values ``first_value``, ``first_value + 1``, ... (-32768 for int16): the same as
    ``np.percentile(values, percentiles, method=method)`` of the values it counts (as float64),
    for NumPy's ``"linear"`` (default) and ``"inverted_cdf"``.

    The value of 0-based rank k is the first bin whose cumulative count exceeds k: a binary
    search per rank (broadcast comparisons over the bins measured 3x slower for a few rows).
    The dataset statistics (norm_transforms.stats) use it too.
    """
    result = np.empty((len(percentiles), len(counts)))
    for row, cumulative in enumerate(np.cumsum(counts, axis=1)):
        total = int(cumulative[-1])
        for index, percentile in enumerate(percentiles):
            below, above, weight = _ranks_around(total, percentile / 100.0, method)
            ranks = np.searchsorted(cumulative, (below, above), side="right").tolist()
            low, high = (first_value + rank for rank in ranks)
            result[index, row] = _lerp(low, high, weight)
    return result


def _lerp(low: float | np.ndarray, high: float | np.ndarray, weight: float) -> float | np.ndarray:
    """NumPy's linear interpolation between ``low`` and ``high``, written as it writes it (the
    step in their type, then from the nearer end)."""
    step = high - low
    return low + step * weight if weight < 0.5 else high - step * (1 - weight)


def _ranks_around(total: int, quantile: float, method: str) -> tuple[int, int, float]:
    """The 0-based ranks of the two sorted values a quantile lies between, and the weight of
    the upper one, with NumPy's float arithmetic so that the results agree with it."""
    if method == "inverted_cdf":
        index = max(math.ceil(total * quantile - 1), 0)
        return index, index, 0.0
    virtual = (total - 1) * quantile
    if virtual >= total - 1:  # NumPy reads the last value twice, with the weight virtual + 1
        return total - 1, total - 1, virtual + 1
    below = math.floor(virtual)
    return below, below + 1, virtual - below
