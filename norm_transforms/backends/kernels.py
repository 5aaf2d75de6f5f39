"""The one place that picks the kernels: the C extension ``_kernels``, or ``_fallback``.

Why: the C extension is optional at build time (setup.py installs without it when the compiler
fails), so importing it can fail; every caller imports this module instead, under the name
``_kernels``, and gets the same functions (``affine``, ``affine_to_planes``, ``min_max``,
``moments``, ``histogram``, ``select``, ``keep_selected``) either way. ``KERNELS_BACKEND`` says
which one is in use: ``"c"`` or ``"numpy"``.

- The extension is importable: it is used, silently.
- It is missing (ImportError): the NumPy/OpenCV fallback is used, with one RuntimeWarning, since
  a silently slower library is a worse surprise than a warning.
- ``NORM_TRANSFORMS_DISABLE_C=1`` in the environment: the fallback, without a warning (a
  deliberate switch, for tests and debugging).
"""

from __future__ import annotations

import os
import warnings
from typing import Literal

from ..threads import threads_for_kernels

DISABLE_C_VARIABLE = "NORM_TRANSFORMS_DISABLE_C"

# The fallback's cost against the C kernels (timeit, one thread, 2-core AMD EPYC; 224² and
# 1024² RGB, uint8 and float32): the affine 2-5.5x (8.4x for float32 with the [0, 1] clip of the
# min_max modes), min/max 1.5-4x, uint8 histograms 1.2x; normalize() as a whole 1.5-5x.
FALLBACK_WARNING = (
    "norm_transforms: the C kernels were not built (no C compiler at install time?), so the "
    "NumPy/OpenCV fallback is in use: same results, but the affine pass is about 2-5x slower "
    "(up to 8x with a [0, 1] clip) and normalize() 1.5-5x. To get them, install a C compiler (gcc, "
    "clang or MSVC) and reinstall: pip install --force-reinstall --no-cache-dir --no-deps "
    "norm-transforms (or `pip install .` in a checkout). Set NORM_TRANSFORMS_DISABLE_C=1 to choose "
    "the fallback without this warning."
)

KERNELS_BACKEND: Literal["c", "numpy"]

if os.environ.get(DISABLE_C_VARIABLE) == "1":
    from . import _fallback as _implementation

    KERNELS_BACKEND = "numpy"
else:
    try:
        from . import _kernels as _implementation  # type: ignore[no-redef]

        KERNELS_BACKEND = "c"
    except ImportError:
        from . import _fallback as _implementation  # type: ignore[no-redef]

        KERNELS_BACKEND = "numpy"
        warnings.warn(FALLBACK_WARNING, RuntimeWarning, stacklevel=2)

if KERNELS_BACKEND == "c":
    # Large calls ask norm_transforms.threads how many threads to use (the fallback has none).
    _implementation.set_thread_policy(threads_for_kernels)

affine = _implementation.affine
affine_to_planes = _implementation.affine_to_planes
min_max = _implementation.min_max
histogram = _implementation.histogram
moments = _implementation.moments
select = _implementation.select
keep_selected = _implementation.keep_selected

__all__ = [
    "DISABLE_C_VARIABLE",
    "KERNELS_BACKEND",
    "affine",
    "affine_to_planes",
    "histogram",
    "keep_selected",
    "min_max",
    "moments",
    "select",
]
