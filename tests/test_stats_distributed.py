"""``ChannelStats.all_reduce`` (norm_transforms/stats/distributed.py) on two gloo ranks: every
rank ends with the statistics of all the data, the same bits on each, float moments included.
"""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np
import pytest
from test_stats import assert_matches_reference, random_images, stats_of, with_zeros

from norm_transforms import ChannelStats


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


# --------------------------------------------------------------------------- torch.distributed


def distributed_rank(rank: int, world_size: int, init_method: str, out_dir: str) -> None:
    """One rank: different data on each, then all_reduce; writes what it ended with."""
    from torch import distributed

    distributed.init_process_group("gloo", init_method=init_method, rank=rank, world_size=world_size)
    rng = np.random.default_rng(100 + rank)
    integer = stats_of(random_images(rng, np.uint8, 3, count=2 + rank)).all_reduce()
    floating = stats_of(random_images(rng, np.float64, 2, count=3 - rank)).all_reduce()
    only_rank_0 = (
        stats_of(random_images(rng, np.uint16, 1, count=2)) if rank == 0 else ChannelStats()
    ).all_reduce()
    nonzero = [stats_of(images, nonzero=True).all_reduce() for images in nonzero_images(rank)]
    with open(os.path.join(out_dir, f"{rank}.json"), "w") as file:
        json.dump([stats.to_dict() for stats in (integer, floating, only_rank_0, *nonzero)], file)
    distributed.destroy_process_group()


def nonzero_images(rank: int) -> list[list[np.ndarray]]:
    """Each rank's uint8 and float32 images with zeros, for ChannelStats(nonzero=True)."""
    rng = np.random.default_rng(200 + rank)
    return [
        [with_zeros(rng, image) for image in random_images(rng, dtype, 3, count=2 + rank)]
        for dtype in (np.uint8, np.float32)
    ]


def test_all_reduce_on_gloo_gives_every_rank_the_stats_of_all_data(torch):
    import torch.multiprocessing as mp

    # fork starts in ~0.2 s where spawn re-imports torch (~4 s); spawn where fork is missing.
    start = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with tempfile.TemporaryDirectory() as out_dir:
        init = "file://" + os.path.join(out_dir, "rendezvous")
        context = mp.start_processes(
            distributed_rank, args=(2, init, out_dir), nprocs=2, start_method=start, join=False
        )
        for _ in range(120):  # at most a minute, never a hung test suite
            if context.join(timeout=0.5):
                break
        else:
            for process in context.processes:
                process.kill()
            pytest.fail("the gloo ranks did not finish within a minute")
        results = [json.loads(open(os.path.join(out_dir, f"{rank}.json")).read()) for rank in range(2)]
    assert results[0] == results[1]  # the same bits on both ranks, float moments included
    integer, floating, only_rank_0, *nonzero = (ChannelStats.from_dict(state) for state in results[0])
    expected_images = [
        random_images(np.random.default_rng(100 + rank), np.uint8, 3, count=2 + rank) for rank in range(2)
    ]
    assert integer == stats_of(expected_images[0] + expected_images[1])
    floats = []
    for rank in range(2):
        rng = np.random.default_rng(100 + rank)
        random_images(rng, np.uint8, 3, count=2 + rank)
        floats += random_images(rng, np.float64, 2, count=3 - rank)
    assert_matches_reference(floating, floats)
    rng = np.random.default_rng(100)
    random_images(rng, np.uint8, 3, count=2)
    random_images(rng, np.float64, 2, count=3)
    assert only_rank_0 == stats_of(random_images(rng, np.uint16, 1, count=2))
    # nonzero=True: the uint8 histograms summed, the float moments (a count per channel) merged.
    for index, pooled in enumerate(nonzero):
        images = nonzero_images(0)[index] + nonzero_images(1)[index]
        assert pooled.nonzero
        assert_matches_reference(pooled, images, nonzero=True)
