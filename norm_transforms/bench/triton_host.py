"""Host time per call of the CUDA route, measured without a GPU.

On a GPU a small image costs what the host spends per call, not what the device does: the
Python of the call, then for each kernel launch Triton's argument binding and cache lookup,
then the driver's launch. This measures the first two on any machine. The Triton kernels
compile for a CUDA target without a device (:class:`CompileOnlyDriver`), and each launch stops
where the driver would start (:func:`stub_launches`). The peer is the plain Torch code of each
mode (``torch_peers``) on a CPU tensor of 3x8x8 pixels: Torch's dispatch of every op, with a
kernel of a few pixels each (meta tensors, which run no kernel, dispatch through Python
decompositions: 10-60x slower than this). Neither side includes the driver's launch call nor a
CUDA device's caching allocator; ``launches`` counts ours, so that a GPU's cost per launch can
be added.

Run in a process of its own (it swaps Triton's driver for the whole process), without
``TRITON_INTERPRET``: ``python benchmarks/bench_triton_host.py``.

On a GPU, ``--device cuda`` times the whole call instead, driver launches and the caching
allocator included: one image's calls issued back to back and then waited for, which the host's
time per call bounds (the device needs a few microseconds per kernel on one 224x224 image), for
ours with the direct launches, ours through ``kernel[grid]``, and plain Torch on the same image.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from ..modes import MODES, NormalizeParams
from ._timing import time_call
from .machine import machine_line, package_version
from .report import render_table, write_section

TITLE = "## Triton route, host time per call (no GPU)"
CUDA_TITLE = "## Triton route, time per call of one image (CUDA)"
DEFAULT_SHAPE = (3, 224, 224)
# Plain Torch runs on so few pixels that its time is Torch's dispatch of each op.
DISPATCH_SHAPE = (3, 8, 8)


class CompileOnlyDriver:
    """A CUDA target without a device: enough for Triton to compile, nothing to launch on."""

    def get_current_device(self) -> int:
        return 0

    def get_current_stream(self, device: int | None = None) -> int:
        return 0

    def get_current_target(self) -> Any:
        from triton.backends.compiler import GPUTarget

        return GPUTarget("cuda", int(os.environ.get("TRITON_CHECK_ARCH", "90")), 32)

    def get_active_torch_device(self) -> torch.device:
        return torch.device("cpu")


def stub_launches() -> list[int]:
    """Compile for :class:`CompileOnlyDriver` and stop every launch at the driver's call; CPU
    tensors take the Triton route. Returns a one-item list that counts the launches."""
    if os.environ.get("TRITON_INTERPRET") == "1":
        raise RuntimeError("run without TRITON_INTERPRET: the kernels must be compiled, not interpreted")
    from triton.compiler import compiler
    from triton.runtime import driver

    from ..backends import torch as torch_backend
    from ..backends.triton import kernels

    driver.set_active(CompileOnlyDriver())
    launches = [0]

    def launch(*args: Any) -> None:
        launches[0] += 1

    compiler.CompiledKernel._init_handles = lambda self: None  # no module to load on a device
    compiler.CompiledKernel.run = property(lambda self: launch)
    compiler.CompiledKernel.launch_metadata = lambda self, grid, stream, *args: None
    kernels.INTERPRETED = True  # past the guard that keeps CPU tensors off compiled kernels
    torch_backend._triton_forced = lambda: True
    return launches


def kernel_ops(call: Callable[[], Any]) -> int:
    """How many Torch ops of ``call`` run a kernel (a launch each on a GPU): every op that
    Torch dispatches but views and in-place metadata changes (``unsqueeze_``)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Counter(TorchDispatchMode):
        ops = 0

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            if not (func.is_view or torch.Tag.inplace_view in func.tags):
                self.ops += 1
            return func(*args, **(kwargs or {}))

    with Counter() as counter:
        call()
    return counter.ops


def measure(
    launches: list[int], shape: tuple[int, ...], out_dtype: torch.dtype, calls: int
) -> list[dict[str, Any]]:
    """Per mode: our host seconds and launches per call, with our direct launches
    (``backends.triton.launch``) and with Triton's ``kernel[grid]`` for each, and plain Torch's
    host seconds on a tensor of ``DISPATCH_SHAPE`` (None where it has no version of the mode)."""
    image = torch.randint(0, 256, shape, dtype=torch.uint8)
    tiny = torch.randint(0, 256, (*shape[:-3], *DISPATCH_SHAPE), dtype=torch.uint8)
    timed = functools.partial(time_call, budget_s=0.0, min_calls=calls, max_calls=calls)  # median of `calls`
    return timed_rows(image, tiny, out_dtype, timed, launches)


def timed_rows(
    image: torch.Tensor,
    plain_image: torch.Tensor,
    out_dtype: torch.dtype,
    timed: Callable[[Callable[[], Any]], float],
    launches: list[int] | None = None,
) -> list[dict[str, Any]]:
    """Per mode, ``timed`` seconds per call of ours on ``image`` (direct launches, then through
    ``kernel[grid]``) and of plain Torch on ``plain_image``, plain Torch's kernel ops, and where
    ``launches`` counts them, our launches per call."""
    from ..backends import torch as torch_backend
    from .torch_peers import plain_torch_call

    rows = []
    for name, mode in MODES.items():
        params = NormalizeParams.build(max_pixel_value=None, normalization=name)
        ours = functools.partial(torch_backend.normalize, image, params, dtype=out_dtype)
        row: dict[str, Any] = {"mode": name}
        if launches is not None:
            ours()
            before = launches[0]
            ours()
            row["launches"] = launches[0] - before
        plain = plain_torch_call(plain_image, mode, out_dtype)
        with through_kernel_grid():
            row["kernel[grid]"] = timed(ours)
        row["ours"] = timed(ours)
        row["plain torch"] = None if plain is None else timed(plain)
        row["plain torch ops"] = None if plain is None else kernel_ops(plain)
        rows.append(row)
    return rows


@contextlib.contextmanager
def through_kernel_grid() -> Any:
    """Every launch through Triton's ``kernel[grid]`` for the block, not launched directly."""
    from ..backends.triton import launch

    launch.DIRECT = False
    try:
        yield
    finally:
        launch.DIRECT = True


def back_to_back(
    fn: Callable[[], Any], calls: int, synchronize: Callable[[], Any], repeats: int = 5
) -> float:
    """Seconds per call of ``calls`` calls issued back to back and then waited for (the median of
    ``repeats`` runs): the host's time per call wherever it is longer than the device's."""
    for _ in range(10):
        fn()
    synchronize()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        synchronize()
        seconds.append((time.perf_counter() - start) / calls)
    return statistics.median(seconds)


def measure_cuda(
    shape: tuple[int, ...], out_dtype: torch.dtype, calls: int, device: str = "cuda"
) -> list[dict[str, Any]]:
    """Per mode, on one image on ``device`` (CUDA; the tests run it on the CPU tensors of the
    compile-only driver): seconds per call of ours (direct launches, then through
    ``kernel[grid]``) and of plain Torch on the same image, and plain Torch's kernel ops."""
    image = torch.randint(0, 256, shape, dtype=torch.uint8, device=device)
    synchronize = torch.cuda.synchronize if image.is_cuda else lambda: None
    timed = functools.partial(back_to_back, calls=calls, synchronize=synchronize)
    return timed_rows(image, image, out_dtype, timed)


def render(
    rows: list[dict[str, Any]], shape: tuple[int, ...], out_dtype: torch.dtype, calls: int, device: str
) -> str:
    import triton

    header = [
        CUDA_TITLE if device == "cuda" else TITLE,
        "",
        machine_line(),
        f"- Python {platform.python_version()}, torch {torch.__version__}, triton {triton.__version__}, "
        f"norm-transforms {package_version('norm-transforms')}; torch threads {torch.get_num_threads()}",
    ]
    image = f"one {'x'.join(map(str, shape))} uint8 image, {str(out_dtype).removeprefix('torch.')} out"
    if device == "cuda":
        header += [
            f"- GPU: {torch.cuda.get_device_name()}",
            f"- Input: {image}; {calls} calls issued back to back, then one synchronize: µs per call, "
            "median of 5 runs (the host's time per call, driver launches and caching allocator "
            "included, where it exceeds the device's)",
            "- ours = `backends.torch.normalize` with the direct launches (`backends/triton/launch.py`); "
            "ours via kernel[grid] = each launch through Triton's own launch path",
            "- plain torch = the straightforward code of each mode (as in the Torch suite) on the same "
            "image; ops = its ops that run a kernel",
        ]
    else:
        header += [
            f"- Input: {image}; median of {calls} calls",
            "- ours = the CUDA route's host work, on a CPU tensor: our Python, then per launch our direct "
            "launch of the compiled kernel (`backends/triton/launch.py`); the kernels are compiled for "
            "sm_90 and each launch stops where the driver's call would start",
            "- ours via kernel[grid] = the same, each launch through Triton's own launch path (argument "
            "binding, specialization, cache lookup), as before the direct launches",
            "- plain torch = the straightforward code of each mode (as in the Torch suite) on a CPU tensor "
            f"of {'x'.join(map(str, DISPATCH_SHAPE))} pixels per sample: Torch's dispatch of each op",
            "- Neither includes the driver's launch call (one per launch of ours, one per op of plain "
            "torch that runs a kernel: the ops column) nor a CUDA device's caching allocator; our uint8 "
            "percentile modes add a memset",
        ]
    header += ["", ""]
    launches = "launches" in rows[0]
    table = []
    for row in rows:
        plain = row["plain torch"]
        values = [row["mode"], *([str(row["launches"])] if launches else [])]
        values += [f"{row['ours'] * 1e6:.1f}", f"{row['kernel[grid]'] * 1e6:.1f}"]
        values += ["—"] * 3 if plain is None else [str(row["plain torch ops"]), f"{plain * 1e6:.1f}"]
        values += [] if plain is None else [f"{plain / row['ours']:.2f}"]
        table.append(values)
    columns = ["mode", *(["launches"] if launches else []), "ours µs", "ours via kernel[grid] µs"]
    columns += ["plain torch ops", "plain torch µs", "plain torch / ours"]
    return "\n".join(header) + render_table(columns, table) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="cuda: whole calls on a GPU")
    parser.add_argument("--shape", default="x".join(map(str, DEFAULT_SHAPE)), help="e.g. 3x224x224")
    parser.add_argument("--out-dtype", default="float16", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--markdown", default="", help="a RESULTS.md whose section this rewrites")
    args = parser.parse_args(argv)
    shape = tuple(int(size) for size in args.shape.split("x"))
    out_dtype = getattr(torch, args.out_dtype)
    torch.set_num_threads(1)
    if args.device == "cuda":
        from ..backends import torch as torch_backend

        reason = torch_backend.triton_unavailable_reason() if torch.cuda.is_available() else "no CUDA device"
        if reason is not None:
            print(f"--device cuda needs a CUDA device and the Triton kernels: {reason}", file=sys.stderr)
            return 2
        rows = measure_cuda(shape, out_dtype, args.calls)
    else:
        try:
            launches = stub_launches()
        except (ImportError, AttributeError) as error:  # no Triton, or one without these hooks
            print(f"cannot drive this Triton without a GPU: {error!r}", file=sys.stderr)
            return 2
        rows = measure(launches, shape, out_dtype, args.calls)
    text = render(rows, shape, out_dtype, args.calls, args.device)
    print(text)
    if args.markdown:
        write_section(args.markdown, text)
    return 0
