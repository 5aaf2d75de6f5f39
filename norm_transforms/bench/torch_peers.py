"""The contenders of the Torch suite: ours, torchvision v2, kornia, plain Torch code, the floor.

Each peer is a builder ``(x, mode, out) -> call or None`` that reads the mode's data
(``statistic``, ``per_channel``, ``clip`` in :data:`norm_transforms.modes.MODES`) and returns
``None`` for a mode it has no version of, so a new mode is timed against whichever peers can
run it and prints "—" for the others.
"""

from __future__ import annotations

import functools
import importlib
import math
from collections.abc import Callable
from types import ModuleType

import torch

from ..backends import torch as torch_backend
from ..modes import DEFAULT_PERCENTILES, EPS, IMAGENET_MEAN, IMAGENET_STD, MODES, Mode, NormalizeParams

PEERS = ("torchvision v2", "kornia", "plain torch", "compiled torch")
Call = Callable[[], torch.Tensor]

CONTENDER_NOTES = [
    "- Inputs: uniform-noise pixels, float32 = uint8 / 255, int16 = Hounsfield units in [-1024, 3071], "
    "contiguous CHW / NCHW; every leading axis is a sample with its own statistics",
    "- ours = `backends.torch.normalize(x, params)`, params built once with `max_pixel_value=None` (255 for "
    "uint8, 1.0 for float32, the torchvision convention; int16 has no full scale: 1.0), float32 output",
    "- torchvision v2 = `v2.Normalize(mean, std)(v2.ToDtype(float32, scale=True)(x))`, standard mode only "
    "(not int16, which ToDtype scales to [-1, 1])",
    "- kornia: standard = `kornia.enhance.normalize(x.float() / 255, mean, std)` (int16: no / 255); "
    "min_max_per_channel = "
    "`kornia.enhance.normalize_min_max(x.float())`, which takes the min and max over H x W of every "
    "sample and channel (eps 1e-6, no clip; kornia has no whole-image min/max nor mean/std mode). "
    "A CHW image gets a batch axis: kornia reads dim 1 as the channels",
    "- plain torch = the straightforward code for each mode, in the output dtype: "
    "`(x.float() / 255 - mean) / std` (int16: no / 255); "
    "`mean`/`std(correction=0)` or `amin`/`amax` over the sample (or each channel) with keepdim, "
    f"`(x - m) / (s + {EPS})`, `clamp` to the mode's range (a float16 output rounds int16 values "
    "beyond 2048 first: less exact work than ours)",
    "- compiled torch = the plain torch code under `torch.compile(dynamic=False)` (Inductor fuses each "
    "pass into one generated kernel), CUDA only (compiling every cell takes minutes on a small CPU)",
    "- floor = `x.to(out dtype)` for uint8 and int16, `x.clone()` for float32",
    "- Every contender's output was checked against ours before timing (to 1e-3; 2e-2 for float16 output)",
]


def contenders(x: torch.Tensor, mode: str, out: torch.dtype) -> dict[str, Call]:
    """Ours, each peer that implements the mode, and the floor, as zero-argument calls with
    everything that a user builds once (transforms, constant tensors) built here."""
    calls: dict[str, Call] = {"ours": ours_call(x, mode, out)}
    builders = {
        "torchvision v2": torchvision_call,
        "kornia": kornia_call,
        "plain torch": plain_torch_call,
        "compiled torch": compiled_torch_call,
    }
    for name, build in builders.items():
        call = build(x, MODES[mode], out)
        if call is not None:
            calls[name] = call
    calls["floor"] = x.clone if x.is_floating_point() else functools.partial(x.to, out)
    return calls


def ours_call(x: torch.Tensor, mode: str, out: torch.dtype) -> Call:
    # max_pixel_value=None: the dtype's full scale, as torchvision's ToDtype(scale=True) does;
    # signed integers (CT in Hounsfield units) have none, and are normalized as they are.
    max_pixel_value = 1.0 if _signed_integer(x) else None
    params = NormalizeParams.build(max_pixel_value=max_pixel_value, normalization=mode)
    return functools.partial(torch_backend.normalize, x, params, dtype=out)


def torchvision_call(x: torch.Tensor, mode: Mode, out: torch.dtype) -> Call | None:
    """``ToDtype(scale=True)`` then ``Normalize``: the constant (standard) mode only."""
    v2 = _optional_module("torchvision.transforms.v2")
    if v2 is None or mode.statistic is not None or _signed_integer(x):
        return None
    to_dtype, normalize = v2.ToDtype(out, scale=True), v2.Normalize(*_imagenet_constants(x))
    return lambda: normalize(to_dtype(x))


def kornia_call(x: torch.Tensor, mode: Mode, out: torch.dtype) -> Call | None:
    """kornia.enhance.normalize for the constant mode; normalize_min_max, which takes the min and
    max over H x W of every sample and channel (eps 1e-6, no clip), for per-channel min/max."""
    kornia = _optional_module("kornia")
    if kornia is None:
        return None
    # kornia reads dim 0 as the batch and dim 1 as the channels: a CHW image needs a batch axis.
    batch = x if x.ndim == 4 else x.unsqueeze(0)
    if mode.statistic is None:
        mean, std = _channel_constants(x, out)
        return lambda: kornia.enhance.normalize(_to_unit_float(batch, out), mean.flatten(), std.flatten())
    if mode.statistic == "min_max" and mode.per_channel:
        return lambda: kornia.enhance.normalize_min_max(batch.to(out))
    return None


def _plain_mean_std(xf: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    mean = xf.mean(dim=dims, keepdim=True)
    std = xf.std(dim=dims, keepdim=True, correction=0)
    return (xf - mean) / (std + EPS)


def _plain_min_max(xf: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    lo, hi = xf.amin(dim=dims, keepdim=True), xf.amax(dim=dims, keepdim=True)
    return (xf - lo) / (hi - lo + EPS)


def _plain_percentile(xf: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    # torch.quantile over each scope flattened (it takes one dim); linear, as np.percentile. It
    # reads float32 and float64 only: half outputs take their bounds from a float32 copy.
    scopes = xf.flatten(start_dim=xf.ndim + dims[0])
    if scopes.dtype not in (torch.float32, torch.float64):
        scopes = scopes.float()
    q = torch.tensor(DEFAULT_PERCENTILES, dtype=scopes.dtype, device=xf.device) / 100
    keepdim_shape = (*scopes.shape[:-1], *[1] * len(dims))
    lo, hi = (bound.reshape(keepdim_shape).to(xf.dtype) for bound in torch.quantile(scopes, q, dim=-1))
    return (xf - lo) / (hi - lo + EPS)


#: The plain Torch version of each per-image statistic, before the mode's clip. A statistic
#: missing here has no plain Torch peer: "—" in the report.
PLAIN_TORCH: dict[str, Callable[[torch.Tensor, tuple[int, ...]], torch.Tensor]] = {
    "mean_std": _plain_mean_std,
    "min_max": _plain_min_max,
    "percentile": _plain_percentile,
}


def plain_torch_call(x: torch.Tensor, mode: Mode, out: torch.dtype) -> Call | None:
    """Each mode written the straightforward way, with our semantics: population std, eps added
    to the std (to max - min), statistics over the sample (or each channel), then the clip."""
    function = _plain_torch_function(x, mode, out)
    return None if function is None else functools.partial(function, x)


def compiled_torch_call(x: torch.Tensor, mode: Mode, out: torch.dtype) -> Call | None:
    """The plain torch code of the mode under ``torch.compile``, on CUDA tensors only: what a
    user gets from the compiler without this library (compiled on the first call, before timing)."""
    function = _plain_torch_function(x, mode, out) if x.is_cuda else None
    return None if function is None else functools.partial(torch.compile(function, dynamic=False), x)


def _plain_torch_function(
    x: torch.Tensor, mode: Mode, out: torch.dtype
) -> Callable[[torch.Tensor], torch.Tensor] | None:
    if mode.statistic is None:
        mean, std = _channel_constants(x, out)
        return lambda image: (_to_unit_float(image, out) - mean) / std
    formula = PLAIN_TORCH.get(mode.statistic)
    if formula is None:
        return None
    dims = (-2, -1) if mode.per_channel else (-3, -2, -1)
    low, high = mode.clip or (-math.inf, math.inf)
    return lambda image: formula(image.to(out), dims).clamp(low, high)


def _imagenet_constants(x: torch.Tensor) -> tuple[list[float], list[float]]:
    """ImageNet's mean and std for ``x``'s channels: a 1-channel image takes the first of each,
    as ours does (Albumentations' rule)."""
    channels = 1 if x.shape[-3] == 1 else len(IMAGENET_MEAN)
    return list(IMAGENET_MEAN[:channels]), list(IMAGENET_STD[:channels])


def _channel_constants(x: torch.Tensor, out: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet mean and std as (C, 1, 1) tensors of the output dtype on the input's device
    (a float32 constant would promote a float16 computation back to float32)."""
    mean, std = _imagenet_constants(x)
    as_tensor = functools.partial(torch.tensor, dtype=out, device=x.device)
    return as_tensor(mean).view(-1, 1, 1), as_tensor(std).view(-1, 1, 1)


def _signed_integer(x: torch.Tensor) -> bool:
    return x.dtype.is_signed and not x.is_floating_point()


def _to_unit_float(x: torch.Tensor, out: torch.dtype) -> torch.Tensor:
    return x.to(out) / 255 if x.dtype == torch.uint8 else x.to(out)


@functools.cache
def _optional_module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None
