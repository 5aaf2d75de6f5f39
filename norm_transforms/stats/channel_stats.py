"""``ChannelStats``: what users hold. It checks what it is given (arrays and tensors, one kind and
channel count), keeps the lock that makes it safe to share between threads, and reads its
results from an accumulator (accumulators.py), which does the counting."""

from __future__ import annotations

import json
import math
import numbers
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..dtypes import PIXEL_TYPES
from .accumulators import (
    ACCEPTED_DTYPES,
    KIND_OF_DTYPE,
    Accumulator,
    HistogramAccumulator,
    Kind,
    accumulator_class,
    describe,
    new_accumulator,
)
from .checks import percentile_points
from .serialization import read_state_dict, state_dict
from .tensors import is_tensor, tensor_as_channels_last

PercentileMethod = Literal["linear", "inverted_cdf"]


class ChannelStats:
    """Per-channel pixel count, mean, population std, min and max, pooled over every pixel of
    every image passed to :meth:`update`, exact and mergeable.

    NumPy arrays are channels-last: ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``. Torch tensors
    are channels-first: ``(H, W)``, ``(C, H, W)`` or ``(N, C, H, W)`` (channels_last memory is
    fine). Dtypes: uint8, uint16 and int16 (kept as exact histograms, so :meth:`percentile` and
    :attr:`median` work), int32 (exact integer sums: count, mean, std, min, max) or
    float16/32/64 (float64 moments). One ``ChannelStats`` holds one kind (uint8, uint16, int16,
    int32 or float) and one channel count; mixing them is a ``ValueError``.

    Safe to share between threads: :meth:`update`, :meth:`merge`, :meth:`all_reduce` and the
    results take a per-instance lock, held only to add a counted image to the totals (its
    float moments are computed before). Pickling (how worker processes return their counts)
    leaves the lock out and the copy gets its own.

    ``nonzero=True``: each channel's statistics come from its non-zero values only (what
    ``normalize(..., nonzero=True)`` and MONAI's ``NormalizeIntensity(nonzero=True)`` normalize
    with: the background of brain MRI, no-data in satellite tiles); :attr:`counts` says how
    many per channel, :attr:`count` is still every pixel read, and a channel with no non-zero
    value has NaN statistics. Statistics with and without it do not merge.

    >>> import numpy as np
    >>> stats = ChannelStats().update(np.zeros((4, 4, 3), np.uint8)).update(np.full((2, 2, 3), 255, np.uint8))
    >>> stats.count, stats.mean.tolist()
    (20, [51.0, 51.0, 51.0])
    >>> stats.to_normalize_kwargs()["mean"]
    (0.2, 0.2, 0.2)
    >>> ChannelStats(nonzero=True).update(np.array([[0, 0], [10, 30]], np.uint8)).mean.tolist()
    [20.0]
    """

    def __init__(self, *, nonzero: bool = False) -> None:
        if not isinstance(nonzero, (bool, np.bool_)):
            raise TypeError(f"nonzero must be True or False; got {nonzero!r}")
        self._nonzero = bool(nonzero)
        self._totals: Accumulator | None = None  # set by the first update, of its kind
        self._images = 0
        # Reentrant: results call each other (to_dict reads count, mean, std...). Uncontended,
        # it costs 0.17 µs an update; 224x224x3 updates take 50 µs (uint8) to 240 µs (float32),
        # and with and without it they time the same to within the noise, +-1-3%
        # (benchmarks/bench_stats.py --lock).
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ accumulate

    def update(self, images: Any) -> ChannelStats:
        """Count every pixel of an image or a batch (see the class docstring for the layouts).
        The input is never modified. Returns ``self``."""
        if isinstance(images, np.ndarray):
            self._update_array(images)
        elif is_tensor(images):
            self._update_array(tensor_as_channels_last(images))
        else:
            raise TypeError(
                "images must be a NumPy array (H, W), (H, W, C) or (N, H, W, C), or a torch tensor "
                f"(H, W), (C, H, W) or (N, C, H, W); got {type(images).__name__}"
            )
        return self

    def merge(self, other: ChannelStats) -> ChannelStats:
        """Add the pixels counted by ``other`` (same kind and channel count). Returns ``self``."""
        if not isinstance(other, ChannelStats):
            raise TypeError(f"merge() takes a ChannelStats, got {type(other).__name__}")
        if other.nonzero != self._nonzero:
            raise ValueError(
                f"cannot merge a ChannelStats(nonzero={other.nonzero}) into a ChannelStats("
                f"nonzero={self._nonzero}): one counts the zero values and the other leaves them "
                "out, so their statistics are of different pixels; count both the same way"
            )
        # A copy of other's state taken under its lock, then added under ours: one lock at a time,
        # so a.merge(b) and b.merge(a) in two threads cannot deadlock.
        totals, images = other._snapshot()
        if totals is None:
            return self
        with self._lock:
            self._check_compatible(totals.kind, totals.channels, "merged ChannelStats")
            if self._totals is None:
                self._totals = new_accumulator(totals.kind, totals.channels, self._nonzero)
            self._totals.merge(totals)
            self._images += images
        return self

    def all_reduce(self, group: Any = None) -> ChannelStats:
        """Replace these statistics, on every rank of a ``torch.distributed`` process group,
        with those of all ranks' data pooled, exactly: histograms are summed as int64 tensors;
        float moments are gathered and merged in rank order, so every rank gets the same bits.
        Ranks that counted nothing take part and adopt the result. Returns ``self``."""
        from .distributed import all_reduce_totals

        # Held through the collectives: another thread's update would land in some ranks' totals
        # and not others'.
        with self._lock:
            self._totals, self._images = all_reduce_totals(self._totals, self._images, group, self._nonzero)
        return self

    # ------------------------------------------------------------------ results

    @property
    def kind(self) -> Kind | None:
        """``"uint8"``, ``"uint16"``, ``"int16"``, ``"int32"``, ``"float"``, or ``None`` before the
        first update."""
        totals = self._totals
        return None if totals is None else totals.kind  # type: ignore[return-value]

    @property
    def channels(self) -> int | None:
        """Number of channels, or ``None`` before the first update."""
        totals = self._totals
        return None if totals is None else totals.channels

    @property
    def images(self) -> int:
        """Images counted: one per 2-D or 3-D array, ``N`` per ``(N, ...)`` batch."""
        return self._images

    @property
    def nonzero(self) -> bool:
        """Whether the statistics leave out the zero values (``ChannelStats(nonzero=True)``)."""
        return self._nonzero

    @property
    def count(self) -> int:
        """Pixels counted per channel (the same for every channel): every pixel read, zeros
        included with ``nonzero=True`` (then :attr:`counts` is what the statistics come from)."""
        with self._lock:
            return 0 if self._totals is None else self._totals.count

    @property
    def counts(self) -> np.ndarray:
        """The pixels each channel's statistics come from, int64 ``(C,)``: :attr:`count` in
        every channel, or with ``nonzero=True`` each channel's non-zero values."""
        with self._lock:
            if self._totals is None:
                return np.zeros(0, dtype=np.int64)
            return self._totals.channel_counts()

    @property
    def mean(self) -> np.ndarray:
        """Per-channel mean, float64 ``(C,)``, in pixel units."""
        return self._summary_field("mean")

    @property
    def std(self) -> np.ndarray:
        """Per-channel population std (divides by the count), float64 ``(C,)``, in pixel units."""
        return self._summary_field("std")

    @property
    def min(self) -> np.ndarray:
        """Per-channel minimum, float64 ``(C,)``."""
        return self._summary_field("min")

    @property
    def max(self) -> np.ndarray:
        """Per-channel maximum, float64 ``(C,)``."""
        return self._summary_field("max")

    @property
    def histogram(self) -> np.ndarray | None:
        """Read-only int64 counts ``(C, 256)`` for uint8 data, ``(C, 65536)`` for uint16 and int16,
        where ``histogram[c, v]`` is the number of pixels of channel ``c`` equal to ``v`` (for
        int16, ``histogram[c, v + 32768]``); ``None`` for int32 and float data (and before the
        first update). A copy, taken under the lock: a view
        would change under the caller while another thread counts."""
        with self._lock:
            if not isinstance(self._totals, HistogramAccumulator):
                return None
            counts = self._totals.counts.copy()
        counts.flags.writeable = False
        return counts

    def percentile(self, q: float | Sequence[float], method: PercentileMethod = "linear") -> np.ndarray:
        """Exact per-channel percentiles of uint8, uint16 and int16 data, from the histogram: the
        same as ``np.percentile(pixels, q, axis=0, method=method)`` over all pixels ``(count, C)``
        as float64.

        ``method="linear"`` (NumPy's default) interpolates between the two nearest pixel values;
        ``"inverted_cdf"`` gives the smallest pixel value with at least ``q`` % of the pixels at
        or below it (always a value that occurs). ``q`` in [0, 100]: a number gives ``(C,)``,
        a sequence ``(len(q), C)``.
        """
        with self._lock:
            self._require_histogram("percentile")
        if method not in ("linear", "inverted_cdf"):
            raise ValueError(f"method must be 'linear' or 'inverted_cdf', got {method!r}")
        points = percentile_points(q)
        with self._lock:
            values = self._require_histogram("percentile").percentiles(points.ravel().tolist(), method)
        return values[0] if points.ndim == 0 else values

    @property
    def median(self) -> np.ndarray:
        """Per-channel median of uint8, uint16 and int16 data, as ``np.median`` (the 50th
        percentile, linear)."""
        return self.percentile(50.0)

    def to_normalize_kwargs(self, max_pixel_value: float | None = None) -> dict[str, Any]:
        """``{"mean", "std", "max_pixel_value"}`` for ``Normalize``, ``TorchNormalize`` and
        ``NormalizeLayer``: mean and std divided by ``max_pixel_value``, since those compute
        ``(x - mean * max_pixel_value) / (std * max_pixel_value)``. ``None`` takes the dtype's
        full scale: 255 for uint8 data, 65535 for uint16, 1.0 for floats; and 1.0 for int16 and
        int32 data, which have none (their mean and std stay in the data's own units, Hounsfield
        units for CT, and ``max_pixel_value=1.0`` is then given explicitly, as their standard
        mode needs).

        >>> kwargs = stats.to_normalize_kwargs()  # doctest: +SKIP
        >>> Normalize(**kwargs), TorchNormalize(**kwargs), NormalizeLayer(**kwargs)  # doctest: +SKIP
        """
        with self._lock:  # mean and std of the same totals
            return self._normalize_kwargs(max_pixel_value)

    def _normalize_kwargs(self, max_pixel_value: float | None) -> dict[str, Any]:
        self._require_pixels("to_normalize_kwargs")
        if max_pixel_value is None:
            scale = unit_of(self.kind)
        elif (
            isinstance(max_pixel_value, numbers.Real)
            and not isinstance(max_pixel_value, bool)
            and math.isfinite(max_pixel_value)
            and max_pixel_value > 0
        ):
            scale = float(max_pixel_value)
        else:
            raise ValueError(
                f"max_pixel_value must be a positive finite number or None, got {max_pixel_value!r}"
            )
        std = self.std
        empty = np.flatnonzero(self.counts == 0).tolist()
        if empty:
            raise ValueError(
                f"channel(s) {empty} have no non-zero value (nonzero=True), so no mean or std to "
                "normalize with; leave those channels out or pick their mean and std by hand"
            )
        constant = np.flatnonzero(std == 0).tolist()
        if constant:
            raise ValueError(
                f"channel(s) {constant} hold a single value (std 0), and Normalize divides by the "
                "std; leave those channels out or pick a std for them by hand"
            )
        return {
            "mean": tuple(float(m) / scale for m in self.mean),
            "std": tuple(float(s) / scale for s in std),
            "max_pixel_value": scale,
        }

    # ------------------------------------------------------------------ persistence

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the exact state (histogram counts as integers, float64 moments as
        round-tripping floats) plus a human-readable ``summary`` that :meth:`from_dict` ignores."""
        with self._lock:  # one consistent state
            return state_dict(self._totals, self._images, self._nonzero)

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> ChannelStats:
        """The inverse of :meth:`to_dict`; checks the format and says which field is wrong.

        A state that no counting can produce is refused, naming the field, what it holds and
        what is accepted: a ``TypeError`` for a wrong type (a string or null where numbers go),
        a ``ValueError`` for a wrong value (a negative ``m2``, ``min`` above ``max``, NaN or
        infinite moments, histogram counts that disagree with ``count``, more images than pixels).
        """
        totals, images, nonzero = read_state_dict(state)
        stats = cls(nonzero=nonzero)
        stats._totals, stats._images = totals, images
        return stats

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_dict` as JSON."""
        Path(path).write_text(json.dumps(self.to_dict()) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ChannelStats:
        """Read a file written by :meth:`save`."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    # ------------------------------------------------------------------ comparisons

    def __eq__(self, other: object) -> bool:
        """Equal state, bit for bit (what order-independence of integer data means)."""
        if not isinstance(other, ChannelStats):
            return NotImplemented
        mine, theirs = self._snapshot(), other._snapshot()  # one lock at a time
        return (self._nonzero, mine) == (other._nonzero, theirs)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __getstate__(self) -> dict[str, Any]:
        """The state without the lock (which cannot be pickled); the totals are copied under
        it, since pickling reads them after this returns."""
        totals, images = self._snapshot()
        return {"_totals": totals, "_images": images, "_nonzero": self._nonzero}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({"_nonzero": False, **state})
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        with self._lock:
            nonzero = ", nonzero=True" if self._nonzero else ""
            if not self.count:
                return (
                    f"ChannelStats(kind={self.kind!r}, channels={self.channels}, images=0, count=0{nonzero})"
                )
            counts = f"counts={_short(self.counts)}, " if self._nonzero else ""
            return (
                f"ChannelStats(kind={self.kind!r}, channels={self.channels}, images={self._images}, "
                f"count={self.count}{nonzero}, {counts}"
                f"mean={_short(self.mean)}, std={_short(self.std)}, "
                f"min={_short(self.min)}, max={_short(self.max)})"
            )

    # ------------------------------------------------------------------ internals

    def _update_array(self, images: np.ndarray) -> None:
        prepared = self._prepare(images)
        with self._lock:
            self._add_prepared(*prepared)

    def _prepare(self, images: np.ndarray) -> tuple[str, int, Any, int]:
        """Everything about an image that needs no lock: checks, and the accumulator's
        ``measure`` (the float moments, the costly part for floats). Returns what
        :meth:`_add_prepared` adds to the totals."""
        kind = KIND_OF_DTYPE.get(images.dtype)
        if kind is None:
            raise TypeError(f"image dtype {images.dtype} is not supported; accepted: {ACCEPTED_DTYPES}")
        if images.ndim not in (2, 3, 4):
            raise ValueError(
                "expected an image (H, W) or (H, W, C), or a batch (N, H, W, C) of NumPy arrays; "
                f"got shape {images.shape}"
            )
        if images.size == 0:
            raise ValueError(f"images are empty (shape {images.shape}); there is nothing to count")
        channels = images.shape[-1] if images.ndim > 2 else 1
        self._check_compatible(kind, channels, "images")  # early, to spare the moments; again under the lock
        pixels = np.ascontiguousarray(images).reshape(-1, channels)
        # Measured first: a refused image (NaN) leaves these statistics as they were.
        measured = accumulator_class(kind, self._nonzero).measure(pixels)
        return kind, channels, measured, images.shape[0] if images.ndim == 4 else 1

    def _add_prepared(self, kind: str, channels: int, measured: Any, images: int) -> None:
        """Add a prepared image to the totals; the caller holds the lock."""
        self._check_compatible(kind, channels, "images")
        if self._totals is None:
            self._totals = new_accumulator(kind, channels, self._nonzero)
        self._totals.add(measured)
        self._images += images

    def _check_compatible(self, kind: str, channels: int, what: str) -> None:
        """Refuse a kind or channel count other than the one counted so far."""
        if self._totals is not None and (kind, channels) != (self._totals.kind, self._totals.channels):
            raise ValueError(
                f"this ChannelStats counted {describe(self.kind, self.channels)} before, and now got "
                f"{what} of {describe(kind, channels)}; statistics of different dtypes or channel counts "
                "cannot be pooled (keep one ChannelStats for each, or convert the images first)"
            )

    def _summary_field(self, name: str) -> np.ndarray:
        with self._lock:
            self._require_pixels(name)
            return getattr(self._totals.summary(), name).copy()

    def _require_pixels(self, what: str) -> None:
        if not self.count:
            raise ValueError(f"{what}: no pixels counted yet; call update() or compute_stats() first")

    def _require_histogram(self, what: str) -> HistogramAccumulator:
        self._require_pixels(what)
        if not isinstance(self._totals, HistogramAccumulator):
            kind = "float" if self.kind == "float" else str(self.kind)
            raise ValueError(
                f"{what} needs the histogram that ChannelStats keeps for uint8, uint16 and int16 "
                f"images; these statistics are of {kind} images (only count, mean, std, min and max)"
            )
        return self._totals

    def _snapshot(self) -> tuple[Accumulator | None, int]:
        """A copy of the totals (the histogram kernel adds to them in place) and the image
        count, read together under the lock."""
        with self._lock:
            return (None if self._totals is None else self._totals.copy()), self._images

    def _reorder_channels(self, order: Sequence[int]) -> ChannelStats:
        """Permute the channels in place (BGR statistics to RGB)."""
        with self._lock:
            if self._totals is not None:
                self._totals = self._totals.reordered(list(order))
        return self


def unit_of(kind: str | None) -> float:
    """What ``max_pixel_value=None`` divides by for statistics of ``kind``: the dtype's full
    scale, or 1.0 (the data's own units) for floats and for signed integers, which have none."""
    pixel = PIXEL_TYPES.get(str(kind))
    return 1.0 if pixel is None or pixel.full_scale is None else pixel.full_scale


def _short(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in values.tolist()) + "]"
