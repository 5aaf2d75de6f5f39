"""Torch test cases shared by the Torch test modules (kept apart from conftest, which stays NumPy-only)."""

import torch

# Every input dtype the Torch kernels accept, by name (the ids of parametrized tests).
TORCH_DTYPES = {
    "uint8": torch.uint8,
    "uint16": torch.uint16,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
}
