"""``NormalizeLayer`` and its inverse ``DenormalizeLayer``: the standard mode as a layer of a
model (no math here).

The constants come from the mode layer (folded in float64, rounded once to float32) and live in
buffers, so the forward pass is one ``addcmul`` that TorchScript, ``torch.compile``,
``torch.export`` and ONNX all take as it is.

``NormalizeLayer(learnable=True)`` trains its mean and std instead: float32 parameters ``mean``
and ``log_std`` (std = exp(log_std), positive whatever a step does), from which every forward
computes the two terms of the same ``addcmul``, so gradients reach them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..backends.torch import check_output_dtype
from ..modes import IMAGENET_MEAN, IMAGENET_STD, NormalizeParams
from ..presets import PresetConstructors


class _StandardLayer(PresetConstructors, nn.Module):
    """What both layers share: ``mean`` and ``std`` buffers (the state dict), the folded
    float32 ``scale`` and ``offset`` (refolded when a state dict is loaded), the output dtype
    and the channel check. Subclasses say how the constants fold (``_terms``).

    With ``learnable=True`` (``NormalizeLayer`` only) ``mean`` and ``log_std`` are float32
    parameters instead, nothing is folded, and ``std`` reads as ``exp(log_std)``. Loading a
    state dict converts between ``std`` and ``log_std``, so checkpoints of either kind load
    into both."""

    # A TorchScript constant: the forward's branch on it is settled when the layer is scripted,
    # so neither kind of layer needs the other kind's attributes. (Not a Final[bool]
    # annotation: with postponed annotations TorchScript cannot read it.)
    __constants__ = ("learnable",)
    __jit_unused_properties__ = ("std",)  # a frozen scripted layer has its buffer of that name

    def __init__(
        self,
        mean: float | Sequence[float],
        std: float | Sequence[float],
        max_pixel_value: float,
        dtype: torch.dtype,
        clip_range: tuple[float, float] | None = None,
        learnable: bool = False,
    ) -> None:
        super().__init__()
        check_output_dtype(dtype)
        if not isinstance(learnable, bool):
            raise TypeError(f"learnable must be True or False, got {type(learnable).__name__}: {learnable!r}")
        if max_pixel_value is None:
            raise ValueError(
                f"max_pixel_value must be a number for {type(self).__name__} (255.0 for uint8 pixels)"
            )
        params = NormalizeParams.build(mean, std, max_pixel_value, "standard", clip_range=clip_range)
        self.max_pixel_value = float(max_pixel_value)
        self.dtype = dtype
        self.layer_name = type(self).__name__  # for messages: TorchScript has no type(self)
        self.learnable = learnable
        channels = max(len(params.mean), len(params.std))
        mean_values = torch.tensor(params.channel_values(params.mean, channels, "mean"))
        std_values = torch.tensor(params.channel_values(params.std, channels, "std"))
        if learnable:
            # float32 like the rest of a model (a float64 parameter would split FSDP's flat
            # parameters by dtype); the log taken in float64 and rounded once.
            self.mean = nn.Parameter(mean_values.float())
            self.log_std = nn.Parameter(std_values.log().float())
        else:
            self.register_buffer("mean", mean_values)
            self.register_buffer("std", std_values)
            self.register_buffer("scale", torch.empty(channels, 1, 1), persistent=False)
            self.register_buffer("offset", torch.empty(channels, 1, 1), persistent=False)
            self._fold()
        self.register_load_state_dict_pre_hook(_convert_std)
        self.register_load_state_dict_post_hook(_refold)

    @property
    def std(self) -> torch.Tensor:
        """The per-channel std: the buffer of a frozen layer, ``exp(log_std)`` (differentiable)
        of a learnable one."""
        # A property rather than a __getattr__ fallback: only this name pays for it, not every
        # buffer the forward reads. nn.Module.__setattr__ still assigns a frozen layer's buffer.
        if self.learnable:
            return torch.exp(self.log_std)
        try:
            return self._buffers["std"]
        except KeyError:  # not registered yet: hasattr() in register_buffer must see no attribute
            raise AttributeError("std") from None

    @std.setter
    def std(self, value: Any) -> None:  # reached only when no std buffer takes the assignment
        raise AttributeError(
            f"std of a learnable {type(self).__name__} is exp(log_std); set log_std instead, "
            "e.g. with torch.no_grad(): layer.log_std.copy_(new_std.log())"
        )

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
        channels = self.mean.shape[0]
        if x.dim() < 3 or (channels != 1 and x.shape[-3] != channels):
            raise ValueError(
                f"{self.layer_name} expects (N, C, H, W) or (C, H, W) input with C = {channels} "
                f"(the length of its mean and std); got shape {list(x.shape)}"
            )

    def extra_repr(self) -> str:
        if self.learnable:  # float32 values, shown as the shortest decimals that give them back
            mean, std = _shortest_float32(self.mean), _shortest_float32(self.std)
        else:
            mean, std = self.mean.tolist(), self.std.tolist()
        text = f"mean={mean}, std={std}, max_pixel_value={self.max_pixel_value}, dtype={self.dtype}"
        return text + (", learnable=True" if self.learnable else "")


class NormalizeLayer(_StandardLayer):
    """``(x - mean * max_pixel_value) / (std * max_pixel_value)`` on ``(N, C, H, W)`` or
    ``(C, H, W)`` input, uint8 or float, written as ``dtype``.

    ``clip_range=(low, high)`` clips the output (AlbumentationsX's keyword).

    ``mean`` and ``std`` are buffers saved in the state dict; loading a state dict refolds the
    constants. The layer follows ``.to(device)``; ``model.half()`` would round the constants
    too, so ask for half output with ``dtype=torch.float16`` instead. :meth:`inverse` gives the
    :class:`DenormalizeLayer` that undoes it.

    ``learnable=True`` trains the constants with the model: ``mean`` and ``log_std`` become
    float32 ``nn.Parameter`` s (the state dict's keys), ``std`` reads as ``exp(log_std)``, which
    stays positive whatever an optimizer step does to ``log_std`` (and a step moves std by a
    factor, the same in any units), and each forward computes its scale and offset from them.
    ``from_preset(name, learnable=True)`` or ``NormalizeLayer(**stats.to_normalize_kwargs(),
    learnable=True)`` start it from a preset or measured :class:`ChannelStats`. A state dict
    with ``std`` loads into a learnable layer and one with ``log_std`` into a frozen layer (the
    trained values, folded again into one ``addcmul`` for deployment).
    """

    def __init__(
        self,
        mean: float | Sequence[float] = IMAGENET_MEAN,
        std: float | Sequence[float] = IMAGENET_STD,
        max_pixel_value: float = 255.0,
        dtype: torch.dtype = torch.float32,
        clip_range: tuple[float, float] | None = None,
        learnable: bool = False,
    ) -> None:
        super().__init__(mean, std, max_pixel_value, dtype, clip_range, learnable)
        # Two floats and a flag rather than an optional tuple: TorchScript types them plainly.
        self.clip_range = None if clip_range is None else (float(clip_range[0]), float(clip_range[1]))
        self.clipped = clip_range is not None
        self.clip_low, self.clip_high = self.clip_range or (-math.inf, math.inf)

    def _terms(self, center: Any, scale: Any) -> tuple[Any, Any]:
        return scale, -center * scale

    def _learned_terms(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(offset, scale)`` of the learnable layer, from its parameters (so differentiable), in
        the order of the frozen layer's fold: scale = 1 / (std * max_pixel_value), offset =
        -(mean * max_pixel_value) * scale."""
        scale = torch.reciprocal(torch.exp(self.log_std) * self.max_pixel_value)
        offset = -(self.mean * self.max_pixel_value) * scale
        return offset.reshape(-1, 1, 1), scale.reshape(-1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_channels(x)
        if self.learnable:
            offset, scale = self._learned_terms()
            y = torch.addcmul(offset, x, scale)
        else:
            y = torch.addcmul(self.offset, x, self.scale)
        if self.clipped:
            y = y.clamp(self.clip_low, self.clip_high)
        return y.to(self.dtype)

    def inverse(self, dtype: torch.dtype = torch.float32) -> DenormalizeLayer:
        """The :class:`DenormalizeLayer` with this layer's constants, on its device: pixels back
        in the units of ``max_pixel_value`` (clipped values excepted), as ``dtype``.

        Of a learnable layer: a frozen snapshot of its current mean and std (buffers, no
        gradient into this layer's parameters); call it again after training for the learned
        values."""
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
    if not module.learnable:
        module._fold()


def _convert_std(
    module: Any, state_dict: Any, prefix: str, local_metadata: Any, strict: bool, *args: Any
) -> None:
    """Before loading: a frozen layer's ``std`` for a learnable layer (as ``log_std``) and a
    learnable layer's ``log_std`` for a frozen one (as ``std``), each converted in float64.
    ``load_state_dict`` hands its hooks its own copy of the dict, so the caller's is untouched."""
    have, want = ("std", "log_std") if module.learnable else ("log_std", "std")
    if prefix + have in state_dict and prefix + want not in state_dict:
        value = state_dict.pop(prefix + have).detach().double()
        state_dict[prefix + want] = value.log() if module.learnable else value.exp()


def _shortest_float32(values: torch.Tensor) -> list[float]:
    return [float(str(np.float32(value))) for value in values.tolist()]
