"""The report of a benchmark run, from its cells: tables, ratios, summaries, the Markdown file.

Both suites (NumPy and Torch) render through here, so their reports share one format: a ``## ``
section with the machine header, then per thread setting a ``### `` subsection holding the
summary lines and a table of times in ms, ``peer / ours`` and ``ours / floor`` ratios. A cell is
anything with a ``threads`` name and a ``seconds`` dict holding ``"ours"`` and ``"floor"`` (and
each peer that was timed on it): a peer missing from a cell prints as "—", never as an error.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .machine import threads_label

MISSING = "—"  # a peer not timed on a cell: it has no such mode, or was not asked for


class TimedCell(Protocol):
    """What the report reads of a cell: its thread setting and its medians in seconds."""

    threads: str
    seconds: dict[str, float]


CellT = TypeVar("CellT", bound=TimedCell)
#: A table column: its heading and how a cell fills it.
Column = tuple[str, Callable[[Any], str]]


def ms(seconds: float | None) -> str:
    """Milliseconds with three decimals, or "—" for a contender not timed."""
    return MISSING if seconds is None else f"{seconds * 1e3:.3f}"


def ratio(peer: float | None, ours: float) -> str:
    """``peer / ours`` with two decimals (above 1: ours is faster), or "—"."""
    return MISSING if peer is None else f"{peer / ours:.2f}"


def geomean(values: Sequence[float]) -> float:
    """The geometric mean: the mean speed-up that neither a few large nor small ratios dominate."""
    return math.exp(sum(math.log(v) for v in values) / len(values))


def render_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(values) + " |" for values in rows])


def ratio_table(
    cells: Sequence[TimedCell], peers: Sequence[str], labels: Sequence[Column], extra: Sequence[Column] = ()
) -> str:
    """One Markdown table: the ``labels`` columns (what the cell is), ours, each peer and the floor
    in ms, each ``peer / ours``, ``ours / floor``, then the ``extra`` columns."""
    header = [name for name, _ in labels] + ["ours ms", *[f"{p} ms" for p in peers], "floor ms"]
    header += [f"{p} / ours" for p in peers] + ["ours / floor"] + [name for name, _ in extra]
    rows = []
    for cell in cells:
        ours, floor = cell.seconds["ours"], cell.seconds["floor"]
        values = [fill(cell) for _, fill in labels] + [ms(ours)]
        values += [ms(cell.seconds.get(p)) for p in peers] + [ms(floor)]
        values += [ratio(cell.seconds.get(p), ours) for p in peers] + [f"{ours / floor:.2f}"]
        rows.append(values + [fill(cell) for _, fill in extra])
    return render_table(header, rows)


def speedup_lines(cells: Sequence[TimedCell], peers: Sequence[str], scope: str = "") -> list[str]:
    """'- peer / ours<scope>: geometric mean, slowest, fastest' over the cells where the peer was
    timed; no line for a peer timed on none of them."""
    lines = []
    for peer in peers:
        speedups = [c.seconds[peer] / c.seconds["ours"] for c in cells if peer in c.seconds]
        if speedups:
            lines.append(
                f"- {peer} / ours{scope}: geometric mean {geomean(speedups):.2f}x, "
                f"slowest cell {min(speedups):.2f}x, fastest {max(speedups):.2f}x"
            )
    return lines


def by_threads(cells: Sequence[CellT]) -> dict[str, list[CellT]]:
    """The cells of each thread setting, in the order the run timed them."""
    groups: dict[str, list[CellT]] = {}
    for cell in cells:
        groups.setdefault(cell.threads, []).append(cell)
    return groups


#: The section key of :func:`threads_comparison`, after the thread settings' own sections.
THREADS_COMPARED = "compared"


def section_heading(key: str) -> str:
    """The ``###`` heading of a section: a thread setting's, or the comparison of the two."""
    return "single thread vs default threads" if key == THREADS_COMPARED else threads_label(key)


def threads_comparison(
    cells: Sequence[TimedCell], contenders: Sequence[str], labels: Sequence[Column]
) -> tuple[str, str] | None:
    """(summary, table): each cell's single-thread time beside its default-threads time, for
    ours and each contender, and the speed-up threads give each (single / default); None unless
    the run timed both settings. Cells are paired by their ``labels`` columns."""
    groups = by_threads(cells)
    if set(groups) != {"single", "default"}:
        return None
    default = {tuple(fill(c) for _, fill in labels): c for c in groups["default"]}
    pairs = [
        (c, default[key])
        for c in groups["single"]
        if (key := tuple(fill(c) for _, fill in labels)) in default
    ]
    names = ["ours", *contenders]
    header = [name for name, _ in labels] + ["ours single ms", "ours default ms"]
    header += [f"{name} single / default" for name in names]
    rows = []
    for single, threaded in pairs:
        values = [fill(single) for _, fill in labels] + [
            ms(single.seconds["ours"]),
            ms(threaded.seconds["ours"]),
        ]
        values += [
            ratio(single.seconds.get(n), threaded.seconds[n]) if n in threaded.seconds else MISSING
            for n in names
        ]
        rows.append(values)
    lines = []
    for name in names:
        speedups = [
            s.seconds[name] / d.seconds[name] for s, d in pairs if name in s.seconds and name in d.seconds
        ]
        if speedups:
            lines.append(
                f"- {name}, single thread / default threads: geometric mean {geomean(speedups):.2f}x, "
                f"least {min(speedups):.2f}x, most {max(speedups):.2f}x"
            )
    return "\n".join(lines), render_table(header, rows)


def report(title: str, header: str, sections: dict[str, tuple[str, str]]) -> str:
    """The Markdown report: ``## title``, the header, then per thread setting its summary and
    table (``sections``: threads, or THREADS_COMPARED -> (summary, table))."""
    parts = [f"## {title}", "", header]
    for key, (summary, table) in sections.items():
        parts += ["", f"### {section_heading(key)}", "", summary, "", table]
    return "\n".join(parts) + "\n"


def console_text(title: str, summaries: dict[str, str], full_report: str) -> str:
    """What the command prints: the headline figures of each thread setting first (a few lines
    that a terminal shows without scrolling back through the tables), then the full report,
    the same text that ``--markdown`` writes."""
    parts = [f"Summary: {title} (the full report follows)"]
    for threads, text in summaries.items():
        parts += ["", f"{section_heading(threads)}:", text]
    return "\n".join([*parts, "", full_report])


def publish(title: str, header: str, sections: dict[str, tuple[str, str]], markdown: str | None) -> str:
    """Print the summaries and the report; with ``markdown``, also write the report into that
    file (its own section only). Returns the report."""
    text = report(title, header, sections)
    print(console_text(title, {threads: summary for threads, (summary, _) in sections.items()}, text))
    if markdown:
        write_section(markdown, text)
    return text


def write_section(path: str | Path, text: str) -> None:
    """Write a report (text opening with its ``## `` heading) into ``path``, replacing the
    section with the same heading and keeping the others, so that the NumPy and Torch reports
    can share one results file and each run rewrites only its own."""
    path = Path(path)
    heading = text.splitlines()[0]
    old = path.read_text() if path.exists() else ""
    # Chunks: an optional preamble, then one per "## " heading (its "###" subsections included).
    chunks = [c.rstrip() for c in re.split(r"(?m)^(?=## )", old) if c.strip()]
    headings = [c.splitlines()[0] for c in chunks]
    if heading in headings:
        chunks[headings.index(heading)] = text.rstrip()
    else:
        chunks.append(text.rstrip())
    path.write_text("\n\n".join(chunks) + "\n")


def progress_bar(total: int, enabled: bool, unit: str = "cell") -> Any:
    """A tqdm bar on stderr, so that a run of a minute shows where it is while stdout stays the
    report alone (redirect it to a file and the bar still shows)."""
    from tqdm import tqdm

    return tqdm(
        total=total, unit=unit, desc="bench", file=sys.stderr, disable=not enabled, dynamic_ncols=True
    )
