"""How ``ChannelStats`` counts pixels: one ``Accumulator`` interface, two implementations.

- ``HistogramAccumulator`` (uint8, uint16): a per-channel histogram (int64 counts), which is a
  sufficient statistic. Count, mean, std, min, max, percentiles and the median all come from
  it, the sums in Python integers (no overflow at any count), so merging is exact and the
  result is the same bits whatever the order, batch size or number of workers.
- ``MomentAccumulator`` (float16/32/64): per channel, the count, the float64 mean and the sum of
  squared deviations (two-pass per block), merged with the update of Chan, Golub and LeVeque.
  Independent of the order to within a few float64 roundings (~1e-15 relative), not bit for
  bit. NaN or infinite pixels are refused (their mean and std are undefined), with an error
  naming the channel.

``ACCUMULATORS`` says which one counts each kind of pixels (the kinds come from the dtype table,
``dtypes.PIXEL_TYPES``). Accumulators hold no lock: ``ChannelStats`` calls ``measure`` outside
its lock (the float moments, the costly part) and ``add`` under it.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from ..backends import kernels as _kernels
from ..backends.numpy import histogram_percentiles
from ..dtypes import PIXEL_TYPES, accepted_names
from .checks import float_list, integer_field, integer_list, shown

Kind = Literal["uint8", "uint16", "float"]

# Float blocks are moved to float64 this many pixels at a time: bounded memory, and each
# channel's row stays long enough for NumPy's pairwise summation to keep its ~log(n) error.
_FLOAT_BLOCK_PIXELS = 1 << 18

# The int64 dot products of the histogram sums cannot overflow below this count per channel
# (65535**2 * count < 2**63); above it the sums are taken in Python integers.
_INT64_SAFE_COUNT = 1 << 31


@dataclass(frozen=True)
class Summary:
    """Pixels per channel, and per channel the float64 mean, population std, min and max."""

    count: int
    mean: np.ndarray
    std: np.ndarray
    min: np.ndarray
    max: np.ndarray


class Accumulator(ABC):
    """Exact, mergeable per-channel statistics of pixels ``(P, C)`` of one kind.

    The contract, which tests/test_stats_accumulators.py checks for every implementation:
    counting the same pixels through any mix of updates and merges gives the same statistics
    (bit for bit for integer counts, to float64 rounding for moments); ``from_state(state())``
    and ``from_array(to_array(), count)`` give back an equal accumulator. ``to_array`` is the
    whole state as one array with a row per channel: what crosses ``torch.distributed``, and
    what copies, compares and reorders every implementation alike.
    """

    #: What the JSON ``kind`` and ``ChannelStats.kind`` call the pixels counted here.
    kind: str
    #: Whether ``to_array`` of disjoint sets of pixels adds up to that of their union (exact
    #: integer counts): then torch.distributed pools ranks with one all_reduce, else ranks
    #: gather each other's arrays and merge them in rank order.
    additive: ClassVar[bool]
    #: Whether the statistics leave out the zero values of each channel (``nonzero=True``);
    #: :attr:`count` still counts every pixel read.
    nonzero: ClassVar[bool] = False

    def __init__(self, kind: str, channels: int) -> None:
        self.kind, self.channels = kind, channels

    @staticmethod
    @abstractmethod
    def measure(pixels: np.ndarray) -> Any:
        """The part of counting C-contiguous ``(P, C)`` pixels that needs no lock (it reads no
        totals); what it returns goes to :meth:`add`. Refuses pixels it cannot count."""

    @abstractmethod
    def add(self, measured: Any) -> None:
        """Add pixels that :meth:`measure` prepared to the totals."""

    @abstractmethod
    def merge(self, other: Accumulator) -> None:
        """Add the totals of ``other``, of the same kind and channel count."""

    @property
    @abstractmethod
    def count(self) -> int:
        """Pixels counted per channel."""

    @abstractmethod
    def summary(self) -> Summary:
        """Count, mean, std, min and max (read only; the caller copies what it hands out); NaN
        for a channel without a pixel in its statistics (possible only with ``nonzero``)."""

    def channel_counts(self) -> np.ndarray:
        """The pixels each channel's statistics come from, int64 ``(C,)``: every pixel read, or
        with ``nonzero`` the channel's non-zero values."""
        return np.full(self.channels, self.count, dtype=np.int64)

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """The JSON fields of the exact totals, beside ``kind``, ``channels`` and ``count``."""

    @classmethod
    @abstractmethod
    def from_state(cls, state: dict[str, Any], kind: str, channels: int) -> Accumulator:
        """The inverse of :meth:`state`, checking every field it reads (an error names it)."""

    @abstractmethod
    def to_array(self) -> np.ndarray:
        """The exact totals as one array, a row per channel (a view where the totals are one)."""

    @classmethod
    @abstractmethod
    def from_array(cls, array: np.ndarray, count: int, kind: str) -> Accumulator:
        """The inverse of :meth:`to_array`; ``count`` is what :attr:`count` said."""

    def update(self, pixels: np.ndarray) -> None:
        """Count ``(P, C)`` pixels: :meth:`measure`, then :meth:`add`."""
        self.add(self.measure(pixels))

    def copy(self) -> Accumulator:
        return self.from_array(self.to_array().copy(), self.count, self.kind)

    def reordered(self, order: list[int]) -> Accumulator:
        """The same totals with the channels permuted (BGR statistics to RGB)."""
        return self.from_array(self.to_array()[order], self.count, self.kind)

    def __eq__(self, other: object) -> bool:
        """Equal totals, bit for bit."""
        if not isinstance(other, Accumulator):
            return NotImplemented
        same_kind = (type(self), self.kind, self.channels) == (type(other), other.kind, other.channels)
        return same_kind and self.count == other.count and np.array_equal(self.to_array(), other.to_array())

    __hash__ = None  # type: ignore[assignment]  # mutable


class HistogramAccumulator(Accumulator):
    """``(C, bins)`` int64 counts of every pixel value, one row per channel."""

    additive = True
    #: The first bin the statistics read: 0, every value.
    first_bin: ClassVar[int] = 0

    def __init__(self, kind: str, channels: int, counts: np.ndarray | None = None) -> None:
        super().__init__(kind, channels)
        bins = PIXEL_TYPES[kind].histogram_bins
        # Given counts are taken as they are: zeroing 65536 bins a channel first tripled the
        # time of a uint16 merge (690 vs 210 µs, 3 channels), which copies the other's counts.
        self.counts = np.zeros((channels, bins), dtype=np.int64) if counts is None else counts
        self._summary: Summary | None = None  # derived from the counts, until they change

    @staticmethod
    def measure(pixels: np.ndarray) -> np.ndarray:
        # Nothing to do before the lock: the kernel adds to the counts in place, under it.
        return pixels

    def add(self, measured: np.ndarray) -> None:
        # In place, under ChannelStats' lock (the kernel releases the GIL, so two threads would
        # otherwise add to the same counts at once). Counting into a local histogram outside the
        # lock and adding it under it measured slower: 224x224x3 uint8 +1-7% (52 vs 50 µs), uint16
        # +55-60% (zeroing and adding 65536 bins a channel), and 8 threads sharing one
        # ChannelStats on 2 cores gained nothing for uint8 (21 vs 21-24 ms for 400 updates) and
        # lost for uint16 (127 vs 77-96 ms). bench_stats.py --lock.
        _kernels.histogram(measured, self.counts)
        self._summary = None

    def merge(self, other: Accumulator) -> None:
        self.counts += other.to_array()
        self._summary = None

    @property
    def count(self) -> int:
        return int(self.counts[0].sum())

    def summary(self) -> Summary:
        if self._summary is None:
            self._summary = _summarize_histogram(self.counts, self.first_bin)
        return self._summary

    def percentiles(self, points: Sequence[float], method: str) -> np.ndarray:
        """``(len(points), C)`` exact percentiles, as ``np.percentile`` over the pixels (NaN
        for a channel without a pixel in its statistics)."""
        # The bins from first_bin on are a histogram of values counted from first_bin.
        read = self.counts[:, self.first_bin :]
        values = histogram_percentiles(read, points, method) + self.first_bin
        values[:, read.sum(axis=1) == 0] = np.nan
        return values

    def channel_counts(self) -> np.ndarray:
        return self.counts[:, self.first_bin :].sum(axis=1)

    def state(self) -> dict[str, Any]:
        # Sparse: uint16 data rarely fills all 65536 bins of a channel.
        rows = [
            {"values": np.flatnonzero(row).tolist(), "counts": row[row != 0].tolist()} for row in self.counts
        ]
        return {"histogram": rows}

    @classmethod
    def from_state(cls, state: dict[str, Any], kind: str, channels: int) -> HistogramAccumulator:
        accumulator = cls(kind, channels)
        count = integer_field(state, "count", 0)
        rows = state.get("histogram")
        shape = f"a list of {channels} {{'values': [...], 'counts': [...]}} (one per channel)"
        if not isinstance(rows, list):
            raise TypeError(f"'histogram' must be {shape}, got {shown(rows)}")
        if len(rows) != channels:
            raise ValueError(f"'histogram' must hold one entry per channel ({channels}), got {len(rows)}")
        bins = accumulator.counts.shape[1]
        totals = []
        for channel, row in enumerate(rows):
            where = f"'histogram' of channel {channel}"
            if not isinstance(row, dict):
                raise TypeError(f"{where} must be {{'values': [...], 'counts': [...]}}, got {shown(row)}")
            values = integer_list(row.get("values", []), f"{where}: 'values'")
            counts = integer_list(row.get("counts", []), f"{where}: 'counts'")
            if len(values) != len(counts):
                raise ValueError(
                    f"{where} must have as many 'counts' as 'values', got {len(counts)} and {len(values)}"
                )
            outside = [value for value in values if not 0 <= value < bins]
            if outside:
                raise ValueError(f"{where} must have integer values in [0, {bins}), got {outside[0]}")
            if any(n < 0 for n in counts):
                raise ValueError(f"{where} must have non-negative counts, got {min(counts)}")
            totals.append(sum(counts))  # Python integers: a corrupt count cannot wrap around
            if totals[-1] >= 2**63:
                raise ValueError(f"{where} counts {totals[-1]} pixels, more than int64 counts hold")
            np.add.at(accumulator.counts[channel], np.array(values, np.intp), np.array(counts, np.int64))
        if any(total != count for total in totals):
            raise ValueError(f"'histogram' counts per channel {totals} do not all equal 'count' {count!r}")
        return accumulator

    def to_array(self) -> np.ndarray:
        return self.counts

    @classmethod
    def from_array(cls, array: np.ndarray, count: int, kind: str) -> HistogramAccumulator:
        return cls(kind, len(array), array)


class NonzeroHistogramAccumulator(HistogramAccumulator):
    """``nonzero=True``: the same counts of every value (zeros included, so :attr:`count` is
    every pixel read and the JSON state is the plain one), with statistics and percentiles read
    from the bins of the non-zero values only. Leaving out a bin costs nothing at count time,
    and the share of zero pixels stays known (``counts[:, 0]``)."""

    nonzero = True
    #: The bin of the value 1: the statistics leave out the bin of 0.
    first_bin = 1


def _summarize_histogram(histogram: np.ndarray, first_bin: int = 0) -> Summary:
    """Count, mean, std, min and max from integer sums: mean = S1 / n and
    var = (n * S2 - S1**2) / n**2 as exact integers, each rounded once by the division. The
    statistics read the bins from ``first_bin`` on (1 leaves the zeros out); a channel with no
    value there has NaN statistics."""
    means, stds, lows, highs = [], [], [], []
    for row in histogram:
        levels = np.flatnonzero(row[first_bin:]) + first_bin
        if not levels.size and first_bin == 0:  # nothing counted at all
            return Summary(0, *(np.empty(0),) * 4)
        if not levels.size:
            for values in (means, stds, lows, highs):
                values.append(math.nan)
            continue
        counts = row[levels]
        count = int(counts.sum())
        if count < _INT64_SAFE_COUNT:
            first, second = int(np.dot(levels, counts)), int(np.dot(levels * levels, counts))
        else:
            pairs = list(zip(levels.tolist(), counts.tolist(), strict=True))
            first, second = sum(v * n for v, n in pairs), sum(v * v * n for v, n in pairs)
        means.append(first / count)
        stds.append(math.sqrt((count * second - first * first) / (count * count)))
        lows.append(float(levels[0]))
        highs.append(float(levels[-1]))
    pixels = int(histogram[0].sum())
    return Summary(pixels, *(np.array(values) for values in (means, stds, lows, highs)))


class MomentAccumulator(Accumulator):
    """Per channel: the pixel count and float64 mean, sum of squared deviations (``m2``), min
    and max. The arrays are replaced, never written in place, so a copy may share them."""

    additive = False

    def __init__(self, kind: str, channels: int) -> None:
        super().__init__(kind, channels)
        self._count = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None
        self.min: np.ndarray | None = None
        self.max: np.ndarray | None = None

    @staticmethod
    def measure(pixels: np.ndarray) -> MomentAccumulator:
        """Two-pass float64 moments block by block, merged."""
        part = MomentAccumulator("float", pixels.shape[1])
        for start in range(0, len(pixels), _FLOAT_BLOCK_PIXELS):
            # Channel-major float64 copy: one contiguous row per channel for pairwise sums.
            block = np.array(pixels[start : start + _FLOAT_BLOCK_PIXELS].T, dtype=np.float64, order="C")
            count = block.shape[1]
            mean = block.sum(axis=1) / count
            low, high = block.min(axis=1), block.max(axis=1)
            with np.errstate(invalid="ignore", over="ignore"):  # NaN and inf are refused just below
                block -= mean[:, None]
                np.square(block, out=block)
                m2 = block.sum(axis=1)
            _refuse_undefined(mean, m2)
            part._pool(count, mean, m2, low, high)
        return part

    def add(self, measured: MomentAccumulator) -> None:
        self.merge(measured)

    def merge(self, other: Accumulator) -> None:
        # The arrays themselves, not to_array(): stacking them cost 3% of a 224x224x3 float32
        # update (237 vs 230 µs), each of which merges its measured moments.
        assert isinstance(other, MomentAccumulator), "merge takes an accumulator of the same kind"
        self._pool(other._count, other.mean, other.m2, other.min, other.max)

    def _pool(self, count: int, mean: Any, m2: Any, low: Any, high: Any) -> None:
        """Chan, Golub & LeVeque: pool (count, mean, M2) of two disjoint sets of pixels."""
        if count == 0:
            return
        if self._count == 0:
            self._count, self.mean, self.m2 = count, mean.copy(), m2.copy()
            self.min, self.max = low.copy(), high.copy()
            return
        total = self._count + count
        delta = mean - self.mean
        # Python ints divided once, correctly rounded: no float rounding of the counts.
        self.mean = self.mean + delta * (count / total)
        self.m2 = self.m2 + m2 + delta * delta * (self._count * count / total)
        self.min, self.max = np.minimum(self.min, low), np.maximum(self.max, high)
        self._count = total

    @property
    def count(self) -> int:
        return self._count

    def summary(self) -> Summary:
        return Summary(self._count, self.mean, np.sqrt(self.m2 / self._count), self.min, self.max)

    def state(self) -> dict[str, Any]:
        if not self._count:
            return {}
        return {
            "mean": self.mean.tolist(),
            "m2": self.m2.tolist(),
            "min": self.min.tolist(),
            "max": self.max.tolist(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], kind: str, channels: int) -> MomentAccumulator:
        accumulator = cls(kind, channels)
        count = integer_field(state, "count", 0)
        if count == 0:
            return accumulator
        mean, m2, low, high = (float_list(state, key, channels) for key in ("mean", "m2", "min", "max"))
        if np.any(m2 < 0):
            raise ValueError(
                f"'m2' (sum of squared deviations from the mean) must be >= 0 in every channel, got "
                f"{state['m2']!r}"
            )
        if np.any(low > high):
            raise ValueError(
                f"'min' must not exceed 'max' in any channel, got min {state['min']!r} and "
                f"max {state['max']!r}"
            )
        accumulator._pool(count, mean, m2, low, high)
        return accumulator

    def to_array(self) -> np.ndarray:
        """``(C, 4)``: mean, m2, min and max of each channel; zeros before the first pixel."""
        if not self._count:
            return np.zeros((self.channels, 4))
        return np.stack([self.mean, self.m2, self.min, self.max], axis=1)

    @classmethod
    def from_array(cls, array: np.ndarray, count: int, kind: str) -> MomentAccumulator:
        accumulator = cls(kind, len(array))
        accumulator._pool(count, *array.T)
        return accumulator


class NonzeroMomentAccumulator(Accumulator):
    """``nonzero=True`` on float pixels: per channel, the float64 moments (count, mean, ``m2``,
    min, max) of its non-zero values, pooled as :class:`MomentAccumulator` pools them but with
    a count per channel; and :attr:`count`, every pixel read. A channel without a non-zero
    value holds count 0, mean 0, ``m2`` 0, min +inf and max -inf (what pools as nothing)."""

    additive = False
    nonzero = True

    def __init__(self, kind: str, channels: int) -> None:
        super().__init__(kind, channels)
        self._count = 0
        self.selected = np.zeros(channels, dtype=np.int64)
        self.mean = np.zeros(channels)
        self.m2 = np.zeros(channels)
        self.min = np.full(channels, np.inf)
        self.max = np.full(channels, -np.inf)

    @staticmethod
    def measure(pixels: np.ndarray) -> NonzeroMomentAccumulator:
        """Two-pass float64 moments of each channel's non-zero values, block by block, merged:
        the zeros add nothing to a sum, so the first pass is the plain sum divided by the
        non-zero count, and the second squares the deviations of the non-zero values only."""
        part = NonzeroMomentAccumulator("float", pixels.shape[1])
        for start in range(0, len(pixels), _FLOAT_BLOCK_PIXELS):
            block = np.array(pixels[start : start + _FLOAT_BLOCK_PIXELS].T, dtype=np.float64, order="C")
            nonzero = block != 0  # NaN is non-zero: it makes the sums NaN and is refused below
            count = nonzero.sum(axis=1)
            with np.errstate(invalid="ignore", over="ignore"):
                mean = block.sum(axis=1) / np.maximum(count, 1)
                m2 = np.square(np.where(nonzero, block - mean[:, None], 0.0)).sum(axis=1)
            _refuse_undefined(mean, m2)
            low = np.where(nonzero, block, np.inf).min(axis=1)
            high = np.where(nonzero, block, -np.inf).max(axis=1)
            part._pool(block.shape[1], count, mean, m2, low, high)
        return part

    def add(self, measured: NonzeroMomentAccumulator) -> None:
        self.merge(measured)

    def merge(self, other: Accumulator) -> None:
        assert isinstance(other, NonzeroMomentAccumulator), "merge takes an accumulator of the same kind"
        self._pool(other._count, other.selected, other.mean, other.m2, other.min, other.max)

    def _pool(self, pixels: int, count: Any, mean: Any, m2: Any, low: Any, high: Any) -> None:
        """Chan, Golub & LeVeque per channel, with each channel's own counts; a channel with
        no values on either side takes the other's moments exactly (its weight is 0 or 1)."""
        mine, theirs = self.selected.tolist(), np.asarray(count).tolist()
        totals = [a + b for a, b in zip(mine, theirs, strict=True)]
        # Python ints divided once, correctly rounded, as MomentAccumulator does.
        weight = np.array([b / t if t else 0.0 for b, t in zip(theirs, totals, strict=True)])
        cross = np.array([a * b / t if t else 0.0 for a, b, t in zip(mine, theirs, totals, strict=True)])
        delta = mean - self.mean
        self.mean = self.mean + delta * weight
        self.m2 = self.m2 + m2 + delta * delta * cross
        self.min, self.max = np.minimum(self.min, low), np.maximum(self.max, high)
        self.selected = np.array(totals, dtype=np.int64)
        self._count += pixels

    @property
    def count(self) -> int:
        return self._count

    def channel_counts(self) -> np.ndarray:
        return self.selected.copy()

    def summary(self) -> Summary:
        empty = self.selected == 0
        with np.errstate(invalid="ignore", divide="ignore"):
            std = np.sqrt(self.m2 / self.selected)
        mean, low, high = (np.where(empty, np.nan, values) for values in (self.mean, self.min, self.max))
        return Summary(self._count, mean, np.where(empty, np.nan, std), low, high)

    def state(self) -> dict[str, Any]:
        # An empty channel's min and max (+-inf, not JSON) are written as 0, read back by count.
        empty = self.selected == 0
        low, high = np.where(empty, 0.0, self.min), np.where(empty, 0.0, self.max)
        return {
            "nonzero_counts": self.selected.tolist(),
            "mean": self.mean.tolist(),
            "m2": self.m2.tolist(),
            "min": low.tolist(),
            "max": high.tolist(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], kind: str, channels: int) -> NonzeroMomentAccumulator:
        accumulator = cls(kind, channels)
        count = integer_field(state, "count", 0)
        counts = integer_list(state.get("nonzero_counts", [0] * channels), "'nonzero_counts'")
        if len(counts) != channels or any(not 0 <= n <= count for n in counts):
            raise ValueError(
                f"'nonzero_counts' must hold {channels} integers in [0, count={count}] (the non-zero "
                f"pixels of each channel), got {state.get('nonzero_counts')!r}"
            )
        if not any(counts):
            accumulator._count = count
            return accumulator
        mean, m2, low, high = (float_list(state, key, channels) for key in ("mean", "m2", "min", "max"))
        empty = np.array(counts) == 0
        if np.any(m2 < 0) or np.any((low > high) & ~empty):
            raise ValueError(
                f"'m2' must be >= 0 and 'min' must not exceed 'max' in any channel, got m2 "
                f"{state['m2']!r}, min {state['min']!r} and max {state['max']!r}"
            )
        low, high = np.where(empty, np.inf, low), np.where(empty, -np.inf, high)
        accumulator._pool(count, np.array(counts), mean, m2, low, high)
        return accumulator

    def to_array(self) -> np.ndarray:
        """``(C, 5)``: the non-zero count (exact in float64 below 2**53), mean, m2, min, max."""
        return np.stack([self.selected.astype(np.float64), self.mean, self.m2, self.min, self.max], axis=1)

    @classmethod
    def from_array(cls, array: np.ndarray, count: int, kind: str) -> NonzeroMomentAccumulator:
        accumulator = cls(kind, len(array))
        counts, mean, m2, low, high = array.T
        accumulator._pool(count, counts.astype(np.int64), mean, m2, low, high)
        return accumulator


def _refuse_undefined(mean: np.ndarray, m2: np.ndarray) -> None:
    finite = np.isfinite(mean) & np.isfinite(m2)
    if not finite.all():
        raise ValueError(
            f"images contain NaN or infinite values (channel(s) {np.flatnonzero(~finite).tolist()}), "
            "or values too large to square in float64; their mean and std are undefined, so "
            "ChannelStats refuses them: replace or drop those pixels first"
        )


#: The accumulator of each kind of pixels: exact histograms for the integer types of the dtype
#: table, float64 moments for the float types. A new kind of counting is one more class here.
ACCUMULATORS: dict[str, type[Accumulator]] = {
    **{name: HistogramAccumulator for name, pixel in PIXEL_TYPES.items() if pixel.histogram_bins},
    "float": MomentAccumulator,
}

#: The same with ``nonzero=True``: statistics over each channel's non-zero values.
NONZERO_ACCUMULATORS: dict[str, type[Accumulator]] = {
    **{name: NonzeroHistogramAccumulator for name, pixel in PIXEL_TYPES.items() if pixel.histogram_bins},
    "float": NonzeroMomentAccumulator,
}


def accumulator_class(kind: str, nonzero: bool = False) -> type[Accumulator]:
    """The accumulator that counts ``kind`` pixels, with or without ``nonzero``."""
    return (NONZERO_ACCUMULATORS if nonzero else ACCUMULATORS)[kind]


#: The kind of each NumPy dtype counted (compared as dtypes: a big-endian uint16 is not one).
KIND_OF_DTYPE: dict[np.dtype, str] = {
    np.dtype(name): name if pixel.histogram_bins else "float"
    for name, pixel in PIXEL_TYPES.items()
    if pixel.numpy
}

ACCEPTED_DTYPES = accepted_names(numpy=True)


def new_accumulator(kind: str, channels: int, nonzero: bool = False) -> Accumulator:
    """An empty accumulator for ``channels`` channels of ``kind`` pixels."""
    return accumulator_class(kind, nonzero)(kind, channels)


def describe(kind: str | None, channels: int | None) -> str:
    """``"uint8 images with 3 channels"``, ``"float images with 1 channel"``, ``"nothing"``."""
    if kind is None:
        return "nothing"
    images = "float images" if kind == "float" else f"{kind} images"
    return f"{images} with {channels} channel{'s' if channels != 1 else ''}"
