"""Compile, without launching, every Triton kernel variant that ``normalize`` would launch, for a
CUDA target (sm_90 unless ``TRITON_CHECK_ARCH``), on a machine without a GPU.

Triton's interpreter, which runs the kernels in the tests, accepts code that the real compiler
refuses (a Python bool bound to a name becomes an i1 tensor when compiled; a module global read
inside a kernel must be a ``tl.constexpr``): this finds those errors before a GPU does, and
kernels that read module globals (host time on every launch). Run by
tests/test_backend_triton.py in a subprocess, without TRITON_INTERPRET. Uses Triton's driver
and ``warmup=True`` hooks; exits 0 when every variant compiled, 1 with the failures, 2 when this
Triton cannot be driven this way. Importing it changes nothing (pytest's doctest collection
imports every module under tests/): all of it happens in ``main``.
"""

from __future__ import annotations

import itertools
import os
import sys
import traceback
from typing import Any

import torch


def compile_instead_of_launching(self: Any, grid: object):
    return lambda *args, **kwargs: self.run(*args, grid=grid, warmup=True, **kwargs)


def main() -> int:
    if os.environ.get("TRITON_INTERPRET") == "1":
        print("run without TRITON_INTERPRET: the kernels must be compiled, not interpreted")
        return 2
    os.environ["NORM_TRANSFORMS_FORCE_TRITON"] = "1"
    try:
        from triton.runtime import driver
        from triton.runtime.jit import JITFunction
    except ImportError as error:  # another Triton layout: nothing to check here
        print(f"cannot drive this Triton: {error}")
        return 2
    from norm_transforms.bench.triton_host import CompileOnlyDriver

    driver.set_active(CompileOnlyDriver())
    JITFunction.__getitem__ = compile_instead_of_launching

    from norm_transforms import MODES, normalize
    from norm_transforms.backends.torch.layout import OUTPUT_DTYPES, SUPPORTED_DTYPES
    from norm_transforms.backends.triton import kernels, layout, statistics

    kernels.INTERPRETED = True  # past the CPU-tensor guard: nothing is launched
    layouts = {
        "NCHW": lambda dtype: torch.zeros(2, 3, 16, 20, dtype=dtype),
        "channels_last": lambda dtype: torch.zeros(2, 3, 16, 20, dtype=dtype).to(
            memory_format=torch.channels_last
        ),
        # The int64-offset variants (LARGE) of images of 2**31 elements, without allocating one.
        "NCHW, int64 offsets": lambda dtype: torch.zeros(2, 3, 16, 20, dtype=dtype),
        # The finalize kernel and the affine that reads its table: scopes of many partials.
        "channels_last, finalize kernel": lambda dtype: torch.zeros(2, 3, 16, 20, dtype=dtype).to(
            memory_format=torch.channels_last
        ),
    }
    geometry_of = layout._planes
    fused_max_partials = statistics.FUSED_MAX_PARTIALS
    failures: dict[str, list[str]] = {}
    cases = list(itertools.product(MODES, SUPPORTED_DTYPES, layouts))
    for index, (mode, dtype, name) in enumerate(cases):
        out_dtype = OUTPUT_DTYPES[index % len(OUTPUT_DTYPES)]  # every output dtype, in turn
        layout._planes = (
            (lambda *key: geometry_of(*key)._replace(large=True)) if "int64" in name else geometry_of
        )
        statistics.FUSED_MAX_PARTIALS = 0 if "finalize" in name else fused_max_partials
        try:
            normalize(layouts[name](dtype), normalization=mode, max_pixel_value=1.0, dtype=out_dtype)
        except Exception as error:  # every failure is reported, grouped by message
            message = "".join(traceback.format_exception_only(type(error), error)).strip()
            failures.setdefault(message[:2000], []).append(f"{mode} {dtype} {name} -> {out_dtype}")
    for message, where in failures.items():
        print(f"{len(where)} variants, e.g. {where[:3]}:\n{message}\n")
    print(f"{len(cases)} variants, {sum(map(len, failures.values()))} failed to compile")
    # Triton checks every module global a kernel reads on each launch (~2.3 us of host time each).
    reading_globals = {
        name: sorted(global_name for global_name, _ in value.used_global_vals)
        for name, value in vars(kernels).items()
        if isinstance(value, JITFunction) and value.used_global_vals
    }
    if reading_globals:
        print(f"kernels that read module globals (pass them as arguments): {reading_globals}")
    return 1 if failures or reading_globals else 0


if __name__ == "__main__":
    sys.exit(main())
