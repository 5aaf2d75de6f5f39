"""What the NumPy backend reads: the dtypes (from the dtype table), the layouts (HW, HWC,
batches, volumes, all seen as ``(samples, rows, row_length)``), and the checks that refuse
the rest with a message."""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import numpy as np

from ...dtypes import NUMPY_DTYPES, PIXEL_TYPES, accepted_names

SUPPORTED_DTYPES = NUMPY_DTYPES


# What denormalize reads (normalized images) and writes (any dtype normalize reads).
NORMALIZED_DTYPES = tuple(dtype for dtype in NUMPY_DTYPES if PIXEL_TYPES[dtype.name].is_float)


class Layout(NamedTuple):
    """How an array splits into samples and channels."""

    samples: int
    rows: int
    row_length: int
    channels: int


def describe_layout(shape: tuple[int, ...], *, batched: bool, volume: bool) -> Layout:
    """Split ``shape`` into samples, rows and interleaved channels, or explain what is accepted."""
    batch_axes = 1 if batched else 0
    spatial_axes = 3 if volume else 2
    names = ("N," if batched else "") + ("D,H,W" if volume else "H,W")
    if len(shape) not in (batch_axes + spatial_axes, batch_axes + spatial_axes + 1):
        raise ValueError(
            f"expected an array of shape ({names}) or ({names},C) for "
            f"batched={batched}, volume={volume}; got shape {shape}"
        )
    channels = shape[-1] if len(shape) == batch_axes + spatial_axes + 1 else 1
    samples = shape[0] if batched else 1
    width = shape[batch_axes + spatial_axes - 1]
    rows = math.prod(shape[batch_axes : batch_axes + spatial_axes - 1])
    return Layout(samples, rows, width * channels, channels)


def _as_dtype(dtype: Any) -> np.dtype | None:
    """``np.dtype(dtype)``, or None for what NumPy does not read as a dtype (the caller's
    message then says what is accepted, instead of NumPy's)."""
    try:
        return np.dtype(dtype)
    except (TypeError, ValueError):
        return None


def check_image(image: np.ndarray) -> None:
    """Refuse what no kernel handles, with a message that says what is accepted."""
    if image.dtype not in SUPPORTED_DTYPES:
        accepted = accepted_names(numpy=True)
        raise TypeError(f"image dtype {image.dtype} is not supported; accepted: {accepted}")
    if image.size == 0:
        raise ValueError(f"image is empty (shape {image.shape}); nothing to normalize")


def value_range(image: np.ndarray) -> tuple[float, float]:
    """The smallest and largest pixel value, NaN skipped (NaN, NaN when there are none): what
    the transforms read on their first call to check ``max_pixel_value``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN image
        return float(np.nanmin(image)), float(np.nanmax(image))


def terms_shape(shape: tuple[int, ...], *, batched: bool, volume: bool, samples: int) -> tuple[int, ...]:
    """The shape of per-scope terms that broadcast against an image of ``shape``: 1 on the
    spatial axes, ``samples`` on the batch axis, and the channel axis (if any) left as -1."""
    terms = [1] * len(shape)
    if batched:
        terms[0] = samples
    if len(shape) == int(batched) + (3 if volume else 2) + 1:
        terms[-1] = -1
    return tuple(terms)


def check_mask(mask: Any, shape: tuple[int, ...], *, batched: bool, volume: bool) -> np.ndarray:
    """``mask`` as a boolean array of the image's ``shape``: the mask itself, or a mask without
    the channel axis repeated on it (every channel of a pixel selected alike; ``np.repeat``
    writes the interleaved copy in a third of the time of copying a broadcast view). Anything
    else is refused, saying what was received and what is accepted."""
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
        got = f"an array of dtype {mask.dtype}" if isinstance(mask, np.ndarray) else type(mask).__name__
        raise TypeError(
            f"mask must be a boolean NumPy array, True where a pixel counts in the statistics; got "
            f"{got} (for a label map or an integer mask pass mask != 0)"
        )
    layout = describe_layout(shape, batched=batched, volume=volume)
    has_channel_axis = len(shape) == int(batched) + (3 if volume else 2) + 1
    if mask.shape == shape:
        return mask
    if has_channel_axis and mask.shape == shape[:-1]:
        return np.repeat(mask, shape[-1], axis=-1).reshape(shape)
    accepted = f"{shape[:-1]} (every channel alike) or {shape}" if has_channel_axis else f"{shape}"
    raise ValueError(
        f"mask has shape {mask.shape}, but the image has shape {shape} ({layout.samples} sample(s), "
        f"{layout.channels} channel(s)); the mask must have shape {accepted}"
    )
