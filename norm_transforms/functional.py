"""``normalize``: one function for every array type, dispatching to that type's kernel."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from .backends import numpy as numpy_backend
from .modes import IMAGENET_MEAN, IMAGENET_STD, NormalizationName, NormalizeParams

ArrayT = TypeVar("ArrayT")
Kernel = Callable[..., Any]

# Type -> kernel. Another backend plugs in with register_kernel; normalize() never changes.
_KERNELS: dict[type, Kernel] = {np.ndarray: numpy_backend.normalize_array}
# Kernels behind an optional dependency, by the qualified name of their array type: imported
# when the first such array arrives, so that `import norm_transforms` never imports torch.
_LAZY_KERNELS = {"torch.Tensor": ("norm_transforms.backends.torch", "normalize_tensor")}


def register_kernel(array_type: type, kernel: Kernel) -> None:
    """Route arrays of ``array_type`` (and subclasses) to ``kernel(array, params, **options)``."""
    _KERNELS[array_type] = kernel


def normalize(
    image: ArrayT,
    mean: float | Sequence[float] = IMAGENET_MEAN,
    std: float | Sequence[float] = IMAGENET_STD,
    max_pixel_value: float | None = 255.0,
    normalization: NormalizationName = "standard",
    *,
    batched: bool = False,
    volume: bool = False,
    dtype: Any = None,
) -> ArrayT:
    """Normalize an image, a batch of images, a volume or a batch of volumes to float32.

    NumPy layouts: ``(H, W)``, ``(H, W, C)``; ``batched=True`` adds a leading ``N`` and gives
    each image its own statistics; ``volume=True`` reads ``(D, H, W[, C])`` as one 3-D image.
    Torch tensors: ``(H, W)`` or ``(..., C, H, W)``, every leading axis a sample with its own
    statistics; ``dtype`` picks the output (``torch.float32`` by default, ``float16`` or
    ``bfloat16``), always computed in float32.
    The arguments and defaults are those of ``albumentations.Normalize``;
    ``max_pixel_value=None`` takes the dtype's full scale (255, 65535 or 1.0).

    >>> import numpy as np
    >>> x = np.full((2, 2, 3), 255, np.uint8)
    >>> normalize(x, mean=0.5, std=0.5)[0, 0]
    array([1., 1., 1.], dtype=float32)
    """
    options = {} if dtype is None else {"dtype": dtype}
    return _kernel_for(image)(
        image, _params(mean, std, max_pixel_value, normalization), batched=batched, volume=volume, **options
    )


@functools.lru_cache(maxsize=256)
def _cached_params(mean: Any, std: Any, max_pixel_value: Any, normalization: Any) -> NormalizeParams:
    return NormalizeParams.build(mean, std, max_pixel_value, normalization)


def _params(mean: Any, std: Any, max_pixel_value: Any, normalization: Any) -> NormalizeParams:
    """Validated arguments; hashable ones (tuples, numbers) are validated once and cached."""
    try:
        return _cached_params(mean, std, max_pixel_value, normalization)
    except TypeError:  # unhashable (a list, an array): validate on every call
        return NormalizeParams.build(mean, std, max_pixel_value, normalization)


def _kernel_for(image: Any) -> Kernel:
    for cls in type(image).__mro__:
        if cls in _KERNELS:
            return _KERNELS[cls]
        lazy = _LAZY_KERNELS.get(f"{cls.__module__}.{cls.__qualname__}")
        if lazy:
            module, name = lazy
            register_kernel(cls, getattr(importlib.import_module(module), name))
            return _KERNELS[cls]
    accepted = ", ".join([*(f"{t.__module__}.{t.__qualname__}" for t in _KERNELS), *_LAZY_KERNELS])
    raise TypeError(f"cannot normalize a {type(image).__qualname__}; accepted: {accepted}")
