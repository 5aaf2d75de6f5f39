"""Image files for ``compute_stats``: which files a path names, how one is decoded, and the
counting of a chunk of them (the task a worker process runs)."""

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
    """The files that ``source`` names: a file itself, a folder's image files (recursively, in
    sorted order), for each entry of a list in turn."""
    entries = [source] if isinstance(source, (str, os.PathLike)) else source
    return [path for entry in entries for path in _expand_path(entry)]


def _expand_path(entry: str | os.PathLike[str]) -> list[str]:
    path = os.fspath(entry)
    if os.path.isdir(path):
        found = sorted(_image_files_under(path))
        if not found:
            raise ValueError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) under {path}")
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
        yield from (
            os.path.join(folder, name)
            for name in names
            if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
        )


def read_image(path: str) -> np.ndarray | str:
    """The decoded image (BGR order), or why it cannot be counted."""
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        return "OpenCV cannot read it"
    if image.dtype not in KIND_OF_DTYPE:
        return f"unsupported pixel type {image.dtype} (accepted: {ACCEPTED_DTYPES})"
    if image.size == 0:
        return "it has no pixels"
    return image


@dataclass
class FilesResult:
    """What a worker returns for a chunk of files: one ChannelStats per (kind, channels) seen,
    in BGR order, with the first file of each; the files it could not read, with the reason."""

    groups: dict[tuple[str, int], tuple[ChannelStats, str]] = field(default_factory=dict)
    unreadable: list[tuple[str, str]] = field(default_factory=list)

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


def count_files(paths: list[str], nonzero: bool = False) -> FilesResult:
    """Decode and count a chunk of files: the work of one worker task (``nonzero``: as
    ``ChannelStats(nonzero=True)`` counts)."""
    result = FilesResult()
    for path in paths:
        image = read_image(path)
        if isinstance(image, str):
            result.unreadable.append((path, image))
            continue
        signature = (KIND_OF_DTYPE[image.dtype], image.shape[2] if image.ndim == 3 else 1)
        if signature not in result.groups:
            result.groups[signature] = (ChannelStats(nonzero=nonzero), path)
        result.groups[signature][0].update(image)
    return result


def list_files(entries: list[tuple[str, str]]) -> str:
    """``"2 files: a.png (why); b.png (why)"``, the first ten, for an error or a warning."""
    listed = "; ".join(f"{path} ({reason})" for path, reason in entries[:_LISTED_FILES])
    more = len(entries) - _LISTED_FILES
    files = f"{len(entries)} file{'s' if len(entries) != 1 else ''}"
    return f"{files}: {listed}" + (f"; and {more} more" if more > 0 else "")
