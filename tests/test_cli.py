"""The ``norm-transforms`` command as a user runs it: in a subprocess, through the console script
or ``python -m norm_transforms``; what it prints where, and what it says when an extra is missing.

(The ``stats`` and ``inspect`` commands' results are tested beside their modules, in
test_stats*.py and test_plot.py.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import norm_transforms

TIMEOUT_S = 90  # a tiny bench run takes a few seconds; torch's import alone ~3 s on 2 cores
# The smallest bench runs: one cell per thread setting, a millisecond per contender.
TINY_NUMPY = ["bench", "--sizes", "64", "--modes", "standard", "--dtypes", "uint8", "--threads", "single"]
TINY_NUMPY += ["--budget", "0.001"]
TINY_TORCH = [
    "bench",
    "--backend",
    "torch",
    "--shapes",
    "3x16x16",
    "--modes",
    "standard",
    "--dtypes",
    "uint8",
]
TINY_TORCH += ["--threads", "single", "--budget", "0.001"]


def run_module(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "norm_transforms", *arguments],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def run_without(modules: list[str], arguments: list[str]) -> subprocess.CompletedProcess:
    """The command with ``modules`` unimportable: ``sys.modules[name] = None`` makes ``import
    name`` raise an ImportError whose ``.name`` is the module, as an uninstalled one does."""
    code = (
        "import sys\n"
        f"for name in {modules!r}:\n"
        "    sys.modules[name] = None\n"
        "from norm_transforms.cli import main\n"
        f"raise SystemExit(main({arguments!r}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )


def console_script() -> str:
    """The installed ``norm-transforms`` script: beside this interpreter, or on PATH."""
    here = os.path.dirname(sys.executable)
    found = shutil.which("norm-transforms", path=os.pathsep.join([here, os.environ.get("PATH", "")]))
    if found is None:
        pytest.skip("the norm-transforms console script is not installed (pip install -e .)")
    return found


# --------------------------------------------------------------------------- entry points


def test_version_from_the_console_script_and_python_m():
    expected = f"norm-transforms {norm_transforms.__version__}"
    script = subprocess.run(
        [console_script(), "--version"], capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )
    module = run_module("--version")
    for completed in (script, module):
        assert completed.returncode == 0, completed.stderr
        assert completed.stdout.strip() == expected


def test_python_m_runs_the_same_command():
    completed = run_module("--help")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("usage: norm-transforms")
    for command in ("bench", "stats", "inspect"):
        assert command in completed.stdout
    missing = run_module()  # a command is required: argparse's usage error
    assert missing.returncode == 2
    assert "the following arguments are required" in missing.stderr


def test_python_m_stats_prints_the_normalize_arguments(tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "dark.png"), np.zeros((8, 8, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "bright.png"), np.full((8, 8, 3), 102, np.uint8))
    completed = run_module("stats", str(tmp_path), "--no-progress")
    assert completed.returncode == 0, completed.stderr
    assert "A.Normalize(mean=(0.2, 0.2, 0.2), std=(0.2, 0.2, 0.2), max_pixel_value=255.0)" in completed.stdout


# --------------------------------------------------------------------------- bench: summary first, progress


def check_summary_comes_first(stdout: str, heading: str) -> None:
    """The headline lines first, then the full report (the same lines, then the table)."""
    first, table = stdout.index("Summary: "), stdout.index("| mode |")
    report = stdout.index(heading)
    assert first == 0 < report < table
    summary_lines = [line for line in stdout[:report].splitlines() if line.startswith("- ")]
    assert summary_lines, stdout
    assert all(line in stdout[report:].splitlines() for line in summary_lines)
    assert "geometric mean" in stdout[:report]


def test_bench_prints_the_summary_before_the_table_and_progress_on_stderr(tmp_path):
    markdown = tmp_path / "RESULTS.md"
    completed = run_module(*TINY_NUMPY, "--markdown", str(markdown))
    assert completed.returncode == 0, completed.stderr
    check_summary_comes_first(completed.stdout, "## NumPy backend vs peers")
    assert "100%" in completed.stderr  # the tqdm bar, on stderr even when it is not a terminal
    assert "| mode |" not in completed.stderr
    # The file keeps the report's format: its own section, no console summary.
    written = markdown.read_text()
    assert written.startswith("## NumPy backend vs peers\n")
    assert "Summary: " not in written
    assert written.rstrip() in completed.stdout


def test_bench_no_progress_leaves_stderr_empty():
    completed = run_module(*TINY_NUMPY, "--no-albumentations", "--no-progress")
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    assert completed.stdout.startswith("Summary: NumPy backend vs peers")


def test_bench_torch_prints_the_summary_before_the_table_and_progress_on_stderr():
    pytest.importorskip("torch")
    completed = run_module(*TINY_TORCH)
    assert completed.returncode == 0, completed.stderr
    check_summary_comes_first(completed.stdout, "## Torch backend, CPU")
    assert "1/1" in completed.stderr and "100%" in completed.stderr


# --------------------------------------------------------------------------- missing extras


def check_names_the_extra(completed: subprocess.CompletedProcess, command: str, extra: str) -> None:
    assert completed.returncode != 0
    assert "Traceback" not in completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith(f"norm-transforms {command}: error: ")
    assert f'pip install "norm-transforms[{extra}]"' in lines[0]
    assert completed.stdout == ""  # refused before any work: no report, no half run


def test_bench_chart_without_matplotlib_names_the_plot_extra(tmp_path):
    chart = tmp_path / "chart.png"
    completed = run_without(["matplotlib"], [*TINY_NUMPY, "--chart", str(chart)])
    check_names_the_extra(completed, "bench", "plot")
    assert "--chart needs matplotlib" in completed.stderr
    assert not chart.exists()


def test_inspect_without_matplotlib_names_the_plot_extra(tmp_path):
    import cv2

    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    completed = run_without(["matplotlib"], ["inspect", str(image), "--out", str(tmp_path / "o.png")])
    check_names_the_extra(completed, "inspect", "plot")
    assert not (tmp_path / "o.png").exists()


def test_bench_torch_without_torch_names_the_torch_extra():
    completed = run_without(["torch"], TINY_TORCH)
    check_names_the_extra(completed, "bench", "torch")
    assert "--backend torch needs torch" in completed.stderr
