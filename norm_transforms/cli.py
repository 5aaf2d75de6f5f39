"""The ``norm-transforms`` command."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .modes import MODES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="norm-transforms", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    bench = commands.add_parser(
        "bench",
        help="time Normalize against albumentations (or torchvision and kornia) and the floor",
        description="Time every mode x dtype x size on generated RGB images, single-threaded and "
        "with default threads, beside albumentations.Normalize and the floor. About a minute with "
        "the defaults. --backend torch times normalize_tensor beside torchvision v2, kornia and "
        "plain torch code on CHW/NCHW tensors instead (one to two minutes on CPU).",
    )
    bench.add_argument("--backend", choices=["numpy", "torch"], default="numpy")
    bench.add_argument(
        "--device", choices=["cpu", "cuda"], default="cpu", help="torch backend: where the tensors live"
    )
    bench.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    bench.add_argument("--dtypes", nargs="+", choices=["uint8", "float32"], default=["uint8", "float32"])
    bench.add_argument(
        "--sizes", nargs="+", type=int, metavar="PIXELS", help="numpy backend: sizes (default 224 512 1024)"
    )
    bench.add_argument(
        "--shapes",
        nargs="+",
        type=tensor_shape,
        metavar="CxHxW",
        help="torch backend: tensor shapes such as 3x224x224 or 64x3x224x224 "
        "(default 3x224x224 3x512x512 64x3x224x224)",
    )
    bench.add_argument(
        "--threads",
        nargs="+",
        choices=["single", "default"],
        help="default: both (on CUDA: default only, host threads do not drive the kernels)",
    )
    bench.add_argument(
        "--budget", type=float, default=0.08, metavar="SECONDS", help="timing budget per contender and cell"
    )
    bench.add_argument(
        "--peer-python",
        action="append",
        default=[],
        metavar="PYTHON",
        help="also time albumentations.Normalize as installed for this interpreter "
        "(e.g. a virtualenv with AlbumentationsX); repeatable",
    )
    bench.add_argument(
        "--no-albumentations", action="store_true", help="skip albumentations in this interpreter"
    )
    bench.add_argument(
        "--markdown",
        metavar="FILE",
        help="also write the report to FILE, replacing only its own '## ' section if FILE has one",
    )
    bench.add_argument(
        "--chart", metavar="FILE.png", help="numpy backend: also draw a bar chart (needs matplotlib)"
    )
    return parser


def tensor_shape(text: str) -> tuple[int, ...]:
    """'3x224x224' -> (3, 224, 224): a CHW image or an NCHW batch."""
    try:
        shape = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) not in (3, 4) or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected CxHxW or NxCxHxW with positive sizes, got {text!r}")
    return shape


# Options that only one backend reads: refused with the other rather than silently ignored.
_BACKEND_ONLY_OPTIONS = {
    "numpy": ("sizes", "peer_python", "no_albumentations", "chart"),
    "torch": ("shapes", "device"),
}


def _check_backend_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    defaults = parser.parse_args(["bench"])
    for backend, options in _BACKEND_ONLY_OPTIONS.items():
        if args.backend == backend:
            continue
        for dest in options:
            if getattr(args, dest) != getattr(defaults, dest):
                parser.error(f"--{dest.replace('_', '-')} applies to --backend {backend} only")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "bench":
        _check_backend_options(parser, args)
        if args.backend == "torch":
            from .bench_torch import main as bench_main
        else:
            from .bench import main as bench_main

        return bench_main(args)
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    raise SystemExit(main())
