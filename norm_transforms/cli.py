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
        help="time Normalize against albumentations and the astype/copy floor",
        description="Time every mode x dtype x size on generated RGB images, single-threaded and "
        "with default threads, beside albumentations.Normalize and the floor. About a minute with "
        "the defaults.",
    )
    bench.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    bench.add_argument("--dtypes", nargs="+", choices=["uint8", "float32"], default=["uint8", "float32"])
    bench.add_argument("--sizes", nargs="+", type=int, default=[224, 512, 1024], metavar="PIXELS")
    bench.add_argument("--threads", nargs="+", choices=["single", "default"], default=["single", "default"])
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
    bench.add_argument("--markdown", metavar="FILE", help="also write the report to FILE")
    bench.add_argument("--chart", metavar="FILE.png", help="also draw a bar chart (needs matplotlib)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "bench":
        from .bench import main as bench_main

        return bench_main(args)
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    raise SystemExit(main())
