"""``normalize`` on the NumPy backend: statistics per sample (``statistics.STATISTICS``), then
the affine (``affine``), for interleaved arrays and for Torch's channel-planar CPU tensors."""

from __future__ import annotations

import contextlib
import functools
import math
from typing import Any

import numpy as np

from ...modes import AffineParams, NormalizeParams, check_selects_statistics
from .. import kernels as _kernels
from .affine import (
    _NO_BOUNDS,
    _apply,
    _defined_terms,
    _fused_constants,
    _in_input_units,
    _regular,
    prescaled_scale,
)
from .layout import _as_dtype, check_image, check_mask, describe_layout, terms_shape
from .selection import normalize_selected_sample
from .statistics import STATISTICS, _extremes_grain, _min_max, _prescale_exponent, _prescaled, scaled_by_scope

_FLOAT32 = np.dtype(np.float32)
_NO_CONTEXT = contextlib.nullcontext()


def normalize(
    image: np.ndarray,
    params: NormalizeParams,
    *,
    batched: bool = False,
    volume: bool = False,
    dtype: Any = None,
    return_params: bool = False,
    mask: np.ndarray | None = None,
) -> np.ndarray | tuple[np.ndarray, AffineParams]:
    """Normalize a NumPy image (or batch of images / volumes) to float32, or float16 with
    ``dtype=np.float16`` (computed in float32, rounded once).

    Statistics are per sample: per image with ``batched=True``, per volume with ``volume=True``;
    with ``params.nonzero`` over the non-zero pixels only (zeros stay 0), with ``mask`` (a
    boolean array of the image's shape, or of that shape without the channel axis) over the
    pixels it selects. The input is never modified. ``return_params=True`` also returns the
    :class:`AffineParams` applied, shaped to broadcast against the image.
    """
    out_dtype = _FLOAT32 if dtype is None else _as_dtype(dtype)
    if out_dtype not in OUTPUT_DTYPES:
        raise TypeError(f"NumPy images normalize to float32 (default) or float16; got dtype={dtype!r}")
    check_image(image)
    layout = describe_layout(image.shape, batched=batched, volume=volume)
    source = np.ascontiguousarray(image).reshape(layout.samples, layout.rows, layout.row_length)
    mode = params.mode
    if mask is not None:
        check_selects_statistics("mask", mode.name)
        mask = np.ascontiguousarray(check_mask(mask, image.shape, batched=batched, volume=volume))
        mask = mask.reshape(source.shape)
    if mode.statistic is None:
        # One pass for float16 too: the C affine rounds each float32 value as it writes it.
        out = np.empty(image.shape, dtype=out_dtype)
        scale32, offset32 = _standard_constants(params, layout.channels, image.dtype)
        _kernels.affine(source, out.reshape(source.shape), scale32, offset32, *(params.clip or _NO_BOUNDS))
        if return_params:
            layout_flags = {"batched": batched, "volume": volume}
            return out, standard_affine_params(params, image.shape, image.dtype, **layout_flags)
        return out
    out = np.empty(image.shape, dtype=np.float32)
    target = out.reshape(source.shape)
    # The per-scope terms of every sample, kept only when asked for.
    record: list[tuple[list[float], list[float]]] | None = [] if return_params else None
    # NaN or inf pixels give NaN statistics by design (documented); NumPy's warnings about
    # them are silenced here, once per call (integers have none: errstate costs ~1 µs).
    with np.errstate(invalid="ignore", over="ignore") if image.dtype.kind == "f" else _NO_CONTEXT:
        if mask is None and not params.nonzero:
            for index in range(layout.samples):  # indexing: zip over the arrays cost 1 µs more
                _normalize_one_sample(source[index], target[index], params, layout.channels, record)
        else:
            for index, (sample, sample_out) in enumerate(zip(source, target, strict=True)):
                chosen = None if mask is None else mask[index]
                normalize_selected_sample(sample, chosen, sample_out, params, layout.channels, record)
    if out_dtype != _FLOAT32:
        out = narrowed(out, out_dtype)
    if record is None:
        return out
    shape = terms_shape(image.shape, batched=batched, volume=volume, samples=layout.samples)
    return out, _recorded_params(record, shape)


#: What ``normalize`` writes: float32, or float16 (half the bytes through collate, shared
#: memory and the copy to a GPU), always computed in float32.
OUTPUT_DTYPES = (_FLOAT32, np.dtype(np.float16))


def narrowed(out: np.ndarray, dtype: np.dtype, into: np.ndarray | None = None) -> np.ndarray:
    """The float32 ``out`` rounded once to ``dtype`` by the C affine (``x * 1 + -0.0`` is ``x``,
    signed zeros included), written to ``into`` when given: F16C's 8 values per instruction,
    where NumPy's astype(float16) cost 290 us at 224x224x3 (10x the whole per-image
    normalization)."""
    narrow = np.empty(out.shape, dtype=dtype) if into is None else into
    _kernels.affine(out, narrow, _ONE, _MINUS_ZERO, *_NO_BOUNDS)
    return narrow


_ONE, _MINUS_ZERO = np.ones(1, np.float32), np.full(1, -0.0, np.float32)


def normalize_planar(
    planes: np.ndarray,
    params: NormalizeParams,
    *,
    out: np.ndarray | None = None,
    return_params: bool = False,
    mask: np.ndarray | None = None,
) -> np.ndarray | tuple[np.ndarray, AffineParams]:
    """Normalize ``(samples, C, H, W)`` channel-planar images (Torch's CPU layout) to float32,
    each sample with its own statistics, through the same kernels as :func:`normalize`;
    ``params.nonzero`` and ``mask`` (booleans of the planes' shape) select the pixels the
    statistics come from, as there. ``out``, when given, is written instead of a new array:
    C-contiguous, the shape of ``planes``, float32 or float16 (rounded once from float32).

    Every scope (a plane, or a whole sample) is a contiguous block, so the statistics take one
    kernel call per batch (min/max) or one per scope (moments), and the affine one call per
    batch with a table entry per scope: a call per plane cost ~5 µs of glue each.
    ``return_params=True`` also returns the :class:`AffineParams` applied, shaped
    ``(samples, C or 1, 1, 1)`` (``(1, C, 1, 1)`` for the standard mode's constants).
    """
    check_image(planes)
    samples, channels, height, width = planes.shape
    if mask is not None:
        check_selects_statistics("mask", params.mode.name)
        if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != planes.shape:
            got = f"{mask.dtype} {mask.shape}" if isinstance(mask, np.ndarray) else type(mask).__name__
            raise ValueError(f"mask must be a boolean array of the planes' shape {planes.shape}; got {got}")
    source = np.ascontiguousarray(planes)
    out = np.empty(planes.shape, dtype=np.float32) if out is None else _checked_out(out, planes.shape)
    mode = params.mode
    if mode.statistic is None:  # the C affine writes float16 itself, in the same pass
        scale32, offset32 = _standard_constants(params, channels, planes.dtype)
        _kernels.affine(source, out, scale32, offset32, *(params.clip or _NO_BOUNDS), height * width)
        return (out, _standard_terms(params, channels, planes.dtype, (1, -1, 1, 1))) if return_params else out
    scopes = source.reshape(samples * channels if mode.per_channel else samples, -1)
    wide = out if out.dtype == _FLOAT32 else np.empty(planes.shape, dtype=np.float32)
    record: list[tuple[list[float], list[float]]] | None = [] if return_params else None
    with np.errstate(invalid="ignore", over="ignore"):
        if mask is None and not params.nonzero:
            _normalize_scopes(scopes, wide.reshape(scopes.shape), params, record)
        else:
            _normalize_selected_scopes(scopes, wide.reshape(scopes.shape), params, mask, record)
    if wide is not out:
        narrowed(wide, out.dtype, into=out)
    if record is None:
        return out
    return out, _recorded_params(record, (samples, -1, 1, 1))


def normalize_to_planes(image: np.ndarray, params: NormalizeParams, *, out: np.ndarray) -> np.ndarray:
    """The standard mode of an ``(H, W, C)`` image written as ``(C, H, W)`` planes into ``out``
    (C-contiguous float32 or float16), in one pass: the C kernel splits the channels a chunk at
    a time in L1 and runs the affine on them (25 us at 224x224x3 uint8, where ``cv2.split``
    then the planar affine took 60-110 us). The values are :func:`normalize_planar`'s, bit for
    bit. Per-image modes read their statistics from planes: split the image first."""
    if params.mode.statistic is not None:
        raise ValueError(f"normalize_to_planes runs the standard mode only; got {params.mode.name!r}")
    check_image(image)
    height, width, channels = image.shape
    _checked_out(out, (channels, height, width))
    source = np.ascontiguousarray(image)
    if np.shares_memory(source, out):  # the kernel reads the source while it writes the planes
        source = source.copy()
    scale32, offset32 = _standard_constants(params, channels, image.dtype)
    _kernels.affine_to_planes(source, out, scale32, offset32, *(params.clip or _NO_BOUNDS))
    return out


def _checked_out(out: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    usable = out.flags.c_contiguous and out.flags.writeable
    if out.shape != shape or out.dtype not in OUTPUT_DTYPES or not usable:
        raise ValueError(
            f"out must be a writeable C-contiguous float32 or float16 array of shape {shape}; "
            f"got {out.dtype} {out.shape}{'' if usable else ' (read-only or not C-contiguous)'}"
        )
    return out


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
    if statistic.fused is not None:
        low, high, center, spread = statistic.fused(sample, scopes)
        sample, exponents = _prescaled_scopes(sample, low, high, scopes)
        if any(exponents):  # huge values: the one pass again, on the scaled copy (rare)
            low, high, center, spread = statistic.fused(sample, scopes)
    else:
        grain = _extremes_grain(statistic, sample.dtype)
        low, high, exponents = [], [], [0] * scopes
        if grain is not None:
            # A float sample's channels each by their own power of two (their own extremes).
            per_scope = grain == "scope" or sample.dtype.kind == "f"
            low, high = _min_max(sample, scopes if per_scope else 1)
            sample, exponents = _prescaled_scopes(sample, low, high, scopes)
            low = [math.ldexp(value, -e) for value, e in zip(low, exponents, strict=False)]
            high = [math.ldexp(value, -e) for value, e in zip(high, exponents, strict=False)]
            if grain == "sample" and len(low) > 1:  # the terms read the whole sample's bounds
                low, high = [min(low)], [max(high)]
        center, spread, low, high = statistic.terms(sample, scopes, params, low, high)
    scale = [prescaled_scale(s, e) for s, e in zip(spread, exponents, strict=True)]
    _apply(sample, out, params.clip, channels, center, scale, spread, low, high)
    if record is not None:
        terms = _defined_terms(sample.dtype, center, scale, spread)
        record.append(_in_input_units(*terms, spread, exponents))


def _prescaled_scopes(
    sample: np.ndarray, low: list[float], high: list[float], scopes: int
) -> tuple[np.ndarray, list[int]]:
    """``sample`` (rows of ``scopes`` interleaved channels) prescaled as ``statistics._prescaled``
    does, and the exponent of each scope: each channel by its own power of two where ``low``
    and ``high`` hold each channel's extremes (as the planar rows are, ``_rows_terms``), so
    that a float64 channel of values near 1 beside one near 1e300 is not scaled by 2**-997 with
    it (its squares underflowed: a std of 0, or a NaN output in ``min_max_per_channel``; found
    in review); else the whole sample by one."""
    if sample.dtype.kind != "f" or len(low) != scopes or scopes == 1:
        sample, exponent = _prescaled(sample, low + high)
        return sample, [exponent] * scopes
    exponents = [_prescale_exponent([lo, hi]) for lo, hi in zip(low, high, strict=True)]
    return scaled_by_scope(sample, exponents), exponents


def _normalize_scopes(
    scopes: np.ndarray,
    out: np.ndarray,
    params: NormalizeParams,
    record: list[tuple[list[float], list[float]]] | None = None,
) -> None:
    """Per-image normalization of ``(scopes, values)`` rows, each row one statistics scope
    (a plane or a whole sample of planar data), with one affine call for all rows.
    ``record``, when given, receives the ``(center, scale)`` terms of every row."""
    scopes = _readable_by_opencv(scopes, out)
    scopes, exponents, (center, spread, low, high) = _rows_terms(scopes, params)
    scale = [prescaled_scale(s, e) for s, e in zip(spread, exponents, strict=True)]
    if record is not None:
        terms = _defined_terms(scopes.dtype, center, scale, spread)
        record.append(_in_input_units(*terms, spread, exponents))
    if _regular(scopes.dtype, center, scale, spread, low, high):
        bounds = params.clip or _NO_BOUNDS
        _kernels.affine(scopes, out, *_fused_constants(center, scale), *bounds, scopes.shape[1])
        return
    for row, row_out, *terms in zip(scopes, out, center, scale, spread, low, high, strict=True):
        _apply(row[None], row_out[None], params.clip, 1, *([term] for term in terms))


def _rows_terms(
    scopes: np.ndarray, params: NormalizeParams
) -> tuple[np.ndarray, list[int], tuple[list[float], list[float], list[float], list[float]]]:
    """The ``(center, spread, low, high)`` terms of every row of ``scopes``, each row one scope,
    with the rows prescaled where their values are huge (each by its own power of two, see
    ``_prescaled``): ``(rows, exponents, terms)``. Every row is a scope, so one kernel call gives
    the extremes (or the fused pass) of all of them."""
    statistic = STATISTICS[params.mode.statistic]
    count, size = scopes.shape
    low: list[float] = []
    high: list[float] = []
    if statistic.fused is not None:
        low, high, center, spread = statistic.fused(scopes, count, size)
    elif _extremes_grain(statistic, scopes.dtype) is not None:
        low, high = _min_max(scopes, count, size)
    exponents = [0] * count
    if low and scopes.dtype.kind == "f":  # integer rows never reach PRESCALE_ABOVE
        exponents = [_prescale_exponent([lo, hi]) for lo, hi in zip(low, high, strict=True)]
    if any(exponents):
        scopes = np.ldexp(scopes, -np.array(exponents)[:, None], dtype=np.float64)
        if statistic.fused is not None:  # the one pass again, on the scaled rows (rare)
            low, high, center, spread = statistic.fused(scopes, count, size)
        else:
            low, high = (
                [math.ldexp(v, -e) for v, e in zip(ends, exponents, strict=True)] for ends in (low, high)
            )
    if statistic.fused is not None:
        return scopes, exponents, (center, spread, low, high)
    if not statistic.reads_pixels:  # the terms come from the extremes alone: one call for every row
        return scopes, exponents, statistic.terms(None, count, params, low, high)
    rows = [
        statistic.terms(row[None], 1, params, low[index : index + 1], high[index : index + 1])
        for index, row in enumerate(scopes)
    ]
    return scopes, exponents, tuple([terms[part][0] for terms in rows] for part in range(4))


def _normalize_selected_scopes(
    scopes: np.ndarray,
    out: np.ndarray,
    params: NormalizeParams,
    mask: np.ndarray | None,
    record: list[tuple[list[float], list[float]]] | None,
) -> None:
    """``(scopes, values)`` rows of planar data, each with statistics over its selected pixels:
    each row is a 1-channel sample of its own (a call per row; the rows of the plain route
    share one affine call, which the empty scopes and per-row guards of this route rule out)."""
    if mask is not None:
        mask = np.ascontiguousarray(mask).reshape(scopes.shape)
    rows: list[tuple[list[float], list[float]]] | None = [] if record is not None else None
    for index in range(len(scopes)):
        row = slice(index, index + 1)
        normalize_selected_sample(scopes[row], None if mask is None else mask[row], out[row], params, 1, rows)
    if record is not None and rows is not None:
        record.append(([terms[0][0] for terms in rows], [terms[1][0] for terms in rows]))


def _readable_by_opencv(source: np.ndarray, out: np.ndarray) -> np.ndarray:
    """float16 converted into ``out`` (exact), where the affine then runs in place: OpenCV has no
    float16 reductions. Any other dtype as it is."""
    if source.dtype != np.float16:
        return source
    np.copyto(out, source)
    return out


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
