"""How the Triton kernels see a tensor: a ``(samples, channels, pixels)`` view and the tiles
that cover it."""

from __future__ import annotations

from typing import NamedTuple

import torch

from .kernels import INTERPRETED

# Elements per program. The reference kernel of the issue (one program per 4096 pixels of a
# plane, four warps) reached 63-69 % of a same-size device copy on an H200. In Triton's
# interpreter (the tests, on CPU), whose cost is per program (~5 ms) more than per element,
# tiles are small, so that test images of a few hundred pixels span several tiles and every
# path of the split reductions runs.
BLOCK_ELEMENTS = 256 if INTERPRETED else 4096
# Interleaved layouts with more channels than this take one channel per tile instead.
MAX_INTERLEAVED_CHANNELS = 16


class Planes(NamedTuple):
    """``image`` as ``(samples, channels, pixels)`` (``view``), and the tiling of the kernels:
    ``block_c`` channels by ``block_p`` pixels per program, ``blocks`` pixel blocks per
    channel group, ``channel_groups`` groups per sample."""

    view: torch.Tensor
    samples: int
    channels: int
    pixels: int
    block_c: int
    block_p: int
    blocks: int
    channel_groups: int
    large: bool  # an element offset of the view or of the output reaches 2**31: int64 tiles

    @property
    def programs(self) -> int:
        return self.samples * self.channel_groups * self.blocks

    @property
    def rows(self) -> int:
        return self.samples * self.channels


def planes(image: torch.Tensor) -> Planes:
    """The ``(samples, channels, pixels)`` view of an ``(H, W)`` or ``(..., C, H, W)`` tensor:
    free for contiguous and channels_last memory (the spatial axes merge); other strides (a
    cropped or subsampled view) are copied first."""
    height, width = image.shape[-2:]
    channels = image.shape[-3] if image.ndim >= 3 else 1
    samples = image.numel() // (channels * height * width)
    shape = (samples, channels, height * width)
    try:
        view = image.view(shape)
    except RuntimeError:  # the spatial axes do not merge: one copy
        view = image.contiguous().view(shape)
    return _tiled(view, samples, channels, height * width)


def _tiled(view: torch.Tensor, samples: int, channels: int, pixels: int) -> Planes:
    channel_stride, pixel_stride = view.stride()[1:]
    if 1 < channels <= MAX_INTERLEAVED_CHANNELS and channel_stride < pixel_stride:
        # Interleaved (channels_last): whole pixels per tile, every channel at once.
        block_c = 1 << (channels - 1).bit_length()
        channel_groups = 1
    else:
        block_c, channel_groups = 1, channels
    block_p = BLOCK_ELEMENTS // block_c
    blocks = -(-pixels // block_p)
    return Planes(view, samples, channels, pixels, block_c, block_p, blocks, channel_groups, _large(view))


def _large(view: torch.Tensor) -> bool:
    """Whether the kernels need int64 offsets for ``view`` and for its output (dense: offsets
    up to numel - 1); int32 ones everywhere else, as Triton passes strides below 2**31."""
    span = sum((size - 1) * abs(stride) for size, stride in zip(view.shape, view.stride(), strict=True))
    return max(span, view.numel() - 1) >= 2**31


def output(image: torch.Tensor, dtype: torch.dtype, geometry: Planes) -> tuple[torch.Tensor, torch.Tensor]:
    """A new tensor for the output, with the input's memory format where the kernels can write
    it (channels_last stays channels_last), and its ``(samples, channels, pixels)`` view."""
    out = torch.empty_like(image, dtype=dtype)
    try:
        return out, out.view(geometry.view.shape)
    except RuntimeError:  # a permutation whose spatial axes do not merge: written contiguous
        out = torch.empty(image.shape, dtype=dtype, device=image.device)
        return out, out.view(geometry.view.shape)
