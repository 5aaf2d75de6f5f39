"""The CPU route: CPU tensors through the NumPy backend's C/OpenCV kernels on zero-copy views."""

from __future__ import annotations

import numpy as np
import torch

from ...modes import AffineParams, Mode, NormalizeParams
from .. import numpy as numpy_backend
from .layout import interleaves_channels, terms_shape

_FLOAT32 = np.dtype(np.float32)
# The output dtypes that the kernels write.
_WRITTEN_BY_KERNELS = {torch.float32: _FLOAT32, torch.float16: np.dtype(np.float16)}


def numpy_view(image: torch.Tensor) -> np.ndarray | None:
    """``image.numpy()``, the zero-copy view the kernels read, or None where Torch refuses it
    (bfloat16, requires_grad, sparse, a conjugate view: :func:`layout.check_call` then says
    why, or the route converts): one Torch call instead of the checks' six."""
    if image.dtype == torch.bfloat16:  # asked first: Torch's refusal costs 9-50 µs (a C++ error)
        return None
    try:
        return image.numpy()
    except (RuntimeError, TypeError):
        return None


def _normalize_with_cpu_kernels(
    image: torch.Tensor,
    params: NormalizeParams,
    dtype: torch.dtype,
    return_params: bool,
    mask: torch.Tensor | None = None,
    array: np.ndarray | None = None,
) -> tuple[torch.Tensor, AffineParams | None]:
    """``image`` normalized to ``dtype`` (checked, one of ``layout.OUTPUT_DTYPES``). ``array``:
    its :func:`numpy_view`, when it has one; ``mask``, when given: checked, a bool tensor of
    ``image``'s shape (``layout.check_mask``).

    Torch is called as little as possible (the view, then ``from_numpy``): a kernel pass over
    512x512x3 float32 sweeps the caches, and Torch's code in the next call runs cold
    (``x.numpy()`` 13 µs instead of 0.6, ``from_numpy`` 5 instead of 0.5, ``numel()`` 7). The
    layout is read from the NumPy view."""
    if array is None:
        array = (image.float() if image.dtype == torch.bfloat16 else image).numpy()  # NumPy has no bfloat16
    selection = None if mask is None else mask.numpy()
    # bfloat16 and float64 are converted from float32 by Torch afterwards; the kernels write
    # float32 and float16 themselves, rounding each float32 value once as they store it.
    written = _WRITTEN_BY_KERNELS.get(dtype)
    convert = written is None
    # Decided from the tensor's strides: a bfloat16 tensor's array is a float32 copy, whose
    # layout need not be the tensor's (a crop of NTHWC video comes back contiguous).
    if array.ndim >= 4 and interleaves_channels(image.shape, image.stride()):
        # channels_last is NHWC in memory: the interleaved layout of the NumPy backend, which
        # reads a crop of it as rows, where the planar path gathered every pixel (1.6x the time
        # of a 32x3x224x224 uint8 crop of 256x256 channels_last in the standard mode).
        options = {} if selection is None else {"mask": _as_samples_of_pixels(selection)}
        samples = _as_samples_of_pixels(array)
        result = numpy_backend.normalize(
            samples, params, batched=True, dtype=written, return_params=return_params, **options
        )
        out_array, affine = result if return_params else (result, None)
        interleaved = out_array.reshape(*array.shape[:-3], *samples.shape[1:])
        out = torch.from_numpy(np.moveaxis(interleaved, -1, -3))
        return out.to(dtype) if convert else out, _tensor_params(affine, image, params.mode)
    *_, height, width = array.shape
    channels = array.shape[-3] if array.ndim >= 3 else 1
    planes = array.reshape(-1, channels, height, width)
    options = {} if selection is None else {"mask": selection.reshape(planes.shape)}
    # NumPy allocates the output: huge pages from 4 MiB, 211 page faults for a 64x3x224x224
    # float32 batch where torch.empty took 9,400 and twice the time.
    out_array = np.empty(array.shape, dtype=written or _FLOAT32)
    out = torch.from_numpy(out_array)
    result = numpy_backend.normalize_planar(
        planes, params, out=out_array.reshape(planes.shape), return_params=return_params, **options
    )
    affine = result[1] if return_params else None
    return out.to(dtype) if convert else out, _tensor_params(affine, image, params.mode)


def _as_samples_of_pixels(array: np.ndarray) -> np.ndarray:
    """``(..., C, H, W)`` as ``(samples, H, W, C)``, a view where the leading axes merge."""
    interleaved = np.moveaxis(array, -3, -1)
    return interleaved.reshape(-1, *interleaved.shape[-3:])


def _tensor_params(affine: AffineParams | None, image: torch.Tensor, mode: Mode) -> AffineParams | None:
    """The NumPy backend's terms (NHWC or planar, same order) as tensors shaped for ``image``."""
    if affine is None:
        return None
    shape = terms_shape(image, mode)
    return AffineParams(*(torch.from_numpy(terms).reshape(shape) for terms in (affine.center, affine.scale)))
