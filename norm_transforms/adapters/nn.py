"""``NormalizeLayer`` and its inverse ``DenormalizeLayer``: the standard mode as a layer of a
model (no math here).

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


class _StandardLayer(PresetConstructors, nn.Module):
    """What both layers share: ``mean`` and ``std`` buffers (the state dict), the folded
    float32 ``scale`` and ``offset`` (refolded when a state dict is loaded), the output dtype
    and the channel check. Subclasses say how the constants fold (``_terms``)."""

    def __init__(
        self,
        mean: float | Sequence[float],
        std: float | Sequence[float],
        max_pixel_value: float,
        dtype: torch.dtype,
        clip_range: tuple[float, float] | None = None,
    ) -> None:
        super().__init__()
        check_output_dtype(dtype)
        if max_pixel_value is None:
            raise ValueError(
                f"max_pixel_value must be a number for {type(self).__name__} (255.0 for uint8 pixels)"
            )
        params = NormalizeParams.build(mean, std, max_pixel_value, "standard", clip_range=clip_range)
        self.max_pixel_value = float(max_pixel_value)
        self.dtype = dtype
        self.layer_name = type(self).__name__  # for messages: TorchScript has no type(self)
        channels = max(len(params.mean), len(params.std))
        self.register_buffer("mean", torch.tensor(params.channel_values(params.mean, channels, "mean")))
        self.register_buffer("std", torch.tensor(params.channel_values(params.std, channels, "std")))
        self.register_buffer("scale", torch.empty(channels, 1, 1), persistent=False)
        self.register_buffer("offset", torch.empty(channels, 1, 1), persistent=False)
        self._fold()
        self.register_load_state_dict_post_hook(_refold)

    def _terms(self, center: Any, scale: Any) -> tuple[Any, Any]:
        """float64 per-channel ``(multiplier, addend)`` of the layer from the standard mode's
        ``center`` (mean * max_pixel_value) and ``scale`` (1 / (std * max_pixel_value))."""
        raise NotImplementedError

    def _fold(self) -> None:
        mean, std = self.mean.tolist(), self.std.tolist()
        params = NormalizeParams.build(mean, std, self.max_pixel_value, "standard")
        multiplier, addend = self._terms(*params.standard_center_scale(self.mean.numel(), "float32"))
        with torch.no_grad():
            self.scale.copy_(torch.tensor(multiplier).reshape(-1, 1, 1))
            self.offset.copy_(torch.tensor(addend).reshape(-1, 1, 1))

    def _check_channels(self, x: torch.Tensor) -> None:
        # Refused here, not broadcast: addcmul would silently turn an (H, W) image or a
        # 1-channel batch into 3 channels. A shape check costs no kernel and no host sync, and
        # TorchScript, torch.compile (a guard), export and ONNX all take it.
        channels = self.scale.shape[0]
        if x.dim() < 3 or (channels != 1 and x.shape[-3] != channels):
            raise ValueError(
                f"{self.layer_name} expects (N, C, H, W) or (C, H, W) input with C = {channels} "
                f"(the length of its mean and std); got shape {list(x.shape)}"
            )

    def extra_repr(self) -> str:
        return (
            f"mean={self.mean.tolist()}, std={self.std.tolist()}, "
            f"max_pixel_value={self.max_pixel_value}, dtype={self.dtype}"
        )


class NormalizeLayer(_StandardLayer):
    """``(x - mean * max_pixel_value) / (std * max_pixel_value)`` on ``(N, C, H, W)`` or
    ``(C, H, W)`` input, uint8 or float, written as ``dtype``.

    ``clip_range=(low, high)`` clips the output (AlbumentationsX's keyword).

    ``mean`` and ``std`` are buffers saved in the state dict; loading a state dict refolds the
    constants. The layer follows ``.to(device)``; ``model.half()`` would round the constants
    too, so ask for half output with ``dtype=torch.float16`` instead. :meth:`inverse` gives the
    :class:`DenormalizeLayer` that undoes it.
    """

    def __init__(
        self,
        mean: float | Sequence[float] = IMAGENET_MEAN,
        std: float | Sequence[float] = IMAGENET_STD,
        max_pixel_value: float = 255.0,
        dtype: torch.dtype = torch.float32,
        clip_range: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(mean, std, max_pixel_value, dtype, clip_range)
        # Two floats and a flag rather than an optional tuple: TorchScript types them plainly.
        self.clip_range = None if clip_range is None else (float(clip_range[0]), float(clip_range[1]))
        self.clipped = clip_range is not None
        self.clip_low, self.clip_high = self.clip_range or (-math.inf, math.inf)

    def _terms(self, center: Any, scale: Any) -> tuple[Any, Any]:
        return scale, -center * scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_channels(x)
        y = torch.addcmul(self.offset, x, self.scale)
        if self.clipped:
            y = y.clamp(self.clip_low, self.clip_high)
        return y.to(self.dtype)

    def inverse(self, dtype: torch.dtype = torch.float32) -> DenormalizeLayer:
        """The :class:`DenormalizeLayer` with this layer's constants, on its device: pixels back
        in the units of ``max_pixel_value`` (clipped values excepted), as ``dtype``."""
        layer = DenormalizeLayer(self.mean.tolist(), self.std.tolist(), self.max_pixel_value, dtype)
        return layer.to(self.mean.device)

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", clip_range={self.clip_range}" if self.clipped else "")


class DenormalizeLayer(_StandardLayer):
    """The inverse of :class:`NormalizeLayer`: ``y * (std * max_pixel_value) + mean *
    max_pixel_value`` on ``(N, C, H, W)`` or ``(C, H, W)`` float input, written as ``dtype``
    (float32 by default; pixels in the units of ``max_pixel_value``): to look at what a model
    saw, or to map a model's normalized output back to pixels. Same buffers, state dict and
    export as the forward layer; ``NormalizeLayer(...).inverse()`` builds it.
    """

    def __init__(
        self,
        mean: float | Sequence[float] = IMAGENET_MEAN,
        std: float | Sequence[float] = IMAGENET_STD,
        max_pixel_value: float = 255.0,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__(mean, std, max_pixel_value, dtype)

    def _terms(self, center: Any, scale: Any) -> tuple[Any, Any]:
        return 1.0 / scale, center

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        self._check_channels(y)
        return torch.addcmul(self.offset, y, self.scale).to(self.dtype)


def _refold(module: Any, incompatible_keys: Any) -> None:
    module._fold()
