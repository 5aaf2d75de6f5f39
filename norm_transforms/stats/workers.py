"""Worker processes for ``compute_stats``: how they start, the pool that decodes chunks of files,
and the ``DataLoader`` workers of a map-style ``Dataset``."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import pickle
import sys
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import cv2

Chunk = TypeVar("Chunk")
Result = TypeVar("Result")


def worker_context() -> multiprocessing.context.BaseContext:
    """How worker processes start (file workers and map-style ``Dataset`` workers): forkserver
    where the platform has it, else spawn; never fork, the default on Linux.

    A forked child inherits the parent's memory, locks included, but only the calling thread:
    once the caller has used OpenCV's thread pool (one large ``cv2.resize`` with torch loaded
    was enough), a forked worker blocks forever in ``cv2.setNumThreads(1)``, in
    ``pthread_cond_destroy`` on a pool condition that threads the child does not have were
    using; a Dataset that calls it in a DataLoader worker blocks the same way. forkserver forks
    the workers from a server process started fresh (single-threaded, it never ran OpenCV),
    spawn starts a new interpreter. Both import the worker function by name and pickle its
    arguments (everything here is module-level), and both run the caller's main module again in
    each worker, hence the ``if __name__ == "__main__":`` guard that scripts need.

    The price is start-up. compute_stats of 200 small PNGs with 2 workers, 2 cores (in process:
    32 ms): fork 17 ms, forkserver 180-225 ms (each worker imports NumPy, OpenCV and this
    package: ~100 ms), spawn 230-260 ms; from a script that imports torch, forkserver 1.25 s
    (each worker runs the script's imports again). Once per call, beside minutes of decoding
    for a real dataset. The process-wide forkserver preload list is the caller's to set
    (``multiprocessing.set_forkserver_preload(["norm_transforms.stats"])`` before the first
    call brings the 180 ms down to ~20 ms); a library should not change it behind their back.
    """
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _single_threaded_opencv() -> None:
    # Workers are the parallelism; OpenCV's own threads (and so the C kernels', which follow
    # OpenCV's setting: norm_transforms.threads) would only compete with them.
    cv2.setNumThreads(1)


def results_in_order(
    task: Callable[[Chunk], Result], chunks: list[Chunk], num_workers: int
) -> Iterator[tuple[Result, Chunk]]:
    """``(task(chunk), chunk)`` for each chunk in chunk order (so float merges give the same
    bits every run), in ``num_workers`` processes, or in this one for 0. ``task`` must be a
    module-level function: the workers import it by name."""
    if num_workers == 0:
        for chunk in chunks:
            yield task(chunk), chunk
        return
    with concurrent.futures.ProcessPoolExecutor(
        num_workers, mp_context=worker_context(), initializer=_single_threaded_opencv
    ) as pool:
        futures = [pool.submit(task, chunk) for chunk in chunks]
        try:
            for future, chunk in zip(futures, chunks, strict=True):
                yield future.result(), chunk
        except BrokenProcessPool as error:
            raise BrokenProcessPool(
                f"{error} Workers start by importing the main module again: if this is a script, put "
                "its top-level code under `if __name__ == '__main__':` (the workers' own errors are "
                "printed above); a worker killed for lack of memory ends the same way"
            ) from error
        finally:
            for future in futures:  # on an error, stop the work still queued
                future.cancel()


def dataset_samples(dataset: Any, num_workers: int) -> Iterator[Any]:
    """A map-style Dataset's samples in index order (it need not be iterable): read here, or by
    ``num_workers`` DataLoader workers started as :func:`worker_context` says."""
    if num_workers == 0:
        return (dataset[index] for index in range(len(dataset)))
    from torch.utils.data import DataLoader

    loader = DataLoader(
        dataset,
        batch_size=None,
        num_workers=num_workers,
        collate_fn=_sample_itself,
        multiprocessing_context=worker_context(),  # not fork: see worker_context
    )
    return _loader_samples(loader, num_workers)


def _sample_itself(sample: Any) -> Any:
    """collate_fn that leaves samples as the Dataset returns them (the default would turn an HWC
    array into a tensor, which reads as CHW)."""
    return sample


def _loader_samples(loader: Any, num_workers: int) -> Iterator[Any]:
    """The samples of a DataLoader over a map-style Dataset. Starting its workers pickles the
    Dataset (forkserver and spawn do; fork did not), so a Dataset that cannot be pickled (a
    class defined inside a function, a lambda among its attributes), or whose class the workers
    cannot import (defined in a notebook or ``python -c``: they would die with an
    AttributeError each), gets an error that says what to do instead."""
    cls = type(loader.dataset)
    workers = f"num_workers={num_workers} counts the Dataset in worker processes, which receive it pickled"
    if cls.__module__ == "__main__" and not hasattr(sys.modules.get("__main__"), "__file__"):
        raise TypeError(
            f"{workers} and import its class by name, and {cls.__name__} is defined in an interactive "
            "session (a notebook, python -c) where they cannot find it; move the class into a .py "
            "file and import it, or pass num_workers=0"
        )
    try:
        samples = iter(loader)
    except (AttributeError, TypeError, pickle.PicklingError) as error:
        raise TypeError(
            f"{workers}, and this {cls.__name__} cannot be pickled ({error}); define its class and "
            "whatever it holds at module level, or pass num_workers=0"
        ) from error
    yield from samples
