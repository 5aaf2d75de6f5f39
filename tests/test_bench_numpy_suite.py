"""norm_transforms.bench.numpy_suite: the NumPy suite's summary from known timings, its peers
chosen by the modes' data, and tiny real runs through the command (in this process: a run of
one size and two or three modes takes about a second).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_bench_report import check_row_holds_its_timings, markdown_rows

from norm_transforms import cli
from norm_transforms.bench import numpy_suite
from norm_transforms.bench.numpy_suite import Cell, markdown_table, mode_group, summary
from norm_transforms.modes import MODES, Mode

TINY = ["bench", "--sizes", "32", "--dtypes", "uint8", "--threads", "single", "--budget", "0.001"]
TINY += ["--no-progress"]
ROBUST = Mode("robust", "robust", per_channel=False, clip=(0.0, 1.0), albumentations=False)


def cell(mode: str, size: int, ours: float, floor: float, peak: int, **peers: float) -> Cell:
    made = Cell("single", mode, "uint8", size, {"ours": ours, "floor": floor, **peers})
    made.peak_bytes["ours"] = peak
    return made


def run_command(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *arguments: str):
    """``norm-transforms bench ARGUMENTS`` in this process: what it printed and the cells it timed."""
    timed = {}
    real_run = numpy_suite.run

    def spy(**kwargs):
        timed["cells"], timed["peers"] = real_run(**kwargs)
        return timed["cells"], timed["peers"]

    monkeypatch.setattr(numpy_suite, "run", spy)
    assert cli.main([*TINY, *arguments]) == 0
    return capsys.readouterr().out, timed["cells"], timed["peers"]


# --------------------------------------------------------------------------- summary and table

# Two Albumentations-mode cells and one percentile cell, with round numbers.
CELLS = [
    cell("standard", 224, ours=1e-3, floor=1e-3, peak=224 * 224 * 12, peer=4e-3),
    cell("standard", 512, ours=2e-3, floor=1e-3, peak=512 * 512 * 12 * 2, peer=2e-3),
    cell("percentile", 1024, ours=8e-3, floor=1e-3, peak=1024 * 1024 * 6, **{"np.percentile": 32e-3}),
]


def test_summary_gives_each_peer_its_geometric_mean_over_the_cells_it_ran():
    lines = summary(CELLS, ["np.percentile", "peer"]).splitlines()
    assert lines[0] == "- np.percentile / ours: geometric mean 4.00x, slowest cell 4.00x, fastest 4.00x"
    # sqrt(4 * 1) = 2
    assert lines[1] == "- peer / ours: geometric mean 2.00x, slowest cell 1.00x, fastest 4.00x"


def test_summary_floor_ratio_counts_only_the_512_and_1024_cells_and_groups_by_mode_data():
    lines = summary(CELLS, []).splitlines()
    assert lines == [
        # The 224² cell (1.00) is left out: only the 512² cell, 2 ms / 1 ms.
        "- ours / floor, Albumentations modes, geometric mean over the 512² and 1024² cells: 2.00",
        "- peak memory / output size, Albumentations modes, worst cell: 2.00",
        "- ours / floor, percentile modes, geometric mean over the 512² and 1024² cells: 8.00",
        "- peak memory / output size, percentile modes, worst cell: 0.50",
    ]


def test_summary_without_large_cells_reports_memory_only():
    lines = summary(CELLS[:1], []).splitlines()
    assert lines == ["- peak memory / output size, Albumentations modes, worst cell: 1.00"]


def test_table_prints_each_cell_with_its_ratios_and_memory():
    rows = markdown_rows(markdown_table(CELLS, ["np.percentile", "peer"]), "mode")
    assert [(r["mode"], r["size"]) for r in rows] == [
        ("standard", "224²"),
        ("standard", "512²"),
        ("percentile", "1024²"),
    ]
    assert [r["peer / ours"] for r in rows] == ["4.00", "1.00", "—"]
    assert [r["np.percentile / ours"] for r in rows] == ["—", "—", "4.00"]
    assert [r["ours / floor"] for r in rows] == ["1.00", "2.00", "8.00"]
    assert [r["peak mem / output"] for r in rows] == ["1.00", "2.00", "0.50"]


def test_mode_group_reads_the_mode_data():
    assert {mode_group(mode) for mode in MODES.values() if mode.albumentations} == {"Albumentations modes"}
    assert mode_group(MODES["percentile"]) == "percentile modes"
    assert mode_group(ROBUST) == "robust modes"


# --------------------------------------------------------------------------- contenders


@pytest.mark.parametrize(
    "name", [name for name, mode in MODES.items() if mode.statistic in numpy_suite.STATISTIC_PEERS]
)
def test_the_in_process_peer_computes_what_ours_computes(name):
    # Else its ratio would compare two different things.
    image = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    _, reference = numpy_suite.STATISTIC_PEERS[MODES[name].statistic]
    ours = numpy_suite.ours_call(image, name, 255.0)()
    # The reference works in uint8 units, ours in [0, 1]: the same after the range's affine.
    np.testing.assert_allclose(reference(image, MODES[name]), ours, atol=1e-5)


@pytest.mark.parametrize("name", list(MODES))
def test_the_float64_peer_of_int16_images_computes_what_ours_computes(name):
    image = numpy_suite._timing.make_image("int16", 24)
    _, reference = numpy_suite.DTYPE_PEERS["int16"]
    ours = numpy_suite.ours_call(image, name, 1.0)()
    # float32 rounding of outputs up to ~1.3e4 in the standard mode (Hounsfield units / 0.229).
    np.testing.assert_allclose(reference(image, MODES[name]), ours, rtol=1e-6, atol=1e-5)


def test_floor_is_a_float32_copy_of_the_input():
    for image in (
        np.zeros((4, 4, 3), np.uint8),
        np.zeros((4, 4, 3), np.int16),
        np.zeros((4, 4, 3), np.float32),
    ):
        out = numpy_suite.floor_call(image)()
        assert out.dtype == np.float32 and out is not image


def test_an_int16_run_times_the_float64_peer_and_reports_in_its_own_section(monkeypatch, capsys, tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("## NumPy backend vs peers\n\nthe main table\n")
    printed, cells, peers = run_command(
        monkeypatch, capsys, "--dtypes", "int16", "--modes", "image", "--markdown", str(results)
    )
    assert numpy_suite.FLOAT64_PEER in peers and all(c.dtype == "int16" for c in cells)
    assert all(numpy_suite.FLOAT64_PEER in c.seconds for c in cells)
    assert "## NumPy backend vs peers: int16" in printed
    written = results.read_text()
    assert "the main table" in written and "## NumPy backend vs peers: int16" in written


# --------------------------------------------------------------------------- tiny real runs


def test_a_tiny_run_prints_the_ratios_of_its_own_timings(monkeypatch, capsys):
    printed, cells, peers = run_command(monkeypatch, capsys, "--modes", "standard", "percentile")
    rows = markdown_rows(printed, "mode")
    assert [(r["mode"], r["size"]) for r in rows] == [("standard", "32²"), ("percentile", "32²")]
    assert "np.percentile" in peers
    for row, timed in zip(rows, cells, strict=True):
        check_row_holds_its_timings(row, timed.seconds, peers)
    speedup = cells[1].seconds["np.percentile"] / cells[1].seconds["ours"]
    assert f"- np.percentile / ours: geometric mean {speedup:.2f}x" in printed


def test_a_mode_added_to_MODES_is_timed_with_dashes_for_the_peers_it_lacks(monkeypatch, capsys):
    # A new per-image mode with a statistic no peer has. The backend's support for a new
    # statistic is the backends' test; here only the bench is under test, so ours for it is a
    # stand-in (the backend would refuse a statistic it has no function for).
    monkeypatch.setitem(MODES, ROBUST.name, ROBUST)
    real_ours = numpy_suite.ours_call

    def ours(image, mode, max_pixel_value):
        if mode == ROBUST.name:
            return lambda: np.clip(image / np.float32(max_pixel_value), 0.0, 1.0)
        return real_ours(image, mode, max_pixel_value)

    monkeypatch.setattr(numpy_suite, "ours_call", ours)
    printed, cells, peers = run_command(monkeypatch, capsys, "--modes", "standard", "percentile", "robust")
    (row,) = [r for r in markdown_rows(printed, "mode") if r["mode"] == "robust"]
    assert peers and all(row[f"{peer} ms"] == row[f"{peer} / ours"] == "—" for peer in peers)
    robust = next(c for c in cells if c.mode == "robust")
    assert set(robust.seconds) == {"ours", "floor"}
    assert math.isfinite(float(row["ours ms"])) and row["ours / floor"] != "—"
    assert "- peak memory / output size, robust modes, worst cell: " in printed


def test_chart_draws_a_png_from_the_cells(tmp_path):
    pytest.importorskip("matplotlib")
    from norm_transforms.bench.chart import chart

    path = tmp_path / "chart.png"
    chart(CELLS, ["np.percentile", "peer"], path)
    assert path.read_bytes().startswith(b"\x89PNG")
