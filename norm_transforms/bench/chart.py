"""``norm-transforms bench --chart``: the NumPy suite's cells as bars of time / floor."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np


def chart(cells: list[Any], peers: list[str], path: str | Path, threads: str = "single") -> None:
    """Bars of time / floor (lower is better, log scale) per cell and contender, one panel per
    dtype; ``cells`` are :class:`.numpy_suite.Cell`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [c for c in cells if c.threads == threads]
    dtypes = list(dict.fromkeys(c.dtype for c in rows))
    contenders = ["ours", *peers]
    fig, axes = plt.subplots(len(dtypes), 1, figsize=(13, 3.6 * len(dtypes)), squeeze=False)
    width = 0.8 / len(contenders)
    for axis, dtype in zip(axes[:, 0], dtypes, strict=True):
        group = [c for c in rows if c.dtype == dtype]
        x = np.arange(len(group))
        for index, name in enumerate(contenders):
            ratios = [c.seconds.get(name, math.nan) / c.seconds["floor"] for c in group]
            axis.bar(x + (index - (len(contenders) - 1) / 2) * width, ratios, width, label=name)
        axis.axhline(1.0, color="black", linewidth=0.8, linestyle="--", label="floor")
        axis.set_yscale("log")
        axis.set_xticks(x, [f"{c.mode.replace('_per_channel', '/ch')}\n{c.size}²" for c in group], fontsize=7)
        axis.set_ylabel("time / floor (log)")
        axis.set_title(f"{dtype} RGB input, {threads} thread: lower is better")
        axis.legend(fontsize=8, ncol=len(contenders) + 1)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
