"""norm_transforms.bench._timing: the timing primitives, and the file's one promise beyond them:
``--peer-python`` runs it by path in another interpreter that has no norm-transforms installed
(AlbumentationsX cannot share an environment with albumentations), so it must import nothing
of this package, and no file beside it may shadow a module the peer imports.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from norm_transforms.bench import _timing, numpy_suite

TIMEOUT_S = 90  # importing albumentations takes ~2 s on 2 cores
TINY_REQUEST = {
    "cases": [{"mode": "standard", "dtype": "uint8", "size": 16}],
    "threads": 1,
    "budget_s": 0.001,
}
# Run as a peer would, in isolated mode (no user site, no PYTHON* variables, the script's folder
# not on sys.path) and with norm_transforms made unimportable, as in an interpreter without it.
WITHOUT_THIS_PACKAGE = (
    "import runpy, sys\n"
    "sys.modules['norm_transforms'] = None\n"
    "sys.argv = [sys.argv[1], sys.argv[2]]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


def test_runs_by_path_in_an_interpreter_without_this_package(tmp_path):
    pytest.importorskip("albumentations")
    completed = subprocess.run(
        [sys.executable, "-I", "-c", WITHOUT_THIS_PACKAGE, _timing.__file__, json.dumps(TINY_REQUEST)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    answer = json.loads(completed.stdout)
    assert answer["name"].startswith(("albumentations ", "AlbumentationsX "))
    (result,) = answer["results"]
    assert result["mode"] == "standard" and result["size"] == 16
    assert result["seconds"] > 0 and result["peak_bytes"] > 0


def test_the_bench_reads_a_peer_interpreter_through_the_file(tmp_path, monkeypatch):
    # What --peer-python runs: `python .../_timing.py REQUEST` (the file's folder on sys.path).
    pytest.importorskip("albumentations")
    monkeypatch.chdir(tmp_path)
    answer = numpy_suite.time_in_peer(sys.executable, TINY_REQUEST["cases"], 1, 0.001)
    assert [r["mode"] for r in answer["results"]] == ["standard"]


def test_a_failing_peer_is_an_error_that_quotes_it(tmp_path):
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\necho 'no albumentations here' >&2\nexit 3\n")
    python.chmod(0o755)
    with pytest.raises(RuntimeError, match="no albumentations here"):
        numpy_suite.time_in_peer(str(python), TINY_REQUEST["cases"], 1, 0.001)


def test_no_module_beside_it_shadows_one_a_peer_could_import():
    # Run by path, the file's folder comes first on the peer's sys.path: a bench module named
    # like a standard or installed module would replace it in the peer.
    folder = Path(_timing.__file__).parent
    names = [path.stem for path in folder.glob("*.py") if path.stem != "__init__"]
    assert "_timing" in names
    for name in names:
        assert name not in sys.stdlib_module_names
        assert importlib.util.find_spec(name) is None, f"bench/{name}.py shadows an importable module"


def test_time_call_returns_the_median_of_many_calls():
    durations = iter([0.0] + [0.002] * 3 + [0.0005] * 2)  # the warm-up call, then 5 timed

    def call():
        time.sleep(next(durations, 0.0005))

    seconds = _timing.time_call(call, budget_s=0.0, min_calls=5, max_calls=5)
    assert 0.002 <= seconds < 0.05  # the median is a 0.002 s call (plus sleep's slack), not the mean


def test_peak_memory_sees_a_numpy_buffer():
    peak = _timing.peak_memory(lambda: np.ones(1 << 20, np.uint8))
    assert 1 << 20 <= peak < 2 << 20


def test_make_image_is_the_same_bytes_every_time_and_float_is_uint8_over_255():
    first, second = _timing.make_image("uint8", 16), _timing.make_image("uint8", 16)
    assert first.shape == (16, 16, 3) and np.array_equal(first, second)
    np.testing.assert_array_equal(
        _timing.make_image("float32", 16), first.astype(np.float32) / np.float32(255)
    )
