"""Normalized samples written as the planes of a Torch batch: what ``NormalizeToTensor`` and
``NormalizeCollate`` share (no math here: the NumPy backend's planar kernels).

Why planes: a ``(C, H, W)`` tensor that is a view of HWC memory (``ToTensorV2``'s output)
costs a strided transposing copy in ``default_collate``, more than the normalization itself
(issue 14: 34 ms for 64 float32 224x224 views, 20 ms contiguous). Splitting the *uint8* channels
first moves a quarter of the bytes, and the affine then streams plane by plane into the batch; the
standard mode does both in one C pass (``normalize_to_planes``).
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np
import torch

from ..backends.numpy import normalize_planar, normalize_to_planes
from ..modes import NormalizeParams

#: Output dtypes by name (as Albumentations serializes them).
PLANE_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def normalize_into_planes(
    batch: torch.Tensor, samples: Iterable[np.ndarray], params: NormalizeParams
) -> None:
    """Normalize ``samples`` (``(H, W, C)`` arrays of one shape and dtype, any strides) into
    ``batch``, a contiguous ``(N, C, H, W)`` CPU tensor of a ``PLANE_DTYPES`` dtype, each sample
    with its own statistics. float16 is written by the kernels themselves; bfloat16 (which
    NumPy lacks) goes through float32 planes, rounded to nearest even by Torch."""
    wide = batch.dtype == torch.bfloat16
    target = None if wide else batch.numpy()
    scratch = None
    wide_planes = np.empty(batch.shape[1:], np.float32) if wide else None  # reused by every sample
    for index, sample in enumerate(samples):
        out = wide_planes if wide else target[index]
        planes = _planes_of(sample)
        if planes is None and params.mode.statistic is None:
            normalize_to_planes(sample, params, out=out)  # split and affine in one pass
        else:
            if planes is None:  # the statistics read planes: split first
                if scratch is None:  # one set of planes for every sample
                    scratch = np.empty(batch.shape[1:], dtype=sample.dtype)
                _split(sample, scratch)
                planes = scratch
            normalize_planar(planes[None], params, out=out[None])
        if wide:
            batch[index].copy_(torch.from_numpy(out))


def _planes_of(sample: np.ndarray) -> np.ndarray | None:
    """``sample`` as contiguous ``(C, H, W)`` planes without a copy, where its memory already
    is planar (one channel, or a CHW view); None when the channels are interleaved."""
    planes = sample.transpose(2, 0, 1)
    if planes.flags.c_contiguous or sample.shape[2] == 1:
        return planes
    return None


#: cv2.split refuses more channels (OpenCV 5.1: 129 fails).
_CV_SPLIT_MAX_CHANNELS = 128


def _split(sample: np.ndarray, planes: np.ndarray) -> None:
    """``sample``'s channels into ``planes``: ``cv2.split`` (11 us at 224x224x3 uint8), or a
    strided NumPy copy (43 us) for more channels than it takes."""
    if sample.shape[2] > _CV_SPLIT_MAX_CHANNELS:
        np.copyto(planes, sample.transpose(2, 0, 1))
    else:
        cv2.split(np.ascontiguousarray(sample), list(planes))
