"""``nonzero=True`` on Torch tensors (a batch of MRI slices or photos on the GPU), against the
Torch code people write for it and against our other routes.

For each (batch, where the zeros lie, mode), in one run: ours with ``nonzero=True`` (on CUDA,
the Triton kernels: each statistics kernel skips the zeros and the affine writes them back as
0); ours through Torch ops (the route of a CUDA tensor without Triton, and of every nonzero
call before the kernels took it: the selection as ``where`` over float32 copies); the plain
Torch code of such pipelines (MONAI's ``NormalizeIntensity(nonzero=True)``, generalized to each
mode: a loop over the scopes, each scope's values by boolean indexing, which waits for the
device to size them, the statistic, then the affine over the whole scope, the zeros back to 0);
and our plain mode (every pixel). The outputs are compared before anything is timed.

python benchmarks/bench_nonzero_torch.py --device cuda [--markdown benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import functools
import platform
from collections.abc import Callable
from typing import Any

import torch

from ..backends import torch as torch_backend
from ..backends.torch.ops import normalize_with_ops
from ..modes import DEFAULT_PERCENTILES, EPS, MODES, Mode, NormalizeParams
from ..threads import get_num_threads, set_num_threads
from . import _timing
from .cuda_timing import time_cuda
from .machine import machine_line, package_version
from .report import geomean, ms, render_table, write_section
from .selection_suite import SCATTERED_SHARE, ZEROS

TITLE = "## Statistics over non-zero pixels, Torch tensors"
PEER = "plain torch"
OPS = "ours, Torch ops"
MODE_NAMES = ("image", "image_per_channel", "min_max", "percentile", "robust_per_channel")
#: (dtype, shape): a batch of photos and a batch of MRI slices (BraTS: 240x240, one modality).
INPUTS = (("uint8", (64, 3, 224, 224)), ("float32", (32, 1, 240, 240)))

Call = Callable[[], torch.Tensor]


def make_batch(dtype: str, shape: tuple[int, ...], zeros: str, device: str) -> torch.Tensor:
    """A batch of non-zero values (float32: uint8 / 255), with whole pixels set to 0 as
    ``zeros`` says (``selection_suite.ZEROS``), the same bytes on every run and device."""
    generator = torch.Generator().manual_seed(_timing.SEED + shape[-1])
    batch = torch.randint(1, 256, shape, dtype=torch.uint8, generator=generator)
    height, width = shape[-2:]
    if zeros == "scattered":
        background = torch.rand((*shape[:-3], 1, height, width), generator=generator) < SCATTERED_SHARE
    else:
        rows = torch.arange(height).unsqueeze(1) - height / 2
        columns = torch.arange(width) - width / 2
        background = rows**2 + columns**2 > (min(height, width) * 7 / 16) ** 2
    batch = batch.masked_fill(background, 0)
    return (batch if dtype == "uint8" else batch.to(torch.float32) / 255).to(device)


def plain_torch_nonzero(x: torch.Tensor, mode: Mode) -> torch.Tensor:
    """The mode over the non-zero pixels as Torch code writes it (MONAI's NormalizeIntensity
    with ``nonzero=True``): per scope (a sample, or a channel of it), its values by boolean
    indexing, the statistic, the affine of the scope, the zeros back to 0."""
    out = x.to(torch.float32)
    scopes = out.flatten(0, -4) if out.ndim > 3 else out.unsqueeze(0)
    if mode.per_channel:
        scopes = scopes.flatten(0, 1).unsqueeze(1)
    for scope in scopes:  # views of ``out``: written in place
        selected = scope != 0
        center, spread = _statistic(scope[selected], mode)
        scope.copy_(torch.where(selected, (scope - center) / (spread + EPS), 0.0))
    return out if mode.clip is None else out.clamp_(*mode.clip)  # every clip range holds 0


def _statistic(values: torch.Tensor, mode: Mode) -> tuple[torch.Tensor, torch.Tensor]:
    """(center, spread) of one scope's values: the mode's formula (modes.py)."""
    if mode.statistic == "mean_std":
        return values.mean(), values.std(correction=0)
    if mode.statistic == "min_max":
        low = values.min()
        return low, values.max() - low
    fractions = (25.0, 50.0, 75.0) if mode.statistic == "robust" else DEFAULT_PERCENTILES
    quantiles = torch.quantile(values, torch.tensor(fractions, device=values.device) / 100)
    if mode.statistic == "robust":
        return quantiles[1], quantiles[2] - quantiles[0]
    return quantiles[0], quantiles[1] - quantiles[0]


def contenders(x: torch.Tensor, mode: Mode) -> dict[str, Call]:
    """Ours, ours through Torch ops, the plain Torch code and our plain mode, float32 out."""
    params = NormalizeParams.build(max_pixel_value=None, normalization=mode.name, nonzero=True)
    plain = NormalizeParams.build(max_pixel_value=None, normalization=mode.name)
    return {
        "ours": functools.partial(torch_backend.normalize, x, params, dtype=torch.float32),
        OPS: lambda: normalize_with_ops(x, params, torch.float32, False)[0],
        PEER: lambda: plain_torch_nonzero(x, mode),
        "plain mode": functools.partial(torch_backend.normalize, x, plain, dtype=torch.float32),
    }


def check_agreement(calls: dict[str, Call], label: str) -> None:
    """Refuse to time a contender whose output differs from ours: its ratio would compare two
    computations of different things."""
    expected = calls["ours"]()
    for name in (OPS, PEER):
        torch.testing.assert_close(
            calls[name](),
            expected,
            atol=2e-4,
            rtol=0,
            msg=lambda message, n=name: f"{n} on {label}: {message}",
        )


def measure(
    inputs: tuple[tuple[str, tuple[int, ...]], ...], mode_names: tuple[str, ...], device: str, budget_s: float
) -> list[dict[str, Any]]:
    """One row per (input, zeros, mode): seconds per call of each contender (CUDA-event medians
    on a GPU, wall-clock medians on the CPU)."""
    timed = time_cuda if device == "cuda" else _timing.time_call
    rows = []
    for dtype, shape in inputs:
        for zeros in ZEROS:
            batch = make_batch(dtype, shape, zeros, device)
            label = f"{dtype} {'x'.join(map(str, shape))}"
            for name in mode_names:
                calls = contenders(batch, MODES[name])
                check_agreement(calls, f"{label}, {zeros}, {name}")
                seconds = {contender: timed(call, budget_s) for contender, call in calls.items()}
                rows.append({"input": label, "zeros": zeros, "mode": name, **seconds})
    return rows


def render(rows: list[dict[str, Any]], device: str) -> str:
    header = [
        "input", "zeros", "mode", "ours ms", f"{OPS} ms", f"{PEER} ms", "plain mode ms",
        f"{PEER} / ours", f"{OPS} / ours", "ours / plain mode",
    ]  # fmt: skip
    speedups = [row[PEER] / row["ours"] for row in rows]
    route = torch_backend.route(torch.zeros(1, device=device), NormalizeParams.build(normalization="image"))
    lines = [
        f"{TITLE} ({device})",
        "",
        machine_line(),
        _gpu_line(device),
        f"- Python {platform.python_version()}, torch {torch.__version__}, "
        f"norm-transforms {package_version('norm-transforms')}; torch threads {torch.get_num_threads()}, "
        f"our C kernels' threads {get_num_threads()}",
        f"- ours = `normalize(x, nonzero=True)` on its route here (`{route}`), float32 out; {OPS} = the "
        "same through Torch ops (`where` over the selection): CUDA's route without Triton",
        f"- {PEER} = MONAI's `NormalizeIntensity(nonzero=True)` generalized to each mode: per scope, "
        "`x[x != 0]` (the device waits to size it), the statistic (`torch.quantile` for percentiles), "
        "the affine, the zeros back to 0",
        f"- Zeros: {SCATTERED_SHARE:.0%} of the pixels scattered, or those outside a centered disc "
        "(~40 %); every other value non-zero. "
        + ("CUDA-event medians, L2 flushed" if device == "cuda" else "wall-clock medians"),
        "",
        f"- ours vs {PEER}: geometric mean {geomean(speedups):.2f}x faster, "
        f"least {min(speedups):.2f}x, most {max(speedups):.2f}x",
        "",
        render_table(header, [_table_row(row) for row in rows]),
    ]
    return "\n".join(line for line in lines if line is not None) + "\n"


def _gpu_line(device: str) -> str | None:
    if device != "cuda":
        return None
    return f"- GPU: {torch.cuda.get_device_name()}"


def _table_row(row: dict[str, Any]) -> list[str]:
    times = [ms(row["ours"]), ms(row[OPS]), ms(row[PEER]), ms(row["plain mode"])]
    ratios = [row[PEER] / row["ours"], row[OPS] / row["ours"], row["ours"] / row["plain mode"]]
    return [row["input"], row["zeros"], row["mode"], *times, *(f"{value:.2f}x" for value in ratios)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    parser.add_argument(
        "--inputs", nargs="*", default=[], help="e.g. uint8:64x3x224x224 float32:32x1x240x240 (the default)"
    )
    parser.add_argument(
        "--modes", nargs="*", default=list(MODE_NAMES), choices=sorted(set(MODES) - {"standard"})
    )
    parser.add_argument("--budget", type=float, default=0.3, help="seconds of timing per contender and cell")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch and our kernels' threads on the CPU (default 1: a loader worker's)",
    )
    parser.add_argument("--markdown", default="", help="a RESULTS.md whose section this rewrites")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here (--device cpu times the CPU route)")
    inputs = (
        tuple(
            (dtype, tuple(int(size) for size in shape.split("x")))
            for dtype, shape in (item.split(":") for item in args.inputs)
        )
        or INPUTS
    )
    # OpenCV's, torch's and our C kernels' threads (their defaults again after): a pool of
    # spinning threads beside another process made plain torch's boolean indexing 100x slower.
    _timing.set_threads(args.threads)
    set_num_threads(args.threads)
    try:
        text = render(measure(inputs, tuple(args.modes), args.device, args.budget), args.device)
    finally:
        _timing.set_threads(None)
        set_num_threads(None)
    print(text)
    if args.markdown:
        write_section(args.markdown, text)
    return 0
