"""NumPy / OpenCV kernels: per-image statistics and a per-channel affine, written as float32.

Every input is viewed as ``(samples, rows, row_length)``, a C-contiguous block per sample whose
rows hold ``width * channels`` interleaved values, so one code path serves HW, HWC, NHWC, DHWC
and NDHWC. Speed notes (single thread, 512x512 RGB, measured in benchmarks/ and recorded beside
each choice below) keep the reasons for each route next to it.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

import cv2
import numpy as np

from ..dtypes import NUMPY_DTYPES, PIXEL_TYPES
from ..modes import (
    EPS,
    AffineParams,
    Mode,
    NormalizeParams,
)
from . import kernels as _kernels

SUPPORTED_DTYPES = NUMPY_DTYPES
# What denormalize reads (normalized images) and writes (any dtype normalize reads).
NORMALIZED_DTYPES = tuple(dtype for dtype in NUMPY_DTYPES if PIXEL_TYPES[dtype.name].is_float)
_FLOAT32 = np.dtype(np.float32)
_UINT8 = np.dtype(np.uint8)

# cv2.meanStdDev refuses more than 128 channels (OpenCV 4.x and 5.x, measured: 129 raises);
# wider views go through the NumPy two-pass route.
_MEAN_STD_MAX_CHANNELS = 128

# cv2.LUT handles up to 4 interleaved channels; more go through NumPy on the rare centered route.
_OPENCV_MAX_CHANNELS = 4

# Scopes whose values reach beyond this magnitude are normalized as a float64 copy scaled by a
# power of two (exact; see _prescaled). Far below where anything overflows (squares in the
# moments at 1e154, a float32 scale or affine at 1e37), far above any real image.
PRESCALE_ABOVE = 2.0**100

# Clip bounds that leave every value (and NaN) as it is.
_NO_BOUNDS = (-math.inf, math.inf)

# The fused form x * scale + offset rounds |x * scale| and |offset| to float32; when that
# rounding could exceed this bound (a near-constant image, tiny std) we subtract the
# center first instead, which is exact for the pixels that matter.
_FUSED_MAX_ERROR = 2e-6
_FLOAT32_UNIT_ROUNDOFF = 2.0**-24

# cv2.meanStdDev computes var = E[x²] - E[x]² in float64; when the std is this small against
# the mean, cancellation would cost digits, so we recompute in two passes.
_ONE_PASS_MIN_STD_OVER_MEAN = 1e-2


class Layout(NamedTuple):
    """How an array splits into samples and channels."""

    samples: int
    rows: int
    row_length: int
    channels: int


def describe_layout(shape: tuple[int, ...], *, batched: bool, volume: bool) -> Layout:
    """Split ``shape`` into samples, rows and interleaved channels, or explain what is accepted."""
    batch_axes = 1 if batched else 0
    spatial_axes = 3 if volume else 2
    names = ("N," if batched else "") + ("D,H,W" if volume else "H,W")
    if len(shape) not in (batch_axes + spatial_axes, batch_axes + spatial_axes + 1):
        raise ValueError(
            f"expected an array of shape ({names}) or ({names},C) for "
            f"batched={batched}, volume={volume}; got shape {shape}"
        )
    channels = shape[-1] if len(shape) == batch_axes + spatial_axes + 1 else 1
    samples = shape[0] if batched else 1
    width = shape[batch_axes + spatial_axes - 1]
    rows = math.prod(shape[batch_axes : batch_axes + spatial_axes - 1])
    return Layout(samples, rows, width * channels, channels)


def _as_dtype(dtype: Any) -> np.dtype | None:
    """``np.dtype(dtype)``, or None for what NumPy does not read as a dtype (the caller's
    message then says what is accepted, instead of NumPy's)."""
    try:
        return np.dtype(dtype)
    except (TypeError, ValueError):
        return None


def check_image(image: np.ndarray) -> None:
    """Refuse what no kernel handles, with a message that says what is accepted."""
    if image.dtype not in SUPPORTED_DTYPES:
        accepted = ", ".join(str(d) for d in SUPPORTED_DTYPES)
        raise TypeError(f"image dtype {image.dtype} is not supported; accepted: {accepted}")
    if image.size == 0:
        raise ValueError(f"image is empty (shape {image.shape}); nothing to normalize")


def value_range(image: np.ndarray) -> tuple[float, float]:
    """The smallest and largest pixel value, NaN skipped (NaN, NaN when there are none): what
    the transforms read on their first call to check ``max_pixel_value``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN image
        return float(np.nanmin(image)), float(np.nanmax(image))


def normalize(
    image: np.ndarray,
    params: NormalizeParams,
    *,
    batched: bool = False,
    volume: bool = False,
    dtype: np.dtype | type = np.float32,
    return_params: bool = False,
) -> np.ndarray | tuple[np.ndarray, AffineParams]:
    """Normalize a NumPy image (or batch of images / volumes) to float32.

    Statistics are per sample: per image with ``batched=True``, per volume with ``volume=True``.
    The input is never modified. ``return_params=True`` also returns the :class:`AffineParams`
    applied, shaped to broadcast against the image.
    """
    if _as_dtype(dtype) != _FLOAT32:
        raise TypeError(f"NumPy images normalize to float32 only; got dtype={dtype!r}")
    check_image(image)
    layout = describe_layout(image.shape, batched=batched, volume=volume)
    source = np.ascontiguousarray(image).reshape(layout.samples, layout.rows, layout.row_length)
    out = np.empty(image.shape, dtype=np.float32)
    target = out.reshape(source.shape)
    mode = params.mode
    if mode.statistic is None:
        scale32, offset32 = _standard_constants(params, layout.channels, image.dtype)
        _kernels.affine(source, target, scale32, offset32, *_NO_BOUNDS)
        if return_params:
            layout_flags = {"batched": batched, "volume": volume}
            return out, standard_affine_params(params, image.shape, image.dtype, **layout_flags)
        return out
    # The per-scope terms of every sample, kept only when asked for.
    record: list[tuple[list[float], list[float]]] | None = [] if return_params else None
    # NaN or inf pixels give NaN statistics by design (documented); NumPy's warnings about
    # them are silenced here, once per call.
    with np.errstate(invalid="ignore", over="ignore"):
        for sample, sample_out in zip(source, target, strict=True):
            _normalize_one_sample(sample, sample_out, params, layout.channels, record)
    if record is None:
        return out
    shape = terms_shape(image.shape, batched=batched, volume=volume, samples=layout.samples)
    return out, _recorded_params(record, shape)


def normalize_planar(
    planes: np.ndarray, params: NormalizeParams, *, return_params: bool = False
) -> np.ndarray | tuple[np.ndarray, AffineParams]:
    """Normalize ``(samples, C, H, W)`` channel-planar images (Torch's CPU layout) to float32,
    each sample with its own statistics, through the same kernels as :func:`normalize`.

    Every scope (a plane, or a whole sample) is a contiguous block, so the statistics take one
    kernel call per batch (min/max) or one per scope (moments), and the affine one call per
    batch with a table entry per scope: a call per plane cost ~5 µs of glue each.
    ``return_params=True`` also returns the :class:`AffineParams` applied, shaped
    ``(samples, C or 1, 1, 1)`` (``(1, C, 1, 1)`` for the standard mode's constants).
    """
    check_image(planes)
    samples, channels, height, width = planes.shape
    source = np.ascontiguousarray(planes)
    out = np.empty(planes.shape, dtype=np.float32)
    mode = params.mode
    if mode.statistic is None:
        scale32, offset32 = _standard_constants(params, channels, planes.dtype)
        _kernels.affine(source, out, scale32, offset32, *_NO_BOUNDS, height * width)
        return (out, _standard_terms(params, channels, planes.dtype, (1, -1, 1, 1))) if return_params else out
    scopes = source.reshape(samples * channels if mode.per_channel else samples, -1)
    record: list[tuple[list[float], list[float]]] | None = [] if return_params else None
    with np.errstate(invalid="ignore", over="ignore"):
        _normalize_scopes(scopes, out.reshape(scopes.shape), params, record)
    if record is None:
        return out
    return out, _recorded_params(record, (samples, -1, 1, 1))


@functools.lru_cache(maxsize=256)
def _standard_constants(params: NormalizeParams, channels: int, dtype: np.dtype) -> tuple[np.ndarray, ...]:
    return _fused_constants(*params.standard_center_scale(channels, dtype))


def _normalize_one_sample(
    sample: np.ndarray,
    out: np.ndarray,
    params: NormalizeParams,
    channels: int,
    record: list[tuple[list[float], list[float]]] | None = None,
) -> None:
    """One per-image normalization: statistics, then the affine, clipped where the mode says.

    The statistics are a few Python floats per image (one per scope: the image or a channel);
    plain float arithmetic on them costs a fraction of NumPy calls on tiny arrays (~20 µs per
    image at 224²). ``record``, when given, receives the sample's ``(center, scale)`` terms.
    """
    mode = params.mode
    statistic = STATISTICS[mode.statistic]
    sample = _readable_by_opencv(sample, out)
    scopes = channels if mode.per_channel else 1
    grain = _extremes_grain(statistic, sample.dtype)
    low, high, exponent = [], [], 0
    if grain is not None:
        low, high = _min_max(sample, scopes if grain == "scope" else 1)
        sample, exponent = _prescaled(sample, min(low), max(high))
        low, high = _scaled(low, exponent), _scaled(high, exponent)
    center, spread, low, high = statistic.terms(sample, scopes, params, low, high)
    eps = math.ldexp(EPS, -exponent)
    scale = [1.0 / (s + eps) for s in spread]
    _apply(sample, out, mode, channels, center, scale, spread, low, high)
    if record is not None:
        terms = _defined_terms(sample.dtype, center, scale, spread)
        record.append(_in_input_units(*terms, [exponent] * scopes))


def _normalize_scopes(
    scopes: np.ndarray,
    out: np.ndarray,
    params: NormalizeParams,
    record: list[tuple[list[float], list[float]]] | None = None,
) -> None:
    """Per-image normalization of ``(scopes, values)`` rows, each row one statistics scope
    (a plane or a whole sample of planar data), with one affine call for all rows.
    ``record``, when given, receives the ``(center, scale)`` terms of every row."""
    mode = params.mode
    statistic = STATISTICS[mode.statistic]
    scopes = _readable_by_opencv(scopes, out)
    count, size = scopes.shape
    extremes: list[tuple[list[float], list[float]]] = [([], [])] * count
    exponents = [0] * count
    if _extremes_grain(statistic, scopes.dtype) is not None:
        # Every row is a scope: one kernel call gives the extremes of all of them.
        low, high = np.empty(count), np.empty(count)
        _kernels.min_max(scopes, low, high, size)
        exponents = [_prescale_exponent(lo, hi) for lo, hi in zip(low.tolist(), high.tolist(), strict=True)]
        if any(exponents):  # each row scaled by its own power of two (see _prescaled)
            scopes = np.ldexp(scopes, -np.array(exponents)[:, None], dtype=np.float64)
        extremes = [
            ([math.ldexp(lo, -e)], [math.ldexp(hi, -e)])
            for lo, hi, e in zip(low.tolist(), high.tolist(), exponents, strict=True)
        ]
    rows = [statistic.terms(row[None], 1, params, *ends) for row, ends in zip(scopes, extremes, strict=True)]
    center, spread, low, high = ([terms[part][0] for terms in rows] for part in range(4))
    scale = [1.0 / (s + math.ldexp(EPS, -e)) for s, e in zip(spread, exponents, strict=True)]
    if record is not None:
        terms = _defined_terms(scopes.dtype, center, scale, spread)
        record.append(_in_input_units(*terms, exponents))
    if _regular(scopes.dtype, center, scale, spread, low, high):
        _kernels.affine(scopes, out, *_fused_constants(center, scale), *(mode.clip or _NO_BOUNDS), size)
        return
    for row, row_out, *terms in zip(scopes, out, center, scale, spread, low, high, strict=True):
        _apply(row[None], row_out[None], mode, 1, *([term] for term in terms))


def _readable_by_opencv(source: np.ndarray, out: np.ndarray) -> np.ndarray:
    """float16 converted into ``out`` (exact), where the affine then runs in place: OpenCV has no
    float16 reductions. Any other dtype as it is."""
    if source.dtype != np.float16:
        return source
    np.copyto(out, source)
    return out


def _prescaled(values: np.ndarray, low: float, high: float) -> tuple[np.ndarray, int]:
    """``(values * 2**-e, e)``, a float64 copy scaled into [-1, 1], when the values reach beyond
    ``PRESCALE_ABOVE``; else ``(values, 0)``.

    Scale safety: statistics and the affine of huge values would overflow (squares in the
    moments, ``max - min``, the float32 affine), so they are computed on the scaled copy, with
    eps scaled alike: the same output within rounding for any finite input. Multiplying by a
    power of two is exact (short of values 2**-922 times smaller than the largest, which
    underflow and were far below a float32 step of the output anyway). Non-finite extremes give
    undefined statistics anyway: those values are left as they are.
    """
    exponent = _prescale_exponent(low, high)
    if exponent == 0:
        return values, 0
    return np.ldexp(values, -exponent, dtype=np.float64), exponent


def _prescale_exponent(low: float, high: float) -> int:
    magnitude = max(abs(low), abs(high))
    return math.frexp(magnitude)[1] if PRESCALE_ABOVE < magnitude < math.inf else 0


def _scaled(values: list[float], exponent: int) -> list[float]:
    return values if exponent == 0 else [math.ldexp(v, -exponent) for v in values]


def _in_input_units(
    center: list[float], scale: list[float], exponents: list[int]
) -> tuple[list[float], list[float]]:
    """Terms of prescaled scopes (see :func:`_prescaled`) back in the input's units."""
    if not any(exponents):
        return center, scale
    center = [math.ldexp(c, e) for c, e in zip(center, exponents, strict=True)]
    scale = [math.ldexp(s, -e) for s, e in zip(scale, exponents, strict=True)]
    return center, scale


def _apply(
    sample: np.ndarray,
    out: np.ndarray,
    mode: Mode,
    channels: int,
    center: list[float],
    scale: list[float],
    spread: list[float],
    low: list[float],
    high: list[float],
) -> None:
    """The affine with per-scope terms: fused when that is exact enough, else centered."""
    if _regular(sample.dtype, center, scale, spread, low, high):
        _kernels.affine(sample, out, *_fused_constants(center, scale), *(mode.clip or _NO_BOUNDS))
        return
    center, scale = _defined_terms(sample.dtype, center, scale, spread)
    _apply_centered(sample, out, np.array(center), np.array(scale), channels, mode.clip)


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


# --------------------------------------------------------------------------- statistics


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


def _extremes_grain(statistic: Statistic, dtype: np.dtype) -> str | None:
    """The min/max pass a sample needs: the statistic's, and for floats at least the sample's
    (the prescaling reads it)."""
    return statistic.extremes or ("sample" if dtype.kind == "f" else None)


def _moments_terms(
    sample: np.ndarray, scopes: int, params: NormalizeParams, low: list[float], high: list[float]
) -> tuple[list[float], list[float], list[float], list[float]]:
    """``image`` modes: mean and std; the sample's extremes bound every scope's values."""
    mean, std = _mean_std(sample, scopes)
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


#: Statistic name (``Mode.statistic``) -> how this backend reduces it.
STATISTICS: dict[str, Statistic] = {
    "mean_std": Statistic(_moments_terms, extremes="sample"),
    "min_max": Statistic(_range_terms, extremes="scope"),
    "percentile": Statistic(_percentile_terms, extremes=None),
    "robust": Statistic(_robust_terms, extremes="sample"),
}


def _min_max(sample: np.ndarray, scopes: int) -> tuple[list[float], list[float]]:
    """Minimum and maximum of the sample (``scopes == 1``) or of each interleaved channel.

    NaN pixels are skipped, as in the reference (its min_max goes through cv2.normalize). One
    pass of the C kernel: as fast as cv2.minMaxLoc for the whole sample, which stops being
    right at a NaN pixel, and OpenCV has no per-channel call.
    """
    low, high = np.empty(scopes), np.empty(scopes)
    _kernels.min_max(sample, low, high)
    return low.tolist(), high.tolist()


def _percentiles(sample: np.ndarray, scopes: int, percentiles: Sequence[float]) -> list[list[float]]:
    """The ``percentiles`` of the sample or of each interleaved channel (one list of per-scope
    values per percentile), interpolated linearly as ``np.percentile`` does; NaN pixels are
    skipped (as min_max skips them).

    Integer images: exact from a per-channel histogram, one C pass (~5x faster than the
    partition inside np.percentile at 224² uint8, measured in benchmarks/). Floats: the
    partition, the fastest exact route without a histogram.
    """
    if sample.dtype.kind == "u":
        counts = np.zeros((scopes, PIXEL_TYPES[sample.dtype.name].histogram_bins), dtype=np.int64)
        _kernels.histogram(sample, counts)
        return histogram_percentiles(counts, percentiles).tolist()
    values = sample.reshape(-1, scopes)
    result = np.percentile(values, percentiles, axis=0)
    if np.isnan(result).any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a channel of only NaN gives NaN
            result = np.nanpercentile(values, percentiles, axis=0)
    return result.tolist()


def histogram_percentiles(
    counts: np.ndarray, percentiles: Sequence[float], method: str = "linear"
) -> np.ndarray:
    """Percentiles ``(len(percentiles), rows)`` of each row of ``counts``, a histogram of the
    integer values 0, 1, ...: the same as ``np.percentile(values, percentiles, method=method)``
    of the values it counts, for NumPy's ``"linear"`` (default) and ``"inverted_cdf"``.

    The value of 0-based rank k is the first bin whose cumulative count exceeds k: a binary
    search per rank (broadcast comparisons over the bins measured 3x slower for a few rows).
    The dataset statistics (norm_transforms.stats) use it too.
    """
    result = np.empty((len(percentiles), len(counts)))
    for row, cumulative in enumerate(np.cumsum(counts, axis=1)):
        total = int(cumulative[-1])
        for index, percentile in enumerate(percentiles):
            below, above, weight = _ranks_around(total, percentile / 100.0, method)
            low, high = np.searchsorted(cumulative, (below, above), side="right").tolist()
            # NumPy's linear interpolation, written as it writes it (from the nearer end).
            step = high - low
            result[index, row] = low + step * weight if weight < 0.5 else high - step * (1 - weight)
    return result


def _ranks_around(total: int, quantile: float, method: str) -> tuple[int, int, float]:
    """The 0-based ranks of the two sorted values a quantile lies between, and the weight of
    the upper one, with NumPy's float arithmetic so that the results agree with it."""
    if method == "inverted_cdf":
        index = max(math.ceil(total * quantile - 1), 0)
        return index, index, 0.0
    virtual = (total - 1) * quantile
    below = min(math.floor(virtual), total - 1)
    return below, min(below + 1, total - 1), virtual - below


def _mean_std(sample: np.ndarray, scopes: int) -> tuple[list[float], list[float]]:
    """Mean and population std in float64, of the whole sample or of each channel."""
    group = _opencv_channel_group(sample.size, scopes)
    if group:
        # cv2.meanStdDev has SIMD paths for 1, 2 and 4 channels: viewing an RGB uint8 image as
        # 12 interleaved channels (lcm(3, 4)) and pooling every third one measured 2x faster
        # than the 3-channel call, and the 4-channel view of the 1-channel (global) case 7x.
        mean, std = _pool(*cv2.meanStdDev(sample.reshape(-1, 1, group)), scopes)
        # NaN or inf pixels give NaN in their scope only (the comparison is false), no second pass.
        if not any(s < _ONE_PASS_MIN_STD_OVER_MEAN * abs(m) for m, s in zip(mean, std, strict=True)):
            return mean, std
    values = sample.reshape(-1, scopes).astype(np.float64)
    mean = values.mean(axis=0)
    # One correction pass removes the rounding of the first mean: exact for constant data,
    # so a constant image normalizes to exactly 0.
    mean = mean + (values - mean).mean(axis=0)
    return mean.tolist(), np.sqrt(((values - mean) ** 2).mean(axis=0)).tolist()


def _pool(means: np.ndarray, stds: np.ndarray, scopes: int) -> tuple[list[float], list[float]]:
    """Mean and std of each scope from those of its equal-sized groups (channel c of the view
    belongs to scope c % scopes). Python floats: a handful of values, where NumPy calls on tiny
    arrays cost ~15 µs more per image at 224²; NaN and inf propagate as in NumPy."""
    means_list, stds_list = means.ravel().tolist(), stds.ravel().tolist()
    pooled_means, pooled_stds = [], []
    for scope in range(scopes):
        group_means, group_stds = means_list[scope::scopes], stds_list[scope::scopes]
        mean = sum(group_means) / len(group_means)
        spread = sum(s * s + (m - mean) * (m - mean) for m, s in zip(group_means, group_stds, strict=True))
        pooled_means.append(mean)
        pooled_stds.append(math.sqrt(spread / len(group_means)))
    return pooled_means, pooled_stds


def _opencv_channel_group(size: int, scopes: int) -> int:
    """Channels of the interleaved view for cv2.meanStdDev, or 0 when none fits."""
    group = math.lcm(scopes, 4)
    if group <= _MEAN_STD_MAX_CHANNELS and size % group == 0:
        return group
    if scopes <= _MEAN_STD_MAX_CHANNELS and size % scopes == 0:
        return scopes
    return 0


# --------------------------------------------------------------------------- affine


def _fused_constants(center: Sequence[float], scale: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """float32 ``scale`` and ``offset = -center * scale``, folded in float64 and rounded once."""
    offset = [-float(c) * float(s) for c, s in zip(center, scale, strict=True)]
    return np.array(scale, dtype=np.float32), np.array(offset, dtype=np.float32)


def _fused_error_bound(
    low: Sequence[float], high: Sequence[float], center: Sequence[float], scale: Sequence[float]
) -> float:
    """Worst float32 rounding error of ``x * scale + offset`` for x in [low, high]."""
    scopes = zip(low, high, center, scale, strict=True)
    return 3 * _FLOAT32_UNIT_ROUNDOFF * max((max(abs(a), abs(b)) + abs(c)) * s for a, b, c, s in scopes)


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
    if source.dtype == np.float64:
        # Subtract before rounding to float32, so a constant image gives exactly 0.
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


# --------------------------------------------------------------------------- params and inverse


def terms_shape(shape: tuple[int, ...], *, batched: bool, volume: bool, samples: int) -> tuple[int, ...]:
    """The shape of per-scope terms that broadcast against an image of ``shape``: 1 on the
    spatial axes, ``samples`` on the batch axis, and the channel axis (if any) left as -1."""
    terms = [1] * len(shape)
    if batched:
        terms[0] = samples
    if len(shape) == int(batched) + (3 if volume else 2) + 1:
        terms[-1] = -1
    return tuple(terms)


def standard_affine_params(
    params: NormalizeParams, shape: tuple[int, ...], dtype: np.dtype, *, batched: bool, volume: bool
) -> AffineParams:
    """The standard mode's constants for an image of ``shape``, with ``dtype``'s full scale
    when ``max_pixel_value`` is None: the input's for normalize, the output's for denormalize."""
    layout = describe_layout(shape, batched=batched, volume=volume)
    terms = terms_shape(shape, batched=batched, volume=volume, samples=1)
    return _standard_terms(params, layout.channels, dtype, terms)


def _standard_terms(
    params: NormalizeParams, channels: int, dtype: np.dtype, shape: tuple[int, ...]
) -> AffineParams:
    center, scale = params.standard_center_scale(channels, np.dtype(dtype))
    # Copies: the folded constants are cached and shared (read-only).
    return AffineParams(center.reshape(shape).copy(), scale.reshape(shape).copy())


def _recorded_params(record: list[tuple[list[float], list[float]]], shape: tuple[int, ...]) -> AffineParams:
    centers, scales = zip(*record, strict=True)
    return AffineParams(np.array(centers).reshape(shape), np.array(scales).reshape(shape))


def denormalize(
    image: np.ndarray,
    params: NormalizeParams | AffineParams,
    *,
    batched: bool = False,
    volume: bool = False,
    dtype: Any = None,
) -> np.ndarray:
    """Invert a normalization: ``x = y / scale + center``, computed in float64.

    ``params``: the :class:`AffineParams` that ``normalize(..., return_params=True)`` returned,
    or standard-mode arguments (``batched`` and ``volume`` then say where the channel axis is,
    and ``max_pixel_value=None`` takes ``dtype``'s full scale). ``dtype``: float32 (None),
    float16 or float64 in the original units, or uint8 / uint16 rounded (half to even) and
    clipped to the dtype's range, NaN as 0.
    """
    dtype = _FLOAT32 if dtype is None else check_inverse_dtype(dtype)
    check_normalized(image)
    if isinstance(params, NormalizeParams):
        params = standard_affine_params(params, image.shape, dtype, batched=batched, volume=volume)
    center, scale = _checked_terms(params, image.shape)
    rows, center, scale = _long_rows(image, center, scale)
    # A scale of 0 or NaN gives inf or NaN pixels, as those terms say (undefined statistics).
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # The float64 reciprocal costs one rounding in 2^-53; a multiply is 15% faster than a divide.
        pixels = np.multiply(rows, 1.0 / scale, dtype=np.float64)
        pixels += center
        return _as_output(pixels, dtype).reshape(image.shape)


def check_normalized(image: np.ndarray) -> None:
    """Refuse what denormalize cannot read: it takes normalize's float output."""
    if image.dtype not in NORMALIZED_DTYPES:
        accepted = ", ".join(str(d) for d in NORMALIZED_DTYPES)
        raise TypeError(
            f"denormalize takes a normalized (float) image; got dtype {image.dtype}, accepted: {accepted}"
        )
    if image.size == 0:
        raise ValueError(f"image is empty (shape {image.shape}); nothing to denormalize")


def check_inverse_dtype(dtype: Any) -> np.dtype:
    """The NumPy dtype that denormalize writes for ``dtype``, or a TypeError that lists them."""
    resolved = _as_dtype(dtype)
    # (`is None` first: NumPy reads a comparison with None as one with float64.)
    if resolved is None or resolved not in SUPPORTED_DTYPES:
        accepted = ", ".join(str(d) for d in SUPPORTED_DTYPES)
        raise TypeError(f"denormalize writes NumPy dtypes {accepted}; got dtype={dtype!r}")
    return resolved


def _checked_terms(params: Any, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``params.center`` and ``params.scale`` as float64 arrays that broadcast to ``shape``."""
    terms = []
    for name in ("center", "scale"):
        value = getattr(params, name)
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
            raise TypeError(
                f"params.{name} must be a NumPy array of numbers for a NumPy image; "
                f"got {type(value).__name__}"
            )
        try:
            fits = np.broadcast_shapes(shape, value.shape) == shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(
                f"params.{name} has shape {value.shape}, which does not broadcast to the image's shape "
                f"{shape}; pass the params that normalize returned for this image (same layout)"
            )
        terms.append(value.astype(np.float64, copy=False))
    return terms[0], terms[1]


def _long_rows(
    image: np.ndarray, center: np.ndarray, scale: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The image as ``(..., W * C)`` rows and per-channel terms tiled to match, when the terms
    are ``(..., 1, C)``: broadcasting C-long terms makes NumPy run C-long inner loops, ~4x
    slower at 224² RGB (measured). Other shapes as they are."""
    center, scale = np.broadcast_arrays(center, scale)
    terms_shape = (1,) * (image.ndim - center.ndim) + center.shape
    if image.ndim < 2 or terms_shape[-1] == 1 or terms_shape[-2] != 1:
        return image, center, scale
    width = image.shape[-2]
    rows = image.reshape(*image.shape[:-2], -1)
    center, scale = (
        np.tile(terms.reshape(terms_shape), width).reshape(*terms_shape[:-2], -1) for terms in (center, scale)
    )
    return rows, center, scale


def _as_output(pixels: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """float64 pixels written as ``dtype``; integers rounded and clipped to the dtype's range."""
    if dtype.kind == "u":
        # Display pixels. fmax also turns NaN (undefined statistics) into 0 rather than a cast's
        # garbage, in the same pass: half the time of nan_to_num + clip (measured).
        np.fmax(pixels, 0.0, out=pixels)
        np.fmin(pixels, np.iinfo(dtype).max, out=pixels)
        np.rint(pixels, out=pixels)
    return pixels.astype(dtype)
