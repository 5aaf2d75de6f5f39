"""Rewrite the pipeline section of benchmarks/RESULTS.md: the whole training input pipeline.

python benchmarks/bench_pipeline.py                  # "## Pipeline: augment, normalize, ..."
python benchmarks/bench_pipeline.py --device cuda    # adds the uint8 batch normalized on a GPU

Every place the normalization can go (A.Normalize + ToTensorV2, ours + ToTensorV2,
NormalizeToTensor, NormalizeCollate, a uint8 batch normalized afterwards, torchvision v2's own
pipeline), in ms per stage and in DataLoader images/s with 0 and 2 workers. ``--markdown``
replaces only this report's section (norm_transforms.bench.write_section). Timings on a shared
machine are noisy: the report records the load average at the start.
"""

import sys
from pathlib import Path

from norm_transforms.cli import main

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    defaults = [
        "bench",
        "--pipeline",
        "--batches", "24",
        "--repeats", "7",
        "--markdown", str(HERE / "RESULTS.md"),
    ]  # fmt: skip
    raise SystemExit(main(defaults + sys.argv[1:]))
