"""Statistics of the Triton route, as data: ``STATISTICS`` maps each statistic that a mode names
(``modes.MODES``) to its statistics kernel and its finalize, per input dtype
(:func:`statistic_for`); :func:`scope_terms` launches them.

The statistics kernel writes partials per (row, pixel block), or adds per-row histograms (of
the values of a uint8 image; of a 16- or 32-bit image, those of the keys' high bytes, then a
kernel per further byte those of each rank's next byte: a radix select); the terms of every
scope are then reduced from
them, with no host sync, either by a finalize kernel (one program per scope, into a float64
``[TERM_FIELDS, scopes]`` table) or, for scopes of few partials, by each program of the affine
itself (one launch less). ``dtypes`` names the input dtypes a statistic's kernels read
(:func:`statistic_for`); the others (float64, float16 and bfloat16 percentiles) take the
Torch-op route (a device-side sort).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch

from ...modes import EPS, NormalizeParams
from ..torch.statistics import WIDE_DTYPES
from . import kernels
from .launch import Launcher
from .layout import Planes, Selection

# Scopes of at most this many partials (one 512x512 plane: 64 tiles of 4096 pixels; or histogram
# rows) are finalized by every program of the affine itself: one launch less per call, whose
# host time alone is ~6 us (benchmarks/bench_triton_host.py), and no finalize kernel running one
# program per scope on an otherwise idle GPU. Beyond, every program would reduce hundreds of
# partials again (a 4K plane has 2025), and a finalize kernel writes each scope's terms once.
# 64 is also the width of the finalize loops (``_scope_terms``): one iteration. Not yet timed on
# a GPU.
FUSED_MAX_PARTIALS = 64
# The same for histograms, whose rows are 256 counts each: the channels of an RGB(A) image.
FUSED_MAX_HISTOGRAM_ROWS = 4
# Histograms of more than one level (16- and 32-bit images) are always finalized by the
# finalize kernel: a scope's 256 high-byte counts and 4-6 rows of 256 counts per further level
# and channel, 15-21 KB per level for an RGB image, would be read by every program of the affine.
# And for the scopes of one tile (an interleaved tile holds every channel, each program then
# finalizes each of them in turn): up to RGBA; 16 channels would re-read 16 scopes' partials
# per 4096 pixel values, in every program.
FUSED_MAX_SCOPES_PER_TILE = 4
# Eight warps for the statistics kernels: 16 values of a 4096-value tile per thread, half the
# registers of four warps for the float64 two-pass moments (not yet timed on a GPU).
STATISTICS_WARPS = 8


class Statistic(NamedTuple):
    """How the Triton route reduces one statistic: its statistics kernel (``reduce``, launched
    by a :class:`launch.Launcher`), which writes ``fields`` float64 partials per (row, pixel
    block), or, when ``fields`` is 0, adds 256-bin histograms per row into a zeroed int64 table;
    the finalize that combines them per scope (``kind``: ``kernels.MOMENTS``, ``EXTREMES``,
    ``HISTOGRAMS``, ``HISTOGRAMS_16`` or ``HISTOGRAMS_32``, whose further levels ``_next_bytes``
    adds; ``robust``: the median and quartiles); and the input dtypes it reads (None: all of
    them)."""

    reduce: Launcher
    kind: int
    fields: int = 0
    robust: bool = False
    dtypes: tuple[torch.dtype, ...] | None = None


class Terms(NamedTuple):
    """What the affine reads for the terms of its scopes: the finalize's ``table``, or, when
    ``fused``, the statistics' ``partials`` (``count`` per scope, fields ``field`` apart), which
    each affine program finalizes itself; the table then receives the terms only when they are
    recorded (``return_params``), and is otherwise any tensor (never read)."""

    table: torch.Tensor
    partials: torch.Tensor
    constants: torch.Tensor
    count: int
    field: int
    fused: bool


def scope_terms(
    statistic: Statistic,
    source: torch.Tensor,
    geometry: Planes,
    params: NormalizeParams,
    scaled: bool,
    record: bool,
    selected: Selection,
) -> Terms:
    """Launch ``statistic``'s kernel over the ``selected`` pixels of ``source``
    (``layout.planes``), then the finalize where the affine would not finalize the scopes
    itself (``_fused``)."""
    device = source.device
    percentiles = (25.0, 75.0) if statistic.robust else params.percentiles
    constants = _constants(percentiles, _KEY_OFFSETS.get(source.dtype, 0.0), device)
    if statistic.fields:
        shape = (statistic.fields, geometry.rows, geometry.blocks)
        partials = torch.empty(shape, dtype=torch.float64, device=device)
        field = geometry.rows * geometry.blocks
    else:
        shape = _histogram_rows(statistic, geometry.rows, _scopes(geometry, params)[0], source.dtype)
        partials = torch.zeros(shape, dtype=torch.int64, device=device)
        field = geometry.rows * kernels.HISTOGRAM_BINS
    reduce_into(partials, statistic, source, geometry, scaled, selected)
    scopes, rows_per_scope = _scopes(geometry, params)
    levels = _LEVELS[statistic.kind]
    for level in range(1, levels):
        _rank_prefixes(
            scopes, (partials, constants), (rows_per_scope, field),
            LEVEL=level - 1, LEVELS=levels, ROBUST=statistic.robust, UNKEYED=source.dtype == torch.float32,
        )  # fmt: skip
        _next_bytes(
            geometry.programs, (source, partials, _read(selected, source)),
            (
                geometry.channels, geometry.pixels, geometry.blocks, field, level, *geometry.strides,
                *selected.strides,
            ),
            ROBUST=statistic.robust, PER_CHANNEL=params.mode.per_channel,
            **_selection_flags(selected), **geometry.tiling,
        )  # fmt: skip
    count = rows_per_scope * (geometry.blocks if statistic.fields else 1)  # partials, or histogram rows
    fused = _fused(statistic, count, geometry.tile_channels if params.mode.per_channel else 1)
    if fused and not record:
        return Terms(partials, partials, constants, count, field, fused=True)
    table = torch.empty((kernels.TERM_FIELDS, scopes), dtype=torch.float64, device=device)
    if not fused:
        _finalize(
            scopes, (partials, table, constants), (count, scopes, field),
            STATISTIC=statistic.kind, SCALED=scaled, WIDE=source.dtype in WIDE_DTYPES,
            ROBUST=statistic.robust, SELECTED=selected.any,
        )  # fmt: skip
    return Terms(table, partials, constants, count, field, fused=fused)


def reduce_into(
    partials: torch.Tensor,
    statistic: Statistic,
    source: torch.Tensor,
    geometry: Planes,
    scaled: bool,
    selected: Selection,
) -> None:
    """Launch ``statistic``'s kernel over the ``selected`` pixels of ``source``: its float64
    ``[fields, rows, blocks]`` partials, or its histograms (of a 16- or 32-bit image: of the
    keys' high bytes) added into the first ``rows`` rows of the int64 ``[..., 256]`` table
    ``partials`` (``_histogram_rows``)."""
    tensors = (source, partials, _read(selected, source))
    strides = (*geometry.strides, *selected.strides)
    if statistic.fields:
        scalars = (geometry.channels, geometry.pixels, geometry.blocks, geometry.rows, *strides)
        statistic.reduce(
            geometry.programs, tensors, scalars,
            SCALED=scaled, **_selection_flags(selected), **geometry.tiling, num_warps=STATISTICS_WARPS,
        )  # fmt: skip
    else:
        scalars = (
            geometry.channels,
            geometry.pixels,
            geometry.blocks,
            _unkeyed_field(statistic, geometry.rows),
        )
        statistic.reduce(
            geometry.programs, tensors, (*scalars, *strides),
            **_selection_flags(selected), **geometry.tiling,
        )  # fmt: skip


def _read(selected: Selection, source: torch.Tensor) -> torch.Tensor:
    """The tensor the kernels take for the mask: the mask, or ``source`` (never read) without."""
    return source if selected.mask is None else selected.mask


def _selection_flags(selected: Selection) -> dict[str, bool]:
    """The constexprs of what the statistics kernels count (``kernels._selected``)."""
    return {"NONZERO": selected.nonzero, "MASKED": selected.mask is not None}


def _fused(statistic: Statistic, count: int, scopes_per_tile: int) -> bool:
    """Whether each affine program finalizes the scopes of its tile itself: ``count`` partials
    (or histogram rows) per scope, ``scopes_per_tile`` scopes (the channels of an interleaved
    tile in a per-channel mode, which each program finalizes in turn)."""
    if _LEVELS[statistic.kind] > 1:
        return False
    limit = FUSED_MAX_HISTOGRAM_ROWS if not statistic.fields else FUSED_MAX_PARTIALS
    return count <= limit and scopes_per_tile <= FUSED_MAX_SCOPES_PER_TILE


def _scopes(geometry: Planes, params: NormalizeParams) -> tuple[int, int]:
    """(scopes, rows per scope): a scope is one channel of a sample in the per-channel modes,
    else a whole sample (its ``channels`` consecutive rows)."""
    if params.mode.per_channel:
        return geometry.rows, 1
    return geometry.samples, geometry.channels


def _rank_slots(statistic: Statistic) -> int:
    """The rank slots of each level of histograms after the first (``kernels._rank_slots``):
    two ranks per percentile interpolated (low and high; and the median when ``robust``)."""
    return 6 if statistic.robust else 4


def _unkeyed_field(statistic: Statistic, rows: int) -> int:
    """Where the counts of a float32 image's NaN pixels start in the histogram table (bin 0 of a
    row each, after every level: ``kernels.histogram_kernel``)."""
    return rows * kernels.HISTOGRAM_BINS * (1 + _rank_slots(statistic) * (_LEVELS[statistic.kind] - 1))


def _histogram_rows(statistic: Statistic, rows: int, scopes: int, dtype: torch.dtype) -> tuple[int, int]:
    """The shape of the int64 histogram table: ``rows`` rows of 256 counts for the first level
    (a row per channel of each sample); for keys of more than one level, ``[rows, slots, 256]``
    per further level, for float32 a row per row for the NaN pixels, then the ``scopes``' rank
    states (``kernels.rank_prefix_kernel``: 32 counts each)."""
    levels = _LEVELS[statistic.kind]
    if levels == 1:
        return rows, kernels.HISTOGRAM_BINS
    unkeyed = rows if dtype == torch.float32 else 0
    states = -(-scopes * kernels.RANK_STATE_COUNTS // kernels.HISTOGRAM_BINS)
    return rows * (1 + _rank_slots(statistic) * (levels - 1)) + unkeyed + states, kernels.HISTOGRAM_BINS


@functools.lru_cache(maxsize=64)
def _constants(percentiles: tuple[float, float], key_offset: float, device: torch.device) -> torch.Tensor:
    """float64 ``[eps, low, middle, high, key offset]`` (the percentiles as fractions; what a
    histogram's key adds to the value: 32768 for int16) on ``device``, cached: Triton passes
    Python floats as float32, and copying them to a GPU waits for the host once, not on every
    call."""
    low, high = percentiles
    values = [EPS, low / 100.0, 0.5, high / 100.0, key_offset]
    return torch.tensor(values, dtype=torch.float64, device=device)


def statistic_for(name: str, dtype: torch.dtype) -> Statistic | None:
    """The kernels that reduce statistic ``name`` (``Mode.statistic``) of a ``dtype`` image, or
    None where none reads that dtype (the Torch-op route)."""
    for statistic in STATISTICS[name]:
        if statistic.dtypes is None or dtype in statistic.dtypes:
            return statistic
    return None


_finalize = Launcher(kernels.finalize_kernel)
_histograms = Launcher(kernels.histogram_kernel)
_next_bytes = Launcher(kernels.next_byte_histogram_kernel)
_rank_prefixes = Launcher(kernels.rank_prefix_kernel)
_SIXTEEN_BITS = (torch.uint16, torch.int16)
_THIRTY_TWO_BITS = (torch.int32, torch.float32)
# The levels of byte histograms of each kind of statistic's keys (none for the moments and the
# extremes).
_LEVELS = {
    kernels.MOMENTS: 0,
    kernels.EXTREMES: 0,
    kernels.HISTOGRAMS: 1,
    kernels.HISTOGRAMS_16: 2,
    kernels.HISTOGRAMS_32: 4,
}
# What a histogram key adds to an integer value (``kernels._histogram_key``).
_KEY_OFFSETS = {torch.int16: 32768.0, torch.int32: 2147483648.0}

#: Statistic name (``Mode.statistic``) -> its kernels, per input dtype (:func:`statistic_for`);
#: percentiles of float64, float16 and bfloat16 take the Torch-op route (a sort on the device).
STATISTICS: dict[str, tuple[Statistic, ...]] = {
    "mean_std": (Statistic(Launcher(kernels.moments_kernel), kernels.MOMENTS, kernels.MOMENT_FIELDS),),
    "min_max": (Statistic(Launcher(kernels.extremes_kernel), kernels.EXTREMES, kernels.EXTREME_FIELDS),),
    "percentile": (
        Statistic(_histograms, kernels.HISTOGRAMS, dtypes=(torch.uint8,)),
        Statistic(_histograms, kernels.HISTOGRAMS_16, dtypes=_SIXTEEN_BITS),
        Statistic(_histograms, kernels.HISTOGRAMS_32, dtypes=_THIRTY_TWO_BITS),
    ),
    "robust": (
        Statistic(_histograms, kernels.HISTOGRAMS, robust=True, dtypes=(torch.uint8,)),
        Statistic(_histograms, kernels.HISTOGRAMS_16, robust=True, dtypes=_SIXTEEN_BITS),
        Statistic(_histograms, kernels.HISTOGRAMS_32, robust=True, dtypes=_THIRTY_TWO_BITS),
    ),
}
