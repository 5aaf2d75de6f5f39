"""What the Torch backend reads and writes: dtypes (from the dtype table), layouts (``(H, W)`` or
``(..., C, H, W)``), the checks that refuse the rest, and the shape of the terms it returns."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from ...dtypes import PIXEL_TYPES, accepted_names
from ...modes import AffineParams, Mode, NormalizeParams

SUPPORTED_DTYPES = tuple(getattr(torch, name) for name in PIXEL_TYPES)


OUTPUT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


# What denormalize reads (normalized images); it writes any dtype that normalize reads.
NORMALIZED_DTYPES = tuple(getattr(torch, name) for name, pixel in PIXEL_TYPES.items() if pixel.is_float)


# For max_pixel_value=None and the float64 folding: the NumPy dtype with the same full scale
# (float32 for bfloat16, which NumPy lacks).
_NUMPY_EQUIVALENT = {
    getattr(torch, name): np.dtype(name if pixel.numpy else "float32") for name, pixel in PIXEL_TYPES.items()
}


def check_call(image: torch.Tensor, volume: bool, dtype: torch.dtype | None) -> torch.dtype:
    """The checks of every tensor ``normalize``: the input, the layout flags and the output
    dtype, which it returns: for None, a float input's own dtype and float32 for integers (as
    ``v2.Normalize`` keeps a float input's dtype); always computed in float32."""
    if volume:
        raise ValueError("volume=True is not supported for tensors; pass (..., C, H, W) frames as samples")
    if dtype is None:
        dtype = image.dtype if image.is_floating_point() else torch.float32
    check_image(image)
    check_output_dtype(dtype)
    return dtype


# What ``dtype=None`` means (check_call's rule) for each dtype that a CPU tensor's NumPy view
# can have; a dtype missing here is not supported.
_DEFAULT_OUTPUT = {
    np.dtype(name): getattr(torch, name) if pixel.is_float else torch.float32
    for name, pixel in PIXEL_TYPES.items()
    if pixel.numpy
}


def check_view_call(
    array: np.ndarray, image: torch.Tensor, volume: bool, dtype: torch.dtype | None
) -> torch.dtype:
    """:func:`check_call` read from ``array``, the NumPy view of the CPU tensor ``image`` (which
    ``image.numpy()`` only gives for a dense tensor that does not require grad), without a
    Torch call: after a kernel pass that swept the caches (512x512x3 float32) each cost 5-8 µs
    (``numel()``, ``is_floating_point()``, ``layout``), NumPy's attributes ~1. Whatever it would
    not pass goes to check_call, which raises its message."""
    default = _DEFAULT_OUTPUT.get(array.dtype)
    if volume or default is None or array.ndim < 2 or array.size == 0:
        return check_call(image, volume, dtype)
    dtype = default if dtype is None else dtype
    check_output_dtype(dtype)
    return dtype


def check_output_dtype(dtype: torch.dtype) -> None:
    """Refuse an output dtype the kernels do not write (kernels and adapters share this check)."""
    if dtype not in OUTPUT_DTYPES:
        accepted = ", ".join(str(d).removeprefix("torch.") for d in OUTPUT_DTYPES)
        raise TypeError(f"output dtype must be one of {accepted}; got {dtype!r}")


def check_image(image: torch.Tensor) -> None:
    """Refuse what the kernels do not handle, saying what is accepted."""
    if image.dtype not in SUPPORTED_DTYPES:
        accepted = accepted_names(numpy=False)
        raise TypeError(f"image dtype {image.dtype} is not supported; accepted: {accepted}")
    check_layout(image, "normalize")
    if image.requires_grad:
        # The kernels write into fresh buffers (out=, NumPy views), which autograd cannot follow.
        raise ValueError(
            "normalize does not record gradients, and image requires grad; pass image.detach(), "
            "or use NormalizeLayer, which is differentiable"
        )


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


def channel_count(image: torch.Tensor) -> int:
    return image.shape[-3] if image.ndim >= 3 else 1


@functools.lru_cache(maxsize=256)
def output_strides(shape: torch.Size, stride: tuple[int, ...]) -> tuple[int, ...]:
    """The strides of what ``normalize`` returns for an image of this shape and these strides,
    the same on every route (cached: host time per call is what a small image costs on a GPU):

    - a batch (``(N, C, H, W)``, or more leading axes) whose channels are interleaved in memory
      (channels_last, or a crop or a step of it: the channel stride below those of H and W) gives
      interleaved memory, ``(..., H, W, C)`` in order: channels_last for ``(N, C, H, W)``, where a
      model in channels_last reads it without a conversion;
    - anything else gives a contiguous tensor, single ``(C, H, W)`` images in HWC memory included:
      they are collated next, and stacking them from HWC memory is a strided copy of the float
      output (``torch.empty_like`` would keep HWC).
    """
    if interleaves_channels(shape, stride):
        *samples, channels, height, width = shape
        samples_strides = _contiguous_strides((*samples, height * width * channels))[:-1]
        return (*samples_strides, 1, width * channels, channels)
    return _contiguous_strides(tuple(shape))


def interleaves_channels(shape: torch.Size, stride: tuple[int, ...]) -> bool:
    """A batch (four axes or more) of several channels whose pixels are more than one and keep
    their channels closer in memory than neighbouring pixels: ``output_strides`` interleaved.
    Channels broadcast from one (stride 0, a gray batch expanded to RGB) are not interleaved."""
    if len(shape) < 4 or shape[-3] == 1 or stride[-3] == 0:
        return False
    pixel_strides = [step for size, step in zip(shape[-2:], stride[-2:], strict=True) if size > 1]
    return bool(pixel_strides) and stride[-3] < min(pixel_strides)


def _contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(math.prod(shape[axis + 1 :]) for axis in range(len(shape)))


def numpy_dtype(dtype: torch.dtype) -> np.dtype:
    """The NumPy dtype with the same full scale (``max_pixel_value=None``), float32 for bfloat16."""
    return _NUMPY_EQUIVALENT[dtype]


def terms_shape(image: torch.Tensor, mode: Mode) -> tuple[int, ...]:
    """The shape of the per-scope terms of ``image``: ``(..., C or 1, 1, 1)``, ``(1, 1)`` for HW;
    the standard mode's constants have no sample axes."""
    if image.ndim == 2:
        return (1, 1)
    samples = tuple(image.shape[:-3]) if mode.statistic else ()
    return (*samples, image.shape[-3] if mode.per_channel else 1, 1, 1)


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


def check_mask(mask: object, image: torch.Tensor) -> torch.Tensor:
    """``mask`` as a bool tensor of ``image``'s shape on its device: the mask itself (moved
    there if it lives elsewhere), or an expanded view of a mask without the channel axis
    (``(..., H, W)`` for ``(..., C, H, W)``: every channel of a pixel selected alike). Anything
    else is refused, saying what was received and what is accepted."""
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = f"a tensor of dtype {mask.dtype}" if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise TypeError(
            f"mask must be a bool tensor, True where a pixel counts in the statistics; got {got} "
            "(for a label map pass mask != 0; for a NumPy mask, torch.from_numpy(mask))"
        )
    shape = tuple(image.shape)
    without_channels = shape[:-3] + shape[-2:] if image.ndim >= 3 else None
    if tuple(mask.shape) not in (shape, without_channels):
        accepted = f"{without_channels} (every channel alike) or {shape}" if without_channels else f"{shape}"
        raise ValueError(
            f"mask has shape {tuple(mask.shape)}, but the image has shape {shape}; the mask must have "
            f"shape {accepted}"
        )
    mask = mask.to(image.device)
    return mask if tuple(mask.shape) == shape else mask.unsqueeze(-3).expand(shape)
