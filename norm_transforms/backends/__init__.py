"""Kernel backends, one module per array library, and the registry that picks one by the input's
type.

Every backend module implements :class:`Backend` (the written contract below: the same names,
with the signatures written there) and passes the one conformance suite
(tests/test_conformance.py). A new
array library plugs in by writing such a module and naming it in :data:`BACKENDS` (or, at run
time, :func:`register_backend`); ``normalize`` / ``denormalize`` and the transforms never change.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any, Protocol

from ..modes import AffineParams, NormalizeParams


class Backend(Protocol):
    """What a kernel backend module provides. Modes are data (:data:`norm_transforms.MODES`):
    a mode names the statistic it needs, and the backend maps that name to its function in
    ``STATISTICS``, so a new mode with a new statistic adds one entry per backend.
    """

    #: The statistic names of ``modes.MODES`` (``"mean_std"``, ``"min_max"``, ...) -> how this
    #: backend reduces each: a function, or a small record around one (each backend documents
    #: its entries beside its table). Every statistic a mode names must have an entry.
    STATISTICS: Mapping[str, Any]

    def check_image(self, image: Any) -> None:
        """Refuse an input the kernels do not read (dtype, layout, empty) with a ``TypeError`` or
        ``ValueError`` that says what was received and what is accepted."""

    def normalize(
        self,
        image: Any,
        params: NormalizeParams,
        *,
        batched: bool = False,
        volume: bool = False,
        dtype: Any = None,
        return_params: bool = False,
        mask: Any = None,
    ) -> Any:
        """``params.mode`` applied to ``image``, each sample with its own statistics, as a new
        array of ``dtype`` (when None: float32, or for tensors a float input's own dtype); the
        input is never modified. With
        ``return_params``, ``(out, AffineParams)``: the terms applied. ``params.nonzero`` and
        ``mask`` (booleans of the image's shape, or of that shape without the channel axis; the
        functional API passes it only when given) restrict each scope's statistics to the
        selected pixels (SPEC 6); a backend that cannot hands such calls to one that can."""

    def denormalize(
        self,
        image: Any,
        params: NormalizeParams | AffineParams,
        *,
        batched: bool = False,
        volume: bool = False,
        dtype: Any = None,
    ) -> Any:
        """The inverse, ``x = y / scale + center``, from the terms ``normalize`` returned or from
        standard-mode arguments."""

    def check_normalized(self, image: Any) -> None:
        """Refuse what ``denormalize`` cannot read (it takes ``normalize``'s float output)."""

    def check_inverse_dtype(self, dtype: Any) -> Any:
        """The dtype ``denormalize`` writes for ``dtype``, or a ``TypeError`` listing them."""

    def route(self, image: Any, params: NormalizeParams) -> str:
        """The kernels that ``normalize`` runs for ``image`` in ``params.mode``, by name (what
        :func:`norm_transforms.kernel_route` reports)."""

    def value_range(self, image: Any) -> tuple[float, float]:
        """The smallest and largest pixel value, NaN skipped: what the transforms read on their
        first call to check ``max_pixel_value``."""


#: Array type (qualified name) -> the backend module for it, imported when the first such array
#: arrives, so that ``import norm_transforms`` never imports torch.
BACKENDS: dict[str, str] = {
    "numpy.ndarray": "norm_transforms.backends.numpy",
    "torch.Tensor": "norm_transforms.backends.torch",
    # The Torch backend's results re-wrapped as the input's tv_tensor type (v2's F.normalize keeps it).
    "torchvision.tv_tensors._tv_tensor.TVTensor": "norm_transforms.adapters.tv_tensors",
}

#: Backends that a registered backend hands some of its inputs to, by device rather than by
#: type: the Torch backend gives CUDA tensors to the Triton kernels. Same contract, same suite.
ROUTED_BACKENDS: tuple[str, ...] = ("norm_transforms.backends.triton",)

_LOADED: dict[type, Any] = {}


def register_backend(array_type: type, backend: ModuleType | Any) -> None:
    """Route arrays of ``array_type`` (and its subclasses) to ``backend``, a module (or object)
    that implements :class:`Backend`."""
    _LOADED[array_type] = backend


def backend_for(image: Any, action: str = "normalize") -> Any:
    """The backend for ``image``'s type, or a ``TypeError`` listing the accepted types."""
    backend = backend_for_type(type(image))
    if backend is None:
        registered = (f"{cls.__module__}.{cls.__qualname__}" for cls in _LOADED)
        accepted = ", ".join(dict.fromkeys([*BACKENDS, *registered]))
        raise TypeError(f"cannot {action} an object of {type(image)!r}; accepted: {accepted}")
    return backend


def backend_for_type(array_type: type) -> Any:
    """The backend of the first registered type in ``array_type``'s MRO, or None."""
    for cls in array_type.__mro__:
        if cls in _LOADED:
            return _LOADED[cls]
        module = BACKENDS.get(f"{cls.__module__}.{cls.__qualname__}")
        if module is not None:
            _LOADED[cls] = importlib.import_module(module)
            return _LOADED[cls]
    return None
