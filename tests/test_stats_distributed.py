"""Statistics across the ranks of a process group (norm_transforms/stats/distributed.py), on
gloo ranks on CPU: ``ChannelStats.all_reduce`` gives every rank the statistics of all the data,
the same bits on each, float moments included; ``compute_stats(..., distributed=True)`` shares
files and tar shards out among the ranks, gives the bits of one process, and raises an error of
any rank on every rank rather than leave the others waiting; the ``stats`` command under
torchrun prints once.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socket
import sys
import tarfile
import tempfile
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_stats import assert_matches_reference, random_images, stats_of, with_zeros
from test_stats_sources import smooth_rgb, write_image

from norm_transforms import ChannelStats, compute_stats


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
    # Signed: int16 histograms are summed; int32 integer sums (int64 limbs) gathered and merged.
    signed_rng = np.random.default_rng(200 + rank)
    int16 = stats_of(random_images(signed_rng, np.int16, 2, count=2 + rank)).all_reduce()
    int32 = stats_of(random_images(signed_rng, np.int32, 3, count=3 - rank)).all_reduce()
    with open(os.path.join(out_dir, f"{rank}.json"), "w") as file:
        json.dump(
            [stats.to_dict() for stats in (integer, floating, only_rank_0, int16, int32, *nonzero)], file
        )
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
    integer, floating, only_rank_0, int16, int32, *nonzero = (
        ChannelStats.from_dict(state) for state in results[0]
    )
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
    int16_images, int32_images = [], []
    for rank in range(2):
        signed_rng = np.random.default_rng(200 + rank)
        int16_images += random_images(signed_rng, np.int16, 2, count=2 + rank)
        int32_images += random_images(signed_rng, np.int32, 3, count=3 - rank)
    assert int16 == stats_of(int16_images) and int32 == stats_of(int32_images)  # exact: bit for bit
    assert (int16.kind, int32.kind) == ("int16", "int32")
    # nonzero=True: the uint8 histograms summed, the float moments (a count per channel) merged.
    for index, pooled in enumerate(nonzero):
        images = nonzero_images(0)[index] + nonzero_images(1)[index]
        assert pooled.nonzero
        assert_matches_reference(pooled, images, nonzero=True)


# --------------------------------------------------------------------------- compute_stats(distributed=True)


def run_ranks(function, args: tuple, seconds: float = 30, ranks: int = 2) -> None:
    """``function(rank, *args)`` in ``ranks`` processes; a failure, never a hung suite, if they
    have not all finished within ``seconds``."""
    import torch.multiprocessing as mp

    # fork starts in ~0.2 s where spawn re-imports torch (~4 s); spawn where fork is missing.
    start = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    context = mp.start_processes(function, args=args, nprocs=ranks, start_method=start, join=False)
    for _ in range(int(seconds / 0.5)):
        if context.join(timeout=0.5):
            return
    for process in context.processes:
        process.kill()
    pytest.fail(f"the gloo ranks did not finish within {seconds} s: one waits for another")


def compute_stats_on_rank(rank: int, world_size: int, init_method: str, out_dir: str, calls: list) -> None:
    """One rank: each ``(source, keywords)`` of ``calls`` through compute_stats(distributed=True)
    in turn, in one process group; writes what each returned, warned or raised."""
    from torch import distributed

    from norm_transforms import compute_stats

    distributed.init_process_group("gloo", init_method=init_method, rank=rank, world_size=world_size)
    outcomes = []
    for source, keywords in calls:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                stats = compute_stats(source, distributed=True, progress=False, **keywords)
                outcome = {"stats": stats.to_dict()}
            except Exception as error:
                outcome = {"error": type(error).__name__, "message": str(error)}
        outcomes.append(outcome | {"warnings": [str(warning.message) for warning in caught]})
    distributed.destroy_process_group()
    Path(out_dir, f"{rank}.json").write_text(json.dumps(outcomes))


def outcomes_on_ranks(calls: list, ranks: int = 2) -> list:
    """What each call gave, the same on every rank (checked): one entry per call."""
    with tempfile.TemporaryDirectory() as out_dir:
        init = "file://" + os.path.join(out_dir, "rendezvous")
        run_ranks(compute_stats_on_rank, (ranks, init, out_dir, calls), ranks=ranks)
        results = [json.loads(Path(out_dir, f"{rank}.json").read_text()) for rank in range(ranks)]
    assert all(result == results[0] for result in results[1:])  # the same bits, errors, warnings
    return results[0]


@pytest.fixture
def images_and_shards(rng, tmp_path) -> tuple[Path, Path]:
    """A folder of 7 image files (RGB, 8-bit) and a folder of 3 tar shards of 16-bit images."""
    for index in range(7):
        write_image(tmp_path / "files" / f"{index:02d}.png", smooth_rgb(rng, size=(12 + index, 16)))
    (tmp_path / "shards").mkdir()
    for shard in range(3):
        with tarfile.open(tmp_path / "shards" / f"{shard:06d}.tar", "w") as tar:
            for index in range(2 + shard):
                image = smooth_rgb(rng, np.uint16, size=(10 + index, 14))
                data = cv2.imencode(".png", image)[1].tobytes()
                member = tarfile.TarInfo(f"{index:06d}.png")
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
    return tmp_path / "files", tmp_path / "shards"


def test_ranks_share_the_files_and_pool_the_bits_of_one_process(images_and_shards, torch):
    files, tars = images_and_shards
    # Without worker processes: these ranks are forked from pytest, whose forkserver (started by
    # other tests) is not their child and cannot serve them. Under torchrun they can (tested below).
    calls = [(str(files), {}), (str(files), {"chunksize": 1}), (str(tars), {})]
    outcomes = outcomes_on_ranks(calls)
    for (source, keywords), outcome in zip(calls, outcomes, strict=True):
        expected = compute_stats(source, progress=False, **keywords)
        assert "stats" in outcome, outcome
        assert ChannelStats.from_dict(outcome["stats"]) == expected, (source, keywords)
        assert outcome["warnings"] == []


def test_three_ranks_and_more_ranks_than_files(images_and_shards, torch):
    files, tars = images_and_shards
    calls = [(str(files), {}), (str(sorted(files.iterdir())[0]), {}), (str(tars), {})]
    for (source, _), outcome in zip(calls, outcomes_on_ranks(calls, ranks=3), strict=True):
        assert ChannelStats.from_dict(outcome["stats"]) == compute_stats(source, progress=False)


def test_an_error_on_one_rank_is_raised_on_every_rank_and_none_waits(images_and_shards, torch, tmp_path):
    files, _ = images_and_shards
    (files / "03.png").write_bytes(b"not a png")  # task 3 of 7 with chunksize=1: rank 1's
    calls = [
        (str(files), {"chunksize": 1}),
        (str(tmp_path / "missing"), {}),  # rank 0 lists the files for all
        (str(files), {"chunksize": 1, "skip_unreadable": True}),
        ([str(files / "00.png"), str(files / "05.png")], {}),  # the group is still in step
    ]
    unreadable, missing, skipped, after = outcomes_on_ranks(calls)
    assert unreadable["error"] == "OSError"
    assert re.match(
        r"rank 1 of 2: cannot read 1 file: .*03\.png \(OpenCV cannot read it\)", unreadable["message"]
    )
    assert (missing["error"], missing["message"]) == (
        "FileNotFoundError",
        f"no such file or folder: {tmp_path / 'missing'}",
    )
    # Every rank warns about every skipped file, its own or another's.
    assert len(skipped["warnings"]) == 1 and re.match(r"skipped 1 file: .*03\.png", skipped["warnings"][0])
    readable = [path for path in sorted(files.iterdir()) if path.name != "03.png"]
    assert ChannelStats.from_dict(skipped["stats"]) == compute_stats(
        [str(p) for p in readable], progress=False
    )
    assert ChannelStats.from_dict(after["stats"]).images == 2


def test_float_images_pool_to_the_float64_reference(rng, tmp_path, torch):
    images = [rng.random((8 + index, 9, 3)).astype(np.float32) for index in range(5)]
    for index, image in enumerate(images):
        write_image(tmp_path / f"{index}.tif", image)
    (outcome,) = outcomes_on_ranks([(str(tmp_path), {"chunksize": 1})])
    # Float moments are merged in rank order: the same bits on every rank, and those of one
    # process to float64 rounding (as for a different number of workers).
    assert_matches_reference(ChannelStats.from_dict(outcome["stats"]), images)


def test_images_that_differ_between_ranks_are_an_error_on_every_rank(rng, tmp_path, torch):
    write_image(tmp_path / "a.png", smooth_rgb(rng))
    write_image(tmp_path / "b.png", smooth_rgb(rng)[..., 0])  # rank 1's: one channel
    (outcome,) = outcomes_on_ranks([(str(tmp_path), {"chunksize": 1})])
    assert outcome["error"] == "ValueError"
    assert re.search(r"3 channels, e\.g\. .*a\.png; .*1 channel, e\.g\. .*b\.png", outcome["message"])


def test_distributed_needs_a_process_group_and_files(torch):
    with pytest.raises(ValueError, match="init_process_group"):
        compute_stats("anything", distributed=True)
    with pytest.raises(ValueError, match=r"distributed= shares out files .* ChannelStats\.all_reduce"):
        compute_stats(np.zeros((2, 2, 3), np.uint8), distributed=True)


# --------------------------------------------------------------------------- the stats command


def test_stats_command_under_torchrun_prints_once_the_bits_of_one_process(images_and_shards, tmp_path, torch):
    from test_stats_sources import run_to_deadline

    import norm_transforms

    files, tars = images_and_shards
    for shard in tars.iterdir():  # 8-bit RGB shards, to pool with the files
        shard.unlink()
    for index in range(3):
        tar_of_files = [files / f"{number:02d}.png" for number in range(index, 7, 3)]
        with tarfile.open(tars / f"{index:06d}.tar", "w") as tar:
            for path in tar_of_files:
                tar.add(path, arcname=f"{index}-{path.name}")
    out = tmp_path / "stats.json"
    package_root = str(Path(norm_transforms.__file__).resolve().parents[1])
    env = os.environ | {"PYTHONPATH": os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")])}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    command = ["-m", "norm_transforms", "stats", str(files), str(tars), "--json", str(out), "--workers", "1"]
    # About 10 s on 2 cores, most of it torch's import in the launcher and in each rank.
    completed = run_to_deadline([*torchrun, *command], 90, env=env, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    expected = compute_stats([files, tars], progress=False)
    assert ChannelStats.load(out) == expected
    assert completed.stdout.count(f"{expected.images} images (uint8, 3 channels)") == 1  # rank 0's
    assert completed.stderr.count("statistics: 100%") == 1  # rank 0's progress bar


def command_on_rank(rank: int, world_size: int, port: int, out_dir: str, argv: list) -> None:
    """One rank of ``norm-transforms stats`` started as torchrun starts it (the env:// variables);
    writes its exit code, what it printed and what it warned."""
    from norm_transforms.cli import main

    environment = {"RANK": rank, "LOCAL_RANK": rank, "WORLD_SIZE": world_size, "MASTER_PORT": port}
    os.environ.update({name: str(value) for name, value in environment.items()})
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    out, err = io.StringIO(), io.StringIO()
    with (
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        try:
            code = main(argv)
        except SystemExit as exit_info:
            code = exit_info.code
    said = [out.getvalue(), err.getvalue(), [str(warning.message) for warning in caught]]
    Path(out_dir, f"{rank}.json").write_text(json.dumps([code, *said]))


def command_on_ranks(argv: list[str]) -> list:
    with socket.socket() as probe:  # a free port for rank 0's store
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as out_dir:
        run_ranks(command_on_rank, (2, port, out_dir, argv))
        return [json.loads(Path(out_dir, f"{rank}.json").read_text()) for rank in range(2)]


def test_stats_command_on_ranks_reports_an_error_of_one_rank_once(images_and_shards, torch):
    files, _ = images_and_shards
    (files / "03.png").write_bytes(b"not a png")  # task 3 of 7, one file a task: rank 1's
    rank_0, rank_1 = command_on_ranks(["stats", str(files), "--no-progress"])
    assert (rank_0[0], rank_1[0]) == (1, 1)  # exit codes
    assert re.match(r"norm-transforms stats: error: rank 1 of 2: cannot read 1 file: .*03\.png", rank_0[2])
    assert rank_0[1] == "" and rank_1[1:] == ["", "", []]  # rank 1 says nothing
    rank_0, rank_1 = command_on_ranks(["stats", str(files), "--no-progress", "--skip-unreadable"])
    assert (rank_0[0], rank_1[0]) == (0, 0)
    assert "6 images (uint8, 3 channels)" in rank_0[1]
    assert len(rank_0[3]) == 1 and re.match(r"skipped 1 file: .*03\.png", rank_0[3][0])
    assert rank_1[1:] == ["", "", []]


def test_one_rank_is_no_process_group(folder_of_one, monkeypatch, capsys):
    from norm_transforms.cli import main

    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")  # torchrun --nproc-per-node 1: no group to join
    assert main(["stats", str(folder_of_one), "--no-progress"]) == 0
    assert "1 images (uint8, 3 channels)" in capsys.readouterr().out


def test_a_world_size_that_is_not_a_number_is_said_plainly(folder_of_one, monkeypatch):
    from norm_transforms.cli import main

    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(SystemExit, match="WORLD_SIZE must be a whole number; got 'two'"):
        main(["stats", str(folder_of_one), "--no-progress"])


@pytest.fixture
def folder_of_one(rng, tmp_path) -> Path:
    write_image(tmp_path / "a.png", smooth_rgb(rng))
    return tmp_path


@pytest.mark.parametrize("value", [None, 1, "yes"])
def test_distributed_is_a_bool_or_a_process_group(value):
    with pytest.raises(ValueError, match=rf"distributed must be False, True .* got {value!r}"):
        compute_stats("anything", distributed=value)
