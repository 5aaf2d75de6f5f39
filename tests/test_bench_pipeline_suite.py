"""norm_transforms.bench.pipeline_suite: every pipeline builds the same batch as the baseline
(and a wrong one is refused), the table and goals from known timings, and tiny real runs through
the command, in this process and with DataLoader workers."""

from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("albumentations")
pytest.importorskip("torchvision")

from norm_transforms import NormalizeCollate, cli  # noqa: E402
from norm_transforms.bench import pipeline_suite  # noqa: E402
from norm_transforms.bench.pipeline_suite import BASELINE, PipelineResult  # noqa: E402


@pytest.fixture
def small_images(monkeypatch):
    """48x64 sources cropped to 16: the same code, a fraction of the time."""
    monkeypatch.setattr(pipeline_suite, "SOURCE_SHAPE", (48, 64, 3))
    monkeypatch.setattr(pipeline_suite, "CROP", 16)


def test_every_pipeline_builds_the_baseline_batch_and_a_wrong_one_is_refused(small_images):
    found = pipeline_suite.pipelines("cpu")
    names = [pipeline.name for pipeline in found]
    assert names[0] == BASELINE and "NormalizeCollate(float16)" in names and len(set(names)) == len(names)
    pipeline_suite.check_agreement(found)
    collate = next(pipeline for pipeline in found if pipeline.name == "NormalizeCollate")
    wrong = dataclasses.replace(collate, collate=NormalizeCollate(mean=0.5))
    with pytest.raises(RuntimeError, match=r"NormalizeCollate gives another batch than A\.Normalize"):
        pipeline_suite.check_agreement([found[0], wrong])


def result(name: str, batch: str, rate_0: float, rate_2: float, **stages: float) -> PipelineResult:
    pipeline = pipeline_suite.Pipeline(name, batch, {}, sample=lambda image: image)
    return PipelineResult(pipeline, stages, {0: rate_0, 2: rate_2})


RESULTS = [
    result(BASELINE, "float32", 1000, 2000, augment=0.010, normalize=0.020, collate=0.030),
    result("NormalizeToTensor", "float32", 1600, 2500, augment=0.010, normalize=0.010, collate=0.010),
    result("NormalizeCollate", "float32", 2100, 2600, augment=0.010, collate=0.012),
    result("NormalizeCollate(float16)", "float16", 3000, 3100, augment=0.010, collate=0.008),
    result("uint8 batch, TorchNormalize on CUDA", "float16 on the GPU", 9000, 9000, augment=0.010),
]


def test_table_rows_hold_the_stage_times_and_throughput_ratios():
    rows = pipeline_suite.table(RESULTS, 64, (0, 2)).splitlines()
    assert rows[0].startswith("| pipeline | batch | augment | normalize | to tensor | collate | on batch |")
    baseline = [cell.strip() for cell in rows[2].split("|")[1:-1]]
    stages = ["10.0", "20.0", "", "30.0", ""]
    assert baseline == [BASELINE, "float32", *stages, "**60.0**", "1000", "1.00x", "2000", "1.00x"]
    collate = [cell.strip() for cell in rows[4].split("|")[1:-1]]
    assert collate[7:] == ["**22.0**", "2100", "2.10x", "2600", "1.30x"]


def test_summary_measures_the_goals_on_cpu_pipelines_in_one_process():
    lines = pipeline_suite.summary(RESULTS, (0, 2)).splitlines()
    assert lines == [
        "- Fastest float32 CPU pipeline: NormalizeCollate, 2.10x A.Normalize + ToTensorV2 (goal 2.0x)",
        # The CUDA pipeline is faster but is not a CPU pipeline.
        "- Fastest float16 CPU pipeline: NormalizeCollate(float16), 3.00x A.Normalize + ToTensorV2 "
        "(goal 2.5x)",
        "- NormalizeToTensor alone: 1.60x (goal 1.5x)",
    ]
    assert "--workers 0" in pipeline_suite.summary(RESULTS, (2,))


def test_a_tiny_run_through_the_command_reports_every_pipeline(small_images, capsys):
    arguments = ["bench", "--pipeline", "--batch-size", "3", "--batches", "1", "--workers", "0"]
    assert cli.main([*arguments, "--repeats", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "## Pipeline: augment, normalize, to tensor, collate" in out
    assert "- Threads: one OpenCV and one torch thread in every process" in out and "batches of 3" in out
    for pipeline in pipeline_suite.pipelines("cpu"):
        assert f"| {pipeline.name} | {pipeline.batch} |" in out


def test_dataloader_workers_run_the_pipeline_and_report_a_rate(small_images):
    collate = next(p for p in pipeline_suite.pipelines("cpu") if p.name == "NormalizeCollate(float16)")
    assert pipeline_suite.images_per_second(collate, batch_size=2, batches=2, workers=2) > 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--workers", "2"], "--workers applies to --pipeline only"),
        (["--pipeline", "--shapes", "3x8x8"], "--shapes applies to --backend torch only"),
        (["--pipeline", "--modes", "image"], "--modes applies to --backend numpy or --backend torch only"),
        (["--pipeline", "--workers", "-1"], "--workers must be 0 or more"),
        (["--pipeline", "--batch-size", "0"], "expected a positive integer, got '0'"),
    ],
)
def test_options_of_another_suite_are_refused(capsys, arguments, message):
    with pytest.raises(SystemExit):
        cli.main(["bench", *arguments])
    assert message in capsys.readouterr().err
