"""Fast, exact image normalization for deep learning.

``normalize`` works on NumPy arrays and Torch tensors; ``Normalize`` is a drop-in for
``albumentations.Normalize``, ``TorchNormalize`` a torchvision v2 transform and
``NormalizeLayer`` an ``nn.Module``; ``compute_stats`` and ``ChannelStats`` give the exact
mean and std of a dataset to normalize with. Albumentations and torch are imported only when
one of their classes (or a tensor) is first used.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from ._optional import missing_dependency
from .dtypes import PIXEL_TYPES, PixelType
from .functional import denormalize, kernel_route, normalize, register_kernel
from .modes import EPS, IMAGENET_MEAN, IMAGENET_STD, MODES, AffineParams, Mode, NormalizeParams
from .plot import plot_histograms
from .presets import PRESETS, Preset, get_preset
from .stats import ChannelStats, compute_stats
from .threads import get_num_threads, set_num_threads

if TYPE_CHECKING:
    from .adapters.albumentations import Denormalize, Normalize
    from .adapters.collate import NormalizeCollate
    from .adapters.nn import DenormalizeLayer, NormalizeLayer
    from .adapters.to_tensor import NormalizeToTensor
    from .adapters.torchvision import TorchDenormalize, TorchNormalize

__version__ = "0.1.0"

__all__ = [
    "EPS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MODES",
    "PIXEL_TYPES",
    "PRESETS",
    "AffineParams",
    "ChannelStats",
    "Denormalize",
    "DenormalizeLayer",
    "Mode",
    "Normalize",
    "NormalizeCollate",
    "NormalizeLayer",
    "NormalizeParams",
    "NormalizeToTensor",
    "PixelType",
    "Preset",
    "TorchDenormalize",
    "TorchNormalize",
    "__version__",
    "compute_stats",
    "denormalize",
    "get_num_threads",
    "get_preset",
    "kernel_route",
    "normalize",
    "plot_histograms",
    "register_kernel",
    "set_num_threads",
]

# Classes that live behind an optional dependency, imported on first use.
_LAZY = {
    "Denormalize": "norm_transforms.adapters.albumentations",
    "DenormalizeLayer": "norm_transforms.adapters.nn",
    "Normalize": "norm_transforms.adapters.albumentations",
    "NormalizeCollate": "norm_transforms.adapters.collate",
    "NormalizeLayer": "norm_transforms.adapters.nn",
    "NormalizeToTensor": "norm_transforms.adapters.to_tensor",
    "TorchDenormalize": "norm_transforms.adapters.torchvision",
    "TorchNormalize": "norm_transforms.adapters.torchvision",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        try:
            module = importlib.import_module(_LAZY[name])
        except ImportError as error:
            raise missing_dependency(error, f"norm_transforms.{name}") from error
        return getattr(module, name)
    raise AttributeError(f"module 'norm_transforms' has no attribute {name!r}")


def __dir__() -> list[str]:
    # The public names only: the submodules imported above are implementation.
    return sorted(__all__)


if sys.modules.get("albumentations") is not None:
    # Already loaded by the caller: register our transform now, so that A.from_dict finds
    # "norm_transforms.Normalize" without an explicit import. Costs nothing extra.
    from .adapters import albumentations as _albumentations_adapter  # noqa: F401
