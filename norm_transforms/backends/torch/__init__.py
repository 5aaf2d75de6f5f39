"""Torch kernels: every mode of ``modes.MODES`` on CPU and CUDA tensors, computed in float32.

Layout: ``(H, W)`` or ``(..., C, H, W)``; every leading axis (a batch ``N``, video frames
``T``) indexes samples, and each sample gets its own statistics, all in one vectorized pass.
channels_last input gives channels_last output. ``normalize`` never syncs with the host:
constants are cached on the tensor's device, statistics stay on it, and no value is read back
(``value_range``, which the transforms call once, reads two numbers back).

Routes (timings in benchmarks/RESULTS.md):

- CPU tensors go through the CPU kernels of the NumPy backend (C and OpenCV) on zero-copy
  views: single-threaded, its one-pass affine runs at the ``x.float()`` floor, where
  ``addcmul`` with a uint8 operand takes the slow mixed-dtype path (~2x the floor) and
  ``torch.var_mean`` is scalar (~50x ``mean``). Channel-planar and channels_last layouts
  both map onto it without a copy.

Other devices (CUDA) use Torch ops:

- ``standard``: one ``torch.addcmul(offset, x, scale)``. Type promotion reads uint8 (or
  float16) and computes in float32 in the same loop, and ``out=`` of another float dtype
  rounds on store, so uint8 -> float16 is one pass with no ToDtype. The float64-folded
  constants are cached per (arguments, channels, input dtype, device).
- per-image modes: each scope scaled by a power of two for float input (scale safety), the
  statistic of the mode (``statistics.STATISTICS``: mean and ``var_mean``, ``amin``/``amax``,
  or percentiles from a histogram or a sort) over every sample at once, then
  ``(x - center_high) * scale + (-center_low * scale)``: subtracting the float32 part of
  the center first keeps near-constant images exact, where the folded ``x * scale + offset``
  would lose digits (the NumPy backend proves the folded form safe per image; that proof
  needs the host, so here the centered form is always used: one more in-place pass).
"""

from __future__ import annotations

import torch

from ...modes import AffineParams, NormalizeParams
from .. import numpy as numpy_backend
from .cpu import _normalize_with_cpu_kernels
from .inverse import check_inverse_dtype, check_normalized, denormalize
from .layout import (
    NORMALIZED_DTYPES,
    OUTPUT_DTYPES,
    SUPPORTED_DTYPES,
    channel_count,
    check_image,
    check_layout,
    check_output_dtype,
    numpy_dtype,
    standard_affine_params,
    terms_shape,
)
from .ops import _normalize_per_sample, _standard_constants
from .statistics import STATISTICS, _min_max

__all__ = [
    "NORMALIZED_DTYPES",
    "OUTPUT_DTYPES",
    "STATISTICS",
    "SUPPORTED_DTYPES",
    "channel_count",
    "check_image",
    "check_inverse_dtype",
    "check_layout",
    "check_normalized",
    "check_output_dtype",
    "denormalize",
    "normalize",
    "numpy_dtype",
    "standard_affine_params",
    "terms_shape",
    "uses_cpu_kernels",
    "value_range",
]


def normalize(
    image: torch.Tensor,
    params: NormalizeParams,
    *,
    batched: bool = False,
    volume: bool = False,
    dtype: torch.dtype | None = None,
    return_params: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, AffineParams]:
    """Normalize a tensor laid out as ``(H, W)`` or ``(..., C, H, W)``; returns ``dtype``.

    Leading axes are samples whatever ``batched`` says (the layout is unambiguous for
    tensors); ``volume=True`` is not supported for tensors. The input is never modified.
    ``return_params=True`` also returns the :class:`AffineParams` applied: float64 tensors on
    the image's device, shaped ``(..., C or 1, 1, 1)`` (``(1, 1)`` for HW).
    """
    if volume:
        raise ValueError("volume=True is not supported for tensors; pass (..., C, H, W) frames as samples")
    dtype = torch.float32 if dtype is None else dtype
    check_image(image)
    check_output_dtype(dtype)
    if uses_cpu_kernels(image):
        out, affine = _normalize_with_cpu_kernels(image, params, return_params)
        out = out if dtype == torch.float32 else out.to(dtype)
    elif params.mode.statistic is None:
        channels = channel_count(image)
        scale, offset = _standard_constants(params, channels, image.ndim, image.dtype, image.device)
        source = image if image.dtype != torch.float64 else image.to(torch.float32)
        out = torch.addcmul(offset, source, scale, out=torch.empty_like(source, dtype=dtype))
        affine = standard_affine_params(params, image, image.dtype) if return_params else None
    else:
        reduce_dims = (-2, -1) if params.mode.per_channel or image.ndim == 2 else (-3, -2, -1)
        out, affine = _normalize_per_sample(image, params, reduce_dims, dtype, return_params)
    return (out, affine) if return_params else out


def value_range(image: torch.Tensor) -> tuple[float, float]:
    """The smallest and largest pixel value, NaN skipped (NaN, NaN when there are none): what
    the transforms read on their first call to check ``max_pixel_value``. Reads two numbers
    back from the device, once per transform."""
    image = image.detach()
    if uses_cpu_kernels(image):  # NumPy's reductions on the zero-copy view: ~5x faster here
        return numpy_backend.value_range((image.float() if image.dtype == torch.bfloat16 else image).numpy())
    low, high = _min_max(image, image.float(), tuple(range(image.ndim)))
    return low.item(), high.item()


def uses_cpu_kernels(image: torch.Tensor) -> bool:
    """CPU tensors take the C/OpenCV kernels (the tests also run the Torch-op route on CPU)."""
    return image.is_cpu
