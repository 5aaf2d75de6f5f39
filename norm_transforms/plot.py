"""Per-channel histograms of images before and after normalization, in one figure.

``plot_histograms`` pools every pixel of the images it gets (each image is normalized on its
own, with its own statistics in the per-image modes), so one figure answers "what does the
model see for this data?". Each channel's mean and std are written beside its histogram, with
the fraction of values at the ends of the range: of the input at 0 and full scale (saturated
pixels), of the output at the mode's clip bounds, within 0.1% of the clip span (``standard``
has no clip). That counts what the clip cut off, and in the ``min_max`` and ``percentile``
modes also the pixels at the image's minimum and maximum (percentiles), which land on 0 and a
hair under 1: the pixels at the ends of the output range.

matplotlib (the ``plot`` extra) is imported when a figure is first drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._optional import require
from .dtypes import NUMPY_DTYPES
from .functional import normalize
from .modes import IMAGENET_MEAN, IMAGENET_STD, MODES, Mode, NormalizeParams, default_max_pixel_value
from .presets import Preset, get_preset
from .stats import ChannelStats

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_CHANNEL_COLORS = {"R": "#d62728", "G": "#2ca02c", "B": "#1f77b4", "A": "#7f7f7f", "gray": "#333333"}
_OTHER_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#ff7f0e")


@dataclass(frozen=True)
class ChannelSummary:
    """One channel, pooled over every image: input statistics (pixel units) and normalized ones.

    ``at_range_ends``: fraction of input values at or beyond ``range_low`` (0, or the lowest
    value of a signed integer type) and ``full_scale`` (for signed types, their largest value);
    ``at_clip_bounds``: fraction of normalized values at the mode's clip bounds (``None`` for a
    mode without a clip).
    """

    name: str
    mean: float
    std: float
    full_scale: float
    at_range_ends: float
    normalized_mean: float
    normalized_std: float
    clip: tuple[float, float] | None
    at_clip_bounds: float | None
    range_low: float = 0.0

    def describe_input(self) -> str:
        """``mean 82.48  std 79.59  at 0/255  1.70%``: the input's numbers, as the figure shows them."""
        ends = f"at {self.range_low:g}/{self.full_scale:g} {self.at_range_ends:>6.2%}"
        return f"mean {_number(self.mean):>8}  std {_number(self.std):>8}  {ends}"

    def describe_output(self) -> str:
        """``mean -0.7054  std 1.3630  no clip``: the normalized numbers, as the figure shows them."""
        if self.clip is None or self.at_clip_bounds is None:
            ends = "no clip"
        else:
            ends = f"at {_bounds_text(self.clip)} {self.at_clip_bounds:>6.2%}"
        return f"mean {_number(self.normalized_mean):>8}  std {_number(self.normalized_std):>8}  {ends}"


@dataclass(frozen=True)
class _Pooled:
    """Every pixel of every image, per channel, before and after normalization."""

    names: tuple[str, ...]
    before: list[list[np.ndarray]]  # [channel][image]: flat values
    after: list[list[np.ndarray]]
    dtype: np.dtype
    images: int
    full_scale: float
    range_low: float
    mode: Mode
    headline: str
    detail: list[str]


def summarize_channels(
    images: np.ndarray | Sequence[np.ndarray],
    normalized: np.ndarray | Sequence[np.ndarray] | None = None,
    *,
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
    max_pixel_value: float | None = 255.0,
    normalization: str = "standard",
    preset: str | Preset | None = None,
    channel_names: Sequence[str] | None = None,
    **normalize_options: Any,
) -> ChannelSummaries:
    """The numbers ``plot_histograms`` writes on its figure, one ``ChannelSummary`` per channel,
    in a list whose :meth:`~ChannelSummaries.plot` draws that figure without normalizing the
    images again (``norm-transforms inspect`` prints the numbers and saves the figure).

    >>> image = np.zeros((4, 4), np.uint8)
    >>> summarize_channels(image)[0].at_range_ends
    1.0
    """
    constants = {"mean": mean, "std": std, "max_pixel_value": max_pixel_value, "preset": preset}
    return ChannelSummaries(
        _pool(images, normalized, normalization, channel_names, constants, normalize_options)
    )


def plot_histograms(
    images: np.ndarray | Sequence[np.ndarray],
    normalized: np.ndarray | Sequence[np.ndarray] | None = None,
    *,
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
    max_pixel_value: float | None = 255.0,
    normalization: str = "standard",
    preset: str | Preset | None = None,
    channel_names: Sequence[str] | None = None,
    bins: int = 256,
    log: bool = False,
    title: str | None = None,
    **normalize_options: Any,
) -> Figure:
    """Per-channel histograms of ``images`` before and after normalization, as a matplotlib
    ``Figure`` with two panels, each channel's mean, std and saturated / clipped fraction in
    the legend.

    ``images``: one ``(H, W)`` or ``(H, W, C)`` array, or a list of them (sizes may differ,
    channel counts may not), pooled into one histogram per channel. ``normalized``: the
    matching output of your own pipeline; by default each image goes through
    :func:`norm_transforms.normalize` with ``mean``, ``std`` (ImageNet unless given),
    ``max_pixel_value``, ``normalization`` and ``normalize_options``. ``preset`` takes mean
    and std from :data:`norm_transforms.PRESETS` (standard mode; BGR presets expect BGR
    images and label the channels so). ``log`` puts counts on a log scale.

    The figure is not registered with pyplot (no global state, nothing to close): save it with
    ``fig.savefig("out.png")``, or show it in Jupyter once the inline backend is active
    (``%matplotlib inline``).

    >>> fig = plot_histograms(image, preset="clip")  # doctest: +SKIP
    >>> fig.savefig("histograms.png")  # doctest: +SKIP
    """
    _figure_class(bins)  # before the work: a missing matplotlib or bad bins fails at once
    constants = {"mean": mean, "std": std, "max_pixel_value": max_pixel_value, "preset": preset}
    pooled = _pool(images, normalized, normalization, channel_names, constants, normalize_options)
    return ChannelSummaries(pooled).plot(bins=bins, log=log, title=title)


class ChannelSummaries(list):  # list[ChannelSummary]
    """What :func:`summarize_channels` returns: one :class:`ChannelSummary` per channel, and the
    pooled values they summarize, from which :meth:`plot` draws the figure."""

    def __init__(self, pooled: _Pooled) -> None:
        super().__init__(_summaries(pooled))
        self._pooled = pooled

    def plot(self, *, bins: int = 256, log: bool = False, title: str | None = None) -> Figure:
        """The figure of :func:`plot_histograms` (``bins``, ``log`` and ``title`` as there), from
        the images already normalized."""
        figure = _figure_class(bins)(figsize=(12.5, 7.5), layout="constrained")
        pooled = self._pooled
        before_axes, after_axes = figure.subplots(2, 1)
        integer = pooled.dtype.kind in "ui"
        before_lines = [
            f"full scale {pooled.full_scale:g}; at {pooled.range_low:g}/{pooled.full_scale:g}: "
            "share of pixels at either end"
        ]
        _draw_panel(before_axes, pooled.before, self, bins, integer, log, before_lines, before=True)
        _draw_panel(after_axes, pooled.after, self, bins, False, log, pooled.detail, before=False)
        _mark_output_landmarks(after_axes, pooled.mode)
        plural = "s" if pooled.images != 1 else ""
        before_axes.set_title(f"Before: {pooled.dtype} pixels", loc="left", fontweight="bold")
        before_axes.set_xlabel("pixel value")
        after_axes.set_title(f"After: {pooled.headline}", loc="left", fontweight="bold")
        after_axes.set_xlabel("normalized value")
        pixels = sum(values.size for values in pooled.before[0])
        channels = f"{len(pooled.names)} channel{'s' if len(pooled.names) != 1 else ''}"
        figure.suptitle(
            title or f"{pooled.images} image{plural}, {channels}, {pixels:,} pixels per channel", fontsize=13
        )
        return figure


def _figure_class(bins: Any) -> Any:
    """matplotlib's ``Figure`` (an ImportError naming the plot extra without it), once ``bins``
    is checked."""
    figure_class = require("matplotlib.figure", "plot_histograms").Figure
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise ValueError(f"bins must be an integer of at least 2, got {bins!r}")
    return figure_class


def _as_image_list(images: Any, argument: str) -> list[np.ndarray]:
    listed = [images] if isinstance(images, np.ndarray) else list(images)
    if not listed:
        raise ValueError(f"{argument} is empty; pass one image or a list of images")
    for index, image in enumerate(listed):
        if not isinstance(image, np.ndarray) or image.ndim not in (2, 3):
            shape = getattr(image, "shape", type(image).__name__)
            raise ValueError(
                f"{argument}[{index}] must be an (H, W) or (H, W, C) NumPy array, got {shape}; "
                "pass a batch as a list of images"
            )
    return listed


def _channels(image: np.ndarray) -> int:
    return 1 if image.ndim == 2 else image.shape[-1]


def _pool(
    images: Any,
    normalized: Any,
    normalization: str,
    channel_names: Sequence[str] | None,
    constants: dict[str, Any],
    normalize_options: dict[str, Any],
) -> _Pooled:
    """Validate the images, normalize them unless ``normalized`` is given, split the channels.

    ``constants``: ``mean``, ``std``, ``max_pixel_value`` and ``preset`` as the caller gave them.
    """
    inputs = _as_image_list(images, "images")
    channels, dtype = _channels(inputs[0]), inputs[0].dtype
    for index, image in enumerate(inputs):
        if _channels(image) != channels or image.dtype != dtype:
            raise ValueError(
                f"every image needs the same channel count and dtype: images[0] has {channels} "
                f"({dtype}), images[{index}] has {_channels(image)} ({image.dtype})"
            )
    max_pixel_value = constants["max_pixel_value"]
    mean, std, resolved_preset = _constants(
        constants["mean"], constants["std"], constants["preset"], normalization
    )
    # Checked here even when ``normalized`` is given: the labels and clip lines read the mode.
    NormalizeParams.build(mean, std, max_pixel_value, normalization)
    if normalized is None:
        options = {"max_pixel_value": max_pixel_value, "normalization": normalization, **normalize_options}
        outputs = [normalize(image, mean, std, **options) for image in inputs]
    else:
        outputs = _as_image_list(normalized, "normalized")
        if [o.shape for o in outputs] != [i.shape for i in inputs]:
            raise ValueError(
                "normalized must match images one for one, shape for shape; got shapes "
                f"{[o.shape for o in outputs]} for images of shapes {[i.shape for i in inputs]}"
            )
    names = _channel_names(channels, channel_names, resolved_preset)
    range_low, full_scale = _range_ends(np.dtype(dtype), max_pixel_value)
    headline, detail = _describe(normalization, mean, std, max_pixel_value, resolved_preset)
    return _Pooled(
        names=names,
        before=_per_channel(inputs, channels),
        after=_per_channel(outputs, channels),
        dtype=np.dtype(dtype),
        images=len(inputs),
        full_scale=full_scale,
        range_low=range_low,
        mode=MODES[normalization],
        headline=headline,
        detail=detail,
    )


def _constants(
    mean: Any, std: Any, preset: str | Preset | None, normalization: str
) -> tuple[Any, Any, Preset | None]:
    """``mean`` and ``std`` to normalize with: the preset's, the ones given, or ImageNet's."""
    if preset is None:
        return (IMAGENET_MEAN if mean is None else mean), (IMAGENET_STD if std is None else std), None
    if mean is not None or std is not None:
        raise ValueError("pass either preset or mean/std, not both (the preset sets mean and std)")
    if normalization != "standard":
        raise ValueError(
            "a preset sets mean and std, which only the standard mode uses; "
            f"got normalization={normalization!r}"
        )
    resolved = get_preset(preset)
    return resolved.mean, resolved.std, resolved


def _channel_names(channels: int, given: Sequence[str] | None, preset: Preset | None) -> tuple[str, ...]:
    if given is not None:
        if len(given) != channels:
            raise ValueError(f"channel_names has {len(given)} names but the images have {channels} channels")
        return tuple(given)
    order = tuple(preset.channel_order) if preset is not None else ("R", "G", "B")
    if channels == 1:
        return ("gray",)
    if channels in (3, 4):
        return (*order, "A")[:channels]
    return tuple(f"channel {c}" for c in range(channels))


def _per_channel(images: list[np.ndarray], channels: int) -> list[list[np.ndarray]]:
    """Each channel's values, one flat array per image (kept apart: each has its own levels)."""
    return [[image.reshape(-1, channels)[:, c] for image in images] for c in range(channels)]


def _summaries(pooled: _Pooled) -> list[ChannelSummary]:
    clip = pooled.mode.clip
    # Within 0.1% of the span counts as at a clip bound: the range modes land the maximum a hair
    # under 1 (eps in the divisor), in the outermost bin of the histogram.
    near = 0.0 if clip is None else 1e-3 * (clip[1] - clip[0])
    summaries = []
    for name, before, after in zip(pooled.names, pooled.before, pooled.after, strict=True):
        (mean, std), (normalized_mean, normalized_std) = _mean_std(before), _mean_std(after)
        at_clip_bounds = None if clip is None else _share_at_ends(after, clip[0] + near, clip[1] - near)
        summaries.append(
            ChannelSummary(
                name=name,
                mean=mean,
                std=std,
                full_scale=pooled.full_scale,
                at_range_ends=_share_at_ends(before, pooled.range_low, pooled.full_scale),
                normalized_mean=normalized_mean,
                normalized_std=normalized_std,
                clip=clip,
                at_clip_bounds=at_clip_bounds,
                range_low=pooled.range_low,
            )
        )
    return summaries


def _range_ends(dtype: np.dtype, max_pixel_value: float | None) -> tuple[float, float]:
    """The input values counted as saturated: 0 and the full scale (``max_pixel_value``, or the
    dtype's). Signed integers (CT in Hounsfield units) have no full scale, and their
    ``max_pixel_value`` is a unit, not a ceiling: their ends are the dtype's own limits."""
    if dtype.kind == "i":
        info = np.iinfo(dtype)
        return float(info.min), float(info.max)
    return 0.0, default_max_pixel_value(dtype) if max_pixel_value is None else float(max_pixel_value)


def _share_at_ends(images: list[np.ndarray], low: float, high: float) -> float:
    """The fraction of one channel's values, over every image, at or below ``low`` or at or
    above ``high``."""
    selected = sum(np.count_nonzero((values <= low) | (values >= high)) for values in images)
    return float(selected / sum(values.size for values in images))


def _mean_std(images: list[np.ndarray]) -> tuple[float, float]:
    """One channel's mean and population std over every image, pooled as the dataset statistics
    pool them (``ChannelStats``: exact for integer pixels); NaN where a value is NaN or infinite,
    which those refuse."""
    if any(values.dtype.kind == "f" and not np.isfinite(values).all() for values in images):
        return math.nan, math.nan
    stats = ChannelStats()
    for values in images:
        if values.size:  # (P, 1): one channel
            stats.update((values if values.dtype in NUMPY_DTYPES else values.astype(np.float64))[:, None])
    if not stats.count:
        return math.nan, math.nan
    return float(stats.mean[0]), float(stats.std[0])


def _describe(
    normalization: str, mean: Any, std: Any, max_pixel_value: float | None, preset: Preset | None
) -> tuple[str, list[str]]:
    """A short headline for the "after" panel and the constants or statistics behind it."""
    mode = MODES[normalization]
    clip = []  # each legend row says "no clip" already
    if mode.clip:
        clip = [
            f"clip to [{mode.clip[0]:g}, {mode.clip[1]:g}]; at {_bounds_text(mode.clip)}: share at the bounds"
        ]
    if mode.statistic is None:
        headline = "standard" + (f", preset '{preset.name}' ({preset.channel_order})" if preset else "")
        scale = "dtype full scale" if max_pixel_value is None else f"{max_pixel_value:g}"
        constants = [f"mean={_values_text(mean)}", f"std={_values_text(std)}", f"max_pixel_value={scale}"]
        return headline, constants + clip
    scope = "per channel" if mode.per_channel else "over all channels"
    return normalization, [f"statistics of each image, {scope}", *clip]


def _values_text(values: Any) -> str:
    flat = np.atleast_1d(np.asarray(values, dtype=np.float64))
    return "(" + ", ".join(f"{v:.4g}" for v in flat) + ")"


def _number(value: float) -> str:
    """4 decimals near 0 (normalized values, float images), fewer for pixel units; never -0."""
    decimals = 4 if abs(value) < 10 else 2 if abs(value) < 1000 else 1
    return f"{round(value, decimals) + 0.0:.{decimals}f}"


def _bounds_text(clip: tuple[float, float]) -> str:
    low, high = clip
    return f"±{high:g}" if low == -high else f"{low:g}/{high:g}"


def _panel_edges(channels: list[list[np.ndarray]], bins: int, integer: bool) -> np.ndarray:
    """Bin edges shared by every channel of a panel: one bin per value for integer pixels whose
    span fits in ``bins``, else ``bins`` uniform bins over the finite range."""
    finite = [values[np.isfinite(values)] for images in channels for values in images]
    present = [values for values in finite if values.size]
    if not present:
        return np.linspace(-0.5, 0.5, bins + 1)
    low = float(min(values.min() for values in present))
    high = float(max(values.max() for values in present))
    if integer and high - low + 1 <= bins:
        return np.arange(low, high + 2) - 0.5
    half_bin = (high - low) / bins / 2 or 0.5
    return np.linspace(low - half_bin, high + half_bin, bins + 1)


# More distinct values than this in one image and channel: continuous data, binned as it is.
_MAX_LEVELS = 4096


def _histogram(images: list[np.ndarray], edges: np.ndarray, spread: bool = True) -> np.ndarray:
    """Counts per bin over every image, each distinct level spread over its image's level step.

    Normalized 8-bit data has one level per input value, a step apart; bins about one step wide
    would alias into combs of empty and double bins, and images with different steps
    interleave. Spreading each level evenly over one step (the median gap between the image's
    levels; at most 4 bins, so that a few far-apart colours stay apart) before binning gives
    smooth histograms of the same total. ``spread=False`` bins the values as they are (integer
    pixels in one bin per value need nothing else).
    """
    counts = np.zeros(len(edges) - 1)
    bin_width = float(np.min(np.diff(edges)))
    for values in images:
        finite = values[np.isfinite(values)].astype(np.float64)
        if finite.size == 0:
            continue
        if not spread or np.unique(finite[:65536]).size > _MAX_LEVELS:  # early exit: continuous data
            counts += np.histogram(finite, bins=edges)[0]
            continue
        levels, level_counts = np.unique(finite, return_counts=True)
        if levels.size < 2 or levels.size > _MAX_LEVELS:
            counts += np.histogram(finite, bins=edges)[0]
            continue
        # The median, not the smallest gap: a clip bound can sit a hair from the nearest level.
        width = min(float(np.median(np.diff(levels))), 4 * bin_width)
        # Share of each level's count left of each edge, then the counts between edges.
        left_of_edge = np.clip((edges[:, None] - levels + width / 2) / width, 0.0, 1.0)
        counts += np.diff(left_of_edge @ level_counts)
    return counts


def _channel_color(name: str, index: int) -> str:
    return _CHANNEL_COLORS.get(name, _OTHER_COLORS[index % len(_OTHER_COLORS)])


def _draw_panel(
    axes: Any,
    channels: list[list[np.ndarray]],
    summaries: list[ChannelSummary],
    bins: int,
    integer: bool,
    log: bool,
    detail: list[str],
    before: bool,
) -> None:
    edges = _panel_edges(channels, bins, integer)
    one_bin_per_value = integer and np.allclose(np.diff(edges), 1.0)
    name_width = max(len(summary.name) for summary in summaries)
    for index, (images, summary) in enumerate(zip(channels, summaries, strict=True)):
        color = _channel_color(summary.name, index)
        counts = _histogram(images, edges, spread=not one_bin_per_value)
        fraction = counts / max(sum(values.size for values in images), 1)
        numbers = summary.describe_input() if before else summary.describe_output()
        label = f"{summary.name:<{name_width}}  {numbers}"
        axes.stairs(fraction, edges, fill=True, color=color, alpha=0.15, linewidth=0)
        axes.stairs(fraction, edges, color=color, linewidth=1.4, label=label)
        channel_mean = summary.mean if before else summary.normalized_mean
        if np.isfinite(channel_mean):
            axes.axvline(channel_mean, color=color, linestyle=":", linewidth=1.2)
    if log:
        axes.set_yscale("log")
    else:
        axes.set_ylim(bottom=0)
    axes.set_xlim(edges[0], edges[-1])
    axes.set_ylabel("fraction of pixels")
    axes.grid(alpha=0.25)
    axes.legend(
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        prop={"family": "monospace", "size": 9},
        title="\n".join([*detail, "dotted line: channel mean"]),
        title_fontsize=9,
        alignment="left",
        frameon=False,
    )


def _mark_output_landmarks(axes: Any, mode: Mode) -> None:
    """A line at 0 and at the clip bounds, where they fall inside the plotted range."""
    low, high = axes.get_xlim()
    margin = 0.02 * (high - low)
    if low - margin <= 0.0 <= high + margin:
        axes.axvline(0.0, color="black", linewidth=0.9)
    for bound in mode.clip or ():
        if low - margin <= bound <= high + margin:
            axes.axvline(bound, color="black", linestyle="--", linewidth=1.0)
            right_half = bound > (low + high) / 2  # label on the inner side of the line
            axes.annotate(
                f"clip {bound:g}",
                xy=(bound, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(-4 if right_half else 4, -12),
                textcoords="offset points",
                ha="right" if right_half else "left",
                fontsize=8.5,
            )
