"""``norm_transforms.bench.selection_suite``: ``nonzero=True`` against NumPy's boolean indexing."""

from __future__ import annotations

import numpy as np
import pytest
from test_bench_report import markdown_rows

from norm_transforms import normalize
from norm_transforms.bench import selection_suite


def test_a_short_run_times_every_cell_and_writes_its_section(tmp_path, capsys):
    results = tmp_path / "RESULTS.md"
    results.write_text("## Another section\n\nkept\n")
    argv = ["--inputs", "uint8:16", "float32:24", "--modes", "image", "percentile_per_channel"]
    assert selection_suite.main([*argv, "--budget", "0.01", "--markdown", str(results)]) == 0
    rows = markdown_rows(capsys.readouterr().out, "input")
    assert [(row["input"], row["zeros"], row["mode"]) for row in rows] == [
        (image, zeros, mode)
        for image in ("uint8 16x16x3", "float32 24x24x3")
        for zeros in selection_suite.ZEROS
        for mode in ("image", "percentile_per_channel")
    ]
    for row in rows:
        ours, peer = float(row["ours ms"]), float(row[f"{selection_suite.PEER} ms"])
        assert ours > 0 and peer > 0
        assert float(row[f"{selection_suite.PEER} / ours"].rstrip("x")) == pytest.approx(peer / ours, rel=0.3)
    text = results.read_text()
    assert selection_suite.TITLE in text and "## Another section" in text


@pytest.mark.parametrize("zeros", selection_suite.ZEROS)
def test_the_images_have_zeros_where_the_report_says(zeros):
    image = selection_suite.make_image("uint8", 64, zeros)
    zero_pixels = (image == 0).all(axis=-1)
    assert np.array_equal(zero_pixels, (image == 0).any(axis=-1))  # whole pixels, nothing else
    share = zero_pixels.mean()
    if zeros == "scattered":
        assert share == pytest.approx(selection_suite.SCATTERED_SHARE, abs=0.05)
        # Scattered: about as many zero pixels have a non-zero right neighbour as the share says.
        assert (zero_pixels[:, :-1] & ~zero_pixels[:, 1:]).mean() > 0.15
    else:
        assert 0.3 < share < 0.5 and not zero_pixels[32, 32] and zero_pixels[0, 0]


@pytest.mark.parametrize(
    "mode", ["image", "image_per_channel", "min_max", "percentile", "robust_per_channel"]
)
def test_the_numpy_peer_computes_the_mode_over_the_non_zero_pixels(mode):
    image = selection_suite.make_image("float32", 32, "scattered")
    expected = normalize(image, normalization=mode, nonzero=True)
    np.testing.assert_allclose(
        selection_suite.numpy_nonzero(image, selection_suite.MODES[mode]), expected, rtol=0, atol=2e-4
    )


def test_a_peer_that_computes_something_else_is_refused(monkeypatch):
    # A wrong peer would be timed as another implementation of the same thing.
    monkeypatch.setattr(
        selection_suite, "numpy_nonzero", lambda image, mode: np.zeros(image.shape, np.float32)
    )
    with pytest.raises(AssertionError, match=selection_suite.PEER):
        selection_suite.measure((("uint8", 16),), ("image",), budget_s=0.01)
