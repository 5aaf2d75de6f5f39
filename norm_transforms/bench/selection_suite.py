"""``nonzero=True``: statistics over the non-zero pixels of each image (a brain MRI or a CT slice
without its background), against the NumPy code people write for it and against our plain mode.

For each (dtype and size, where the zeros lie, mode), one thread: ours with ``nonzero=True``; the
plain mode (every pixel, the cost of the same call without a selection); and the NumPy code of
such pipelines (nnU-Net's z-score over a mask, generalized to each mode's statistic): a boolean
mask, each scope's values by boolean indexing, the statistic in float64, the affine in float32,
the zeros set back to 0. The two nonzero outputs are compared before anything is timed.

The zeros lie where they make the selection cheap or dear: outside a disc (a solid background,
whose flags a CPU predicts) or scattered as single pixels (dark pixels of a photo, noise), where
a gather that branches on each flag mispredicts about one flag in three.

python benchmarks/bench_nonzero.py [--markdown benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import platform
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from ..functional import normalize
from ..modes import DEFAULT_PERCENTILES, EPS, MODES, Mode
from ._timing import time_call
from .machine import machine_line, package_version
from .report import geomean, ms, render_table, write_section

TITLE = "## Statistics over non-zero pixels (nonzero=True)"
PEER = "NumPy boolean indexing"
MODE_NAMES = ("image", "image_per_channel", "min_max", "percentile", "robust_per_channel")
#: (dtype, size): a photo-sized uint8 image and an MRI-sized float32 slice, both RGB-shaped.
INPUTS = (("uint8", 224), ("float32", 512))
#: Where the zeros lie: 27 % scattered, or the ~40 % outside the disc of the image's inscribed
#: circle's 7/8.
ZEROS = ("scattered", "outside a disc")
SCATTERED_SHARE = 0.27


def make_image(dtype: str, size: int, zeros: str) -> np.ndarray:
    """A ``size``² RGB image of non-zero values, with whole pixels set to 0 as ``zeros`` says."""
    rng = np.random.default_rng(size)
    image = rng.integers(1, 256, (size, size, 3)).astype(dtype)
    if dtype == "float32":
        image /= np.float32(255.0)
    if zeros == "scattered":
        image[rng.random((size, size)) < SCATTERED_SHARE] = 0
    else:
        rows, columns = np.mgrid[:size, :size] - size / 2
        image[rows**2 + columns**2 > (size * 7 / 16) ** 2] = 0
    return image


def numpy_nonzero(image: np.ndarray, mode: Mode) -> np.ndarray:
    """The mode over the non-zero pixels as NumPy code writes it: a mask, each scope's values by
    boolean indexing, the statistic in float64, the affine in float32, the zeros back to 0."""
    selected = image != 0
    channels = image.shape[-1]
    scopes = [slice(c, c + 1) for c in range(channels)] if mode.per_channel else [slice(None)]
    values = image.astype(np.float32)
    out = np.empty_like(values)
    for scope in scopes:
        center, spread = _statistic(image[..., scope][selected[..., scope]].astype(np.float64), mode)
        out[..., scope] = (values[..., scope] - np.float32(center)) * np.float32(1.0 / (spread + EPS))
    if mode.clip is not None:
        np.clip(out, *mode.clip, out=out)
    out[~selected] = 0.0
    return out


def _statistic(values: np.ndarray, mode: Mode) -> tuple[float, float]:
    """(center, spread) of one scope's values: the mode's formula (modes.py)."""
    if mode.statistic == "mean_std":
        return values.mean(), values.std()
    if mode.statistic == "min_max":
        return values.min(), values.max() - values.min()
    if mode.statistic == "percentile":
        low, high = np.percentile(values, DEFAULT_PERCENTILES)
        return low, high - low
    lower, median, upper = np.percentile(values, (25.0, 50.0, 75.0))
    return median, upper - lower


def contenders(image: np.ndarray, mode: Mode) -> dict[str, Callable[[], np.ndarray]]:
    return {
        "ours": lambda: normalize(image, normalization=mode.name, nonzero=True),
        PEER: lambda: numpy_nonzero(image, mode),
        "plain mode": lambda: normalize(image, normalization=mode.name),
    }


def measure(
    inputs: tuple[tuple[str, int], ...], mode_names: tuple[str, ...], budget_s: float
) -> list[dict[str, Any]]:
    """One row per (input, zeros, mode): seconds per call of each contender."""
    rows = []
    for dtype, size in inputs:
        for zeros in ZEROS:
            image = make_image(dtype, size, zeros)
            for name in mode_names:
                calls = contenders(image, MODES[name])
                # Checked before timing: a peer that computed something else would be timed as
                # another implementation of the same thing.
                np.testing.assert_allclose(calls["ours"](), calls[PEER](), rtol=0, atol=2e-4, err_msg=PEER)
                seconds = {label: time_call(call, budget_s) for label, call in calls.items()}
                rows.append({"input": f"{dtype} {size}x{size}x3", "zeros": zeros, "mode": name, **seconds})
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    header = [
        "input", "zeros", "mode", "ours ms", f"{PEER} ms", "plain mode ms",
        f"{PEER} / ours", "ours / plain mode",
    ]  # fmt: skip
    table = [_table_row(row) for row in rows]
    speedups = [row[PEER] / row["ours"] for row in rows]
    lines = [
        TITLE,
        "",
        machine_line(),
        f"- Python {platform.python_version()}, NumPy {np.__version__}, OpenCV {cv2.__version__}, "
        f"norm-transforms {package_version('norm-transforms')}",
        "- Threads: one OpenCV thread; medians of repeated calls",
        f"- Zeros: {SCATTERED_SHARE:.0%} of the pixels scattered, or those outside a centered disc "
        "(~40 %); every other value non-zero",
        f"- {PEER}: the mask, each scope's values by boolean indexing, the statistic in float64, "
        "the affine in float32, `out[~mask] = 0` (nnU-Net's z-score, for each statistic)",
        "",
        f"- ours vs {PEER}: geometric mean {geomean(speedups):.2f}x faster, "
        f"least {min(speedups):.2f}x, most {max(speedups):.2f}x",
        "",
        render_table(header, table),
    ]
    return "\n".join(lines) + "\n"


def _table_row(row: dict[str, Any]) -> list[str]:
    times = [ms(row["ours"]), ms(row[PEER]), ms(row["plain mode"])]
    ratios = [f"{row[PEER] / row['ours']:.2f}x", f"{row['ours'] / row['plain mode']:.2f}x"]
    return [row["input"], row["zeros"], row["mode"], *times, *ratios]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", nargs="*", default=[], help="e.g. uint8:224 float32:512 (the default)")
    parser.add_argument(
        "--modes", nargs="*", default=list(MODE_NAMES), choices=sorted(set(MODES) - {"standard"})
    )
    parser.add_argument("--budget", type=float, default=0.3, help="seconds of timing per contender and cell")
    parser.add_argument("--markdown", default="", help="a RESULTS.md whose section this rewrites")
    args = parser.parse_args(argv)
    inputs = tuple((dtype, int(size)) for dtype, size in (item.split(":") for item in args.inputs)) or INPUTS
    cv2.setNumThreads(1)
    text = render(measure(inputs, tuple(args.modes), args.budget))
    print(text)
    if args.markdown:
        write_section(args.markdown, text)
    return 0
