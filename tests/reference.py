"""The SPEC section 1 formulas in float64, written as plainly as possible."""

from __future__ import annotations

import numpy as np

from norm_transforms.modes import DTYPE_MAX_PIXEL_VALUE, EPS, MODES


def channel_values(values, channels: int) -> np.ndarray:
    values = np.atleast_1d(np.asarray(values, dtype=np.float64))
    return np.full(channels, values[0]) if values.size == 1 or channels == 1 else values


def reference_normalize(
    image: np.ndarray,
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
    max_pixel_value: float | None = 255.0,
    normalization: str = "standard",
    percentiles: tuple[float, float] = (1.0, 99.0),
    clip_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """One image, HW or HWC, in float64; ``clip_range`` clips after the mode's own clip, as
    AlbumentationsX documents it."""
    x = image.astype(np.float64)
    squeeze = x.ndim == 2
    if squeeze:
        x = x[..., None]
    channels = x.shape[-1]
    mode = MODES[normalization]
    if normalization == "standard":
        mpv = DTYPE_MAX_PIXEL_VALUE[image.dtype] if max_pixel_value is None else max_pixel_value
        y = (x - channel_values(mean, channels) * mpv) / (channel_values(std, channels) * mpv)
    else:
        axes = (0, 1) if mode.per_channel else (0, 1, 2)
        # Scale safety: the formulas on x * 2**-e with eps * 2**-e, 2**e just above the largest
        # magnitude of each scope, which is the same arithmetic without overflow (squares of
        # 1e300) nor underflow (a channel of 1 beside one of 1e300).
        exponent = _exponent_of_largest(x, axes)
        x, eps = np.ldexp(x, -exponent), np.ldexp(EPS, -exponent)
        with np.errstate(invalid="ignore"):
            if mode.statistic == "mean_std":
                center = x.mean(axis=axes)
                denominator = x.std(axis=axes) + eps
            elif mode.statistic == "percentile":
                center, high = np.percentile(x, percentiles, axis=axes)
                denominator = high - center + eps
            elif mode.statistic == "robust":
                lower_quartile, center, upper_quartile = np.percentile(x, (25, 50, 75), axis=axes)
                denominator = upper_quartile - lower_quartile + eps
            else:
                center = x.min(axis=axes)
                denominator = x.max(axis=axes) - center + eps
            y = (x - center) / denominator
            y = y if mode.clip is None else np.clip(y, *mode.clip)
    if clip_range is not None:
        y = np.clip(y, *clip_range)
    return y[..., 0] if squeeze else y


def _exponent_of_largest(x: np.ndarray, axes: tuple[int, ...] | None = None) -> np.ndarray:
    """The power of two of the largest finite magnitude over ``axes`` (all; keepdims), 0 where
    there is none."""
    largest = np.where(np.isfinite(x), np.abs(x), 0.0).max(axis=axes, keepdims=True, initial=0.0)
    return np.frexp(largest)[1]


def reference_normalize_samples(samples: np.ndarray, *, has_channels: bool, **kwargs) -> np.ndarray:
    """Statistics per sample (image or volume): each sample is flattened to one tall image."""
    out = np.empty(samples.shape, dtype=np.float64)
    for index, sample in enumerate(samples):
        tall = sample.reshape(-1, 1, sample.shape[-1]) if has_channels else sample.reshape(-1, 1)
        out[index] = reference_normalize(tall, **kwargs).reshape(sample.shape)
    return out


def reference_normalize_selected(
    image: np.ndarray,
    selected: np.ndarray | None = None,
    *,
    nonzero: bool = False,
    mean=None,
    std=None,
    max_pixel_value=None,
    normalization: str = "image",
    percentiles: tuple[float, float] = (1.0, 99.0),
    clip_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """One image, HW or HWC, in float64, written as MONAI writes ``NormalizeIntensity(nonzero=True)``
    with our modes' formulas: each scope's statistics over its selected values (``selected``,
    booleans of the image's shape or HW, and with ``nonzero`` only the non-zero values), the
    mode's affine on every pixel, then the zero pixels set to 0 (``nonzero``); a scope without
    a selected value is all 0. ``mean``, ``std`` and ``max_pixel_value`` are unused (per-image
    modes), taken so the tests pass one set of arguments."""
    x = image.astype(np.float64)
    squeeze = x.ndim == 2
    if squeeze:
        x = x[..., None]
    chosen = np.ones(x.shape, bool) if selected is None else np.asarray(selected, bool)
    chosen = np.broadcast_to(chosen if chosen.ndim == x.ndim else chosen.reshape((*x.shape[:2], 1)), x.shape)
    zero = x == 0  # before the scaling below, which takes a tiny value to 0
    if nonzero:
        chosen = chosen & ~zero
    mode = MODES[normalization]
    scopes = [(Ellipsis, c) for c in range(x.shape[-1])] if mode.per_channel else [(Ellipsis,)]
    y = np.zeros(x.shape)
    empty = np.zeros(x.shape, bool)
    with np.errstate(invalid="ignore"):
        for scope in scopes:
            values = x[scope][chosen[scope]]
            if values.size == 0:
                empty[scope] = True  # no statistics: the scope is 0, whatever the clip
                continue
            # Scaled by the selected values' magnitude (see reference_normalize), not the others'.
            exponent = _exponent_of_largest(values)
            values, eps = np.ldexp(values, -exponent), np.ldexp(EPS, -exponent)
            if mode.statistic == "mean_std":
                center, denominator = values.mean(), values.std() + eps
            elif mode.statistic == "percentile":
                center, high = np.percentile(values, percentiles)
                denominator = high - center + eps
            elif mode.statistic == "robust":
                lower_quartile, center, upper_quartile = np.percentile(values, (25, 50, 75))
                denominator = upper_quartile - lower_quartile + eps
            else:
                center = values.min()
                denominator = values.max() - center + eps
            y[scope] = (np.ldexp(x[scope], -exponent) - center) / denominator
    y = y if mode.clip is None else np.clip(y, *mode.clip)
    if clip_range is not None:
        y = np.clip(y, *clip_range)
    y[empty | (zero & nonzero)] = 0.0
    return y[..., 0] if squeeze else y
