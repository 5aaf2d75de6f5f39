"""``norm_transforms.bench.triton_host``: the host time per call of the CUDA route, measured
without a GPU (the kernels compiled for sm_90, launches stopped at the driver)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_bench_report import markdown_rows

from norm_transforms.bench.triton_host import TITLE, kernel_ops
from norm_transforms.modes import MODES

ROOT = Path(__file__).resolve().parents[1]


def test_kernel_ops_counts_the_ops_that_run_a_kernel():
    x = torch.zeros(3, 4, 4, dtype=torch.uint8)
    # A cast and a multiply run kernels; a view and an in-place metadata change do not.
    assert kernel_ops(lambda: x.float().view(3, 16).unsqueeze_(0) * 2) == 2


def test_a_short_run_reports_every_mode_with_its_launches(tmp_path):
    # A process of its own: the run swaps Triton's driver for the whole process.
    environment = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    environment["TRITON_CACHE_DIR"] = str(tmp_path / "cache")
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    results = tmp_path / "RESULTS.md"
    results.write_text("## Another section\n\nkept\n")
    script = ROOT / "benchmarks" / "bench_triton_host.py"
    run = subprocess.run(
        [sys.executable, str(script), "--calls", "3", "--markdown", str(results)],
        env=environment, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if run.returncode == 2:  # a Triton without these hooks, or none: nothing to measure
        pytest.skip(run.stderr.strip().splitlines()[-1])
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    rows = {row["mode"]: row for row in markdown_rows(run.stdout, "mode")}
    assert set(rows) == set(MODES)
    for name, mode in MODES.items():
        # One launch for the standard mode; statistics, then the affine that finalizes them.
        assert rows[name]["launches"] == ("1" if mode.statistic is None else "2")
        assert float(rows[name]["ours µs"]) > 0
    assert rows["standard"]["plain torch ops"] == "4"  # cast, / 255, - mean, / std
    text = results.read_text()
    assert TITLE in text and "## Another section" in text
