"""Rewrite the "Statistics over non-zero pixels, Torch tensors (DEVICE)" section of
benchmarks/RESULTS.md: ours with ``nonzero=True`` on a batch of tensors against ours through
Torch ops, MONAI's code and the plain mode (norm_transforms.bench.selection_torch).

python benchmarks/bench_nonzero_torch.py --device cuda    # the Triton kernels on a GPU
python benchmarks/bench_nonzero_torch.py --device cpu     # CPU tensors: the C kernels
"""

import sys
from pathlib import Path

from norm_transforms.bench.selection_torch import main

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    raise SystemExit(main(["--markdown", str(HERE / "RESULTS.md"), *sys.argv[1:]]))
