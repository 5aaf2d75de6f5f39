"""``norm_transforms.bench.selection_torch``: ``nonzero=True`` on tensors against Torch code."""

from __future__ import annotations

import pytest
import torch
from test_bench_report import markdown_rows
from torch_cases import force_triton_route

from norm_transforms.bench import selection_suite, selection_torch
from norm_transforms.modes import MODES


def test_a_short_run_times_every_cell_and_writes_its_section(tmp_path, capsys):
    results = tmp_path / "RESULTS.md"
    results.write_text("## Another section\n\nkept\n")
    argv = ["--device", "cpu", "--inputs", "uint8:2x3x16x16", "float32:1x20x24", "--modes", "image", "robust"]
    threads = torch.get_num_threads()  # whatever an earlier test left
    assert selection_torch.main([*argv, "--budget", "0.01", "--markdown", str(results)]) == 0
    assert torch.get_num_threads() == threads  # one thread while timing, as it was again after
    printed = capsys.readouterr().out
    assert "torch threads 1," in printed
    rows = markdown_rows(printed, "input")
    assert [(row["input"], row["zeros"], row["mode"]) for row in rows] == [
        (batch, zeros, mode)
        for batch in ("uint8 2x3x16x16", "float32 1x20x24")
        for zeros in selection_suite.ZEROS
        for mode in ("image", "robust")
    ]
    for row in rows:
        ours, peer = float(row["ours ms"]), float(row[f"{selection_torch.PEER} ms"])
        assert ours > 0 and peer > 0 and float(row[f"{selection_torch.OPS} ms"]) > 0
        assert float(row[f"{selection_torch.PEER} / ours"].rstrip("x")) == pytest.approx(peer / ours, rel=0.3)
    text = results.read_text()
    assert f"{selection_torch.TITLE} (cpu)" in text and "## Another section" in text


@pytest.mark.parametrize("zeros", selection_suite.ZEROS)
def test_the_batches_have_zeros_where_the_report_says(zeros):
    batch = selection_torch.make_batch("uint8", (2, 3, 64, 64), zeros, "cpu")
    zero_pixels = (batch == 0).all(dim=-3)
    assert torch.equal(zero_pixels, (batch == 0).any(dim=-3))  # whole pixels, nothing else
    share = zero_pixels.double().mean().item()
    if zeros == "scattered":
        assert share == pytest.approx(selection_suite.SCATTERED_SHARE, abs=0.05)
        assert not torch.equal(zero_pixels[0], zero_pixels[1])  # each sample its own
    else:
        assert 0.3 < share < 0.5 and not zero_pixels[0, 32, 32] and zero_pixels[0, 0, 0]
    assert torch.equal(selection_torch.make_batch("uint8", (2, 3, 64, 64), zeros, "cpu"), batch)


@pytest.mark.parametrize("route", ["c", "triton"])
@pytest.mark.parametrize(
    "mode", ["image", "image_per_channel", "min_max", "percentile", "robust_per_channel"]
)
def test_every_contender_computes_the_mode_over_the_non_zero_pixels(monkeypatch, route, mode):
    if route == "triton":
        force_triton_route(monkeypatch)
    batch = selection_torch.make_batch("float32", (2, 3, 20, 24), "scattered", "cpu")
    calls = selection_torch.contenders(batch, MODES[mode])
    expected = calls["ours"]()
    for name in (selection_torch.OPS, selection_torch.PEER):
        torch.testing.assert_close(calls[name](), expected, atol=2e-4, rtol=0)
    assert not calls[selection_torch.PEER]()[batch == 0].any()
    assert not torch.equal(calls["plain mode"](), expected)  # the plain mode counts the zeros


def test_a_contender_that_computes_something_else_is_refused(monkeypatch):
    # A wrong peer would be timed as another implementation of the same thing.
    monkeypatch.setattr(selection_torch, "plain_torch_nonzero", lambda x, mode: torch.zeros(x.shape))
    with pytest.raises(AssertionError, match=selection_torch.PEER):
        selection_torch.measure((("uint8", (1, 3, 16, 16)),), ("image",), "cpu", budget_s=0.01)
