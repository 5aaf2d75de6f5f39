"""The package surface (``norm_transforms/__init__.py``, ``_optional.py``): public names only,
classes behind optional dependencies imported on first use, with a message naming the extra
when that dependency is missing."""

from __future__ import annotations

import subprocess
import sys

import pytest

import norm_transforms


def test_dir_lists_the_public_names_only():
    assert dir(norm_transforms) == sorted(norm_transforms.__all__)
    for internal in ("functional", "modes", "backends", "stats", "annotations", "sys"):
        assert internal not in dir(norm_transforms)


def test_every_public_name_resolves():
    for name in norm_transforms.__all__:
        assert getattr(norm_transforms, name) is not None


# Each lazy class, the module made missing, and the extra the message must name.
MISSING = [
    ("TorchNormalize", "PIL", "torch"),
    ("TorchNormalize", "torchvision", "torch"),
    ("TorchDenormalize", "torch", "torch"),
    ("NormalizeLayer", "torch", "torch"),
    ("Normalize", "albumentations", "albumentations"),
    ("Denormalize", "albumentations", "albumentations"),
]


@pytest.mark.parametrize(("name", "module", "extra"), MISSING, ids=[f"{n}-{m}" for n, m, _ in MISSING])
def test_a_missing_optional_dependency_names_the_extra_to_install(name, module, extra):
    # A fresh interpreter, where `module` cannot be imported (None in sys.modules).
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "import norm_transforms\n"
        f"try:\n    norm_transforms.{name}\n"
        "except ImportError as error:\n    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f'pip install "norm-transforms[{extra}]"' in result.stdout
    assert f"norm_transforms.{name} needs {module}" in result.stdout


def test_an_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'Normalise'"):
        norm_transforms.Normalise  # noqa: B018
