"""What a benchmark report says about where it ran: the machine, the versions, the thread settings.

Shared by the NumPy and Torch suites and by benchmarks/bench_stats.py, so that every section of
benchmarks/RESULTS.md opens with the same machine line.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

#: The thread settings a suite runs under: ``single`` pins OpenCV (and torch) to one thread,
#: ``default`` leaves each library its own default (:func:`._timing.set_threads`).
THREADS: dict[str, int | None] = {"single": 1, "default": None}


def threads_label(threads: str) -> str:
    """'single thread' or 'default threads': a report's subsection heading."""
    return f"{threads} thread{'s' if threads == 'default' else ''}"


def package_version(name: str) -> str:
    """The installed version of distribution ``name``, or 'not installed'."""
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
