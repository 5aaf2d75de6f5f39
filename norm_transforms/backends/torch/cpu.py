"""The CPU route: CPU tensors through the NumPy backend's C/OpenCV kernels on zero-copy views."""

from __future__ import annotations

import torch

from ...modes import AffineParams, Mode, NormalizeParams
from .. import numpy as numpy_backend
from .layout import terms_shape


def _normalize_with_cpu_kernels(
    image: torch.Tensor, params: NormalizeParams, return_params: bool, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, AffineParams | None]:
    """``mask``, when given: checked, a bool tensor of ``image``'s shape (``layout.check_mask``)."""
    # The layout is read from the NumPy view: each Torch call here (device, shape slices,
    # reshape of the result) cost 2-15 µs, a third of the work at 224².
    array = (image.float() if image.dtype == torch.bfloat16 else image).numpy()  # NumPy has no bfloat16
    selection = None if mask is None else mask.numpy()
    if array.ndim == 4 and not array.flags.c_contiguous:
        interleaved = array.transpose(0, 2, 3, 1)
        if interleaved.flags.c_contiguous:
            # channels_last is NHWC in memory: the interleaved layout of the NumPy backend.
            options = {} if selection is None else {"mask": selection.transpose(0, 2, 3, 1)}
            result = numpy_backend.normalize(
                interleaved, params, batched=True, return_params=return_params, **options
            )
            out, affine = result if return_params else (result, None)
            return torch.from_numpy(out.transpose(0, 3, 1, 2)), _tensor_params(affine, image, params.mode)
    *_, height, width = array.shape
    channels = array.shape[-3] if array.ndim >= 3 else 1
    planes = array.reshape(-1, channels, height, width)
    options = {} if selection is None else {"mask": selection.reshape(planes.shape)}
    result = numpy_backend.normalize_planar(planes, params, return_params=return_params, **options)
    out, affine = result if return_params else (result, None)
    return torch.from_numpy(out.reshape(array.shape)), _tensor_params(affine, image, params.mode)


def _tensor_params(affine: AffineParams | None, image: torch.Tensor, mode: Mode) -> AffineParams | None:
    """The NumPy backend's terms (NHWC or planar, same order) as tensors shaped for ``image``."""
    if affine is None:
        return None
    shape = terms_shape(image, mode)
    return AffineParams(*(torch.from_numpy(terms).reshape(shape) for terms in (affine.center, affine.scale)))
