"""Rewrite the "Statistics over non-zero pixels" section of benchmarks/RESULTS.md: ours with
``nonzero=True`` against the NumPy code of such pipelines and against the plain mode
(norm_transforms.bench.selection_suite).

python benchmarks/bench_nonzero.py
"""

import sys
from pathlib import Path

from norm_transforms.bench.selection_suite import main

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    raise SystemExit(main(["--markdown", str(HERE / "RESULTS.md"), *sys.argv[1:]]))
