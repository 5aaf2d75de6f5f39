"""Launches of the compiled kernels for a fraction of Triton's host time per launch.

``kernel[grid](*args, **constexprs)`` spends ~8 us of host time per launch before the driver's
call (Triton 3.8 on the 2-core Xeon of benchmarks/bench_triton_host.py: binding two dozen
arguments, specializing each, a string key of the options, a cache lookup), more than the GPU
spends on a 224x224 image. A :class:`Launcher` pays it once per specialization instead: it
keeps the compiled kernel that Triton chose, under a key that tells apart everything Triton
specializes on, and launches it directly (~2 us with the key). One 3x224x224 image then costs
9.2 us of host time in the standard mode instead of 14.1 (one launch), and 18.7 instead of
30.4 in a per-image mode (two). The first launch of every key goes through ``kernel[grid]``,
which compiles or finds the kernel and launches it.

What a compiled kernel is specialized on (Triton 3.4-3.8): the constexprs and options, the
dtype of each tensor and whether its address is a multiple of 16, the type of each scalar and,
for integers, whether it fits 32 bits, is 1 or is a multiple of 16. The key holds the dtype and that alignment
of each tensor, every scalar itself (finer than Triton, never coarser), the constexprs and
options, and the device. tests/triton_launch_check.py compares every direct launch with the
launch Triton makes of the same call: the same compiled kernel, the same arguments.

Launches take Triton's own path where it would do more than find the kernel and launch it
(launch or pre-run hooks, which profilers such as Proton set; Triton's debug mode, sanitizers,
a stages hook), in Triton's interpreter, on ROCm (whose backend also specializes a tensor on
its storage size), and with Triton versions whose launch convention this does not know
(before 3.4: the hooks had no ``knobs``).
"""

from __future__ import annotations

import re
from typing import Any

import torch

try:
    import triton
    from triton import knobs
    from triton.compiler.compiler import CompiledKernel
    from triton.runtime import driver
    from triton.runtime.jit import JITFunction
except ImportError:  # Triton before 3.4: every launch takes Triton's own path
    knobs = None

# False: every launch takes Triton's own path (tests/triton_launch_check.py compares the two).
DIRECT = True
# Keys kept per kernel before they are all dropped: one per (device, dtypes, alignments, shape,
# mode); a stream of ever new shapes would otherwise grow the cache without end.
MAX_KEYS = 1024


class Launcher:
    """``launcher(programs, tensors, scalars, **constexprs)`` does what ``kernel[(programs,)](
    *tensors, *scalars, **constexprs)`` does, with the host time of a direct launch after the
    first of each specialization. The kernel's parameters are its tensors, then its scalars
    (Python ints and floats), then its constexprs, which come by name with the launch options
    (``num_warps``)."""

    def __init__(self, kernel: Any):
        self.kernel = kernel
        self.direct = knobs is not None and isinstance(kernel, JITFunction) and _knows_convention()
        params = getattr(kernel, "params", ())
        self.constexpr_names = tuple(param.name for param in params if param.is_constexpr)
        self.compiled: dict[tuple[Any, ...], Any] = {}

    def __call__(
        self, programs: int, tensors: tuple[torch.Tensor, ...], scalars: tuple[Any, ...], **constexprs: Any
    ) -> None:
        if not self._launches_directly():
            self.kernel[(programs,)](*tensors, *scalars, **constexprs)
            return
        device = driver.active.get_current_device()
        # Finer than Triton's specialization, never coarser (module docstring): the types of the
        # scalars too, since 1 == 1.0 == True as keys and Triton compiles each differently.
        placement = tuple([(tensor.dtype, tensor.data_ptr() % 16 == 0) for tensor in tensors])
        key = (device, placement, scalars, tuple(map(type, scalars)), tuple(constexprs.items()))
        compiled = self.compiled.get(key)
        if compiled is None:
            self._remember(key, self.kernel[(programs,)](*tensors, *scalars, **constexprs))
            return
        # The launcher takes every parameter, constexprs too, in the kernel's order (it skips
        # the constexprs), as JITFunction.run passes them; no launch metadata without hooks.
        constants = [constexprs[name] for name in self.constexpr_names]
        stream = driver.active.get_current_stream(device)
        compiled.run(
            programs, 1, 1, stream, compiled.function, compiled.packed_metadata, None, None, None,
            *tensors, *scalars, *constants,
        )  # fmt: skip

    def _launches_directly(self) -> bool:
        """Whether this launch may skip Triton's launch path: a compiled kernel of a known launch
        convention, and nothing that Triton's path does on every call besides finding the
        kernel: no launch hook or pre-run hook to run, and neither Triton's debug mode, an
        instrumentation mode (sanitizers) nor a stages hook, each of which selects other
        compiled kernels (so the direct launches' key needs none of them)."""
        if not (self.direct and DIRECT) or self.kernel.pre_run_hooks:
            return False
        runtime, compilation = knobs.runtime, knobs.compilation
        if runtime.debug or compilation.instrumentation_mode or runtime.add_stages_inspection_hook:
            return False
        return not (_hooked(runtime.launch_enter_hook) or _hooked(runtime.launch_exit_hook))

    def _remember(self, key: tuple[Any, ...], compiled: Any) -> None:
        """Keep ``compiled`` (what ``kernel[grid]`` returned) for ``key``: a compiled kernel only
        (a Triton that compiles in the background may return a future instead)."""
        if not isinstance(compiled, CompiledKernel):
            return
        if len(self.compiled) >= MAX_KEYS:
            self.compiled.clear()
        self.compiled[key] = compiled


def _hooked(hook: Any) -> bool:
    """Whether a launch hook would run: one that is set (Triton 3.4-3.7: a callable or None) or
    a chain that holds one (3.8: a ``HookChain``, empty unless a profiler added to it)."""
    if isinstance(hook, getattr(knobs, "HookChain", ())):
        return bool(hook.calls)
    return hook is not None


def _knows_convention() -> bool:
    """Triton 3.4 and later (``knobs``, the launcher taking every parameter in order), for CUDA:
    ROCm's backend also specializes a tensor on the size of its storage (buffer operations),
    which the key does not hold."""
    version = re.match(r"(\d+)\.(\d+)", triton.__version__)
    return version is not None and tuple(map(int, version.groups())) >= (3, 4) and torch.version.hip is None
