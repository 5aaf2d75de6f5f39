"""How ``ChannelStats`` counts pixels: one ``Accumulator`` interface, three implementations
(and their ``nonzero=True`` variants).

- ``HistogramAccumulator`` (uint8, uint16, int16): a per-channel histogram (int64 counts), which
  is a sufficient statistic. Count, mean, std, min, max, percentiles and the median all come
  from it, the sums in Python integers (no overflow at any count), so merging is exact and the
  result is the same bits whatever the order, batch size or number of workers. int16 values
  ``v`` are counted in bin ``v + 32768``.
- ``IntegerSumAccumulator`` (int32, whose 2**32 values no histogram holds): per channel the
  count, the exact sums of the values and of their squares (Python integers), min and max.
  Exact and order-independent bit for bit, as the histograms are; no percentiles.
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

Kind = Literal["uint8", "uint16", "int16", "int32", "float"]

# Float blocks are moved to float64 this many pixels at a time: bounded memory, and each
# channel's row stays long enough for NumPy's pairwise summation to keep its ~log(n) error.
_FLOAT_BLOCK_PIXELS = 1 << 18

# The int64 dot products of the histogram sums cannot overflow below this count per channel
# (65535**2 * count < 2**63, and int16's 32768**2 is smaller); above it the sums are taken in
# Python integers.
_INT64_SAFE_COUNT = 1 << 31

# int32 blocks are summed this many pixels at a time: every partial sum of a block (values up to
# 2**31, products of the 16-bit halves up to 2**32) stays below 2**53, exact in float64.
_INTEGER_BLOCK_PIXELS = 1 << 20


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
    """``(C, bins)`` int64 counts of every pixel value, one row per channel; value ``v`` in bin
    ``v + offset`` (``offset`` 32768 for int16, 0 for the unsigned kinds)."""

    additive = True

    def __init__(self, kind: str, channels: int, counts: np.ndarray | None = None) -> None:
        super().__init__(kind, channels)
        bins = PIXEL_TYPES[kind].histogram_bins
        #: The bin of the value 0.
        self.offset = PIXEL_TYPES[kind].histogram_offset
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

    def read_counts(self) -> np.ndarray:
        """The counts the statistics read: every bin (the nonzero variant empties the bin of 0)."""
        return self.counts

    def summary(self) -> Summary:
        if self._summary is None:
            self._summary = _summarize_histogram(self.read_counts(), self.offset, self.count)
        return self._summary

    def percentiles(self, points: Sequence[float], method: str) -> np.ndarray:
        """``(len(points), C)`` exact percentiles, as ``np.percentile`` over the pixels (NaN
        for a channel without a pixel in its statistics)."""
        read = self.read_counts()
        values = histogram_percentiles(read, points, method, first_value=-self.offset)
        values[:, read.sum(axis=1) == 0] = np.nan
        return values

    def channel_counts(self) -> np.ndarray:
        return self.read_counts().sum(axis=1)

    def state(self) -> dict[str, Any]:
        # Sparse: 16-bit data rarely fills all 65536 bins of a channel. The pixel values
        # themselves (negative for int16), not the bins.
        rows = [
            {"values": (np.flatnonzero(row) - self.offset).tolist(), "counts": row[row != 0].tolist()}
            for row in self.counts
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
        bins, offset = accumulator.counts.shape[1], accumulator.offset
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
            outside = [value for value in values if not -offset <= value < bins - offset]
            if outside:
                raise ValueError(
                    f"{where} must have integer values in [{-offset}, {bins - offset}), got {outside[0]}"
                )
            if any(n < 0 for n in counts):
                raise ValueError(f"{where} must have non-negative counts, got {min(counts)}")
            totals.append(sum(counts))  # Python integers: a corrupt count cannot wrap around
            if totals[-1] >= 2**63:
                raise ValueError(f"{where} counts {totals[-1]} pixels, more than int64 counts hold")
            bins_of_values = np.array(values, np.intp) + offset
            np.add.at(accumulator.counts[channel], bins_of_values, np.array(counts, np.int64))
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
    and the share of zero pixels stays known (``counts[:, offset]``, the bin of 0: the first one,
    or the middle one for int16)."""

    nonzero = True

    def read_counts(self) -> np.ndarray:
        read = self.counts.copy()
        read[:, self.offset] = 0
        return read


def _summarize_histogram(histogram: np.ndarray, offset: int = 0, pixels: int | None = None) -> Summary:
    """Count, mean, std, min and max from integer sums: mean = S1 / n and
    var = (n * S2 - S1**2) / n**2 as exact integers, each rounded once by the division. Bin ``b``
    counts the value ``b - offset``; ``histogram`` holds the counts the statistics read (with
    ``nonzero``, the bin of 0 emptied) and ``pixels`` every pixel read (default: its own count).
    A channel with no value read has NaN statistics; no pixel at all, an empty summary."""
    pixels = int(histogram[0].sum()) if pixels is None else pixels
    if pixels == 0:
        return Summary(0, *(np.empty(0),) * 4)
    sums, lows, highs = [], [], []
    for row in histogram:
        bins = np.flatnonzero(row)
        if not bins.size:
            sums.append((0, 0, 0))
            lows.append(math.nan)
            highs.append(math.nan)
            continue
        levels, counts = bins - offset, row[bins]
        count = int(counts.sum())
        if count < _INT64_SAFE_COUNT:
            first, second = int(np.dot(levels, counts)), int(np.dot(levels * levels, counts))
        else:
            pairs = list(zip(levels.tolist(), counts.tolist(), strict=True))
            first, second = sum(v * n for v, n in pairs), sum(v * v * n for v, n in pairs)
        sums.append((count, first, second))
        lows.append(float(levels[0]))
        highs.append(float(levels[-1]))
    means, stds = _exact_moments(sums)
    return Summary(pixels, means, stds, np.array(lows), np.array(highs))


def _exact_moments(sums: list[tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Per channel, from exact integer sums ``(n, S1, S2)``: the mean ``S1 / n`` and the
    population std ``sqrt((n * S2 - S1**2) / n**2)``, each a rational rounded once (Python's
    int / int); NaN for a channel of no pixel (``n == 0``)."""
    means = [first / count if count else math.nan for count, first, _ in sums]
    stds = [
        math.sqrt((count * second - first * first) / (count * count)) if count else math.nan
        for count, first, second in sums
    ]
    return np.array(means), np.array(stds)


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


class IntegerSumAccumulator(Accumulator):
    """Per channel: the pixels in its statistics, the exact sums of their values (``S1``) and of
    their squares (``S2``) as Python integers, and their minimum and maximum; :attr:`count`,
    every pixel read. How int32 pixels are counted, where a histogram of 2**32 bins would not
    fit: the mean and std are exact rationals rounded once, as the histograms give them, and the
    same bits in any order. No percentiles. The nonzero variant leaves the zeros out of the
    counts, min and max (they add nothing to the sums).
    """

    # Sums add up, but min and max do not: ranks gather the arrays and merge them in rank order.
    additive = False

    # to_array's columns: pixels in the statistics, min, max, then S1 and S2 as little-endian
    # 32-bit limbs, the last one signed (|S1| < 2**94 and S2 < 2**125 below 2**63 pixels).
    _SUM_LIMBS, _SQUARE_LIMBS = 3, 4

    def __init__(self, kind: str, channels: int) -> None:
        super().__init__(kind, channels)
        self._count = 0
        self.selected = [0] * channels
        self.sums = [0] * channels
        self.squares = [0] * channels
        # None for a channel without a pixel in its statistics.
        self.min: list[int | None] = [None] * channels
        self.max: list[int | None] = [None] * channels
        self._summary: Summary | None = None

    @classmethod
    def measure(cls, pixels: np.ndarray) -> IntegerSumAccumulator:
        """Exact sums, block by block: the values summed in int64; each value split into halves,
        ``x = h * 2**16 + l`` (``h`` signed, ``0 <= l < 2**16``), so that
        ``x**2 = h**2 * 2**32 + h * l * 2**17 + l**2`` and each of the three dot products stays
        below 2**53 within a block: exact in float64 in any summation order (BLAS's included).
        The blocks then add up in Python integers. ~5 ms for 512x512x3 (float64 splits with
        floor and einsum took ~6.3; int64 products ~9)."""
        count, channels = pixels.shape
        part = cls(pixels.dtype.name, channels)
        sums, squares = [0] * channels, [0] * channels
        selected, low, high = [0] * channels, [None] * channels, [None] * channels
        for start in range(0, count, _INTEGER_BLOCK_PIXELS):
            # Channel-major: one contiguous row per channel.
            values = np.ascontiguousarray(pixels[start : start + _INTEGER_BLOCK_PIXELS].T)
            totals = values.sum(axis=1, dtype=np.int64).tolist()
            upper = np.right_shift(values, 16).astype(np.float64)
            lower = np.bitwise_and(values, 0xFFFF).astype(np.float64)
            for c in range(channels):
                high_half, low_half = upper[c], lower[c]
                squares[c] += (
                    (int(np.dot(high_half, high_half)) << 32)
                    + (int(np.dot(high_half, low_half)) << 17)
                    + int(np.dot(low_half, low_half))
                )
                sums[c] += totals[c]
            block_selected, block_low, block_high = part._range(values)
            selected = [a + b for a, b in zip(selected, block_selected, strict=True)]
            low, high = _pooled_range(low, high, block_low, block_high)
        part._pool(count, selected, sums, squares, low, high)
        return part

    def _range(self, values: np.ndarray) -> tuple[list[int], list[int | None], list[int | None]]:
        """Pixels in the statistics, min and max of each row of ``values`` (one per channel)."""
        low, high = np.empty(len(values)), np.empty(len(values))
        _kernels.min_max(values, low, high, values.shape[1])
        return [values.shape[1]] * len(values), [int(v) for v in low], [int(v) for v in high]

    def add(self, measured: IntegerSumAccumulator) -> None:
        self.merge(measured)

    def merge(self, other: Accumulator) -> None:
        assert isinstance(other, IntegerSumAccumulator), "merge takes an accumulator of the same kind"
        self._pool(other._count, other.selected, other.sums, other.squares, other.min, other.max)

    def _pool(
        self,
        count: int,
        selected: list[int],
        sums: list[int],
        squares: list[int],
        low: list[int | None],
        high: list[int | None],
    ) -> None:
        if count == 0:
            return
        self.selected = [a + b for a, b in zip(self.selected, selected, strict=True)]
        self.sums = [a + b for a, b in zip(self.sums, sums, strict=True)]
        self.squares = [a + b for a, b in zip(self.squares, squares, strict=True)]
        self.min, self.max = _pooled_range(self.min, self.max, low, high)
        self._count += count
        self._summary = None

    @property
    def count(self) -> int:
        return self._count

    def channel_counts(self) -> np.ndarray:
        return np.array(self.selected, dtype=np.int64)

    def summary(self) -> Summary:
        if self._summary is None:
            means, stds = _exact_moments(list(zip(self.selected, self.sums, self.squares, strict=True)))
            lows, highs = (
                np.array([math.nan if v is None else float(v) for v in ends]) for ends in (self.min, self.max)
            )
            self._summary = Summary(self._count, means, stds, lows, highs)
        return self._summary

    def state(self) -> dict[str, Any]:
        if not self._count:
            return {}
        state: dict[str, Any] = {"nonzero_counts": self.selected} if self.nonzero else {}
        # A channel without a pixel in its statistics (nonzero) writes 0 for its min and max.
        low, high = ([0 if v is None else v for v in ends] for ends in (self.min, self.max))
        return state | {"sum": self.sums, "sum_of_squares": self.squares, "min": low, "max": high}

    @classmethod
    def from_state(cls, state: dict[str, Any], kind: str, channels: int) -> IntegerSumAccumulator:
        accumulator = cls(kind, channels)
        count = integer_field(state, "count", 0)
        if count == 0:
            return accumulator
        selected = [count] * channels
        if cls.nonzero:
            selected = _integers_per_channel(state, "nonzero_counts", channels)
            if any(not 0 <= n <= count for n in selected):
                raise ValueError(
                    f"'nonzero_counts' must hold {channels} integers in [0, count={count}] (the non-zero "
                    f"pixels of each channel), got {selected!r}"
                )
        sums, squares, low, high = (
            _integers_per_channel(state, key, channels) for key in ("sum", "sum_of_squares", "min", "max")
        )
        info = np.iinfo(kind)
        for channel, n in enumerate(selected):
            if n == 0:
                if sums[channel] or squares[channel]:
                    raise ValueError(
                        f"'sum' and 'sum_of_squares' of channel {channel} must be 0: it has no pixel"
                    )
                continue
            if not info.min <= low[channel] <= high[channel] <= info.max:
                raise ValueError(
                    f"'min' and 'max' must be {kind} values with min <= max in every channel, got min "
                    f"{low[channel]} and max {high[channel]} in channel {channel}"
                )
            if not n * low[channel] <= sums[channel] <= n * high[channel]:
                raise ValueError(
                    f"'sum' of channel {channel} ({sums[channel]}) must lie between count * min and "
                    f"count * max (a mean within [min, max])"
                )
            if n * squares[channel] < sums[channel] ** 2:
                raise ValueError(
                    f"'sum_of_squares' of channel {channel} is too small for its 'sum' (a negative "
                    "variance): count * sum_of_squares must be at least sum**2"
                )
        low, high = ([v if n else None for v, n in zip(ends, selected, strict=True)] for ends in (low, high))
        accumulator._pool(count, selected, sums, squares, low, high)
        return accumulator

    def to_array(self) -> np.ndarray:
        """``(C, 10)`` int64: pixels in the statistics, min, max (0 for a channel of none), then
        the limbs of S1 and of S2; zeros before the first pixel."""
        rows = [
            [
                n,
                0 if low is None else low,
                0 if high is None else high,
                *_limbs(total, self._SUM_LIMBS),
                *_limbs(square, self._SQUARE_LIMBS),
            ]
            for n, low, high, total, square in zip(
                self.selected, self.min, self.max, self.sums, self.squares, strict=True
            )
        ]
        return np.array(rows, dtype=np.int64).reshape(self.channels, 3 + self._SUM_LIMBS + self._SQUARE_LIMBS)

    @classmethod
    def from_array(cls, array: np.ndarray, count: int, kind: str) -> IntegerSumAccumulator:
        accumulator = cls(kind, len(array))
        rows = array.tolist()
        split = 3 + cls._SUM_LIMBS
        selected = [row[0] for row in rows]
        low, high = ([row[i] if row[0] else None for row in rows] for i in (1, 2))
        sums = [_from_limbs(row[3:split]) for row in rows]
        squares = [_from_limbs(row[split:]) for row in rows]
        accumulator._pool(count, selected, sums, squares, low, high)
        return accumulator


class NonzeroIntegerSumAccumulator(IntegerSumAccumulator):
    """``nonzero=True`` on int32 pixels: the zeros add nothing to the sums, so only the counts,
    min and max of each channel leave them out."""

    nonzero = True

    def _range(self, values: np.ndarray) -> tuple[list[int], list[int | None], list[int | None]]:
        nonzero = values != 0
        selected = nonzero.sum(axis=1).tolist()
        info = np.iinfo(values.dtype)
        low = np.where(nonzero, values, info.max).min(axis=1).tolist()
        high = np.where(nonzero, values, info.min).max(axis=1).tolist()
        return (
            selected,
            [v if n else None for v, n in zip(low, selected, strict=True)],
            [v if n else None for v, n in zip(high, selected, strict=True)],
        )


def _pooled_range(
    low: list[int | None], high: list[int | None], other_low: list[int | None], other_high: list[int | None]
) -> tuple[list[int | None], list[int | None]]:
    """Per channel, the smaller minimum and the larger maximum; None (no pixel) pools as nothing."""
    return (
        [b if a is None else a if b is None else min(a, b) for a, b in zip(low, other_low, strict=True)],
        [b if a is None else a if b is None else max(a, b) for a, b in zip(high, other_high, strict=True)],
    )


def _limbs(value: int, count: int) -> list[int]:
    """``value`` as ``count`` little-endian 32-bit limbs, the last one signed (it carries the
    sign and the high bits): every limb fits an int64."""
    return [(value >> (32 * i)) & 0xFFFFFFFF for i in range(count - 1)] + [value >> (32 * (count - 1))]


def _from_limbs(limbs: list[int]) -> int:
    return sum(int(limb) << (32 * i) for i, limb in enumerate(limbs))


def _integers_per_channel(state: dict[str, Any], key: str, channels: int) -> list[int]:
    """``state[key]``: one integer per channel, or an error naming the field."""
    values = integer_list(state.get(key), f"'{key}'")
    if len(values) != channels:
        raise ValueError(f"'{key}' must hold one integer per channel ({channels}), got {len(values)}")
    return values


#: The integer kinds of the dtype table (NumPy's), each its own kind.
_INTEGER_KINDS = {name: pixel for name, pixel in PIXEL_TYPES.items() if pixel.numpy and not pixel.is_float}

#: The accumulator of each kind of pixels: exact histograms for the integer types of the dtype
#: table that have one, exact integer sums for the other integer types (int32), float64 moments
#: for the float types. A new kind of counting is one more class here.
ACCUMULATORS: dict[str, type[Accumulator]] = {
    **{
        name: HistogramAccumulator if pixel.histogram_bins else IntegerSumAccumulator
        for name, pixel in _INTEGER_KINDS.items()
    },
    "float": MomentAccumulator,
}

#: The same with ``nonzero=True``: statistics over each channel's non-zero values.
NONZERO_ACCUMULATORS: dict[str, type[Accumulator]] = {
    **{
        name: NonzeroHistogramAccumulator if pixel.histogram_bins else NonzeroIntegerSumAccumulator
        for name, pixel in _INTEGER_KINDS.items()
    },
    "float": NonzeroMomentAccumulator,
}


def accumulator_class(kind: str, nonzero: bool = False) -> type[Accumulator]:
    """The accumulator that counts ``kind`` pixels, with or without ``nonzero``."""
    return (NONZERO_ACCUMULATORS if nonzero else ACCUMULATORS)[kind]


#: The kind of each NumPy dtype counted (compared as dtypes: a big-endian uint16 is not one):
#: its own name for integers, "float" for every float type (they pool together).
KIND_OF_DTYPE: dict[np.dtype, str] = {
    np.dtype(name): "float" if pixel.is_float else name for name, pixel in PIXEL_TYPES.items() if pixel.numpy
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
