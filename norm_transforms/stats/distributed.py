"""Pooling statistics across the ranks of a ``torch.distributed`` process group, exactly, and
the agreements that ``compute_stats(..., distributed=True)`` needs before it pools.

Small exact facts (kind, channels, image and pixel counts) travel as Python objects. Additive
totals (histogram counts) are summed with one int64 ``all_reduce``; the others (float moments)
are gathered and merged in rank order, so that every rank does the same float operations in the
same order and holds the same bits. Torch is imported only when this runs.

A rank that raises while the others go on to the next collective would leave them waiting until
the process group's timeout (30 minutes for gloo). So the work that can fail on one rank only
(listing the files, decoding them) is followed by an exchange in which every rank says whether
it failed, and all raise the same error if any did.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

from .._optional import require
from .accumulators import Accumulator, describe, new_accumulator

Value = TypeVar("Value")

# Errors that cross to the other ranks as themselves (the command reports them without a
# traceback); any other is raised there as a RuntimeError that names it.
_SHARED_ERRORS = {
    cls.__name__: cls for cls in (OSError, FileNotFoundError, PermissionError, ValueError, TypeError)
}


def is_process_group(value: Any) -> bool:
    """Whether ``value`` is a ``torch.distributed`` process group (torch is not imported to
    find out: no torch, no group)."""
    if "torch" not in sys.modules:
        return False
    from torch import distributed

    return distributed.is_available() and isinstance(value, distributed.ProcessGroup)


def rank_and_size(group: Any) -> tuple[int, int]:
    """This process's rank in ``group`` (None: the default group) and the number of ranks."""
    distributed = require("torch.distributed", "compute_stats(distributed=True)")
    if not distributed.is_available() or not distributed.is_initialized():
        raise ValueError(
            "distributed=True needs torch.distributed set up: call torch.distributed.init_process_group "
            "first (torchrun sets up what it reads), or leave distributed=False"
        )
    return distributed.get_rank(group), distributed.get_world_size(group)


def from_first_rank(make: Callable[[], Value], group: Any) -> Value:
    """``make()`` run on the group's rank 0 only, and its result (or its error) on every rank."""
    from torch import distributed

    error: Exception | None = None
    payload: list[Any] = [None]
    if distributed.get_rank(group) == 0:
        try:
            payload = [(None, make())]
        except Exception as failure:
            error, payload = failure, [((type(failure).__name__, str(failure)), None)]
    distributed.broadcast_object_list(payload, group=group, group_src=0)
    failure, value = payload[0]
    if failure is not None:
        raise _shared_error(*failure) from error
    return value


def gather_or_raise(value: Any, error: Exception | None, group: Any) -> list[Any]:
    """Every rank's ``value`` in rank order, on every rank; or, where any rank passed an
    ``error``, that error raised on every rank (the lowest rank's, naming it and the others)."""
    from torch import distributed

    ranks = distributed.get_world_size(group)
    sent = (None, value) if error is None else ((type(error).__name__, str(error)), None)
    seen: list[Any] = [None] * ranks
    distributed.all_gather_object(seen, sent, group)
    failed = [rank for rank, (failure, _) in enumerate(seen) if failure is not None]
    if failed:
        name, message = seen[failed[0]][0]
        also = f" (rank{'s' if len(failed) > 2 else ''} {', '.join(map(str, failed[1:]))} failed too)"
        raise _shared_error(
            name, f"rank {failed[0]} of {ranks}: {message}" + (also if len(failed) > 1 else "")
        ) from error
    return [entry for _, entry in seen]


def _shared_error(name: str, message: str) -> Exception:
    cls = _SHARED_ERRORS.get(name)
    return cls(message) if cls is not None else RuntimeError(f"{name}: {message}")


def all_reduce_totals(
    totals: Accumulator | None, images: int, group: Any, nonzero: bool = False
) -> tuple[Accumulator | None, int]:
    """Every rank's ``(totals, images)`` pooled: what this rank passes in is its own share
    (``None`` when it counted nothing). Ranks that counted nothing adopt the kind of the others;
    ranks of different kinds or channel counts, or some with ``nonzero`` and some without, are
    a ``ValueError`` that lists each rank's."""
    from torch import distributed

    ranks = distributed.get_world_size(group)
    seen: list[Any] = [None] * ranks
    mine = (None, None) if totals is None else (totals.kind, totals.channels)
    count = 0 if totals is None else totals.count
    distributed.all_gather_object(seen, (*mine, images, count, nonzero), group)
    if len({entry[4] for entry in seen}) > 1:
        described = ", ".join(f"rank {rank}: nonzero={entry[4]}" for rank, entry in enumerate(seen))
        raise ValueError(f"ranks counted with and without nonzero=True and cannot be pooled: {described}")
    kinds = {(kind, channels) for kind, channels, *_ in seen if kind is not None}
    if len(kinds) > 1:
        described = ", ".join(f"rank {rank}: {describe(*entry[:2])}" for rank, entry in enumerate(seen))
        raise ValueError(f"ranks counted different kinds of images and cannot be pooled: {described}")
    if not kinds:
        return totals, images
    kind, channels = kinds.pop()
    if totals is None:
        totals = new_accumulator(kind, channels, nonzero)
    device = _collective_device(distributed, group)
    counts = [entry[3] for entry in seen]
    pool = _sum if totals.additive else _gather_and_merge
    return pool(distributed, group, device, totals, counts), sum(entry[2] for entry in seen)


def _sum(distributed: Any, group: Any, device: Any, totals: Accumulator, counts: list[int]) -> Accumulator:
    import torch

    # A copy: all_reduce writes in place, and on a CPU device .to() shares the totals' memory.
    local = torch.from_numpy(totals.to_array().copy()).to(device)
    distributed.all_reduce(local, op=distributed.ReduceOp.SUM, group=group)
    return type(totals).from_array(local.cpu().numpy().copy(), sum(counts), totals.kind)


def _gather_and_merge(
    distributed: Any, group: Any, device: Any, totals: Accumulator, counts: list[int]
) -> Accumulator:
    import torch

    local = torch.from_numpy(totals.to_array()).to(device)
    gathered = [torch.empty_like(local) for _ in counts]
    distributed.all_gather(gathered, local, group=group)
    pooled = new_accumulator(totals.kind, totals.channels, totals.nonzero)
    accumulator = type(totals)
    for count, entry in zip(counts, gathered, strict=True):
        # Rank order: the same merges, so the same bits, on every rank.
        pooled.merge(accumulator.from_array(entry.cpu().numpy(), count, totals.kind))
    return pooled


def _collective_device(distributed: Any, group: Any) -> Any:
    """NCCL moves CUDA tensors only; every other backend here takes CPU tensors."""
    import torch

    if distributed.get_backend(group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
