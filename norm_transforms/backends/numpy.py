"""NumPy / OpenCV kernels: per-image statistics and a per-channel affine, written as float32.

Every input is viewed as ``(samples, rows, row_length)``, a C-contiguous block per sample whose
rows hold ``width * channels`` interleaved values, so one code path serves HW, HWC, NHWC, DHWC
and NDHWC. Speed notes (single thread, 512x512 RGB, measured in benchmarks/ and recorded beside
each choice below) keep the reasons for each route next to it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import cv2
import numpy as np

from ..modes import (
    Mode,
    NormalizeParams,
    center_scale_from_moments,
    center_scale_from_range,
)

SUPPORTED_DTYPES = tuple(np.dtype(t) for t in (np.uint8, np.uint16, np.float16, np.float32, np.float64))
_FLOAT32 = np.dtype(np.float32)
_UINT8 = np.dtype(np.uint8)

# Output bytes converted per step on the chunked route: 256 KiB stays in L2, and measured
# faster than 64 KiB (more Python calls) and 1 MiB (spills to memory) at 512² and 1024².
_CHUNK_BYTES = 1 << 18

# cv2.transform and cv2.LUT handle up to 4 interleaved channels at copy speed; more channels
# go through NumPy with per-channel vectors tiled along the row.
_OPENCV_MAX_CHANNELS = 4

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


def check_array(image: np.ndarray) -> None:
    """Refuse what no kernel handles, with a message that says what is accepted."""
    if image.dtype not in SUPPORTED_DTYPES:
        accepted = ", ".join(str(d) for d in SUPPORTED_DTYPES)
        raise TypeError(f"image dtype {image.dtype} is not supported; accepted: {accepted}")
    if image.size == 0:
        raise ValueError(f"image is empty (shape {image.shape}); nothing to normalize")


def normalize_array(
    image: np.ndarray, params: NormalizeParams, *, batched: bool = False, volume: bool = False
) -> np.ndarray:
    """Normalize a NumPy image (or batch of images / volumes) to float32.

    Statistics are per sample: per image with ``batched=True``, per volume with ``volume=True``.
    The input is never modified.
    """
    check_array(image)
    layout = describe_layout(image.shape, batched=batched, volume=volume)
    source = np.ascontiguousarray(image).reshape(layout.samples, layout.rows, layout.row_length)
    out = np.empty(image.shape, dtype=np.float32)
    target = out.reshape(source.shape)
    mode = params.mode
    if mode.statistic is None:
        scale32, offset32 = _standard_constants(params, layout.channels, image.dtype)
        flat = (layout.samples * layout.rows, layout.row_length)
        _apply_affine(source.reshape(flat), target.reshape(flat), scale32, offset32, layout.channels)
        return out
    for sample, sample_out in zip(source, target, strict=True):
        _normalize_sample(sample, sample_out, mode, layout.channels)
    return out


@functools.lru_cache(maxsize=256)
def _standard_constants(params: NormalizeParams, channels: int, dtype: np.dtype) -> tuple[np.ndarray, ...]:
    center, scale = params.standard_center_scale(channels, dtype)
    return _uniform_if_equal(*_fused_constants(center, scale))


def _normalize_sample(sample: np.ndarray, out: np.ndarray, mode: Mode, channels: int) -> None:
    """One per-image normalization: statistics, then the affine, clipped only when needed."""
    if sample.dtype == np.float16:
        # OpenCV has no float16 reductions; the conversion is exact and lands in `out`.
        np.copyto(out, sample)
        sample = out
    scopes = channels if mode.per_channel else 1
    if mode.statistic == "mean_std":
        center, scale = center_scale_from_moments(*_mean_std(sample, scopes))
        # The image's extremes bound every channel's: enough to decide the clip and the
        # rounding bound, and one cv2.minMaxLoc pass instead of two per-channel reductions.
        low, high = _min_max(sample, 1)
        if scopes > 1:
            low, high = np.repeat(low, scopes), np.repeat(high, scopes)
    else:
        low, high = _min_max(sample, scopes)
        with np.errstate(invalid="ignore"):  # inf - inf: caught just below
            center, scale = center_scale_from_range(low, high)
    if sample.dtype.kind == "f":
        # Documented: a NaN (image modes) or ±inf (all modes) in a scope, the image or one
        # channel, leaves its statistics undefined, and its whole output is NaN.
        broken = ~np.isfinite(center + scale)
        if mode.statistic == "min_max":
            broken |= ~np.isfinite(high)  # a +inf maximum gives scale 0, not NaN
        if broken.any():
            with np.errstate(invalid="ignore", over="ignore"):
                _apply_centered(
                    sample,
                    out,
                    np.where(broken, np.nan, center),
                    np.where(broken, np.nan, scale),
                    channels,
                    mode.clip,
                )
            return
    if _fused_error_bound(low, high, center, scale) > _FUSED_MAX_ERROR:
        _apply_centered(sample, out, center, scale, channels, mode.clip)
        return
    scale32, offset32 = _fused_constants(center, scale)
    offset32, inside = _fit_offset(low, high, scale32, offset32, mode.clip)
    _apply_affine(sample, out, scale32, offset32, channels)
    if not inside:
        np.clip(out, *mode.clip, out=out)


# --------------------------------------------------------------------------- statistics


def _min_max(sample: np.ndarray, scopes: int) -> tuple[np.ndarray, np.ndarray]:
    """Minimum and maximum of the sample (``scopes == 1``) or of each interleaved channel.

    NaN pixels are skipped, as in the reference (its min_max goes through cv2.normalize).
    """
    if scopes == 1:
        # cv2.minMaxLoc on the 2-D view: one pass, ~0.01 ms at 224², half of np.min + np.max.
        low, high, _, _ = cv2.minMaxLoc(sample)
        if low <= high:
            return np.array([low]), np.array([high])
        # NaN: OpenCV returns NaN when the first pixel is NaN and ±FLT_MAX when all are.
        return np.fmin.reduce(sample, axis=None)[None], np.fmax.reduce(sample, axis=None)[None]
    # Reduce down the rows first (contiguous, SIMD), then across the few values of each channel:
    # ~0.08 ms at 512² for uint8, where a reduction over a (pixels, 3) view takes ~2 ms.
    low = np.fmin.reduce(np.fmin.reduce(sample, axis=0).reshape(-1, scopes), axis=0)
    high = np.fmax.reduce(np.fmax.reduce(sample, axis=0).reshape(-1, scopes), axis=0)
    return low.astype(np.float64), high.astype(np.float64)


def _mean_std(sample: np.ndarray, scopes: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population std in float64, of the whole sample or of each channel."""
    group = _opencv_channel_group(sample.size, scopes)
    if group:
        # cv2.meanStdDev has SIMD paths for 1, 2 and 4 channels: viewing an RGB uint8 image as
        # 12 interleaved channels (lcm(3, 4)) and pooling every third one measured 2x faster
        # than the 3-channel call, and the 4-channel view of the 1-channel (global) case 7x.
        view = sample.reshape(-1, 1, group)
        means, stds = (v.reshape(-1, scopes) for v in cv2.meanStdDev(view))
        if not np.isfinite(means).all():
            with np.errstate(invalid="ignore"):  # NaN or inf pixels: NaN in their scope only
                return _pool(means, stds)
        mean, std = _pool(means, stds)
        if not (std < _ONE_PASS_MIN_STD_OVER_MEAN * np.abs(mean)).any():
            return mean, std
    values = sample.reshape(-1, scopes).astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        mean = values.mean(axis=0)
        # One correction pass removes the rounding of the first mean: exact for constant data,
        # so a constant image normalizes to exactly 0.
        mean = mean + (values - mean).mean(axis=0)
        return mean, np.sqrt(((values - mean) ** 2).mean(axis=0))


def _pool(means: np.ndarray, stds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of each column's equal-sized groups, with bare ufunc reductions (~5x less
    overhead than ``.mean()`` on these tiny arrays)."""
    groups = means.shape[0]
    mean = np.add.reduce(means, axis=0) / groups
    return mean, np.sqrt(np.add.reduce(stds * stds + (means - mean) ** 2, axis=0) / groups)


def _opencv_channel_group(size: int, scopes: int) -> int:
    """Channels of the interleaved view for cv2.meanStdDev, or 0 when none fits."""
    group = math.lcm(scopes, 4)
    if group <= 512 and size % group == 0:  # 512: OpenCV's channel limit
        return group
    if scopes <= 512 and size % scopes == 0:
        return scopes
    return 0


# --------------------------------------------------------------------------- affine


def _fused_constants(center: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 ``scale`` and ``offset = -center * scale``, folded in float64 and rounded once."""
    return scale.astype(np.float32), (-center * scale).astype(np.float32)


def _uniform_if_equal(scale32: np.ndarray, offset32: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One value for all channels when they are all equal: the faster uniform route applies."""
    if np.all(scale32 == scale32[0]) and np.all(offset32 == offset32[0]):
        return scale32[:1], offset32[:1]
    return scale32, offset32


def _apply_affine(
    source: np.ndarray, out: np.ndarray, scale32: np.ndarray, offset32: np.ndarray, channels: int
) -> None:
    """``out = source * scale + offset`` per interleaved channel, written as float32.

    One value in ``scale32`` / ``offset32`` applies to every channel.
    """
    if scale32.size == 1 and source.dtype.kind == "u":
        # One pass from uint8/uint16 straight to float32: ~2x the astype floor. Integer input
        # only: its `+ 0 * x` term would turn an infinite float pixel into NaN.
        cv2.addWeighted(source, float(scale32[0]), source, 0.0, float(offset32[0]), dst=out, dtype=cv2.CV_32F)
        return
    affine = _float32_affine(scale32, offset32, channels, source.shape[1])
    if source.dtype == _FLOAT32:
        affine(source, out)
    else:
        _convert_in_blocks(source, out, affine)


def _float32_affine(
    scale32: np.ndarray, offset32: np.ndarray, channels: int, row_length: int
) -> Callable[[np.ndarray, np.ndarray], None]:
    """``dst = src * scale + offset`` on float32 rows, with its constants prepared once."""
    if scale32.size == 1:
        # A 1x2 matrix on the 1-channel view: copy speed, and inf stays inf.
        matrix, pixel_channels = np.array([[scale32[0], offset32[0]]], dtype=np.float64), 1
    elif channels <= _OPENCV_MAX_CHANNELS:
        # cv2.transform with a diagonal C x (C+1) matrix runs at copy speed on float32.
        matrix, pixel_channels = _affine_matrix(scale32, offset32), channels
    else:
        tiles = row_length // channels
        scale_row, offset_row = np.tile(scale32, tiles), np.tile(offset32, tiles)

        def tiled(src: np.ndarray, dst: np.ndarray) -> None:
            np.multiply(src, scale_row, out=dst)
            np.add(dst, offset_row, out=dst)

        return tiled

    def transform(src: np.ndarray, dst: np.ndarray) -> None:
        cv2.transform(
            src.reshape(src.shape[0], -1, pixel_channels),
            matrix,
            dst=dst.reshape(dst.shape[0], -1, pixel_channels),
        )

    return transform


def _convert_in_blocks(
    source: np.ndarray, out: np.ndarray, affine: Callable[[np.ndarray, np.ndarray], None]
) -> None:
    # OpenCV has no single call that converts uint8 and applies a per-channel affine. Converting
    # a block of rows into a small float32 scratch buffer, then transforming scratch -> out,
    # keeps the scratch in L2 and writes `out` once: ~2.9x the astype floor for RGB uint8 at
    # 512², where converting into `out` and transforming in place is ~3.9x, a 3-channel
    # cv2.LUT ~6x and NumPy broadcasting against a length-3 axis ~40x. 256 KiB blocks measured
    # fastest over 224²..1024²; in-place or larger blocks hit a slow OpenCV path (~10x).
    # The scratch block stays under a fifth of the output, so peak memory stays <= 1.2x it.
    block_bytes = min(_CHUNK_BYTES, 4 * source.size // 5)
    rows_per_chunk = max(1, block_bytes // (4 * source.shape[1]))
    scratch = np.empty((min(rows_per_chunk, source.shape[0]), source.shape[1]), dtype=np.float32)
    for start in range(0, source.shape[0], rows_per_chunk):
        block = out[start : start + rows_per_chunk]
        converted = scratch[: block.shape[0]]
        np.copyto(converted, source[start : start + rows_per_chunk], casting="unsafe")
        affine(converted, block)


def _affine_matrix(scale32: np.ndarray, offset32: np.ndarray) -> np.ndarray:
    channels = scale32.size
    matrix = np.zeros((channels, channels + 1), dtype=np.float64)
    matrix[np.arange(channels), np.arange(channels)] = scale32
    matrix[:, channels] = offset32
    return matrix


def _fused_error_bound(low: np.ndarray, high: np.ndarray, center: np.ndarray, scale: np.ndarray) -> float:
    """Worst float32 rounding error of ``x * scale + offset`` for x in [low, high]."""
    largest = np.maximum(np.abs(low), np.abs(high)) * scale
    return 3 * _FLOAT32_UNIT_ROUNDOFF * float((largest + np.abs(center * scale)).max())


def _fit_offset(
    low: np.ndarray,
    high: np.ndarray,
    scale32: np.ndarray,
    offset32: np.ndarray,
    bounds: tuple[float, float] | None,
) -> tuple[np.ndarray, bool]:
    """An offset that keeps every pixel inside ``bounds``, and whether one was found.

    The affine is increasing, so its extremes are at the sample's min and max. We evaluate them
    in float32 with and without a fused multiply-add (OpenCV may use either). When rounding
    alone pushes an extreme out by an ulp (``min_max`` maps the minimum to 0 exactly in theory),
    moving the offset by an ulp fixes it for ~1e-7 of error; that saves a whole clip pass.
    """
    if bounds is None:
        return offset32, True
    fitted = offset32.copy()
    # Scalar float32 arithmetic: a few µs for 1-4 scopes, where array ops cost ~1 µs each.
    for index, (start, stop, scale) in enumerate(zip(low, high, scale32, strict=True)):
        offset = fitted[index]
        for _ in range(3):
            ends = _float32_results(np.float32(start), scale, offset) + _float32_results(
                np.float32(stop), scale, offset
            )
            too_low, too_high = min(ends) < bounds[0], max(ends) > bounds[1]
            if not (too_low or too_high):
                break
            if too_low and too_high:
                return offset32, False
            offset = np.nextafter(offset, np.float32(np.inf if too_low else -np.inf))
        else:
            return offset32, False
        fitted[index] = offset
    return fitted, True


def _float32_results(pixel: np.float32, scale: np.float32, offset: np.float32) -> tuple[float, float]:
    """``pixel * scale + offset`` in float32 without, then with, a fused multiply-add."""
    return float(pixel * scale + offset), float(np.float32(float(pixel) * float(scale) + float(offset)))


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
        with np.errstate(invalid="ignore"):
            centered = np.subtract(source, np.tile(center, tiles))
            np.multiply(centered, np.tile(scale, tiles), out=out, casting="same_kind")
    else:
        np.copyto(out, source, casting="unsafe")
        # The center as a float32 pair, high + low: subtracting the high part is exact for pixels
        # near the center (where the fused form loses digits), the low part then costs one rounding.
        with np.errstate(invalid="ignore"):
            center_high = center.astype(np.float32)
            center_low = (center - center_high).astype(np.float32)
        for part in (center_high, center_low):
            np.subtract(out, np.tile(part, tiles), out=out)
        np.multiply(out, np.tile(scale.astype(np.float32), tiles), out=out)
    if bounds is not None:
        np.clip(out, *bounds, out=out)
