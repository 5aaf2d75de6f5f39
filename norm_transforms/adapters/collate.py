"""``NormalizeCollate``: a ``DataLoader`` ``collate_fn`` that normalizes the images of a batch
straight into one NCHW tensor (no math here: the NumPy backend's planar kernels, through
``_planes.py``).

Why: the cheapest thing an augmentation pipeline can hand over is its uint8 HWC output.
Normalizing per sample and collating afterwards writes every float pixel twice (the sample,
then its copy in the batch) and transposes it on the way; here each pixel is written once, in
its place in the batch, from a quarter of the bytes.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import default_collate, get_worker_info

from ..backends.numpy import check_image, value_range
from ..modes import DEFAULT_PERCENTILES, IMAGENET_MEAN, IMAGENET_STD, NormalizationName, NormalizeParams
from ..presets import PresetConstructors
from . import warn_if_pixel_scale_looks_wrong
from ._planes import PLANE_DTYPES, normalize_into_planes

#: Where a sample holds its image: this key of a dict (what ``A.Compose`` returns), or the first
#: entry of a tuple or list (``(image, target, ...)``).
IMAGE_KEY = "image"


class NormalizeCollate(PresetConstructors):
    """A ``collate_fn`` for ``torch.utils.data.DataLoader``: the samples' images (``(H, W, C)``
    or ``(H, W)`` uint8, uint16 or float arrays, or ``(C, H, W)`` CPU tensors such as
    ``ToTensorV2``'s) are normalized, with the arguments and modes of
    :class:`norm_transforms.Normalize`, into one contiguous ``(N, C, H, W)`` tensor of ``dtype``
    (float32, float16 or bfloat16; computed in float32), each image with its own statistics.
    Every other field of the samples is collated by ``default_collate``. ``nonzero=True`` as in
    ``Normalize``: each image's statistics over its non-zero values, its zeros left at 0.

    Samples are dicts with an ``"image"`` key (as ``A.Compose`` returns them) or
    ``(image, target, ...)`` tuples. ``pin_memory=True`` allocates the batch in pinned memory
    for a ``non_blocking`` copy to the GPU, in the main process (``num_workers=0``); in worker
    processes the batch is allocated in shared memory, as ``default_collate`` does, and
    pinning is the ``DataLoader``'s own ``pin_memory=True``.

    >>> from torch.utils.data import DataLoader
    >>> samples = [{"image": np.zeros((4, 5, 3), np.uint8), "label": 7}] * 2
    >>> batch = next(iter(DataLoader(samples, batch_size=2, collate_fn=NormalizeCollate(dtype="float16"))))
    >>> batch["image"].shape, batch["image"].dtype, batch["label"]
    (torch.Size([2, 3, 4, 5]), torch.float16, tensor([7, 7]))
    """

    def __init__(
        self,
        mean: tuple[float, ...] | float = IMAGENET_MEAN,
        std: tuple[float, ...] | float = IMAGENET_STD,
        max_pixel_value: float | None = 255.0,
        normalization: NormalizationName = "standard",
        *,
        percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
        clip_range: tuple[float, float] | None = None,
        nonzero: bool = False,
        dtype: torch.dtype | str = torch.float32,
        pin_memory: bool = False,
    ) -> None:
        self.params = NormalizeParams.build(
            mean, std, max_pixel_value, normalization, percentiles, clip_range, nonzero
        )
        self.dtype = _checked_dtype(dtype)
        if not isinstance(pin_memory, bool):
            raise TypeError(f"pin_memory must be True or False; got {pin_memory!r}")
        self.pin_memory = pin_memory
        self._pixel_scale_checked = False

    def __call__(self, samples: Sequence[Any]) -> Any:
        if not isinstance(samples, Sequence) or len(samples) == 0:
            raise ValueError(f"NormalizeCollate needs a non-empty list of samples; got {_shown(samples)}")
        first = samples[0]
        if isinstance(first, Mapping):
            batch = self._normalized_batch([_image_of(sample, IMAGE_KEY) for sample in samples])
            rest = default_collate([{k: v for k, v in s.items() if k != IMAGE_KEY} for s in samples])
            collated = {key: batch if key == IMAGE_KEY else rest[key] for key in first}
            try:  # default_collate's rule: the samples' mapping type, where it takes a dict
                return type(first)(collated)
            except TypeError:
                return collated
        if isinstance(first, (tuple, list)) and len(first) > 0:
            batch = self._normalized_batch([_image_of(sample, 0) for sample in samples])
            if len(first) == 1:
                rest = []
            else:
                rest = default_collate([sample[1:] for sample in samples])
            collated = [batch, *rest]
            # default_collate's rules: a namedtuple stays one, other sequences become lists.
            return type(first)(*collated) if hasattr(first, "_fields") else collated
        return self._normalized_batch([_image_of(sample, None) for sample in samples])

    def _normalized_batch(self, images: list[np.ndarray]) -> torch.Tensor:
        first = images[0]
        check_image(first)
        for index, image in enumerate(images):
            if image.shape != first.shape or image.dtype != first.dtype:
                raise ValueError(
                    "NormalizeCollate stacks images of one shape and dtype: sample 0 has "
                    f"{first.dtype} {first.shape}, sample {index} {image.dtype} {image.shape}"
                )
        height, width, channels = first.shape
        batch = self._empty((len(images), channels, height, width))
        normalize_into_planes(batch, images, self.params)
        if not self._pixel_scale_checked:  # the first batch only
            self._pixel_scale_checked = True
            warn_if_pixel_scale_looks_wrong(self, self.params, first.dtype, lambda: value_range(first))
        return batch

    def _empty(self, shape: tuple[int, ...]) -> torch.Tensor:
        if get_worker_info() is not None:
            if self.pin_memory:
                _warn_once("workers send batches through shared memory; pin with DataLoader(pin_memory=True)")
            return _shared_empty(shape, self.dtype)
        if self.pin_memory:
            if torch.cuda.is_available():
                return torch.empty(shape, dtype=self.dtype, pin_memory=True)
            _warn_once("no CUDA device, so the batch is not pinned")
        return _numpy_backed_empty(shape, self.dtype)

    def __repr__(self) -> str:
        params = self.params
        arguments = {
            "mean": params.mean,
            "std": params.std,
            "max_pixel_value": params.max_pixel_value,
            "normalization": params.mode.name,
            "nonzero": params.nonzero,
            "dtype": self.dtype,
            "pin_memory": self.pin_memory,
        }
        return f"NormalizeCollate({', '.join(f'{key}={value!r}' for key, value in arguments.items())})"


def _checked_dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, str) and dtype in PLANE_DTYPES:
        return PLANE_DTYPES[dtype]
    if dtype in PLANE_DTYPES.values():
        return dtype
    raise TypeError(
        f"dtype must be torch.float32, torch.float16 or torch.bfloat16 (or their names); got {dtype!r}"
    )


def _image_of(sample: Any, where: str | int | None) -> np.ndarray:
    """The sample's image as an ``(H, W, C)`` array (a view where it can be)."""
    image = sample if where is None else sample[where] if _has(sample, where) else None
    if isinstance(image, torch.Tensor):
        if image.dtype == torch.bfloat16:  # NumPy has no bfloat16 to read it as
            raise TypeError(
                "NormalizeCollate reads bfloat16 image tensors only as float32: convert them first"
            )
        if image.device.type != "cpu" or image.ndim != 3:
            raise ValueError(
                "NormalizeCollate takes image tensors as (C, H, W) on the CPU; "
                f"got shape {tuple(image.shape)} on {image.device}"
            )
        return image.detach().numpy().transpose(1, 2, 0)
    if isinstance(image, np.ndarray) and image.ndim in (2, 3):
        return image[..., None] if image.ndim == 2 else image
    place = "the sample" if where is None else f"sample[{where!r}]"
    raise TypeError(
        f"NormalizeCollate reads {place} as an (H, W, C) or (H, W) array or a (C, H, W) tensor; "
        f"got {_shown(image)}"
    )


def _has(sample: Any, where: str | int) -> bool:
    if isinstance(where, str):
        return isinstance(sample, Mapping) and where in sample
    return isinstance(sample, (tuple, list)) and len(sample) > where


def _shown(value: Any) -> str:
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return f"{type(value).__name__} of shape {tuple(value.shape)}"
    return f"{type(value).__name__}"


def _numpy_backed_empty(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """A tensor on memory from ``np.empty``: NumPy asks Linux for transparent huge pages for
    large arrays (``madvise``), so a fresh batch takes a few 2 MiB page faults instead of
    thousands of 4 KiB ones. 64x3x224x224 normalized into it: 8.7 ms, 21.6 ms into
    ``torch.empty`` (float32; 5.3 vs 6.2 ms in float16). bfloat16, which NumPy lacks, is a view
    of uint16 memory."""
    return torch.from_numpy(np.empty(shape, dtype=_SAME_BYTES[dtype])).view(dtype)


#: The NumPy dtype of each output dtype's bytes (NumPy has no bfloat16: its 16 bits as uint16).
_SAME_BYTES = {torch.float32: np.float32, torch.float16: np.float16, torch.bfloat16: np.uint16}


def _shared_empty(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """A tensor in new shared memory, as ``default_collate`` allocates batches in workers: the
    batch then travels to the main process without a copy. ``empty().share_memory_()`` would
    copy it once more (3x the time of the allocation at 64x3x224x224 float32)."""
    numel = math.prod(shape)
    storage = torch.UntypedStorage._new_shared(numel * dtype.itemsize)
    return torch.empty(0, dtype=dtype).set_(storage, 0, shape)


_WARNED: set[str] = set()


def _warn_once(why: str) -> None:
    if why not in _WARNED:
        _WARNED.add(why)
        warnings.warn(f"NormalizeCollate(pin_memory=True) has no effect: {why}", UserWarning, stacklevel=4)
