"""The Torch-op route (CUDA tensors; CPU tensors in the tests): the standard mode as one
``addcmul``, the per-image modes as statistics then a centered affine, clipped."""

from __future__ import annotations

import functools

import numpy as np
import torch

from ...modes import EPS, AffineParams, NormalizeParams, scale_from_spread
from .layout import channel_count, numpy_dtype, output_strides, standard_affine_params
from .statistics import STATISTICS, Selection, _prescaled


def normalize_with_ops(
    image: torch.Tensor,
    params: NormalizeParams,
    dtype: torch.dtype,
    return_params: bool,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, AffineParams | None]:
    """The Torch-op route of ``normalize`` (checked arguments; ``mask`` a bool tensor of the
    image's shape), and the terms when asked."""
    if params.mode.statistic is None:
        channels = channel_count(image)
        scale, offset = _broadcast_constants(params, channels, image.ndim, image.dtype, image.device)
        source = image if image.dtype != torch.float64 else image.to(torch.float32)
        strides = output_strides(image.shape, image.stride())
        out = torch.empty_strided(image.shape, strides, dtype=dtype, device=image.device)
        torch.addcmul(offset, source, scale, out=out)
        if params.clip is not None:
            out.clamp_(*params.clip)
        return out, standard_affine_params(params, image, image.dtype) if return_params else None
    reduce_dims = (-2, -1) if params.mode.per_channel or image.ndim == 2 else (-3, -2, -1)
    if mask is None and not params.nonzero:
        return _normalize_per_sample(image, params, reduce_dims, dtype, return_params)
    # Statistics over the selected pixels; with nonzero the zeros are set back to 0 after.
    zeros = (image == 0) if params.nonzero else None
    selected = mask if zeros is None else (~zeros if mask is None else mask & ~zeros)
    selection = Selection.of(selected, reduce_dims)
    out, affine = _normalize_per_sample(image, params, reduce_dims, dtype, return_params, selection, mask)
    # Empty scopes exactly 0 (their scale 0 gives 0 but for NaN or inf pixels outside a mask).
    out.masked_fill_(selection.empty if zeros is None else zeros | selection.empty, 0.0)
    return out, affine


@functools.lru_cache(maxsize=256)
def standard_constants(
    params: NormalizeParams, channels: int, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """float32 ``[scale, offset]`` per channel (shape ``(2, channels)``) on ``device``, folded
    in float64 and cached: copying them to a GPU waits for the host, once."""
    center, scale = params.standard_center_scale(channels, numpy_dtype(dtype))
    return torch.tensor(np.stack([scale, -center * scale]), dtype=torch.float32, device=device)


@functools.lru_cache(maxsize=256)
def _broadcast_constants(
    params: NormalizeParams, channels: int, ndim: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """``standard_constants`` shaped to broadcast against ``(C, H, W)`` (or ``(H, W)``)."""
    shape = (channels, 1, 1) if ndim >= 3 else (1, 1)
    scale, offset = standard_constants(params, channels, dtype, device)
    return scale.reshape(shape), offset.reshape(shape)


def _normalize_per_sample(
    image: torch.Tensor,
    params: NormalizeParams,
    reduce_dims: tuple[int, ...],
    dtype: torch.dtype,
    return_params: bool = False,
    selection: Selection | None = None,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, AffineParams | None]:
    """Per-sample (or per-channel) statistics over ``reduce_dims`` (over the ``selection``'s
    pixels when given: the ``mask``'s, non-zero with ``nonzero``), then the centered affine,
    clipped as the mode says; with ``return_params``, the :class:`AffineParams` applied too."""
    mode = params.mode
    # The working copy (always a new tensor: float32, float64 for float64 input) is centered in
    # place and is the output buffer when it has the output dtype.
    # Scaled by the masked pixels' magnitude (zeros, which nonzero leaves out, change none).
    work, factor = _prescaled(image, reduce_dims, output_strides(image.shape, image.stride()), mask)
    eps = EPS if factor is None else EPS * factor
    terms = STATISTICS[mode.statistic](image, work, reduce_dims, params, selection)
    center, shifted, center_low = terms.center, terms.shifted, terms.center_low
    # NaN or ±inf in a scope makes it NaN (documented): the statistics give a NaN spread there.
    scale = scale_from_spread(terms.spread, eps)
    if selection is not None:  # a scope without a selected pixel maps to 0 (its center is 0)
        scale = scale.masked_fill(selection.empty, 0.0)
    # A constant scope of huge values (float32 beyond ~2e34) has 1 / eps beyond the working
    # dtype: capped, so its pixels give 0 * max = 0, not 0 * inf = NaN (clamp keeps NaN).
    scale_w = scale.clamp(max=torch.finfo(shifted.dtype).max).to(shifted.dtype)
    out = shifted if dtype == shifted.dtype else torch.empty_like(shifted, dtype=dtype)
    torch.addcmul(-center_low * scale_w, shifted, scale_w, out=out)
    if params.clip is not None:  # the robust modes have none: no pass for nothing
        out.clamp_(*params.clip)
    if not return_params:
        return out, None
    if factor is not None:  # the terms of the scaled copy, back in the image's units
        center, scale = center / factor, _scale_in_image_units(scale, terms.spread, factor)
    return out, _defined_terms(center, scale)


def _scale_in_image_units(scale: torch.Tensor, spread: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``scale * factor``, but for a scale beyond float64 (a constant scope of values beyond
    ~4e304, whose ``eps * factor`` leaves 1e4 / factor): the scale of the spread in the
    image's units, 1e4 as for a constant scope at any magnitude."""
    return torch.where(scale.isinf() & spread.isfinite(), scale_from_spread(spread / factor), scale * factor)


def _defined_terms(center: torch.Tensor, scale: torch.Tensor) -> AffineParams:
    """The terms as applied: NaN for every scope whose statistics are undefined (NaN or inf
    pixels), where the output is NaN too."""
    broken = ~(center + scale).isfinite()
    return AffineParams(center.masked_fill(broken, torch.nan), scale.masked_fill(broken, torch.nan))
