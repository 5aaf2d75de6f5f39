"""Torch kernels: every mode of ``modes.MODES`` on CPU and CUDA tensors, computed in float32.

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
import math
from typing import NamedTuple

import numpy as np
import torch

from ..dtypes import PIXEL_TYPES
from ..modes import (
    EPS,
    AffineParams,
    Mode,
    NormalizeParams,
)
from . import numpy as numpy_backend

SUPPORTED_DTYPES = tuple(getattr(torch, name) for name in PIXEL_TYPES)
OUTPUT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# What denormalize reads (normalized images); it writes any dtype that normalize reads.
NORMALIZED_DTYPES = tuple(getattr(torch, name) for name, pixel in PIXEL_TYPES.items() if pixel.is_float)

# For max_pixel_value=None and the float64 folding: the NumPy dtype with the same full scale
# (float32 for bfloat16, which NumPy lacks).
_NUMPY_EQUIVALENT = {
    getattr(torch, name): np.dtype(name if pixel.numpy else "float32") for name, pixel in PIXEL_TYPES.items()
}
_NO_BOUNDS = (-float("inf"), float("inf"))

# Float dtypes whose values may overflow or underflow float32 statistics (see _prescaled).
_SCALABLE_DTYPES = (torch.float32, torch.float64, torch.bfloat16)


def check_output_dtype(dtype: torch.dtype) -> None:
    """Refuse an output dtype the kernels do not write (kernels and adapters share this check)."""
    if dtype not in OUTPUT_DTYPES:
        accepted = ", ".join(str(d).removeprefix("torch.") for d in OUTPUT_DTYPES)
        raise TypeError(f"output dtype must be one of {accepted}; got {dtype!r}")


def check_image(image: torch.Tensor) -> None:
    """Refuse what the kernels do not handle, saying what is accepted."""
    if image.dtype not in SUPPORTED_DTYPES:
        accepted = ", ".join(str(d).removeprefix("torch.") for d in SUPPORTED_DTYPES)
        raise TypeError(f"image dtype {image.dtype} is not supported; accepted: {accepted}")
    check_layout(image, "normalize")
    if image.requires_grad:
        # The kernels write into fresh buffers (out=, NumPy views), which autograd cannot follow.
        raise ValueError(
            "normalize does not record gradients, and image requires grad; pass image.detach(), "
            "or use NormalizeLayer, which is differentiable"
        )


def channel_count(image: torch.Tensor) -> int:
    return image.shape[-3] if image.ndim >= 3 else 1


def normalize(
    image: torch.Tensor,
    params: NormalizeParams,
    *,
    batched: bool = False,
    volume: bool = False,
    dtype: torch.dtype = torch.float32,
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


def numpy_dtype(dtype: torch.dtype) -> np.dtype:
    """The NumPy dtype with the same full scale (``max_pixel_value=None``), float32 for bfloat16."""
    return _NUMPY_EQUIVALENT[dtype]


def uses_cpu_kernels(image: torch.Tensor) -> bool:
    """CPU tensors take the C/OpenCV kernels (the tests also run the Torch-op route on CPU)."""
    return image.is_cpu


def _normalize_with_cpu_kernels(
    image: torch.Tensor, params: NormalizeParams, return_params: bool
) -> tuple[torch.Tensor, AffineParams | None]:
    # The layout is read from the NumPy view: each Torch call here (device, shape slices,
    # reshape of the result) cost 2-15 µs, a third of the work at 224².
    array = (image.float() if image.dtype == torch.bfloat16 else image).numpy()  # NumPy has no bfloat16
    if array.ndim == 4 and not array.flags.c_contiguous:
        interleaved = array.transpose(0, 2, 3, 1)
        if interleaved.flags.c_contiguous:
            # channels_last is NHWC in memory: the interleaved layout of the NumPy backend.
            result = numpy_backend.normalize(interleaved, params, batched=True, return_params=return_params)
            out, affine = result if return_params else (result, None)
            return torch.from_numpy(out.transpose(0, 3, 1, 2)), _tensor_params(affine, image, params.mode)
    *_, height, width = array.shape
    channels = array.shape[-3] if array.ndim >= 3 else 1
    planes = array.reshape(-1, channels, height, width)
    result = numpy_backend.normalize_planar(planes, params, return_params=return_params)
    out, affine = result if return_params else (result, None)
    return torch.from_numpy(out.reshape(array.shape)), _tensor_params(affine, image, params.mode)


def terms_shape(image: torch.Tensor, mode: Mode) -> tuple[int, ...]:
    """The shape of the per-scope terms of ``image``: ``(..., C or 1, 1, 1)``, ``(1, 1)`` for HW;
    the standard mode's constants have no sample axes."""
    if image.ndim == 2:
        return (1, 1)
    samples = tuple(image.shape[:-3]) if mode.statistic else ()
    return (*samples, image.shape[-3] if mode.per_channel else 1, 1, 1)


def _tensor_params(affine: AffineParams | None, image: torch.Tensor, mode: Mode) -> AffineParams | None:
    """The NumPy backend's terms (NHWC or planar, same order) as tensors shaped for ``image``."""
    if affine is None:
        return None
    shape = terms_shape(image, mode)
    return AffineParams(*(torch.from_numpy(terms).reshape(shape) for terms in (affine.center, affine.scale)))


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
    # The working copy (float32; float64 for float64 input) is also the output buffer when it is
    # new (not the caller's) and of the output dtype.
    work, factor = _prescaled(image, reduce_dims)
    owned = work.data_ptr() != image.data_ptr()
    eps = EPS if factor is None else EPS * factor
    terms = STATISTICS[mode.statistic](image, work, owned, reduce_dims, params)
    center, shifted, center_low = terms.center, terms.shifted, terms.center_low
    # Documented: NaN or ±inf in a scope makes the scope NaN (a +inf maximum would give scale 0).
    defined = center.isfinite() & terms.spread.isfinite()
    scale = torch.where(defined, 1.0 / (terms.spread + eps), torch.nan)
    scale_w = scale.to(shifted.dtype)
    out = shifted if dtype == shifted.dtype else torch.empty_like(shifted, dtype=dtype)
    torch.addcmul(-center_low * scale_w, shifted, scale_w, out=out)
    out.clamp_(*(mode.clip or _NO_BOUNDS))
    if not return_params:
        return out, None
    if factor is not None:  # the terms of the scaled copy, back in the image's units
        center, scale = center / factor, scale * factor
    return out, _defined_terms(center, scale)


class Centered(NamedTuple):
    """A statistic's terms for the working copy of the image (float32, each scope prescaled):
    float64 ``center`` and ``spread`` (the mode maps ``x`` to ``(x - center) / (spread + eps)``),
    and the centered values ``shifted = work - center_high`` (float32, the buffer the affine then
    runs on) with what is left of the center, ``center_low = center - center_high`` (float32):
    subtracting the float32 part first keeps near-constant images exact."""

    center: torch.Tensor
    spread: torch.Tensor
    shifted: torch.Tensor
    center_low: torch.Tensor


def _moments(
    image: torch.Tensor, work: torch.Tensor, owned: bool, dims: tuple[int, ...], params: NormalizeParams
) -> Centered:
    """``image`` modes: subtract the float32 mean first, then the moments of the centered values
    give the rounding left in it (the low part) and a variance free of cancellation."""
    center_high = work.mean(dim=dims, keepdim=True)
    shifted = _subtract(work, center_high, owned)
    variance, center_low = torch.var_mean(shifted, dim=dims, correction=0, keepdim=True)
    mean = center_high.double() + center_low.double()
    return Centered(mean, variance.double().sqrt(), shifted, center_low)


def _extremes(
    image: torch.Tensor, work: torch.Tensor, owned: bool, dims: tuple[int, ...], params: NormalizeParams
) -> Centered:
    """``min_max`` modes."""
    low, high = _min_max(image, work, dims)
    return _centered(work, owned, low.double(), high.double() - low.double())


def _percentile_range(
    image: torch.Tensor, work: torch.Tensor, owned: bool, dims: tuple[int, ...], params: NormalizeParams
) -> Centered:
    """``percentile`` modes."""
    low, high = _percentiles(image, work, dims, params.percentiles)
    return _centered(work, owned, low, high - low)


def _centered(work: torch.Tensor, owned: bool, center: torch.Tensor, spread: torch.Tensor) -> Centered:
    """The terms of a statistic that gives its float64 center directly. A minimum is a pixel
    value, exact in float32; an interpolated percentile may need the low part too."""
    center_high = center.to(work.dtype)
    center_low = (center - center_high.double()).to(work.dtype)
    return Centered(center, spread, _subtract(work, center_high, owned), center_low)


def _robust(
    image: torch.Tensor, work: torch.Tensor, owned: bool, dims: tuple[int, ...], params: NormalizeParams
) -> Centered:
    """``robust`` modes: the median and the interquartile range."""
    lower_quartile, median, upper_quartile = _percentiles(image, work, dims, (25.0, 50.0, 75.0))
    return _centered(work, owned, median, upper_quartile - lower_quartile)


#: Statistic name (``Mode.statistic``) -> ``f(image, work, owned, dims, params) -> Centered``,
#: reduced over ``dims`` of every sample at once (keepdim).
STATISTICS = {"mean_std": _moments, "min_max": _extremes, "percentile": _percentile_range, "robust": _robust}


def _prescaled(image: torch.Tensor, dims: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The image as float32 (float64 for float64) with each scope multiplied by a power of two
    ``2**-e`` that brings it into [-1, 1], and those factors as float64 (``None`` for dtypes
    that need no scaling: integers and float16, whose squares and sums stay far inside float32's
    range).

    Scale safety: float32 reductions of large values overflow (the variance of 1e30-sized values
    came out 0, a float64 1e300 becomes inf in float32) and those of tiny ones underflow, so
    statistics and the affine run on the scaled copy, with eps scaled alike: the same output
    within rounding for any finite input. A power of two scales exactly. Every scope is scaled
    (a decision per scope would need the host): on an H200 this costs 0.06-0.13 ms more per
    call on a 3x224x224 float32 image (a few more small kernels) and 23-37% more on a
    256x3x224x224 float32 batch; integer inputs pay nothing. A scope of zeros, or with NaN or
    inf, gets the factor 1 (frexp gives the exponent 0 for them).
    """
    if image.dtype not in _SCALABLE_DTYPES:
        return image.to(torch.float32), None
    precision = torch.float64 if image.dtype == torch.float64 else torch.float32
    magnitude = torch.linalg.vector_norm(image, ord=math.inf, dim=dims, keepdim=True, dtype=precision)
    # 2**-e is exact in float32 down to 2**-149, below the 2**-128 a float32 image needs.
    factor = torch.exp2(torch.frexp(magnitude).exponent.neg().to(precision))
    # float64 images keep a float64 working copy: rounded to float32 first, a near-constant
    # image with a tiny spread lost digits in the robust modes (0.03 off at an output of 1e3).
    return (image * factor).to(precision), factor.double()


def _defined_terms(center: torch.Tensor, scale: torch.Tensor) -> AffineParams:
    """The terms as applied: NaN for every scope whose statistics are undefined (NaN or inf
    pixels), where the output is NaN too."""
    broken = ~(center + scale).isfinite()
    return AffineParams(center.masked_fill(broken, torch.nan), scale.masked_fill(broken, torch.nan))


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


def _percentiles(
    image: torch.Tensor, work: torch.Tensor, dims: tuple[int, ...], percentiles: tuple[float, ...]
) -> tuple[torch.Tensor, ...]:
    """The ``percentiles`` over ``dims`` (one float64 tensor each, keepdim), interpolated linearly as
    ``np.percentile`` does, NaN pixels skipped; a scope of only NaN gives NaN.

    uint8: exact from per-scope histograms, one ``scatter_add_`` for the whole batch (a sort of
    every scope costs ~10x more). Other dtypes: one sort of every scope; NaN sorts last, so
    the ranks count only the values before it.
    """
    reduced = {d % image.ndim for d in dims}
    kept = [1 if axis in reduced else size for axis, size in enumerate(image.shape)]
    scopes = math.prod(kept)
    if image.dtype == torch.uint8:
        values = image.reshape(scopes, -1).long()
        first_bin = torch.arange(scopes, device=image.device).unsqueeze(1) * 256
        # scatter_add_, not bincount: bincount reads the largest value back to size its output,
        # a host sync on CUDA, even with minlength.
        bins = (values + first_bin).ravel()
        counts = torch.zeros(scopes * 256, dtype=torch.long, device=image.device)
        counts = counts.scatter_add_(0, bins, torch.ones_like(bins)).reshape(scopes, 256)
        cumulative = counts.cumsum(dim=1)
        total = cumulative[:, -1:]

        def order_statistic(rank: torch.Tensor) -> torch.Tensor:
            # The value of rank k: how many bins hold k values or fewer up to them.
            return (cumulative.unsqueeze(1) <= rank.unsqueeze(-1)).sum(dim=-1).double()

    else:
        ordered = work.reshape(scopes, -1).sort(dim=1).values
        total = (~ordered.isnan()).sum(dim=1, keepdim=True)

        def order_statistic(rank: torch.Tensor) -> torch.Tensor:
            return ordered.gather(1, rank.long()).double()

    last = (total - 1).clamp(min=0).double()  # a scope of only NaN has no values: NaN below
    ranks = last * _fractions(percentiles, image.device)
    below = ranks.floor()
    low_value, high_value = order_statistic(below), order_statistic(torch.minimum(below + 1, last))
    result = low_value + (ranks - below) * (high_value - low_value)
    result = result.masked_fill(total == 0, torch.nan)
    return tuple(values.reshape(kept) for values in result.unbind(dim=1))


@functools.lru_cache(maxsize=64)
def _fractions(percentiles: tuple[float, ...], device: torch.device) -> torch.Tensor:
    """The percentiles as float64 fractions on ``device``, cached: copying a Python list to a
    CUDA device waits for the host, once, instead of on every call."""
    return torch.tensor(percentiles, dtype=torch.float64, device=device) / 100.0


# --------------------------------------------------------------------------- params and inverse


def standard_affine_params(params: NormalizeParams, image: torch.Tensor, dtype: torch.dtype) -> AffineParams:
    """The standard mode's float64 constants on ``image``'s device, with ``dtype``'s full scale
    when ``max_pixel_value`` is None: the input's for normalize, the output's for denormalize."""
    center, scale = params.standard_center_scale(channel_count(image), _NUMPY_EQUIVALENT[dtype])
    shape = terms_shape(image, params.mode)
    center_tensor, scale_tensor = (
        torch.tensor(terms, dtype=torch.float64, device=image.device).reshape(shape)
        for terms in (center, scale)
    )
    return AffineParams(center_tensor, scale_tensor)


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
    ``dtype``: float32 (None), float16, bfloat16 or float64 in the original units, or uint8 /
    uint16 rounded (half to even) and clipped to the dtype's range, NaN as 0.
    """
    if volume:
        raise ValueError("volume=True is not supported for tensors; pass (..., C, H, W) frames as samples")
    dtype = torch.float32 if dtype is None else check_inverse_dtype(dtype)
    check_normalized(image)
    if isinstance(params, NormalizeParams):
        params = standard_affine_params(params, image, dtype)
    center, scale = _checked_terms(params, image)
    # float32 keeps every dtype's round trip within 1e-6 of full scale (and uint8 / uint16
    # exact), at GPU speed; float64 only where it is asked for.
    compute = torch.float64 if dtype == torch.float64 else torch.float32
    pixels = torch.addcmul(center.to(compute), image, scale.reciprocal().to(compute))
    if not dtype.is_floating_point:
        # Display pixels: NaN (undefined statistics) becomes 0 rather than a cast's garbage.
        top = float(torch.iinfo(dtype).max)
        pixels = pixels.nan_to_num_(nan=0.0).clamp_(0.0, top).round_()
    return pixels.to(dtype)


def check_normalized(image: torch.Tensor) -> None:
    """Refuse what denormalize cannot read: it takes normalize's float output."""
    if image.dtype not in NORMALIZED_DTYPES:
        accepted = ", ".join(str(d).removeprefix("torch.") for d in NORMALIZED_DTYPES)
        raise TypeError(
            f"denormalize takes a normalized (float) tensor; got dtype {image.dtype}, accepted: {accepted}"
        )
    check_layout(image, "denormalize")


def check_layout(image: torch.Tensor, action: str) -> None:
    """Refuse tensors without data to read (sparse, meta), without two spatial axes, and empty ones."""
    if image.layout != torch.strided:
        raise TypeError(
            f"cannot {action} a tensor with layout {image.layout}; pass a dense (strided) tensor, "
            "e.g. image.to_dense()"
        )
    if image.is_meta:
        raise ValueError(
            f"cannot {action} a tensor on the meta device (it has a shape but no data); "
            "pass a CPU or CUDA tensor"
        )
    if image.ndim < 2:
        shape = tuple(image.shape)
        raise ValueError(f"expected a tensor of shape (H, W) or (..., C, H, W); got shape {shape}")
    if image.numel() == 0:
        raise ValueError(f"image is empty (shape {tuple(image.shape)}); nothing to {action}")


def check_inverse_dtype(dtype: torch.dtype) -> torch.dtype:
    """``dtype`` when denormalize writes it, else a TypeError listing those it writes (shared
    with TorchDenormalize)."""
    if dtype not in SUPPORTED_DTYPES:
        accepted = ", ".join(str(d).removeprefix("torch.") for d in SUPPORTED_DTYPES)
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
