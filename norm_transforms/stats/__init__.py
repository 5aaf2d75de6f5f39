"""Exact, streaming dataset statistics: ``ChannelStats`` and ``compute_stats``.

The mean and std to normalize with are those of every pixel of every training image, pooled
per channel: not the average of per-image (or per-batch) stds, which leaves out how much the
image means differ from each other. ``ChannelStats`` accumulates them exactly (integer
histograms for uint8 and uint16, float64 moments merged with Chan's formula for floats), and
``compute_stats`` reads a folder, a list of files, tar shards, arrays, tensors or a torch
``Dataset``/``DataLoader``, in worker processes where there is decoding to share out, and on
the ranks of a process group if asked. Torch is imported only when a tensor, a torch data
source, ``all_reduce`` or ``distributed=`` arrives.

Where things are:

- ``channel_stats.py``: ``ChannelStats``, what users hold: input checks, the lock, the results.
- ``accumulators.py``: the ``Accumulator`` interface and its two implementations, which count.
- ``sources.py``: ``compute_stats`` and the table of sources it takes (a new source goes there);
  ``files.py`` finds and decodes image files, ``shards.py`` reads tar shards (WebDataset),
  ``workers.py`` runs worker processes.
- ``serialization.py``: the JSON format; ``checks.py``: checked reads of saved fields and
  arguments; ``tensors.py``: torch tensors as arrays; ``distributed.py``: ``all_reduce``, and
  the agreements of ranks that share the files out.
"""

from __future__ import annotations

from .accumulators import Kind
from .channel_stats import ChannelStats, PercentileMethod
from .files import IMAGE_EXTENSIONS
from .serialization import SCHEMA, SCHEMA_VERSION
from .sources import compute_stats

__all__ = [
    "IMAGE_EXTENSIONS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "ChannelStats",
    "Kind",
    "PercentileMethod",
    "compute_stats",
]
