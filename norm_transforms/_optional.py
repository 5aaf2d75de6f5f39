"""Optional dependencies: one helper, one message that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

#: The extra of ``norm-transforms`` that brings each optional top-level module.
EXTRA_OF_MODULE = {
    "albumentations": "albumentations",
    "torch": "torch",
    "torchvision": "torch",
    "PIL": "torch",
    "matplotlib": "plot",
}


def missing_dependency(error: ImportError, feature: str) -> ImportError:
    """An ImportError for ``feature`` that names the missing module and the extra that brings it.

    >>> str(missing_dependency(ModuleNotFoundError(name="matplotlib"), "plot_histograms"))
    'plot_histograms needs matplotlib, which is not installed: pip install "norm-transforms[plot]"'
    """
    module = (error.name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(module)
    if extra is None:  # not one of ours: a broken install, say what failed as it is
        return ImportError(f"{feature} could not import its dependencies: {error}")
    return ImportError(
        f'{feature} needs {module}, which is not installed: pip install "norm-transforms[{extra}]"'
    )


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` for ``feature``, or raise :func:`missing_dependency`'s message."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise missing_dependency(error, feature) from error
