"""``NormalizeLayer`` eager and under ``torch.compile``: what a model's first layer costs per
forward, and whether compiling the model makes it slower (issue 13 asks for at least the eager
speed, under CUDA graphs too, with one graph and no break).

For each (shape, output dtype), uint8 in: the eager layer, ``torch.compile(layer)`` and, on
CUDA, ``torch.compile(layer, mode="reduce-overhead")`` (CUDA graphs), each compiled before it is
timed, and the graphs and breaks that ``torch._dynamo.explain`` finds. On CUDA the times are
CUDA-event medians with a cold L2 (``cuda_timing``), and each cell also reports its share of a
same-size device copy; on CPU, wall-clock medians.

python benchmarks/bench_layer.py [--device cuda] [--markdown benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import functools
import platform
from collections.abc import Callable
from typing import Any

import torch

from ..adapters.nn import NormalizeLayer
from ._timing import time_call
from .machine import machine_line, package_version
from .report import ms, render_table, write_section

SHAPES = {
    "cpu": ((3, 224, 224), (32, 3, 224, 224)),
    "cuda": ((3, 224, 224), (32, 3, 224, 224), (256, 3, 224, 224)),
}
OUT_DTYPES = (torch.float32, torch.float16)


def title(device: str) -> str:
    return f"## NormalizeLayer, eager and torch.compile ({device.upper()})"


def variants(layer: NormalizeLayer, device: str) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """The layer as a model would run it: eager, compiled, and on CUDA compiled with CUDA graphs."""
    compiled = {"eager": layer, "torch.compile": torch.compile(layer, dynamic=False)}
    if device == "cuda":
        compiled["reduce-overhead"] = torch.compile(layer, mode="reduce-overhead", dynamic=False)
    return compiled


def timer(device: str, budget_s: float) -> Callable[[Callable[[], Any]], float]:
    if device == "cuda":
        from .cuda_timing import time_cuda

        return functools.partial(time_cuda, budget_s=budget_s)
    return functools.partial(time_call, budget_s=budget_s)


def measure(device: str, shapes: tuple[tuple[int, ...], ...], budget_s: float) -> list[dict[str, Any]]:
    """One row per (shape, output dtype): seconds per forward of each variant, graphs and breaks."""
    timed = timer(device, budget_s)
    generator = torch.Generator().manual_seed(0)
    rows = []
    for shape in shapes:
        x = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator).to(device)
        for out_dtype in OUT_DTYPES:
            # Every cell compiles afresh: past Dynamo's recompile limit (8 per function) a forward
            # would silently run eager.
            torch._dynamo.reset()
            layer = NormalizeLayer(dtype=out_dtype).to(device)
            explanation = torch._dynamo.explain(layer)(x)
            calls = variants(layer, device)
            expected = layer(x)
            for name, call in calls.items():
                for _ in range(3):  # compiled on the first call; CUDA graphs recorded on the second
                    out = call(x)
                atol = 1e-6 if out_dtype == torch.float32 else 1e-3
                message = functools.partial("{}: {}".format, name)
                torch.testing.assert_close(out, expected, rtol=0, atol=atol, msg=message)
            row: dict[str, Any] = {
                "shape": "x".join(map(str, shape)),
                "out": str(out_dtype).removeprefix("torch."),
                "graphs": explanation.graph_count,
                "breaks": explanation.graph_break_count,
                "bytes": x.numel() * (1 + out_dtype.itemsize),
            }
            row.update({name: timed(functools.partial(call, x)) for name, call in calls.items()})
            rows.append(row)
    return rows


def render(rows: list[dict[str, Any]], device: str, copy_bandwidth: float | None) -> str:
    variant_names = [name for name in ("eager", "torch.compile", "reduce-overhead") if name in rows[0]]
    header = [
        title(device),
        "",
        machine_line(),
        f"- Python {platform.python_version()}, torch {torch.__version__}, "
        f"norm-transforms {package_version('norm-transforms')}; torch threads {torch.get_num_threads()}",
    ]
    if device == "cuda":
        header.append(f"- GPU: {torch.cuda.get_device_name()}; CUDA-event medians, L2 flushed before each")
        header.append(f"- device copy: {copy_bandwidth / 1e12:.2f} TB/s read + write (1 GiB): % of copy")
    else:
        header.append("- wall-clock medians of single forwards")
    header += [
        "- uint8 (N, 3, H, W) in; eager = `NormalizeLayer(dtype=...)(x)`; torch.compile = "
        "`torch.compile(layer, dynamic=False)`; on CUDA, reduce-overhead = the same with CUDA graphs",
        "- speed-up = eager / compiled (above 1: compiling the model makes the layer faster); graphs and "
        "breaks: `torch._dynamo.explain(layer)`",
        "",
        "",
    ]
    columns = ["shape", "out", "graphs", "breaks", *(f"{name} ms" for name in variant_names)]
    columns += [f"speed-up {name}" for name in variant_names[1:]]
    if copy_bandwidth:
        columns += [f"% of copy {name}" for name in variant_names]
    table = []
    for row in rows:
        values = [row["shape"], row["out"], str(row["graphs"]), str(row["breaks"])]
        values += [ms(row[name]) for name in variant_names]
        values += [f"{row['eager'] / row[name]:.2f}" for name in variant_names[1:]]
        if copy_bandwidth:
            values += [f"{100 * row['bytes'] / row[name] / copy_bandwidth:.0f} %" for name in variant_names]
        table.append(values)
    return "\n".join(header) + render_table(columns, table) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--shapes", nargs="*", default=[], help="e.g. 3x224x224 (default: by device)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (CPU; default 1)")
    parser.add_argument("--budget", type=float, default=0.3, help="seconds of timing per variant and cell")
    parser.add_argument("--markdown", default="", help="a RESULTS.md whose section this rewrites")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device")
    shapes = tuple(tuple(map(int, shape.split("x"))) for shape in args.shapes) or SHAPES[args.device]
    # One thread by default: the compiled CPU kernels' OpenMP threads spin while they wait, and a
    # core that anything else uses made a 3x32x32 forward take 6 ms instead of 0.04 (2 cores).
    torch.set_num_threads(args.threads)
    copy_bandwidth = None
    if args.device == "cuda":
        from .cuda_timing import copy_bandwidth as measure_copy

        copy_bandwidth = measure_copy(args.budget)
    text = render(measure(args.device, shapes, args.budget), args.device, copy_bandwidth)
    print(text)
    if args.markdown:
        write_section(args.markdown, text)
    return 0
