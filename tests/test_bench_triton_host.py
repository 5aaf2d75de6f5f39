"""``norm_transforms.bench.triton_host``: the host time per call of the CUDA route, measured
without a GPU (the kernels compiled for sm_90, launches stopped at the driver)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_bench_report import markdown_rows

from norm_transforms.bench.triton_host import CUDA_TITLE, TITLE, kernel_ops, main, render
from norm_transforms.modes import MODES

ROOT = Path(__file__).resolve().parents[1]


def compiled_environment(tmp_path: Path) -> dict[str, str]:
    """The environment of a process that compiles the kernels (no TRITON_INTERPRET), with its
    own Triton cache, importing this checkout."""
    environment = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    environment["TRITON_CACHE_DIR"] = str(tmp_path / "cache")
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return environment


def test_kernel_ops_counts_the_ops_that_run_a_kernel():
    x = torch.zeros(3, 4, 4, dtype=torch.uint8)
    # A cast and a multiply run kernels; a view and an in-place metadata change do not.
    assert kernel_ops(lambda: x.float().view(3, 16).unsqueeze_(0) * 2) == 2


def test_a_short_run_reports_every_mode_with_its_launches(tmp_path):
    # A process of its own: the run swaps Triton's driver for the whole process.
    environment = compiled_environment(tmp_path)
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


def test_the_cuda_run_times_each_mode_three_ways(tmp_path):
    # --device cuda times whole calls on a GPU; its measurement runs here on the CPU tensors of
    # the compile-only driver (a process of its own: the driver is swapped for the process).
    script = (
        "import json, torch\n"
        "from norm_transforms.bench import triton_host\n"
        "triton_host.stub_launches()\n"
        "rows = triton_host.measure_cuda((3, 16, 16), torch.float16, calls=3, device='cpu')\n"
        "print(json.dumps([(row['mode'], row['plain torch ops']) for row in rows]))\n"
        "assert all(row['ours'] > 0 and row['kernel[grid]'] > 0 for row in rows)\n"
    )
    environment = compiled_environment(tmp_path)
    run = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True, timeout=300
    )  # fmt: skip
    if "cannot drive" in run.stderr or "No module named 'triton'" in run.stderr:
        pytest.skip(run.stderr.strip().splitlines()[-1])
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    modes = dict(json.loads(run.stdout.strip().splitlines()[-1]))
    assert list(modes) == list(MODES)
    assert modes["standard"] == 4 and modes["robust"] is None


def test_the_cuda_table_has_no_launches_column(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *args: "NVIDIA H200")
    row = {"mode": "standard", "ours": 9e-6, "kernel[grid]": 14e-6, "plain torch": 18e-6}
    row["plain torch ops"] = 4
    text = render([row], (3, 224, 224), torch.float16, 100, "cuda")
    assert text.startswith(CUDA_TITLE) and "NVIDIA H200" in text
    (cells,) = markdown_rows(text, "mode")
    assert cells == {
        "mode": "standard", "ours µs": "9.0", "ours via kernel[grid] µs": "14.0",
        "plain torch ops": "4", "plain torch µs": "18.0", "plain torch / ours": "2.00",
    }  # fmt: skip


def test_the_cuda_run_without_a_gpu_says_so():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert main(["--device", "cuda"]) == 2
