"""Image files for ``compute_stats``: which files a path names (images, and tar shards that
shards.py reads), how one is decoded, and the counting of a chunk of them (a task that a worker
process runs)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from .accumulators import ACCEPTED_DTYPES, KIND_OF_DTYPE, describe
from .channel_stats import ChannelStats

#: File suffixes that ``compute_stats`` reads from a folder (compared case-insensitively).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
#: Suffix of the tar shards (the WebDataset layout) that a folder's images may also be packed in.
SHARD_EXTENSION = ".tar"

# OpenCV decodes 3- and 4-channel images as BGR(A); statistics are kept in that order while
# reading and put in RGB(A) order once at the end, which is exact and spares a cvtColor per image.
RGB_ORDER = {3: (2, 1, 0), 4: (2, 1, 0, 3)}

# File names listed in an error or warning before "and N more".
_LISTED_FILES = 10


def names_image_files(source: Any) -> bool:
    """Whether ``source`` is a path, or a non-empty list or tuple of paths."""
    if isinstance(source, (str, os.PathLike)):
        return True
    return (
        isinstance(source, (list, tuple))
        and bool(source)
        and all(isinstance(s, (str, os.PathLike)) for s in source)
    )


def image_paths(source: str | os.PathLike[str] | list[Any] | tuple[Any, ...]) -> list[str]:
    """The files that ``source`` names: a file itself, a folder's image files and tar shards
    (recursively, in sorted order), for each entry of a list in turn."""
    entries = [source] if isinstance(source, (str, os.PathLike)) else source
    return [path for entry in entries for path in _expand_path(entry)]


def _expand_path(entry: str | os.PathLike[str]) -> list[str]:
    path = os.fspath(entry)
    if os.path.isdir(path):
        found = sorted(_image_files_under(path))
        if not found:
            suffixes = ", ".join(IMAGE_EXTENSIONS)
            raise ValueError(f"no image files ({suffixes}) or tar shards ({SHARD_EXTENSION}) under {path}")
        return found
    if os.path.isfile(path):
        return [path]
    raise FileNotFoundError(f"no such file or folder: {path}")


def _image_files_under(root: str) -> Iterator[str]:
    # Links to folders are followed (datasets are often assembled from them), each real folder
    # once, so that a link cycle ends.
    visited = set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in visited:
            subfolders.clear()
            continue
        visited.add(real)
        yield from (os.path.join(folder, name) for name in names if is_image_name(name) or is_shard(name))


def is_shard(path: str) -> bool:
    """Whether ``path`` names a tar shard (read by shards.py) rather than an image file."""
    return path.lower().endswith(SHARD_EXTENSION)


def is_image_name(name: str) -> bool:
    """Whether a file or tar member name has one of the image suffixes."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def read_image(path: str) -> np.ndarray | str:
    """The decoded image (BGR order), or why it cannot be counted."""
    return _countable(cv2.imread(path, cv2.IMREAD_UNCHANGED))


def decode_image(data: bytes) -> np.ndarray | str:
    """An encoded image in memory decoded as :func:`read_image` decodes a file (``cv2.imdecode``
    with ``IMREAD_UNCHANGED``: the same pixels, 16-bit kept, BGR order), or why it cannot be."""
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:  # an empty buffer is an assertion, not None
        image = None
    return _countable(image)


def _countable(image: np.ndarray | None) -> np.ndarray | str:
    if image is None:
        return "OpenCV cannot read it"
    if image.dtype not in KIND_OF_DTYPE:
        return f"unsupported pixel type {image.dtype} (accepted: {ACCEPTED_DTYPES})"
    if image.size == 0:
        return "it has no pixels"
    return image


@dataclass
class FilesResult:
    """What a worker returns for a task (a chunk of files, a part of a tar shard): one
    ChannelStats per (kind, channels) seen, in BGR order, with the first file of each; the files
    (or shards, or ``shard.tar:member`` names) it could not read, with the reason."""

    groups: dict[tuple[str, int], tuple[ChannelStats, str]] = field(default_factory=dict)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    nonzero: bool = False  # count as ChannelStats(nonzero=True) does

    def add(self, other: FilesResult) -> None:
        for signature, (stats, first) in other.groups.items():
            if signature in self.groups:
                self.groups[signature][0].merge(stats)
            else:
                self.groups[signature] = (stats, first)
        self.unreadable += other.unreadable

    def check_one_signature(self) -> None:
        """Refuse images of different kinds or channel counts, naming a file of each."""
        if len(self.groups) > 1:
            seen = "; ".join(
                f"{describe(*signature)}, e.g. {first}" for signature, (_, first) in self.groups.items()
            )
            raise ValueError(
                f"the images differ in channel count or dtype ({seen}); statistics are pooled per "
                "channel, so convert them to one format first"
            )

    def count(self, name: str, image: np.ndarray | str) -> None:
        """Count one decoded image, or note why ``name`` could not be read."""
        if isinstance(image, str):
            self.unreadable.append((name, image))
            return
        signature = (KIND_OF_DTYPE[image.dtype], image.shape[2] if image.ndim == 3 else 1)
        if signature not in self.groups:
            self.groups[signature] = (ChannelStats(nonzero=self.nonzero), name)
        self.groups[signature][0].update(image)


@dataclass(frozen=True)
class FileChunk:
    """A task: a chunk of image files. ``amount`` is what it adds to the progress bar."""

    paths: tuple[str, ...]
    amount: int

    def count(self, nonzero: bool = False) -> FilesResult:
        """Decode and count the files (in a worker process)."""
        result = FilesResult(nonzero=nonzero)
        for path in self.paths:
            result.count(path, read_image(path))
        return result


def list_files(entries: list[tuple[str, str]]) -> str:
    """``"2 files: a.png (why); b.png (why)"``, the first ten, for an error or a warning."""
    listed = "; ".join(f"{path} ({reason})" for path, reason in entries[:_LISTED_FILES])
    more = len(entries) - _LISTED_FILES
    files = f"{len(entries)} file{'s' if len(entries) != 1 else ''}"
    return f"{files}: {listed}" + (f"; and {more} more" if more > 0 else "")
