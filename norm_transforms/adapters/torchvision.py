"""``TorchNormalize`` and its inverse ``TorchDenormalize``: the Torch kernels as
``torchvision.transforms.v2`` transforms (no math here)."""

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

from ..backends import numpy as numpy_backend
from ..backends.torch import (
    check_inverse_dtype,
    check_output_dtype,
    denormalize,
    normalize,
    numpy_dtype,
    value_range,
)
from ..functional import write_into
from ..modes import DEFAULT_PERCENTILES, IMAGENET_MEAN, IMAGENET_STD, NormalizationName, NormalizeParams
from ..presets import PresetConstructors
from . import warn_if_pixel_scale_looks_wrong


class TorchNormalize(PresetConstructors, v2.Transform):
    """Normalize images and videos in one pass: uint8 (or any supported dtype) in, float out.

    Arguments as :func:`norm_transforms.normalize`, with the torchvision convention for
    ``max_pixel_value``: ``None`` (the default) means the dtype's full scale, 255 for uint8,
    65535 for uint16 and 1.0 for floats, so ``ToDtype(float32, scale=True) + Normalize(mean,
    std)`` becomes ``TorchNormalize(mean, std)``. ``dtype`` is the output dtype (float32,
    float16, bfloat16 or float64; always computed in float32); None, the default, keeps a float
    input's dtype and gives float32 for integer input, as ``v2.Normalize`` does.
    ``clip_range=(low, high)`` clips the output after the mode's formula, in the same pass.
    ``inplace=True`` (as ``v2.Normalize``) writes the result into the input tensor, which must
    have the output dtype. ``nonzero=True`` (keyword-only, per-image modes) takes each image's
    (channel's) statistics over its non-zero pixels only and leaves the zeros at 0, as MONAI's
    ``NormalizeIntensity(nonzero=True)``.

    Normalizes ``tv_tensors.Image``, ``tv_tensors.Video`` (statistics per frame), plain
    tensors (the v2 rule: the first one, when the sample has no Image or Video), and PIL
    images or HWC ndarrays, which become CHW ``tv_tensors.Image`` (so it also replaces
    ``ToTensor() + Normalize()``). Boxes, masks, keypoints and labels pass through. Which
    input is the image follows v2's rule for plain tensors, with ndarrays counted as plain: an
    Image, Video or PIL image in the sample is the image and every plain tensor and ndarray
    passes through; without one, the first plain tensor or ndarray is the image and the rest
    (``np.array(boxes)``, a target) passes through.
    """

    _transformed_types = (tv_tensors.Image, tv_tensors.Video, is_pure_tensor, PIL.Image.Image, np.ndarray)

    def __init__(
        self,
        mean: float | Sequence[float] = IMAGENET_MEAN,
        std: float | Sequence[float] = IMAGENET_STD,
        max_pixel_value: float | None = None,
        normalization: NormalizationName = "standard",
        dtype: torch.dtype | None = None,
        percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
        clip_range: tuple[float, float] | None = None,
        inplace: bool = False,
        *,
        nonzero: bool = False,
    ) -> None:
        super().__init__()
        if dtype is not None:
            check_output_dtype(dtype)
        if not isinstance(inplace, bool):
            raise TypeError(f"inplace must be True or False; got {inplace!r}")
        self.norm_params = NormalizeParams.build(
            mean, std, max_pixel_value, normalization, percentiles, clip_range, nonzero
        )
        self._pixel_scale_checked = False
        self.mean, self.std = mean, std
        self.max_pixel_value = max_pixel_value
        self.normalization = normalization
        self.dtype = dtype
        self.percentiles = percentiles
        self.clip_range = clip_range
        self.inplace = inplace
        self.nonzero = nonzero

    def _needs_transform_list(self, flat_inputs: list[Any]) -> list[bool]:
        # v2's heuristic (Transform._needs_transform_list) with ndarrays among the plain inputs:
        # otherwise a sample (image, np.array(boxes)) would get its boxes "normalized".
        explicit = (tv_tensors.Image, tv_tensors.Video, PIL.Image.Image)
        take_plain = not any(isinstance(inpt, explicit) for inpt in flat_inputs)
        needs = []
        for inpt in flat_inputs:
            plain = is_pure_tensor(inpt) or isinstance(inpt, np.ndarray)
            needs.append(isinstance(inpt, explicit) or (plain and take_plain))
            take_plain = take_plain and not plain
        return needs

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        image = _as_image(inpt) if isinstance(inpt, (PIL.Image.Image, np.ndarray)) else inpt
        tensor = image.as_subclass(torch.Tensor)
        out = normalize(tensor, self.norm_params, dtype=self.dtype)
        if not self._pixel_scale_checked:  # the first call only (it reads two numbers back)
            self._pixel_scale_checked = True
            dtype = numpy_dtype(tensor.dtype)
            warn_if_pixel_scale_looks_wrong(self, self.norm_params, dtype, lambda: value_range(tensor))
        if self.inplace:  # after the check above, which reads the input's values
            # into the input tensor (a plain view of it); an ndarray or PIL image has no room
            out = write_into(tensor if isinstance(inpt, torch.Tensor) else inpt, out)
        return out if is_pure_tensor(inpt) else tv_tensors.wrap(out, like=image)

    def extra_repr(self) -> str:
        return (
            f"mean={self.mean}, std={self.std}, max_pixel_value={self.max_pixel_value}, "
            f"normalization={self.normalization!r}, dtype={self.dtype}"
            + (f", percentiles={self.percentiles}" if self.norm_params.mode.statistic == "percentile" else "")
            + (f", clip_range={self.clip_range}" if self.clip_range is not None else "")
            + (", inplace=True" if self.inplace else "")
            + (", nonzero=True" if self.nonzero else "")
        )


class TorchDenormalize(PresetConstructors, v2.Transform):
    """The inverse of :class:`TorchNormalize`'s standard mode: ``x * std + mean`` in units of
    ``max_pixel_value``, written as ``dtype``.

    ``max_pixel_value=None`` (the default) means the *output* dtype's full scale, mirroring
    ``TorchNormalize``, whose ``None`` is the input's: float output in [0, 1] units (what
    ``ToDtype(float32, scale=True)`` gives), and with ``dtype=torch.uint8`` the uint8 pixels
    back (x255, rounded and clipped to [0, 255]); ``torch.uint16`` likewise. Pass the same
    ``mean``, ``std`` and, if you set one, ``max_pixel_value`` as the normalization it undoes.
    Computed in float32 (float64 for float64 output). Applies to ``tv_tensors.Image``,
    ``tv_tensors.Video`` and plain tensors, as ``TorchNormalize`` does; the rest passes through.
    Per-image modes need each image's statistics: use ``normalize(..., return_params=True)``
    and ``denormalize(..., params=...)`` for those.

    >>> show = TorchDenormalize(dtype=torch.uint8)  # after TorchNormalize() on uint8 images
    """

    _transformed_types = (tv_tensors.Image, tv_tensors.Video, is_pure_tensor)

    def __init__(
        self,
        mean: float | Sequence[float] = IMAGENET_MEAN,
        std: float | Sequence[float] = IMAGENET_STD,
        max_pixel_value: float | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        check_inverse_dtype(dtype)
        # Validated once here, as TorchNormalize does; each call goes straight to the kernel.
        self.norm_params = NormalizeParams.build(mean, std, max_pixel_value, "standard")
        self.mean, self.std = mean, std
        self.max_pixel_value = max_pixel_value
        self.dtype = dtype

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        out = denormalize(inpt.as_subclass(torch.Tensor), self.norm_params, dtype=self.dtype)
        return out if is_pure_tensor(inpt) else tv_tensors.wrap(out, like=inpt)

    def extra_repr(self) -> str:
        return f"mean={self.mean}, std={self.std}, max_pixel_value={self.max_pixel_value}, dtype={self.dtype}"


def _as_image(inpt: PIL.Image.Image | np.ndarray) -> tv_tensors.Image:
    """A PIL image or an HWC ndarray as a CHW ``tv_tensors.Image``; an ndarray is checked first
    (dtype, shape, not empty), so that a bad one gets our message rather than torch's, and
    made contiguous, since torch cannot view negative strides."""
    if isinstance(inpt, np.ndarray):
        numpy_backend.check_image(inpt)
        if inpt.ndim not in (2, 3):
            raise ValueError(
                f"expected an ndarray image of shape (H, W) or (H, W, C); got shape {inpt.shape}"
            )
        inpt = np.ascontiguousarray(inpt)
    return F.to_image(inpt)
