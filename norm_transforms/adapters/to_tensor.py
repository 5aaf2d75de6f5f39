"""``NormalizeToTensor``: ``Normalize`` and ``ToTensorV2`` as one Albumentations transform,
writing a contiguous CHW tensor (no math here: the NumPy backend's planar kernels).

Why planes, and how: ``_planes.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from albumentations.pytorch import ToTensorV2

from ..backends.numpy import check_image
from ..modes import DEFAULT_PERCENTILES, IMAGENET_MEAN, IMAGENET_STD, NormalizationName
from ..presets import PresetConstructors
from ._planes import PLANE_DTYPES, normalize_into_planes
from .albumentations import _NormalizeArguments


class NormalizeToTensor(_NormalizeArguments, PresetConstructors, ToTensorV2):
    """``Normalize(...)`` followed by ``ToTensorV2()``, in one transform: HWC (or HW) uint8,
    uint16 or float images become contiguous ``(C, H, W)`` tensors of ``dtype`` (``"float32"``,
    ``"float16"`` or ``"bfloat16"``; computed in float32), with the arguments and modes of
    :class:`norm_transforms.Normalize`; ``images`` (N, H, W, C) become (N, C, H, W), each image
    with its own statistics. Masks are converted as ``ToTensorV2`` converts them
    (``transpose_mask``). ``nonzero=True`` as in ``Normalize``.

    >>> import albumentations as A
    >>> pipeline = A.Compose([A.RandomCrop(224, 224), NormalizeToTensor(dtype="float16")])
    """

    class InitSchema(ToTensorV2.InitSchema):
        # Checked by NormalizeParams.build, whose messages name the argument.
        mean: Any
        std: Any
        max_pixel_value: Any
        normalization: Any
        percentiles: Any
        clip_range: Any
        nonzero: Any
        dtype: Any
        transpose_mask: bool

    def __init__(
        self,
        mean: tuple[float, ...] | float = IMAGENET_MEAN,
        std: tuple[float, ...] | float = IMAGENET_STD,
        max_pixel_value: float | None = 255.0,
        normalization: NormalizationName = "standard",
        transpose_mask: bool = False,
        p: float = 1.0,
        *,
        percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
        clip_range: tuple[float, float] | None = None,
        nonzero: bool = False,
        dtype: str = "float32",
    ):
        super().__init__(transpose_mask=transpose_mask, p=p)
        if dtype not in PLANE_DTYPES:
            raise ValueError(f"dtype must be 'float32', 'float16' or 'bfloat16'; got {dtype!r}")
        self._store_arguments(mean, std, max_pixel_value, normalization, percentiles, clip_range, nonzero)
        self.dtype = dtype

    @classmethod
    def get_class_fullname(cls) -> str:
        return "norm_transforms.NormalizeToTensor"

    def apply(self, img: np.ndarray, **params: Any) -> torch.Tensor:
        return self._normalized_planes(img[None] if img.ndim == 3 else img[None, ..., None])[0]

    def apply_to_images(self, images: Any, **params: Any) -> Any:
        if isinstance(images, np.ndarray):
            return self._normalized_planes(images if images.ndim == 4 else images[..., None])
        return [self.apply(image) for image in images]

    def _normalized_planes(self, samples: np.ndarray) -> torch.Tensor:
        """(N, H, W, C) samples -> a contiguous (N, C, H, W) tensor of the output dtype."""
        check_image(samples)
        count, height, width, channels = samples.shape
        batch = torch.empty((count, channels, height, width), dtype=PLANE_DTYPES[self.dtype])
        normalize_into_planes(batch, samples, self._recipe)
        self._check_pixel_scale_once(samples)
        return batch
