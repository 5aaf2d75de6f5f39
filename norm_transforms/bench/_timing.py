"""Timing primitives shared by ``norm-transforms bench`` and peers run in another interpreter.

This file imports only NumPy and OpenCV at module level, and nothing of this package, so a peer
environment (for example AlbumentationsX, which cannot share an environment with
albumentations) runs it as a script, by path, without norm-transforms installed:

    /path/to/peer/python .../norm_transforms/bench/_timing.py \
        '{"cases": [{"mode": "standard", "dtype": "uint8", "size": 224}], "threads": 1, "budget_s": 0.2}'

and prints one JSON object with the peer's timings of ``albumentations.Normalize``. Run so, this
folder is the first entry of the peer's ``sys.path``: no module here may share a name with one
that the peer imports (tests/test_bench_timing.py checks both properties).
"""

from __future__ import annotations

import functools
import gc
import json
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

SEED = 20261121


def make_image(dtype: str, size: int, channels: int = 3) -> np.ndarray:
    """The benchmark's generated photo stand-in: uniform noise, same bytes in every process.
    int16 stands in for CT: Hounsfield units from -1024 (air) to 3071 (dense bone, 12 bits)."""
    rng = np.random.default_rng(SEED + size)
    if dtype == "int16":
        return rng.integers(-1024, 3072, (size, size, channels)).astype(np.int16)
    pixels = rng.integers(0, 256, (size, size, channels), dtype=np.uint8)
    if dtype == "uint8":
        return pixels
    return pixels.astype(np.float32) / np.float32(255.0)


def max_pixel_value_for(dtype: str) -> float:
    """255 for uint8; 1.0 for float32 in [0, 1] and for int16 in Hounsfield units (mean and std in
    HU: signed images have no full scale)."""
    return 255.0 if dtype == "uint8" else 1.0


def set_threads(threads: int | None) -> int:
    """1 pins OpenCV (and torch, when loaded) to one thread; None restores their defaults."""
    cv2.setNumThreads(-1 if threads is None else threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads or default_torch_threads(torch))
    return cv2.getNumThreads()


def default_torch_threads(torch: Any) -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else torch.get_num_threads()


def time_call(fn: Callable[[], Any], budget_s: float, min_calls: int = 5, max_calls: int = 2000) -> float:
    """Median seconds per call, over as many calls as fit in ``budget_s`` (GC paused)."""
    fn()  # warm caches, lazy imports and allocator pools
    times: list[float] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        deadline = time.perf_counter() + budget_s
        while len(times) < max_calls and (len(times) < min_calls or time.perf_counter() < deadline):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    finally:
        if gc_was_enabled:
            gc.enable()
    return statistics.median(times)


def peak_memory(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated (traced by tracemalloc, which sees NumPy buffers) during one call."""
    fn()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline, _ = tracemalloc.get_traced_memory()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
        del result
    finally:
        tracemalloc.stop()
    return peak - baseline


def time_albumentations(
    cases: list[dict[str, Any]],
    threads: int | None,
    budget_s: float,
    done: Callable[[dict[str, Any]], Any] | None = None,
) -> dict[str, Any]:
    """Time ``albumentations.Normalize(...).apply`` on each case, in this interpreter; ``done``
    is called with each case once timed (the bench's progress bar)."""
    import albumentations as A

    set_threads(threads)
    results = []
    for case in cases:
        image = make_image(case["dtype"], case["size"])
        mpv = max_pixel_value_for(case["dtype"])
        transform = A.Normalize(normalization=case["mode"], max_pixel_value=mpv, p=1.0)
        call = functools.partial(transform.apply, image)
        results.append({**case, "seconds": time_call(call, budget_s), "peak_bytes": peak_memory(call)})
        if done is not None:
            done(case)
    return {"name": albumentations_label(), "results": results}


def albumentations_label() -> str:
    """'albumentations 2.0.8' or 'AlbumentationsX 2.5.1': both install as ``albumentations``."""
    from importlib import metadata

    try:
        return f"AlbumentationsX {metadata.version('albumentationsx')}"
    except metadata.PackageNotFoundError:
        return f"albumentations {metadata.version('albumentations')}"


if __name__ == "__main__":
    request = json.loads(sys.argv[1])
    json.dump(time_albumentations(request["cases"], request["threads"], request["budget_s"]), sys.stdout)
