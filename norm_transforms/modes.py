"""The five normalization modes, as data, shared by every backend.

Every mode maps a pixel ``x`` of channel ``c`` to ``(x - center[c]) * scale[c]``, optionally
clipped. Modes differ only in where ``center`` and ``scale`` come from:

- ``standard``: constants, ``center = mean * max_pixel_value``, ``scale = 1 / (std * max_pixel_value)``;
- ``image`` / ``image_per_channel``: ``center = mean``, ``scale = 1 / (std + EPS)`` of the image
  (of each channel), clipped to [-20, 20];
- ``min_max`` / ``min_max_per_channel``: ``center = min``, ``scale = 1 / (max - min + EPS)``,
  clipped to [0, 1].

A backend needs two primitives: reduce an image's statistics, and apply a per-channel affine.
The folding from statistics to ``(center, scale)`` lives here, written with plain arithmetic
so that it works on NumPy arrays and torch tensors alike.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

NormalizationName = Literal["standard", "image", "image_per_channel", "min_max", "min_max_per_channel"]

#: Added to the std (or to max - min) so that a constant image maps to 0 instead of NaN.
EPS = 1e-4

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: The value of a full-scale pixel when ``max_pixel_value=None``.
DTYPE_MAX_PIXEL_VALUE = {
    np.dtype(np.uint8): 255.0,
    np.dtype(np.uint16): 65535.0,
    np.dtype(np.float16): 1.0,
    np.dtype(np.float32): 1.0,
    np.dtype(np.float64): 1.0,
}


@dataclass(frozen=True)
class Mode:
    """What a normalization mode needs and how it maps pixels.

    ``statistic`` is ``None`` for constant modes, else ``"mean_std"`` or ``"min_max"``, reduced
    over the whole image or, with ``per_channel``, over each channel.
    """

    name: str
    statistic: Literal["mean_std", "min_max"] | None
    per_channel: bool
    clip: tuple[float, float] | None


MODES: dict[str, Mode] = {
    mode.name: mode
    for mode in (
        Mode("standard", None, per_channel=True, clip=None),
        Mode("image", "mean_std", per_channel=False, clip=(-20.0, 20.0)),
        Mode("image_per_channel", "mean_std", per_channel=True, clip=(-20.0, 20.0)),
        Mode("min_max", "min_max", per_channel=False, clip=(0.0, 1.0)),
        Mode("min_max_per_channel", "min_max", per_channel=True, clip=(0.0, 1.0)),
    )
}


def center_scale_from_moments(mean: Any, std: Any) -> tuple[Any, Any]:
    """``(center, scale)`` of the ``image*`` modes from the mean and population std."""
    return mean, 1.0 / (std + EPS)


def center_scale_from_range(low: Any, high: Any) -> tuple[Any, Any]:
    """``(center, scale)`` of the ``min_max*`` modes from the minimum and maximum."""
    return low, 1.0 / (high - low + EPS)


def default_max_pixel_value(dtype: np.dtype) -> float:
    """255 for uint8, 65535 for uint16, 1.0 for floats (the torchvision convention)."""
    return DTYPE_MAX_PIXEL_VALUE[np.dtype(dtype)]


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

    @staticmethod
    def build(
        mean: Any = IMAGENET_MEAN,
        std: Any = IMAGENET_STD,
        max_pixel_value: float | None = 255.0,
        normalization: str = "standard",
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
        if max_pixel_value is not None:
            if isinstance(max_pixel_value, bool) or not isinstance(max_pixel_value, numbers.Real):
                raise TypeError(f"max_pixel_value must be a positive number or None, got {max_pixel_value!r}")
            if not (math.isfinite(max_pixel_value) and max_pixel_value > 0):
                raise ValueError(
                    "max_pixel_value must be a positive finite number, or None for the dtype's "
                    f"full scale; got {max_pixel_value!r}"
                )
            max_pixel_value = float(max_pixel_value)
        return NormalizeParams(MODES[normalization], mean_values, std_values, max_pixel_value)

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
        """``max_pixel_value``, or the dtype's full scale when it is ``None``."""
        if self.max_pixel_value is None:
            return default_max_pixel_value(dtype)
        return self.max_pixel_value

    def standard_center_scale(self, channels: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel float64 ``(center, scale)`` of the ``standard`` mode."""
        return _standard_center_scale(self, channels, np.dtype(dtype))


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
