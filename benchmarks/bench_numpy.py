"""Regenerate benchmarks/RESULTS.md and the chart: the full NumPy suite, longer timing budget.

python benchmarks/bench_numpy.py [--peer-python .venv-ax/bin/python] [other bench options]
"""

import sys
from pathlib import Path

from norm_transforms.cli import main

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    defaults = [
        "bench",
        "--budget", "0.4",
        "--markdown", str(HERE / "RESULTS.md"),
        "--chart", str(HERE / "numpy_single_thread.png"),
    ]  # fmt: skip
    raise SystemExit(main(defaults + sys.argv[1:]))
