"""Triton kernels for CUDA tensors: one launch for ``standard`` and two for the per-image modes
(statistics, then an affine that finalizes them; three for scopes of many partials, with a
finalize kernel between: ``kernels.py``), with no host sync and no temporary of the image's
size.

This package is a backend of its own (the contract of :class:`norm_transforms.backends.Backend`,
the one conformance suite) for torch tensors. The Torch backend hands it CUDA tensors when
Triton imports (``norm_transforms.kernel_route`` says which route a tensor takes), and CPU
tensors when ``NORM_TRANSFORMS_FORCE_TRITON=1``, which the tests use with ``TRITON_INTERPRET=1``
to run every kernel on the CPU. What it does not compute itself, it leaves to the Torch-op
route: percentiles of float64, float16 and bfloat16 images (a device-side sort) and the
inverse (one
``addcmul``). ``nonzero=True`` and ``mask=`` run here: each statistics kernel counts only the
selected pixels, and the affine writes the zeros (``nonzero``) and the pixels of a scope without
a selected one back as 0.
"""

from __future__ import annotations

import contextlib

import torch

from ...modes import AffineParams, NormalizeParams, check_selects_statistics
from ..torch import value_range
from ..torch.inverse import check_inverse_dtype, check_normalized, denormalize
from ..torch.layout import check_call, check_image, check_mask, standard_affine_params, terms_shape
from ..torch.ops import normalize_with_ops, standard_constants
from ..torch.statistics import _SCALABLE_DTYPES, WIDE_DTYPES
from . import kernels
from .launch import Launcher
from .layout import output, planes, selection
from .statistics import STATISTICS, Statistic, scope_terms, statistic_for

__all__ = [
    "STATISTICS",
    "Statistic",
    "check_image",
    "check_inverse_dtype",
    "check_normalized",
    "denormalize",
    "normalize",
    "normalize_checked",
    "route",
    "value_range",
]

_standard = Launcher(kernels.standard_kernel)
_affine = Launcher(kernels.affine_kernel)


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
    """Normalize an ``(H, W)`` or ``(..., C, H, W)`` tensor with the Triton kernels, as the Torch
    backend's ``normalize`` does (same layouts, dtypes and results within rounding)."""
    dtype = check_call(image, volume, dtype)
    if mask is not None:
        check_selects_statistics("mask", params.mode.name)
        mask = check_mask(mask, image)
    return normalize_checked(image, params, dtype, return_params, mask)


def normalize_checked(
    image: torch.Tensor,
    params: NormalizeParams,
    dtype: torch.dtype,
    return_params: bool,
    mask: torch.Tensor | None,
) -> torch.Tensor | tuple[torch.Tensor, AffineParams]:
    """:func:`normalize` of arguments that the Torch backend has checked already (its route to
    these kernels: each check costs host time, which is what a small image costs on a GPU)."""
    if image.is_cpu and not kernels.INTERPRETED:
        raise RuntimeError(
            "the Triton kernels run on CUDA tensors; CPU tensors (NORM_TRANSFORMS_FORCE_TRITON=1) "
            "run only in Triton's interpreter: set TRITON_INTERPRET=1 before norm_transforms is imported"
        )
    if _left_to_ops(image, params):
        out, affine = normalize_with_ops(image, params, dtype, return_params, mask)
        return (out, affine) if return_params else out
    # Triton launches on the current CUDA device, not on the tensor's (triton-lang/triton#2441).
    with torch.cuda.device(image.device) if image.is_cuda else contextlib.nullcontext():
        return _normalize(image, params, dtype, return_params, mask)


def _normalize(
    image: torch.Tensor,
    params: NormalizeParams,
    dtype: torch.dtype,
    return_params: bool,
    mask: torch.Tensor | None,
) -> torch.Tensor | tuple[torch.Tensor, AffineParams]:
    source, geometry = planes(image)
    out = output(image, dtype, geometry)
    low, high = params.clip if params.clip is not None else (0.0, 0.0)
    if params.mode.statistic is None:  # the standard mode
        constants = standard_constants(params, geometry.channels, image.dtype, image.device)
        _standard(
            geometry.programs, (source, out, constants),
            (
                geometry.channels, geometry.pixels, geometry.blocks, *geometry.strides,
                *geometry.out_strides, low, high,
            ),
            CLIP=params.clip is not None, **geometry.tiling,
        )  # fmt: skip
        affine = standard_affine_params(params, image, image.dtype) if return_params else None
        return (out, affine) if return_params else out
    scaled = image.dtype in _SCALABLE_DTYPES
    statistic = statistic_for(params.mode.statistic, image.dtype)
    selected = selection(params.nonzero, mask, geometry)
    terms = scope_terms(statistic, source, geometry, params, scaled, return_params, selected)
    _affine(
        geometry.programs, (source, out, terms.table, terms.partials, terms.constants),
        (
            terms.table.shape[-1], terms.count, terms.field, geometry.channels, geometry.pixels,
            geometry.blocks, *geometry.strides, *geometry.out_strides, low, high,
        ),
        SCALED=scaled, CLIP=params.clip is not None, WIDE=source.dtype in WIDE_DTYPES,
        FUSED=terms.fused, STATISTIC=statistic.kind, ROBUST=statistic.robust, NONZERO=params.nonzero,
        SELECTED=selected.any, PER_CHANNEL=params.mode.per_channel, RECORD=terms.fused and return_params,
        **geometry.tiling,
    )  # fmt: skip
    if not return_params:
        return out
    shape = terms_shape(image, params.mode)
    return out, AffineParams(terms.table[4].reshape(shape), terms.table[5].reshape(shape))


def route(image: torch.Tensor, params: NormalizeParams) -> str:
    """``"triton"``, or ``"torch"`` where a statistic does not read ``image``'s dtype."""
    return "torch" if _left_to_ops(image, params) else "triton"


def _left_to_ops(image: torch.Tensor, params: NormalizeParams) -> bool:
    """True where the mode's statistic does not read ``image``'s dtype (float64, float16 and
    bfloat16 percentiles: the Torch-op route sorts on the device)."""
    name = params.mode.statistic
    return name is not None and statistic_for(name, image.dtype) is None
