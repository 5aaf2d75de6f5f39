"""Statistics of the Torch-op route, as data: ``STATISTICS`` maps each statistic that a mode
names (``modes.MODES``) to a function that reduces it over every sample at once (keepdim) and
centers the working copy, scale-safe (``_prescaled``) and with no host sync."""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import torch

from ...modes import NormalizeParams

# Float dtypes whose values may overflow or underflow float32 statistics (see _prescaled).
_SCALABLE_DTYPES = (torch.float32, torch.float64, torch.bfloat16)
# Dtypes whose values float32 does not hold exactly (beyond its 24-bit significand): their working
# copy is float64, as float64 images' is.
WIDE_DTYPES = (torch.float64, torch.int32)


class Centered(NamedTuple):
    """A statistic's terms for the working copy of the image (the working dtype: float32, or
    float64 for float64 input; each scope prescaled): float64 ``center`` and ``spread`` (the
    mode maps ``x`` to ``(x - center) / (spread + eps)``), and the centered values
    ``shifted = work - center_high`` (the buffer the affine then runs on) with what is left of
    the center, ``center_low = center - center_high``, both in the working dtype: subtracting
    its part of the center first keeps near-constant images exact."""

    center: torch.Tensor
    spread: torch.Tensor
    shifted: torch.Tensor
    center_low: torch.Tensor


class Selection(NamedTuple):
    """The pixels that the statistics come from (``nonzero=True``, ``mask=``): ``pixels``, bools
    of the image's shape, and ``count`` of them per scope (keepdim over the reduced dims)."""

    pixels: torch.Tensor
    count: torch.Tensor

    @staticmethod
    def of(pixels: torch.Tensor, dims: tuple[int, ...]) -> Selection:
        return Selection(pixels, pixels.sum(dim=dims, keepdim=True))

    @property
    def empty(self) -> torch.Tensor:
        """Scopes without a selected pixel: they map to 0 (center 0, scale 0)."""
        return self.count == 0


def _moments(
    image: torch.Tensor,
    work: torch.Tensor,
    dims: tuple[int, ...],
    params: NormalizeParams,
    selection: Selection | None = None,
) -> Centered:
    """``image`` modes: subtract the float32 mean first, then the moments of the centered values
    give the rounding left in it (the low part) and a variance free of cancellation."""
    if selection is not None:
        return _selected_moments(work, dims, selection)
    center_high = work.mean(dim=dims, keepdim=True)
    shifted = work.sub_(center_high)
    variance, center_low = torch.var_mean(shifted, dim=dims, correction=0, keepdim=True)
    mean = center_high.double() + center_low.double()
    return Centered(mean, variance.double().sqrt(), shifted, center_low)


def _selected_moments(work: torch.Tensor, dims: tuple[int, ...], selection: Selection) -> Centered:
    """The moments of the selected pixels, computed as :func:`_moments` computes them: sums of
    the selected values (``where``, not a product with the mask: a NaN outside it stays out)
    divided by their count. An empty scope gets the center 0 and the spread 0."""
    pixels = selection.pixels
    count = selection.count.clamp(min=1).to(work.dtype)

    def selected_mean(values: torch.Tensor) -> torch.Tensor:
        return torch.where(pixels, values, 0.0).sum(dim=dims, keepdim=True) / count

    center_high = selected_mean(work)
    shifted = work.sub_(center_high)
    center_low = selected_mean(shifted)
    variance = selected_mean((shifted - center_low).square())
    mean = center_high.double() + center_low.double()
    return Centered(mean, variance.double().sqrt(), shifted, center_low)


def _extremes(
    image: torch.Tensor,
    work: torch.Tensor,
    dims: tuple[int, ...],
    params: NormalizeParams,
    selection: Selection | None = None,
) -> Centered:
    """``min_max`` modes."""
    low, high = _min_max(image, work, dims, selection)
    low = low.double()
    return _centered(image, work, low, high.double() - low, selection)


def _percentile_range(
    image: torch.Tensor,
    work: torch.Tensor,
    dims: tuple[int, ...],
    params: NormalizeParams,
    selection: Selection | None = None,
) -> Centered:
    """``percentile`` modes."""
    low, high = _percentiles(image, work, dims, params.percentiles, selection)
    return _centered(image, work, low, high - low, selection)


def _centered(
    image: torch.Tensor,
    work: torch.Tensor,
    center: torch.Tensor,
    spread: torch.Tensor,
    selection: Selection | None = None,
) -> Centered:
    """The terms of a statistic that gives its float64 center directly. A minimum is a pixel
    value, exact in float32; an interpolated percentile may need the low part too.

    For float images, an infinite center or spread (±inf pixels reached the statistic) becomes a
    NaN spread, so the scope comes out NaN as documented: a +inf maximum would otherwise give a
    scale of 0. Integer images have no infinities, and the moments need no such step (an
    infinite pixel makes their spread NaN already): the four small kernels it costs are left
    out there. Measured on an H200 against the code before the statistics table, 3x224x224
    uint8: the image modes took 1.65x as long with the step, 1.0x without.
    """
    if image.is_floating_point():
        spread = torch.where(center.isfinite() & spread.isfinite(), spread, torch.nan)
    if selection is not None:  # no selected pixel: no statistics (NaN); the scope maps to 0
        center, spread = center.masked_fill(selection.empty, 0.0), spread.masked_fill(selection.empty, 0.0)
    center_high = center.to(work.dtype)
    center_low = (center - center_high.double()).to(work.dtype)
    return Centered(center, spread, work.sub_(center_high), center_low)


def _robust(
    image: torch.Tensor,
    work: torch.Tensor,
    dims: tuple[int, ...],
    params: NormalizeParams,
    selection: Selection | None = None,
) -> Centered:
    """``robust`` modes: the median and the interquartile range."""
    lower_quartile, median, upper_quartile = _percentiles(image, work, dims, (25.0, 50.0, 75.0), selection)
    return _centered(image, work, median, upper_quartile - lower_quartile, selection)


#: Statistic name (``Mode.statistic``) -> ``f(image, work, dims, params, selection=None) ->
#: Centered``, reduced over ``dims`` of every sample at once (keepdim), over the selected
#: pixels only when a :class:`Selection` is given.
STATISTICS = {"mean_std": _moments, "min_max": _extremes, "percentile": _percentile_range, "robust": _robust}


def _prescaled(
    image: torch.Tensor, dims: tuple[int, ...], strides: tuple[int, ...], mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The image as float32 (float64 for float64 and int32), a new tensor with ``strides`` (those
    of the output: the working copy becomes it), with each scope multiplied by a power
    of two ``2**-e`` that brings it into [-1, 1], and those factors as float64 (``None`` for
    dtypes that need no scaling: integers and float16, whose squares and sums stay far inside the
    working dtype's range; int32 values become float64 exactly, where float32 would round them to
    24 bits and a near-constant image near 2**30 would lose its spread).

    Scale safety: float32 reductions of large values overflow (the variance of 1e30-sized values
    came out 0, a float64 1e300 becomes inf in float32) and those of tiny ones underflow, so
    statistics and the affine run on the scaled copy, with eps scaled alike: the same output
    within rounding for any finite input. A power of two scales exactly. Every scope is scaled
    (a decision per scope would need the host): on an H200 this costs 0.06-0.13 ms more per
    call on a 3x224x224 float32 image (a few more small kernels) and 23-37% more on a
    256x3x224x224 float32 batch; integer inputs pay nothing. A scope of zeros, or with NaN or
    inf, gets the factor 1 (frexp gives the exponent 0 for them).

    With a ``mask`` (the pixels the statistics come from), the power of two is that of the
    masked pixels: a float32 scope whose pixels outside the mask reach 1e30
    scaled its selected values of 1 to 1e-30, whose squares underflowed float32 (a variance of
    0, a scale of 1e4; found in review, where the Triton kernels, which scale each tile by its
    selected pixels, gave the right 1.22).
    """
    precision = torch.float64 if image.dtype in WIDE_DTYPES else torch.float32
    work = torch.empty_strided(image.shape, strides, dtype=precision, device=image.device)
    if image.dtype not in _SCALABLE_DTYPES:
        return work.copy_(image), None
    source = image if mask is None else torch.where(mask, image, 0)
    magnitude = torch.linalg.vector_norm(source, ord=math.inf, dim=dims, keepdim=True, dtype=precision)
    # 2**-e is exact in float32 down to 2**-149, below the 2**-128 a float32 image needs.
    # Only ever scaled down: 2**-e for a scope below 2**-126 would overflow float32 (and tiny
    # values need no help: eps dominates their scale).
    factor = torch.exp2(torch.frexp(magnitude).exponent.clamp(min=0).neg().to(precision))
    # float64 images keep a float64 working copy: rounded to float32 first, a near-constant
    # image with a tiny spread lost digits in the robust modes (0.03 off at an output of 1e3).
    return torch.mul(image, factor, out=work), factor.double()


def _min_max(
    image: torch.Tensor, work: torch.Tensor, dims: tuple[int, ...], selection: Selection | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Min and max over ``dims`` (of the selected pixels, when given), skipping NaN pixels as
    the reference (cv2.normalize) does; a scope of only NaN, or of none, gives NaN."""
    if not image.is_floating_point() and selection is None:
        # Integers are reduced as they are (uint8: a quarter of the bytes), except uint16, for
        # which torch has no min/max.
        source = work if image.dtype == torch.uint16 else image
        return source.amin(dim=dims, keepdim=True), source.amax(dim=dims, keepdim=True)
    skipped = work.isnan() if selection is None else ~selection.pixels | work.isnan()
    low = torch.where(skipped, torch.inf, work).amin(dim=dims, keepdim=True)
    high = torch.where(skipped, -torch.inf, work).amax(dim=dims, keepdim=True)
    empty = low > high
    return low.masked_fill(empty, torch.nan), high.masked_fill(empty, torch.nan)


def _percentiles(
    image: torch.Tensor,
    work: torch.Tensor,
    dims: tuple[int, ...],
    percentiles: tuple[float, ...],
    selection: Selection | None = None,
) -> tuple[torch.Tensor, ...]:
    """The ``percentiles`` over ``dims`` (one float64 tensor each, keepdim), interpolated linearly as
    ``np.percentile`` does, NaN pixels skipped (and those not selected, when a selection is
    given); a scope of only NaN, or of none, gives NaN.

    uint8: exact from per-scope histograms, one ``scatter_add_`` for the whole batch (a sort of
    every scope costs ~10x more), a pixel not selected counting 0. Other dtypes: one sort of
    every scope; NaN sorts last (pixels not selected become NaN), so the ranks count only the
    values before it.
    """
    reduced = {d % image.ndim for d in dims}
    kept = [1 if axis in reduced else size for axis, size in enumerate(image.shape)]
    scopes = math.prod(kept)
    if image.dtype == torch.uint8:
        values = image.reshape(scopes, -1).long()
        first_bin = torch.arange(scopes, device=image.device).unsqueeze(1) * 256
        # scatter_add_, not bincount: bincount reads the largest value back to size its output,
        # a host sync on CUDA, even with minlength.
        bins = (values + first_bin).ravel()
        weights = torch.ones_like(bins) if selection is None else selection.pixels.reshape(-1).long()
        counts = torch.zeros(scopes * 256, dtype=torch.long, device=image.device)
        counts = counts.scatter_add_(0, bins, weights).reshape(scopes, 256)
        cumulative = counts.cumsum(dim=1)
        total = cumulative[:, -1:]

        def order_statistic(rank: torch.Tensor) -> torch.Tensor:
            # The value of rank k: how many bins hold k values or fewer up to them.
            return (cumulative.unsqueeze(1) <= rank.unsqueeze(-1)).sum(dim=-1).double()

    else:
        values = work if selection is None else torch.where(selection.pixels, work, torch.nan)
        ordered = values.reshape(scopes, -1).sort(dim=1).values
        total = (~ordered.isnan()).sum(dim=1, keepdim=True)

        def order_statistic(rank: torch.Tensor) -> torch.Tensor:
            return ordered.gather(1, rank.long()).double()

    last = (total - 1).clamp(min=0).double()  # a scope of only NaN has no values: NaN below
    ranks = last * _fractions(percentiles, image.device)
    below = ranks.floor()
    low_value, high_value = order_statistic(below), order_statistic(torch.minimum(below + 1, last))
    result = _lerp(low_value, high_value, ranks - below)
    result = result.masked_fill(total == 0, torch.nan)
    return tuple(values.reshape(kept) for values in result.unbind(dim=1))


def _lerp(low: torch.Tensor, high: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``np.percentile``'s linear interpolation as NumPy writes it, from the nearer end (from
    ``low`` the other way round, a result could differ from NumPy's by an ulp)."""
    step = high - low
    return torch.where(weight < 0.5, low + step * weight, high - step * (1 - weight))


@functools.lru_cache(maxsize=64)
def _fractions(percentiles: tuple[float, ...], device: torch.device) -> torch.Tensor:
    """The percentiles as float64 fractions on ``device``, cached: copying a Python list to a
    CUDA device waits for the host, once, instead of on every call."""
    return torch.tensor(percentiles, dtype=torch.float64, device=device) / 100.0
