"""``norm-transforms bench --pipeline``: the whole input pipeline, in images per second.

Per call, normalization is a small part of a training input pipeline: the bytes around it (the
float32 outputs, their transposing copy into the batch, the page faults of fresh buffers) cost
more. This suite times a standard training pipeline end to end, on the same generated images and
in the same run, for every way of placing the normalization in it:

    480x640 uint8 RGB -> RandomResizedCrop 224 + HorizontalFlip -> normalize -> to tensor -> collate

once stage by stage in this process (where the time goes) and once through ``DataLoader``
with ``num_workers`` 0 and 2 (what a training loop receives). Decoding is left out: it is the
same for every pipeline.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from ..modes import IMAGENET_MEAN, IMAGENET_STD
from . import _timing
from .machine import machine_line, package_version
from .report import publish, render_table

SOURCE_SHAPE = (480, 640, 3)
CROP = 224
#: Distinct source images; samples cycle through them.
SOURCE_IMAGES = 16
BASELINE = "A.Normalize + ToTensorV2"
STAGES = ("augment", "normalize", "to tensor", "collate", "on batch")


def source_image(index: int) -> np.ndarray:
    """A photo stand-in: smooth gradients plus noise, the same bytes in every process."""
    rng = np.random.default_rng(_timing.SEED + index)
    noise = rng.integers(0, 64, SOURCE_SHAPE, dtype=np.uint8)
    rows = np.linspace(0, 160, SOURCE_SHAPE[0], dtype=np.float32)[:, None, None]
    cols = np.linspace(0, 30, SOURCE_SHAPE[1], dtype=np.float32)[None, :, None]
    return (noise + rows + cols * (index % 3)).astype(np.uint8)


# --------------------------------------------------------------------------- the pipelines
# Every per-sample step is a picklable object: DataLoader workers receive them.


class Albumentations:
    """``A.Compose(transforms)`` called on an HWC image, returning the image it produced."""

    def __init__(self, *transforms: Any, seed: int = 0) -> None:
        import albumentations as A

        self.compose = A.Compose(list(transforms), seed=seed)

    def __call__(self, image: np.ndarray) -> Any:
        return self.compose(image=image)["image"]


def _chw_tensor(image: np.ndarray) -> torch.Tensor:
    from torchvision import tv_tensors

    return tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1).contiguous())


@dataclass(frozen=True)
class Pipeline:
    """One way to build the batch. ``stages`` are the per-sample steps by stage name (timed one by
    one), ``sample`` the same steps as one call (what a Dataset runs: one ``A.Compose`` where a
    user would write one), ``on_batch`` what runs on the collated batch in the main process."""

    name: str
    batch: str
    stages: dict[str, Callable[[Any], Any]]
    sample: Callable[[Any], Any]
    collate: Callable[[list[Any]], Any] = default_collate
    on_batch: Callable[[Any], Any] | None = None
    chw_source: bool = False  # the torchvision pipeline starts from CHW tensors


def pipelines(device: str) -> list[Pipeline]:
    """The contenders: the peer pipelines, ours, and the batch-normalizing ones (on ``device``)."""
    import albumentations as A
    from albumentations.pytorch import ToTensorV2
    from torchvision.transforms import v2

    from .. import Normalize, NormalizeCollate, NormalizeToTensor, TorchNormalize

    def augment() -> list[Any]:
        return [A.RandomResizedCrop((CROP, CROP)), A.HorizontalFlip()]

    def albumentations_pipeline(name: str, batch: str, steps: dict[str, Any], **extra: Any) -> Pipeline:
        """augment, then ``steps`` (stage name -> Albumentations transform)."""
        stages = {"augment": Albumentations(*augment())}
        stages.update({stage: Albumentations(transform) for stage, transform in steps.items()})
        return Pipeline(name, batch, stages, Albumentations(*augment(), *steps.values()), **extra)

    half = torch.float16
    found = [
        albumentations_pipeline(BASELINE, "float32", {"normalize": A.Normalize(), "to tensor": ToTensorV2()}),
        albumentations_pipeline(
            "Normalize + ToTensorV2", "float32", {"normalize": Normalize(), "to tensor": ToTensorV2()}
        ),
        albumentations_pipeline(
            "Normalize(float16) + ToTensorV2",
            "float16",
            {"normalize": Normalize(dtype="float16"), "to tensor": ToTensorV2()},
        ),
        albumentations_pipeline("NormalizeToTensor", "float32", {"normalize": NormalizeToTensor()}),
        albumentations_pipeline(
            "NormalizeToTensor(float16)", "float16", {"normalize": NormalizeToTensor(dtype="float16")}
        ),
        albumentations_pipeline("NormalizeCollate", "float32", {}, collate=NormalizeCollate()),
        albumentations_pipeline(
            "NormalizeCollate(float16)", "float16", {}, collate=NormalizeCollate(dtype=half)
        ),
        albumentations_pipeline(
            "uint8 batch, TorchNormalize on CPU",
            "float32",
            {"to tensor": ToTensorV2()},
            on_batch=_OnBatch(TorchNormalize(dtype=torch.float32), "cpu"),
        ),
    ]
    if device == "cuda":
        found.append(
            albumentations_pipeline(
                "uint8 batch, TorchNormalize on CUDA",
                "float16 on the GPU",
                {"to tensor": ToTensorV2()},
                on_batch=_OnBatch(TorchNormalize(dtype=half), "cuda"),
            )
        )
    torchvision_augment = v2.Compose([v2.RandomResizedCrop(CROP, antialias=True), v2.RandomHorizontalFlip()])
    torchvision_normalize = v2.Compose(
        [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    )
    found.append(
        Pipeline(
            "torchvision v2 (ToDtype + Normalize)",
            "float32",
            {"augment": torchvision_augment, "normalize": torchvision_normalize},
            v2.Compose([torchvision_augment, torchvision_normalize]),
            chw_source=True,
        )
    )
    return found


class _OnBatch:
    """Normalization of the collated uint8 batch, on the CPU or after the copy to a GPU."""

    def __init__(self, transform: Callable[[torch.Tensor], torch.Tensor], device: str) -> None:
        self.transform = transform
        self.device = device

    def __call__(self, batch: list[Any]) -> list[Any]:
        images = batch[0]
        if self.device == "cuda":
            images = images.to("cuda", non_blocking=True)
        out = self.transform(images)
        if self.device == "cuda":
            torch.cuda.synchronize()  # the time includes the copy and the kernel
        return [out, *batch[1:]]


# --------------------------------------------------------------------------- timing


class _Samples(Dataset):
    """``length`` samples ``(image, label)`` cycling through the source images, each through
    ``pipeline.sample``; the sources are generated in the process that reads them."""

    def __init__(self, pipeline: Pipeline, length: int) -> None:
        self.sample = pipeline.sample
        self.chw_source = pipeline.chw_source
        self.length = length
        self._sources: list[Any] | None = None

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[Any, int]:
        if self._sources is None:
            images = [source_image(i) for i in range(SOURCE_IMAGES)]
            self._sources = [_chw_tensor(image) for image in images] if self.chw_source else images
        return self.sample(self._sources[index % SOURCE_IMAGES]), index


def _single_threaded_worker(_: int) -> None:
    cv2.setNumThreads(1)  # torch is already single-threaded in DataLoader workers


def images_per_second(pipeline: Pipeline, batch_size: int, batches: int, workers: int) -> float:
    """Throughput of ``DataLoader`` over ``batches`` batches after two warm-up batches (worker
    start-up, lazy imports and allocator pools are not timed)."""
    warm_up = 2
    loader = DataLoader(
        _Samples(pipeline, (batches + warm_up) * batch_size),
        batch_size=batch_size,
        collate_fn=pipeline.collate,
        num_workers=workers,
        # forkserver: forking a process whose OpenCV and torch thread pools ran can deadlock.
        multiprocessing_context="forkserver" if workers else None,
        worker_init_fn=_single_threaded_worker if workers else None,
    )
    start = 0.0
    for index, batch in enumerate(loader):
        if pipeline.on_batch is not None:
            batch = pipeline.on_batch(batch)
        if index == warm_up - 1:
            start = time.perf_counter()
    return batches * batch_size / (time.perf_counter() - start)


def run_steps(
    pipeline: Pipeline,
    samples: list[Any],
    skip: str | None = None,
    times: dict[str, list[float]] | None = None,
) -> Any:
    """Every step of ``pipeline`` on ``samples`` in this process: the per-sample stages (but
    ``skip``), collate of ``(sample, index)`` pairs, then ``on_batch``; the batch it makes. With
    ``times``, the seconds of each step are appended to its list there."""

    def run(stage: str, step: Callable[[Any], Any], value: Any) -> Any:
        start = time.perf_counter()
        result = step(value)
        if times is not None:
            times.setdefault(stage, []).append(time.perf_counter() - start)
        return result

    for stage, step in pipeline.stages.items():
        if stage != skip:
            samples = run(stage, lambda values, step=step: [step(value) for value in values], samples)
    batch = run("collate", pipeline.collate, [(sample, index) for index, sample in enumerate(samples)])
    if pipeline.on_batch is not None:
        batch = run("on batch", pipeline.on_batch, batch)
    return batch


def stage_seconds(pipeline: Pipeline, batch_size: int, repeats: int) -> dict[str, float]:
    """Median seconds per batch of each stage, run one after the other in this process."""
    sources = [source_image(i % SOURCE_IMAGES) for i in range(batch_size)]
    if pipeline.chw_source:
        sources = [_chw_tensor(image) for image in sources]
    times: dict[str, list[float]] = {}
    for _ in range(repeats + 1):  # the first round warms up
        run_steps(pipeline, sources, times=times)
    return {stage: statistics.median(values[1:]) for stage, values in times.items()}


def batch_after_augment(pipeline: Pipeline, crops: list[np.ndarray]) -> torch.Tensor:
    """The float32 batch ``pipeline`` makes of already augmented ``crops``: every step but the
    augmentation."""
    samples: list[Any] = [_chw_tensor(crop) for crop in crops] if pipeline.chw_source else list(crops)
    return run_steps(pipeline, samples, skip="augment")[0].cpu().float()


def check_agreement(found: list[Pipeline]) -> None:
    """Refuse to time a pipeline whose batch differs from the baseline's on the same crops: its
    throughput would compare two different computations."""
    crops = [np.ascontiguousarray(source_image(i)[:CROP, :CROP]) for i in range(2)]
    expected = batch_after_augment(next(p for p in found if p.name == BASELINE), crops)
    for pipeline in found:
        # float16 batches: half an ulp of the largest normalized values (~2.6)
        tolerance = 2e-3 if "float16" in pipeline.batch else 1e-5
        difference = (batch_after_augment(pipeline, crops) - expected).abs().max().item()
        if not difference <= tolerance:
            raise RuntimeError(
                f"{pipeline.name} gives another batch than {BASELINE}: max difference {difference:.3g}"
            )


@dataclass
class PipelineResult:
    pipeline: Pipeline
    stages: dict[str, float]
    throughput: dict[int, float]  # images/s by num_workers

    @property
    def total(self) -> float:
        return sum(self.stages.values())


def run(
    device: str, batch_size: int, batches: int, workers: Sequence[int], repeats: int, progress: bool
) -> list[PipelineResult]:
    results = []
    found = pipelines(device)
    check_agreement(found)
    # One thread in this process too, as in the workers: on a loaded 2-core machine, torch.stack
    # in default_collate took 990 ms per batch with 2 threads and 52 ms with one.
    _timing.set_threads(1)
    try:
        for pipeline in found:
            if progress:
                print(f"  {pipeline.name} ...", flush=True)
            stages = stage_seconds(pipeline, batch_size, repeats)
            throughput = {count: images_per_second(pipeline, batch_size, batches, count) for count in workers}
            results.append(PipelineResult(pipeline, stages, throughput))
    finally:
        _timing.set_threads(None)
    return results


# --------------------------------------------------------------------------- report


def table(results: list[PipelineResult], batch_size: int, workers: Sequence[int]) -> str:
    baseline = next(result for result in results if result.pipeline.name == BASELINE)
    header = ["pipeline", "batch", *STAGES, f"ms / {batch_size}"]
    for count in workers:
        header += [f"img/s, {count} workers", f"vs {BASELINE}"]
    rows = []
    for result in results:
        row = [result.pipeline.name, result.pipeline.batch]
        row += [f"{result.stages[stage] * 1e3:.1f}" if stage in result.stages else "" for stage in STAGES]
        row.append(f"**{result.total * 1e3:.1f}**")
        for count in workers:
            rate = result.throughput[count]
            row += [f"{rate:.0f}", f"{rate / baseline.throughput[count]:.2f}x"]
        rows.append(row)
    return render_table(header, rows)


def summary(results: list[PipelineResult], workers: Sequence[int]) -> str:
    """The issue's goals, single process: fastest float32 and float16 CPU pipelines, and the
    fused transform alone, against the baseline."""
    if 0 not in workers:
        return "(the goals are single-process figures: run with --workers 0)"
    rate = {result.pipeline.name: result.throughput[0] for result in results}
    cpu = [result for result in results if "CUDA" not in result.pipeline.name]

    def best(batch: str) -> PipelineResult:
        return max((r for r in cpu if r.pipeline.batch == batch), key=lambda r: r.throughput[0])

    lines = []
    for batch, goal in (("float32", 2.0), ("float16", 2.5)):
        fastest = best(batch)
        lines.append(
            f"- Fastest {batch} CPU pipeline: {fastest.pipeline.name}, "
            f"{fastest.throughput[0] / rate[BASELINE]:.2f}x {BASELINE} (goal {goal}x)"
        )
    lines.append(f"- NormalizeToTensor alone: {rate['NormalizeToTensor'] / rate[BASELINE]:.2f}x (goal 1.5x)")
    return "\n".join(lines)


def header(batch_size: int, batches: int, repeats: int) -> str:
    import albumentations

    return "\n".join(
        [
            machine_line(),
            f"- Python {platform.python_version()}, torch {torch.__version__}, torchvision "
            f"{package_version('torchvision')}, albumentations {albumentations.__version__}, OpenCV "
            f"{cv2.__version__}, norm-transforms {package_version('norm-transforms')}",
            f"- Load average (1 min) at the start: {os.getloadavg()[0]:.2f}",
            f"- Pipeline: {SOURCE_SHAPE[1]}x{SOURCE_SHAPE[0]} uint8 RGB (generated, in memory: no decoding) "
            f"-> RandomResizedCrop {CROP} + HorizontalFlip -> normalize -> to tensor -> collate, "
            f"batches of {batch_size}; ImageNet mean and std, standard mode",
            f"- Stages (ms per batch): each stage over a whole batch in this process, one after the "
            f"other, median of {repeats} rounds; a stage in its own A.Compose call",
            f"- img/s: DataLoader over {batches} batches after 2 warm-up batches, the whole "
            "pipeline in one A.Compose per sample; workers started with forkserver",
            "- Threads: one OpenCV and one torch thread in every process (this one and the workers)",
            "- THP_MEM_ALLOC_ENABLE (torch's CPU allocator asks for huge pages when 1): "
            f"{os.environ.get('THP_MEM_ALLOC_ENABLE', 'unset')}",
        ]
    )


def main(args: Any) -> int:
    """Entry point of ``norm-transforms bench --pipeline`` (arguments parsed in the CLI)."""
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("norm-transforms bench: --device cuda, but torch sees no CUDA device")
    workers = tuple(args.workers)
    results = run(args.device, args.batch_size, args.batches, workers, args.repeats, not args.no_progress)
    title = "Pipeline: augment, normalize, to tensor, collate"
    text = summary(results, workers)
    sections = {"single": (text, table(results, args.batch_size, workers))}
    publish(title, header(args.batch_size, args.batches, args.repeats), sections, args.markdown)
    return 0
