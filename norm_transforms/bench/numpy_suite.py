"""``norm-transforms bench``: our Normalize against the peers people use, in one run.

Times every mode x dtype x size on generated RGB images, single-threaded and with default
threads, beside ``albumentations.Normalize`` (in this interpreter, when installed), any peer
living in another interpreter (``--peer-python``), the straightforward NumPy version of a mode
the peers lack (``np.percentile``), and the floor: ``astype(float32)`` for integer input,
``copy()`` for float32. int16 images (CT in Hounsfield units; ``--dtypes int16``) are also
timed against the float64 NumPy code such images are normalized with today, and report in a
section of their own. Reports medians, ratios and peak memory as Markdown, and optionally a
PNG chart (:mod:`.chart`).

Which peer runs a mode is read from the mode's data in :data:`norm_transforms.modes.MODES`
(``albumentations``, ``statistic``, ``per_channel``, ``clip``), never from a list of names: a
mode that no peer implements is timed (ours and the floor) and its peer columns read "—".
"""

from __future__ import annotations

import functools
import json
import platform
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ..modes import DEFAULT_PERCENTILES, EPS, IMAGENET_MEAN, IMAGENET_STD, MODES, Mode
from . import _timing
from .machine import THREADS, machine_line, package_version, threads_label
from .report import (
    THREADS_COMPARED,
    by_threads,
    geomean,
    progress_bar,
    publish,
    ratio_table,
    speedup_lines,
    threads_comparison,
)

DTYPES = ("uint8", "float32")
#: Accepted by ``--dtypes`` beside the defaults: int16, CT slices in Hounsfield units.
EXTRA_DTYPES = ("int16",)
SIZES = (224, 512, 1024)
TITLE = "NumPy backend vs peers"
PERCENTILE_PEER = "np.percentile"
FLOAT64_PEER = "NumPy float64"


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


# --------------------------------------------------------------------------- contenders


def numpy_percentile_reference(image: np.ndarray, mode: Mode) -> np.ndarray:
    """A percentile mode written the straightforward way: np.percentile over the image (or each
    channel), then the affine and the mode's clip."""
    values = image.astype(np.float32)
    axes = (0, 1) if mode.per_channel else None
    low, high = np.percentile(values, DEFAULT_PERCENTILES, axis=axes)
    normalized = (values - low) / (high - low + EPS)
    return normalized if mode.clip is None else np.clip(normalized, *mode.clip)


def numpy_float64_reference(image: np.ndarray, mode: Mode) -> np.ndarray:
    """A mode written the straightforward way in float64, as CT pipelines do it today: the image
    as float64, its statistics with NumPy, the affine, the clip, float32 out. ``standard`` with
    ImageNet's mean and std and max_pixel_value 1.0 (what the suite times for int16)."""
    values = image.astype(np.float64)
    axes = (0, 1) if mode.per_channel else None
    if mode.statistic is None:
        center, spread = np.array(IMAGENET_MEAN), np.array(IMAGENET_STD)
    elif mode.statistic == "mean_std":
        center, spread = values.mean(axis=axes), values.std(axis=axes)
    elif mode.statistic == "min_max":
        center = values.min(axis=axes)
        spread = values.max(axis=axes) - center
    elif mode.statistic == "percentile":
        center, high = np.percentile(values, DEFAULT_PERCENTILES, axis=axes)
        spread = high - center
    else:  # robust
        lower_quartile, center, upper_quartile = np.percentile(values, (25, 50, 75), axis=axes)
        spread = upper_quartile - lower_quartile
    normalized = (values - center) / (spread + (0.0 if mode.statistic is None else EPS))
    normalized = normalized if mode.clip is None else np.clip(normalized, *mode.clip)
    return normalized.astype(np.float32)


#: Peers timed in this process, by the statistic they compute: (name, the version a user would
#: write). A statistic missing here (and in Albumentations) has no peer: "—" in the report.
STATISTIC_PEERS: dict[str, tuple[str, Callable[[np.ndarray, Mode], np.ndarray]]] = {
    "percentile": (PERCENTILE_PEER, numpy_percentile_reference),
}

#: Peers timed in this process on every mode of one input dtype: int16 CT slices are normalized
#: with float64 NumPy code today.
DTYPE_PEERS: dict[str, tuple[str, Callable[[np.ndarray, Mode], np.ndarray]]] = {
    "int16": (FLOAT64_PEER, numpy_float64_reference),
}


def ours_call(image: np.ndarray, mode: str, max_pixel_value: float) -> Callable[[], np.ndarray]:
    """What ``Normalize.apply`` runs: the arguments validated once, at construction."""
    from ..backends import numpy as numpy_backend
    from ..modes import NormalizeParams

    params = NormalizeParams.build(max_pixel_value=max_pixel_value, normalization=mode)
    return functools.partial(numpy_backend.normalize, image, params)


def floor_call(image: np.ndarray) -> Callable[[], np.ndarray]:
    """The least any normalization of this input costs: one float32 output written."""
    return image.copy if image.dtype == np.float32 else (lambda: image.astype(np.float32))


def _time_case(thread_name: str, case: dict[str, Any], budget_s: float) -> tuple[Cell, list[str]]:
    """Ours, the floor and the in-process peers of the case's statistic and dtype, if any."""
    image = _timing.make_image(case["dtype"], case["size"])
    cell = Cell(thread_name, case["mode"], case["dtype"], case["size"])
    ours = ours_call(image, case["mode"], _timing.max_pixel_value_for(case["dtype"]))
    cell.seconds["ours"] = _timing.time_call(ours, budget_s)
    cell.peak_bytes["ours"] = _timing.peak_memory(ours)
    cell.seconds["floor"] = _timing.time_call(floor_call(image), budget_s)
    mode = MODES[case["mode"]]
    peers = [STATISTIC_PEERS.get(mode.statistic or ""), DTYPE_PEERS.get(case["dtype"])]
    for name, reference in filter(None, peers):
        cell.seconds[name] = _timing.time_call(functools.partial(reference, image, mode), budget_s)
    return cell, [peer[0] for peer in peers if peer is not None]


# --------------------------------------------------------------------------- run


def run(
    modes: tuple[str, ...] | None = None,
    dtypes: tuple[str, ...] = DTYPES,
    sizes: tuple[int, ...] = SIZES,
    threads: tuple[str, ...] = tuple(THREADS),
    budget_s: float = 0.1,
    peer_pythons: tuple[str, ...] = (),
    with_albumentations: bool = True,
    progress: bool = False,
) -> tuple[list[Cell], list[str]]:
    """Run the suite (``modes=None``: every mode of MODES); returns the cells and the names of
    the peers measured. ``progress`` shows a tqdm bar on stderr, one step per cell and peer
    timed (stdout keeps only the report)."""
    cells: dict[tuple[str, str, str, int], Cell] = {}
    peers: list[str] = []
    modes = tuple(MODES) if modes is None else modes
    cases = [{"mode": m, "dtype": d, "size": s} for m in modes for d in dtypes for s in sizes]
    # Albumentations (in any interpreter) runs only the modes it has.
    peer_cases = [case for case in cases if MODES[case["mode"]].albumentations]
    with_albumentations = bool(peer_cases) and with_albumentations and _albumentations_available()
    peer_runs = (len(peer_pythons) + int(with_albumentations)) if peer_cases else 0
    total = len(threads) * (len(cases) + peer_runs * len(peer_cases))
    with progress_bar(total, progress) as bar:
        for thread_name in threads:
            _timing.set_threads(THREADS[thread_name])
            bar.set_description(f"{threads_label(thread_name)}: ours")
            for case in cases:
                bar.set_postfix_str(f"{case['mode']} {case['dtype']} {case['size']}²")
                cell, in_process_peers = _time_case(thread_name, case, budget_s)
                cells[cell.key] = cell
                peers += in_process_peers
                bar.update()
            bar.set_postfix_str("")
            peer_results = []
            if with_albumentations:
                bar.set_description(f"{threads_label(thread_name)}: albumentations")
                peer_results.append(
                    _timing.time_albumentations(
                        peer_cases, THREADS[thread_name], budget_s, done=lambda _: bar.update()
                    )
                )
            for python in peer_pythons if peer_cases else ():
                bar.set_description(f"{threads_label(thread_name)}: {python}")
                peer_results.append(time_in_peer(python, peer_cases, THREADS[thread_name], budget_s))
                bar.update(len(peer_cases))
            peers += [_merge(cells, thread_name, peer) for peer in peer_results]
            _timing.set_threads(None)
    return list(cells.values()), list(dict.fromkeys(peers))


def _albumentations_available() -> bool:
    try:
        import albumentations  # noqa: F401
    except ImportError:
        return False
    return True


def time_in_peer(python: str, cases: list[dict[str, Any]], threads: int | None, budget_s: float) -> dict:
    """The timings of ``albumentations.Normalize`` as the interpreter ``python`` has it."""
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
            "`x.astype(np.float32)` for uint8 and int16, `x.copy()` for float32; int16: Hounsfield "
            "units -1024..3071, max_pixel_value 1.0",
            "- Peak memory: tracemalloc peak during one call / output size (float32)",
        ]
    )


def _default_cv2_threads() -> int:
    previous = cv2.getNumThreads()
    cv2.setNumThreads(-1)
    default = cv2.getNumThreads()
    cv2.setNumThreads(previous)
    return default


LABELS = [("mode", lambda c: c.mode), ("dtype", lambda c: c.dtype), ("size", lambda c: f"{c.size}²")]
MEMORY = [("peak mem / output", lambda c: f"{c.peak_bytes['ours'] / c.output_bytes:.2f}")]


def markdown_table(rows: list[Cell], peers: list[str]) -> str:
    """One Markdown table: times in ms, then peer / ours and ours / floor ratios, peak memory."""
    return ratio_table(rows, peers, LABELS, MEMORY)


def mode_group(mode: Mode) -> str:
    """The summary group of a mode: the Albumentations modes, or ours by statistic."""
    return "Albumentations modes" if mode.albumentations else f"{mode.statistic or 'constant'} modes"


def summary(rows: list[Cell], peers: list[str]) -> str:
    """The target figures of one thread setting: speed-ups over each peer, time over the floor,
    memory."""
    lines = speedup_lines(rows, peers)
    # The Albumentations modes and ours apart: a percentile needs a sort or a histogram, so
    # pooling them would hide how far the drop-in modes are from the floor.
    groups: dict[str, list[Cell]] = {"Albumentations modes": []}
    for cell in rows:
        groups.setdefault(mode_group(MODES[cell.mode]), []).append(cell)
    for label, group in groups.items():
        if not group:
            continue
        large = [c.seconds["ours"] / c.seconds["floor"] for c in group if c.size >= 512]
        if large:
            lines.append(
                f"- ours / floor, {label}, geometric mean over the 512² and 1024² cells: {geomean(large):.2f}"
            )
        worst_memory = max(c.peak_bytes["ours"] / c.output_bytes for c in group)
        lines.append(f"- peak memory / output size, {label}, worst cell: {worst_memory:.2f}")
    return "\n".join(lines)


def sections(cells: list[Cell], peers: list[str]) -> dict[str, tuple[str, str]]:
    """threads -> (summary, table), the body of the report, then the two settings compared."""
    body = {
        threads: (summary(rows, peers), markdown_table(rows, peers))
        for threads, rows in by_threads(cells).items()
    }
    compared = threads_comparison(cells, peers, LABELS)
    return body | ({THREADS_COMPARED: compared} if compared else {})


def title(dtypes: tuple[str, ...]) -> str:
    """The report's heading: its own section for runs with other dtypes than the defaults, so
    that ``--dtypes int16 --markdown RESULTS.md`` adds a section instead of replacing the main one."""
    return TITLE if set(dtypes) <= set(DTYPES) else f"{TITLE}: {', '.join(dtypes)}"


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
    publish(title(tuple(args.dtypes)), machine_header(), sections(cells, peers), args.markdown)
    if args.chart:
        from .chart import chart

        chart(cells, peers, args.chart)
        print(f"chart written to {args.chart}", file=sys.stderr)
    return 0
