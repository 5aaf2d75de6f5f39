"""Statistics of the Triton route, as data: ``STATISTICS`` maps each statistic that a mode names
(``modes.MODES``) to the launches that reduce it and write the terms of every scope.

Each entry gives ``terms(source, geometry, params, scaled)``: a float64 ``[6, scopes]`` tensor (the
layout of ``kernels.TERM_FIELDS``) on the image's device, computed with no host sync. ``dtypes``
names the input dtypes it reads; the others take the Torch-op route (a device-side sort).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from ...modes import EPS, NormalizeParams
from ..torch.statistics import WIDE_DTYPES
from . import kernels
from .layout import Planes

# Partials per iteration of the finalize loops (a 224² plane has 13, a 4K one 2025).
FINALIZE_BLOCK = 256
# Eight warps for the statistics kernels: 16 values of a 4096-value tile per thread, half the
# registers of four warps for the float64 two-pass moments (not yet timed on a GPU).
STATISTICS_WARPS = 8


class Statistic(NamedTuple):
    """How the Triton route reduces one statistic: ``terms(source, geometry, params, scaled)``
    (``source`` and ``geometry`` from ``layout.planes``), and
    the input dtypes it reads (None: all of them)."""

    terms: Callable[[torch.Tensor, Planes, NormalizeParams, bool], torch.Tensor]
    dtypes: tuple[torch.dtype, ...] | None = None


def _scopes(geometry: Planes, params: NormalizeParams) -> tuple[int, int]:
    """(scopes, rows per scope): a scope is one channel of a sample in the per-channel modes,
    else a whole sample (its ``channels`` consecutive rows)."""
    if params.mode.per_channel:
        return geometry.rows, 1
    return geometry.samples, geometry.channels


def _split_reduction(
    reduce: Any, finalize: Any, fields: int
) -> Callable[[torch.Tensor, Planes, NormalizeParams, bool], torch.Tensor]:
    """A statistic reduced as partials per (row, pixel block), then combined per scope."""

    def terms(source: torch.Tensor, geometry: Planes, params: NormalizeParams, scaled: bool) -> torch.Tensor:
        partials = torch.empty(
            (fields, geometry.rows, geometry.blocks), dtype=torch.float64, device=source.device
        )
        reduce[(geometry.programs,)](
            source, partials, geometry.channels, geometry.pixels, geometry.blocks,
            geometry.channel_groups, geometry.rows, *geometry.strides,
            SCALED=scaled, BLOCK_C=geometry.block_c, BLOCK_P=geometry.block_p, LARGE=geometry.large,
            num_warps=STATISTICS_WARPS,
        )  # fmt: skip
        scopes, rows_per_scope = _scopes(geometry, params)
        out = torch.empty((kernels.TERM_FIELDS, scopes), dtype=torch.float64, device=source.device)
        finalize[(scopes,)](
            partials, out, _constants(params.percentiles, source.device),
            rows_per_scope * geometry.blocks, scopes, geometry.rows * geometry.blocks,
            WIDE=source.dtype in WIDE_DTYPES, BLOCK=FINALIZE_BLOCK,
        )  # fmt: skip
        return out

    return terms


def _histogram_terms(robust: bool) -> Callable[[torch.Tensor, Planes, NormalizeParams, bool], torch.Tensor]:
    """uint8 percentiles, exact, from per-row histograms summed per scope."""

    def terms(source: torch.Tensor, geometry: Planes, params: NormalizeParams, scaled: bool) -> torch.Tensor:
        histograms = torch.zeros(
            (geometry.rows, kernels.HISTOGRAM_BINS), dtype=torch.int32, device=source.device
        )
        kernels.histogram_kernel[(geometry.programs,)](
            source, histograms, geometry.channels, geometry.pixels, geometry.blocks,
            geometry.channel_groups, *geometry.strides,
            BLOCK_C=geometry.block_c, BLOCK_P=geometry.block_p, LARGE=geometry.large,
        )  # fmt: skip
        scopes, rows_per_scope = _scopes(geometry, params)
        out = torch.empty((kernels.TERM_FIELDS, scopes), dtype=torch.float64, device=source.device)
        percentiles = (25.0, 75.0) if robust else params.percentiles
        kernels.histogram_terms_kernel[(scopes,)](
            histograms, out, _constants(percentiles, source.device), rows_per_scope, scopes, ROBUST=robust
        )
        return out

    return terms


@functools.lru_cache(maxsize=64)
def _constants(percentiles: tuple[float, float], device: torch.device) -> torch.Tensor:
    """float64 ``[eps, low, middle, high]`` (the percentiles as fractions) on ``device``, cached:
    Triton passes Python floats as float32, and copying them to a GPU waits for the host once,
    not on every call."""
    low, high = percentiles
    values = [EPS, low / 100.0, 0.5, high / 100.0]
    return torch.tensor(values, dtype=torch.float64, device=device)


#: Statistic name (``Mode.statistic``) -> its launches; percentiles of other dtypes than uint8
#: take the Torch-op route (a sort on the device).
STATISTICS: dict[str, Statistic] = {
    "mean_std": Statistic(
        _split_reduction(kernels.moments_kernel, kernels.moments_terms_kernel, kernels.MOMENT_FIELDS)
    ),
    "min_max": Statistic(
        _split_reduction(kernels.extremes_kernel, kernels.extremes_terms_kernel, kernels.EXTREME_FIELDS)
    ),
    "percentile": Statistic(_histogram_terms(robust=False), dtypes=(torch.uint8,)),
    "robust": Statistic(_histogram_terms(robust=True), dtypes=(torch.uint8,)),
}
