"""How many threads the C kernels use for large work: ``set_num_threads`` / ``get_num_threads``.

The C kernels (``backends/_kernels.c``) split a call across threads only when it is large
enough to gain: 4 MB of input plus output per thread for a call on its own (a 1024x1024 RGB
image uses two threads, a 512x512 one stays on the calling thread), and 512 KB per thread within
a run of calls, such as a loop over the images of a batch, where the workers are already awake
(a 320x320 RGB image and up).
Output bits are the same for any thread count. For such a call they ask
:func:`threads_for_kernels`, which answers, in this order:

1. ``set_num_threads(n)``, when called with a number;
2. the environment variable ``NORM_TRANSFORMS_NUM_THREADS``;
3. one thread inside a ``torch.utils.data.DataLoader`` worker (each worker is a process of its
   own: threads there compete with the other workers for the same cores);
4. else every usable core (``os.sched_getaffinity`` where there is one), but no more than
   torch's and OpenCV's thread settings when those libraries are loaded, so that
   ``torch.set_num_threads(1)`` or ``cv2.setNumThreads(1)`` (what a benchmark or a server with
   one core per process sets) holds for these kernels too.

Windows builds run every call on one thread, and so does the NumPy fallback (no C kernels).
"""

from __future__ import annotations

import operator
import os
import sys

__all__ = ["NUM_THREADS_VARIABLE", "get_num_threads", "set_num_threads", "threads_for_kernels"]

NUM_THREADS_VARIABLE = "NORM_TRANSFORMS_NUM_THREADS"

_requested: int | None = None


def set_num_threads(threads: int | None) -> None:
    """Let large calls of the C kernels use up to ``threads`` threads (``1``: the calling thread
    only); ``None`` restores the default (see the module docstring)."""
    global _requested
    _requested = None if threads is None else _checked_count(threads, "threads")


def get_num_threads() -> int:
    """The number of threads a large call would use now."""
    return threads_for_kernels()


def threads_for_kernels() -> int:
    """The thread count for a large call; the C kernels call this at each one (~1 µs, against
    the hundreds of µs such a call takes)."""
    if _requested is not None:
        return _requested
    configured = os.environ.get(NUM_THREADS_VARIABLE)
    if configured is not None:
        return _count_from_environment(configured)
    return _default_threads()


def _default_threads() -> int:
    torch = sys.modules.get("torch")
    if torch is not None and _in_dataloader_worker(torch):
        return 1
    threads = _usable_cores()
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:
        threads = min(threads, cv2.getNumThreads())  # 1 after setNumThreads(0) or (1)
    if torch is not None:
        threads = min(threads, torch.get_num_threads())
    return max(threads, 1)


def _in_dataloader_worker(torch: object) -> bool:
    data = getattr(getattr(torch, "utils", None), "data", None)
    info = getattr(data, "get_worker_info", None)
    return info is not None and info() is not None


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _checked_count(value: object, name: str) -> int:
    """A thread count given in code: a positive integer."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an int (1 or more) or None; got {type(value).__name__} {value!r}")
    count = operator.index(value)
    if count < 1:
        raise ValueError(f"{name} must be 1 or more (or None for the default); got {count}")
    return count


def _count_from_environment(text: str) -> int:
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses with its own message.
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit()) or int(digits) < 1:
        raise ValueError(f"{NUM_THREADS_VARIABLE} must be a whole number of threads, 1 or more; got {text!r}")
    return int(text)
