"""The Torch-op route (CUDA tensors; CPU tensors in the tests): the standard mode as one
``addcmul``, the per-image modes as statistics then a centered affine, clipped."""

from __future__ import annotations

import functools

import torch

from ...modes import EPS, AffineParams, NormalizeParams, scale_from_spread
from .layout import numpy_dtype
from .statistics import STATISTICS, _prescaled


@functools.lru_cache(maxsize=256)
def _standard_constants(
    params: NormalizeParams, channels: int, ndim: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 ``(scale, offset)`` on ``device``, folded in float64, shaped to broadcast
    against ``(C, H, W)`` (or ``(H, W)``)."""
    center, scale = params.standard_center_scale(channels, numpy_dtype(dtype))
    shape = (channels, 1, 1) if ndim >= 3 else (1, 1)
    return (
        torch.tensor(scale, dtype=torch.float32, device=device).reshape(shape),
        torch.tensor(-center * scale, dtype=torch.float32, device=device).reshape(shape),
    )


def _normalize_per_sample(
    image: torch.Tensor,
    params: NormalizeParams,
    reduce_dims: tuple[int, ...],
    dtype: torch.dtype,
    return_params: bool = False,
) -> tuple[torch.Tensor, AffineParams | None]:
    """Per-sample (or per-channel) statistics over ``reduce_dims``, then the centered affine,
    clipped as the mode says; with ``return_params``, the :class:`AffineParams` applied too."""
    mode = params.mode
    # The working copy (always a new tensor: float32, float64 for float64 input) is centered in
    # place and is the output buffer when it has the output dtype.
    work, factor = _prescaled(image, reduce_dims)
    eps = EPS if factor is None else EPS * factor
    terms = STATISTICS[mode.statistic](image, work, reduce_dims, params)
    center, shifted, center_low = terms.center, terms.shifted, terms.center_low
    # NaN or ±inf in a scope makes it NaN (documented): the statistics give a NaN spread there.
    scale = scale_from_spread(terms.spread, eps)
    scale_w = scale.to(shifted.dtype)
    out = shifted if dtype == shifted.dtype else torch.empty_like(shifted, dtype=dtype)
    torch.addcmul(-center_low * scale_w, shifted, scale_w, out=out)
    if mode.clip is not None:  # the robust modes have none: no pass for nothing
        out.clamp_(*mode.clip)
    if not return_params:
        return out, None
    if factor is not None:  # the terms of the scaled copy, back in the image's units
        center, scale = center / factor, scale * factor
    return out, _defined_terms(center, scale)


def _defined_terms(center: torch.Tensor, scale: torch.Tensor) -> AffineParams:
    """The terms as applied: NaN for every scope whose statistics are undefined (NaN or inf
    pixels), where the output is NaN too."""
    broken = ~(center + scale).isfinite()
    return AffineParams(center.masked_fill(broken, torch.nan), scale.masked_fill(broken, torch.nan))
