"""``denormalize`` on the NumPy backend: ``x = y / scale + center`` in float64."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...dtypes import accepted_names
from ...modes import AffineParams, NormalizeParams
from .forward import _FLOAT32, standard_affine_params
from .layout import NORMALIZED_DTYPES, SUPPORTED_DTYPES, _as_dtype


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
    float16 or float64 in the original units, or an integer dtype (uint8, uint16, int16, int32)
    rounded (half to even) and clipped to the dtype's range, NaN as 0.
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
        accepted = accepted_names(numpy=True, floats_only=True)
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
        accepted = accepted_names(numpy=True)
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
    """float64 pixels written as ``dtype``; integers rounded and clipped to the dtype's range,
    NaN (undefined statistics) as 0 rather than a cast's garbage."""
    if dtype.kind == "u":
        # Display pixels. fmax also turns NaN into 0, in the same pass: half the time of
        # nan_to_num + clip (measured).
        np.fmax(pixels, 0.0, out=pixels)
        np.fmin(pixels, np.iinfo(dtype).max, out=pixels)
        np.rint(pixels, out=pixels)
    elif dtype.kind == "i":
        # Signed: the lower bound is not 0, so NaN gets its own pass. Both bounds are exact in
        # float64 (int32 included), so the cast cannot overflow.
        np.copyto(pixels, 0.0, where=np.isnan(pixels))
        np.clip(pixels, np.iinfo(dtype).min, np.iinfo(dtype).max, out=pixels)
        np.rint(pixels, out=pixels)
    return pixels.astype(dtype)
