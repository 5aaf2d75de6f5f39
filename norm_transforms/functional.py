"""``normalize`` and its inverse ``denormalize``: one function each for every array type,
dispatching to that type's kernel."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar, overload

import numpy as np

from .backends import backend_for, backend_for_type, register_backend
from .modes import (
    DEFAULT_PERCENTILES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    AffineParams,
    NormalizationName,
    NormalizeParams,
)

ArrayT = TypeVar("ArrayT")
Kernel = Callable[..., Any]


class _KernelBackend:
    """A backend made of the one or two functions given to :func:`register_kernel`."""

    def __init__(self, kernel: Kernel, inverse: Kernel | None, previous: Any) -> None:
        # Without an inverse, denormalize keeps going where it went before (the backend of a
        # base class, e.g. NumPy's for an ndarray subclass).
        self._kernel, self._inverse, self._previous = kernel, inverse, previous

    def normalize(self, image: Any, params: NormalizeParams, **options: Any) -> Any:
        return self._kernel(image, params, **options)

    def route(self, image: Any, params: NormalizeParams) -> str:
        return "registered"

    def denormalize(self, image: Any, params: Any, **options: Any) -> Any:
        if self._inverse is None and self._previous is not None:
            return self._previous.denormalize(image, params, **options)
        if self._inverse is None:
            raise TypeError(
                f"cannot denormalize a {type(image).__qualname__}: its kernel was registered without "
                "an inverse (register_kernel(..., inverse=...))"
            )
        return self._inverse(image, params, **options)


def register_kernel(array_type: type, kernel: Kernel, inverse: Kernel | None = None) -> None:
    """Route arrays of ``array_type`` (and subclasses) to ``kernel(array, params, **options)``,
    and, when given, ``denormalize`` to ``inverse(array, params, **options)``. A whole backend
    (the :class:`norm_transforms.backends.Backend` contract) registers with
    :func:`norm_transforms.backends.register_backend`."""
    register_backend(array_type, _KernelBackend(kernel, inverse, backend_for_type(array_type)))


@overload
def normalize(
    image: ArrayT,
    mean: float | Sequence[float] = ...,
    std: float | Sequence[float] = ...,
    max_pixel_value: float | None = ...,
    normalization: NormalizationName = ...,
    *,
    percentiles: tuple[float, float] = ...,
    clip_range: tuple[float, float] | None = ...,
    nonzero: bool = ...,
    mask: Any = ...,
    batched: bool = ...,
    volume: bool = ...,
    dtype: Any = ...,
    inplace: bool = ...,
    return_params: Literal[False] = ...,
) -> ArrayT: ...


@overload
def normalize(
    image: ArrayT,
    mean: float | Sequence[float] = ...,
    std: float | Sequence[float] = ...,
    max_pixel_value: float | None = ...,
    normalization: NormalizationName = ...,
    *,
    percentiles: tuple[float, float] = ...,
    clip_range: tuple[float, float] | None = ...,
    nonzero: bool = ...,
    mask: Any = ...,
    batched: bool = ...,
    volume: bool = ...,
    dtype: Any = ...,
    inplace: bool = ...,
    return_params: Literal[True],
) -> tuple[ArrayT, AffineParams]: ...


def normalize(
    image: ArrayT,
    mean: float | Sequence[float] = IMAGENET_MEAN,
    std: float | Sequence[float] = IMAGENET_STD,
    max_pixel_value: float | None = 255.0,
    normalization: NormalizationName = "standard",
    *,
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
    clip_range: tuple[float, float] | None = None,
    nonzero: bool = False,
    mask: Any = None,
    batched: bool = False,
    volume: bool = False,
    dtype: Any = None,
    inplace: bool = False,
    return_params: bool = False,
) -> ArrayT | tuple[ArrayT, AffineParams]:
    """Normalize an image, a batch of images, a volume or a batch of volumes to float32.

    NumPy layouts: ``(H, W)``, ``(H, W, C)``; ``batched=True`` adds a leading ``N`` and gives
    each image its own statistics; ``volume=True`` reads ``(D, H, W[, C])`` as one 3-D image.
    Torch tensors: ``(H, W)`` or ``(..., C, H, W)``, every leading axis a sample with its own
    statistics; ``dtype`` picks the output (None: a float input's own dtype, float32 for
    integer input, as ``v2.Normalize``; or float32, float16, bfloat16, float64), always
    computed in float32. NumPy arrays: float32, or ``dtype=np.float16``.
    The arguments and defaults are those of ``albumentations.Normalize``;
    ``max_pixel_value=None`` takes the dtype's full scale (255, 65535 or 1.0; int16 and int32
    images have none, and their standard mode needs an explicit value). The
    ``percentile`` modes (ours) map the ``percentiles=(low, high)`` of each image (channel)
    to 0 and 1 and clip; the ``robust`` modes (ours) subtract the median and divide by the
    interquartile range + 1e-4. ``clip_range=(low, high)`` (AlbumentationsX's keyword) clips
    the output after the mode's formula and its own clip, in the same pass.

    ``inplace=True`` (as ``v2.functional.normalize``) writes the result into ``image`` and
    returns it: possible where the output has the input's dtype (a float tensor with
    ``dtype=None``, a float32 array), else a ``ValueError`` saying why.

    Selected pixels (per-image modes only): ``nonzero=True`` takes each scope's statistics
    (the image's, or each channel's in a ``*_per_channel`` mode) over its non-zero values only
    and leaves the zero values at exactly 0 (MONAI's ``NormalizeIntensity(nonzero=True)``: the
    background of MRI and CT brains, no-data in satellite tiles); NaN counts as non-zero.
    ``mask`` (a boolean array, or a bool tensor for tensors, of the image's shape or of that
    shape without the channel axis) selects the pixels the statistics come from, and the
    affine then applies to every pixel, selected or not. Both together: statistics over the
    masked non-zero pixels, zeros left at 0. A scope with no selected pixel comes out all 0.

    ``return_params=True`` returns ``(out, params)``: the :class:`AffineParams` applied
    (``y = (x - center) * scale`` per image and channel), which :func:`denormalize` inverts;
    with ``nonzero``, exactly on the non-zero pixels: the zeros come back as ``center`` (set
    them back with the zero mask of the input), an empty scope as NaN.

    >>> import numpy as np
    >>> x = np.full((2, 2, 3), 255, np.uint8)
    >>> normalize(x, mean=0.5, std=0.5)[0, 0].round(6)  # float32: 1 within a rounding
    array([1., 1., 1.], dtype=float32)
    """
    if not isinstance(inplace, bool):
        raise TypeError(f"inplace must be True or False; got {inplace!r}")
    options: dict[str, Any] = {} if dtype is None else {"dtype": dtype}
    if return_params:  # only then: a kernel registered before return_params existed still works
        options["return_params"] = True
    if mask is not None:  # the same: only when given
        options["mask"] = mask
    params = _params(mean, std, max_pixel_value, normalization, percentiles, clip_range, nonzero)
    result = backend_for(image).normalize(image, params, batched=batched, volume=volume, **options)
    if not inplace:
        return result
    if return_params:
        out, affine = result
        return write_into(image, out), affine
    return write_into(image, result)


def write_into(image: ArrayT, out: Any) -> ArrayT:
    """``inplace=True``: ``out`` copied into ``image``, which is returned (the same object, its
    tv_tensor type kept). ``image`` must be a writable NumPy array or torch tensor of ``out``'s
    kind, dtype and shape; a ``ValueError`` says which it is not. The kernels never write into
    their input, so this costs one copy after them (v2 subtracts and divides in place)."""
    kind = "array" if isinstance(out, np.ndarray) else "tensor" if _is_tensor(out) else None
    if kind is None:
        raise ValueError(f"inplace=True is for NumPy arrays and torch tensors; got {_described(image)}")
    fits = (
        isinstance(image, np.ndarray) == (kind == "array")
        and getattr(image, "dtype", None) == out.dtype
        and tuple(getattr(image, "shape", ())) == tuple(out.shape)
        and (kind == "tensor" or image.flags.writeable)
    )
    if not fits:
        raise ValueError(
            f"inplace=True writes the result into the input, which must be a writable {kind} of the "
            f"output dtype ({out.dtype}) and shape {tuple(out.shape)}; got {_described(image)}. Pass "
            "inplace=False, or leave dtype=None for a float tensor (it keeps its dtype)"
        )
    if kind == "array":
        np.copyto(image, out)
    else:
        import torch  # already imported: a tensor came out

        # through plain views: a tv_tensor's own copy_ would hand back a plain tensor
        image.as_subclass(torch.Tensor).copy_(out.as_subclass(torch.Tensor))
    return image


def _is_tensor(value: Any) -> bool:
    """A torch tensor, without importing torch (the NumPy-only install has none)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _described(image: Any) -> str:
    if isinstance(image, np.ndarray):
        return f"a {image.dtype}{'' if image.flags.writeable else ' read-only'} array of shape {image.shape}"
    if hasattr(image, "dtype") and hasattr(image, "shape"):
        return f"a {image.dtype} tensor of shape {tuple(image.shape)}"
    return f"a {type(image).__module__}.{type(image).__qualname__}"


def denormalize(
    image: ArrayT,
    mean: float | Sequence[float] = IMAGENET_MEAN,
    std: float | Sequence[float] = IMAGENET_STD,
    max_pixel_value: float | None = 255.0,
    *,
    params: AffineParams | None = None,
    batched: bool = False,
    volume: bool = False,
    dtype: Any = None,
) -> ArrayT:
    """Invert :func:`normalize`: ``x = y / scale + center``, back in the original units.

    Either the standard mode's ``mean``, ``std`` and ``max_pixel_value`` (folded as
    ``normalize`` folds them; ``max_pixel_value=None`` takes the *output* dtype's full scale,
    255 for uint8 and 1.0 for floats), or ``params``, the :class:`AffineParams` that
    ``normalize(..., return_params=True)`` returned, which inverts every mode exactly (not
    both). Pixels that the mode clipped (±20, or [0, 1]) cannot be recovered.

    ``dtype``: float in the original units (NumPy: float32 by default, or float16 / float64,
    computed in float64; Torch: float32 by default, float16, bfloat16 or float64, computed in
    float32, or float64 for float64), or an integer dtype (``uint8`` / ``uint16`` for display,
    ``int16`` / ``int32`` for signed data): rounded (half to even) and clipped to the dtype's
    range, NaN as 0. Layouts as for ``normalize``
    (``batched`` / ``volume`` say where NumPy's channel axis is, for ``mean`` / ``std``).

    >>> import numpy as np
    >>> x = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    >>> bool((denormalize(normalize(x), dtype=np.uint8) == x).all())
    True
    >>> y, params = normalize(x, normalization="image", return_params=True)
    >>> bool((denormalize(y, params=params, dtype=np.uint8) == x).all())
    True
    """
    options = {} if dtype is None else {"dtype": dtype}
    if params is None:
        recipe: NormalizeParams | AffineParams = _params(
            mean, std, max_pixel_value, "standard", DEFAULT_PERCENTILES
        )
    elif not isinstance(params, AffineParams):
        raise TypeError(
            "params must be the AffineParams that normalize(..., return_params=True) returned; "
            f"got {type(params).__name__}"
        )
    elif _equals(mean, IMAGENET_MEAN) and _equals(std, IMAGENET_STD) and _equals(max_pixel_value, 255.0):
        recipe = params
    else:
        raise ValueError(
            "pass either params (from normalize(..., return_params=True)) or mean / std / "
            "max_pixel_value, not both: params already hold the center and scale applied"
        )
    backend = backend_for(image, action="denormalize")
    return backend.denormalize(image, recipe, batched=batched, volume=volume, **options)


def kernel_route(image: Any, normalization: NormalizationName = "standard") -> str:
    """Which kernels ``normalize(image, normalization=...)`` runs, by name:

    - ``"c"``: NumPy arrays and CPU tensors, on the compiled C kernels (with OpenCV);
    - ``"numpy"``: the same on the NumPy/OpenCV fallback (the C extension was not built);
    - ``"triton"``: CUDA tensors, on the Triton kernels;
    - ``"torch"``: CUDA tensors on Torch ops, where Triton does not import (Windows, a build
      without it) or for the percentiles of float64, float16 and bfloat16 images (a sort on
      the device);
      ``norm_transforms.backends.torch.triton_unavailable_reason()`` says why;
    - ``"registered"``: a kernel given to :func:`register_kernel`.

    >>> import numpy as np
    >>> kernel_route(np.zeros((4, 4, 3), np.uint8)) in ("c", "numpy")
    True
    """
    params = _params(IMAGENET_MEAN, IMAGENET_STD, 255.0, normalization, DEFAULT_PERCENTILES)
    return backend_for(image).route(image, params)


@functools.lru_cache(maxsize=256, typed=True)
def _cached_params(element_types: tuple[Any, ...], *arguments: Any) -> NormalizeParams:
    return NormalizeParams.build(*arguments)


def _params(
    mean: Any,
    std: Any,
    max_pixel_value: Any,
    normalization: Any,
    percentiles: Any,
    clip_range: Any = None,
    nonzero: Any = False,
) -> NormalizeParams:
    """Validated arguments; hashable ones (tuples, numbers) are validated once and cached.

    ``True == 1`` and both hash alike, so a cache keyed on values would hand a refused
    ``max_pixel_value=True`` the entry of an accepted ``1``: the key holds the type of each
    argument (``typed=True``) and of each value in the tuples. That costs ~0.9 µs per call
    (measured against a value-only key; a normalize() call at 224² takes ~20 µs).
    """
    element_types = (_types_in(mean), _types_in(std), _types_in(percentiles), _types_in(clip_range))
    arguments = (mean, std, max_pixel_value, normalization, percentiles, clip_range, nonzero)
    try:
        return _cached_params(element_types, *arguments)
    except TypeError:  # unhashable (a list, an array): validate on every call
        return NormalizeParams.build(*arguments)


def _types_in(value: Any) -> tuple[type, ...] | None:
    return tuple(map(type, value)) if type(value) is tuple else None


def _equals(value: Any, default: Any) -> bool:
    """True when ``value`` is the default by value (a list or an array of the same numbers
    too): only arguments that say something else conflict with ``params``."""
    if isinstance(value, bool):
        return False
    try:
        return bool(np.array_equal(np.asarray(value, dtype=np.float64), np.asarray(default)))
    except (TypeError, ValueError):
        return False
