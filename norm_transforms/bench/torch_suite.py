"""``norm-transforms bench --backend torch``: the Torch backend against the Torch peers, in one run.

Times every mode x dtype x shape on generated CHW / NCHW tensors, on CPU (single-threaded and
with default threads) or on CUDA, beside torchvision v2 (``ToDtype`` + ``Normalize``), kornia
(``enhance.normalize`` and ``enhance.normalize_min_max``), the plain Torch code a user would
write for each mode (:mod:`.torch_peers`), and the floor: ``x.to(float32)`` for uint8,
``x.clone()`` for float32. Before timing, every contender's output is checked against ours, so
that a ratio always compares two computations of the same thing. The report (medians, ratios,
and on CUDA the effective bandwidth against a measured device copy) renders through
:mod:`.report`, as the NumPy suite's does.
"""

from __future__ import annotations

import functools
import math
import os
import platform
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..modes import MODES
from . import _timing
from .cuda_timing import copy_bandwidth, time_cuda
from .machine import THREADS, machine_line, package_version, threads_label
from .report import (
    THREADS_COMPARED,
    Column,
    by_threads,
    geomean,
    ms,
    progress_bar,
    publish,
    ratio_table,
    speedup_lines,
    threads_comparison,
)
from .torch_peers import CONTENDER_NOTES, PEERS, Call, contenders

DTYPES = ("uint8", "float32")
SHAPES = ((3, 224, 224), (3, 512, 512), (64, 3, 224, 224))


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


def make_tensor(shape: tuple[int, ...], dtype: str, device: str) -> torch.Tensor:
    """Uniform-noise pixels (float32 = uint8 / 255; int16: Hounsfield units, -1024 to 3071, as
    the NumPy suite's CT slices), the same bytes on every run and device."""
    generator = torch.Generator().manual_seed(_timing.SEED + shape[-1])
    if dtype == "int16":
        return torch.randint(-1024, 3072, shape, dtype=torch.int16, generator=generator).to(device)
    pixels = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
    image = pixels if dtype == "uint8" else pixels.to(torch.float32) / 255
    return image.to(device)


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


# --------------------------------------------------------------------------- run


def suite_cases(
    device: str,
    modes: tuple[str, ...],
    dtypes: tuple[str, ...],
    shapes: tuple[tuple[int, ...], ...] | None,
    out_dtype: str = "float32",
) -> list[Case]:
    """mode x dtype x shape, written as ``out_dtype``; the default shapes on CUDA add the
    uint8 -> float16 target case."""
    with_target = device == "cuda" and shapes is None and "uint8" in dtypes
    cases: list[Case] = []
    for mode in modes:
        cases += [Case(shape, dtype, mode, out_dtype) for dtype in dtypes for shape in shapes or SHAPES]
        if mode == CUDA_TARGET.mode and with_target:
            cases.append(CUDA_TARGET)
    return cases


def run(
    device: str = "cpu",
    modes: tuple[str, ...] | None = None,
    dtypes: tuple[str, ...] = DTYPES,
    shapes: tuple[tuple[int, ...], ...] | None = None,
    threads: tuple[str, ...] = tuple(THREADS),
    budget_s: float = 0.1,
    progress: bool = False,
    out_dtype: str = "float32",
) -> list[TorchCell]:
    """Run the suite; ``modes=None``: every mode of MODES, ``shapes=None``: the default shapes.
    ``progress`` shows a tqdm bar on stderr, one step per cell (stdout keeps only the report)."""
    timer = time_cuda if device == "cuda" else _timing.time_call
    tensor = functools.cache(make_tensor)  # one input per shape and dtype for the whole run
    cases = suite_cases(device, tuple(MODES) if modes is None else modes, dtypes, shapes, out_dtype)
    cells = []
    with progress_bar(len(threads) * len(cases), progress) as bar:
        for thread_name in threads:
            _timing.set_threads(THREADS[thread_name])
            bar.set_description(threads_label(thread_name))
            for case in cases:
                bar.set_postfix_str(f"{case.mode} {case.dtype} {case.label}")
                x = tensor(case.shape, case.dtype, device)
                calls = contenders(x, case.mode, getattr(torch, case.out_dtype))
                check_agreement(calls, case)
                if device == "cuda":
                    calls["copy"] = same_size_copy(case)
                seconds = {name: timer(call, budget_s) for name, call in calls.items()}
                cells.append(TorchCell(thread_name, case, seconds))
                bar.update()
            _timing.set_threads(None)
    return cells


def same_size_copy(case: Case) -> Call:
    """A device-to-device copy that reads and writes as many bytes as one pass over the case
    (``Case.bytes_moved``): the bandwidth a kernel of that size can reach, timed beside it (a
    115 MB call cannot reach a 1 GiB copy's rate)."""
    source = torch.empty(case.bytes_moved // 2, dtype=torch.uint8, device="cuda")
    destination = torch.empty_like(source)
    return functools.partial(destination.copy_, source)


# --------------------------------------------------------------------------- report


def header(device: str, bandwidth: float | None, load: tuple[float, float, float]) -> str:
    """Machine, versions, threads, timing method and what each contender runs."""
    lines = [
        machine_line(),
        f"- Python {platform.python_version()}, torch {torch.__version__}, torchvision "
        f"{package_version('torchvision')}, kornia {package_version('kornia')}, "
        f"norm-transforms {package_version('norm-transforms')}",
        f"- Load average (1, 5, 15 min) at the start: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}",
        "- Threads: `single` = torch.set_num_threads(1); "
        f"`default` = torch.set_num_threads({_timing.default_torch_threads(torch)}) (one per usable core)",
    ]
    if device == "cuda":
        lines += [
            f"- GPU: {torch.cuda.get_device_name()}, CUDA {torch.version.cuda}; device copy bandwidth "
            f"{bandwidth / 1e9:.0f} GB/s (`dst.copy_(src)` of 1 GiB float32, bytes read + written / time)",
            "- Time: median of CUDA-event times of single calls after 3 warm-up calls, the L2 cache "
            "flushed before each call; GB/s = (input + output bytes) / time of ours: the least traffic "
            "a pass can make (the per-image modes make more); % of copy = the time of a device copy "
            "of as many bytes (read + written), timed in the same run, / the time of ours",
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


def _dtype_label(cell: TorchCell) -> str:
    case = cell.case
    return case.dtype if case.out_dtype == "float32" else f"{case.dtype} → {case.out_dtype}"


LABELS = [("mode", lambda c: c.case.mode), ("dtype", _dtype_label), ("shape", lambda c: c.case.label)]


def _achieved(cell: TorchCell) -> float:
    """Ours' effective bandwidth on the cell: the least bytes a pass moves / its time."""
    return cell.case.bytes_moved / cell.seconds["ours"]


def copy_share(cell: TorchCell) -> float:
    """Ours against a device copy of the same bytes, timed in the same run: 1.0 is a copy's speed."""
    return cell.seconds["copy"] / cell.seconds["ours"]


def markdown_table(rows: list[TorchCell], peers: list[str], bandwidth: float | None) -> str:
    """Times in ms, then peer / ours and ours / floor, and on CUDA ours' effective bandwidth."""
    extra: list[Column] = []
    if bandwidth:
        extra = [
            ("ours GB/s", lambda c: _gigabytes(_achieved(c))),
            ("% of copy", lambda c: f"{100 * copy_share(c):.0f}%"),
        ]
    return ratio_table(rows, peers, LABELS, extra)


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
    for label, group in floor_groups(rows).items():
        ratios = [c.seconds["ours"] / c.seconds["floor"] for c in group]
        lines.append(
            f"- ours / floor, {label}: geometric mean {geomean(ratios):.2f}, worst {max(ratios):.2f}"
        )
    if bandwidth:
        lines += _bandwidth_lines(rows, bandwidth)
    return "\n".join(lines)


def floor_groups(rows: list[TorchCell]) -> dict[str, list[TorchCell]]:
    """The cells by mode kind (constant or per-image) and layout (CHW or NCHW)."""
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
            lines.append(
                f"- target case {CUDA_TARGET.label} uint8 → float16 standard: ours {ms(ours)} ms, "
                f"{_gigabytes(_achieved(cell))} GB/s = {100 * copy_share(cell):.0f}% of a same-size device "
                f"copy ({100 * _achieved(cell) / bandwidth:.0f}% of the 1 GiB copy's rate)"
            )
    regular = [c for c in rows if c.case != CUDA_TARGET]
    largest = max((c.case.shape for c in regular), key=math.prod, default=None)
    shares = [copy_share(c) for c in regular if c.case.shape == largest]
    if shares:
        lines.append(
            f"- ours on the {'x'.join(map(str, largest))} cells: {100 * statistics.median(shares):.0f}% of "
            f"a same-size device copy (median), {100 * min(shares):.0f}%-{100 * max(shares):.0f}%"
        )
    return lines


def _gigabytes(per_second: float) -> str:
    return f"{per_second / 1e9:.0f}" if per_second >= 100e9 else f"{per_second / 1e9:.1f}"


def title(device: str) -> str:
    return f"Torch backend, {'CUDA' if device == 'cuda' else 'CPU'}"


def peers_timed(cells: list[TorchCell]) -> list[str]:
    """The peers timed on any cell, in the report's column order."""
    return [p for p in PEERS if any(p in c.seconds for c in cells)]


def sections(cells: list[TorchCell], bandwidth: float | None) -> dict[str, tuple[str, str]]:
    """threads -> (summary, table), the body of the report, then the two settings compared."""
    peers = peers_timed(cells)
    body = {
        threads: (summary(rows, peers, bandwidth), markdown_table(rows, peers, bandwidth))
        for threads, rows in by_threads(cells).items()
    }
    compared = threads_comparison(cells, peers, LABELS)
    return body | ({THREADS_COMPARED: compared} if compared else {})


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
        out_dtype=args.out_dtype,
    )
    bandwidth = copy_bandwidth(args.budget) if args.device == "cuda" else None
    publish(
        title(args.device), header(args.device, bandwidth, load), sections(cells, bandwidth), args.markdown
    )
    return 0
