"""Torch test cases shared by the Torch test modules (kept apart from conftest, which stays NumPy-only)."""

import torch

from norm_transforms.dtypes import PIXEL_TYPES

# Every input dtype the Torch kernels accept, by name (the ids of parametrized tests), read
# from the dtype table.
TORCH_DTYPES = {name: getattr(torch, name) for name in PIXEL_TYPES}


def interpreting_triton() -> bool:
    """True when the Triton kernels run in Triton's interpreter (no GPU: conftest sets
    TRITON_INTERPRET=1), where CPU tensors can take them."""
    from norm_transforms.backends.triton import kernels

    return kernels.INTERPRETED


def force_triton_route(monkeypatch) -> None:
    """Send CPU tensors to the Triton kernels (in the interpreter); where the kernels run
    compiled (a GPU machine), the conformance suite and the ``cuda`` tests check them instead."""
    import pytest

    from norm_transforms.backends.torch import FORCE_TRITON_VARIABLE

    if not interpreting_triton():
        pytest.skip("Triton runs compiled here: its route is checked on CUDA tensors")
    monkeypatch.setenv(FORCE_TRITON_VARIABLE, "1")
