"""Pooling statistics across the ranks of a ``torch.distributed`` process group, exactly.

Small exact facts (kind, channels, image and pixel counts) travel as Python objects. Additive
totals (histogram counts) are summed with one int64 ``all_reduce``; the others (float moments)
are gathered and merged in rank order, so that every rank does the same float operations in the
same order and holds the same bits. Torch is imported only when this runs.
"""

from __future__ import annotations

from typing import Any

from .accumulators import Accumulator, describe, new_accumulator


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
