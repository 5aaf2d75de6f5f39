"""``plot_histograms`` and ``summarize_channels``: the figure's panels and the numbers on it,
checked against statistics computed here in float64; pooling; the ``inspect`` command writing
a PNG; bad input.
"""

from __future__ import annotations

import re
import sys

import cv2
import numpy as np
import pytest

from norm_transforms import PRESETS, normalize, plot_histograms
from norm_transforms.cli import main
from norm_transforms.plot import summarize_channels

pytest.importorskip("matplotlib")

NUMBERS = re.compile(r"^(\S+)\s+mean\s+(\S+)\s+std\s+(\S+)\s+(?:at (\S+)\s+(\S+)%|no clip)$")


@pytest.fixture(scope="module")
def photo(photos) -> np.ndarray:
    name = "grace_hopper.jpg" if "grace_hopper.jpg" in photos else next(iter(photos))
    return np.ascontiguousarray(photos[name][..., :3])


def legend_rows(axes) -> dict[str, dict]:
    """The legend of a panel, parsed: channel -> mean, std, ends ('0/255', '±20') and percent."""
    rows = {}
    for text in axes.get_legend().get_texts():
        match = NUMBERS.match(text.get_text())
        assert match, text.get_text()
        name, mean, std, ends, percent = match.groups()
        rows[name] = {
            "mean": float(mean),
            "std": float(std),
            "ends": ends,
            "percent": None if percent is None else float(percent),
        }
    return rows


def titles(axes) -> str:
    return " | ".join(axes.get_title(loc) for loc in ("left", "center", "right"))


def assert_shown(shown: float, expected: float, decimals: int = 2) -> None:
    """A number as the figure prints it: rounded, so within half a unit of its last digit."""
    assert abs(shown - expected) <= 0.5 * 10.0**-decimals + 1e-12, (shown, expected)


# --------------------------------------------------------------------------- the figure


def test_figure_has_a_before_and_an_after_panel(photo):
    figure = plot_histograms(photo, preset="imagenet")
    before, after = figure.axes
    assert "Before: uint8 pixels" in titles(before)
    assert "After: standard, preset 'imagenet' (RGB)" in titles(after)
    assert before.get_xlabel() == "pixel value"
    assert after.get_xlabel() == "normalized value"
    assert "1 image, 3 channels" in figure.get_suptitle()
    assert list(legend_rows(before)) == list(legend_rows(after)) == ["R", "G", "B"]


def test_before_panel_shows_each_channels_mean_std_and_share_at_0_or_255(photo):
    rows = legend_rows(plot_histograms(photo).axes[0])
    for c, name in enumerate("RGB"):
        values = photo[..., c].astype(np.float64)
        assert_shown(rows[name]["mean"], values.mean())
        assert_shown(rows[name]["std"], values.std())
        assert rows[name]["ends"] == "0/255"
        assert_shown(rows[name]["percent"], 100 * np.mean((values == 0) | (values == 255)))


def test_after_panel_shows_the_normalized_mean_and_std_of_the_preset(photo):
    rows = legend_rows(plot_histograms(photo, preset="clip").axes[1])
    mean, std = PRESETS["clip"].mean, PRESETS["clip"].std
    for c, name in enumerate("RGB"):
        reference = (photo[..., c] / 255.0 - mean[c]) / std[c]  # float64, written out
        assert_shown(rows[name]["mean"], reference.mean(), decimals=4)
        assert_shown(rows[name]["std"], reference.std(), decimals=4)
        assert rows[name]["ends"] is None, "standard has no clip"


def test_clipped_fraction_in_image_mode_is_the_share_beyond_20_sigma(rng):
    image = (100 + rng.integers(0, 2, size=(60, 80))).astype(np.uint8)
    image[0, :4] = 255  # 4 hot pixels, about 34 standard deviations out
    rows = legend_rows(plot_histograms(image, normalization="image").axes[1])
    values = image.astype(np.float64)
    z = (values - values.mean()) / (values.std() + 1e-4)
    assert rows["gray"]["ends"] == "±20"
    assert np.count_nonzero(np.abs(z) > 20) == 4
    assert_shown(rows["gray"]["percent"], 100 * np.mean(np.abs(z) > 20))


def test_min_max_share_at_the_bounds_is_the_pixels_at_each_channels_extremes(photo):
    rows = legend_rows(plot_histograms(photo, normalization="min_max_per_channel").axes[1])
    for c, name in enumerate("RGB"):
        channel = photo[..., c]
        assert rows[name]["ends"] == "0/1"
        share = np.mean((channel == channel.min()) | (channel == channel.max()))
        assert_shown(rows[name]["percent"], 100 * share)


def test_after_panel_marks_zero_and_the_clip_bounds_in_view(photo):
    after = plot_histograms(photo, normalization="min_max").axes[1]
    vertical = {line.get_xdata()[0] for line in after.get_lines() if line.get_linestyle() in ("-", "--")}
    assert {0.0, 1.0} <= vertical
    assert {"clip 0", "clip 1"} <= {text.get_text() for text in after.texts}


def test_several_images_are_pooled_each_normalized_on_its_own(photo):
    small = np.ascontiguousarray(photo[::2, ::3] // 2)
    figure = plot_histograms([photo, small], normalization="image_per_channel")
    assert f"2 images, 3 channels, {photo.shape[0] * photo.shape[1] + small.size // 3:,} pixels" in (
        figure.get_suptitle()
    )
    before, after = legend_rows(figure.axes[0]), legend_rows(figure.axes[1])
    pooled = np.concatenate([photo.reshape(-1, 3), small.reshape(-1, 3)]).astype(np.float64)
    assert_shown(before["G"]["mean"], pooled[:, 1].mean())
    # Each image has mean 0 per channel after its own normalization, so the pool has too.
    assert_shown(after["G"]["mean"], 0.0, decimals=4)


RAMP = np.tile(np.arange(256, dtype=np.uint8), (16, 1))  # every 8-bit value equally often


@pytest.mark.parametrize(
    ("images", "kwargs"),
    [
        pytest.param([RAMP], {"preset": "clip"}, id="one-image"),
        pytest.param([RAMP, RAMP // 2 * 2], {"normalization": "min_max"}, id="interleaved-levels"),
    ],
)
def test_normalized_8_bit_data_draws_flat_not_as_an_aliasing_comb(images, kwargs):
    after = plot_histograms(images, **kwargs).axes[1]
    heights = after.patches[1].get_data().values  # the outline of the only channel
    inside = heights[heights > 0][1:-1]
    assert inside.max() / inside.min() < 1.05


def test_a_normalized_array_of_ones_own_is_plotted_as_given(photo):
    mine = np.zeros(photo.shape, np.float32)
    rows = legend_rows(plot_histograms(photo, mine).axes[1])
    assert rows["R"]["mean"] == rows["R"]["std"] == 0.0


def test_a_bgr_preset_labels_the_channels_b_g_r(photo):
    figure = plot_histograms(photo[..., ::-1], preset="caffe")
    assert list(legend_rows(figure.axes[0])) == ["B", "G", "R"]
    assert "(BGR)" in titles(figure.axes[1])


def test_a_grayscale_image_has_one_channel():
    image = np.arange(64, dtype=np.uint8).reshape(8, 8)
    rows = legend_rows(plot_histograms(image, mean=0.5, std=0.5).axes[0])
    assert list(rows) == ["gray"]
    assert_shown(rows["gray"]["mean"], 31.5)


def test_summarize_channels_gives_the_numbers_on_the_figure(photo):
    summaries = summarize_channels(photo, normalization="image")
    rows = legend_rows(plot_histograms(photo, normalization="image").axes[1])
    assert [s.name for s in summaries] == list(rows)
    for summary in summaries:
        assert_shown(rows[summary.name]["mean"], summary.normalized_mean, decimals=4)
        assert summary.clip == (-20.0, 20.0)
    reference = normalize(photo, normalization="image")
    assert summaries[0].normalized_std == pytest.approx(reference[..., 0].std(dtype=np.float64))


def test_summaries_plot_draws_the_figure_of_plot_histograms_from_the_same_outputs(photo):
    summaries = summarize_channels(photo, preset="clip")
    drawn, expected = (
        summaries.plot(bins=64, title="t"),
        plot_histograms(photo, preset="clip", bins=64, title="t"),
    )
    for panel, reference in zip(drawn.axes, expected.axes, strict=True):
        assert legend_rows(panel) == legend_rows(reference)
    assert drawn.get_suptitle() == "t"


def test_input_mean_and_std_are_those_of_the_dataset_statistics(photo):
    # The same pooling as ChannelStats (exact for integer pixels): one number for one dataset.
    from norm_transforms import ChannelStats

    small = np.ascontiguousarray(photo[::2, ::3])
    stats = ChannelStats().update(photo).update(small)
    summaries = summarize_channels([photo, small])
    assert [s.mean for s in summaries] == stats.mean.tolist()
    assert [s.std for s in summaries] == stats.std.tolist()


def test_nan_pixels_give_a_nan_mean_and_std_in_their_channel_only():
    image = np.full((4, 4, 3), 0.5, np.float32)
    image[0, 0, 1] = np.nan
    summaries = summarize_channels(image, max_pixel_value=1.0)
    assert np.isnan([summaries[1].mean, summaries[1].std, summaries[1].normalized_mean]).all()
    assert (summaries[0].mean, summaries[2].std) == (0.5, 0.0)


# --------------------------------------------------------------------------- bad input


RGB = np.zeros((4, 4, 3), np.uint8)


@pytest.mark.parametrize(
    ("images", "kwargs", "message"),
    [
        pytest.param([], {}, "images is empty", id="empty-list"),
        pytest.param(np.zeros((2, 4, 4, 3), np.uint8), {}, "pass a batch as a list", id="4d-array"),
        pytest.param([RGB, RGB[..., 0]], {}, "same channel count", id="mixed-channels"),
        pytest.param(RGB, {"preset": "clip", "mean": 0.5}, "not both", id="preset-and-mean"),
        pytest.param(
            RGB, {"preset": "clip", "normalization": "image"}, "only the standard", id="preset-mode"
        ),
        pytest.param(RGB, {"preset": "clipp"}, "did you mean 'clip'", id="preset-name"),
        pytest.param(RGB, {"bins": 1}, "bins must be", id="bins"),
        pytest.param(RGB, {"normalized": np.zeros((4, 5, 3))}, "one for one", id="normalized-shape"),
        pytest.param(RGB, {"channel_names": ["a"]}, "channel_names has 1", id="channel-names"),
    ],
)
def test_bad_input_raises_a_clear_value_error(images, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plot_histograms(images, **kwargs)


def test_without_matplotlib_the_error_names_the_plot_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"norm-transforms\[plot\]"):
        plot_histograms(np.zeros((4, 4), np.uint8))


# --------------------------------------------------------------------------- the inspect command


@pytest.fixture(scope="module")
def photo_file(photo, tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("inspect") / "photo.png")
    cv2.imwrite(path, cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    return path


def test_inspect_writes_a_png_and_prints_one_line_per_channel(photo, photo_file, tmp_path, capsys):
    out = tmp_path / "histograms.png"
    assert main(["inspect", photo_file, "--preset", "clip", "--out", str(out)]) == 0
    written = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert written is not None and written.ndim == 3
    assert written.shape[0] >= 600 and written.shape[1] >= 1000, written.shape
    assert 0 < written.std(), "not a blank image"
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[:3]] == ["R", "G", "B"]
    red = photo[..., 0].astype(np.float64)
    assert f"mean {red.mean():.2f}" in re.sub(r" +", " ", lines[0])
    assert "after:" in lines[0] and lines[-1] == f"saved {out}"


def test_inspect_normalizes_each_image_once(photo_file, tmp_path, monkeypatch, capsys):
    import norm_transforms.plot

    calls = []

    def counted(image, *args, **kwargs):
        calls.append(image.shape)
        return normalize(image, *args, **kwargs)

    monkeypatch.setattr(norm_transforms.plot, "normalize", counted)
    assert main(["inspect", photo_file, photo_file, "--out", str(tmp_path / "o.png")]) == 0
    assert len(calls) == 2


def test_inspect_reads_16_bit_grayscale_unchanged(tmp_path, capsys):
    path = str(tmp_path / "gray16.png")
    cv2.imwrite(path, (np.arange(1200, dtype=np.uint16).reshape(30, 40) * 50))
    assert main(["inspect", path, "--normalization", "min_max", "--out", str(tmp_path / "o.png")]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith("gray") and "at 0/65535" in line and "at 0/1" in line


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"not an image", "not an image OpenCV can read"), (None, "no such file")],
    ids=["unreadable", "missing"],
)
def test_inspect_names_the_file_it_cannot_read(tmp_path, capsys, content, message):
    path = tmp_path / "broken.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SystemExit) as exit_info:
        main(["inspect", str(path), "--out", str(tmp_path / "o.png")])
    assert exit_info.value.code == 1
    error = capsys.readouterr().err
    assert str(path) in error and message in error


def test_inspect_unknown_preset_lists_the_presets(photo_file, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["inspect", photo_file, "--preset", "imagenette", "--out", str(tmp_path / "o.png")])
    assert "known presets: imagenet" in capsys.readouterr().err


def test_inspect_takes_a_preset_or_a_mode_not_both(photo_file, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["inspect", photo_file, "--preset", "clip", "--normalization", "image", "--out", "o.png"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_unknown_mode_with_given_outputs_names_the_argument():
    image = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match=r"normalization must be one of .*; got 'bogus'"):
        plot_histograms(image, normalized=image.astype(np.float32), normalization="bogus")
