"""Torch kernels: the five modes on CPU and CUDA tensors, computed in float32.

Layout: ``(H, W)`` or ``(..., C, H, W)``; every leading axis (a batch ``N``, video frames
``T``) indexes samples, and each sample gets its own statistics, all in one vectorized pass.
channels_last input gives channels_last output. Nothing here syncs with the host: constants
are cached on the tensor's device, statistics stay on it, and no value is read back.

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
- per-image modes: statistics in one reduction per sample (``var_mean`` or ``aminmax``),
  then ``(x - center_high) * scale + (-center_low * scale)``: subtracting the float32 part of
  the center first keeps near-constant images exact, where the folded ``x * scale + offset``
  would lose digits (the NumPy backend proves the folded form safe per image; that proof
  needs the host, so here the centered form is always used: one more in-place pass).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from ..modes import NormalizeParams, center_scale_from_moments, center_scale_from_range
from . import numpy as numpy_backend

SUPPORTED_DTYPES = (torch.uint8, torch.uint16, torch.float16, torch.bfloat16, torch.float32, torch.float64)
OUTPUT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)

# For max_pixel_value=None and the float64 folding: the NumPy dtype with the same full scale.
_NUMPY_EQUIVALENT = {
    torch.uint8: np.dtype(np.uint8),
    torch.uint16: np.dtype(np.uint16),
    torch.float16: np.dtype(np.float16),
    torch.bfloat16: np.dtype(np.float32),
    torch.float32: np.dtype(np.float32),
    torch.float64: np.dtype(np.float64),
}
_NO_BOUNDS = (-float("inf"), float("inf"))


def check_output_dtype(dtype: torch.dtype) -> None:
    """Refuse an output dtype the kernels do not write (kernels and adapters share this check)."""
    if dtype not in OUTPUT_DTYPES:
        accepted = ", ".join(str(d).removeprefix("torch.") for d in OUTPUT_DTYPES)
        raise TypeError(f"output dtype must be one of {accepted}; got {dtype!r}")


def check_tensor(image: torch.Tensor, dtype: torch.dtype) -> None:
    """Refuse what the kernels do not handle, saying what is accepted."""
    if image.dtype not in SUPPORTED_DTYPES:
        accepted = ", ".join(str(d).removeprefix("torch.") for d in SUPPORTED_DTYPES)
        raise TypeError(f"image dtype {image.dtype} is not supported; accepted: {accepted}")
    check_output_dtype(dtype)
    if image.ndim < 2:
        shape = tuple(image.shape)
        raise ValueError(f"expected a tensor of shape (H, W) or (..., C, H, W); got shape {shape}")
    if image.numel() == 0:
        raise ValueError(f"image is empty (shape {tuple(image.shape)}); nothing to normalize")
    if image.requires_grad:
        # The kernels write into fresh buffers (out=, NumPy views), which autograd cannot follow.
        raise ValueError(
            "normalize does not record gradients, and image requires grad; pass image.detach(), "
            "or use NormalizeLayer, which is differentiable"
        )


def channel_count(image: torch.Tensor) -> int:
    return image.shape[-3] if image.ndim >= 3 else 1


def normalize_tensor(
    image: torch.Tensor,
    params: NormalizeParams,
    *,
    batched: bool = False,
    volume: bool = False,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Normalize a tensor laid out as ``(H, W)`` or ``(..., C, H, W)``; returns ``dtype``.

    Leading axes are samples whatever ``batched`` says (the layout is unambiguous for
    tensors); ``volume=True`` is not supported for tensors. The input is never modified.
    """
    if volume:
        raise ValueError("volume=True is not supported for tensors; pass (..., C, H, W) frames as samples")
    check_tensor(image, dtype)
    if uses_cpu_kernels(image):
        out = _normalize_with_cpu_kernels(image, params)
        return out if dtype == torch.float32 else out.to(dtype)
    channels = channel_count(image)
    if params.mode.statistic is None:
        scale, offset = _standard_constants(params, channels, image.ndim, image.dtype, image.device)
        source = image if image.dtype != torch.float64 else image.to(torch.float32)
        out = torch.empty_like(source, dtype=dtype)
        return torch.addcmul(offset, source, scale, out=out)
    mode = params.mode
    reduce_dims = (-2, -1) if mode.per_channel or image.ndim == 2 else (-3, -2, -1)
    return normalize_per_sample(image, mode.statistic, reduce_dims, mode.clip or _NO_BOUNDS, dtype)


def uses_cpu_kernels(image: torch.Tensor) -> bool:
    """CPU tensors take the C/OpenCV kernels (the tests also run the Torch-op route on CPU)."""
    return image.is_cpu


def _normalize_with_cpu_kernels(image: torch.Tensor, params: NormalizeParams) -> torch.Tensor:
    # The layout is read from the NumPy view: each Torch call here (device, shape slices,
    # reshape of the result) cost 2-15 µs, a third of the work at 224².
    array = (image.float() if image.dtype == torch.bfloat16 else image).numpy()  # NumPy has no bfloat16
    if array.ndim == 4 and not array.flags.c_contiguous:
        interleaved = array.transpose(0, 2, 3, 1)
        if interleaved.flags.c_contiguous:
            # channels_last is NHWC in memory: the interleaved layout of the NumPy backend.
            out = numpy_backend.normalize_array(interleaved, params, batched=True)
            return torch.from_numpy(out.transpose(0, 3, 1, 2))
    *_, height, width = array.shape
    channels = array.shape[-3] if array.ndim >= 3 else 1
    out = numpy_backend.normalize_planar(array.reshape(-1, channels, height, width), params)
    return torch.from_numpy(out.reshape(array.shape))


@functools.lru_cache(maxsize=256)
def _standard_constants(
    params: NormalizeParams, channels: int, ndim: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 ``(scale, offset)`` on ``device``, folded in float64, shaped to broadcast
    against ``(C, H, W)`` (or ``(H, W)``)."""
    center, scale = params.standard_center_scale(channels, _NUMPY_EQUIVALENT[dtype])
    shape = (channels, 1, 1) if ndim >= 3 else (1, 1)
    return (
        torch.tensor(scale, dtype=torch.float32, device=device).reshape(shape),
        torch.tensor(-center * scale, dtype=torch.float32, device=device).reshape(shape),
    )


def normalize_per_sample(
    image: torch.Tensor,
    statistic: str,
    reduce_dims: tuple[int, ...],
    bounds: tuple[float, float],
    dtype: torch.dtype,
) -> torch.Tensor:
    """Per-sample (or per-channel) statistics, then the centered affine, clipped to ``bounds``."""
    # The float32 working copy is also the output buffer when it is new (not the caller's).
    work = image.to(torch.float32)
    owned = work.data_ptr() != image.data_ptr()
    if statistic == "mean_std":
        # The center as float32 high + low parts: subtract the float32 mean first, then the
        # moments of the centered values give the rounding left in it (the low part) and a
        # variance free of cancellation, so near-constant images stay exact.
        center_high = work.mean(dim=reduce_dims, keepdim=True)
        shifted = _subtract(work, center_high, owned)
        variance, center_low = torch.var_mean(shifted, dim=reduce_dims, correction=0, keepdim=True)
        mean = center_high.double() + center_low.double()
        _, scale = center_scale_from_moments(mean, variance.double().sqrt())
    else:
        low, high = _min_max(image, work, reduce_dims)
        center, scale = center_scale_from_range(low.double(), high.double())
        # The minimum is a pixel value: exact in float32, no low part.
        center_high, center_low = center.float(), torch.zeros_like(center, dtype=torch.float32)
        # Documented: ±inf in a scope makes the scope NaN (a +inf maximum would give scale 0).
        scale = torch.where(low.isfinite() & high.isfinite(), scale, torch.nan)
        shifted = _subtract(work, center_high, owned)
    scale32 = scale.float()
    out = shifted if dtype == torch.float32 else torch.empty_like(shifted, dtype=dtype)
    torch.addcmul(-center_low * scale32, shifted, scale32, out=out)
    return out.clamp_(*bounds)


def _subtract(work: torch.Tensor, center: torch.Tensor, owned: bool) -> torch.Tensor:
    return work.sub_(center) if owned else torch.sub(work, center)


def _min_max(
    image: torch.Tensor, work: torch.Tensor, dims: tuple[int, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Min and max over ``dims``, skipping NaN pixels as the reference (cv2.normalize) does; a
    scope of only NaN gives NaN."""
    if not image.is_floating_point():
        # uint8 is reduced as it is (a quarter of the bytes); torch has no uint16 min/max.
        source = image if image.dtype == torch.uint8 else work
        return source.amin(dim=dims, keepdim=True), source.amax(dim=dims, keepdim=True)
    nan = work.isnan()
    low = torch.where(nan, torch.inf, work).amin(dim=dims, keepdim=True)
    high = torch.where(nan, -torch.inf, work).amax(dim=dims, keepdim=True)
    empty = low > high
    return low.masked_fill(empty, torch.nan), high.masked_fill(empty, torch.nan)
