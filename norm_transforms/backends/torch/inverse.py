"""``denormalize`` on tensors: ``x = y / scale + center`` in float32 (float64 for float64)."""

from __future__ import annotations

import torch

from ...dtypes import accepted_names
from ...modes import AffineParams, NormalizeParams
from .layout import NORMALIZED_DTYPES, SUPPORTED_DTYPES, check_layout, standard_affine_params


def denormalize(
    image: torch.Tensor,
    params: NormalizeParams | AffineParams,
    *,
    batched: bool = False,
    volume: bool = False,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Invert a normalization: ``x = y / scale + center``, in float32 (float64 for float64 output).

    ``params``: the :class:`AffineParams` that ``normalize(..., return_params=True)`` returned,
    or standard-mode arguments (``max_pixel_value=None`` takes ``dtype``'s full scale).
    ``dtype``: float32 (None), float16, bfloat16 or float64 in the original units, or an integer
    dtype (uint8, uint16, int16, int32) rounded (half to even) and clipped to the dtype's range,
    NaN as 0.
    """
    if volume:
        raise ValueError("volume=True is not supported for tensors; pass (..., C, H, W) frames as samples")
    dtype = torch.float32 if dtype is None else check_inverse_dtype(dtype)
    check_normalized(image)
    if isinstance(params, NormalizeParams):
        params = standard_affine_params(params, image, dtype)
    center, scale = _checked_terms(params, image)
    # float32 keeps every dtype's round trip within 1e-6 of full scale (and uint8 / uint16 / int16
    # exact), at GPU speed; float64 where it is asked for, and for int32, whose values and bounds
    # float32 would round (2**31 - 1 becomes 2**31, which no int32 holds).
    compute = torch.float64 if dtype in (torch.float64, torch.int32) else torch.float32
    pixels = torch.addcmul(center.to(compute), image, scale.reciprocal().to(compute))
    if not dtype.is_floating_point:
        # Display pixels: NaN (undefined statistics) becomes 0 rather than a cast's garbage.
        info = torch.iinfo(dtype)
        pixels = pixels.nan_to_num_(nan=0.0).clamp_(float(info.min), float(info.max)).round_()
    return pixels.to(dtype)


def check_normalized(image: torch.Tensor) -> None:
    """Refuse what denormalize cannot read: it takes normalize's float output."""
    if image.dtype not in NORMALIZED_DTYPES:
        accepted = accepted_names(numpy=False, floats_only=True)
        raise TypeError(
            f"denormalize takes a normalized (float) tensor; got dtype {image.dtype}, accepted: {accepted}"
        )
    check_layout(image, "denormalize")


def check_inverse_dtype(dtype: torch.dtype) -> torch.dtype:
    """``dtype`` when denormalize writes it, else a TypeError listing those it writes (shared
    with TorchDenormalize)."""
    if dtype not in SUPPORTED_DTYPES:
        accepted = accepted_names(numpy=False)
        raise TypeError(f"denormalize writes {accepted}; got dtype={dtype!r}")
    return dtype


def _checked_terms(params: object, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``params.center`` and ``params.scale`` as tensors on ``image``'s device that broadcast to
    its shape."""
    terms = []
    for name in ("center", "scale"):
        value = getattr(params, name)
        if not isinstance(value, torch.Tensor) or value.dtype == torch.bool or value.is_complex():
            raise TypeError(
                f"params.{name} must be a tensor of real numbers for a tensor image; "
                f"got {type(value).__name__}"
            )
        try:
            fits = torch.broadcast_shapes(image.shape, value.shape) == image.shape
        except RuntimeError:
            fits = False
        if not fits:
            raise ValueError(
                f"params.{name} has shape {tuple(value.shape)}, which does not broadcast to the image's "
                f"shape {tuple(image.shape)}; pass the params that normalize returned for this image"
            )
        terms.append(value.to(device=image.device, dtype=torch.float64))
    return terms[0], terms[1]
