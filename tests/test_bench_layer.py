"""``norm_transforms.bench.layer_suite``: NormalizeLayer eager and under ``torch.compile``."""

from __future__ import annotations

import pytest
import torch
from test_bench_report import markdown_rows

from norm_transforms.bench import layer_suite


@pytest.fixture(autouse=True)
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
    torch._dynamo.reset()


def test_a_short_run_times_every_variant_and_writes_its_section(tmp_path, capsys):
    results = tmp_path / "RESULTS.md"
    results.write_text("## Another section\n\nkept\n")
    argv = ["--shapes", "3x16x16", "2x3x8x8", "--budget", "0.01", "--markdown", str(results)]
    assert layer_suite.main(argv) == 0
    rows = markdown_rows(capsys.readouterr().out, "shape")
    assert [(row["shape"], row["out"]) for row in rows] == [
        ("3x16x16", "float32"), ("3x16x16", "float16"), ("2x3x8x8", "float32"), ("2x3x8x8", "float16"),
    ]  # fmt: skip
    for row in rows:
        # One graph, no break: what the issue asks of the layer under torch.compile.
        assert (row["graphs"], row["breaks"]) == ("1", "0")
        eager, compiled = float(row["eager ms"]), float(row["torch.compile ms"])
        assert eager > 0 and compiled > 0
        assert float(row["speed-up torch.compile"]) == pytest.approx(eager / compiled, rel=0.2)  # ms rounded
        assert "reduce-overhead ms" not in row  # CUDA graphs: on CUDA only
    text = results.read_text()
    assert layer_suite.title("cpu") in text and "## Another section" in text


def test_the_compiled_layer_must_give_the_eager_output(monkeypatch):
    # A compiled variant that computed something else would be timed as a faster peer.
    wrong = lambda layer, device: {"eager": layer, "torch.compile": lambda x: layer(x) + 1}  # noqa: E731
    monkeypatch.setattr(layer_suite, "variants", wrong)
    with pytest.raises(AssertionError, match=r"torch\.compile"):
        layer_suite.measure("cpu", ((3, 8, 8),), budget_s=0.01)
