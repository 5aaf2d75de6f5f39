"""Torch test cases shared by the Torch test modules (kept apart from conftest, which stays NumPy-only)."""

import torch

from norm_transforms.dtypes import PIXEL_TYPES

# Every input dtype the Torch kernels accept, by name (the ids of parametrized tests), read
# from the dtype table.
TORCH_DTYPES = {name: getattr(torch, name) for name in PIXEL_TYPES}


def full_scale_of(name: str) -> float:
    """What ``max_pixel_value`` should be for tensors of dtype ``name``: the dtype's full scale, or
    for the signed integers, which have none, their largest value (as conftest.full_scale)."""
    scale = PIXEL_TYPES[name].full_scale
    return float(torch.iinfo(getattr(torch, name)).max) if scale is None else scale


def max_pixel_value_of(name: str) -> float | None:
    """``None`` (the dtype's full scale) where the dtype has one, else :func:`full_scale_of`: the
    signed integers' standard mode needs an explicit value."""
    return None if PIXEL_TYPES[name].full_scale is not None else full_scale_of(name)


def interpreting_triton() -> bool:
    """True when the Triton kernels run in Triton's interpreter (no GPU: conftest sets
    TRITON_INTERPRET=1), where CPU tensors can take them."""
    from norm_transforms.backends.triton import kernels

    return kernels.INTERPRETED


def force_triton_route(monkeypatch) -> None:
    """Send CPU tensors to the Triton kernels (in the interpreter); where the kernels run
    compiled (a GPU machine), the conformance suite and the ``cuda`` tests check them instead."""
    import pytest

    import norm_transforms.backends.torch as torch_backend

    if not interpreting_triton():
        pytest.skip("Triton runs compiled here: its route is checked on CUDA tensors")
    # What NORM_TRANSFORMS_FORCE_TRITON=1 does; the backend reads the variable once per process.
    monkeypatch.setattr(torch_backend, "_triton_forced", lambda: True)


def normalize_to_float32(image, *args, **kwargs):
    """``norm_transforms.normalize`` with float32 output for tensors unless ``dtype`` is given.
    A float tensor keeps its own dtype by default (as ``v2.Normalize``); the tests that compare
    values with float32 or float64 references ask for float32, and
    test_backend_torch.py::test_default_output_dtype checks the default itself."""
    import torch

    from norm_transforms import normalize

    if isinstance(image, torch.Tensor) and kwargs.get("dtype") is None:
        kwargs["dtype"] = torch.float32
    return normalize(image, *args, **kwargs)
