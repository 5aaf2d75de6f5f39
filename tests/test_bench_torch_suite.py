"""norm_transforms.bench.torch_suite and torch_peers: the Torch suite's summary and table from
known timings, which peer runs which mode (read from the modes' data), every peer agreeing with
ours on every mode it runs, and tiny real runs through the command (in this process).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from test_bench_report import check_row_holds_its_timings, markdown_rows  # noqa: E402

from norm_transforms import cli  # noqa: E402
from norm_transforms.bench import torch_peers, torch_suite  # noqa: E402
from norm_transforms.bench.torch_suite import CUDA_TARGET, Case, TorchCell, markdown_table, summary  # noqa: E402
from norm_transforms.modes import MODES, Mode  # noqa: E402

TINY = ["bench", "--backend", "torch", "--shapes", "3x16x16", "--dtypes", "uint8", "--threads", "single"]
TINY += ["--budget", "0.001", "--no-progress"]
ROBUST = Mode("robust", "robust", per_channel=False, clip=(0.0, 1.0), albumentations=False)


def cell(mode: str, shape: tuple[int, ...], **seconds: float) -> TorchCell:
    return TorchCell("single", Case(shape, "uint8", mode), seconds)


def run_command(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *arguments: str):
    """``norm-transforms bench --backend torch ARGUMENTS`` in this process: what it printed and
    the cells it timed."""
    timed = {}
    real_run = torch_suite.run

    def spy(**kwargs):
        timed["cells"] = real_run(**kwargs)
        return timed["cells"]

    monkeypatch.setattr(torch_suite, "run", spy)
    assert cli.main([*TINY, *arguments]) == 0
    return capsys.readouterr().out, timed["cells"]


# --------------------------------------------------------------------------- summary and table

CHW, NCHW = (3, 8, 8), (2, 3, 8, 8)
CELLS = [
    cell("standard", CHW, ours=1e-3, floor=1e-3, **{"torchvision v2": 2e-3, "plain torch": 3e-3}),
    cell("standard", NCHW, ours=1e-3, floor=5e-4, **{"torchvision v2": 8e-3, "plain torch": 3e-3}),
    cell("min_max", CHW, ours=2e-3, floor=1e-3, **{"plain torch": 6e-3}),
    cell("min_max", NCHW, ours=4e-3, floor=1e-3, **{"plain torch": 12e-3}),
]


def test_summary_scopes_a_peer_that_runs_only_some_modes_to_each_of_them():
    lines = summary(CELLS, ["torchvision v2", "plain torch"], None).splitlines()
    assert lines[:2] == [
        # torchvision runs the standard mode only: its line says so. sqrt(2 * 8) = 4.
        "- torchvision v2 / ours (standard): geometric mean 4.00x, slowest cell 2.00x, fastest 8.00x",
        "- plain torch / ours: geometric mean 3.00x, slowest cell 3.00x, fastest 3.00x",
    ]


def test_summary_floor_ratios_by_mode_kind_and_layout():
    lines = summary(CELLS, [], None).splitlines()
    assert lines == [
        "- ours / floor, standard mode, CHW images: geometric mean 1.00, worst 1.00",
        "- ours / floor, standard mode, NCHW batches: geometric mean 2.00, worst 2.00",
        "- ours / floor, per-image modes, CHW images: geometric mean 2.00, worst 2.00",
        "- ours / floor, per-image modes, NCHW batches: geometric mean 4.00, worst 4.00",
    ]


def test_table_prints_ratios_and_dashes_and_on_cuda_the_bandwidth():
    rows = markdown_rows(markdown_table(CELLS, ["torchvision v2", "plain torch"], None), "mode")
    assert [r["torchvision v2 / ours"] for r in rows] == ["2.00", "8.00", "—", "—"]
    assert [r["shape"] for r in rows] == ["3x8x8", "2x3x8x8", "3x8x8", "2x3x8x8"]
    assert "ours GB/s" not in rows[0]
    # % of copy: a same-size device copy's time / ours: 0.6 ms / 1 ms.
    on_cuda = cell("standard", CHW, ours=1e-3, floor=1e-3, copy=6e-4)
    (row,) = markdown_rows(markdown_table([on_cuda], [], bandwidth=1e6), "mode")
    # 3*8*8 bytes in + 4x that out = 960 bytes per ms: 0.96 MB/s.
    assert row["ours GB/s"] == "0.0" and row["% of copy"] == "60%"


def test_summary_on_cuda_reports_the_target_case_against_a_same_size_copy():
    target = TorchCell("default", CUDA_TARGET, {"ours": 1e-3, "floor": 1e-3, "copy": 7e-4})
    lines = summary([target], [], bandwidth=1e12).splitlines()
    achieved = CUDA_TARGET.bytes_moved / 1e-3
    assert lines[-1] == (
        f"- target case 256x3x224x224 uint8 → float16 standard: ours 1.000 ms, {achieved / 1e9:.0f} GB/s = "
        f"70% of a same-size device copy ({100 * achieved / 1e12:.0f}% of the 1 GiB copy's rate)"
    )


def test_same_size_copy_moves_the_bytes_of_one_pass(monkeypatch):
    made = []
    monkeypatch.setattr(torch, "empty", lambda size, **kwargs: made.append(size) or torch.zeros(0))
    monkeypatch.setattr(torch, "empty_like", lambda tensor: tensor)
    torch_suite.same_size_copy(CUDA_TARGET)
    # read + written = 256*3*224*224 bytes of uint8 in + twice that of float16 out.
    assert 2 * made[0] == CUDA_TARGET.bytes_moved == 256 * 3 * 224 * 224 * 3


# --------------------------------------------------------------------------- contenders


def expected_peers(mode: Mode, dtype: str = "uint8") -> set[str]:
    """Which peer has a version of the mode, from its data (torchvision and kornia installed;
    torchvision's ToDtype scales int16 to [-1, 1], not what a CT pipeline normalizes)."""
    peers = set()
    if mode.statistic is None:
        peers |= {"kornia", "plain torch"} | ({"torchvision v2"} if dtype != "int16" else set())
    if mode.statistic == "min_max" and mode.per_channel:
        peers.add("kornia")
    if mode.statistic in torch_peers.PLAIN_TORCH:
        peers.add("plain torch")
    return peers


@pytest.mark.parametrize("out_dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("dtype", ["uint8", "int16"])
@pytest.mark.parametrize("name", list(MODES))
def test_each_peer_runs_the_modes_its_data_says_and_agrees_with_ours(name, out_dtype, dtype):
    # Half outputs too: torch.quantile reads float32 and float64 only, and the plain percentile
    # peer once raised there, which stopped the GPU run's uint8 -> float16 goals table. int16:
    # Hounsfield units, normalized as they are (no full scale). One channel takes the first of
    # ImageNet's constants, as ours does (the peers were given all three and failed).
    pytest.importorskip("torchvision")
    pytest.importorskip("kornia")
    for shape in (CHW, NCHW, (1, 8, 8), (2, 1, 8, 8)):
        x = torch_suite.make_tensor(shape, dtype, "cpu")
        calls = torch_peers.contenders(x, name, getattr(torch, out_dtype))
        assert set(calls) - {"ours", "floor"} == expected_peers(MODES[name], dtype)
        torch_suite.check_agreement(calls, Case(shape, dtype, name, out_dtype))  # raises on a mismatch


def test_a_statistic_without_a_peer_gets_only_ours_and_the_floor(monkeypatch):
    monkeypatch.setitem(MODES, ROBUST.name, ROBUST)
    monkeypatch.setattr(torch_peers, "ours_call", lambda x, mode, out: lambda: x.to(out))  # a stand-in
    calls = torch_peers.contenders(torch_suite.make_tensor(CHW, "uint8", "cpu"), ROBUST.name, torch.float32)
    assert set(calls) == {"ours", "floor"}


# --------------------------------------------------------------------------- tiny real runs


def test_a_tiny_run_prints_the_ratios_of_its_own_timings(monkeypatch, capsys):
    printed, cells = run_command(monkeypatch, capsys, "--modes", "standard", "min_max_per_channel")
    rows = markdown_rows(printed, "mode")
    assert [r["mode"] for r in rows] == ["standard", "min_max_per_channel"]
    peers = torch_suite.peers_timed(cells)
    assert "plain torch" in peers
    for row, timed in zip(rows, cells, strict=True):
        check_row_holds_its_timings(row, timed.seconds, peers)


def test_a_mode_added_to_MODES_is_timed_with_dashes_for_the_peers_it_lacks(monkeypatch, capsys):
    # As in test_bench_numpy_suite.py: ours for the new statistic is a stand-in, the backends'
    # support for it is theirs to test.
    monkeypatch.setitem(MODES, ROBUST.name, ROBUST)
    real_ours = torch_peers.ours_call

    def ours(x, mode, out):
        if mode == ROBUST.name:
            return lambda: (x.to(out) / 255).clamp(0.0, 1.0)
        return real_ours(x, mode, out)

    monkeypatch.setattr(torch_peers, "ours_call", ours)
    printed, cells = run_command(monkeypatch, capsys, "--modes", "standard", "robust")
    (row,) = [r for r in markdown_rows(printed, "mode") if r["mode"] == "robust"]
    peers = torch_suite.peers_timed(cells)
    assert peers and all(row[f"{peer} ms"] == row[f"{peer} / ours"] == "—" for peer in peers)
    assert "- ours / floor, per-image modes, CHW images: " in printed


def test_int16_runs_through_the_command_with_its_floor(monkeypatch, capsys):
    # CT slices on the Torch backend (on CUDA: the 16-bit histograms of the Triton kernels).
    arguments = ("--dtypes", "int16", "--modes", "standard", "percentile")
    printed, cells = run_command(monkeypatch, capsys, *arguments)
    assert {(c.case.dtype, c.case.mode) for c in cells} == {("int16", "standard"), ("int16", "percentile")}
    assert all({"ours", "floor", "plain torch"} <= set(c.seconds) for c in cells)
    assert "int16" in printed


def test_compiled_torch_is_timed_on_cuda_only():
    x = torch_suite.make_tensor(CHW, "uint8", "cpu")
    assert torch_peers.compiled_torch_call(x, MODES["image"], torch.float32) is None


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["standard", "image_per_channel", "min_max"])
def test_compiled_torch_agrees_with_ours_on_cuda(name):
    x = torch_suite.make_tensor(NCHW, "uint8", "cuda")
    calls = torch_peers.contenders(x, name, torch.float16)
    assert "compiled torch" in calls
    torch_suite.check_agreement(calls, Case(NCHW, "uint8", name, "float16"))


def test_out_dtype_applies_to_every_cell_and_shows_in_the_table(monkeypatch, capsys):
    arguments = ("--modes", "standard", "image", "--out-dtype", "float16")
    printed, cells = run_command(monkeypatch, capsys, *arguments)
    assert {cell.case.out_dtype for cell in cells} == {"float16"}
    assert {row["dtype"] for row in markdown_rows(printed, "mode")} == {"uint8 → float16"}
