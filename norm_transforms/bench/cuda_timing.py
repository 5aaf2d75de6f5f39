"""Timing on a CUDA device: CUDA-event medians with a cold L2 cache, and the device-copy probe
that the Torch suite's bandwidth figures are measured against."""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

COPY_BYTES = 1 << 30  # the device-copy probe: 1 GiB of float32
L2_FLUSH_BYTES = 256 << 20  # larger than the L2 cache of any current GPU (H100: 50 MB)


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
