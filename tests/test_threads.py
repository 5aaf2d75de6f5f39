"""Threads in the C kernels: the same bits for any thread count, the default and its overrides,
fork safety, concurrent callers.

The kernels split a call across threads only past 512 KB of work a thread within a run of calls
(4 MB for a call on its own, ``backends/_kernels.c``), so the inputs here are a few MB, with
lengths that leave uneven parts and tails, and each threaded call follows another. Speed is
measured in benchmarks/, not here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import norm_transforms
from norm_transforms import threads as threads_module
from norm_transforms.backends import numpy as numpy_backend
from norm_transforms.modes import MODES, NormalizeParams

try:
    from norm_transforms.backends import _kernels as c_kernels
except ImportError:
    c_kernels = None

pytestmark = pytest.mark.skipif(c_kernels is None, reason="the C kernels are not built in this install")

SUBPROCESS_TIMEOUT = 100  # seconds; under the 120 s per-test limit, so a hang fails with output
LINUX = sys.platform.startswith("linux")
THREAD_COUNTS = [2, 3, 4]
# Past 4 MB of work, so that 4 threads get a part each.
BIG_VALUES = 1_234_567


@pytest.fixture(autouse=True)
def default_threads() -> Iterator[None]:
    yield
    norm_transforms.set_num_threads(None)


def _with_threads(count: int, call):
    """call() with up to ``count`` threads; for more than one, a call that did run on threads.

    A call takes threads from 512 KB a thread within a run of calls (one began less than 1 ms
    before), 4 MB on its own (``_kernels.c``): a call right after another is in a run, unless
    the process lost its core in between, hence the retries."""
    norm_transforms.set_num_threads(count)
    try:
        if count == 1:
            return call()
        for _ in range(20):
            call()
            before = c_kernels.parallel_jobs()
            result = call()
            if c_kernels.parallel_jobs() > before:
                return result
        raise AssertionError("the call never ran on more than one thread")
    finally:
        norm_transforms.set_num_threads(None)


def _source(rng: np.random.Generator, dtype, values: int) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=values, endpoint=True).astype(dtype)
    source = (rng.standard_normal(values) * 50).astype(dtype)
    source[rng.integers(0, values, 20)] = np.nan  # min_max skips NaN, the affine keeps it
    return source


def _same_bits(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


# --------------------------------------------------------------------------- same bits


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from([np.uint8, np.uint16, np.int16, np.int32, np.float16, np.float32, np.float64]),
    channels=st.sampled_from([1, 3, 4, 5, 37]),
    extra=st.integers(0, 999),
    threads=st.sampled_from(THREAD_COUNTS),
    out_dtype=st.sampled_from([np.float32, np.float16]),
    clip=st.booleans(),
)
def test_affine_gives_the_same_bits_for_any_thread_count(
    seed, dtype, channels, extra, threads, out_dtype, clip
):
    rng = np.random.default_rng(seed)
    source = _source(rng, dtype, (BIG_VALUES // channels + extra) * channels)
    scale = rng.uniform(-2, 2, channels).astype(np.float32)
    offset = rng.uniform(-1, 1, channels).astype(np.float32)
    bounds = (-3.0, 3.0) if clip else (-np.inf, np.inf)

    def run() -> np.ndarray:
        out = np.empty(source.shape, out_dtype)
        c_kernels.affine(source, out, scale, offset, *bounds)
        return out

    _same_bits(_with_threads(threads, run), _with_threads(1, run))


@pytest.mark.parametrize("threads", THREAD_COUNTS)
@pytest.mark.parametrize("block", [7, 250_001, 1_000_000])
def test_affine_blocks_give_the_same_bits_for_any_thread_count(rng, threads, block):
    # Block boundaries inside parts and parts inside blocks: each piece takes its block's entry.
    entries = 3
    source = rng.integers(0, 256, block * entries * max(1, 2_000_000 // (block * entries)), dtype=np.uint8)
    scale = np.array([0.5, -2.0, 3.0], np.float32)
    offset = np.array([1.0, 0.25, -7.0], np.float32)

    def run() -> np.ndarray:
        out = np.empty(source.shape, np.float32)
        c_kernels.affine(source, out, scale, offset, -np.inf, np.inf, block)
        return out

    result = _with_threads(threads, run)
    _same_bits(result, _with_threads(1, run))
    entry = (np.arange(source.size) // block) % entries
    np.testing.assert_array_equal(result, source.astype(np.float32) * scale[entry] + offset[entry])


@pytest.mark.parametrize("threads", THREAD_COUNTS)
def test_affine_in_place_gives_the_same_bits_for_any_thread_count(rng, threads):
    source = rng.standard_normal(BIG_VALUES * 3).astype(np.float32)
    scale, offset = np.float32([2.0, 0.5, -1.0]), np.float32([0.1, 0.2, 0.3])

    def run() -> np.ndarray:
        data = source.copy()
        c_kernels.affine(data, data, scale, offset, -1.0, 1.0)
        return data

    _same_bits(_with_threads(threads, run), _with_threads(1, run))


@pytest.mark.parametrize("threads", THREAD_COUNTS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float16])
@pytest.mark.parametrize("out_dtype", [np.float32, np.float16])
def test_affine_to_planes_gives_the_same_bits_for_any_thread_count(rng, threads, dtype, out_dtype):
    source = _source(rng, dtype, 1021 * 997 * 3)  # pixels that leave a partial chunk
    scale, offset = np.float32([1 / 255, 2.0, -0.5]), np.float32([-0.5, 0.0, 0.25])

    def run() -> np.ndarray:
        out = np.empty(source.shape, out_dtype)
        c_kernels.affine_to_planes(source, out, scale, offset, -np.inf, np.inf)
        return out

    _same_bits(_with_threads(threads, run), _with_threads(1, run))


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from([np.uint8, np.int16, np.int32, np.float16, np.float32, np.float64]),
    channels=st.sampled_from([1, 3, 5]),
    block=st.sampled_from([1, 1, 4099, 400_000]),
    threads=st.sampled_from(THREAD_COUNTS),
)
def test_min_max_gives_the_same_extremes_for_any_thread_count(seed, dtype, channels, block, threads):
    rng = np.random.default_rng(seed)
    count = -(-2_000_000 // (block * channels))  # at least 2 MB of uint8: 2 threads or more
    source = _source(rng, dtype, count * block * channels)

    def run() -> tuple[list[float], list[float]]:
        low, high = np.empty(channels), np.empty(channels)
        c_kernels.min_max(source, low, high, block)
        return low.tolist(), high.tolist()

    low, high = _with_threads(threads, run)
    assert (low, high) == _with_threads(1, run)
    values = source.reshape(-1, block)
    for channel in range(channels):
        chosen = values[channel::channels].astype(np.float64)
        assert low[channel] == np.nanmin(chosen) and high[channel] == np.nanmax(chosen)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from([np.uint8, np.uint16, np.int16, np.int32, np.float16, np.float32, np.float64]),
    channels=st.sampled_from([1, 3, 5]),
    block=st.sampled_from([1, 1, 4099, 300_001]),
    threads=st.sampled_from(THREAD_COUNTS),
)
def test_moments_give_the_same_bits_for_any_thread_count(seed, dtype, channels, block, threads):
    # Float sums depend on their order: the kernel adds fixed blocks in block order.
    rng = np.random.default_rng(seed)
    count = -(-2_000_000 // (block * channels))  # at least 2 MB of uint8: 2 threads or more
    source = _source(rng, dtype, count * block * channels)

    def run() -> bytes:
        results = [np.empty(channels) for _ in range(4)]
        c_kernels.moments(source, *results, block)
        return b"".join(result.tobytes() for result in results)

    assert _with_threads(threads, run) == _with_threads(1, run)


def test_min_max_of_a_channel_of_only_nan_is_nan_with_threads(rng):
    source = rng.standard_normal((1_000_000, 2)).astype(np.float32)
    source[:, 1] = np.nan
    low, high = np.empty(2), np.empty(2)
    _with_threads(2, lambda: c_kernels.min_max(source, low, high))
    assert low[0] == source[:, 0].min() and high[0] == source[:, 0].max()
    assert np.isnan(low[1]) and np.isnan(high[1])


@pytest.mark.parametrize("kernel", ["min_max", "moments"])
@pytest.mark.parametrize("threads", THREAD_COUNTS)
def test_a_zero_extreme_has_the_same_bits_for_any_thread_count(threads, kernel):
    # -0.0 == +0.0: the extreme kept is the zero seen first, which depends on the split (here
    # +0.0 early in lane 1, -0.0 late in lane 0: one thread kept -0.0, threads +0.0).
    source = np.ones(4_000_000, np.float32)
    source[1], source[-32] = 0.0, -0.0
    negative = -source

    def run() -> bytes:
        results = [np.empty(1) for _ in range(2 if kernel == "min_max" else 4)]
        getattr(c_kernels, kernel)(source, *results)
        low = results[0].tobytes()
        getattr(c_kernels, kernel)(negative, *results)
        return low + results[1].tobytes()

    assert _with_threads(threads, run) == _with_threads(1, run) == np.zeros(2).tobytes()


HISTOGRAM_SOURCES = [(np.uint8, 256, 0), (np.uint16, 65536, 0), (np.int16, 65536, 32768)]


@pytest.mark.parametrize("threads", THREAD_COUNTS)
@pytest.mark.parametrize(("dtype", "bins", "offset"), HISTOGRAM_SOURCES)
@pytest.mark.parametrize("channels", [1, 3])
def test_histogram_counts_the_same_for_any_thread_count(rng, threads, dtype, bins, offset, channels):
    source = _source(rng, dtype, 1_400_001 * channels)

    def run() -> np.ndarray:
        counts = np.zeros(channels * bins, np.int64)
        c_kernels.histogram(source, counts)
        return counts

    counts = _with_threads(threads, run)
    _same_bits(counts, _with_threads(1, run))
    expected = [
        np.bincount(source[channel::channels].astype(np.int64) + offset, minlength=bins)
        for channel in range(channels)
    ]
    np.testing.assert_array_equal(counts, np.concatenate(expected))


def test_histogram_takes_no_more_threads_than_sources_of_their_counts_size():
    # Each thread past the first counts into int64 counts of its own (8 bytes a bin and channel):
    # a source of 3 such sizes gets 3 threads at most, not set_num_threads' 16 (60 MB of counts).
    import tracemalloc

    channels = 8
    counts_bytes = channels * 65536 * 8
    source = np.zeros(3 * counts_bytes // 2, np.uint16)
    counts = np.zeros(channels * 65536, np.int64)

    def run() -> None:
        tracemalloc.start()
        try:
            c_kernels.histogram(source, counts)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()

    peaks: list[int] = []
    _with_threads(16, run)
    assert max(peaks) <= 2 * counts_bytes + 65536


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_normalize_gives_the_same_bits_for_any_thread_count(rng, mode, dtype):
    image = rng.integers(0, 256, (700, 900, 3), dtype=np.uint8)
    if dtype == np.float32:
        image = image.astype(np.float32) / 255
    params = NormalizeParams.build(max_pixel_value=255.0 if dtype == np.uint8 else 1.0, normalization=mode)
    _same_bits(
        _with_threads(2, lambda: numpy_backend.normalize(image, params)),
        _with_threads(1, lambda: numpy_backend.normalize(image, params)),
    )


# --------------------------------------------------------------------------- the thread count


# The start of a script that counts its process's OS threads (the pool's workers among them).
COUNTS_THREADS = """
        import os
        import numpy as np
        import norm_transforms
        from norm_transforms.backends import _kernels

        def threads():
            return len(os.listdir("/proc/self/task"))
"""


@pytest.mark.skipif(not LINUX, reason="counts the process's threads in /proc")
def test_a_large_call_starts_workers_and_a_small_one_does_not():
    # A fresh interpreter: how many OS threads the process has before and after each call.
    script = (
        COUNTS_THREADS
        + """
        norm_transforms.set_num_threads(3)
        scale, offset = np.ones(3, np.float32), np.zeros(3, np.float32)
        small = np.zeros((224, 224, 3), np.uint8)
        before = threads()
        _kernels.affine(small, np.empty(small.shape, np.float32), scale, offset, 0.0, 1.0)
        after_small = threads()
        big = np.zeros((1024, 1024, 3), np.uint8)
        _kernels.affine(big, np.empty(big.shape, np.float32), scale, offset, 0.0, 1.0)
        print(after_small - before, threads() - before)
    """
    )
    assert _run(script).split() == ["0", "2"]


@pytest.mark.skipif(not LINUX, reason="counts the process's threads in /proc")
def test_a_medium_call_uses_threads_only_within_a_run_of_calls():
    # 1.2 MB (224x224x3 float32 in and out): one thread alone, two back to back (workers awake).
    script = (
        COUNTS_THREADS
        + """
        import time
        norm_transforms.set_num_threads(2)
        image = np.zeros((224, 224, 3), np.float32)
        scale, offset = np.ones(3, np.float32), np.zeros(3, np.float32)

        def call():
            _kernels.affine(image, np.empty(image.shape, np.float32), scale, offset, 0.0, 1.0)

        before = threads()
        for _ in range(3):  # isolated calls: 20 ms apart, far beyond a run's 1 ms
            call()
            time.sleep(0.02)
        isolated = threads() - before
        for _ in range(200):  # back to back: some call follows the one before within 1 ms
            call()
        print(isolated, threads() - before)
    """
    )
    assert _run(script).split() == ["0", "1"]


def test_set_num_threads_overrides_and_none_restores_the_default(monkeypatch):
    monkeypatch.delenv(threads_module.NUM_THREADS_VARIABLE, raising=False)
    default = norm_transforms.get_num_threads()
    norm_transforms.set_num_threads(5)
    assert norm_transforms.get_num_threads() == 5
    norm_transforms.set_num_threads(np.int64(1))
    assert norm_transforms.get_num_threads() == 1
    norm_transforms.set_num_threads(None)
    assert norm_transforms.get_num_threads() == default


def test_the_environment_variable_sets_the_count_and_set_num_threads_wins(monkeypatch):
    monkeypatch.setenv(threads_module.NUM_THREADS_VARIABLE, " 3 ")
    assert norm_transforms.get_num_threads() == 3
    norm_transforms.set_num_threads(2)
    assert norm_transforms.get_num_threads() == 2


def test_the_default_uses_the_usable_cores_within_opencvs_and_torchs_settings(monkeypatch):
    monkeypatch.delenv(threads_module.NUM_THREADS_VARIABLE, raising=False)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch = sys.modules.get("torch")
    expected = min(cores, cv2.getNumThreads(), torch.get_num_threads() if torch else cores)
    assert norm_transforms.get_num_threads() == max(expected, 1)
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        assert norm_transforms.get_num_threads() == 1
    finally:
        cv2.setNumThreads(previous)


def test_torch_set_num_threads_one_holds_for_the_kernels(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.delenv(threads_module.NUM_THREADS_VARIABLE, raising=False)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert norm_transforms.get_num_threads() == 1
    finally:
        torch.set_num_threads(previous)


def test_dataloader_workers_use_one_thread():
    pytest.importorskip("torch")
    # forkserver/spawn workers (never fork after threads); each reports its count.
    script = """
        import multiprocessing
        import torch
        import norm_transforms

        class Counts(torch.utils.data.Dataset):
            def __len__(self):
                return 2
            def __getitem__(self, index):
                torch.set_num_threads(4)  # even where a dataset raises torch's count again
                return norm_transforms.get_num_threads()

        if __name__ == "__main__":
            method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
            loader = torch.utils.data.DataLoader(Counts(), num_workers=2, multiprocessing_context=method)
            print(sorted(int(count) for count in loader))
    """
    assert _run(script).strip() == "[1, 1]"


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (0, ValueError, "threads must be 1 or more"),
        (-2, ValueError, "threads must be 1 or more"),
        (True, TypeError, "threads must be an int"),
        (2.0, TypeError, "threads must be an int .* float 2.0"),
        ("2", TypeError, "threads must be an int .* str '2'"),
    ],
)
def test_set_num_threads_refuses_what_is_not_a_count(value, error, message):
    with pytest.raises(error, match=message):
        norm_transforms.set_num_threads(value)


@pytest.mark.parametrize("value", ["all", "0", "", "²", "-1"])
def test_a_bad_environment_variable_is_named_by_the_large_call_that_reads_it(monkeypatch, value):
    # "²" passes str.isdigit() but not int(): the message must still name the variable.
    monkeypatch.setenv(threads_module.NUM_THREADS_VARIABLE, value)
    big = np.zeros(4_000_000, np.uint8)
    one, zero = np.ones(1, np.float32), np.zeros(1, np.float32)
    with pytest.raises(ValueError, match=rf"NORM_TRANSFORMS_NUM_THREADS must be a whole number .* {value!r}"):
        c_kernels.affine(big, np.empty(big.shape, np.float32), one, zero, 0.0, 1.0)


@pytest.mark.parametrize("count", [2**63, 2**64 + 1])
def test_a_count_past_a_c_long_uses_the_most_threads_there_are(rng, count):
    source = rng.integers(0, 256, BIG_VALUES * 4, dtype=np.uint8)
    one, zero = np.ones(1, np.float32), np.zeros(1, np.float32)

    def run() -> np.ndarray:
        out = np.empty(source.shape, np.float32)
        c_kernels.affine(source, out, one, zero, -np.inf, np.inf)
        return out

    _same_bits(_with_threads(count, run), source.astype(np.float32))


def test_the_policy_must_be_callable():
    with pytest.raises(TypeError, match="policy must be a callable or None, got int"):
        c_kernels.set_thread_policy(3)


# --------------------------------------------------------------------------- fork, concurrency


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_child_forked_after_threaded_calls_runs_them_again():
    # The workers do not survive fork; the child must start its own instead of waiting on them.
    script = """
        import os
        import numpy as np
        import norm_transforms
        from norm_transforms.backends import _kernels

        norm_transforms.set_num_threads(2)
        big = np.arange(6_000_000, dtype=np.float32)
        scale, offset = np.full(1, 2.0, np.float32), np.zeros(1, np.float32)

        def twice():
            out = np.empty_like(big)
            _kernels.affine(big, out, scale, offset, -np.inf, np.inf)
            return bool((out == 2 * big).all())

        assert twice()
        pid = os.fork()
        if pid == 0:
            os._exit(0 if twice() and twice() else 1)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), twice())
    """
    assert _run(script).split() == ["0", "True"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_fork_while_another_thread_runs_a_threaded_call_leaves_a_working_child():
    # The fork handler holds the pool's lock across fork: the child gets a free pool and no
    # workers, whatever the job in flight in the parent.
    script = """
        import os, threading, warnings
        import numpy as np
        import norm_transforms
        from norm_transforms.backends import _kernels

        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork of a threaded process
        norm_transforms.set_num_threads(2)
        big = np.arange(3_000_000, dtype=np.float32)
        scale, offset = np.full(1, 2.0, np.float32), np.zeros(1, np.float32)

        def right():
            out = np.empty_like(big)
            _kernels.affine(big, out, scale, offset, -np.inf, np.inf)
            return bool((out == 2 * big).all())

        stop = threading.Event()
        busy = threading.Thread(target=lambda: [right() for _ in iter(stop.is_set, True)])
        busy.start()
        statuses = []
        for _ in range(20):
            pid = os.fork()
            if pid == 0:
                os._exit(0 if right() and right() else 1)
            statuses.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
        stop.set()
        busy.join()
        print(sorted(set(statuses)), right())
    """
    assert _run(script).split() == ["[0]", "True"]


def test_concurrent_callers_each_get_their_own_result(rng):
    # One job holds the pool at a time; a second caller runs its parts on its own thread.
    norm_transforms.set_num_threads(2)
    sources = [rng.integers(0, 256, 3_000_000, dtype=np.uint8) for _ in range(4)]
    scales = [np.float32([index + 1.0]) for index in range(4)]
    results: dict[int, bool] = {}

    def work(index: int) -> None:
        for _ in range(5):
            out = np.empty(sources[index].shape, np.float32)
            c_kernels.affine(sources[index], out, scales[index], np.zeros(1, np.float32), -np.inf, np.inf)
            if not np.array_equal(out, sources[index] * scales[index]):
                results[index] = False
                return
        results[index] = True

    workers = [threading.Thread(target=work, args=(index,)) for index in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert results == {0: True, 1: True, 2: True, 3: True}


def _run(script: str) -> str:
    """Runs a script in a fresh interpreter, from a file (multiprocessing's spawn re-imports it),
    and returns its stdout; a hang fails after SUBPROCESS_TIMEOUT."""
    environment = {k: v for k, v in os.environ.items() if k != threads_module.NUM_THREADS_VARIABLE}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "script.py"
        path.write_text(textwrap.dedent(script))
        command = [sys.executable, str(path)]
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, env=environment
        )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout
