"""``TorchNormalize``: the Torch kernels as a ``torchvision.transforms.v2`` transform (no math here)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import PIL.Image
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F
from torchvision.transforms.v2._utils import is_pure_tensor

from ..backends.torch import check_output_dtype, normalize_tensor
from ..modes import IMAGENET_MEAN, IMAGENET_STD, NormalizationName, NormalizeParams


class TorchNormalize(v2.Transform):
    """Normalize images and videos in one pass: uint8 (or any supported dtype) in, float out.

    Arguments as :func:`norm_transforms.normalize`, with the torchvision convention for
    ``max_pixel_value``: ``None`` (the default) means the dtype's full scale, 255 for uint8,
    65535 for uint16 and 1.0 for floats, so ``ToDtype(float32, scale=True) + Normalize(mean,
    std)`` becomes ``TorchNormalize(mean, std)``. ``dtype`` is the output dtype (float32,
    float16 or bfloat16; always computed in float32).

    Normalizes ``tv_tensors.Image``, ``tv_tensors.Video`` (statistics per frame), plain
    tensors (the v2 rule: the first one, when the sample has no Image or Video), and PIL
    images or HWC ndarrays, which become CHW ``tv_tensors.Image`` (so it also replaces
    ``ToTensor() + Normalize()``). Boxes, masks, keypoints and labels pass through. As with
    ``v2.ToImage``, every ndarray in the sample is taken for an HWC image: pass other arrays
    (a mask, a target) as tv_tensors or tensors.
    """

    _transformed_types = (tv_tensors.Image, tv_tensors.Video, is_pure_tensor, PIL.Image.Image, np.ndarray)

    def __init__(
        self,
        mean: float | Sequence[float] = IMAGENET_MEAN,
        std: float | Sequence[float] = IMAGENET_STD,
        max_pixel_value: float | None = None,
        normalization: NormalizationName = "standard",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        check_output_dtype(dtype)
        self.norm_params = NormalizeParams.build(mean, std, max_pixel_value, normalization)
        self.mean, self.std = mean, std
        self.max_pixel_value = max_pixel_value
        self.normalization = normalization
        self.dtype = dtype

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        image = F.to_image(inpt) if isinstance(inpt, (PIL.Image.Image, np.ndarray)) else inpt
        out = normalize_tensor(image.as_subclass(torch.Tensor), self.norm_params, dtype=self.dtype)
        return out if is_pure_tensor(inpt) else tv_tensors.wrap(out, like=image)

    def extra_repr(self) -> str:
        return (
            f"mean={self.mean}, std={self.std}, max_pixel_value={self.max_pixel_value}, "
            f"normalization={self.normalization!r}, dtype={self.dtype}"
        )
