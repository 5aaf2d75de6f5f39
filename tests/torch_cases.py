"""Torch test cases shared by the Torch test modules (kept apart from conftest, which stays NumPy-only)."""

import torch

from norm_transforms.dtypes import PIXEL_TYPES

# Every input dtype the Torch kernels accept, by name (the ids of parametrized tests), read
# from the dtype table.
TORCH_DTYPES = {name: getattr(torch, name) for name in PIXEL_TYPES}
