"""Rewrite the "NormalizeLayer, eager and torch.compile" section of benchmarks/RESULTS.md: the
layer eager, under ``torch.compile`` and (CUDA) with CUDA graphs, per shape and output dtype
(norm_transforms.bench.layer_suite).

python benchmarks/bench_layer.py                  # "... (CPU)"
python benchmarks/bench_layer.py --device cuda    # "... (CUDA)": adds reduce-overhead and % of copy
"""

import sys
from pathlib import Path

from norm_transforms.bench.layer_suite import main

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    raise SystemExit(main(["--markdown", str(HERE / "RESULTS.md"), *sys.argv[1:]]))
