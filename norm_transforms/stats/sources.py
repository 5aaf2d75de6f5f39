"""``compute_stats``: the exact statistics of a whole dataset, from whatever holds its images.

The kinds of source it takes are the rows of ``_SOURCES``, tried in order: a test that
recognizes the source and the function that counts it. A new kind of source is one more row
and its function, here. Files and tar shards are decoded in worker processes (files.py,
shards.py, workers.py), and shared out among the ranks of a process group if asked
(distributed.py); every other source yields images in this process, which
``ChannelStats.update`` counts.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .channel_stats import ChannelStats
from .distributed import from_first_rank, gather_or_raise, is_process_group, rank_and_size
from .files import (
    RGB_ORDER,
    FileChunk,
    FilesResult,
    image_paths,
    is_shard,
    list_files,
    names_image_files,
    read_image,
)
from .shards import ShardPart, shard_parts
from .tensors import is_tensor
from .workers import dataset_samples, results_in_order


@dataclass(frozen=True)
class _Options:
    """compute_stats' keyword arguments, checked."""

    num_workers: int
    skip_unreadable: bool
    progress: bool
    chunksize: int | None
    distributed: Any  # False, True (the default process group) or a process group
    nonzero: bool = False


def compute_stats(
    source: Any,
    *,
    num_workers: int = 0,
    skip_unreadable: bool = False,
    progress: bool = True,
    chunksize: int | None = None,
    distributed: Any = False,
    nonzero: bool = False,
) -> ChannelStats:
    """Exact per-channel statistics of a whole dataset.

    ``source`` is one of:

    - a folder (read recursively: png, jpg/jpeg, tif/tiff including 16-bit, bmp, webp; case
      does not matter; files in sorted order), an image file, or a list of files and folders.
      Files are read with ``cv2.imread(path, cv2.IMREAD_UNCHANGED)``: 16-bit stays 16-bit,
      grayscale stays one channel, and the statistics are in RGB (RGBA) order;
    - tar shards (the WebDataset layout: ``.tar`` files of images and their labels), given as
      files or found in folders: their image members are decoded from the archive as files are,
      without unpacking it, and the other members passed over;
    - a torch ``Dataset`` or ``DataLoader`` yielding tensors (``(C, H, W)``, ``(N, C, H, W)``),
      NumPy arrays (``(H, W, C)``), PIL images, or ``(image, label)`` pairs;
    - any other iterable of such items, or of file paths;
    - one array or tensor: an image or a batch, as :meth:`ChannelStats.update` reads it.

    ``num_workers`` processes decode files in parallel (each returns a ``ChannelStats``, merged
    here in a fixed order); for a map-style ``Dataset`` they become ``DataLoader`` workers. A
    ``DataLoader`` brings its own workers; other sources are counted in this process.
    Files OpenCV cannot read raise an ``OSError`` naming them, or with ``skip_unreadable`` a
    warning naming them. Images of different channel counts or dtypes raise a ``ValueError``
    naming a file of each. ``progress`` shows a tqdm bar; ``chunksize`` is how many files a
    worker takes at a time (default: about eight chunks per worker, at most 256 files); a tar
    shard is read in parts of 256 MiB, whatever the number of workers. ``nonzero=True`` takes
    each channel's statistics over its non-zero values only, as ``ChannelStats(nonzero=True)``
    (the background of brain scans, no-data in satellite tiles).

    ``distributed=True`` shares the files and tar shards out among the ranks of the
    ``torch.distributed`` default process group (or of the process group given instead), which
    every rank must call with the same arguments (under ``torchrun``): rank 0 lists the files,
    each rank counts its share, and every rank returns the statistics of all of them, pooled
    exactly with :meth:`ChannelStats.all_reduce`. An error on any rank (an unreadable file, a
    missing folder) is raised on every rank, naming the rank, rather than leaving the others
    waiting for it. Other sources are refused: count each rank's own share of them and call
    ``all_reduce`` yourself.

    Workers start with forkserver (spawn where the platform lacks it), never fork, which can
    hang once the caller has used OpenCV's thread pool. Like every spawned process, they import
    the caller's main module again: a script that calls ``compute_stats(..., num_workers=N)``
    needs the ``if __name__ == "__main__":`` guard around its top-level code, or each worker
    would run the script again (they stop with a ``RuntimeError``, and this call raises
    ``BrokenProcessPool``). A ``Dataset`` given with workers is pickled to them, so its class
    must be importable: defined at module level in a file, not inside a function or in a
    notebook (a ``TypeError`` says so)::

        if __name__ == "__main__":
            stats = compute_stats("data/train", num_workers=8)

    >>> stats = compute_stats("data/train", num_workers=8)  # doctest: +SKIP
    >>> Normalize(**stats.to_normalize_kwargs())  # doctest: +SKIP
    """
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be a non-negative integer, got {num_workers!r}")
    if chunksize is not None and (
        isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1
    ):
        raise ValueError(f"chunksize must be a positive integer or None, got {chunksize!r}")
    if not isinstance(distributed, bool) and not is_process_group(distributed):
        raise ValueError(
            f"distributed must be False, True (the default process group) or a torch.distributed "
            f"ProcessGroup, got {distributed!r}"
        )
    if not isinstance(nonzero, bool):
        raise TypeError(f"nonzero must be True or False; got {nonzero!r}")
    options = _Options(num_workers, skip_unreadable, progress, chunksize, distributed, nonzero)
    for recognizes, count in _SOURCES:
        if recognizes(source):
            if distributed is not False and count is not _stats_of_files:
                raise ValueError(
                    "distributed= shares out files and tar shards among the ranks; for a "
                    f"{type(source).__name__}, count each rank's share with ChannelStats.update and "
                    "call ChannelStats.all_reduce()"
                )
            return count(source, options)
    raise TypeError(
        "source must be a folder, a list of image files, a torch Dataset or DataLoader, an "
        f"iterable of images, or an array; got {type(source).__name__}"
    )


def _stats_of_files(source: Any, options: _Options) -> ChannelStats:
    """Decode and count the files and tar shards, in worker processes if asked, on the ranks of
    a process group if asked; RGB(A) order."""
    count = _count_on_ranks if options.distributed is not False else _count_here
    counted, files = count(source, options)
    if counted.unreadable:
        warnings.warn(f"skipped {list_files(counted.unreadable)}", stacklevel=3)  # compute_stats' caller
    if not counted.groups:
        raise ValueError(f"none of the {files} files could be read")
    stats, _ = next(iter(counted.groups.values()))
    return stats._reorder_channels(RGB_ORDER[stats.channels]) if stats.channels in RGB_ORDER else stats


@dataclass(frozen=True)
class _Plan:
    """The tasks that count the files, in the order their results are merged."""

    tasks: list[FileChunk | ShardPart]
    files: int  # files and shards named
    unit: str  # of the progress bar: images, or bytes once tar shards are among the files


def _plan(source: Any, options: _Options, ranks: int) -> _Plan:
    paths = image_paths(source)
    images = [path for path in paths if not is_shard(path)]
    shards = [path for path in paths if is_shard(path)]
    workers = max(options.num_workers, 1) * ranks
    size = options.chunksize or min(256, max(1, math.ceil(len(images) / (8 * workers))))
    chunks = [tuple(images[start : start + size]) for start in range(0, len(images), size)]
    # The bar counts images, or bytes where tar shards (of unknown image counts) are read too.
    tasks: list[FileChunk | ShardPart] = [
        FileChunk(chunk, sum(map(os.path.getsize, chunk)) if shards else len(chunk)) for chunk in chunks
    ]
    tasks += [part for shard in shards for part in shard_parts(shard)]
    return _Plan(tasks, len(paths), "B" if shards else "img")


def _count_here(source: Any, options: _Options) -> tuple[FilesResult, int]:
    plan = _plan(source, options, ranks=1)
    return _count(plan.tasks, plan.unit, options), plan.files


def _count(tasks: list[FileChunk | ShardPart], unit: str, options: _Options) -> FilesResult:
    """Run the tasks (in worker processes if asked) and merge their results in task order."""
    total = FilesResult()
    # A partial of a module-level function pickles by name, as the workers need.
    task = functools.partial(_count_task, nonzero=options.nonzero)
    results = contextlib.closing(results_in_order(task, tasks, options.num_workers))
    with (
        _progress_bar(sum(task.amount for task in tasks), options.progress, unit) as bar,
        results as task_results,
    ):  # an error stops the workers
        for task_result, task in task_results:
            total.add(task_result)
            if total.unreadable and not options.skip_unreadable:
                raise OSError(
                    f"cannot read {list_files(total.unreadable)}; fix or remove them, or pass "
                    "skip_unreadable=True (--skip-unreadable) to leave them out with a warning"
                )
            total.check_one_signature()
            bar.update(task.amount)
    return total


def _count_task(task: FileChunk | ShardPart, nonzero: bool = False) -> FilesResult:
    """What a worker process runs (module-level: workers import it by name)."""
    return task.count(nonzero)


def _count_on_ranks(source: Any, options: _Options) -> tuple[FilesResult, int]:
    """Each rank counts every ``ranks``-th task of rank 0's plan; the ranks agree on errors
    (any rank's is raised on all), then pool the counts with ``all_reduce``. The collectives
    are the same on every rank whatever fails where, so that no rank waits for ever."""
    group = None if options.distributed is True else options.distributed
    rank, ranks = rank_and_size(group)
    plan = from_first_rank(lambda: _plan(source, options, ranks), group)
    try:
        local, error = _count(plan.tasks[rank::ranks], plan.unit, options), None
    except Exception as failure:  # raised on every rank by gather_or_raise
        local, error = FilesResult(), failure
    # What the ranks tell each other: the (kind, channels) each saw, with a file of each, and
    # what they could not read; plain data, the counts themselves follow in all_reduce.
    seen = {signature: first for signature, (_, first) in local.groups.items()}
    combined = FilesResult()
    for signatures, unreadable in gather_or_raise((seen, local.unreadable), error, group):
        groups = {
            signature: (ChannelStats(nonzero=options.nonzero), first)
            for signature, first in signatures.items()
        }
        combined.add(FilesResult(groups, unreadable))
    combined.check_one_signature()  # the same verdict on every rank
    stats = next(iter(local.groups.values()))[0] if local.groups else ChannelStats(nonzero=options.nonzero)
    stats.all_reduce(group)
    groups = {(stats.kind, stats.channels): (stats, "")} if stats.count else {}
    return FilesResult(groups, combined.unreadable), plan.files


def _stats_of_array(source: Any, options: _Options) -> ChannelStats:
    return ChannelStats(nonzero=options.nonzero).update(source)


def _stats_of_dataset(source: Any, options: _Options) -> ChannelStats:
    return _stats_of_items(dataset_samples(source, options.num_workers), len(source), options)


def _stats_of_iterable(source: Any, options: _Options) -> ChannelStats:
    return _stats_of_items(source, len(source) if hasattr(source, "__len__") else None, options)


def _stats_of_items(items: Iterable[Any], total: int | None, options: _Options) -> ChannelStats:
    stats = ChannelStats(nonzero=options.nonzero)
    skipped: list[tuple[str, str]] = []
    with _progress_bar(total, options.progress) as bar:
        for index, item in enumerate(items):
            image = _image_of(item, index)
            if isinstance(image, tuple):  # a path that could not be read
                if not options.skip_unreadable:
                    raise OSError(f"cannot read {list_files([image])}")
                skipped.append(image)
            else:
                try:
                    stats.update(image)
                except (TypeError, ValueError) as error:
                    raise type(error)(f"item {index}: {error}") from error
            bar.update(1)
    if skipped:
        warnings.warn(f"skipped {list_files(skipped)}", stacklevel=4)  # compute_stats' caller
    if not stats.count and not skipped:
        raise ValueError("the source yielded no images")
    return stats


def _image_of(item: Any, index: int) -> Any:
    """The image in one item of a dataset: the item, the first of an ``(image, label)`` pair,
    ``item["image"]``, a PIL image as an array, or a file read (RGB order) by path."""
    if isinstance(item, (tuple, list)) and item:
        item = item[0]
    elif isinstance(item, dict) and "image" in item:
        item = item["image"]
    if isinstance(item, np.ndarray) or is_tensor(item):
        return item
    if isinstance(item, (str, os.PathLike)):
        image = read_image(os.fspath(item))
        if isinstance(image, str):
            return (os.fspath(item), image)
        if image.ndim == 3 and image.shape[2] in RGB_ORDER:
            image = image[..., list(RGB_ORDER[image.shape[2]])]
        return image
    if type(item).__module__.startswith("PIL."):
        return np.asarray(item)
    raise TypeError(
        f"item {index}: expected an image (NumPy array, torch tensor, PIL image or file path) or an "
        f"(image, label) pair; got {type(item).__name__}"
    )


def _progress_bar(total: int | None, enabled: bool, unit: str = "img") -> Any:
    from tqdm.auto import tqdm

    scaled = {"unit_scale": True, "unit_divisor": 1024} if unit == "B" else {}
    return tqdm(total=total, unit=unit, desc="statistics", disable=not enabled, **scaled)


def _is_map_dataset(source: Any) -> bool:
    """A torch map-style ``Dataset`` (not an ``IterableDataset``; a ``DataLoader`` is none)."""
    if "torch" not in sys.modules:  # never import torch to find out
        return False
    from torch.utils.data import Dataset, IterableDataset

    return isinstance(source, Dataset) and not isinstance(source, IterableDataset)


def _is_image_or_batch(source: Any) -> bool:
    return isinstance(source, np.ndarray) or is_tensor(source)


def _is_iterable(source: Any) -> bool:
    return isinstance(source, Iterable) and not isinstance(source, (str, bytes))


# The sources compute_stats takes, tried in this order: (recognizes, count). The first row takes
# paths before the last could take a list of them as an iterable of items.
_SOURCES: tuple[tuple[Callable[[Any], bool], Callable[[Any, _Options], ChannelStats]], ...] = (
    (names_image_files, _stats_of_files),  # a folder, an image file, a tar shard, a list of them
    (_is_image_or_batch, _stats_of_array),  # one array or tensor
    (_is_map_dataset, _stats_of_dataset),  # samples by index, in DataLoader workers if asked
    (_is_iterable, _stats_of_iterable),  # a DataLoader, an IterableDataset, a list, a generator
)
