"""torchvision's tv_tensors (``tv_tensors.Image``, ``tv_tensors.Video``) through ``normalize`` and
``denormalize``: the Torch backend computes, and the result keeps the input's tv_tensor type, as
``torchvision.transforms.v2.functional.normalize`` keeps it (the v2 transforms after it
dispatch on that type). Registered by type name in ``backends.BACKENDS``, so it loads only when
a tv_tensor arrives; no math here.
"""

from __future__ import annotations

from typing import Any

import torch
from torchvision import tv_tensors

from ..backends import torch as torch_backend
from ..modes import AffineParams, NormalizeParams

STATISTICS = torch_backend.STATISTICS

check_image = torch_backend.check_image
check_normalized = torch_backend.check_normalized
check_inverse_dtype = torch_backend.check_inverse_dtype
value_range = torch_backend.value_range
route = torch_backend.route


def normalize(image: tv_tensors.TVTensor, params: NormalizeParams, **options: Any) -> Any:
    """The Torch backend's ``normalize``, the output wrapped as the input's tv_tensor type;
    tv_tensors that are not images (boxes, masks, keypoints) are refused, as ``F.normalize``
    refuses them."""
    if not isinstance(image, (tv_tensors.Image, tv_tensors.Video)):
        raise TypeError(
            f"cannot normalize a tv_tensors.{type(image).__name__}: only tv_tensors.Image and "
            "tv_tensors.Video (or plain tensors) are images"
        )
    result = torch_backend.normalize(image.as_subclass(torch.Tensor), params, **options)
    if isinstance(result, tuple):
        out, affine = result
        return tv_tensors.wrap(out, like=image), affine
    return tv_tensors.wrap(result, like=image)


def denormalize(
    image: tv_tensors.TVTensor, params: NormalizeParams | AffineParams, **options: Any
) -> tv_tensors.TVTensor:
    """The Torch backend's ``denormalize``, the output wrapped as the input's tv_tensor type."""
    out = torch_backend.denormalize(image.as_subclass(torch.Tensor), params, **options)
    return tv_tensors.wrap(out, like=image)
