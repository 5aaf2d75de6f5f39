"""Check, on a machine without a GPU, that the direct launches of ``backends/triton/launch.py``
launch what Triton's own ``kernel[grid]`` would: the same compiled kernel, grid and arguments.

The kernels are compiled for a CUDA target (sm_90) with the compile-only driver of
``norm_transforms.bench.triton_host``, and every launch is recorded where the driver's call
would start (``CompiledKernel.run``), for the same calls made three times: twice with direct
launches (the first pass fills their cache, through Triton; every launch of the second must be
direct) and once through Triton. The calls differ in what Triton specializes a kernel on (an
address that is not a multiple of 16 bytes, sizes of 1 and of multiples of 16, dtypes, layouts,
modes, options), one thing at a time, so that a key that missed one of them would launch the
kernel compiled for the call before. Then each setting that makes Triton's launch path do more
(hooks, debug mode, sanitizers) must send launches back through it.

Run by tests/test_backend_triton.py in a subprocess, without TRITON_INTERPRET: exits 0 when
every launch matched, 1 with the differences, 2 when this Triton cannot be driven this way.
Importing it changes nothing: all of it happens in ``main``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch

# (compiled kernel, grid, the kernel's arguments) of every launch since the list was cleared.
LAUNCHED: list[tuple[Any, tuple[int, int, int], tuple[Any, ...]]] = []


def record_launches() -> None:
    """Every compiled kernel's launch appends to LAUNCHED instead of reaching the driver."""
    from triton.compiler import compiler

    def recorder(kernel: Any) -> Callable[..., None]:
        def launch(grid_x: int, grid_y: int, grid_z: int, *rest: Any) -> None:
            # rest: the stream, function, packed metadata, launch metadata, the two hooks, then
            # the kernel's arguments.
            LAUNCHED.append((kernel, (grid_x, grid_y, grid_z), rest[6:]))

        return launch

    compiler.CompiledKernel.run = property(recorder)


def misaligned(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """A contiguous tensor whose address is one element past a 16-byte boundary."""
    storage = torch.zeros(1 + torch.Size(shape).numel(), dtype=dtype)
    return storage[1:].view(shape)


def channels_last(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    return torch.zeros(shape, dtype=dtype).to(memory_format=torch.channels_last)


# (name, image, keyword arguments of normalize): neighbours differ in one specialization.
CASES: list[tuple[str, Callable[[], torch.Tensor], dict[str, Any]]] = [
    ("uint8 NCHW", lambda: torch.zeros(2, 3, 16, 20, dtype=torch.uint8), {}),
    ("uint8 NCHW, address not 16-byte aligned", lambda: misaligned((2, 3, 16, 20), torch.uint8), {}),
    ("uint8 NCHW, 255 pixels", lambda: torch.zeros(2, 3, 15, 17, dtype=torch.uint8), {}),
    ("uint8 NCHW, one channel", lambda: torch.zeros(2, 1, 16, 20, dtype=torch.uint8), {}),
    ("uint8, one sample", lambda: torch.zeros(3, 16, 20, dtype=torch.uint8), {}),
    ("uint8, one pixel", lambda: torch.zeros(1, 1, 1, 1, dtype=torch.uint8), {}),
    ("uint8 channels_last", lambda: channels_last((2, 3, 16, 20), torch.uint8), {}),
    ("uint8 channels_last, 5 channels", lambda: channels_last((2, 5, 16, 20), torch.uint8), {}),
    # 16- and 32-bit percentiles: the levels of histograms after the first, in one table.
    ("uint16 NCHW", lambda: torch.zeros(2, 3, 16, 20, dtype=torch.uint16), {}),
    ("int16 channels_last", lambda: channels_last((2, 3, 16, 20), torch.int16), {}),
    ("int32 channels_last", lambda: channels_last((2, 3, 16, 20), torch.int32), {}),
    ("float32 NCHW", lambda: torch.zeros(2, 3, 16, 20), {}),
    ("float32 NCHW, address not 16-byte aligned", lambda: misaligned((2, 3, 16, 20), torch.float32), {}),
    ("float32 NCHW, bfloat16 out", lambda: torch.zeros(2, 3, 16, 20), {"dtype": torch.bfloat16}),
    ("float32 NCHW, float32 out", lambda: torch.zeros(2, 3, 16, 20), {"dtype": torch.float32}),
    ("uint8 NCHW, clip_range", lambda: torch.zeros(2, 3, 16, 20, dtype=torch.uint8), {"clip_range": (0, 1)}),
    (
        "uint8 NCHW, return_params",
        lambda: torch.zeros(2, 3, 16, 20, dtype=torch.uint8),
        {"return_params": True},
    ),
    # Many partials per scope: the finalize kernel between the statistics and the affine.
    ("uint8, 600x600", lambda: torch.zeros(1, 3, 600, 600, dtype=torch.uint8), {}),
    # Statistics of selected pixels (the standard mode refuses a selection: no launch).
    ("uint8 NCHW, nonzero", lambda: torch.zeros(2, 3, 16, 20, dtype=torch.uint8), {"nonzero": True}),
    ("int16 channels_last, nonzero", lambda: channels_last((2, 3, 16, 20), torch.int16), {"nonzero": True}),
    # A mask of every channel alike (expanded over the channels: stride 0), and one per channel.
    (
        "uint8 NCHW, mask",
        lambda: torch.zeros(2, 3, 16, 20, dtype=torch.uint8),
        {"mask": torch.ones(2, 16, 20, dtype=torch.bool)},
    ),
    (
        "uint16 channels_last, channel mask",
        lambda: channels_last((2, 3, 16, 20), torch.uint16),
        {"mask": torch.ones(2, 3, 16, 20, dtype=torch.bool)},
    ),
    (
        "float32 channels_last, channel mask",
        lambda: channels_last((2, 3, 16, 20), torch.float32),
        {"mask": torch.ones(2, 3, 16, 20, dtype=torch.bool)},
    ),
]
MODES = ("standard", "image", "image_per_channel", "min_max_per_channel", "percentile", "robust_per_channel")


def launches_of_every_case(normalize: Callable[..., Any]) -> list[list[tuple[Any, ...]]]:
    """The launches of each (case, mode), in order."""
    launched = []
    for _, image, options in CASES:
        for mode in MODES:
            LAUNCHED.clear()
            if mode == "standard" and ("nonzero" in options or "mask" in options):
                launched.append([])
                continue
            defaults = {"mean": 0.5, "std": 0.25, "max_pixel_value": 1.0, "dtype": torch.float16}
            normalize(image(), normalization=mode, **{**defaults, **options})
            launched.append(list(LAUNCHED))
    return launched


def comparable(launch: tuple[Any, ...]) -> tuple[Any, ...]:
    """A launch with each tensor argument as what the kernel sees of it (its dtype, shape,
    strides and 16-byte alignment: the output tensors are new on every call) and each scalar as
    its type and value."""
    kernel, grid, arguments = launch
    seen = tuple(
        (a.dtype, a.shape, a.stride(), a.data_ptr() % 16) if isinstance(a, torch.Tensor) else (type(a), a)
        for a in arguments
    )
    return id(kernel), grid, seen


@contextlib.contextmanager
def attribute(owner: Any, name: str, value: Any) -> Iterator[None]:
    """``owner.name = value`` for the block."""
    before = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, before)


@contextlib.contextmanager
def launch_hook(runtime: Any) -> Iterator[None]:
    """A launch hook that does nothing, set for the block: added to Triton 3.8's chain of
    hooks, or the hook itself in Triton 3.4-3.7."""
    hook = lambda metadata: None  # noqa: E731
    chain = runtime.launch_enter_hook
    if not hasattr(chain, "add"):
        with attribute(runtime, "launch_enter_hook", hook):
            yield
        return
    chain.add(hook)
    try:
        yield
    finally:
        chain.remove(hook)


@contextlib.contextmanager
def pre_run_hook(kernels: Any) -> Iterator[None]:
    """A pre-run hook that does nothing on every kernel, for the block."""
    hook = lambda *args, **kwargs: None  # noqa: E731
    jitted = [kernel for kernel in vars(kernels).values() if hasattr(kernel, "pre_run_hooks")]
    for kernel in jitted:
        kernel.add_pre_run_hook(hook)
    try:
        yield
    finally:
        for kernel in jitted:
            kernel.pre_run_hooks.remove(hook)


class CountedHook:
    """A launch hook of the user's own that counts its calls in ``calls`` (zero at first: a
    chain's emptiness test would take it for an empty chain)."""

    calls = 0

    def __call__(self, metadata: Any) -> None:
        self.calls += 1


def settings_of_triton_path(knobs: Any, kernels: Any) -> dict[str, Any]:
    """What makes Triton's launch path do more than find the kernel and launch it: with each of
    them set, every launch must go through kernel[grid]."""
    runtime, compilation = knobs.runtime, knobs.compilation
    return {
        "a launch hook": launch_hook(runtime),
        "a launch hook object with a calls attribute": attribute(runtime, "launch_enter_hook", CountedHook()),
        "a pre-run hook": pre_run_hook(kernels),
        "Triton's debug mode": attribute(runtime, "debug", True),
        "an instrumentation mode": attribute(compilation, "instrumentation_mode", "fpsan"),
        "a stages inspection hook": attribute(runtime, "add_stages_inspection_hook", lambda: ("", "")),
    }


def main() -> int:
    if os.environ.get("TRITON_INTERPRET") == "1":
        print("run without TRITON_INTERPRET: the kernels must be compiled, not interpreted")
        return 2
    try:
        from triton import knobs
        from triton.runtime.jit import JITFunction

        from norm_transforms.bench.triton_host import stub_launches

        stub_launches()
        record_launches()
    except (ImportError, AttributeError) as error:  # another Triton: nothing to check here
        print(f"cannot drive this Triton: {error!r}")
        return 2
    from norm_transforms import normalize
    from norm_transforms.backends.triton import kernels, launch

    if not launch.Launcher(kernels.standard_kernel).direct:
        print("this Triton launches through kernel[grid] only (no direct launches to check)")
        return 2
    through_triton = [0]
    triton_run = JITFunction.run

    def counted_run(self: Any, *args: Any, **kwargs: Any) -> Any:
        through_triton[0] += 1
        return triton_run(self, *args, **kwargs)

    JITFunction.run = counted_run
    launches_of_every_case(normalize)  # fills the direct launches' cache
    through_triton[0] = 0
    direct = launches_of_every_case(normalize)
    direct_through_triton = through_triton[0]
    launch.DIRECT = False
    reference = launches_of_every_case(normalize)
    launch.DIRECT = True

    names = [f"{name}, {mode}" for name, _, _ in CASES for mode in MODES]
    differences = [
        f"{name}: direct {[comparable(x) for x in ours]}\n  kernel[grid] {[comparable(x) for x in theirs]}"
        for name, ours, theirs in zip(names, direct, reference, strict=True)
        if [comparable(x) for x in ours] != [comparable(x) for x in theirs]
    ]
    for difference in differences:
        print(difference)
    count = sum(map(len, reference))
    print(f"{count} launches in {len(names)} calls, {len(differences)} calls launched differently")
    if direct_through_triton:
        print(f"{direct_through_triton} launches of the second pass went through kernel[grid], not direct")

    # With any of these set, launches go through Triton again (counted there, not compiled).
    JITFunction.run = lambda self, *args, **kwargs: through_triton.__setitem__(0, through_triton[0] + 1)
    missed = []
    for name, setting in settings_of_triton_path(knobs, kernels).items():
        through_triton[0] = 0
        with setting:
            normalize(CASES[0][1](), normalization="image")
        if through_triton[0] != 2:
            missed.append(name)
            print(f"with {name} set, {through_triton[0]} of 2 launches went through kernel[grid]")
    return 1 if differences or direct_through_triton or missed or not count else 0


if __name__ == "__main__":
    sys.exit(main())
