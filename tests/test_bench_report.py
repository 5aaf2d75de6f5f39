"""norm_transforms.bench.report: the tables, ratios, summaries and Markdown file of a benchmark,
from cells with known (fake) timings, so that every printed figure can be checked by hand.

(The suites' own summaries and tiny real runs: test_bench_numpy_suite.py, test_bench_torch_suite.py.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from norm_transforms.bench import machine_line, render_table, write_section
from norm_transforms.bench.report import (
    MISSING,
    by_threads,
    console_text,
    geomean,
    ms,
    publish,
    ratio,
    ratio_table,
    report,
    speedup_lines,
    threads_comparison,
)


@dataclass
class FakeCell:
    threads: str
    name: str
    seconds: dict[str, float] = field(default_factory=dict)


LABELS = [("case", lambda c: c.name)]


def markdown_rows(text: str, first_column: str) -> list[dict[str, str]]:
    """The rows of every Markdown table in ``text`` whose first heading is ``first_column``, as
    dicts heading -> cell text (the suites' tests read their printed tables with it)."""
    rows, header = [], None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        values = [value.strip() for value in line.strip("|").split("|")]
        if values[0] == first_column:
            header = values
        elif header is not None and not line.startswith("|---"):
            rows.append(dict(zip(header, values, strict=True)))
    return rows


def check_row_holds_its_timings(row: dict[str, str], seconds: dict[str, float], peers: list[str]) -> None:
    """A printed table row shows its cell's own medians: ours and the floor in ms, each peer
    over ours ("—" for a peer not timed on it), ours over the floor."""
    ours = seconds["ours"]
    assert row["ours ms"] == f"{ours * 1e3:.3f}"
    assert row["floor ms"] == f"{seconds['floor'] * 1e3:.3f}"
    assert row["ours / floor"] == f"{ours / seconds['floor']:.2f}"
    for peer in peers:
        assert row[f"{peer} / ours"] == (f"{seconds[peer] / ours:.2f}" if peer in seconds else "—")


# --------------------------------------------------------------------------- numbers


def test_ms_prints_three_decimals_and_a_dash_for_no_timing():
    assert ms(0.0015) == "1.500"
    assert ms(2.0) == "2000.000"
    assert ms(None) == MISSING == "—"


def test_ratio_is_peer_over_ours_with_two_decimals():
    assert ratio(6e-3, 2e-3) == "3.00"
    assert ratio(1e-3, 4e-3) == "0.25"
    assert ratio(None, 1e-3) == "—"


def test_geomean_of_reciprocal_ratios_is_one():
    assert math.isclose(geomean([2.0, 8.0]), 4.0)
    assert math.isclose(geomean([0.5, 2.0]), 1.0)
    assert math.isclose(geomean([3.0]), 3.0)


# --------------------------------------------------------------------------- tables


def test_render_table_is_markdown_with_one_separator_per_column():
    assert render_table(["a", "b"], [["1", "2"], ["3", "4"]]) == "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |"


def test_ratio_table_prints_times_and_the_ratios_of_those_times():
    cells = [FakeCell("single", "x", {"ours": 2e-3, "peer": 6e-3, "floor": 1e-3})]
    table = ratio_table(cells, ["peer"], LABELS, [("note", lambda c: "n")])
    assert (
        table.splitlines()[0] == "| case | ours ms | peer ms | floor ms | peer / ours | ours / floor | note |"
    )
    (row,) = markdown_rows(table, "case")
    assert row == {
        "case": "x",
        "ours ms": "2.000",
        "peer ms": "6.000",
        "floor ms": "1.000",
        "peer / ours": "3.00",
        "ours / floor": "2.00",
        "note": "n",
    }


def test_ratio_table_prints_a_dash_for_a_peer_not_timed_on_a_cell():
    cells = [
        FakeCell("single", "has", {"ours": 1e-3, "peer": 2e-3, "floor": 1e-3}),
        FakeCell("single", "lacks", {"ours": 1e-3, "floor": 5e-4}),
    ]
    rows = markdown_rows(ratio_table(cells, ["peer"], LABELS), "case")
    assert rows[1]["peer ms"] == rows[1]["peer / ours"] == "—"
    assert rows[1]["ours / floor"] == "2.00"
    assert rows[0]["peer / ours"] == "2.00"


# --------------------------------------------------------------------------- summaries


def test_speedup_lines_give_the_geometric_mean_slowest_and_fastest_cell():
    cells = [
        FakeCell("single", "a", {"ours": 1e-3, "peer": 2e-3}),
        FakeCell("single", "b", {"ours": 1e-3, "peer": 8e-3}),
        FakeCell("single", "c", {"ours": 1e-3}),  # not timed: left out, not counted as 0
    ]
    assert speedup_lines(cells, ["peer"], scope=" (a, b)") == [
        "- peer / ours (a, b): geometric mean 4.00x, slowest cell 2.00x, fastest 8.00x"
    ]


def test_speedup_lines_skip_a_peer_timed_on_no_cell():
    cells = [FakeCell("single", "a", {"ours": 1e-3, "peer": 3e-3})]
    assert speedup_lines(cells, ["absent", "peer"]) == [
        "- peer / ours: geometric mean 3.00x, slowest cell 3.00x, fastest 3.00x"
    ]


def test_by_threads_keeps_the_order_of_the_run():
    cells = [FakeCell("single", "a"), FakeCell("default", "a"), FakeCell("single", "b")]
    groups = by_threads(cells)
    assert list(groups) == ["single", "default"]
    assert [c.name for c in groups["single"]] == ["a", "b"]


# --------------------------------------------------------------------------- report and console


SECTIONS = {"single": ("- s1", "| t1 |"), "default": ("- d1", "| t2 |")}


def test_report_is_one_section_with_a_subsection_per_thread_setting():
    text = report("Suite", "- header", SECTIONS)
    assert text == (
        "## Suite\n\n- header\n\n"
        "### single thread\n\n- s1\n\n| t1 |\n\n"
        "### default threads\n\n- d1\n\n| t2 |\n"
    )


def test_console_text_puts_every_summary_before_the_full_report():
    full = report("Suite", "- header", SECTIONS)
    text = console_text("Suite", {t: s for t, (s, _) in SECTIONS.items()}, full)
    head, _, tail = text.partition("## Suite")
    assert head == (
        "Summary: Suite (the full report follows)\n\nsingle thread:\n- s1\n\ndefault threads:\n- d1\n\n"
    )
    assert "## Suite" + tail == full


def test_publish_prints_the_console_text_and_writes_only_the_report(tmp_path, capsys):
    path = tmp_path / "RESULTS.md"
    text = publish("Suite", "- header", SECTIONS, str(path))
    printed = capsys.readouterr().out
    assert printed.startswith("Summary: Suite") and printed.endswith(text + "\n")
    assert path.read_text() == text


def test_publish_without_markdown_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    publish("Suite", "- header", SECTIONS, None)
    assert capsys.readouterr().out.startswith("Summary: Suite")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- the Markdown file

RESULTS = """Preamble line.

## NumPy backend vs peers

old numpy

### single thread

old table

## Torch backend, CPU

old torch
"""


def test_write_section_replaces_only_its_own_section_and_keeps_the_others(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text(RESULTS)
    write_section(path, "## NumPy backend vs peers\n\nnew numpy\n\n### default threads\n\nnew table\n")
    assert path.read_text() == (
        "Preamble line.\n\n## NumPy backend vs peers\n\nnew numpy\n\n### default threads\n\nnew table\n\n"
        "## Torch backend, CPU\n\nold torch\n"
    )


def test_write_section_appends_a_section_the_file_lacks(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text(RESULTS)
    write_section(path, "## Torch backend, CUDA\n\ncuda\n")
    assert path.read_text() == RESULTS + "\n## Torch backend, CUDA\n\ncuda\n"


def test_write_section_creates_the_file(tmp_path):
    path = tmp_path / "new.md"
    write_section(path, "## Section\n\ntext\n")
    assert path.read_text() == "## Section\n\ntext\n"


def test_write_section_twice_gives_the_same_file(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text(RESULTS)
    section = "## Torch backend, CPU\n\nnew torch\n"
    write_section(path, section)
    once = path.read_text()
    write_section(path, section)
    assert path.read_text() == once


def test_machine_line_names_the_cores():
    line = machine_line()
    assert line.startswith("- Machine: ") and " cores, " in line


def test_threads_comparison_pairs_each_cell_of_the_two_settings():
    single = [
        FakeCell("single", "small", {"ours": 0.002, "floor": 0.001, "peer": 0.004}),
        FakeCell("single", "big", {"ours": 0.008, "floor": 0.004, "peer": 0.010}),
    ]
    default = [
        FakeCell("default", "big", {"ours": 0.004, "floor": 0.002, "peer": 0.005}),
        FakeCell("default", "small", {"ours": 0.002, "floor": 0.001}),  # the peer failed here
    ]
    summary, table = threads_comparison(single + default, ["peer"], LABELS)
    rows = {row["case"]: row for row in markdown_rows(table, "case")}
    assert rows["big"] == {
        "case": "big",
        "ours single ms": "8.000",
        "ours default ms": "4.000",
        "ours single / default": "2.00",
        "peer single / default": "2.00",
    }
    assert rows["small"]["ours single / default"] == "1.00"
    assert rows["small"]["peer single / default"] == MISSING
    assert summary.splitlines() == [
        f"- ours, single thread / default threads: geometric mean {math.sqrt(2):.2f}x, "
        "least 1.00x, most 2.00x",
        "- peer, single thread / default threads: geometric mean 2.00x, least 2.00x, most 2.00x",
    ]


def test_threads_comparison_needs_both_settings_and_reports_under_its_own_heading():
    cells = [FakeCell("single", "big", {"ours": 0.008, "floor": 0.004})]
    assert threads_comparison(cells, [], LABELS) is None
    both = [*cells, FakeCell("default", "big", {"ours": 0.004, "floor": 0.002})]
    text = report("Suite", "- header", {"compared": threads_comparison(both, [], LABELS)})
    assert "### single thread vs default threads" in text
