"""The ``norm-transforms`` command (also ``python -m norm_transforms``)."""

from __future__ import annotations

import argparse
import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from . import __version__
from ._optional import missing_dependency, require
from .modes import MODES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="norm-transforms", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    bench = commands.add_parser(
        "bench",
        help="time Normalize against albumentations (or torchvision and kornia) and the floor",
        description="Time every mode x dtype x size on generated RGB images, single-threaded and "
        "with default threads, beside albumentations.Normalize and the floor. About a minute with "
        "the defaults. --backend torch times normalize (Torch backend) beside torchvision v2, kornia and "
        "plain torch code on CHW/NCHW tensors instead (one to two minutes on CPU).",
    )
    bench.add_argument("--backend", choices=["numpy", "torch"], default="numpy")
    bench.add_argument(
        "--device", choices=["cpu", "cuda"], default="cpu", help="torch backend: where the tensors live"
    )
    bench.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    bench.add_argument(
        "--dtypes",
        nargs="+",
        choices=["uint8", "float32", "int16"],
        default=["uint8", "float32"],
        help="input dtypes (default uint8 float32); int16: CT slices in Hounsfield units (numpy "
        "backend: also timed against float64 NumPy code, reported in a section of their own)",
    )
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
        "--out-dtype",
        choices=["float32", "float16", "bfloat16"],
        default="float32",
        help="torch backend: the output dtype of every cell (default float32)",
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
    bench.add_argument("--no-progress", action="store_true", help="no progress bar (on stderr)")
    pipeline = bench.add_argument_group(
        "--pipeline",
        "time the whole input pipeline instead (RandomResizedCrop 224 + HorizontalFlip, normalize, to "
        "tensor, collate) for every place the normalization can go, in images/s through DataLoader "
        "(about two minutes)",
    )
    pipeline.add_argument("--pipeline", action="store_true", help="time the input pipeline")
    pipeline.add_argument("--batch-size", type=positive_int, default=64, metavar="N", help="default 64")
    pipeline.add_argument(
        "--batches", type=positive_int, default=8, metavar="N", help="batches timed per run (default 8)"
    )
    pipeline.add_argument(
        "--workers", type=int, nargs="+", default=[0, 2], metavar="N", help="num_workers (default 0 2)"
    )
    pipeline.add_argument(
        "--repeats", type=positive_int, default=5, metavar="N", help="rounds of the stage timing (default 5)"
    )
    add_stats_command(commands)
    add_inspect_command(commands)
    return parser


def add_stats_command(commands: argparse._SubParsersAction) -> None:
    stats = commands.add_parser(
        "stats",
        help="exact per-channel mean/std of an image folder, printed ready for Normalize",
        description="Exact per-channel statistics (count, mean, population std, min, max, median) "
        "of every pixel of every image under PATH (png, jpg, tif/tiff incl. 16-bit and signed int16 / "
        "int32, bmp, webp; folders are read recursively; .tar shards of images are read without "
        "unpacking them), in RGB order, and the Normalize / TorchNormalize / NormalizeLayer "
        "arguments that standardize them. Under torchrun (RANK and WORLD_SIZE set), the ranks share "
        "the files out and pool their counts exactly over a gloo process group; rank 0 prints and saves.",
    )
    stats.add_argument(
        "paths", nargs="+", metavar="PATH", help="image folder(s), image file(s) or .tar shard(s)"
    )
    stats.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="decoding processes (default 0: this process); under torchrun, per rank",
    )
    stats.add_argument(
        "--json", metavar="OUT", help="also save the exact statistics as JSON (ChannelStats.load)"
    )
    stats.add_argument(
        "--max-pixel-value",
        type=float,
        metavar="V",
        help="divide mean and std by V in the printed arguments (default: 255 for 8-bit images, "
        "65535 for 16-bit, 1.0 for float and for signed int16/int32 images, e.g. CT in Hounsfield units)",
    )
    stats.add_argument(
        "--skip-unreadable", action="store_true", help="leave out files OpenCV cannot read, with a warning"
    )
    stats.add_argument(
        "--nonzero",
        action="store_true",
        help="statistics over each channel's non-zero values only (background of brain scans, "
        "no-data in satellite tiles), as normalize(..., nonzero=True) takes them",
    )
    stats.add_argument("--no-progress", action="store_true", help="no progress bar")


def tensor_shape(text: str) -> tuple[int, ...]:
    """'3x224x224' -> (3, 224, 224): a CHW image or an NCHW batch."""
    try:
        shape = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) not in (3, 4) or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected CxHxW or NxCxHxW with positive sizes, got {text!r}")
    return shape


# Options that only some suites read: refused with the others rather than silently ignored.
_SUITE_OPTIONS = {
    "sizes": ("numpy",),
    "peer_python": ("numpy",),
    "no_albumentations": ("numpy",),
    "chart": ("numpy",),
    "shapes": ("torch",),
    "out_dtype": ("torch",),
    "device": ("torch", "pipeline"),
    "modes": ("numpy", "torch"),
    "dtypes": ("numpy", "torch"),
    "threads": ("numpy", "torch"),
    "budget": ("numpy", "torch"),
    "backend": ("numpy", "torch"),
    "batch_size": ("pipeline",),
    "batches": ("pipeline",),
    "workers": ("pipeline",),
    "repeats": ("pipeline",),
}


def _check_suite_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    defaults = parser.parse_args(["bench"])
    suite = "pipeline" if args.pipeline else args.backend
    for dest, suites in _SUITE_OPTIONS.items():
        if suite not in suites and getattr(args, dest) != getattr(defaults, dest):
            applies = " or ".join(
                "--pipeline" if name == "pipeline" else f"--backend {name}" for name in suites
            )
            parser.error(f"--{dest.replace('_', '-')} applies to {applies} only")
    if args.pipeline and min(args.workers) < 0:
        parser.error(f"--workers must be 0 or more; got {args.workers}")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "bench":
        _check_suite_options(parser, args)
        # Checked before the run, not after a minute of timing: what a missing extra would break.
        if args.chart:
            _require(parser, "bench", "matplotlib", "--chart")
        if args.pipeline:
            try:
                from .bench.pipeline_suite import main as bench_main
            except ImportError as error:
                _missing(parser, "bench", missing_dependency(error, "--pipeline"))
        elif args.backend == "torch":
            try:
                from .bench.torch_suite import main as bench_main
            except ImportError as error:
                _missing(parser, "bench", missing_dependency(error, "--backend torch"))
        else:
            from .bench import main as bench_main

        return bench_main(args)
    if args.command == "stats":
        return stats_main(parser, args)
    if args.command == "inspect":
        return inspect_main(parser, args)
    raise AssertionError(f"unhandled command {args.command}")


def _require(parser: argparse.ArgumentParser, command: str, module: str, feature: str) -> None:
    try:
        require(module, feature)
    except ImportError as error:
        _missing(parser, command, error)


def _missing(parser: argparse.ArgumentParser, command: str, error: ImportError) -> NoReturn:
    """One line that names the extra to install (from :mod:`._optional`), not a traceback."""
    parser.exit(1, f"norm-transforms {command}: error: {error}\n")


def stats_main(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``norm-transforms stats``: compute, print the table and the paste-ready lines, save. Under
    torchrun, every rank computes (its share) and only rank 0 prints, saves or reports."""
    from .stats import compute_stats

    if args.workers < 0:
        parser.error(f"--workers must be 0 or more, got {args.workers}")
    distributed = _launched_as_a_rank()
    with _process_group(parser) if distributed else contextlib.nullcontext(0) as rank:
        with warnings.catch_warnings():
            if rank != 0:  # the same warnings as rank 0's: said once
                warnings.simplefilter("ignore")
            try:
                stats = compute_stats(
                    args.paths,
                    num_workers=args.workers,
                    skip_unreadable=args.skip_unreadable,
                    progress=not args.no_progress and rank == 0,
                    distributed=distributed,
                    nonzero=args.nonzero,
                )
                kwargs = stats.to_normalize_kwargs(args.max_pixel_value)
            except (OSError, ValueError) as error:  # the same error on every rank: said once
                parser.exit(1, f"norm-transforms stats: error: {error}\n" if rank == 0 else None)
    if rank != 0:
        return 0
    print(stats_report(stats, kwargs))
    if args.json:
        stats.save(args.json)
        print(f"\nsaved to {args.json}")
    return 0


def _launched_as_a_rank() -> bool:
    """Whether torchrun (or another launcher) started this process as one of several ranks:
    RANK and WORLD_SIZE are what ``init_process_group``'s ``env://`` reads."""
    world_size = os.environ.get("WORLD_SIZE", "1")
    if not world_size.isdigit():
        raise SystemExit(f"norm-transforms stats: WORLD_SIZE must be a whole number; got {world_size!r}")
    return "RANK" in os.environ and int(world_size) > 1


@contextlib.contextmanager
def _process_group(parser: argparse.ArgumentParser) -> Iterator[int]:
    """Join the launcher's process group (gloo: the counts are pooled on CPU) for the block;
    this process's rank."""
    try:
        distributed = require("torch.distributed", "norm-transforms stats under torchrun")
    except ImportError as error:
        _missing(parser, "stats", error)
    distributed.init_process_group("gloo")
    try:
        yield distributed.get_rank()
    finally:
        distributed.destroy_process_group()


_CHANNEL_NAMES = {1: ("gray",), 3: ("R", "G", "B"), 4: ("R", "G", "B", "A")}


def stats_report(stats: Any, kwargs: dict[str, Any]) -> str:
    """The per-channel table (pixel units) and the Normalize lines (units of max_pixel_value)."""
    from .bench import render_table

    names = _CHANNEL_NAMES.get(stats.channels, tuple(str(c) for c in range(stats.channels)))
    columns = {"mean": stats.mean, "std": stats.std, "min": stats.min, "max": stats.max}
    if stats.histogram is not None:
        columns["median"] = stats.median
    counts = stats.counts.tolist()
    rows = [
        [name, str(counts[c]), *(f"{values[c]:.6g}" for values in columns.values())]
        for c, name in enumerate(names)
    ]
    mean, std, scale = (_tuple_text(kwargs["mean"]), _tuple_text(kwargs["std"]), kwargs["max_pixel_value"])
    arguments = f"mean={mean}, std={std}, max_pixel_value={scale!r}"
    plural = "s" if stats.channels != 1 else ""
    counted = " (count: the non-zero ones, --nonzero)" if stats.nonzero else ""
    return "\n".join(
        [
            f"{stats.images} images ({stats.kind}, {stats.channels} channel{plural}), "
            f"{stats.count} pixels per channel{counted}; population std, in pixel units:",
            "",
            render_table(["channel", "count", *columns], rows),
            "",
            f"Normalize arguments (mean and std divided by max_pixel_value={scale!r}):",
            "",
            f"A.Normalize({arguments})",
            f"TorchNormalize({arguments})",
            f"NormalizeLayer({arguments})",
        ]
    )


def _tuple_text(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.6g}" for v in values) + ("," if len(values) == 1 else "") + ")"


def add_inspect_command(commands: argparse._SubParsersAction) -> None:
    inspect = commands.add_parser(
        "inspect",
        help="per-channel histograms of images before and after normalization, saved as a PNG",
        description="Normalize IMAGE(s) and draw one figure: per-channel histograms of the pixel "
        "values before and of the normalized values after, pooled over the images (each normalized "
        "on its own), with each channel's mean, std and fraction at the range ends or clip bounds. "
        "Prints the same numbers, one line per channel. Default: standard mode with the ImageNet "
        "mean and std. Needs matplotlib (the plot extra).",
    )
    inspect.add_argument("images", nargs="+", metavar="IMAGE", help="image file(s) OpenCV can read")
    choice = inspect.add_mutually_exclusive_group()
    choice.add_argument(
        "--normalization", choices=list(MODES), metavar="MODE", help=f"one of {', '.join(MODES)}"
    )
    choice.add_argument(
        "--preset", metavar="NAME", help="standard mode with a preset's mean and std (imagenet, clip, ...)"
    )
    inspect.add_argument(
        "--max-pixel-value",
        type=float,
        metavar="V",
        help="full scale of the input (default: the dtype's, 255 for 8-bit and 65535 for 16-bit images)",
    )
    inspect.add_argument("--out", required=True, metavar="FILE.png", help="where to save the figure")
    inspect.add_argument("--bins", type=int, default=256, metavar="N", help="histogram bins (default 256)")
    inspect.add_argument("--log", action="store_true", help="counts on a log scale")


def inspect_main(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``norm-transforms inspect``: read the images, print one line per channel, save the figure."""
    from .plot import summarize_channels
    from .presets import get_preset

    if args.bins < 2:
        parser.error(f"--bins must be 2 or more, got {args.bins}")
    _require(parser, "inspect", "matplotlib", "the histogram figure")
    try:
        preset = get_preset(args.preset) if args.preset else None
        # Read in the order the model expects: RGB, or BGR for the Caffe-style presets.
        channel_order = preset.channel_order if preset else "RGB"
        images = [_read_image(path, channel_order) for path in args.images]
        options: dict[str, Any] = {
            "max_pixel_value": args.max_pixel_value,
            "normalization": args.normalization or "standard",
            "preset": preset,
        }
        # Each image normalized once: the printed numbers and the figure come from the same outputs.
        summaries = summarize_channels(images, **options)
        title = _inspect_title(args.images, images)
        figure = summaries.plot(bins=args.bins, log=args.log, title=title)
        # A bare Figure renders with Agg when saved: no GUI backend is involved.
        figure.savefig(args.out, dpi=110)
    except (OSError, ValueError, ImportError) as error:
        parser.exit(1, f"norm-transforms inspect: error: {error}\n")
    width = max(len(summary.name) for summary in summaries)
    for summary in summaries:
        before, after = summary.describe_input(), summary.describe_output()
        print(f"{summary.name:<{width}}  before: {before}  |  after: {after}")
    print(f"saved {args.out}")
    return 0


def _read_image(path: str, channel_order: str = "RGB") -> Any:
    """An image file as OpenCV reads it unchanged (8/16-bit, float, alpha kept), in ``channel_order``."""
    import os

    import cv2

    if not os.path.isfile(path):
        raise OSError(f"{path!r}: no such file")
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"{path!r}: not an image OpenCV can read")
    channels = 1 if image.ndim == 2 else image.shape[-1]
    if channel_order == "RGB" and channels in (3, 4):
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB if channels == 3 else cv2.COLOR_BGRA2RGBA)
    return image


def _inspect_title(paths: Sequence[str], images: Sequence[Any]) -> str:
    import os

    names = [os.path.basename(path) for path in paths]
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    pixels = sum(image.shape[0] * image.shape[1] for image in images)
    plural = "s" if len(images) != 1 else ""
    return f"{shown} ({len(images)} image{plural}, {pixels:,} pixels per channel)"


if __name__ == "__main__":
    raise SystemExit(main())
