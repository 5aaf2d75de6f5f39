"""``NormalizeLayer``: the standard mode as the first layer of a model (no math here).

The constants come from the mode layer (folded in float64, rounded once to float32) and live in
buffers, so the forward pass is one ``addcmul`` that TorchScript, ``torch.compile``,
``torch.export`` and ONNX all take as it is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..backends.torch import check_output_dtype
from ..modes import IMAGENET_MEAN, IMAGENET_STD, NormalizeParams
from ..presets import PresetConstructors


class NormalizeLayer(PresetConstructors, nn.Module):
    """``(x - mean * max_pixel_value) / (std * max_pixel_value)`` on ``(N, C, H, W)`` or
    ``(C, H, W)`` input, uint8 or float, written as ``dtype``.

    ``clip_range=(low, high)`` clips the output (AlbumentationsX's keyword).

    ``mean`` and ``std`` are buffers saved in the state dict; loading a state dict refolds the
    constants. The layer follows ``.to(device)``; ``model.half()`` would round the constants
    too, so ask for half output with ``dtype=torch.float16`` instead.
    """

    def __init__(
        self,
        mean: float | Sequence[float] = IMAGENET_MEAN,
        std: float | Sequence[float] = IMAGENET_STD,
        max_pixel_value: float = 255.0,
        dtype: torch.dtype = torch.float32,
        clip_range: tuple[float, float] | None = None,
    ) -> None:
        super().__init__()
        check_output_dtype(dtype)
        if max_pixel_value is None:
            raise ValueError("max_pixel_value must be a number for NormalizeLayer (255.0 for uint8 input)")
        params = NormalizeParams.build(mean, std, max_pixel_value, "standard", clip_range=clip_range)
        self.max_pixel_value = float(max_pixel_value)
        self.dtype = dtype
        # Two floats and a flag rather than an optional tuple: TorchScript types them plainly.
        self.clip_range = params.clip_range
        self.clipped = params.clip_range is not None
        self.clip_low, self.clip_high = params.clip_range or (-math.inf, math.inf)
        channels = max(len(params.mean), len(params.std))
        self.register_buffer("mean", torch.tensor(params.channel_values(params.mean, channels, "mean")))
        self.register_buffer("std", torch.tensor(params.channel_values(params.std, channels, "std")))
        self.register_buffer("scale", torch.empty(channels, 1, 1), persistent=False)
        self.register_buffer("offset", torch.empty(channels, 1, 1), persistent=False)
        self._fold()
        self.register_load_state_dict_post_hook(_refold)

    def _fold(self) -> None:
        params = NormalizeParams.build(
            self.mean.tolist(), self.std.tolist(), self.max_pixel_value, "standard"
        )
        center, scale = params.standard_center_scale(self.mean.numel(), "float32")
        with torch.no_grad():
            self.scale.copy_(torch.tensor(scale).reshape(-1, 1, 1))
            self.offset.copy_(torch.tensor(-center * scale).reshape(-1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Refused here, not broadcast: addcmul would silently turn an (H, W) image or a
        # 1-channel batch into 3 channels. A shape check costs no kernel and no host sync, and
        # TorchScript, torch.compile (a guard), export and ONNX all take it.
        channels = self.scale.shape[0]
        if x.dim() < 3 or (channels != 1 and x.shape[-3] != channels):
            raise ValueError(
                f"NormalizeLayer expects (N, C, H, W) or (C, H, W) input with C = {channels} "
                f"(the length of its mean and std); got shape {list(x.shape)}"
            )
        y = torch.addcmul(self.offset, x, self.scale)
        if self.clipped:
            y = y.clamp(self.clip_low, self.clip_high)
        return y.to(self.dtype)

    def extra_repr(self) -> str:
        return (
            f"mean={self.mean.tolist()}, std={self.std.tolist()}, "
            f"max_pixel_value={self.max_pixel_value}, dtype={self.dtype}"
            + (f", clip_range={self.clip_range}" if self.clipped else "")
        )


def _refold(module: Any, incompatible_keys: Any) -> None:
    module._fold()
