"""The README's examples run as written.

Every ```python block of README.md runs in a fresh interpreter (a user pasting it into one),
in a temporary working directory: a block that leans on a name from another block, a file
that is not there or the network fails here. The ``norm-transforms`` lines of the ```bash
blocks must parse with the command's own parser (they are not run: they read folders and
time for a minute).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from norm_transforms.cli import build_parser

README = Path(__file__).resolve().parent.parent / "README.md"
# A fresh interpreter imports torch, albumentations or timm (~4 s on 2 cores); the slowest block
# builds a timm model. Generous, so that a loaded machine does not fail the test.
BLOCK_TIMEOUT_S = 100


def readme_blocks(language: str) -> list[tuple[str, int, str]]:
    """(section heading, line number, code) of every fenced block of ``language``."""
    if not README.exists():
        return []
    blocks, heading, code, start, fence = [], "top", [], 0, None
    for number, line in enumerate(README.read_text(encoding="utf-8").splitlines(), start=1):
        if fence is None:
            if line.startswith("#"):
                heading = line.lstrip("#").strip()
            elif line.startswith("```"):
                fence, code, start = line[3:].strip(), [], number + 1
        elif line.startswith("```"):
            if fence == language:
                blocks.append((heading, start, "\n".join(code) + "\n"))
            fence = None
        else:
            code.append(line)
    return blocks


def block_ids(blocks: list[tuple[str, int, str]]) -> list[str]:
    """The section heading as an id (stable when lines move), numbered within a section."""
    ids, seen = [], {}
    for heading, _, _ in blocks:
        words = re.sub(r"[^0-9A-Za-z]+", "-", heading).strip("-").lower() or "top"
        seen[words] = seen.get(words, 0) + 1
        ids.append(words if seen[words] == 1 else f"{words}-{seen[words]}")
    return ids


def parametrize_blocks(language: str):
    blocks = readme_blocks(language)
    if not blocks:
        reason = f"no README.md at {README} (an installed package)" if not README.exists() else "no blocks"
        skipped = pytest.param("", 0, "", marks=pytest.mark.skip(reason=reason), id="none")
        return pytest.mark.parametrize("heading, line, code", [skipped])
    return pytest.mark.parametrize("heading, line, code", blocks, ids=block_ids(blocks))


@parametrize_blocks("python")
def test_python_example_runs(heading, line, code, tmp_path):
    # The block as a file, so that a traceback points at README.md's line numbers.
    script = tmp_path / "example.py"
    script.write_text("\n" * (line - 1) + code, encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, (
        f"README.md line {line} ({heading}) failed:\n{completed.stdout}\n{completed.stderr}"
    )


def test_readme_has_python_examples():
    if not README.exists():
        pytest.skip(f"no README.md at {README} (an installed package)")
    assert len(readme_blocks("python")) >= 10


def command_lines() -> list[tuple[str, list[str]]]:
    """Every ``norm-transforms ...``, ``python -m norm_transforms ...`` or ``torchrun ... -m
    norm_transforms ...`` line of the bash blocks, as its arguments (comments dropped)."""
    found = []
    for _, _, code in readme_blocks("bash"):
        for line in code.splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["norm-transforms"]:
                found.append((line.strip(), words[1:]))
            elif words[:3] == ["python", "-m", "norm_transforms"]:
                found.append((line.strip(), words[3:]))
            elif words[:1] == ["torchrun"] and "norm_transforms" in words:
                found.append((line.strip(), words[words.index("norm_transforms") + 1 :]))
    return found


def test_readme_commands_parse():
    if not README.exists():
        pytest.skip(f"no README.md at {README} (an installed package)")
    lines = command_lines()
    assert {arguments[0] for _, arguments in lines if arguments} >= {"bench", "stats", "inspect"}
    for line, arguments in lines:
        try:
            build_parser().parse_args(arguments)
        except SystemExit as error:  # argparse's way out: 0 for --version / --help, 2 for an error
            assert error.code == 0, f"README.md: {line!r} does not parse"
