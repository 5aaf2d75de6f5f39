"""Rewrite the Torch section of benchmarks/RESULTS.md: the full Torch suite, longer timing budget.

python benchmarks/bench_torch.py                  # "## Torch backend, CPU"
python benchmarks/bench_torch.py --device cuda    # "## Torch backend, CUDA" (adds the 256-batch
                                                  # uint8 -> float16 target case)

RESULTS.md holds one "## " section per report. ``--markdown`` replaces only the section whose
heading matches the new report and keeps the others (norm_transforms.bench.write_section), so
this script, a CUDA run and bench_numpy.py each rewrite their own section and never the
others'. Timings on a shared machine are noisy: the report records the load average at start.
"""

import sys
from pathlib import Path

from norm_transforms.cli import main

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    defaults = [
        "bench",
        "--backend", "torch",
        "--budget", "0.4",
        "--markdown", str(HERE / "RESULTS.md"),
    ]  # fmt: skip
    raise SystemExit(main(defaults + sys.argv[1:]))
