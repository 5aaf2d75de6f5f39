"""Compile, without launching, every Triton kernel variant that ``normalize`` would launch, for a
CUDA target (sm_90 unless ``TRITON_CHECK_ARCH``), on a machine without a GPU.

Triton's interpreter, which runs the kernels in the tests, accepts code that the real compiler
refuses (a Python bool bound to a name becomes an i1 tensor when compiled; a module global read
inside a kernel must be a ``tl.constexpr``): this finds those errors before a GPU does,
kernels that read module globals (host time on every launch), and passes over uint8 NCHW or
channels_last images whose PTX reads or writes pixels one at a time instead of in vectors (the
bandwidth limit, checked where no GPU can time it). Run by
tests/test_backend_triton.py in a subprocess, without TRITON_INTERPRET. Uses Triton's driver
and ``warmup=True`` hooks; exits 0 when every variant compiled, 1 with the failures, 2 when this
Triton cannot be driven this way. Importing it changes nothing (pytest's doctest collection
imports every module under tests/): all of it happens in ``main``.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
import traceback
from typing import Any

import torch

# (kernel name, compiled kernel) of every launch since the list was last cleared.
COMPILED: list[tuple[str, Any]] = []


def compile_instead_of_launching(self: Any, grid: object):
    def compile_only(*args: Any, **kwargs: Any) -> Any:
        compiled = self.run(*args, grid=grid, warmup=True, **kwargs)
        COMPILED.append((self.__name__, compiled))
        return compiled

    return compile_only


def int64_offsets(geometry: Any) -> Any:
    """``geometry`` as if an offset reached 2**31: its kernels compile with int64 offsets."""
    return geometry._replace(tiling={**geometry.tiling, "LARGE": True})


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
    from norm_transforms.backends.triton import kernels, launch, layout, statistics

    kernels.INTERPRETED = True  # past the CPU-tensor guard: nothing is launched
    launch.DIRECT = False  # every launch through kernel[grid], which compiles instead

    def channels_last(channels: int) -> Any:
        layout = torch.channels_last
        return lambda dtype: torch.zeros(2, channels, 16, 20, dtype=dtype).to(memory_format=layout)

    nchw = lambda dtype: torch.zeros(2, 3, 16, 20, dtype=dtype)  # noqa: E731
    layouts = {
        "NCHW": nchw,
        "channels_last": channels_last(3),
        # The int64-offset variants (LARGE) of images of 2**31 elements, without allocating one.
        "NCHW, int64 offsets": nchw,
        # The finalize kernel and the affine that reads its table: scopes of many partials.
        "channels_last, finalize kernel": channels_last(3),
        # return_params: the terms stored by the first tile of each scope (or by the finalize).
        "NCHW, return_params": nchw,
        "channels_last, 5 channels, return_params": channels_last(5),
        # Statistics of selected pixels (per-image modes only): the non-zero ones, and those of
        # a mask too (each alone compiles a subset of the code of both).
        "NCHW, nonzero": nchw,
        "channels_last, mask and nonzero": channels_last(3),
    }
    geometry_of, fused = layout._planes, statistics._fused
    failures: dict[str, list[str]] = {}
    cases = [
        (mode, dtype, name)
        for mode, dtype, name in itertools.product(MODES, SUPPORTED_DTYPES, layouts)
        # The standard mode's params are constants, and it refuses a selection.
        if MODES[mode].statistic or not any(word in name for word in ("return_params", "nonzero", "mask"))
    ]
    for index, (mode, dtype, name) in enumerate(cases):
        out_dtype = OUTPUT_DTYPES[index % len(OUTPUT_DTYPES)]  # every output dtype, in turn
        layout._planes = (lambda *key: int64_offsets(geometry_of(*key))) if "int64" in name else geometry_of
        statistics._fused = (lambda *arguments: False) if "finalize" in name else fused
        options = {"return_params": True} if "return_params" in name else {}
        options |= {"nonzero": True} if "nonzero" in name else {}
        options |= {"mask": torch.ones(2, 16, 20, dtype=torch.bool)} if "mask" in name else {}
        try:
            image = layouts[name](dtype)
            kwargs = {"normalization": mode, "mean": 0.5, "std": 0.25, "max_pixel_value": 1.0}
            normalize(image, **kwargs, dtype=out_dtype, **options)
        except Exception as error:  # every failure is reported, grouped by message
            message = "".join(traceback.format_exception_only(type(error), error)).strip()
            failures.setdefault(message[:2000], []).append(f"{mode} {dtype} {name} -> {out_dtype}")
    # The geometry and fusion of real calls again, for the vector check below (the last case's
    # overrides would otherwise stay in place).
    layout._planes, statistics._fused = geometry_of, fused
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
    scalar = scalar_accesses(normalize, {"NCHW": nchw, "channels_last": channels_last(3)})
    for case, instructions in scalar.items():
        print(f"{case}: pixels read or written one at a time ({instructions}), not as whole vectors")
    flushed = flushing_kernels(normalize, nchw)
    if flushed:
        print(f"kernels that flush float32 subnormals to 0 (.ftz), which nonzero=True takes for 0: {flushed}")
    return 1 if failures or reading_globals or scalar or flushed else 0


def flushing_kernels(normalize: Any, image: Any) -> list[str]:
    """The kernels of a float32 ``nonzero=True`` call whose PTX flushes subnormals (``.ftz``):
    a subnormal pixel compared with 0 there would count as a zero (Triton 3.8 emits none)."""
    COMPILED.clear()
    normalize(image(torch.float32), normalization="image", nonzero=True, dtype=torch.float32)
    return sorted({kernel for kernel, compiled in COMPILED if ".ftz" in compiled.asm["ptx"]})


# Loads and stores of one uint8 pixel or one float16 output at a time (sm_90 PTX): a pass that
# issues them cannot reach the bandwidth limit. A 3-channel channels_last tile read this way
# (``[channels, pixels]`` offsets with a runtime pixel stride) took 103-126 registers and a byte
# per load; addressed as one run of memory, it loads and stores 16-byte vectors.
SCALAR_ACCESS = re.compile(r"\b(?:ld\.global(?:\.nc)?\.[bsu]8|st\.global\.b16)\b")
VECTOR_ACCESS = re.compile(r"\bld\.global(?:\.nc)?\.v[24]\.")


def scalar_accesses(normalize: Any, layouts: dict[str, Any]) -> dict[str, list[str]]:
    """The kernels of uint8 -> float16 calls in planar and dense interleaved layouts, the
    layouts that a GPU pipeline feeds, whose PTX reads pixels without vector loads or reads
    or writes them one at a time: {case: the offending instructions}."""
    found: dict[str, list[str]] = {}
    for mode, name in itertools.product(("standard", "image_per_channel", "min_max", "percentile"), layouts):
        COMPILED.clear()
        normalize(layouts[name](torch.uint8), normalization=mode, dtype=torch.float16)
        for kernel, compiled in COMPILED:
            ptx = compiled.asm["ptx"]
            wrong = sorted(set(SCALAR_ACCESS.findall(ptx)))
            if not VECTOR_ACCESS.search(ptx):
                wrong.append("no vector load")
            if wrong:
                found[f"{mode} {name} {kernel}"] = wrong
    return found


if __name__ == "__main__":
    sys.exit(main())
