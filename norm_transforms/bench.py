"""``norm-transforms bench``: our Normalize against the peers people use, in one run.

Times every mode x dtype x size on generated RGB images, single-threaded and with default
threads, beside ``albumentations.Normalize`` (in this interpreter, when installed), any peer
living in another interpreter (``--peer-python``), and the floor: ``astype(float32)`` for
uint8 input, ``copy()`` for float32. Reports medians, ratios and peak memory as Markdown, and
optionally a PNG chart. ``--backend torch`` runs :mod:`norm_transforms.bench_torch` instead,
which reuses the report helpers below.
"""

from __future__ import annotations

import functools
import json
import math
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from . import _timing
from .modes import DEFAULT_PERCENTILES, EPS, MODES

DTYPES = ("uint8", "float32")
SIZES = (224, 512, 1024)
THREADS = {"single": 1, "default": None}


@dataclass
class Cell:
    """One benchmark cell: the medians of every contender on one input, in seconds."""

    threads: str
    mode: str
    dtype: str
    size: int
    seconds: dict[str, float] = field(default_factory=dict)
    peak_bytes: dict[str, int] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str, int]:
        return self.threads, self.mode, self.dtype, self.size

    @property
    def output_bytes(self) -> int:
        return self.size * self.size * 3 * 4


def run(
    modes: tuple[str, ...] = tuple(MODES),
    dtypes: tuple[str, ...] = DTYPES,
    sizes: tuple[int, ...] = SIZES,
    threads: tuple[str, ...] = tuple(THREADS),
    budget_s: float = 0.1,
    peer_pythons: tuple[str, ...] = (),
    with_albumentations: bool = True,
    progress: bool = False,
) -> tuple[list[Cell], list[str]]:
    """Run the suite; returns the cells and the names of the peers measured. ``progress`` shows
    a tqdm bar on stderr, one step per cell and peer timed (stdout keeps only the report)."""
    from .backends.numpy import normalize_array
    from .modes import NormalizeParams

    cells: dict[tuple[str, str, str, int], Cell] = {}
    peers: list[str] = []
    cases = [{"mode": m, "dtype": d, "size": s} for m in modes for d in dtypes for s in sizes]
    # Albumentations has no percentile mode.
    peer_cases = [case for case in cases if MODES[case["mode"]].statistic != "percentile"]
    with_albumentations = bool(peer_cases) and with_albumentations and _albumentations_available()
    peer_runs = (len(peer_pythons) + int(with_albumentations)) if peer_cases else 0
    total = len(threads) * (len(cases) + peer_runs * len(peer_cases))
    with progress_bar(total, progress) as bar:
        for thread_name in threads:
            _timing.set_threads(THREADS[thread_name])
            bar.set_description(f"{_threads_label(thread_name)}: ours")
            for case in cases:
                bar.set_postfix_str(_case_label(case))
                image = _timing.make_image(case["dtype"], case["size"])
                mpv = 255.0 if case["dtype"] == "uint8" else 1.0
                cell = Cell(thread_name, case["mode"], case["dtype"], case["size"])
                params = NormalizeParams.build(max_pixel_value=mpv, normalization=case["mode"])
                # What Normalize.apply runs: arguments validated once, at construction.
                ours = functools.partial(normalize_array, image, params)
                floor = (lambda: image.astype(np.float32)) if case["dtype"] == "uint8" else image.copy  # noqa: B023
                cell.seconds["ours"] = _timing.time_call(ours, budget_s)
                cell.peak_bytes["ours"] = _timing.peak_memory(ours)
                cell.seconds["floor"] = _timing.time_call(floor, budget_s)
                if MODES[case["mode"]].statistic == "percentile":
                    reference = functools.partial(numpy_percentile_reference, image, case["mode"])
                    cell.seconds[PERCENTILE_PEER] = _timing.time_call(reference, budget_s)
                    peers.append(PERCENTILE_PEER)
                cells[cell.key] = cell
                bar.update()
            bar.set_postfix_str("")
            peer_results = []
            if with_albumentations:
                bar.set_description(f"{_threads_label(thread_name)}: albumentations")
                peer_results.append(
                    _timing.time_albumentations(
                        peer_cases, THREADS[thread_name], budget_s, done=lambda _: bar.update()
                    )
                )
            for python in peer_pythons if peer_cases else ():
                bar.set_description(f"{_threads_label(thread_name)}: {python}")
                peer_results.append(_time_in_peer(python, peer_cases, THREADS[thread_name], budget_s))
                bar.update(len(peer_cases))
            peers += [_merge(cells, thread_name, peer) for peer in peer_results]
            _timing.set_threads(None)
    return list(cells.values()), list(dict.fromkeys(peers))


def progress_bar(total: int, enabled: bool, unit: str = "cell") -> Any:
    """A tqdm bar on stderr, so that a run of a minute shows where it is while stdout stays the
    report alone (redirect it to a file and the bar still shows)."""
    from tqdm import tqdm

    return tqdm(
        total=total, unit=unit, desc="bench", file=sys.stderr, disable=not enabled, dynamic_ncols=True
    )


def _case_label(case: dict[str, Any]) -> str:
    return f"{case['mode']} {case['dtype']} {case['size']}²"


def _threads_label(threads: str) -> str:
    return f"{threads} thread{'s' if threads == 'default' else ''}"


PERCENTILE_PEER = "np.percentile"


def numpy_percentile_reference(image: np.ndarray, mode: str) -> np.ndarray:
    """The percentile modes written the straightforward way: np.percentile over the image (or
    each channel), then the affine and the clip."""
    values = image.astype(np.float32)
    axes = (0, 1) if MODES[mode].per_channel else None
    low, high = np.percentile(values, DEFAULT_PERCENTILES, axis=axes)
    return np.clip((values - low) / (high - low + EPS), 0.0, 1.0)


def _albumentations_available() -> bool:
    try:
        import albumentations  # noqa: F401
    except ImportError:
        return False
    return True


def _time_in_peer(python: str, cases: list[dict[str, Any]], threads: int | None, budget_s: float) -> dict:
    request = json.dumps({"cases": cases, "threads": threads, "budget_s": budget_s})
    # Run the timing file by path (not as a module) so the peer needs no copy of this package.
    # Each case runs about budget_s per thread setting; the limit turns a stuck peer into an error.
    limit = 120 + 20 * budget_s * len(cases)
    try:
        completed = subprocess.run(
            [python, _timing.__file__, request], capture_output=True, text=True, check=False, timeout=limit
        )
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"peer {python} gave no result within {limit:.0f} s; it was stopped") from error
    if completed.returncode != 0:
        raise RuntimeError(f"peer {python} failed:\n{completed.stderr.strip()}")
    return json.loads(completed.stdout)


def _merge(cells: dict, thread_name: str, peer: dict[str, Any]) -> str:
    for result in peer["results"]:
        cell = cells[(thread_name, result["mode"], result["dtype"], result["size"])]
        cell.seconds[peer["name"]] = result["seconds"]
        cell.peak_bytes[peer["name"]] = result["peak_bytes"]
    return peer["name"]


# --------------------------------------------------------------------------- report


def package_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_line() -> str:
    """'- Machine: <CPU model>, <cores usable by this process> cores, <OS>', shared by every report."""
    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"- Machine: {cpu}, {cores} cores, {platform.system()} {platform.release()}"


def machine_header() -> str:
    """Machine, library versions and thread settings, for the top of a report."""
    return "\n".join(
        [
            machine_line(),
            f"- Python {platform.python_version()}, NumPy {np.__version__}, OpenCV {cv2.__version__}, "
            f"albumentations {package_version('albumentations')}, "
            f"norm-transforms {package_version('norm-transforms')}",
            "- Threads: `single` = cv2.setNumThreads(1) (and torch 1 thread if loaded); "
            f"`default` = library defaults (OpenCV {_default_cv2_threads()} threads)",
            "- Time: median of repeated calls of the transform's `apply` (the per-call dispatch of "
            "Albumentations is the same for every contender and left out); floor = "
            "`x.astype(np.float32)` for uint8, `x.copy()` for float32",
            "- Peak memory: tracemalloc peak during one call / output size (float32)",
        ]
    )


def _default_cv2_threads() -> int:
    previous = cv2.getNumThreads()
    cv2.setNumThreads(-1)
    default = cv2.getNumThreads()
    cv2.setNumThreads(previous)
    return default


def markdown_table(cells: list[Cell], peers: list[str], threads: str) -> str:
    """One Markdown table: times in ms, then ours / peer and ours / floor ratios."""
    rows = [c for c in cells if c.threads == threads]
    header = ["mode", "dtype", "size", "ours ms", *[f"{p} ms" for p in peers], "floor ms"]
    header += [f"{p} / ours" for p in peers] + ["ours / floor", "peak mem / output"]
    table = []
    for c in rows:
        ours = c.seconds["ours"]
        values = [c.mode, c.dtype, f"{c.size}²", _ms(ours)]
        values += [_ms(c.seconds.get(p)) for p in peers] + [_ms(c.seconds["floor"])]
        values += [_ratio(c.seconds.get(p), ours) for p in peers]
        values += [f"{ours / c.seconds['floor']:.2f}", f"{c.peak_bytes['ours'] / c.output_bytes:.2f}"]
        table.append(values)
    return render_table(header, table)


def render_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(values) + " |" for values in rows])


def speedup_lines(cells: list[Any], peers: list[str], scope: str = "") -> list[str]:
    """'- peer / ours<scope>: geometric mean, slowest, fastest' over the cells (anything with a
    ``seconds`` dict holding "ours") where the peer was timed."""
    lines = []
    for peer in peers:
        speedups = [c.seconds[peer] / c.seconds["ours"] for c in cells if peer in c.seconds]
        if speedups:
            lines.append(
                f"- {peer} / ours{scope}: geometric mean {_geomean(speedups):.2f}x, "
                f"slowest cell {min(speedups):.2f}x, fastest {max(speedups):.2f}x"
            )
    return lines


def summary(cells: list[Cell], peers: list[str], threads: str) -> str:
    """The target figures: speed-ups over each peer, time over floor, memory."""
    rows = [c for c in cells if c.threads == threads]
    lines = speedup_lines(rows, peers)
    # The Albumentations modes and ours apart: a percentile needs a sort or a histogram, so
    # pooling them would hide how far the five drop-in modes are from the floor.
    for label, percentile in (("Albumentations modes", False), ("percentile modes", True)):
        group = [c for c in rows if (MODES[c.mode].statistic == "percentile") == percentile]
        if not group:
            continue
        large = [c.seconds["ours"] / c.seconds["floor"] for c in group if c.size >= 512]
        if large:
            lines.append(
                f"- ours / floor, {label}, geometric mean over the 512² and 1024² cells: "
                f"{_geomean(large):.2f}"
            )
        worst_memory = max(c.peak_bytes["ours"] / c.output_bytes for c in group)
        lines.append(f"- peak memory / output size, {label}, worst cell: {worst_memory:.2f}")
    return "\n".join(lines)


def report(cells: list[Cell], peers: list[str]) -> str:
    parts = ["## NumPy backend vs peers", "", machine_header()]
    for threads in dict.fromkeys(c.threads for c in cells):
        parts += ["", f"### {_threads_label(threads)}", ""]
        parts += [summary(cells, peers, threads), "", markdown_table(cells, peers, threads)]
    return "\n".join(parts) + "\n"


def console_text(title: str, summaries: dict[str, str], full_report: str) -> str:
    """What the command prints: the headline figures of each thread setting first (a few lines
    that a terminal shows without scrolling back through the tables), then the full report,
    the same text that ``--markdown`` writes."""
    parts = [f"Summary: {title} (the full report follows)"]
    for threads, text in summaries.items():
        parts += ["", f"{_threads_label(threads)}:", text]
    return "\n".join([*parts, "", full_report])


def chart(cells: list[Cell], peers: list[str], path: str | Path, threads: str = "single") -> None:
    """Bars of time / floor (lower is better, log scale) per cell and contender."""
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


def write_section(path: str | Path, text: str) -> None:
    """Write a report (text opening with its ``## `` heading) into ``path``, replacing the
    section with the same heading and keeping the others, so that the NumPy and Torch reports
    can share one results file and each run rewrites only its own."""
    path = Path(path)
    heading = text.splitlines()[0]
    old = path.read_text() if path.exists() else ""
    # Chunks: an optional preamble, then one per "## " heading (its "###" subsections included).
    chunks = [c.rstrip() for c in re.split(r"(?m)^(?=## )", old) if c.strip()]
    headings = [c.splitlines()[0] for c in chunks]
    if heading in headings:
        chunks[headings.index(heading)] = text.rstrip()
    else:
        chunks.append(text.rstrip())
    path.write_text("\n\n".join(chunks) + "\n")


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1e3:.3f}"


def _ratio(peer: float | None, ours: float) -> str:
    return "—" if peer is None else f"{peer / ours:.2f}"


def _geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def main(args: Any) -> int:
    """Entry point of ``norm-transforms bench`` (arguments parsed in :mod:`norm_transforms.cli`)."""
    cells, peers = run(
        modes=tuple(args.modes),
        dtypes=tuple(args.dtypes),
        sizes=tuple(args.sizes or SIZES),
        threads=tuple(args.threads or THREADS),
        budget_s=args.budget,
        peer_pythons=tuple(args.peer_python),
        with_albumentations=not args.no_albumentations,
        progress=not args.no_progress,
    )
    text = report(cells, peers)
    summaries = {
        threads: summary(cells, peers, threads) for threads in dict.fromkeys(c.threads for c in cells)
    }
    print(console_text("NumPy backend vs peers", summaries, text))
    if args.markdown:
        write_section(args.markdown, text)
    if args.chart:
        chart(cells, peers, args.chart)
        print(f"chart written to {args.chart}", file=sys.stderr)
    return 0
