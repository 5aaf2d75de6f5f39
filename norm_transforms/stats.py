"""Exact, streaming dataset statistics: ``ChannelStats`` and ``compute_stats``.

The mean and std to normalize with are those of every pixel of every training image, pooled
per channel: not the average of per-image (or per-batch) stds, which leaves out how much the
image means differ from each other. ``ChannelStats`` accumulates them exactly:

- uint8 and uint16 images: a per-channel histogram (int64 counts), which is a sufficient
  statistic. Count, mean, std, min, max, percentiles and the median all come from it, the sums
  in Python integers (no overflow at any count), so merging is exact and the result is the
  same bits whatever the order, batch size or number of workers.
- float images: per channel, the count, the float64 mean and the sum of squared deviations
  (two-pass per block), merged with the update of Chan, Golub and LeVeque. Independent of the
  order to within a few float64 roundings (~1e-15 relative), not bit for bit. NaN or infinite
  pixels are refused (their mean and std are undefined), with an error naming the channel.

``compute_stats`` reads a folder, a list of files, arrays, tensors or a torch
``Dataset``/``DataLoader``, in worker processes where there is decoding to share out.
Torch is imported only when a tensor, a torch data source or ``all_reduce`` arrives.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import math
import multiprocessing
import numbers
import os
import pickle
import sys
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from .backends import kernels as _kernels
from .backends.numpy import histogram_percentiles
from .modes import default_max_pixel_value

Kind = Literal["uint8", "uint16", "float"]
PercentileMethod = Literal["linear", "inverted_cdf"]

#: File suffixes that ``compute_stats`` reads from a folder (compared case-insensitively).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")

SCHEMA = "norm_transforms.ChannelStats"
SCHEMA_VERSION = 1

_HISTOGRAM_BINS = {"uint8": 256, "uint16": 65536}
_KIND_OF_DTYPE = {
    np.dtype(np.uint8): "uint8",
    np.dtype(np.uint16): "uint16",
    np.dtype(np.float16): "float",
    np.dtype(np.float32): "float",
    np.dtype(np.float64): "float",
}
_ACCEPTED_DTYPES = "uint8, uint16, float16, float32, float64"

# Float blocks are moved to float64 this many pixels at a time: bounded memory, and each
# channel's row stays long enough for NumPy's pairwise summation to keep its ~log(n) error.
_FLOAT_BLOCK_PIXELS = 1 << 18

# The int64 dot products of the histogram sums cannot overflow below this count per channel
# (65535**2 * count < 2**63); above it the sums are taken in Python integers.
_INT64_SAFE_COUNT = 1 << 31

# OpenCV decodes 3- and 4-channel images as BGR(A); statistics are kept in that order while
# reading and put in RGB(A) order once at the end, which is exact and spares a cvtColor per image.
_RGB_ORDER = {3: (2, 1, 0), 4: (2, 1, 0, 3)}

# File names listed in an error or warning before "and N more".
_LISTED_FILES = 10


class ChannelStats:
    """Per-channel pixel count, mean, population std, min and max, pooled over every pixel of
    every image passed to :meth:`update`, exact and mergeable.

    NumPy arrays are channels-last: ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``. Torch tensors
    are channels-first: ``(H, W)``, ``(C, H, W)`` or ``(N, C, H, W)`` (channels_last memory is
    fine). Dtypes: uint8 and uint16 (kept as exact histograms, so :meth:`percentile` and
    :attr:`median` work) or float16/32/64 (float64 moments). One ``ChannelStats`` holds one
    kind (uint8, uint16 or float) and one channel count; mixing them is a ``ValueError``.

    Safe to share between threads: :meth:`update`, :meth:`merge`, :meth:`all_reduce` and the
    results take a per-instance lock, held only to add a counted image to the totals (its
    float moments are computed before). Pickling (how worker processes return their counts)
    leaves the lock out and the copy gets its own.

    >>> import numpy as np
    >>> stats = ChannelStats().update(np.zeros((4, 4, 3), np.uint8)).update(np.full((2, 2, 3), 255, np.uint8))
    >>> stats.count, stats.mean.tolist()
    (20, [51.0, 51.0, 51.0])
    >>> stats.to_normalize_kwargs()["mean"]
    (0.2, 0.2, 0.2)
    """

    def __init__(self) -> None:
        self._kind: Kind | None = None
        self._channels: int | None = None
        self._images = 0
        # uint8 / uint16: (C, bins) int64 counts.
        self._histogram: np.ndarray | None = None
        # float: pixel count and (C,) float64 mean, sum of squared deviations, min and max.
        self._count = 0
        self._mean: np.ndarray | None = None
        self._m2: np.ndarray | None = None
        self._min: np.ndarray | None = None
        self._max: np.ndarray | None = None
        self._summary: _Summary | None = None  # derived from the histogram, until the next update
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
        elif _is_tensor(images):
            self._update_array(_tensor_as_channels_last(images))
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
        # A copy of other's state taken under its lock, then added under ours: one lock at a time,
        # so a.merge(b) and b.merge(a) in two threads cannot deadlock.
        kind, channels, images, histogram, moments = other._snapshot()
        if kind is None:
            return self
        with self._lock:
            self._check_compatible(kind, channels, "merged ChannelStats")
            if self._kind is None:
                self._start(kind, channels)
            if histogram is not None:
                self._histogram += histogram
            else:
                self._merge_moments(*moments)
            self._images += images
            self._summary = None
        return self

    def all_reduce(self, group: Any = None) -> ChannelStats:
        """Replace these statistics, on every rank of a ``torch.distributed`` process group,
        with those of all ranks' data pooled, exactly: histograms are summed as int64 tensors;
        float moments are gathered and merged in rank order, so every rank gets the same bits.
        Ranks that counted nothing take part and adopt the result. Returns ``self``."""
        from torch import distributed

        # Held through the collectives: another thread's update would land in some ranks' totals
        # and not others'.
        with self._lock:
            return self._all_reduce(distributed, group)

    def _all_reduce(self, distributed: Any, group: Any) -> ChannelStats:
        ranks = distributed.get_world_size(group)
        # Small exact facts travel as Python objects: kind, channels, image and pixel counts.
        seen: list[Any] = [None] * ranks
        distributed.all_gather_object(seen, (self._kind, self._channels, self._images, self._count), group)
        kinds = {(kind, channels) for kind, channels, _, _ in seen if kind is not None}
        if len(kinds) > 1:
            described = ", ".join(f"rank {rank}: {_describe(*entry[:2])}" for rank, entry in enumerate(seen))
            raise ValueError(f"ranks counted different kinds of images and cannot be pooled: {described}")
        if not kinds:
            return self
        kind, channels = kinds.pop()
        if self._kind is None:
            self._start(kind, channels)
        device = _collective_device(distributed, group)
        if self._histogram is not None:
            self._all_reduce_histogram(distributed, group, device)
        else:
            self._all_gather_moments(distributed, group, device, [entry[3] for entry in seen])
        self._images = sum(entry[2] for entry in seen)
        self._summary = None
        return self

    # ------------------------------------------------------------------ results

    @property
    def kind(self) -> Kind | None:
        """``"uint8"``, ``"uint16"``, ``"float"``, or ``None`` before the first update."""
        return self._kind

    @property
    def channels(self) -> int | None:
        """Number of channels, or ``None`` before the first update."""
        return self._channels

    @property
    def images(self) -> int:
        """Images counted: one per 2-D or 3-D array, ``N`` per ``(N, ...)`` batch."""
        return self._images

    @property
    def count(self) -> int:
        """Pixels counted per channel (the same for every channel)."""
        with self._lock:
            if self._histogram is not None:
                return self._integer_summary().count
            return self._count

    @property
    def mean(self) -> np.ndarray:
        """Per-channel mean, float64 ``(C,)``, in pixel units."""
        with self._lock:
            self._require_pixels("mean")
            return self._integer_summary().mean if self._histogram is not None else self._mean.copy()

    @property
    def std(self) -> np.ndarray:
        """Per-channel population std (divides by the count), float64 ``(C,)``, in pixel units."""
        with self._lock:
            self._require_pixels("std")
            if self._histogram is not None:
                return self._integer_summary().std
            return np.sqrt(self._m2 / self._count)

    @property
    def min(self) -> np.ndarray:
        """Per-channel minimum, float64 ``(C,)``."""
        with self._lock:
            self._require_pixels("min")
            return self._integer_summary().min if self._histogram is not None else self._min.copy()

    @property
    def max(self) -> np.ndarray:
        """Per-channel maximum, float64 ``(C,)``."""
        with self._lock:
            self._require_pixels("max")
            return self._integer_summary().max if self._histogram is not None else self._max.copy()

    @property
    def histogram(self) -> np.ndarray | None:
        """Read-only int64 counts ``(C, 256)`` for uint8 data, ``(C, 65536)`` for uint16, where
        ``histogram[c, v]`` is the number of pixels of channel ``c`` equal to ``v``; ``None``
        for float data (and before the first update). A copy, taken under the lock: a view
        would change under the caller while another thread counts."""
        with self._lock:
            if self._histogram is None:
                return None
            counts = self._histogram.copy()
        counts.flags.writeable = False
        return counts

    def percentile(self, q: float | Sequence[float], method: PercentileMethod = "linear") -> np.ndarray:
        """Exact per-channel percentiles of integer data, from the histogram: the same as
        ``np.percentile(pixels, q, axis=0, method=method)`` over all pixels ``(count, C)``.

        ``method="linear"`` (NumPy's default) interpolates between the two nearest pixel values;
        ``"inverted_cdf"`` gives the smallest pixel value with at least ``q`` % of the pixels at
        or below it (always a value that occurs). ``q`` in [0, 100]: a number gives ``(C,)``,
        a sequence ``(len(q), C)``.
        """
        with self._lock:
            self._require_histogram("percentile")
        if method not in ("linear", "inverted_cdf"):
            raise ValueError(f"method must be 'linear' or 'inverted_cdf', got {method!r}")
        points = _percentile_points(q)
        with self._lock:
            values = histogram_percentiles(self._histogram, points.ravel().tolist(), method)
        return values[0] if points.ndim == 0 else values

    @property
    def median(self) -> np.ndarray:
        """Per-channel median of integer data, as ``np.median`` (the 50th percentile, linear)."""
        return self.percentile(50.0)

    def to_normalize_kwargs(self, max_pixel_value: float | None = None) -> dict[str, Any]:
        """``{"mean", "std", "max_pixel_value"}`` for ``Normalize``, ``TorchNormalize`` and
        ``NormalizeLayer``: mean and std divided by ``max_pixel_value``, since those compute
        ``(x - mean * max_pixel_value) / (std * max_pixel_value)``. ``None`` takes the dtype's
        full scale: 255 for uint8 data, 65535 for uint16, 1.0 for floats.

        >>> kwargs = stats.to_normalize_kwargs()  # doctest: +SKIP
        >>> Normalize(**kwargs), TorchNormalize(**kwargs), NormalizeLayer(**kwargs)  # doctest: +SKIP
        """
        with self._lock:  # mean and std of the same totals
            return self._normalize_kwargs(max_pixel_value)

    def _normalize_kwargs(self, max_pixel_value: float | None) -> dict[str, Any]:
        self._require_pixels("to_normalize_kwargs")
        if max_pixel_value is None:
            scale = default_max_pixel_value(np.float64 if self._kind == "float" else self._kind)
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
            return self._state_dict()

    def _state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "format": SCHEMA,
            "version": SCHEMA_VERSION,
            "kind": self._kind,
            "channels": self._channels,
            "images": self._images,
            "count": self.count,
        }
        if self._histogram is not None:
            # Sparse: uint16 data rarely fills all 65536 bins of a channel.
            state["histogram"] = [
                {"values": np.flatnonzero(row).tolist(), "counts": row[row != 0].tolist()}
                for row in self._histogram
            ]
        elif self._count:
            state.update(
                mean=self._mean.tolist(), m2=self._m2.tolist(), min=self._min.tolist(), max=self._max.tolist()
            )
        if self.count:
            state["summary"] = {
                "mean": self.mean.tolist(),
                "std": self.std.tolist(),
                "min": self.min.tolist(),
                "max": self.max.tolist(),
            }
        return state

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> ChannelStats:
        """The inverse of :meth:`to_dict`; checks the format and says which field is wrong.

        A state that no counting can produce is refused, naming the field, what it holds and
        what is accepted: a ``TypeError`` for a wrong type (a string or null where numbers go),
        a ``ValueError`` for a wrong value (a negative ``m2``, ``min`` above ``max``, NaN or
        infinite moments, histogram counts that disagree with ``count``, more images than pixels).
        """
        if not isinstance(state, dict) or state.get("format") != SCHEMA:
            raise ValueError(f"not a ChannelStats dict: expected 'format': {SCHEMA!r}")
        if state.get("version") != SCHEMA_VERSION:
            raise ValueError(
                f"ChannelStats format version {state.get('version')!r} is not supported "
                f"(this version of norm_transforms reads version {SCHEMA_VERSION})"
            )
        stats = cls()
        kind = state.get("kind")
        stats._images = _integer_field(state, "images", 0)
        if kind is not None:
            if kind not in ("uint8", "uint16", "float"):
                raise ValueError(f"'kind' must be 'uint8', 'uint16', 'float' or null, got {kind!r}")
            channels = _integer_field(state, "channels", 1)
            stats._start(kind, channels)
            if kind == "float":
                stats._load_moments(state, channels)
            else:
                stats._load_histogram(state, channels)
        if stats._images > stats.count:
            raise ValueError(
                f"'images' {stats._images} exceeds 'count' {stats.count} (pixels per channel): every "
                "image counted has at least one pixel, so images <= count"
            )
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
        kind, channels, images, histogram, (count, *moments) = mine
        other_kind, other_channels, other_images, other_histogram, (other_count, *other_moments) = theirs
        same_arrays = all(
            (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))
            for a, b in zip((histogram, *moments), (other_histogram, *other_moments), strict=True)
        )
        facts = (kind, channels, images, count)
        return same_arrays and facts == (other_kind, other_channels, other_images, other_count)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __getstate__(self) -> dict[str, Any]:
        """The state without the lock (which cannot be pickled); the histogram is copied under
        it, since pickling reads the array after this returns."""
        with self._lock:
            state = self.__dict__.copy()
            if self._histogram is not None:
                state["_histogram"] = self._histogram.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        with self._lock:
            return self._repr()

    def _repr(self) -> str:
        if not self.count:
            return f"ChannelStats(kind={self._kind!r}, channels={self._channels}, images=0, count=0)"
        return (
            f"ChannelStats(kind={self._kind!r}, channels={self._channels}, images={self._images}, "
            f"count={self.count}, "
            f"mean={_short(self.mean)}, std={_short(self.std)}, "
            f"min={_short(self.min)}, max={_short(self.max)})"
        )

    # ------------------------------------------------------------------ internals

    def _update_array(self, images: np.ndarray) -> None:
        prepared = self._prepare(images)
        with self._lock:
            self._add_prepared(*prepared)

    def _prepare(self, images: np.ndarray) -> tuple[Kind, int, np.ndarray, ChannelStats | None, int]:
        """Everything about an image that needs no lock: checks, and the float moments (the
        costly part for floats). Returns what :meth:`_add_prepared` adds to the totals."""
        kind = _KIND_OF_DTYPE.get(images.dtype)
        if kind is None:
            raise TypeError(f"image dtype {images.dtype} is not supported; accepted: {_ACCEPTED_DTYPES}")
        if images.ndim not in (2, 3, 4):
            raise ValueError(
                "expected an image (H, W) or (H, W, C), or a batch (N, H, W, C) of NumPy arrays; "
                f"got shape {images.shape}"
            )
        if images.size == 0:
            raise ValueError(f"images are empty (shape {images.shape}); there is nothing to count")
        channels = images.shape[-1] if images.ndim > 2 else 1
        self._check_compatible(kind, channels, "images")  # early, to spare the moments; again under the lock
        values = np.ascontiguousarray(images)
        # Float moments first: a refused image (NaN) leaves these statistics as they were.
        part = _float_moments(values.reshape(-1, channels)) if kind == "float" else None
        return kind, channels, values, part, images.shape[0] if images.ndim == 4 else 1

    def _add_prepared(
        self, kind: Kind, channels: int, values: np.ndarray, part: ChannelStats | None, images: int
    ) -> None:
        """Add a prepared image to the totals; the caller holds the lock."""
        self._check_compatible(kind, channels, "images")
        if self._kind is None:
            self._start(kind, channels)
        if part is None:
            # Adds to the counts in place, under the lock (the kernel releases the GIL, so two
            # threads would otherwise add to the same counts at once). Counting into a local
            # histogram outside the lock and adding it under it measured slower: 224x224x3 uint8
            # +1-7% (52 vs 50 µs), uint16 +55-60% (zeroing and adding 65536 bins a channel), and
            # 8 threads sharing one ChannelStats on 2 cores gained nothing for uint8 (21 vs 21-24
            # ms for 400 updates) and lost for uint16 (127 vs 77-96 ms). bench_stats.py --lock.
            _kernels.histogram(values, self._histogram)
            self._summary = None
        else:
            self._merge_moments(part._count, part._mean, part._m2, part._min, part._max)
        self._images += images

    def _merge_moments(
        self, count: int, mean: np.ndarray, m2: np.ndarray, low: np.ndarray, high: np.ndarray
    ) -> None:
        """Chan, Golub & LeVeque: pool (count, mean, M2) of two disjoint sets of pixels."""
        if count == 0:
            return
        if self._count == 0:
            self._count, self._mean, self._m2 = count, mean.copy(), m2.copy()
            self._min, self._max = low.copy(), high.copy()
            return
        total = self._count + count
        delta = mean - self._mean
        # Python ints divided once, correctly rounded: no float rounding of the counts.
        self._mean = self._mean + delta * (count / total)
        self._m2 = self._m2 + m2 + delta * delta * (self._count * count / total)
        self._min, self._max = np.minimum(self._min, low), np.maximum(self._max, high)
        self._count = total

    def _check_compatible(self, kind: Kind, channels: int, what: str) -> None:
        """Refuse a kind or channel count other than the one counted so far."""
        if self._kind is not None and (kind, channels) != (self._kind, self._channels):
            raise ValueError(
                f"this ChannelStats counted {_describe(self._kind, self._channels)} before, and now got "
                f"{what} of {_describe(kind, channels)}; statistics of different dtypes or channel counts "
                "cannot be pooled (keep one ChannelStats for each, or convert the images first)"
            )

    def _start(self, kind: Kind, channels: int) -> None:
        self._kind, self._channels = kind, channels
        if kind in _HISTOGRAM_BINS:
            self._histogram = np.zeros((channels, _HISTOGRAM_BINS[kind]), dtype=np.int64)

    def _require_pixels(self, what: str) -> None:
        if not self.count:
            raise ValueError(f"{what}: no pixels counted yet; call update() or compute_stats() first")

    def _require_histogram(self, what: str) -> np.ndarray:
        self._require_pixels(what)
        if self._histogram is None:
            raise ValueError(
                f"{what} needs the histogram that ChannelStats keeps for uint8 and uint16 images; "
                "these statistics are of float images (only count, mean, std, min and max)"
            )
        return self._histogram

    def _integer_summary(self) -> _Summary:
        if self._summary is None:
            self._summary = _summarize_histogram(self._histogram)
        return self._summary

    def _snapshot(self) -> tuple[Kind | None, int | None, int, np.ndarray | None, tuple[Any, ...]]:
        """Kind, channels, images, a copy of the histogram (the kernel adds to it in place) and
        the float moments (count, mean, m2, min, max: arrays that are replaced, never written),
        read together under the lock."""
        with self._lock:
            histogram = None if self._histogram is None else self._histogram.copy()
            moments = (self._count, self._mean, self._m2, self._min, self._max)
            return self._kind, self._channels, self._images, histogram, moments

    def _reorder_channels(self, order: Sequence[int]) -> ChannelStats:
        """Permute the channels in place (BGR statistics to RGB)."""
        index = list(order)
        with self._lock:
            if self._histogram is not None:
                self._histogram = self._histogram[index]
                self._summary = None
            elif self._count:
                self._mean, self._m2 = self._mean[index], self._m2[index]
                self._min, self._max = self._min[index], self._max[index]
        return self

    def _load_histogram(self, state: dict[str, Any], channels: int) -> None:
        count = _integer_field(state, "count", 0)
        rows = state.get("histogram")
        shape = f"a list of {channels} {{'values': [...], 'counts': [...]}} (one per channel)"
        if not isinstance(rows, list):
            raise TypeError(f"'histogram' must be {shape}, got {_shown(rows)}")
        if len(rows) != channels:
            raise ValueError(f"'histogram' must hold one entry per channel ({channels}), got {len(rows)}")
        bins = self._histogram.shape[1]
        totals = []
        for channel, row in enumerate(rows):
            where = f"'histogram' of channel {channel}"
            if not isinstance(row, dict):
                raise TypeError(f"{where} must be {{'values': [...], 'counts': [...]}}, got {_shown(row)}")
            values = _integer_list(row.get("values", []), f"{where}: 'values'")
            counts = _integer_list(row.get("counts", []), f"{where}: 'counts'")
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
            np.add.at(self._histogram[channel], np.array(values, np.intp), np.array(counts, np.int64))
        if any(total != count for total in totals):
            raise ValueError(f"'histogram' counts per channel {totals} do not all equal 'count' {count!r}")

    def _load_moments(self, state: dict[str, Any], channels: int) -> None:
        count = _integer_field(state, "count", 0)
        if count == 0:
            return
        mean, m2, low, high = (_float_list(state, key, channels) for key in ("mean", "m2", "min", "max"))
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
        self._merge_moments(count, mean, m2, low, high)

    def _all_reduce_histogram(self, distributed: Any, group: Any, device: Any) -> None:
        import torch

        counts = torch.from_numpy(self._histogram).to(device)
        distributed.all_reduce(counts, op=distributed.ReduceOp.SUM, group=group)
        self._histogram = counts.cpu().numpy().copy()

    def _all_gather_moments(self, distributed: Any, group: Any, device: Any, counts: list[int]) -> None:
        import torch

        channels = self._channels
        state = np.zeros(4 * channels)
        if self._count:
            state[:] = np.concatenate([self._mean, self._m2, self._min, self._max])
        local = torch.from_numpy(state).to(device)
        gathered = [torch.empty_like(local) for _ in counts]
        distributed.all_gather(gathered, local, group=group)
        pooled = ChannelStats()
        for count, entry in zip(counts, gathered, strict=True):
            # Rank order: the same merges, so the same bits, on every rank.
            pooled._merge_moments(count, *entry.cpu().numpy().reshape(4, channels))
        self._count, self._mean, self._m2 = pooled._count, pooled._mean, pooled._m2
        self._min, self._max = pooled._min, pooled._max


@dataclass(frozen=True)
class _Summary:
    count: int
    mean: np.ndarray
    std: np.ndarray
    min: np.ndarray
    max: np.ndarray


def _summarize_histogram(histogram: np.ndarray) -> _Summary:
    """Count, mean, std, min and max from integer sums: mean = S1 / n and
    var = (n * S2 - S1**2) / n**2 as exact integers, each rounded once by the division."""
    count = int(histogram[0].sum())
    means, stds, lows, highs = [], [], [], []
    for row in histogram:
        levels = np.flatnonzero(row)
        if not levels.size:
            return _Summary(0, *(np.empty(0),) * 4)
        counts = row[levels]
        if count < _INT64_SAFE_COUNT:
            first, second = int(np.dot(levels, counts)), int(np.dot(levels * levels, counts))
        else:
            pairs = list(zip(levels.tolist(), counts.tolist(), strict=True))
            first, second = sum(v * n for v, n in pairs), sum(v * v * n for v, n in pairs)
        means.append(first / count)
        stds.append(math.sqrt((count * second - first * first) / (count * count)))
        lows.append(float(levels[0]))
        highs.append(float(levels[-1]))
    return _Summary(count, *(np.array(values) for values in (means, stds, lows, highs)))


def _float_moments(pixels: np.ndarray) -> ChannelStats:
    """Float statistics of ``(P, C)`` pixels: two-pass float64 moments block by block, merged."""
    part = ChannelStats()
    part._start("float", pixels.shape[1])
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
        finite = np.isfinite(mean) & np.isfinite(m2)
        if not finite.all():
            raise ValueError(
                f"images contain NaN or infinite values (channel(s) {np.flatnonzero(~finite).tolist()}), "
                "or values too large to square in float64; their mean and std are undefined, so "
                "ChannelStats refuses them: replace or drop those pixels first"
            )
        part._merge_moments(count, mean, m2, low, high)
    return part


def _integer_field(state: dict[str, Any], key: str, minimum: int) -> int:
    """``state[key]``, an integer >= ``minimum`` (0 or 1), or an error naming the field."""
    value = state.get(key)
    accepted = "a non-negative integer" if minimum == 0 else "a positive integer"
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"'{key}' must be {accepted}, got {_shown(value)}")
    if value < minimum:
        raise ValueError(f"'{key}' must be {accepted}, got {value!r}")
    return value


def _integer_list(entries: Any, what: str) -> list[int]:
    """A JSON list of integers (not booleans, not floats, however whole), or a TypeError naming
    the first entry that is not one."""
    if not isinstance(entries, list):
        raise TypeError(f"{what} must be a list of integers, got {_shown(entries)}")
    for entry in entries:
        if type(entry) is not int:
            raise TypeError(f"{what} must hold integers, got {_shown(entry)}")
    return entries


def _float_list(state: dict[str, Any], key: str, channels: int) -> np.ndarray:
    """``state[key]``: one finite number per channel, as float64 (NumPy would turn null into
    NaN and fail on a string with its own message)."""
    entries = state.get(key)
    accepted = f"a list of {channels} finite numbers (one per channel)"
    if not isinstance(entries, list):
        raise TypeError(f"'{key}' must be {accepted}, got {_shown(entries)}")
    if len(entries) != channels:
        raise ValueError(f"'{key}' must be {accepted}, got {len(entries)}: {_shown(entries)}")
    for entry in entries:
        if not isinstance(entry, numbers.Real) or isinstance(entry, bool):
            raise TypeError(f"'{key}' must be {accepted}, got {_shown(entry)} in {_shown(entries)}")
    try:
        values = np.array(entries, dtype=np.float64)
    except OverflowError:  # an integer beyond float64
        values = np.full(channels, np.inf)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"'{key}' must be {accepted}, got {_shown(entries)}")
    return values


def _percentile_points(q: Any) -> np.ndarray:
    """``q`` as float64 percentiles (0-d or 1-D), or an error naming ``q``: a ``TypeError`` for
    what is not numbers (NumPy would fail on "a" with its own message, and read "50" as 50),
    a ``ValueError`` for numbers outside [0, 100] or nested deeper than a sequence."""
    accepted = "a number or a 1-D sequence of numbers in [0, 100]"
    try:
        points = np.asarray(q)
    except ValueError:  # ragged nesting
        points = None
    if points is not None and points.dtype == object:
        # Fractions, Decimals...: numbers NumPy keeps as objects.
        if all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in points.flat):
            points = points.astype(np.float64)
    if points is None or points.dtype.kind not in "iuf":
        raise TypeError(f"q must be {accepted}, got {_shown(q)}")
    points = points.astype(np.float64)
    fractions = points / 100.0
    if points.ndim > 1 or not np.all((fractions >= 0) & (fractions <= 1)):
        raise ValueError(f"q must be {accepted}, got {_shown(q)}")
    return points


def _shown(value: Any, limit: int = 200) -> str:
    """``repr(value)``, cut short: a corrupt field can be a list of 65536 entries."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({type(value).__name__})"


def _describe(kind: str | None, channels: int | None) -> str:
    if kind is None:
        return "nothing"
    images = "float images" if kind == "float" else f"{kind} images"
    return f"{images} with {channels} channel{'s' if channels != 1 else ''}"


def _short(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in values.tolist()) + "]"


# --------------------------------------------------------------------------- torch glue


def _is_tensor(value: Any) -> bool:
    # A tensor can exist only if torch is imported: never import it to find out.
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _tensor_as_channels_last(tensor: Any) -> np.ndarray:
    """A CPU NumPy view (or copy) of ``(H, W)``, ``(C, H, W)`` or ``(N, C, H, W)`` moved to
    ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``; a channels_last tensor needs no copy."""
    import torch

    if tensor.ndim not in (2, 3, 4):
        raise ValueError(
            f"expected a tensor (H, W), (C, H, W) or (N, C, H, W); got shape {tuple(tensor.shape)}"
        )
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()  # NumPy has no bfloat16; the conversion is exact
    if tensor.ndim > 2:
        tensor = tensor.movedim(-3, -1)
    try:
        return tensor.numpy()
    except TypeError as error:  # a dtype NumPy lacks (complex32, quantized, ...)
        raise TypeError(
            f"tensor dtype {tensor.dtype} is not supported; accepted: {_ACCEPTED_DTYPES}"
        ) from error


def _collective_device(distributed: Any, group: Any) -> Any:
    """NCCL moves CUDA tensors only; every other backend here takes CPU tensors."""
    import torch

    if distributed.get_backend(group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _torch_data_source(source: Any) -> str | None:
    """``"loader"``, ``"dataset"`` (map-style), ``"iterable"`` (IterableDataset) or ``None``."""
    if "torch" not in sys.modules:
        return None
    from torch.utils.data import DataLoader, Dataset, IterableDataset

    if isinstance(source, DataLoader):
        return "loader"
    if isinstance(source, IterableDataset):
        return "iterable"
    if isinstance(source, Dataset):
        return "dataset"
    return None


def _samples_of(dataset: Any) -> Iterator[Any]:
    """A map-style Dataset's samples in index order (it need not be iterable)."""
    for index in range(len(dataset)):
        yield dataset[index]


def _sample_itself(sample: Any) -> Any:
    """collate_fn that leaves samples as the Dataset returns them (the default would turn an HWC
    array into a tensor, which reads as CHW)."""
    return sample


# --------------------------------------------------------------------------- compute_stats


def compute_stats(
    source: Any,
    *,
    num_workers: int = 0,
    skip_unreadable: bool = False,
    progress: bool = True,
    chunksize: int | None = None,
) -> ChannelStats:
    """Exact per-channel statistics of a whole dataset.

    ``source`` is one of:

    - a folder (read recursively: png, jpg/jpeg, tif/tiff including 16-bit, bmp, webp; case
      does not matter; files in sorted order), an image file, or a list of files and folders.
      Files are read with ``cv2.imread(path, cv2.IMREAD_UNCHANGED)``: 16-bit stays 16-bit,
      grayscale stays one channel, and the statistics are in RGB (RGBA) order;
    - a torch ``Dataset`` or ``DataLoader`` yielding tensors (``(C, H, W)``, ``(N, C, H, W)``),
      NumPy arrays (``(H, W, C)``), PIL images, or ``(image, label)`` pairs;
    - any other iterable of such items, or of file paths;
    - one array or tensor: an image or a batch, as :meth:`ChannelStats.update` reads it.

    ``num_workers`` processes decode files in parallel (each returns a ``ChannelStats``, merged
    here in a fixed order); for a map-style ``Dataset`` they become ``DataLoader`` workers. A
    ``DataLoader`` brings its own workers; other sources are counted in this process.
    Files OpenCV cannot read raise an ``OSError`` naming them, or with ``skip_unreadable`` a
    warning naming them. Images of different channel counts or dtypes raise a ``ValueError``
    naming a file of each. ``progress`` shows a tqdm bar; ``chunksize`` is how many files a
    worker takes at a time (default: about eight chunks per worker, at most 256 files).

    Workers start with forkserver (spawn where the platform lacks it), never fork, which can
    hang once the caller has used OpenCV's thread pool. Like every spawned process, they import
    the caller's main module again: a script that calls ``compute_stats(..., num_workers=N)``
    needs the ``if __name__ == "__main__":`` guard around its top-level code, or each worker
    would run the script again (they stop with a ``RuntimeError``, and this call raises
    ``BrokenProcessPool``). A ``Dataset`` given with workers is pickled to them, so its class
    must be importable: defined at module level in a file, not inside a function or in a
    notebook (a ``TypeError`` says so)::

        if __name__ == "__main__":
            stats = compute_stats("data/train", num_workers=8)

    >>> stats = compute_stats("data/train", num_workers=8)  # doctest: +SKIP
    >>> Normalize(**stats.to_normalize_kwargs())  # doctest: +SKIP
    """
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be a non-negative integer, got {num_workers!r}")
    if chunksize is not None and (
        isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1
    ):
        raise ValueError(f"chunksize must be a positive integer or None, got {chunksize!r}")
    paths = _image_paths(source)
    if paths is not None:
        return _stats_of_files(paths, num_workers, skip_unreadable, progress, chunksize)
    if isinstance(source, np.ndarray) or _is_tensor(source):
        return ChannelStats().update(source)
    total = len(source) if hasattr(source, "__len__") else None
    return _stats_of_items(_items_of(source, num_workers), total, progress, skip_unreadable)


def _items_of(source: Any, num_workers: int) -> Iterable[Any]:
    """What to iterate over: a map-style Dataset's samples (through DataLoader workers when
    asked), or the iterable itself."""
    if _torch_data_source(source) == "dataset":
        if num_workers == 0:
            return _samples_of(source)
        from torch.utils.data import DataLoader

        loader = DataLoader(
            source,
            batch_size=None,
            num_workers=num_workers,
            collate_fn=_sample_itself,
            multiprocessing_context=_worker_context(),  # not fork: see _worker_context
        )
        return _loader_samples(loader, num_workers)
    if isinstance(source, (str, bytes)) or not isinstance(source, Iterable):
        raise TypeError(
            "source must be a folder, a list of image files, a torch Dataset or DataLoader, an "
            f"iterable of images, or an array; got {type(source).__name__}"
        )
    return source


def _loader_samples(loader: Any, num_workers: int) -> Iterator[Any]:
    """The samples of a DataLoader over a map-style Dataset. Starting its workers pickles the
    Dataset (forkserver and spawn do; fork did not), so a Dataset that cannot be pickled (a
    class defined inside a function, a lambda among its attributes), or whose class the workers
    cannot import (defined in a notebook or ``python -c``: they would die with an
    AttributeError each), gets an error that says what to do instead."""
    cls = type(loader.dataset)
    workers = f"num_workers={num_workers} counts the Dataset in worker processes, which receive it pickled"
    if cls.__module__ == "__main__" and not hasattr(sys.modules.get("__main__"), "__file__"):
        raise TypeError(
            f"{workers} and import its class by name, and {cls.__name__} is defined in an interactive "
            "session (a notebook, python -c) where they cannot find it; move the class into a .py "
            "file and import it, or pass num_workers=0"
        )
    try:
        samples = iter(loader)
    except (AttributeError, TypeError, pickle.PicklingError) as error:
        raise TypeError(
            f"{workers}, and this {cls.__name__} cannot be pickled ({error}); define its class and "
            "whatever it holds at module level, or pass num_workers=0"
        ) from error
    yield from samples


def _image_paths(source: Any) -> list[str] | None:
    """The files that ``source`` names, or ``None`` when it is not a path or a list of paths."""
    if isinstance(source, (str, os.PathLike)):
        return _expand_path(source)
    if (
        isinstance(source, (list, tuple))
        and source
        and all(isinstance(s, (str, os.PathLike)) for s in source)
    ):
        return [path for entry in source for path in _expand_path(entry)]
    return None


def _expand_path(entry: str | os.PathLike[str]) -> list[str]:
    path = os.fspath(entry)
    if os.path.isdir(path):
        found = sorted(_image_files_under(path))
        if not found:
            raise ValueError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) under {path}")
        return found
    if os.path.isfile(path):
        return [path]
    raise FileNotFoundError(f"no such file or folder: {path}")


def _image_files_under(root: str) -> Iterator[str]:
    # Links to folders are followed (datasets are often assembled from them), each real folder
    # once, so that a link cycle ends.
    visited = set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in visited:
            subfolders.clear()
            continue
        visited.add(real)
        yield from (
            os.path.join(folder, name)
            for name in names
            if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
        )


@dataclass
class _FilesResult:
    """What a worker returns for a chunk of files: one ChannelStats per (kind, channels) seen,
    in BGR order, with the first file of each; the files it could not read, with the reason."""

    groups: dict[tuple[str, int], tuple[ChannelStats, str]] = field(default_factory=dict)
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    def add(self, other: _FilesResult) -> None:
        for signature, (stats, first) in other.groups.items():
            if signature in self.groups:
                self.groups[signature][0].merge(stats)
            else:
                self.groups[signature] = (stats, first)
        self.unreadable += other.unreadable


def _read_image(path: str) -> np.ndarray | str:
    """The decoded image (BGR order), or why it cannot be counted."""
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        return "OpenCV cannot read it"
    if image.dtype not in _KIND_OF_DTYPE:
        return f"unsupported pixel type {image.dtype} (accepted: {_ACCEPTED_DTYPES})"
    if image.size == 0:
        return "it has no pixels"
    return image


def _count_files(paths: list[str]) -> _FilesResult:
    """Decode and count a chunk of files: the work of one worker task."""
    result = _FilesResult()
    for path in paths:
        image = _read_image(path)
        if isinstance(image, str):
            result.unreadable.append((path, image))
            continue
        signature = (_KIND_OF_DTYPE[image.dtype], image.shape[2] if image.ndim == 3 else 1)
        if signature not in result.groups:
            result.groups[signature] = (ChannelStats(), path)
        result.groups[signature][0]._update_array(image)
    return result


def _worker_context() -> multiprocessing.context.BaseContext:
    """How worker processes start (file workers and map-style ``Dataset`` workers): forkserver
    where the platform has it, else spawn; never fork, the default on Linux.

    A forked child inherits the parent's memory, locks included, but only the calling thread:
    once the caller has used OpenCV's thread pool (one large ``cv2.resize`` with torch loaded
    was enough), a forked worker blocks forever in ``cv2.setNumThreads(1)``, in
    ``pthread_cond_destroy`` on a pool condition that threads the child does not have were
    using; a Dataset that calls it in a DataLoader worker blocks the same way. forkserver forks
    the workers from a server process started fresh (single-threaded, it never ran OpenCV),
    spawn starts a new interpreter. Both import the worker function by name and pickle its
    arguments (everything here is module-level), and both run the caller's main module again in
    each worker, hence the ``if __name__ == "__main__":`` guard that scripts need.

    The price is start-up. compute_stats of 200 small PNGs with 2 workers, 2 cores (in process:
    32 ms): fork 17 ms, forkserver 180-225 ms (each worker imports NumPy, OpenCV and this
    package: ~100 ms), spawn 230-260 ms; from a script that imports torch, forkserver 1.25 s
    (each worker runs the script's imports again). Once per call, beside minutes of decoding
    for a real dataset. The process-wide forkserver preload list is the caller's to set
    (``multiprocessing.set_forkserver_preload(["norm_transforms.stats"])`` before the first
    call brings the 180 ms down to ~20 ms); a library should not change it behind their back.
    """
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _single_threaded_opencv() -> None:
    # Workers are the parallelism; OpenCV's own threads would only compete with them.
    cv2.setNumThreads(1)


def _stats_of_files(
    paths: list[str], num_workers: int, skip_unreadable: bool, progress: bool, chunksize: int | None
) -> ChannelStats:
    size = chunksize or min(256, max(1, math.ceil(len(paths) / (8 * max(num_workers, 1)))))
    chunks = [paths[start : start + size] for start in range(0, len(paths), size)]
    total = _FilesResult()
    results = contextlib.closing(_chunk_results(chunks, num_workers))  # on an error, stop the workers now
    with _progress_bar(len(paths), progress) as bar, results as chunk_results:
        for chunk_result, chunk in chunk_results:
            total.add(chunk_result)
            if total.unreadable and not skip_unreadable:
                raise OSError(
                    f"cannot read {_list_files(total.unreadable)}; fix or remove them, or pass "
                    "skip_unreadable=True (--skip-unreadable) to leave them out with a warning"
                )
            _check_one_signature(total.groups)
            bar.update(len(chunk))
    if total.unreadable:
        warnings.warn(f"skipped {_list_files(total.unreadable)}", stacklevel=3)
    if not total.groups:
        raise ValueError(f"none of the {len(paths)} files could be read")
    stats, _ = next(iter(total.groups.values()))
    return stats._reorder_channels(_RGB_ORDER[stats.channels]) if stats.channels in _RGB_ORDER else stats


def _chunk_results(chunks: list[list[str]], num_workers: int) -> Iterator[tuple[_FilesResult, list[str]]]:
    """Each chunk's result in chunk order (so float merges give the same bits every run)."""
    if num_workers == 0:
        for chunk in chunks:
            yield _count_files(chunk), chunk
        return
    with concurrent.futures.ProcessPoolExecutor(
        num_workers, mp_context=_worker_context(), initializer=_single_threaded_opencv
    ) as pool:
        futures = [pool.submit(_count_files, chunk) for chunk in chunks]
        try:
            for future, chunk in zip(futures, chunks, strict=True):
                yield future.result(), chunk
        except BrokenProcessPool as error:
            raise BrokenProcessPool(
                f"{error} Workers start by importing the main module again: if this is a script, put "
                "its top-level code under `if __name__ == '__main__':` (the workers' own errors are "
                "printed above); a worker killed for lack of memory ends the same way"
            ) from error
        finally:
            for future in futures:  # on an error, stop the work still queued
                future.cancel()


def _check_one_signature(groups: dict[tuple[str, int], tuple[ChannelStats, str]]) -> None:
    if len(groups) > 1:
        seen = "; ".join(f"{_describe(*signature)}, e.g. {first}" for signature, (_, first) in groups.items())
        raise ValueError(
            f"the images differ in channel count or dtype ({seen}); statistics are pooled per channel, "
            "so convert them to one format first"
        )


def _list_files(entries: list[tuple[str, str]]) -> str:
    listed = "; ".join(f"{path} ({reason})" for path, reason in entries[:_LISTED_FILES])
    more = len(entries) - _LISTED_FILES
    files = f"{len(entries)} file{'s' if len(entries) != 1 else ''}"
    return f"{files}: {listed}" + (f"; and {more} more" if more > 0 else "")


def _stats_of_items(
    items: Iterable[Any], total: int | None, progress: bool, skip_unreadable: bool
) -> ChannelStats:
    stats = ChannelStats()
    skipped: list[tuple[str, str]] = []
    with _progress_bar(total, progress) as bar:
        for index, item in enumerate(items):
            image = _image_of(item, index)
            if isinstance(image, tuple):  # a path that could not be read
                if not skip_unreadable:
                    raise OSError(f"cannot read {_list_files([image])}")
                skipped.append(image)
            else:
                try:
                    stats.update(image)
                except (TypeError, ValueError) as error:
                    raise type(error)(f"item {index}: {error}") from error
            bar.update(1)
    if skipped:
        warnings.warn(f"skipped {_list_files(skipped)}", stacklevel=3)
    if not stats.count and not skipped:
        raise ValueError("the source yielded no images")
    return stats


def _image_of(item: Any, index: int) -> Any:
    """The image in one item of a dataset: the item, the first of an ``(image, label)`` pair,
    ``item["image"]``, a PIL image as an array, or a file read (RGB order) by path."""
    if isinstance(item, (tuple, list)) and item:
        item = item[0]
    elif isinstance(item, dict) and "image" in item:
        item = item["image"]
    if isinstance(item, np.ndarray) or _is_tensor(item):
        return item
    if isinstance(item, (str, os.PathLike)):
        image = _read_image(os.fspath(item))
        if isinstance(image, str):
            return (os.fspath(item), image)
        if image.ndim == 3 and image.shape[2] in _RGB_ORDER:
            image = image[..., list(_RGB_ORDER[image.shape[2]])]
        return image
    if type(item).__module__.startswith("PIL."):
        return np.asarray(item)
    raise TypeError(
        f"item {index}: expected an image (NumPy array, torch tensor, PIL image or file path) or an "
        f"(image, label) pair; got {type(item).__name__}"
    )


def _progress_bar(total: int | None, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="img", desc="statistics", disable=not enabled)
