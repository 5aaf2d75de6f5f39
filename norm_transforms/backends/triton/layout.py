"""How the Triton kernels see a tensor: a ``(samples, channels, pixels)`` view and the tiles
that cover it, worked out once per shape and strides (``planes``, cached), so that a call
spends no host time on it."""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch

from ..torch.layout import output_strides
from .kernels import INTERPRETED

# Lanes per program (a power of two). The reference kernel of the issue (one program per 4096
# pixels of a plane, four warps) reached 63-69 % of a same-size device copy on an H200. In
# Triton's interpreter (the tests, on CPU), whose cost is per program (~5 ms) more than per
# element, tiles are small, so that test images of a few hundred pixels span several tiles and
# every path of the split reductions runs.
BLOCK_ELEMENTS = 256 if INTERPRETED else 4096
# Interleaved layouts with more channels than this take one channel per tile instead.
MAX_INTERLEAVED_CHANNELS = 16
# The pixels of an interleaved tile are a multiple of this, so that every tile of a dense one
# starts 16 elements (16 bytes of uint8) apart from an aligned start: the compiler then proves
# 16-byte alignment and loads and stores whole vectors (``ld.global.v4``; sm_90 PTX).
TILE_ALIGNMENT = 16


class Planes(NamedTuple):
    """An image of some shape and strides as ``(samples, channels, pixels)`` and the tiling of
    the kernels: ``tile_channels`` channels (1, or every channel of an interleaved layout) of
    ``block_p`` pixels per program, on ``block`` lanes (a power of two, at least
    ``tile_channels * block_p``), ``blocks`` pixel blocks per channel group, ``channel_groups``
    groups per sample. ``strides`` are the ``(sample, channel, pixel)`` strides of what the
    kernels read: the image itself, or its copy in the output's layout where ``copied`` (its
    spatial axes do not merge); ``out_strides`` those of the output, which ``output`` allocates with the full
    ``out_layout`` strides. ``dense``: an interleaved tile is one run of memory in the input and
    in the output (channel stride 1, pixel stride ``channels``), which the kernels address as
    such, so that the compiler sees it and loads whole vectors."""

    samples: int
    channels: int
    pixels: int
    strides: tuple[int, int, int]
    copied: bool
    out_layout: tuple[int, ...]
    out_strides: tuple[int, int, int]
    blocks: int
    # The constexprs of the tiling, which every kernel that reads the image takes (``TILE_C``,
    # ``BLOCK_P``, ``BLOCK``, ``DENSE``, ``LARGE``): built once here, not per call (host time),
    # and the only record of them (the properties below read it).
    tiling: dict[str, int | bool]

    @property
    def programs(self) -> int:
        return self.samples * self.channel_groups * self.blocks

    @property
    def channel_groups(self) -> int:
        """Tiles across a sample's channels: one per channel (planar), or one (interleaved)."""
        return self.channels // self.tile_channels

    @property
    def rows(self) -> int:
        return self.samples * self.channels

    @property
    def tile_channels(self) -> int:
        return self.tiling["TILE_C"]

    @property
    def block_p(self) -> int:
        return self.tiling["BLOCK_P"]

    @property
    def block(self) -> int:
        return self.tiling["BLOCK"]

    @property
    def dense(self) -> bool:
        return bool(self.tiling["DENSE"])

    @property
    def large(self) -> bool:
        """An offset or flat lane index of the input or the output reaches 2**31: int64 tiles."""
        return bool(self.tiling["LARGE"])


def planes(image: torch.Tensor) -> tuple[torch.Tensor, Planes]:
    """What the kernels read for an ``(H, W)`` or ``(..., C, H, W)`` tensor (the tensor itself
    where its spatial axes merge, as in contiguous and channels_last memory; a copy of a
    cropped or subsampled view, in the output's layout, so that a crop of channels_last memory
    is read and written in whole pixels), and its :class:`Planes`."""
    geometry = _planes(image.shape, image.stride())
    if not geometry.copied:
        return image, geometry
    copy = torch.empty_strided(image.shape, geometry.out_layout, dtype=image.dtype, device=image.device)
    return copy.copy_(image), geometry


class Selection(NamedTuple):
    """Which pixels the statistics kernels count: ``nonzero`` (the non-zero ones), and a
    ``mask`` as uint8 (0 or 1) with its ``(sample, channel, pixel)`` strides, or None."""

    nonzero: bool
    mask: torch.Tensor | None
    strides: tuple[int, int, int]

    @property
    def any(self) -> bool:
        """Whether the statistics read selected pixels only (a scope may then have none)."""
        return self.nonzero or self.mask is not None


def selection(nonzero: bool, mask: torch.Tensor | None, geometry: Planes) -> Selection:
    """The :class:`Selection` of a call: ``mask`` (a bool tensor of the image's shape, maybe
    expanded over its channels) viewed as ``(samples, channels, pixels)`` bytes, copied where
    its axes do not merge or its offsets would need int64 where the image's do not (a view
    of a larger mask)."""
    if mask is None:
        return _WITHOUT_MASK[nonzero]
    three = (geometry.samples, geometry.channels, geometry.pixels)
    flat = mask.view(torch.uint8).reshape(three)  # a view where the axes merge, else a copy
    if _last_offset(flat) >= 2**31 and not geometry.large:
        flat = flat.contiguous()  # no larger than the image: int32 offsets hold it
    return Selection(nonzero, flat, flat.stride())


# Built once, not per call (host time): every pixel, or the non-zero ones.
_WITHOUT_MASK = {nonzero: Selection(nonzero, None, (0, 0, 0)) for nonzero in (False, True)}


def output(image: torch.Tensor, dtype: torch.dtype, geometry: Planes) -> torch.Tensor:
    """A new tensor for the output, with the Torch backend's ``output_strides`` (channels_last
    stays channels_last, the rest is contiguous)."""
    return torch.empty_strided(image.shape, geometry.out_layout, dtype=dtype, device=image.device)


@functools.lru_cache(maxsize=256)
def _planes(shape: torch.Size, stride: tuple[int, ...]) -> Planes:
    """The geometry of every tensor of this shape and these strides, worked out on meta tensors
    (no data): 5-8 µs of views and arithmetic per call before it was cached (host time, which is
    what a single small image costs on a GPU)."""
    height, width = shape[-2:]
    channels = shape[-3] if len(shape) >= 3 else 1
    pixels = height * width
    samples = shape.numel() // (channels * pixels)
    three = (samples, channels, pixels)
    out = torch.empty_strided(shape, output_strides(shape, stride), device="meta")
    out_view = out.view(three)  # contiguous, or interleaved: H and W merge in both
    try:
        view, copied = torch.empty_strided(shape, stride, device="meta").view(three), False
    except RuntimeError:  # the spatial axes do not merge: the kernels read a copy, in the output's layout
        view, copied = out_view, True
    channel_stride, pixel_stride = view.stride()[1:]
    if 1 < channels <= MAX_INTERLEAVED_CHANNELS and channel_stride < pixel_stride:
        # Interleaved (channels_last): whole pixels per tile, every channel at once.
        tile_channels = channels
        block_p = BLOCK_ELEMENTS // channels // TILE_ALIGNMENT * TILE_ALIGNMENT
    else:
        tile_channels, block_p = 1, BLOCK_ELEMENTS
    interleaved_dense = (1, channels)
    dense = tile_channels > 1 and view.stride()[1:] == out_view.stride()[1:] == interleaved_dense
    blocks = -(-pixels // block_p)
    # int64 tiles where an element offset reaches 2**31, or a tile's flat lane index (past the
    # last pixel by up to two tiles) could: every pixel of a sample times its channels per tile.
    last_flat = (pixels + block_p) * tile_channels + BLOCK_ELEMENTS
    large = max(_last_offset(view), _last_offset(out_view), last_flat) >= 2**31
    tiling = {
        "TILE_C": tile_channels, "BLOCK_P": block_p, "BLOCK": BLOCK_ELEMENTS, "DENSE": dense, "LARGE": large,
    }  # fmt: skip
    return Planes(
        samples, channels, pixels, view.stride(), copied, out.stride(), out_view.stride(),
        blocks, tiling,
    )  # fmt: skip


def _last_offset(view: torch.Tensor) -> int:
    """The largest element offset of ``view`` (strides below 2**31 are int32 in the kernels)."""
    return sum((size - 1) * abs(stride) for size, stride in zip(view.shape, view.stride(), strict=True))
