"""Torch tensors as ``ChannelStats`` reads them: channels-first tensors become channels-last
NumPy views. Torch is imported only once a tensor has arrived (one cannot exist without it)."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from .accumulators import ACCEPTED_DTYPES


def is_tensor(value: Any) -> bool:
    """Whether ``value`` is a torch tensor. A tensor can exist only if torch is imported: never
    import it to find out."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def tensor_as_channels_last(tensor: Any) -> np.ndarray:
    """A CPU NumPy view (or copy) of ``(H, W)``, ``(C, H, W)`` or ``(N, C, H, W)`` moved to
    ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``; a channels_last tensor needs no copy."""
    import torch

    if tensor.ndim not in (2, 3, 4):
        raise ValueError(
            f"expected a tensor (H, W), (C, H, W) or (N, C, H, W); got shape {tuple(tensor.shape)}"
        )
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()  # NumPy has no bfloat16; the conversion is exact
    if tensor.ndim > 2:
        tensor = tensor.movedim(-3, -1)
    try:
        return tensor.numpy()
    except TypeError as error:  # a dtype NumPy lacks (complex32, quantized, ...)
        raise TypeError(
            f"tensor dtype {tensor.dtype} is not supported; accepted: {ACCEPTED_DTYPES}"
        ) from error
