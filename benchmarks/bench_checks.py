"""Rewrite the "## Safety checks" section of benchmarks/RESULTS.md: what the checks added for
trust cost per call (single thread, medians).

- the transforms' first-call ``max_pixel_value`` check: every later call reads one attribute
  (timed as the transform's call minus the kernel's), the first call one min/max pass;
- the functional API's typed parameter cache key (bools are refused even after an equal
  number was cached): ``normalize()`` minus the kernel.

The lock of ``ChannelStats`` is timed by benchmarks/bench_stats.py.

python benchmarks/bench_checks.py                 # about 20 s, rewrites RESULTS.md
python benchmarks/bench_checks.py --markdown ''   # print only
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import timeit
from pathlib import Path

import cv2
import numpy as np
import torch

import norm_transforms
from norm_transforms import Normalize, TorchNormalize, normalize
from norm_transforms.backends import numpy as numpy_backend
from norm_transforms.backends import torch as torch_backend
from norm_transforms.bench import write_section
from norm_transforms.modes import NormalizeParams

HERE = Path(__file__).resolve().parent
SIZES = (224, 1024)


def microseconds(call, repeats: int = 15) -> float:
    """Median µs per call over ``repeats`` timings of about 50 ms each."""
    number = max(1, int(0.05 / max(timeit.timeit(call, number=3) / 3, 1e-7)))
    return statistics.median(timeit.repeat(call, number=number, repeat=repeats)) / number * 1e6


def images(size: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "uint8": rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
        "float32": rng.random((size, size, 3), dtype=np.float32),
    }


def rows() -> list[list[str]]:
    return [row(size, dtype, image) for size in SIZES for dtype, image in images(size).items()]


def row(size: int, dtype: str, image: np.ndarray) -> list[str]:
    mpv = 255.0 if dtype == "uint8" else 1.0
    recipe = NormalizeParams.build(max_pixel_value=mpv)
    transform = Normalize(max_pixel_value=mpv)
    transform.apply(image)  # the first call, checked
    kernel = microseconds(lambda: numpy_backend.normalize(image, recipe))
    adapter = microseconds(lambda: transform.apply(image))
    functional = microseconds(lambda: normalize(image, max_pixel_value=mpv))
    first = microseconds(lambda: recipe.pixel_scale_mistake(image.dtype, *numpy_backend.value_range(image)))
    tensor = torch.from_numpy(image).permute(2, 0, 1).contiguous()
    torch_transform = TorchNormalize(max_pixel_value=mpv)
    torch_transform(tensor)
    torch_kernel = microseconds(lambda: torch_backend.normalize(tensor, torch_transform.norm_params))
    torch_adapter = microseconds(lambda: torch_transform(tensor))
    torch_first = microseconds(lambda: torch_backend.value_range(tensor))
    return [
        f"{size}² RGB {dtype}",
        f"{kernel:.1f}",
        f"{adapter - kernel:+.1f}",
        f"{functional - kernel:+.1f}",
        f"{first:.1f}",
        f"{torch_kernel:.1f}",
        f"{torch_adapter - torch_kernel:+.1f}",
        f"{torch_first:.1f}",
    ]


def report(table: list[list[str]]) -> str:
    header = [
        "image",
        "NumPy kernel µs",
        "Normalize.apply - kernel",
        "normalize() - kernel",
        "first-call check µs",
        "Torch kernel µs",
        "TorchNormalize - kernel",
        "first-call check µs (Torch)",
    ]
    lines = [
        "## Safety checks",
        "",
        f"- Machine: {platform.processor() or platform.machine()}, {platform.system()}; "
        f"Python {platform.python_version()}, NumPy {np.__version__}, OpenCV {cv2.__version__}, "
        f"torch {torch.__version__}, norm_transforms {norm_transforms.__version__}",
        "- Threads: cv2.setNumThreads(1), torch.set_num_threads(1); medians of 15 timings",
        "- `- kernel`: the transform's (or function's) per-call time minus the kernel's on the same "
        "image, i.e. what the adapter adds, the `max_pixel_value` check included (one attribute read "
        "after the first call); timing noise is about ±1 µs. The first-call check (a min/max pass) "
        "runs once per transform instance.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in table),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--markdown", default=str(HERE / "RESULTS.md"), help="file whose section to rewrite ('' to skip)"
    )
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    text = report(rows())
    print(text)
    if args.markdown:
        write_section(args.markdown, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
