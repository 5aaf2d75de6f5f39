"""``norm-transforms bench --backend torch``: ``normalize_tensor`` against the Torch peers, in one run.

Times every mode x dtype x shape on generated CHW / NCHW tensors, on CPU (single-threaded and
with default threads) or on CUDA, beside torchvision v2 (``ToDtype`` + ``Normalize``), kornia
(``enhance.normalize`` and ``enhance.normalize_min_max``), the plain Torch code a user would
write for each mode, and the floor: ``x.to(float32)`` for uint8, ``x.clone()`` for float32.
Before timing, every contender's output is checked against ours, so that a ratio always
compares two computations of the same thing. The report (medians, ratios, and on CUDA the
effective bandwidth against a measured device copy) reuses the NumPy bench's machinery.
"""

from __future__ import annotations

import functools
import importlib
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from . import _timing
from .backends.torch import normalize_tensor
from .bench import (
    THREADS,
    _geomean,
    _ms,
    _ratio,
    _threads_label,
    console_text,
    machine_line,
    package_version,
    progress_bar,
    render_table,
    speedup_lines,
    write_section,
)
from .modes import DEFAULT_PERCENTILES, EPS, IMAGENET_MEAN, IMAGENET_STD, MODES, NormalizeParams

DTYPES = ("uint8", "float32")
SHAPES = ((3, 224, 224), (3, 512, 512), (64, 3, 224, 224))
PEERS = ("torchvision v2", "kornia", "plain torch")
COPY_BYTES = 1 << 30  # the device-copy probe: 1 GiB of float32
L2_FLUSH_BYTES = 256 << 20  # larger than the L2 cache of any current GPU (H100: 50 MB)
Call = Callable[[], torch.Tensor]


@dataclass(frozen=True)
class Case:
    """One input and what is asked of it."""

    shape: tuple[int, ...]
    dtype: str
    mode: str
    out_dtype: str = "float32"

    @property
    def label(self) -> str:
        return "x".join(map(str, self.shape))

    @property
    def bytes_moved(self) -> int:
        """Bytes one pass must read and write at least: the input once, the output once."""
        itemsize = getattr(torch, self.dtype).itemsize + getattr(torch, self.out_dtype).itemsize
        return math.prod(self.shape) * itemsize


# The GPU target case: an ImageNet-size training batch, uint8 in, float16 out, standard mode.
CUDA_TARGET = Case((256, 3, 224, 224), "uint8", "standard", "float16")


@dataclass
class TorchCell:
    """One benchmark cell: the median of every contender on one case, in seconds."""

    threads: str
    case: Case
    seconds: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------- contenders


def make_tensor(shape: tuple[int, ...], dtype: str, device: str) -> torch.Tensor:
    """Uniform-noise pixels (float32 = uint8 / 255), the same bytes on every run and device."""
    generator = torch.Generator().manual_seed(_timing.SEED + shape[-1])
    pixels = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
    image = pixels if dtype == "uint8" else pixels.to(torch.float32) / 255
    return image.to(device)


def contenders(x: torch.Tensor, case: Case) -> dict[str, Call]:
    """Ours, each peer that implements the case's mode, and the floor, as zero-argument calls
    with everything that a user builds once (transforms, constant tensors) built here."""
    out = getattr(torch, case.out_dtype)
    # max_pixel_value=None: the dtype's full scale, as torchvision's ToDtype(scale=True) does.
    params = NormalizeParams.build(max_pixel_value=None, normalization=case.mode)
    calls: dict[str, Call] = {"ours": functools.partial(normalize_tensor, x, params, dtype=out)}
    builders = {"torchvision v2": torchvision_call, "kornia": kornia_call, "plain torch": plain_torch_call}
    for name, build in builders.items():
        call = build(x, case.mode, out)
        if call is not None:
            calls[name] = call
    calls["floor"] = functools.partial(x.to, out) if x.dtype == torch.uint8 else x.clone
    return calls


def torchvision_call(x: torch.Tensor, mode: str, out: torch.dtype) -> Call | None:
    v2 = _optional_module("torchvision.transforms.v2")
    if v2 is None or mode != "standard":
        return None
    to_dtype, normalize = v2.ToDtype(out, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    return lambda: normalize(to_dtype(x))


def kornia_call(x: torch.Tensor, mode: str, out: torch.dtype) -> Call | None:
    """kornia.enhance.normalize for ``standard``; normalize_min_max, which takes the min and max
    over H x W of every sample and channel (eps 1e-6, no clip), for ``min_max_per_channel``."""
    kornia = _optional_module("kornia")
    if kornia is None:
        return None
    # kornia reads dim 0 as the batch and dim 1 as the channels: a CHW image needs a batch axis.
    batch = x if x.ndim == 4 else x.unsqueeze(0)
    if mode == "standard":
        mean, std = _channel_constants(x, out)
        return lambda: kornia.enhance.normalize(_to_unit_float(batch, out), mean.flatten(), std.flatten())
    if mode == "min_max_per_channel":
        return lambda: kornia.enhance.normalize_min_max(batch.to(out))
    return None


def plain_torch_call(x: torch.Tensor, mode: str, out: torch.dtype) -> Call:
    """Each mode written the straightforward way, with our semantics: population std, eps added
    to the std (to max - min), statistics over the sample (or each channel), then the clip."""
    spec = MODES[mode]
    if spec.statistic is None:
        mean, std = _channel_constants(x, out)
        return lambda: (_to_unit_float(x, out) - mean) / std
    dims = (-2, -1) if spec.per_channel else (-3, -2, -1)
    low, high = spec.clip or (-math.inf, math.inf)

    def mean_std() -> torch.Tensor:
        xf = x.to(out)
        mean = xf.mean(dim=dims, keepdim=True)
        std = xf.std(dim=dims, keepdim=True, correction=0)
        return ((xf - mean) / (std + EPS)).clamp(low, high)

    def min_max() -> torch.Tensor:
        xf = x.to(out)
        lo, hi = xf.amin(dim=dims, keepdim=True), xf.amax(dim=dims, keepdim=True)
        return ((xf - lo) / (hi - lo + EPS)).clamp(low, high)

    def percentile() -> torch.Tensor:
        # torch.quantile over each scope flattened (it takes one dim); linear, as np.percentile.
        xf = x.to(out)
        scopes = xf.flatten(start_dim=xf.ndim + dims[0])
        q = torch.tensor(DEFAULT_PERCENTILES, dtype=out, device=x.device) / 100
        keepdim_shape = (*scopes.shape[:-1], *[1] * len(dims))
        lo, hi = (bound.reshape(keepdim_shape) for bound in torch.quantile(scopes, q, dim=-1))
        return ((xf - lo) / (hi - lo + EPS)).clamp(low, high)

    return {"mean_std": mean_std, "min_max": min_max, "percentile": percentile}[spec.statistic]


def _channel_constants(x: torch.Tensor, out: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet mean and std as (C, 1, 1) tensors of the output dtype on the input's device
    (a float32 constant would promote a float16 computation back to float32)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=out, device=x.device).view(-1, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=out, device=x.device).view(-1, 1, 1)
    return mean, std


def _to_unit_float(x: torch.Tensor, out: torch.dtype) -> torch.Tensor:
    return x.to(out) / 255 if x.dtype == torch.uint8 else x.to(out)


@functools.cache
def _optional_module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def check_agreement(calls: dict[str, Call], case: Case) -> None:
    """Refuse to time a contender whose output differs from ours: its ratio would be meaningless."""
    expected = calls["ours"]().float()
    tolerance = 1e-3 if case.out_dtype == "float32" else 2e-2
    for name, call in calls.items():
        if name in ("ours", "floor"):
            continue
        got = call().float().reshape(expected.shape)
        torch.testing.assert_close(
            got, expected, atol=tolerance, rtol=tolerance, msg=lambda m, n=name: f"{n} differs on {case}: {m}"
        )


# --------------------------------------------------------------------------- timing


def time_cuda(fn: Callable[[], Any], budget_s: float, min_calls: int = 5, max_calls: int = 500) -> float:
    """Median seconds of single calls from CUDA events, after 3 warm-up calls, with the L2 cache
    flushed before each call (as triton's do_bench does) so that every call reads device memory."""
    flush = _l2_flush_buffer()
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    estimate = time.perf_counter() - start
    calls = max(min_calls, min(max_calls, int(budget_s / max(estimate, 1e-6))))
    events = [_event_pair() for _ in range(calls)]
    for begin, end in events:
        flush.zero_()  # outside the events: not timed
        begin.record()
        fn()
        end.record()
    torch.cuda.synchronize()
    return statistics.median(begin.elapsed_time(end) for begin, end in events) / 1e3


def _event_pair() -> tuple[torch.cuda.Event, torch.cuda.Event]:
    return torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)


@functools.cache
def _l2_flush_buffer() -> torch.Tensor:
    return torch.empty(L2_FLUSH_BYTES, dtype=torch.uint8, device="cuda")


def copy_bandwidth(budget_s: float) -> float:
    """Bytes per second of a large device-to-device ``dst.copy_(src)`` (read + written)."""
    source = torch.empty(COPY_BYTES // 4, dtype=torch.float32, device="cuda")
    destination = torch.empty_like(source)
    seconds = time_cuda(lambda: destination.copy_(source), budget_s)
    return 2 * COPY_BYTES / seconds


# --------------------------------------------------------------------------- run


def suite_cases(
    device: str, modes: tuple[str, ...], dtypes: tuple[str, ...], shapes: tuple[tuple[int, ...], ...] | None
) -> list[Case]:
    """mode x dtype x shape; the default shapes on CUDA add the uint8 -> float16 target case."""
    with_target = device == "cuda" and shapes is None and "uint8" in dtypes
    cases: list[Case] = []
    for mode in modes:
        cases += [Case(shape, dtype, mode) for dtype in dtypes for shape in shapes or SHAPES]
        if mode == CUDA_TARGET.mode and with_target:
            cases.append(CUDA_TARGET)
    return cases


def run(
    device: str = "cpu",
    modes: tuple[str, ...] = tuple(MODES),
    dtypes: tuple[str, ...] = DTYPES,
    shapes: tuple[tuple[int, ...], ...] | None = None,
    threads: tuple[str, ...] = tuple(THREADS),
    budget_s: float = 0.1,
    progress: bool = False,
) -> list[TorchCell]:
    """Run the suite; ``shapes=None`` is the default suite. ``progress`` shows a tqdm bar on
    stderr, one step per cell (stdout keeps only the report)."""
    timer = time_cuda if device == "cuda" else _timing.time_call
    tensor = functools.cache(make_tensor)  # one input per shape and dtype for the whole run
    cases = suite_cases(device, modes, dtypes, shapes)
    cells = []
    with progress_bar(len(threads) * len(cases), progress) as bar:
        for thread_name in threads:
            _timing.set_threads(THREADS[thread_name])
            bar.set_description(_threads_label(thread_name))
            for case in cases:
                bar.set_postfix_str(f"{case.mode} {case.dtype} {case.label}")
                calls = contenders(tensor(case.shape, case.dtype, device), case)
                check_agreement(calls, case)
                seconds = {name: timer(call, budget_s) for name, call in calls.items()}
                cells.append(TorchCell(thread_name, case, seconds))
                bar.update()
            _timing.set_threads(None)
    return cells


# --------------------------------------------------------------------------- report

CONTENDER_NOTES = [
    "- Inputs: uniform-noise pixels, float32 = uint8 / 255, contiguous CHW / NCHW; every leading axis "
    "is a sample with its own statistics",
    "- ours = `normalize_tensor(x, params)`, params built once with `max_pixel_value=None` (255 for "
    "uint8, 1.0 for float32, the torchvision convention), float32 output",
    "- torchvision v2 = `v2.Normalize(mean, std)(v2.ToDtype(float32, scale=True)(x))`, standard mode only",
    "- kornia: standard = `kornia.enhance.normalize(x.float() / 255, mean, std)`; min_max_per_channel = "
    "`kornia.enhance.normalize_min_max(x.float())`, which takes the min and max over H x W of every "
    "sample and channel (eps 1e-6, no clip; kornia has no whole-image min/max nor mean/std mode). "
    "A CHW image gets a batch axis: kornia reads dim 1 as the channels",
    "- plain torch = the straightforward code for each mode: `(x.float() / 255 - mean) / std`; "
    "`mean`/`std(correction=0)` or `amin`/`amax` over the sample (or each channel) with keepdim, "
    f"`(x - m) / (s + {EPS})`, `clamp` to the mode's range",
    "- floor = `x.to(torch.float32)` for uint8, `x.clone()` for float32",
    "- Every contender's output was checked against ours before timing (to 1e-3; 2e-2 for float16 output)",
]


def header(device: str, bandwidth: float | None, load: tuple[float, float, float]) -> str:
    """Machine, versions, threads, timing method and what each contender runs."""
    lines = [
        machine_line(),
        f"- Python {platform.python_version()}, torch {torch.__version__}, torchvision "
        f"{package_version('torchvision')}, kornia {package_version('kornia')}, "
        f"norm-transforms {package_version('norm-transforms')}",
        f"- Load average (1, 5, 15 min) at the start: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}",
        "- Threads: `single` = torch.set_num_threads(1); "
        f"`default` = torch.set_num_threads({_timing._default_torch_threads(torch)}) (one per usable core)",
    ]
    if device == "cuda":
        lines += [
            f"- GPU: {torch.cuda.get_device_name()}, CUDA {torch.version.cuda}; device copy bandwidth "
            f"{bandwidth / 1e9:.0f} GB/s (`dst.copy_(src)` of 1 GiB float32, bytes read + written / time)",
            "- Time: median of CUDA-event times of single calls after 3 warm-up calls, the L2 cache "
            "flushed before each call; GB/s = (input + output bytes) / time of ours: the least traffic "
            "a pass can make (the per-image modes make more)",
            f"- Target case {CUDA_TARGET.label} uint8 → float16, standard mode: ours with "
            "`dtype=torch.float16`; the peers convert to float16 (`ToDtype(float16, scale=True)`, "
            "`x.half() / 255`) and compute in it; floor `x.to(torch.float16)`",
        ]
    else:
        lines.append("- Time: median of repeated calls (time.perf_counter, GC paused) after a warm-up call")
        lines.append(_allocation_note())
    return "\n".join(lines + CONTENDER_NOTES)


def _allocation_note() -> str:
    """How large CPU outputs get their pages, which weighs on every contender that allocates
    through torch: without huge pages, each call pays one first-touch fault per 4 KiB."""
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    mode = thp.read_text().split("[", 1)[-1].split("]", 1)[0] if thp.exists() else "unknown"
    return (
        f"- Allocation: kernel transparent huge pages `{mode}`, THP_MEM_ALLOC_ENABLE="
        f"{os.environ.get('THP_MEM_ALLOC_ENABLE', 'unset')}. Unless torch is told to (that variable = 1) "
        "or the kernel mode is `always`, torch allocates large CPU tensors on 4 KiB pages and every "
        "fresh output pays a page fault per page (most of the floor's time on the batch cells); "
        "ours returns a tensor over a NumPy buffer, and NumPy asks for huge pages"
    )


def markdown_table(rows: list[TorchCell], peers: list[str], bandwidth: float | None) -> str:
    """Times in ms, then peer / ours and ours / floor, and on CUDA ours' effective bandwidth."""
    header = ["mode", "dtype", "shape", "ours ms", *[f"{p} ms" for p in peers], "floor ms"]
    header += [f"{p} / ours" for p in peers] + ["ours / floor"]
    header += ["ours GB/s", "% of copy"] if bandwidth else []
    lines = []
    for cell in rows:
        case, ours = cell.case, cell.seconds["ours"]
        dtype = case.dtype if case.out_dtype == "float32" else f"{case.dtype} → {case.out_dtype}"
        values = [case.mode, dtype, case.label, _ms(ours)]
        values += [_ms(cell.seconds.get(p)) for p in peers] + [_ms(cell.seconds["floor"])]
        values += [_ratio(cell.seconds.get(p), ours) for p in peers] + [f"{ours / cell.seconds['floor']:.2f}"]
        if bandwidth:
            achieved = case.bytes_moved / ours
            values += [_gigabytes(achieved), f"{100 * achieved / bandwidth:.0f}%"]
        lines.append(values)
    return render_table(header, lines)


def summary(rows: list[TorchCell], peers: list[str], bandwidth: float | None) -> str:
    """Speed-ups over each peer (per mode for a peer that covers only some), ours / floor, and
    on CUDA the bandwidth figures."""
    all_modes = list(dict.fromkeys(c.case.mode for c in rows))
    lines = []
    for peer in peers:
        covered = [m for m in all_modes if any(c.case.mode == m and peer in c.seconds for c in rows)]
        if covered == all_modes:
            lines += speedup_lines(rows, [peer])
        else:
            for mode in covered:
                lines += speedup_lines([c for c in rows if c.case.mode == mode], [peer], scope=f" ({mode})")
    for label, group in _floor_groups(rows).items():
        ratios = [c.seconds["ours"] / c.seconds["floor"] for c in group]
        lines.append(
            f"- ours / floor, {label}: geometric mean {_geomean(ratios):.2f}, worst {max(ratios):.2f}"
        )
    if bandwidth:
        lines += _bandwidth_lines(rows, bandwidth)
    return "\n".join(lines)


def _floor_groups(rows: list[TorchCell]) -> dict[str, list[TorchCell]]:
    # The standard mode is one pass and can approach the floor, the per-image modes cannot (a
    # reduction first); single images show the per-call overhead, batches the allocation cost
    # (see the Allocation line). One mean over all four would hide each of them.
    groups: dict[str, list[TorchCell]] = {}
    for cell in rows:
        kind = "standard mode" if MODES[cell.case.mode].statistic is None else "per-image modes"
        layout = "CHW images" if len(cell.case.shape) == 3 else "NCHW batches"
        groups.setdefault(f"{kind}, {layout}", []).append(cell)
    return groups


def _bandwidth_lines(rows: list[TorchCell], bandwidth: float) -> list[str]:
    lines = []
    for cell in rows:
        if cell.case == CUDA_TARGET:
            ours = cell.seconds["ours"]
            achieved = CUDA_TARGET.bytes_moved / ours
            lines.append(
                f"- target case {CUDA_TARGET.label} uint8 → float16 standard: ours {_ms(ours)} ms, "
                f"{_gigabytes(achieved)} GB/s = {100 * achieved / bandwidth:.0f}% of the device copy"
            )
    regular = [c for c in rows if c.case != CUDA_TARGET]
    largest = max((c.case.shape for c in regular), key=math.prod, default=None)
    shares = [c.case.bytes_moved / c.seconds["ours"] / bandwidth for c in regular if c.case.shape == largest]
    if shares:
        lines.append(
            f"- ours on the {'x'.join(map(str, largest))} cells: {100 * statistics.median(shares):.0f}% of "
            f"the device copy bandwidth (median), {100 * min(shares):.0f}%-{100 * max(shares):.0f}%"
        )
    return lines


def _gigabytes(per_second: float) -> str:
    return f"{per_second / 1e9:.0f}" if per_second >= 100e9 else f"{per_second / 1e9:.1f}"


def report(
    cells: list[TorchCell], device: str, bandwidth: float | None, load: tuple[float, float, float]
) -> str:
    parts = [f"## {_title(device)}", "", header(device, bandwidth, load)]
    peers = _peers(cells)
    for threads, rows in _by_threads(cells).items():
        parts += ["", f"### {_threads_label(threads)}", ""]
        parts += [summary(rows, peers, bandwidth), "", markdown_table(rows, peers, bandwidth)]
    return "\n".join(parts) + "\n"


def _title(device: str) -> str:
    return f"Torch backend, {'CUDA' if device == 'cuda' else 'CPU'}"


def _by_threads(cells: list[TorchCell]) -> dict[str, list[TorchCell]]:
    groups: dict[str, list[TorchCell]] = {}
    for cell in cells:
        groups.setdefault(cell.threads, []).append(cell)
    return groups


def _peers(cells: list[TorchCell]) -> list[str]:
    return [p for p in PEERS if any(p in c.seconds for c in cells)]


def main(args: Any) -> int:
    """Entry point of ``norm-transforms bench --backend torch`` (arguments parsed in the CLI)."""
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("norm-transforms bench: --device cuda, but torch sees no CUDA device")
    load = os.getloadavg()
    # On CUDA the host's thread count does not drive the kernels: time once, with the default.
    threads = args.threads or (["default"] if args.device == "cuda" else list(THREADS))
    cells = run(
        device=args.device,
        modes=tuple(args.modes),
        dtypes=tuple(args.dtypes),
        shapes=tuple(args.shapes) if args.shapes else None,
        threads=tuple(threads),
        budget_s=args.budget,
        progress=not args.no_progress,
    )
    bandwidth = copy_bandwidth(args.budget) if args.device == "cuda" else None
    text = report(cells, args.device, bandwidth, load)
    peers = _peers(cells)
    summaries = {threads: summary(rows, peers, bandwidth) for threads, rows in _by_threads(cells).items()}
    print(console_text(_title(args.device), summaries, text))
    if args.markdown:
        write_section(args.markdown, text)
    return 0
