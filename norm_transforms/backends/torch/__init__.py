"""Torch kernels: every mode of ``modes.MODES`` on CPU and CUDA tensors, computed in float32.

Layout: ``(H, W)`` or ``(..., C, H, W)``; every leading axis (a batch ``N``, video frames
``T``) indexes samples, and each sample gets its own statistics, all in one vectorized pass.
channels_last input gives channels_last output. ``normalize`` never syncs with the host:
constants are cached on the tensor's device, statistics stay on it, and no value is read back
(``value_range``, which the transforms call once, reads two numbers back).

Routes (timings in benchmarks/RESULTS.md; :func:`route` names the one a tensor takes):

- CPU tensors go through the CPU kernels of the NumPy backend (C and OpenCV) on zero-copy
  views: single-threaded, its one-pass affine runs at the ``x.float()`` floor, where
  ``addcmul`` with a uint8 operand takes the slow mixed-dtype path (~2x the floor) and
  ``torch.var_mean`` is scalar (~50x ``mean``). Channel-planar and channels_last layouts
  both map onto it without a copy.

CUDA tensors go to the Triton kernels (``norm_transforms.backends.triton``) where Triton
imports; CPU tensors too with ``NORM_TRANSFORMS_FORCE_TRITON=1`` (tests, with
``TRITON_INTERPRET=1``); ``NORM_TRANSFORMS_DISABLE_TRITON=1`` turns them off. Without Triton
(no CUDA, Windows, a CPU-only torch) they use Torch ops:

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

import functools
import os
from types import ModuleType

import torch

from ...modes import AffineParams, NormalizeParams, check_selects_statistics
from .. import kernels
from .. import numpy as numpy_backend
from .cpu import _normalize_with_cpu_kernels, numpy_view
from .inverse import check_inverse_dtype, check_normalized, denormalize
from .layout import (
    NORMALIZED_DTYPES,
    OUTPUT_DTYPES,
    SUPPORTED_DTYPES,
    channel_count,
    check_call,
    check_image,
    check_layout,
    check_mask,
    check_output_dtype,
    check_view_call,
    numpy_dtype,
    standard_affine_params,
    terms_shape,
)
from .ops import normalize_with_ops
from .statistics import STATISTICS, _min_max

__all__ = [
    "DISABLE_TRITON_VARIABLE",
    "FORCE_TRITON_VARIABLE",
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
    "route",
    "standard_affine_params",
    "terms_shape",
    "triton_unavailable_reason",
    "uses_cpu_kernels",
    "value_range",
]

#: "1" sends CPU tensors to the Triton kernels, which then run in Triton's interpreter
#: (``TRITON_INTERPRET=1``): how the test suite checks every kernel on a machine without a GPU
#: (read once, at the first call).
FORCE_TRITON_VARIABLE = "NORM_TRANSFORMS_FORCE_TRITON"
#: "1" keeps CUDA tensors on the Torch-op route (read once, at the first CUDA call).
DISABLE_TRITON_VARIABLE = "NORM_TRANSFORMS_DISABLE_TRITON"


def normalize(
    image: torch.Tensor,
    params: NormalizeParams,
    *,
    batched: bool = False,
    volume: bool = False,
    dtype: torch.dtype | None = None,
    return_params: bool = False,
    mask: torch.Tensor | None = None,
) -> torch.Tensor | tuple[torch.Tensor, AffineParams]:
    """Normalize a tensor laid out as ``(H, W)`` or ``(..., C, H, W)``; returns ``dtype``.

    Leading axes are samples whatever ``batched`` says (the layout is unambiguous for
    tensors); ``volume=True`` is not supported for tensors. The input is never modified.
    ``params.nonzero`` and ``mask`` (a bool tensor of the image's shape, or without its channel
    axis) select the pixels the statistics come from.
    ``return_params=True`` also returns the :class:`AffineParams` applied: float64 tensors on
    the image's device, shaped ``(..., C or 1, 1, 1)`` (``(1, 1)`` for HW).
    """
    on_cpu_kernels = uses_cpu_kernels(image)
    array = numpy_view(image) if on_cpu_kernels else None
    if array is None:
        dtype = check_call(image, volume, dtype)
    else:
        dtype = check_view_call(array, image, volume, dtype)
    if mask is not None:
        check_selects_statistics("mask", params.mode.name)
        mask = check_mask(mask, image)
    if on_cpu_kernels:
        out, affine = _normalize_with_cpu_kernels(image, params, dtype, return_params, mask, array)
        return (out, affine) if return_params else out
    triton = _triton_for(image)
    if triton is not None:
        return triton.normalize_checked(image, params, dtype, return_params, mask)
    out, affine = normalize_with_ops(image, params, dtype, return_params, mask)
    return (out, affine) if return_params else out


def route(image: torch.Tensor, params: NormalizeParams) -> str:
    """The kernels that ``normalize`` runs for ``image`` in ``params.mode``: ``"c"`` (CPU tensors:
    the C kernels of the NumPy backend, or ``"numpy"`` where they were not built),
    ``"triton"``, or ``"torch"`` (Torch ops)."""
    if uses_cpu_kernels(image):
        return kernels.KERNELS_BACKEND
    triton = _triton_for(image)
    return "torch" if triton is None else triton.route(image, params)


def value_range(image: torch.Tensor) -> tuple[float, float]:
    """The smallest and largest pixel value, NaN skipped (NaN, NaN when there are none): what
    the transforms read on their first call to check ``max_pixel_value``. Reads two numbers
    back from the device, once per transform."""
    image = image.detach()
    if image.is_cpu:  # NumPy's reductions on the zero-copy view: ~5x faster here
        return numpy_backend.value_range((image.float() if image.dtype == torch.bfloat16 else image).numpy())
    low, high = _min_max(image, image.float(), tuple(range(image.ndim)))
    return low.item(), high.item()


def uses_cpu_kernels(image: torch.Tensor) -> bool:
    """CPU tensors take the C/OpenCV kernels, unless the Triton route is forced (the tests also
    run the Torch-op route on CPU by patching this)."""
    return image.is_cpu and not _triton_forced()


def triton_unavailable_reason() -> str | None:
    """Why CUDA tensors take Torch ops instead of the Triton kernels, or None when they don't."""
    return _load_triton()[1]


@functools.cache
def _triton_forced() -> bool:
    # Read once: os.environ.get cost 2.5-6 µs a call on the CPU route (its Python Mapping code
    # runs cold after a kernel pass), a tenth of a 3x224x224 float32 normalize.
    return os.environ.get(FORCE_TRITON_VARIABLE) == "1"


def _triton_for(image: torch.Tensor) -> ModuleType | None:
    """The Triton backend for ``image`` (CUDA, or any tensor when forced), or None."""
    if not (image.is_cuda or _triton_forced()):
        return None
    backend, reason = _load_triton()
    if backend is None and _triton_forced():
        raise RuntimeError(f"{FORCE_TRITON_VARIABLE}=1, but the Triton kernels cannot run: {reason}")
    return backend


@functools.cache
def _load_triton() -> tuple[ModuleType | None, str | None]:
    if os.environ.get(DISABLE_TRITON_VARIABLE) == "1":
        return None, f"{DISABLE_TRITON_VARIABLE}=1"
    try:
        from .. import triton as backend
    except ImportError as error:  # no triton (Windows, macOS, a CPU-only torch build)
        return None, f"Triton does not import ({error})"
    return backend, None
