"""Rewrite the "## Dataset statistics" section of benchmarks/RESULTS.md: what exact dataset
statistics (``compute_stats``) cost over decoding the images alone, in one process and with two
worker processes, beside the NumPy float64 reference; and the same images read from tar shards
(the WebDataset layout) instead of files.

python benchmarks/bench_stats.py                 # 1,000 images, 7 runs, rewrites RESULTS.md
python benchmarks/bench_stats.py --images 200 --repeats 3 --markdown ""   # quick look, print only
python benchmarks/bench_stats.py --max-other-cores 0.1   # on a shared machine: write only if quiet
python benchmarks/bench_stats.py --lock          # only the cost of ChannelStats' lock, print only

The images (random but natural-looking 256x256 RGB: smooth multi-scale noise, so that PNG
compresses about as it does on photographs; half PNG, half JPEG at quality 90) are generated
once into a cache folder under the system temp dir, and packed once into SHARDS tar shards
in a folder beside it. Every timing is the median of --repeats
runs after one warm-up run, so the files are in the page cache and the figures are decoding
and counting, not disk; the contenders take turns, round after round. OpenCV runs on one
thread, so that one worker is one core. Timings on a shared machine are noisy: the report
records how much CPU other processes used during the timed runs.

``--lock`` times instead what makes ``ChannelStats`` safe to share between threads: ``update``
of one 224x224x3 uint8 (and float32, and uint16) image through the lock, beside the same work
through the unlocked internal path, and the alternative of counting into a local histogram
outside the lock and adding it under it; then 8 threads updating one ``ChannelStats`` at once.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import platform
import statistics
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from norm_transforms import ChannelStats, compute_stats
from norm_transforms.backends import kernels
from norm_transforms.bench import machine_line, package_version, render_table, write_section
from norm_transforms.dtypes import PIXEL_TYPES
from norm_transforms.stats.accumulators import HistogramAccumulator, new_accumulator

HERE = Path(__file__).resolve().parent
SIZE = 256
JPEG_QUALITY = 90
CACHE_VERSION = 1  # bump when the generated images change
SHARDS = 4  # tar shards the images are packed in, in order, as WebDataset writes them


def generate_images(folder: Path, count: int) -> list[Path]:
    """``count`` images in ``folder`` (made once; a marker file says the set is complete)."""
    marker = folder / f"complete-{count}"
    paths = [folder / f"{index:05d}.{'png' if index % 2 == 0 else 'jpg'}" for index in range(count)]
    if marker.exists():
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2024)
    for path in paths:
        params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if path.suffix == ".jpg" else []
        cv2.imwrite(str(path), natural_looking_image(rng), params)
    marker.touch()
    return paths


def generate_shards(shards: Path, paths: list[Path]) -> Path:
    """The images packed in SHARDS tar shards in the folder ``shards`` (once), each image as
    ``key.ext`` beside a ``key.cls`` label, as WebDataset's TarWriter writes a sample."""
    marker = shards / "complete"
    if marker.exists():
        return shards
    shards.mkdir(parents=True, exist_ok=True)
    size = math.ceil(len(paths) / SHARDS)
    for shard in range(SHARDS):
        with tarfile.open(shards / f"shard-{shard:06d}.tar", "w") as tar:
            for path in paths[shard * size : (shard + 1) * size]:
                tar.add(path, arcname=path.name)
                label = tarfile.TarInfo(f"{path.stem}.cls")
                label.size = 1
                tar.addfile(label, io.BytesIO(b"0"))
    marker.touch()
    return shards


def natural_looking_image(rng: np.random.Generator) -> np.ndarray:
    """Smooth colour fields at three scales plus fine grain, clipped to uint8 (BGR)."""
    image = np.zeros((SIZE, SIZE, 3))
    for cells, amplitude in ((4, 90.0), (16, 40.0), (64, 15.0)):
        coarse = rng.normal(0.0, amplitude, (cells, cells, 3))
        image += cv2.resize(coarse, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
    image += rng.uniform(60, 190, 3) + rng.normal(0.0, 3.0, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def median_seconds(
    contenders: dict[str, Callable[[], object]], repeats: int
) -> tuple[dict[str, float], float]:
    """Median time of each contender, timed in interleaved rounds (a neighbour's burst of load then
    hits every contender alike, not one), and the CPU the rest of the machine used meanwhile, in
    cores (0 on a quiet machine; nan where /proc/stat is missing)."""
    for run in contenders.values():
        run()  # warm-up: page cache, worker start-up code paths, lazy imports
    times: dict[str, list[float]] = {name: [] for name in contenders}
    others, wall = 0.0, 0.0
    for _ in range(repeats):
        for name, run in contenders.items():
            busy, own, start = machine_cpu_seconds(), own_cpu_seconds(), time.perf_counter()
            run()
            elapsed = time.perf_counter() - start
            times[name].append(elapsed)
            others += (machine_cpu_seconds() - busy) - (own_cpu_seconds() - own)
            wall += elapsed
    return {name: statistics.median(values) for name, values in times.items()}, max(others / wall, 0.0)


def machine_cpu_seconds() -> float:
    """CPU seconds every process has used so far (Linux /proc/stat), or nan elsewhere."""
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except OSError:
        return math.nan
    idle = fields[3] + fields[4]  # idle and iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """This process and its finished children (the worker pools), user + system."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def decode_rgb(path: str) -> np.ndarray:
    """What any loader pays: read a file and turn BGR into RGB."""
    return cv2.cvtColor(cv2.imread(path, cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)


def decode_each(paths: list[str], rgb: bool = True) -> None:
    """Decode every file, one at a time, keeping none: as a loader does, and as compute_stats
    does (keeping all 1,000 would make the baseline pay fresh pages for each image)."""
    for path in paths:
        decode_rgb(path) if rgb else cv2.imread(path, cv2.IMREAD_UNCHANGED)


def reference_moments(images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The plain way: every pixel at once, float64, one channel at a time (bounded memory)."""
    pixels = np.concatenate([image.reshape(-1, 3) for image in images])
    means, stds = [], []
    for channel in range(3):
        values = pixels[:, channel].astype(np.float64)
        means.append(values.mean())
        stds.append(values.std())
    return np.array(means), np.array(stds)


def measure(folder: Path, paths: list[Path], shards: Path, repeats: int) -> tuple[dict[str, float], float]:
    files = [str(path) for path in paths]
    contenders = {
        "decode": lambda: decode_each(files),
        "imread": lambda: decode_each(files, rgb=False),
        "workers0": lambda: compute_stats(folder, progress=False),
        "workers2": lambda: compute_stats(folder, num_workers=2, progress=False),
        "tar0": lambda: compute_stats(shards, progress=False),
        "tar2": lambda: compute_stats(shards, num_workers=2, progress=False),
    }
    seconds, others = median_seconds(contenders, repeats)
    images = [decode_rgb(path) for path in files]
    reference, _ = median_seconds({"reference_stats": lambda: reference_moments(images)}, repeats)
    return seconds | reference, others


def exactness(folder: Path, paths: list[Path], shards: Path) -> dict[str, float]:
    """Largest relative difference from the float64 reference, for 0 and 2 workers; whether
    workers, and tar shards, give the same bits."""
    mean, std = reference_moments([decode_rgb(str(path)) for path in paths])
    errors = {}
    for workers in (0, 2):
        stats = compute_stats(folder, num_workers=workers, progress=False)
        errors[f"mean{workers}"] = float(np.max(np.abs(stats.mean - mean) / mean))
        errors[f"std{workers}"] = float(np.max(np.abs(stats.std - std) / std))
    errors["same_bits"] = float(
        compute_stats(folder, progress=False) == compute_stats(folder, num_workers=2, progress=False)
    )
    errors["tar_same_bits"] = float(
        compute_stats(shards, num_workers=2, progress=False) == compute_stats(folder, progress=False)
    )
    return errors


def report(
    paths: list[Path], seconds: dict[str, float], others: float, errors: dict[str, float], load: tuple
) -> str:
    count = len(paths)
    png = [p.stat().st_size for p in paths if p.suffix == ".png"]
    jpg = [p.stat().st_size for p in paths if p.suffix == ".jpg"]
    decode = seconds["decode"]
    overhead = seconds["workers0"] / decode - 1
    speedup = seconds["workers0"] / seconds["workers2"]
    reference_total = decode + seconds["reference_stats"]
    reference_share = seconds["reference_stats"] / seconds["workers0"]

    def row(name: str, total: float) -> list[str]:
        return [name, f"{total:.3f}", f"{total / count * 1e3:.3f}", f"{total / decode:.3f}"]

    table = render_table(
        ["step", "total s", "ms / image", "/ decoding"],
        [
            row("decoding alone: cv2.imread + cvtColor(BGR2RGB)", decode),
            row("cv2.imread only", seconds["imread"]),
            row("compute_stats, 1 worker (in process)", seconds["workers0"]),
            row("compute_stats, 2 workers", seconds["workers2"]),
            row(f"compute_stats of the {SHARDS} tar shards, 1 worker (in process)", seconds["tar0"]),
            row(f"compute_stats of the {SHARDS} tar shards, 2 workers", seconds["tar2"]),
            row("NumPy reference: decoding + concatenate + float64 mean/std", reference_total),
            row("  of which the statistics", seconds["reference_stats"]),
        ],
    )
    lines = [
        "## Dataset statistics",
        "",
        machine_line(),
        f"- Python {platform.python_version()}, NumPy {np.__version__}, OpenCV {cv2.__version__}, "
        f"norm-transforms {package_version('norm-transforms')}",
        f"- Data: {count} generated {SIZE}x{SIZE} RGB images (smooth multi-scale noise): {len(png)} PNG "
        f"(mean {np.mean(png) / 1024:.0f} KiB), {len(jpg)} JPEG at quality {JPEG_QUALITY} "
        f"(mean {np.mean(jpg) / 1024:.0f} KiB), in the page cache",
        "- Time: median of repeated runs after a warm-up, the contenders interleaved; OpenCV on 1 thread "
        "(workers too), so 1 worker is 1 core",
        f"- Other processes meanwhile: {others:.2f} cores on average (0 = a quiet machine); "
        f"load average at start {load[0]:.2f}",
        "",
        f"- compute_stats, 1 worker, over decoding alone: {overhead * 100:+.1f}% (target <= +10%)",
        f"- compute_stats, 2 workers / 1 worker: {speedup:.2f}x faster (target >= 1.6x)",
        f"- exactness, largest relative difference from the float64 NumPy reference over all pixels: "
        f"mean {max(errors['mean0'], errors['mean2']):.1e}, std {max(errors['std0'], errors['std2']):.1e} "
        f"(target <= 1e-9); 1 and 2 workers give the same bits: {bool(errors['same_bits'])}",
        f"- the NumPy reference's statistics alone take {reference_share:.2f}x "
        f"the whole of compute_stats (decoding included), and hold every pixel in memory "
        f"({count * SIZE * SIZE * 3 / 2**20:.0f} MiB of uint8 + a float64 copy per channel)",
        f"- the same images in {SHARDS} tar shards (WebDataset layout, a .cls label beside each "
        f"image), read without unpacking: {seconds['tar0'] / seconds['workers0']:.2f}x the time of the "
        f"files with 1 worker, {seconds['tar2'] / seconds['workers2']:.2f}x with 2; the same bits as "
        f"the files: {bool(errors['tar_same_bits'])}",
        "",
        table,
        "",
        "compute_stats counts the BGR image OpenCV decodes and permutes the three histograms once at "
        "the end (exact), so it skips the cvtColor that decoding alone includes; over `cv2.imread only` "
        f"its cost is {(seconds['workers0'] / seconds['imread'] - 1) * 100:+.1f}%. The 2-worker time "
        "includes starting the process pool.",
    ]
    return "\n".join(lines) + "\n"


LOCK_SHAPE = (224, 224, 3)
LOCK_THREADS, LOCK_THREAD_UPDATES = 8, 50


def update_locked(stats: ChannelStats, image: np.ndarray) -> None:
    """The public path: ``update``, through the lock."""
    stats.update(image)


def update_unlocked(stats: ChannelStats, image: np.ndarray) -> None:
    """What ``update`` does for an array, without taking the lock."""
    stats._add_prepared(*stats._prepare(image))


def update_local_histogram(stats: ChannelStats, image: np.ndarray) -> None:
    """The alternative for integer images: count into a fresh histogram outside the lock (the
    kernel runs without the GIL, so threads count in parallel), add it to the totals under it."""
    kind, channels, pixels, images = stats._prepare(image)
    local = np.zeros((channels, PIXEL_TYPES[kind].histogram_bins), np.int64)
    kernels.histogram(pixels, local)
    with stats._lock:
        stats._check_compatible(kind, channels, "images")
        if stats._totals is None:
            stats._totals = new_accumulator(kind, channels)
        stats._totals.merge(HistogramAccumulator.from_array(local, 0, kind))
        stats._images += images


def lock_images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "uint8": rng.integers(0, 256, LOCK_SHAPE, dtype=np.uint8),
        "float32": rng.random(LOCK_SHAPE, dtype=np.float32),
        "uint16": rng.integers(0, 65536, LOCK_SHAPE, dtype=np.uint16),
    }


def microseconds_per_update(update: Callable, image: np.ndarray, repeats: int, updates: int = 400) -> float:
    """Median over ``repeats`` rounds of the time of one update into a warm ChannelStats, µs."""
    stats = ChannelStats()
    update(stats, image)  # warm: kind and histogram set up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(updates):
            update(stats, image)
        times.append((time.perf_counter() - start) / updates * 1e6)
    return statistics.median(times)


def threads_seconds(update: Callable, image: np.ndarray, repeats: int) -> float:
    """Median time of LOCK_THREADS threads each making LOCK_THREAD_UPDATES updates of one
    ChannelStats, all released at once."""
    times = []
    for _ in range(repeats):
        stats, barrier = ChannelStats(), threading.Barrier(LOCK_THREADS + 1)

        def work(stats: ChannelStats = stats, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            for _ in range(LOCK_THREAD_UPDATES):
                update(stats, image)

        threads = [threading.Thread(target=work) for _ in range(LOCK_THREADS)]
        for thread in threads:
            thread.start()
        start = time.perf_counter()
        barrier.wait()
        for thread in threads:
            thread.join()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def lock_report(repeats: int) -> str:
    """The cost of ChannelStats' lock, as printed by --lock."""
    lock = ChannelStats()._lock
    start = time.perf_counter()
    for _ in range(100_000):
        with lock:
            pass
    acquire = (time.perf_counter() - start) / 100_000 * 1e6
    lines = [
        f"ChannelStats.update of one {'x'.join(map(str, LOCK_SHAPE))} image, median of {repeats} rounds "
        f"of 400 updates, µs per update (one uncontended acquire + release of the lock: {acquire:.3f} µs):",
        "",
    ]
    rows = []
    for name, image in lock_images().items():
        # Interleaved rounds: a neighbour's burst of load hits each contender alike.
        contenders = {"locked": update_locked, "unlocked": update_unlocked}
        if name != "float32":
            contenders["local histogram"] = update_local_histogram
        figures: dict[str, list[float]] = {contender: [] for contender in contenders}
        for _ in range(3):
            for contender, update in contenders.items():
                figures[contender].append(microseconds_per_update(update, image, repeats))
        us = {contender: statistics.median(values) for contender, values in figures.items()}
        local = us.get("local histogram")
        local_threads = None if local is None else threads_seconds(update_local_histogram, image, repeats)
        rows.append(
            [
                name,
                f"{us['unlocked']:.2f}",
                f"{us['locked']:.2f}",
                f"{(us['locked'] / us['unlocked'] - 1) * 100:+.1f}%",
                "-" if local is None else f"{local:.2f} ({(local / us['locked'] - 1) * 100:+.1f}%)",
                f"{threads_seconds(update_locked, image, repeats) * 1e3:.1f}",
                "-" if local_threads is None else f"{local_threads * 1e3:.1f}",
            ]
        )
    threads = f"{LOCK_THREADS} threads x {LOCK_THREAD_UPDATES} updates, ms"
    lines.append(
        render_table(
            [
                "image",
                "unlocked µs",
                "update() µs",
                "lock overhead",
                "local histogram µs (vs update())",
                f"{threads}: update()",
                f"{threads}: local histogram",
            ],
            rows,
        )
    )
    lines += ["", f"{os.cpu_count()} CPUs; the kernel counts without the GIL, so threads can overlap it."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / f"norm_transforms_bench_stats_v{CACHE_VERSION}",
        help="folder for the generated images (kept between runs)",
    )
    parser.add_argument(
        "--markdown", default=str(HERE / "RESULTS.md"), help="file whose section to rewrite ('' to skip)"
    )
    parser.add_argument(
        "--max-other-cores",
        type=float,
        metavar="C",
        help="leave the markdown file alone (exit code 3) when other processes used more than C cores "
        "on average during the timed runs, so that a busy shared machine does not overwrite good figures",
    )
    parser.add_argument(
        "--lock",
        action="store_true",
        help="only time ChannelStats.update with and without its lock (prints; the markdown is left alone)",
    )
    args = parser.parse_args(argv)
    if args.lock:
        print(lock_report(args.repeats))
        return 0
    load = os.getloadavg()
    cv2.setNumThreads(1)
    folder = args.cache / str(args.images)
    print(f"images in {folder}", file=sys.stderr)
    paths = generate_images(folder, args.images)
    shards = generate_shards(args.cache / f"{args.images}-shards-{SHARDS}", paths)  # not in folder
    seconds, others = measure(folder, paths, shards, args.repeats)
    text = report(paths, seconds, others, exactness(folder, paths, shards), load)
    print(text)
    if args.max_other_cores is not None and not others <= args.max_other_cores:
        print(
            f"other processes used {others:.2f} cores: {args.markdown or 'nothing'} left as it was",
            file=sys.stderr,
        )
        return 3
    if args.markdown:
        write_section(args.markdown, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
