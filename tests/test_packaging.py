"""The sdist is complete: every tracked file of the package and of the tests, and the license.

Why: an sdist that lacked tests/conftest.py, tests/reference.py and tests/torch_cases.py shipped
tests that could not run (issue 11). MANIFEST.in says what goes in; this test holds it to git,
so a new helper module under tests/ cannot be left out silently. Building the sdist compiles
nothing and takes ~0.5 s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD_TIMEOUT = 100  # seconds; under the 120 s per-test limit, so a stuck build fails with output
CACHE_MARKS = ("__pycache__/", ".pytest_cache/", ".hypothesis/")
BUILD_PRODUCTS = (".pyc", ".pyo", ".so", ".pyd")


def tracked_files(*folders: str) -> list[str]:
    """The files git tracks under ``folders``, relative to the root; skips the test outside a git
    checkout (an unpacked sdist has no git history to compare with)."""
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed: no list of tracked files to compare the sdist with")
    top = subprocess.run(
        [git, "rev-parse", "--show-toplevel"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != ROOT:
        pytest.skip("not a git checkout (e.g. tests run from an unpacked sdist): nothing to compare with")
    listed = subprocess.run(
        [git, "ls-files", "-z", "--", *folders],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    # A file deleted in the working tree but not yet in a commit is still listed; the sdist is
    # built from the working tree, so only files that exist can be expected in it.
    return [name for name in listed.stdout.split("\0") if name and (ROOT / name).is_file()]


def test_sdist_ships_every_tracked_package_and_test_file_and_the_license(tmp_path):
    expected = {*tracked_files("norm_transforms", "tests"), "LICENSE"}
    pytest.importorskip("build", reason="the `build` package (dev extra) builds the sdist")
    # --skip-dependency-check: pyproject's build requirements list `wheel`, which an sdist does
    # not use (and setuptools >= 70.1 does not need at all); the running setuptools builds it.
    command = [sys.executable, "-m", "build", "--sdist", "--no-isolation", "--skip-dependency-check"]
    result = subprocess.run(
        [*command, "--outdir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=BUILD_TIMEOUT
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    (archive,) = tmp_path.glob("*.tar.gz")
    with tarfile.open(archive) as tar:
        members = {member.name.partition("/")[2]: member for member in tar.getmembers()}
        pkg_info = tar.extractfile(members["PKG-INFO"]).read().decode()
    shipped = {name for name, member in members.items() if member.isfile()}

    assert not sorted(expected - shipped), "tracked files missing from the sdist (see MANIFEST.in)"
    stray = [name for name in shipped if name.endswith(BUILD_PRODUCTS) or any(m in name for m in CACHE_MARKS)]
    assert not stray, "caches or build products in the sdist"
    # license_files in setup.cfg: the metadata names the license file, which wheels then carry.
    assert "License-File: LICENSE" in pkg_info


def test_a_failed_compile_leaves_the_kernels_out_instead_of_failing_the_build(tmp_path):
    # What `CC=false pip install .` runs: build_ext with a compiler that fails. The build must
    # finish (the NumPy fallback serves), say so once, and produce no extension.
    if not (ROOT / "setup.py").is_file():
        pytest.skip("no setup.py here (an installed package): nothing to build")
    environment = {**os.environ, "CC": "false", "LDSHARED": "false"}
    environment.pop("NORM_TRANSFORMS_REQUIRE_C", None)
    result = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--build-lib", str(tmp_path / "lib"),
         "--build-temp", str(tmp_path / "temp")],
        cwd=ROOT, capture_output=True, text=True, timeout=BUILD_TIMEOUT, env=environment,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert output.count("the C kernels were not built") == 1
    assert not list((tmp_path / "lib").rglob("_kernels*"))


def test_require_c_makes_a_failed_compile_fail_the_build(tmp_path):
    # Release wheels set it: a wheel without the kernels would pass every test and ship slower.
    if not (ROOT / "setup.py").is_file():
        pytest.skip("no setup.py here (an installed package): nothing to build")
    environment = {**os.environ, "CC": "false", "LDSHARED": "false", "NORM_TRANSFORMS_REQUIRE_C": "1"}
    result = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--build-lib", str(tmp_path / "lib"),
         "--build-temp", str(tmp_path / "temp")],
        cwd=ROOT, capture_output=True, text=True, timeout=BUILD_TIMEOUT, env=environment,
    )  # fmt: skip
    assert result.returncode != 0
    assert "_kernels.c" in result.stdout + result.stderr  # it failed on the compile, not earlier
