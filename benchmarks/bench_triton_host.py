"""Rewrite the "Triton route, host time per call" section of benchmarks/RESULTS.md: what one
call of the CUDA route costs the host (our Python and Triton's launch path, per mode), measured
without a GPU, beside plain Torch's dispatch of the same modes (norm_transforms.bench.triton_host).

python benchmarks/bench_triton_host.py                        # 3x224x224 uint8 -> float16
python benchmarks/bench_triton_host.py --shape 8x3x224x224 --markdown ""   # print only
"""

import sys
from pathlib import Path

from norm_transforms.bench.triton_host import main

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    raise SystemExit(main(["--markdown", str(HERE / "RESULTS.md"), *sys.argv[1:]]))
