"""The normalization modes, as data, shared by every backend.

Every mode maps a pixel ``x`` of channel ``c`` to ``(x - center[c]) * scale[c]``, optionally
clipped. Modes differ only in where ``center`` and ``scale`` come from:

- ``standard``: constants, ``center = mean * max_pixel_value``, ``scale = 1 / (std * max_pixel_value)``;
- ``image`` / ``image_per_channel``: ``center = mean``, ``scale = 1 / (std + EPS)`` of the image
  (of each channel), clipped to [-20, 20];
- ``min_max`` / ``min_max_per_channel``: ``center = min``, ``scale = 1 / (max - min + EPS)``,
  clipped to [0, 1];
- ``percentile`` / ``percentile_per_channel`` (ours, not in Albumentations): as ``min_max`` with
  the ``percentiles=(low, high)`` percentiles (default 1 and 99, linear interpolation as in
  ``np.percentile``) in place of the minimum and maximum: robust to outliers and hot pixels;
- ``robust`` / ``robust_per_channel`` (ours): ``center = median``,
  ``scale = 1 / (q75 - q25 + EPS)``, no clip (scikit-learn's RobustScaler on pixels).

Every per-image mode is ``center`` and a ``spread`` (std, range, percentile range or
interquartile range) with ``scale = 1 / (spread + EPS)``: a backend reduces the statistic a
mode names (its ``STATISTICS`` table) and applies a per-channel affine. The folding,
:func:`scale_from_spread`, lives here, written with plain arithmetic so that it works on
Python floats, NumPy arrays and torch tensors alike.
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .dtypes import NUMPY_DTYPES, PIXEL_TYPES

NormalizationName = Literal[
    "standard",
    "image",
    "image_per_channel",
    "min_max",
    "min_max_per_channel",
    "percentile",
    "percentile_per_channel",
    "robust",
    "robust_per_channel",
]

#: Added to the std (or to max - min) so that a constant image maps to 0 instead of NaN.
EPS = 1e-4

_FLOAT32_MAX = float(np.finfo(np.float32).max)
_FLOAT32_NORMAL_MIN = float(np.finfo(np.float32).tiny)

# What to suggest when max_pixel_value looks wrong (NormalizeParams.pixel_scale_mistake).
_SIGNED_HINT = (
    "1.0 with mean and std in the image's own units (Hounsfield units for CT), or the value that "
    "your mean and std are fractions of"
)
_FULL_SCALE_HINTS = {
    "uint8": "255 for 8-bit data (or None, the dtype's full scale)",
    "uint16": "65535 for 16-bit data, 4095 for 12-bit data (None is the dtype's full scale, 65535)",
    "int16": _SIGNED_HINT,
    "int32": _SIGNED_HINT,
}

# Albumentations' default max_pixel_value (kept for drop-in parity, SPEC 3.6).
_ALBUMENTATIONS_MAX_PIXEL_VALUE = 255.0

#: The percentiles that the ``percentile`` modes map to 0 and 1 by default.
DEFAULT_PERCENTILES = (1.0, 99.0)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: The value of a full-scale pixel when ``max_pixel_value=None``, per NumPy dtype; signed integer
#: dtypes have none (see :func:`default_max_pixel_value`).
DTYPE_MAX_PIXEL_VALUE: dict[np.dtype, float] = {
    np.dtype(dtype): scale for dtype in NUMPY_DTYPES if (scale := PIXEL_TYPES[dtype.name].full_scale)
}


@dataclass(frozen=True)
class Mode:
    """What a normalization mode needs and how it maps pixels.

    ``statistic`` is ``None`` for constant modes, else the name of the statistic it reduces
    over the whole image or, with ``per_channel``, over each channel: ``"mean_std"``,
    ``"min_max"``, ``"percentile"`` or ``"robust"``; each backend maps the name to its function.
    ``clip`` bounds the output, or is None. ``albumentations`` says whether
    ``albumentations.Normalize`` has the mode (parity tests, the serialized form); the others
    are ours.
    """

    name: str
    statistic: str | None
    per_channel: bool
    clip: tuple[float, float] | None
    albumentations: bool = False


MODES: dict[str, Mode] = {
    mode.name: mode
    for mode in (
        Mode("standard", None, per_channel=True, clip=None, albumentations=True),
        Mode("image", "mean_std", per_channel=False, clip=(-20.0, 20.0), albumentations=True),
        Mode("image_per_channel", "mean_std", per_channel=True, clip=(-20.0, 20.0), albumentations=True),
        Mode("min_max", "min_max", per_channel=False, clip=(0.0, 1.0), albumentations=True),
        Mode("min_max_per_channel", "min_max", per_channel=True, clip=(0.0, 1.0), albumentations=True),
        Mode("percentile", "percentile", per_channel=False, clip=(0.0, 1.0)),
        Mode("percentile_per_channel", "percentile", per_channel=True, clip=(0.0, 1.0)),
        Mode("robust", "robust", per_channel=False, clip=None),
        Mode("robust_per_channel", "robust", per_channel=True, clip=None),
    )
}


@dataclass(frozen=True, eq=False)
class AffineParams:
    """What one normalization applied: ``y = (x - center) * scale``, then the mode's clip.

    ``normalize(..., return_params=True)`` returns it beside the output, and
    ``denormalize(y, params=...)`` inverts it exactly: ``x = y / scale + center``. ``center``
    and ``scale`` are in the input's units and shaped to broadcast against the image: float64
    NumPy arrays ``(N, 1, 1, C)`` for an ``(N, H, W, C)`` batch (the same number of axes as the
    image: spatial axes 1, a sample axis for batches, ``C`` or 1 on the channel axis), float64
    tensors on the image's device ``(..., C, 1, 1)`` for Torch (``(1, 1)`` for HW). The channel
    axis is 1 for the global modes. A scope (image or channel) whose statistics are undefined
    (NaN or inf pixels, see the README) has NaN terms. Clipped output values cannot be inverted.
    With ``nonzero=True`` or a ``mask`` the terms are those of the selected pixels; a scope
    without one has ``center`` 0 and ``scale`` 0 (all its output is 0, which ``denormalize``
    cannot undo), and ``nonzero``'s zeros, set to 0 after the affine, come back as ``center``.
    """

    center: Any
    scale: Any


def scale_from_spread(spread: Any, eps: Any = EPS) -> Any:
    """The scale of every per-image mode, ``1 / (spread + eps)``: ``spread`` is the std (the
    ``image`` modes), ``max - min`` (``min_max``), the percentile range (``percentile``) or the
    interquartile range (``robust``), and eps keeps a constant scope at exactly 0 instead of
    NaN. Plain arithmetic: Python floats, NumPy arrays and tensors alike.

    ``eps`` is :data:`EPS` in the image's units; statistics taken on an image scaled by
    ``2**-e`` (to stay clear of overflow) pass ``EPS * 2**-e``, and the terms they give apply to
    the scaled image: the same output, as ``(x - c) * s == (x * k - c * k) * (s / k)``.

    >>> scale_from_spread(0.0)
    10000.0
    """
    return 1.0 / (spread + eps)


def default_max_pixel_value(dtype: np.dtype) -> float:
    """255 for uint8, 65535 for uint16, 1.0 for floats (the torchvision convention); a
    ``ValueError`` naming ``max_pixel_value`` for the signed integer dtypes, which have no
    full-scale pixel (SPEC 6: their standard mode needs an explicit ``max_pixel_value``).

    >>> default_max_pixel_value(np.uint16)
    65535.0
    """
    dtype = np.dtype(dtype)
    if dtype not in DTYPE_MAX_PIXEL_VALUE and dtype.name in PIXEL_TYPES:
        raise ValueError(
            f"max_pixel_value=None means the dtype's full scale, and {dtype} images have none: their "
            "values (Hounsfield units, signed sensor counts) are not fractions of a full-scale pixel. "
            f"Pass max_pixel_value explicitly: {_SIGNED_HINT}. The per-image modes (image, min_max, "
            "percentile, robust) do not read it"
        )
    return DTYPE_MAX_PIXEL_VALUE[dtype]


def _as_values(value: Any, name: str) -> tuple[float, ...]:
    """A scalar or a non-empty 1-D sequence of finite real numbers, as a tuple of floats."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        values: tuple[Any, ...] = (value,)
    elif isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str):
        values = tuple(np.asarray(value).ravel().tolist()) if isinstance(value, np.ndarray) else tuple(value)
    else:
        raise TypeError(
            f"{name} must be a number or a sequence of numbers, got {type(value).__name__}: {value!r}"
        )
    if not values:
        raise ValueError(f"{name} must have at least one value, got {value!r}")
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        raise TypeError(f"{name} must contain only real numbers, got {value!r}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{name} must contain only finite numbers, got {value!r}")
    return tuple(float(v) for v in values)


@dataclass(frozen=True)
class NormalizeParams:
    """Validated arguments of a normalization, shared by every adapter and backend.

    Build it with :meth:`build`; it checks each argument and names the one that is wrong.
    """

    mode: Mode
    mean: tuple[float, ...]
    std: tuple[float, ...]
    max_pixel_value: float | None
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES
    #: ``(low, high)`` the output is clipped to after the mode's formula and its own clip
    #: (AlbumentationsX's ``clip_range``), or None.
    clip_range: tuple[float, float] | None = None
    #: Statistics over the non-zero pixels of each scope only, zero pixels left at exactly 0
    #: (MONAI's ``NormalizeIntensity(nonzero=True)``); per-image modes only.
    nonzero: bool = False

    @functools.cached_property
    def clip(self) -> tuple[float, float] | None:
        """The bounds every backend clips the output to, in one clamp: the mode's clip, then
        ``clip_range``. ``clamp(clamp(y, a, b), c, d) == clamp(y, clamp(a, c, d), clamp(b, c, d))``,
        so the two fold into one pass at no cost."""
        if self.clip_range is None:
            return self.mode.clip
        low, high = self.clip_range
        mode_low, mode_high = self.mode.clip or (-math.inf, math.inf)
        return min(max(mode_low, low), high), min(max(mode_high, low), high)

    @staticmethod
    def build(
        mean: Any = IMAGENET_MEAN,
        std: Any = IMAGENET_STD,
        max_pixel_value: float | None = 255.0,
        normalization: str = "standard",
        percentiles: Any = DEFAULT_PERCENTILES,
        clip_range: Any = None,
        nonzero: Any = False,
    ) -> NormalizeParams:
        """Validate the arguments of ``Normalize`` / ``normalize``.

        >>> NormalizeParams.build(0.5, 0.5, 255.0, "standard").mean
        (0.5,)
        """
        if not isinstance(normalization, str) or normalization not in MODES:
            raise ValueError(
                f"normalization must be one of {', '.join(map(repr, MODES))}; got {normalization!r}"
            )
        if mean is None or std is None:
            raise ValueError(
                f"mean and std must be given (a number or one per channel); got mean={mean!r}, std={std!r}"
            )
        mean_values = _as_values(mean, "mean")
        std_values = _as_values(std, "std")
        if not all(s > 0 for s in std_values):
            raise ValueError(f"std must contain only positive numbers (it divides), got std={std!r}")
        if len(mean_values) > 1 and len(std_values) > 1 and len(mean_values) != len(std_values):
            raise ValueError(
                f"mean has {len(mean_values)} values and std {len(std_values)}; give both one value "
                f"per channel (the same count), or one value for all channels; got mean={mean!r}, std={std!r}"
            )
        if max_pixel_value is not None:
            if isinstance(max_pixel_value, bool) or not isinstance(max_pixel_value, numbers.Real):
                raise TypeError(f"max_pixel_value must be a positive number or None, got {max_pixel_value!r}")
            if not (math.isfinite(max_pixel_value) and max_pixel_value > 0):
                raise ValueError(
                    "max_pixel_value must be a positive finite number, or None for the dtype's "
                    f"full scale; got {max_pixel_value!r}"
                )
            max_pixel_value = float(max_pixel_value)
        if MODES[normalization].statistic is None:
            _check_float32_constants(mean_values, std_values, max_pixel_value)
        return NormalizeParams(
            MODES[normalization],
            mean_values,
            std_values,
            max_pixel_value,
            _as_percentiles(percentiles),
            _as_clip_range(clip_range),
            _as_nonzero(nonzero, normalization),
        )

    def channel_values(self, values: tuple[float, ...], channels: int, name: str) -> np.ndarray:
        """Expand ``mean`` or ``std`` to one float64 value per channel (SPEC 3.5)."""
        if len(values) == 1 or channels == 1:
            return np.full(channels, values[0])
        if len(values) != channels:
            raise ValueError(
                f"{name} has {len(values)} values but the image has {channels} channels; "
                f"pass one value for all channels or exactly {channels}"
            )
        return np.asarray(values, dtype=np.float64)

    def pixel_scale(self, dtype: np.dtype) -> float:
        """``max_pixel_value``, or the dtype's full scale when it is ``None`` (a ``ValueError``
        for signed integer dtypes, which have none)."""
        if self.max_pixel_value is None:
            return default_max_pixel_value(dtype)
        return self.max_pixel_value

    def pixel_scale_mistake(self, dtype: np.dtype, low: float, high: float) -> str | None:
        """Why ``max_pixel_value`` looks wrong for an image of ``dtype`` whose values span
        ``[low, high]``, or None. The most reported normalization mistake: float images in
        [0, 1] with the default 255, and 8-bit images with 1.0; and for signed images (CT in
        Hounsfield units), the default 255 on values that are not 8-bit. Only the standard mode uses
        ``max_pixel_value``; the transforms ask on their first call only (the hot path pays
        nothing).

        >>> NormalizeParams.build().pixel_scale_mistake(np.float32, 0.0, 0.9)[:40]
        'max_pixel_value=255.0, but this float32 '
        """
        if self.mode.statistic is not None or not (math.isfinite(low) and math.isfinite(high)):
            return None
        dtype = np.dtype(dtype)
        pixel_scale = self.pixel_scale(dtype)
        if dtype.kind == "i":
            # Signed data has no full scale, so any explicit max_pixel_value may be meant (1.0 with
            # mean and std in Hounsfield units is the usual one), except Albumentations' default
            # 255 on data that is not 8-bit: the constructor's default, not a choice.
            if pixel_scale != _ALBUMENTATIONS_MAX_PIXEL_VALUE or (low >= 0.0 and high <= 2.0 * pixel_scale):
                return None
            extreme = high if high >= -low else low
            return (
                f"max_pixel_value={pixel_scale} (the Albumentations default), but this {dtype} image has "
                f"values reaching {extreme:.6g}: it is not 8-bit data, and signed images have no full "
                f"scale. Pass the scale of your mean and std: max_pixel_value={_FULL_SCALE_HINTS[dtype.name]}"
            )
        if dtype.kind == "f" and pixel_scale >= 2.0 and 0.0 <= low and 0.0 < high <= 1.0:
            return (
                f"max_pixel_value={pixel_scale}, but this {dtype} image lies in [0, 1] (values "
                f"{low:.3g}..{high:.3g}): its normalized values all sit near -mean/std. For images in "
                "[0, 1] pass max_pixel_value=1.0 (or None, the dtype's full scale)"
            )
        if high > 2.0 * pixel_scale:
            return (
                f"max_pixel_value={pixel_scale}, but this {dtype} image has values up to {high:.6g}, "
                f"{high / pixel_scale:.3g} times that. Pass the value of a full-scale pixel: "
                f"max_pixel_value={_FULL_SCALE_HINTS.get(dtype.name, '255.0 for data in 0..255')}"
            )
        return None

    def standard_center_scale(self, channels: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel float64 ``(center, scale)`` of the ``standard`` mode."""
        return _standard_center_scale(self, channels, np.dtype(dtype))


def _check_float32_constants(
    mean: tuple[float, ...], std: tuple[float, ...], max_pixel_value: float | None
) -> None:
    """Refuse constants whose float32 form overflows or underflows: the affine runs in float32,
    so a scale ``1 / (std * max_pixel_value)`` or an offset ``-mean / std`` outside float32's
    normal range would turn every pixel into inf, NaN or a few bits of precision.
    ``max_pixel_value=None`` is checked against every dtype's full scale."""
    pixel_scales = (
        sorted(set(DTYPE_MAX_PIXEL_VALUE.values())) if max_pixel_value is None else [max_pixel_value]
    )
    for pixel_scale in pixel_scales:
        for channel_mean, channel_std in itertools.zip_longest(mean, std, fillvalue=None):
            m = mean[0] if channel_mean is None else channel_mean
            s = std[0] if channel_std is None else channel_std
            spread = s * pixel_scale
            scale = 1.0 / spread if spread > 0.0 else math.inf
            if not _FLOAT32_NORMAL_MIN <= scale <= _FLOAT32_MAX:
                raise ValueError(
                    f"std={s!r} with max_pixel_value={pixel_scale!r} gives the scale "
                    f"1 / (std * max_pixel_value) = {scale:.3g}, outside float32's normal range "
                    f"[{_FLOAT32_NORMAL_MIN:.3g}, {_FLOAT32_MAX:.3g}] in which the affine runs; "
                    "pick std and max_pixel_value whose product is within that range"
                )
            if not abs(m / s) <= _FLOAT32_MAX:
                raise ValueError(
                    f"mean={m!r} with std={s!r} gives the offset -mean / std = {-m / s:.3g}, beyond "
                    f"float32's range (±{_FLOAT32_MAX:.3g}) in which the affine runs"
                )


def _as_percentiles(percentiles: Any) -> tuple[float, float]:
    """``(low, high)`` with 0 <= low < high <= 100, as floats."""
    values = _as_values(percentiles, "percentiles")
    if len(values) != 2 or not 0.0 <= values[0] < values[1] <= 100.0:
        raise ValueError(
            f"percentiles must be two numbers (low, high) with 0 <= low < high <= 100; got {percentiles!r}"
        )
    return values[0], values[1]


def _as_nonzero(nonzero: Any, normalization: str) -> bool:
    """``nonzero`` as a bool; refused with the standard mode, which has no statistics to restrict."""
    if not isinstance(nonzero, (bool, np.bool_)):
        raise TypeError(f"nonzero must be True or False; got {nonzero!r}")
    if nonzero:
        check_selects_statistics("nonzero=True", normalization)
    return bool(nonzero)


def check_selects_statistics(argument: str, normalization: str) -> None:
    """Refuse ``nonzero=True`` or a ``mask`` with a mode without per-image statistics.

    Why an error rather than "leave the zeros at zero": ``standard`` applies constants, so a
    selection would change nothing but the zeros, silently; a pipeline that wants that writes
    it (``out[image == 0] = 0``) and says so.
    """
    if MODES[normalization].statistic is None:
        per_image = ", ".join(name for name, mode in MODES.items() if mode.statistic is not None)
        raise ValueError(
            f"{argument} selects the pixels that a mode's per-image statistics come from, and "
            f"normalization={normalization!r} has none (it applies the constants mean and std); "
            f"use it with a per-image mode: {per_image}"
        )


def _as_clip_range(clip_range: Any) -> tuple[float, float] | None:
    """None, or ``(low, high)``: two finite numbers with low <= high, as floats."""
    if clip_range is None:
        return None
    values = _as_values(clip_range, "clip_range")
    if len(values) != 2 or values[0] > values[1]:
        raise ValueError(
            f"clip_range must be None or two finite numbers (low, high) with low <= high; got {clip_range!r}"
        )
    return values[0], values[1]


@functools.lru_cache(maxsize=256)
def _standard_center_scale(
    params: NormalizeParams, channels: int, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray]:
    pixel_scale = params.pixel_scale(dtype)
    mean = params.channel_values(params.mean, channels, "mean")
    std = params.channel_values(params.std, channels, "std")
    center, scale = mean * pixel_scale, 1.0 / (std * pixel_scale)
    center.setflags(write=False)
    scale.setflags(write=False)
    return center, scale
