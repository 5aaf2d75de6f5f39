"""``ChannelStats`` and ``compute_stats``: exactness against a float64 reference over all pixels
at once, independence of order, batching and workers, files (folders, 16-bit, grayscale, RGBA,
unreadable, mixed), JSON, percentiles, Torch tensors and data sources, torch.distributed on
gloo, the ``stats`` command, bad input and corrupt states, worker processes that must not hang
(after OpenCV's thread pool ran), and threads sharing one ``ChannelStats``.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import types
import warnings
from copy import deepcopy

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from norm_transforms import ChannelStats, compute_stats
from norm_transforms.cli import main

try:  # for a Dataset class at module level, which DataLoader workers can unpickle
    from torch.utils.data import Dataset as TorchDataset
except ImportError:  # the torch tests skip
    TorchDataset = object

RTOL = 1e-9  # the target: mean and std within 1e-9 relative of the float64 reference


# --------------------------------------------------------------------------- reference


def pooled_pixels(images: list[np.ndarray]) -> np.ndarray:
    """Every pixel of every channels-last image, as float64 rows ``(P, C)``: the reference data."""
    channels = 1 if images[0].ndim == 2 else images[0].shape[-1]
    return np.concatenate([image.reshape(-1, channels).astype(np.float64) for image in images])


def assert_matches_reference(stats: ChannelStats, images: list[np.ndarray], rtol: float = RTOL) -> None:
    pixels = pooled_pixels(images)
    assert stats.count == len(pixels)
    assert stats.channels == pixels.shape[1]
    np.testing.assert_allclose(stats.mean, pixels.mean(axis=0), rtol=rtol, atol=0)
    np.testing.assert_allclose(stats.std, pixels.std(axis=0), rtol=rtol, atol=0)
    np.testing.assert_array_equal(stats.min, pixels.min(axis=0))
    np.testing.assert_array_equal(stats.max, pixels.max(axis=0))


def random_images(rng, dtype, channels: int | None, count: int = 6, content: str = "random") -> list:
    """Images of different sizes (HW when ``channels`` is None, else HWC).

    ``content``: ``random`` over the full range (integers) or [0, 1) (floats); ``offset``: a
    large mean with a small spread (the case where E[x²] - E[x]² would lose every digit).
    """
    dtype = np.dtype(dtype)
    images = []
    for _ in range(count):
        shape = (int(rng.integers(1, 40)), int(rng.integers(1, 40)))
        shape += () if channels is None else (channels,)
        if content == "offset" and dtype.kind == "f":
            images.append((1000.0 + rng.random(shape) * 1e-3).astype(dtype))
        elif content == "offset":
            top = np.iinfo(dtype).max
            images.append(rng.integers(top - 3, top, size=shape, dtype=dtype, endpoint=True))
        elif dtype.kind == "u":
            images.append(rng.integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype, endpoint=True))
        else:
            images.append(rng.random(shape).astype(dtype))
    return images


def stats_of(images) -> ChannelStats:
    stats = ChannelStats()
    for image in images:
        stats.update(image)
    return stats


# --------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("content", ["random", "offset"])
@pytest.mark.parametrize("channels", [None, 1, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float16, np.float32, np.float64])
def test_stats_equal_the_float64_reference_over_all_pixels(rng, dtype, channels, content):
    images = random_images(rng, dtype, channels, content=content)
    assert_matches_reference(stats_of(images), images)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_integer_mean_and_std_are_the_exact_values_rounded_once(rng, dtype):
    # Exact sums in Python integers over the raw pixels (not the histogram): the mean and the
    # variance are then rationals, and int / int rounds them once, correctly.
    images = random_images(rng, dtype, 2)
    pixels = np.concatenate([image.reshape(-1, 2) for image in images]).T.tolist()
    stats = stats_of(images)
    for channel, values in enumerate(pixels):
        count, first, second = len(values), sum(values), sum(v * v for v in values)
        assert stats.mean[channel] == first / count
        assert stats.std[channel] == math.sqrt((count * second - first * first) / (count * count))


def test_float_stats_of_many_blocks_equal_the_reference(rng, monkeypatch):
    # Images larger than one float64 block go through the block merge.
    monkeypatch.setattr("norm_transforms.stats._FLOAT_BLOCK_PIXELS", 97)
    images = random_images(rng, np.float32, 3, content="offset")
    assert_matches_reference(stats_of(images), images)


def test_integer_sums_stay_exact_beyond_int64_dot_products(rng, monkeypatch):
    # Force the Python-integer route that counts above 2**31 pixels per channel take.
    monkeypatch.setattr("norm_transforms.stats._INT64_SAFE_COUNT", 0)
    images = random_images(rng, np.uint16, 3)
    assert_matches_reference(stats_of(images), images)


def test_integer_mean_and_std_of_a_huge_count_are_exact():
    # 2**40 pixels of 0 and 2**40 of 65535 per channel: what no float accumulator gets exactly.
    stats = ChannelStats.from_dict(
        {
            "format": "norm_transforms.ChannelStats",
            "version": 1,
            "kind": "uint16",
            "channels": 1,
            "images": 1,
            "count": 2**41,
            "histogram": [{"values": [0, 65535], "counts": [2**40, 2**40]}],
        }
    )
    assert stats.mean.tolist() == [65535 / 2]
    assert stats.std.tolist() == [65535 / 2]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_integer_result_is_bitwise_independent_of_order_batching_and_merging(rng, dtype):
    images = random_images(rng, dtype, 3, count=8)
    forward = stats_of(images)
    backward = stats_of(images[::-1])
    merged = ChannelStats()
    for part in (images[:3], images[3:5], images[5:]):
        merged.merge(stats_of(part[::-1]))
    same_size = [np.ascontiguousarray(image[:1, :1]) for image in images]
    batched = ChannelStats().update(np.stack(same_size[:4])).update(np.stack(same_size[4:]))
    assert forward == backward == merged
    assert batched == stats_of(same_size)


# Float merges round: the order moves the std by a few ulps times mean / std (3e6 for "offset").
@pytest.mark.parametrize(("content", "rtol"), [("random", 1e-14), ("offset", RTOL)])
def test_float_result_is_independent_of_order_and_merging_to_rounding(rng, content, rtol):
    images = random_images(rng, np.float64, 3, count=8, content=content)
    forward = stats_of(images)
    merged = stats_of(images[5:][::-1]).merge(stats_of(images[:5]))
    np.testing.assert_allclose(merged.mean, forward.mean, rtol=1e-14, atol=0)
    np.testing.assert_allclose(merged.std, forward.std, rtol=rtol, atol=0)
    assert merged.count == forward.count


dtypes = st.sampled_from([np.uint8, np.uint16, np.float16, np.float32, np.float64])
channel_counts = st.sampled_from([None, 1, 2, 3, 4, 5])


@settings(max_examples=60, deadline=None)
@given(dtype=dtypes, channels=channel_counts, count=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_any_split_into_updates_and_merges_equals_the_reference(dtype, channels, count, seed):
    rng = np.random.default_rng(seed)
    images = random_images(rng, dtype, channels, count=count)
    cut = int(rng.integers(0, count + 1))
    stats = stats_of(images[:cut]).merge(stats_of(images[cut:]))
    assert_matches_reference(stats, images)
    if np.dtype(dtype).kind == "u":
        assert stats == stats_of(images)


# --------------------------------------------------------------------------- percentiles


@pytest.mark.parametrize("method", ["linear", "inverted_cdf"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_percentiles_equal_numpy_over_all_pixels(rng, dtype, method):
    images = random_images(rng, dtype, 3)
    pixels = pooled_pixels(images)
    q = [0, 0.1, 1, 25, 33.3, 50, 75, 99, 99.9, 100]
    expected = np.percentile(pixels, q, axis=0, method=method)
    stats = stats_of(images)
    assert stats.percentile(q, method=method).shape == (len(q), 3)
    np.testing.assert_allclose(stats.percentile(q, method=method), expected, rtol=1e-12, atol=0)
    one = stats.percentile(37.5, method=method)
    assert one.shape == (3,)
    np.testing.assert_allclose(one, np.percentile(pixels, 37.5, axis=0, method=method), rtol=1e-12, atol=0)


def test_median_equals_numpy_median_for_even_and_odd_counts(rng):
    for count in (1, 2, 3, 4):
        images = random_images(rng, np.uint8, 2, count=count)
        np.testing.assert_array_equal(stats_of(images).median, np.median(pooled_pixels(images), axis=0))


def test_percentile_of_float_data_is_refused(rng):
    stats = stats_of(random_images(rng, np.float32, 3))
    assert stats.histogram is None
    with pytest.raises(ValueError, match="histogram"):
        stats.percentile(50)


@pytest.mark.parametrize("q", [-1, 101, [[50]], math.nan, [50, 100.5]])
def test_percentile_outside_0_100_is_refused(rng, q):
    with pytest.raises(ValueError, match=r"\[0, 100\]"):
        stats_of(random_images(rng, np.uint8, 3)).percentile(q)


# NumPy failed on these with its own message ("could not convert string to float"), or read
# "50" as 50 and True as 1.
@pytest.mark.parametrize("q", ["a", "50", None, True, [50, "x"], [[1], [2, 3]], {50: 1}, object()])
def test_percentile_of_something_not_a_number_is_refused_naming_q(rng, q):
    stats = stats_of(random_images(rng, np.uint8, 3))
    with pytest.raises(
        TypeError, match=r"^q must be a number or a 1-D sequence of numbers in \[0, 100\], got "
    ):
        stats.percentile(q)


def test_percentile_takes_numbers_of_any_kind(rng):
    from fractions import Fraction

    stats = stats_of(random_images(rng, np.uint8, 3))
    expected = stats.percentile([25.0, 50.0])
    for q in ([25, 50], np.array([25, 50], np.uint8), (np.float32(25), Fraction(50)), np.array([25.0, 50.0])):
        np.testing.assert_array_equal(stats.percentile(q), expected)
    np.testing.assert_array_equal(stats.percentile(np.int64(50)), expected[1])


def test_histogram_counts_every_value_of_every_channel(rng):
    images = random_images(rng, np.uint8, 3)
    pixels = pooled_pixels(images).astype(np.int64)
    histogram = stats_of(images).histogram
    assert histogram.shape == (3, 256) and histogram.dtype == np.int64
    for channel in range(3):
        np.testing.assert_array_equal(histogram[channel], np.bincount(pixels[:, channel], minlength=256))
    assert stats_of(random_images(rng, np.uint16, 2)).histogram.shape == (2, 65536)


# --------------------------------------------------------------------------- histogram kernel


@pytest.mark.parametrize("pixels", [1, 2, 3, 1001])
@pytest.mark.parametrize("channels", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_histogram_kernel_adds_the_counts_of_each_interleaved_channel(rng, dtype, channels, pixels):
    # 1-4 channels take the compile-time specializations, 5 the general loop; odd pixel counts
    # leave a tail after the rounds of two pixels.
    from norm_transforms.backends import kernels as _kernels

    values = rng.integers(0, np.iinfo(dtype).max, size=(pixels, channels), dtype=dtype, endpoint=True)
    bins = np.iinfo(dtype).max + 1
    counts = np.zeros((channels, bins), np.int64)
    _kernels.histogram(values, counts)
    _kernels.histogram(values, counts)  # adds, does not overwrite
    for channel in range(channels):
        np.testing.assert_array_equal(counts[channel], 2 * np.bincount(values[:, channel], minlength=bins))


@pytest.mark.parametrize(
    ("source", "counts", "error", "message"),
    [
        (np.zeros(6, np.float32), np.zeros(256, np.int64), TypeError, "source must hold uint8 or uint16"),
        (np.zeros(6, np.uint8), np.zeros(256, np.int32), TypeError, "counts must hold int64"),
        (np.zeros(6, np.uint8), np.zeros(300, np.int64), ValueError, "counts must hold C \\* 256 values"),
        (np.zeros(7, np.uint8), np.zeros(512, np.int64), ValueError, "source of 7 values"),
        (np.zeros(6, np.uint16), np.zeros(256, np.int64), ValueError, "C \\* 65536"),
    ],
)
def test_histogram_kernel_refuses_wrong_buffers(source, counts, error, message):
    from norm_transforms.backends import kernels as _kernels

    with pytest.raises(error, match=message):
        _kernels.histogram(source, counts)
    read_only = np.zeros(256, np.int64)
    read_only.flags.writeable = False
    with pytest.raises((ValueError, BufferError)):
        _kernels.histogram(np.zeros(4, np.uint8), read_only)


# --------------------------------------------------------------------------- Normalize


def normalized_moments(outputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    pixels = pooled_pixels(outputs)
    return pixels.mean(axis=0), pixels.std(axis=0)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_normalize_kwargs_standardize_the_data_in_normalize(rng, dtype):
    pytest.importorskip("albumentations")
    from norm_transforms import Normalize

    images = random_images(rng, dtype, 3)
    kwargs = ChannelStats().update(images[0]).merge(stats_of(images[1:])).to_normalize_kwargs()
    transform = Normalize(**kwargs)
    mean, std = normalized_moments([transform(image=image)["image"] for image in images])
    np.testing.assert_allclose(mean, 0, atol=1e-5)
    np.testing.assert_allclose(std, 1, rtol=1e-5)


def test_normalize_kwargs_standardize_the_data_in_torch_normalize_and_normalize_layer(rng):
    torch = pytest.importorskip("torch")
    from norm_transforms import NormalizeLayer, TorchNormalize

    images = random_images(rng, np.uint8, 3)
    kwargs = stats_of(images).to_normalize_kwargs()
    for transform in (TorchNormalize(**kwargs), NormalizeLayer(**kwargs)):
        outputs = [
            transform(torch.from_numpy(image).permute(2, 0, 1)).permute(1, 2, 0).numpy() for image in images
        ]
        mean, std = normalized_moments(outputs)
        np.testing.assert_allclose(mean, 0, atol=1e-5)
        np.testing.assert_allclose(std, 1, rtol=1e-5)


@pytest.mark.parametrize(("dtype", "scale"), [(np.uint8, 255.0), (np.uint16, 65535.0), (np.float64, 1.0)])
def test_normalize_kwargs_divide_by_the_dtype_full_scale_or_the_given_value(rng, dtype, scale):
    stats = stats_of(random_images(rng, dtype, 3))
    default, given = stats.to_normalize_kwargs(), stats.to_normalize_kwargs(max_pixel_value=2.0)
    assert default["max_pixel_value"] == scale and given["max_pixel_value"] == 2.0
    np.testing.assert_allclose(default["mean"], stats.mean / scale, rtol=1e-15)
    np.testing.assert_allclose(given["std"], stats.std / 2.0, rtol=1e-15)


def test_normalize_kwargs_refuse_a_constant_channel():
    image = np.zeros((4, 4, 3), np.uint8)
    image[..., 0] = np.arange(16).reshape(4, 4)
    with pytest.raises(ValueError, match=r"channel\(s\) \[1, 2\].*std 0"):
        ChannelStats().update(image).to_normalize_kwargs()


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), "255", True])
def test_normalize_kwargs_refuse_a_bad_max_pixel_value(rng, value):
    with pytest.raises(ValueError, match="max_pixel_value"):
        stats_of(random_images(rng, np.uint8, 3)).to_normalize_kwargs(max_pixel_value=value)


# --------------------------------------------------------------------------- JSON


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_json_round_trip_is_exact(rng, tmp_path, dtype):
    stats = stats_of(random_images(rng, dtype, 3))
    stats.save(tmp_path / "stats.json")
    loaded = ChannelStats.load(tmp_path / "stats.json")
    assert loaded == stats
    np.testing.assert_array_equal(loaded.std, stats.std)
    assert loaded.images == stats.images == 6
    state = json.loads((tmp_path / "stats.json").read_text())
    assert state["version"] == 1 and state["kind"] == (
        "float" if dtype == np.float32 else np.dtype(dtype).name
    )


def test_json_round_trip_of_empty_stats():
    assert ChannelStats.from_dict(ChannelStats().to_dict()) == ChannelStats()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "other"}, "not a ChannelStats"),
        ({"version": 99}, "version 99"),
        ({"kind": "int8"}, "'kind'"),
        ({"channels": 0}, "'channels'"),
        ({"count": 1}, "do not all equal 'count'"),
        ({"histogram": [{"values": [300], "counts": [1]}] * 3}, "integer values in"),
    ],
)
def test_bad_json_says_which_field_is_wrong(rng, change, message):
    state = stats_of(random_images(rng, np.uint8, 3)).to_dict() | change
    with pytest.raises(ValueError, match=message):
        ChannelStats.from_dict(state)


FLOAT_STATE = {
    "format": "norm_transforms.ChannelStats",
    "version": 1,
    "kind": "float",
    "channels": 3,
    "images": 2,
    "count": 10,
    "mean": [0.5, 0.25, 0.75],
    "m2": [1.0, 2.0, 0.0],
    "min": [0.0, 0.0, 0.75],
    "max": [1.0, 1.0, 0.75],
}
UINT8_STATE = (
    FLOAT_STATE | {"kind": "uint8", "count": 3} | {"histogram": [{"values": [0, 7], "counts": [1, 2]}] * 3}
)


def test_the_corrupt_state_templates_are_themselves_accepted():
    assert ChannelStats.from_dict(FLOAT_STATE).std.tolist() == [math.sqrt(0.1), math.sqrt(0.2), 0.0]
    assert ChannelStats.from_dict(UINT8_STATE).max.tolist() == [7.0, 7.0, 7.0]


# Each of these was accepted before (a state no counting produces, with results that make no
# sense: a NaN std, min above max), or failed inside NumPy with its own message.
@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"m2": [1.0, -2.0, 0.0]}, ValueError, r"'m2' \(sum of squared deviations.*must be >= 0.*-2\.0"),
        ({"min": [0.0, 2.0, 0.75]}, ValueError, r"'min' must not exceed 'max'.*min \[0\.0, 2\.0"),
        ({"mean": [0.5, math.nan, 0.75]}, ValueError, r"'mean' must be a list of 3 finite numbers.*nan"),
        ({"mean": [math.inf, 0.25, 0.75]}, ValueError, r"'mean' must be .*finite.*inf"),
        ({"min": [0.0, -math.inf, 0.75]}, ValueError, r"'min' must be .*finite.*-inf"),
        ({"max": [1.0, 1.0, math.nan]}, ValueError, r"'max' must be .*finite.*nan"),
        ({"m2": [1.0, math.inf, 0.0]}, ValueError, r"'m2' must be .*finite.*inf"),
        ({"max": [1.0, 10**400, 0.75]}, ValueError, r"'max' must be .*finite"),
        ({"mean": ["a", 0.25, 0.75]}, TypeError, r"'mean' must be a list of 3 finite numbers.*got 'a' in"),
        ({"min": [None, 0.0, 0.75]}, TypeError, r"'min' must be .*numbers.*got None in"),
        ({"m2": [True, 2.0, 0.0]}, TypeError, r"'m2' must be .*got True in"),
        ({"mean": "0.5"}, TypeError, r"'mean' must be a list of 3 finite numbers.*got '0\.5'"),
        ({"mean": [0.5, 0.25]}, ValueError, r"'mean' must be a list of 3 .*got 2: \[0\.5, 0\.25\]"),
        ({"count": 10.0}, TypeError, r"'count' must be a non-negative integer, got 10\.0"),
        ({"images": "2"}, TypeError, r"'images' must be a non-negative integer, got '2'"),
        ({"channels": 3.0}, TypeError, r"'channels' must be a positive integer, got 3\.0"),
        ({"images": 11}, ValueError, r"'images' 11 exceeds 'count' 10 \(pixels per channel\)"),
    ],
)
def test_corrupt_float_state_is_refused_naming_the_field(change, error, message):
    with pytest.raises(error, match=message):
        ChannelStats.from_dict(FLOAT_STATE | change)


def counts_row(values, counts):
    return [{"values": values, "counts": counts}] * 3


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"count": 3.0}, TypeError, r"'count' must be a non-negative integer, got 3\.0"),
        ({"count": True, "histogram": counts_row([0], [1])}, TypeError, "'count' must be .*got True"),
        # 2**62 + 2**62 wraps around int64 to -2**63: the counts must still add up in integers.
        (
            {"count": -(2**63), "histogram": counts_row([0, 1], [2**62, 2**62])},
            ValueError,
            "'count' must be a non-negative integer",
        ),
        (
            {"count": 2**63, "histogram": counts_row([0, 1], [2**62, 2**62])},
            ValueError,
            r"'histogram' of channel 0 counts 9223372036854775808 pixels, more than int64",
        ),
        (
            {"histogram": counts_row([0, 7], ["1", 2])},
            TypeError,
            r"channel 0: 'counts' must hold integers, got '1'",
        ),
        (
            {"histogram": counts_row([0, 7.0], [1, 2])},
            TypeError,
            r"channel 0: 'values' must hold integers, got 7\.0",
        ),
        (
            {"histogram": counts_row([[0], [7, 8]], [1, 2])},
            TypeError,
            r"'values' must hold integers, got \[0\]",
        ),
        ({"histogram": counts_row([0, 7], [1, True])}, TypeError, r"'counts' must hold integers, got True"),
        (
            {"histogram": counts_row([0, 7], "12")},
            TypeError,
            r"'counts' must be a list of integers, got '12'",
        ),
        ({"histogram": counts_row([0, 7], [1])}, ValueError, r"as many 'counts' as 'values', got 1 and 2"),
        ({"histogram": counts_row([0, 7], [4, -1])}, ValueError, r"non-negative counts, got -1"),
        ({"histogram": [[0, 7]] * 3}, TypeError, r"channel 0 must be \{'values'.*got \[0, 7\]"),
        ({"histogram": {"values": [0]}}, TypeError, r"'histogram' must be a list of 3"),
        ({"images": 4}, ValueError, r"'images' 4 exceeds 'count' 3"),
    ],
)
def test_corrupt_histogram_state_is_refused_naming_the_field(change, error, message):
    with pytest.raises(error, match=message):
        ChannelStats.from_dict(UINT8_STATE | change)


def test_corrupt_state_of_empty_stats_is_refused():
    state = ChannelStats().to_dict()
    with pytest.raises(ValueError, match=r"'images' 1 exceeds 'count' 0"):
        ChannelStats.from_dict(state | {"images": 1})


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("images", "error", "message"),
    [
        (np.zeros(5, np.uint8), ValueError, r"got shape \(5,\)"),
        (np.zeros((1, 2, 2, 2, 3), np.uint8), ValueError, "got shape"),
        (np.zeros((0, 4, 3), np.uint8), ValueError, "empty"),
        (np.zeros((4, 4), np.int32), TypeError, "int32 is not supported; accepted: uint8"),
        (np.zeros((4, 4), bool), TypeError, "bool is not supported"),
        ([[1, 2], [3, 4]], TypeError, "got list"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(images, error, message):
    with pytest.raises(error, match=message):
        ChannelStats().update(images)


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        (
            np.zeros((2, 2, 3), np.uint8),
            np.zeros((2, 2, 3), np.uint16),
            "uint8 images with 3 channels before.*uint16",
        ),
        (np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2, 3), np.float32), "uint8 images.*float images"),
        (np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2)), r"3 channels before.*1 channel\b"),
        (np.zeros((2, 2, 3), np.float32), np.zeros((2, 2, 4), np.float32), "3 channels before.*4 channels"),
    ],
)
def test_mixing_kinds_or_channel_counts_says_what_was_seen_before_and_now(first, second, message):
    stats = ChannelStats().update(first)
    with pytest.raises(ValueError, match=message):
        stats.update(second)
    with pytest.raises(ValueError, match=message):
        stats.merge(ChannelStats().update(second))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_is_refused_and_leaves_the_stats_unchanged(rng, bad):
    stats = stats_of(random_images(rng, np.float32, 3))
    before = ChannelStats().merge(stats)
    image = rng.random((4, 5, 3)).astype(np.float32)
    image[1, 2, 2] = bad
    with pytest.raises(ValueError, match=r"NaN or infinite values \(channel\(s\) \[2\]\)"):
        stats.update(image)
    assert stats == before
    with pytest.raises(ValueError, match="NaN"):
        ChannelStats().update(image)


def test_results_of_empty_stats_are_refused():
    stats = ChannelStats()
    assert (stats.kind, stats.channels, stats.count, stats.images, stats.histogram) == (
        None,
        None,
        0,
        0,
        None,
    )
    with pytest.raises(ValueError, match="no pixels counted yet"):
        stats.mean  # noqa: B018


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_input_is_never_modified(rng, dtype):
    base = random_images(rng, dtype, 4, count=1)[0]
    views = [base, base[::-1, ::2], base[..., :3], np.moveaxis(np.moveaxis(base, -1, 0).copy(), 0, -1)]
    read_only = base.copy()
    read_only.flags.writeable = False
    for image in [*views, read_only]:
        copy = image.copy()
        stats = ChannelStats().update(image)
        np.testing.assert_array_equal(image, copy)
        assert_matches_reference(stats, [image])


# --------------------------------------------------------------------------- threads

THREADS, UPDATES, ROUNDS = 8, 50, 5


def count_in_threads(work, parts) -> None:
    """``work(part)`` in one thread per part, all released at once; re-raises their errors."""
    barrier, errors = threading.Barrier(len(parts)), []

    def run(part):
        try:
            barrier.wait()
            work(part)
        except BaseException as error:  # re-raised below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(part,)) for part in parts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_updates_from_threads_lose_nothing(rng, dtype):
    # Before the lock: lost counts (two threads adding to one histogram bin at once, the kernel
    # runs without the GIL), a TypeError from the kernel, or a whole thread's first images lost
    # to a second _start. Races show up by chance: several rounds.
    parts = [random_images(rng, dtype, 3, count=UPDATES) for _ in range(THREADS)]
    sequential = ChannelStats()
    for part in parts:  # floats: the same merges as the threads', in one order
        sequential.merge(stats_of(part))
    for _ in range(ROUNDS):
        shared = ChannelStats()
        count_in_threads(lambda part, shared=shared: [shared.update(image) for image in part], parts)
        assert (shared.images, shared.count) == (THREADS * UPDATES, sequential.count)
        if np.dtype(dtype).kind == "u":
            assert shared == sequential  # bit for bit
        else:
            np.testing.assert_allclose(shared.mean, sequential.mean, rtol=1e-12, atol=0)
            np.testing.assert_allclose(shared.std, sequential.std, rtol=1e-12, atol=0)
            np.testing.assert_array_equal(shared.min, sequential.min)
            np.testing.assert_array_equal(shared.max, sequential.max)


def test_merges_and_results_from_threads_while_others_update(rng):
    parts = [random_images(rng, np.uint8, 3, count=UPDATES) for _ in range(THREADS)]
    expected = stats_of([image for part in parts for image in part])
    for _ in range(ROUNDS):
        shared = ChannelStats()

        def work(part, shared=shared):
            seen = 0
            for index, image in enumerate(part):
                if index % 2:  # half through merges, half through updates
                    shared.merge(ChannelStats().update(image))
                else:
                    shared.update(image)
                state = shared.to_dict()  # one consistent state, taken while the others count
                assert sum(state["histogram"][0]["counts"]) == state["count"] >= seen
                seen = state["count"]
                shared.percentile([1, 50]), shared.std, repr(shared)

        count_in_threads(work, parts)
        assert shared == expected


# --------------------------------------------------------------------------- files


def write_image(path, rgb: np.ndarray) -> None:
    """Write an RGB(A) or gray image the way other tools would (OpenCV stores BGR(A))."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conversions = {3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGRA}
    bgr = cv2.cvtColor(rgb, conversions[rgb.shape[2]]) if rgb.ndim == 3 else rgb
    assert cv2.imwrite(str(path), bgr)


def read_rgb(path) -> np.ndarray:
    """The reference decode: cv2.imread + cvtColor, as a user would."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    conversions = {3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGBA}
    return cv2.cvtColor(image, conversions[image.shape[2]]) if image.ndim == 3 else image


def smooth_rgb(rng, dtype=np.uint8, size=(24, 32), channels=3) -> np.ndarray:
    top = np.iinfo(dtype).max
    coarse = rng.random((4, 4, channels)) * top
    image = cv2.resize(coarse, size[::-1], interpolation=cv2.INTER_LINEAR)
    return np.clip(image + rng.normal(0, top / 50, image.shape), 0, top).astype(dtype)


@pytest.fixture(scope="session")
def folder(tmp_path_factory) -> tuple:
    """A nested folder of png, jpg, JPEG, bmp, webp and tif files (RGB, different sizes) and a
    file that is no image; returns the folder and the files in sorted order."""
    rng = np.random.default_rng(7)
    root = tmp_path_factory.mktemp("images")
    names = ["a.png", "b.jpg", "sub/c.JPEG", "sub/deeper/d.bmp", "sub/e.webp", "f.tif", "sub/g.PNG"]
    for index, name in enumerate(names):
        write_image(root / name, smooth_rgb(rng, size=(16 + index, 20 + 2 * index)))
    (root / "notes.txt").write_text("not an image")
    return root, sorted(str(root / name) for name in names)


def test_folder_stats_equal_the_reference_of_every_file_decoded_as_rgb(folder):
    root, files = folder
    stats = compute_stats(root, progress=False)
    assert stats.images == len(files)
    assert_matches_reference(stats, [read_rgb(path) for path in files])


def test_worker_count_and_chunk_size_do_not_change_a_bit(folder):
    root, _ = folder
    in_process = compute_stats(root, progress=False)
    assert compute_stats(root, num_workers=2, chunksize=2, progress=False) == in_process
    assert compute_stats(root, num_workers=1, chunksize=5, progress=False) == in_process


def test_a_list_of_files_and_folders_is_read_like_the_folder(folder):
    root, files = folder
    sub = os.path.dirname(files[3])
    in_sub = [path for path in files if path.startswith(sub + os.sep)]
    assert compute_stats([*files[:3], sub], progress=False).images == 3 + len(in_sub)
    assert compute_stats(files, progress=False) == compute_stats(root, progress=False)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_files_keep_16_bit_values(rng, tmp_path, suffix):
    images = [smooth_rgb(rng, np.uint16, size=(10 + i, 12)) for i in range(3)]
    for index, image in enumerate(images):
        write_image(tmp_path / f"{index}{suffix}", image)
    stats = compute_stats(tmp_path, progress=False)
    assert stats.kind == "uint16" and stats.histogram.shape == (3, 65536)
    assert_matches_reference(stats, images)


def test_grayscale_files_give_one_channel(rng, tmp_path):
    images = [smooth_rgb(rng)[..., 0] for _ in range(3)]
    for index, image in enumerate(images):
        write_image(tmp_path / f"{index}.png", image)
    stats = compute_stats(tmp_path, progress=False)
    assert stats.channels == 1
    assert_matches_reference(stats, images)


def test_rgba_files_give_rgba_order(rng, tmp_path):
    images = [smooth_rgb(rng, channels=4) for _ in range(2)]
    images[0][..., 3] = 255  # an alpha channel that differs from every colour
    for index, image in enumerate(images):
        write_image(tmp_path / f"{index}.png", image)
    assert_matches_reference(compute_stats(tmp_path, progress=False), images)


def test_unreadable_file_is_an_error_naming_it(folder, tmp_path):
    _, files = folder
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    with pytest.raises(OSError, match=r"cannot read 1 file: .*broken\.png \(OpenCV cannot read it\)"):
        compute_stats([*files, str(broken)], progress=False)
    with pytest.raises(OSError, match=r"broken\.png"):
        compute_stats([*files, str(broken)], num_workers=2, chunksize=3, progress=False)


def test_skip_unreadable_warns_naming_the_file_and_counts_the_rest(folder, tmp_path):
    _, files = folder
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 truncated")
    with pytest.warns(UserWarning, match=r"skipped 1 file: .*broken\.jpg"):
        stats = compute_stats([str(broken), *files], skip_unreadable=True, progress=False)
    assert stats == compute_stats(files, progress=False)


def test_mixed_channel_counts_are_an_error_naming_a_file_of_each(rng, tmp_path):
    write_image(tmp_path / "color.png", smooth_rgb(rng))
    write_image(tmp_path / "gray.png", smooth_rgb(rng)[..., 0])
    with pytest.raises(ValueError, match=r"3 channels, e\.g\. .*color\.png; .*1 channel, e\.g\. .*gray\.png"):
        compute_stats(tmp_path, progress=False)


@pytest.mark.skipif(not hasattr(os, "symlink") or sys.platform == "win32", reason="needs symbolic links")
def test_links_to_folders_are_followed_and_each_folder_read_once(rng, tmp_path):
    image = smooth_rgb(rng)
    write_image(tmp_path / "real" / "a.png", image)
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    (tmp_path / "real" / "cycle").symlink_to(tmp_path, target_is_directory=True)
    assert compute_stats(tmp_path, progress=False) == stats_of([image])
    assert compute_stats(tmp_path / "link", progress=False) == stats_of([image])


def test_missing_path_and_empty_folder_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        compute_stats(tmp_path / "missing", progress=False)
    with pytest.raises(ValueError, match="no image files"):
        compute_stats(tmp_path, progress=False)


@pytest.mark.parametrize("workers", [-1, 1.5, True])
def test_bad_num_workers_is_refused(folder, workers):
    with pytest.raises(ValueError, match="num_workers"):
        compute_stats(folder[0], num_workers=workers)


def test_progress_bar_counts_the_files(folder, capsys):
    root, files = folder
    compute_stats(root, progress=True)
    assert f"{len(files)}/{len(files)}" in capsys.readouterr().err


# --------------------------------------------------------------------------- other sources


def test_iterable_of_arrays_and_of_pairs(rng):
    images = random_images(rng, np.uint8, 3)
    expected = stats_of(images)
    assert compute_stats(iter(images), progress=False) == expected
    assert compute_stats([(image, 0) for image in images], progress=False) == expected
    assert compute_stats(({"image": image} for image in images), progress=False) == expected


def test_one_array_or_tensor_is_an_image_or_a_batch(rng):
    batch = rng.integers(0, 256, (5, 4, 6, 3), dtype=np.uint8)
    assert compute_stats(batch, progress=False) == stats_of(list(batch))
    assert compute_stats(batch[0], progress=False) == stats_of([batch[0]])


def test_iterable_with_a_bad_item_names_its_index(rng):
    images = [*random_images(rng, np.uint8, 3, count=2), "not an image"]
    with pytest.raises(OSError, match="not an image"):
        compute_stats(iter(images), progress=False)
    with pytest.raises(ValueError, match=r"item 1: .*3 channels before.*1 channel"):
        compute_stats(iter([images[0], images[0][..., 0]]), progress=False)
    with pytest.raises(TypeError, match="item 0: expected an image"):
        compute_stats([3.0], progress=False)


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def test_tensors_chw_nchw_hw_and_channels_last(rng, torch):
    images = list(rng.integers(0, 256, (4, 8, 9, 3), dtype=np.uint8))
    planar = torch.stack([torch.from_numpy(image).permute(2, 0, 1) for image in images]).contiguous()
    expected = stats_of(images)
    assert ChannelStats().update(planar) == expected
    assert ChannelStats().update(planar.contiguous(memory_format=torch.channels_last)) == expected
    assert stats_of(list(planar)) == expected
    gray = torch.from_numpy(images[0][..., 0].copy())
    assert ChannelStats().update(gray) == ChannelStats().update(images[0][..., 0])


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32", "uint16"])
def test_tensor_dtypes(rng, torch, name):
    dtype = getattr(torch, name)
    tensor = torch.from_numpy(rng.random((2, 3, 5, 6)).astype(np.float32) * 1000).to(dtype)
    pixels = tensor.to(torch.float64).permute(0, 2, 3, 1).numpy()
    assert_matches_reference(ChannelStats().update(tensor), [pixels])


def test_tensor_of_unsupported_shape_or_dtype_is_refused(torch):
    with pytest.raises(ValueError, match=r"\(N, C, H, W\); got shape \(1, 1, 1, 2, 2\)"):
        ChannelStats().update(torch.zeros(1, 1, 1, 2, 2))
    with pytest.raises(TypeError, match="int32 is not supported"):
        ChannelStats().update(torch.zeros(3, 2, 2, dtype=torch.int32))


class Pairs(TorchDataset):
    """CHW tensors of HWC arrays, with a label or alone. At module level: compute_stats' DataLoader
    workers (forkserver) receive the Dataset pickled, and import its class by name."""

    def __init__(self, images: list[np.ndarray], labelled: bool = True):
        self.images, self.labelled = images, labelled

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        import torch

        tensor = torch.from_numpy(self.images[index]).permute(2, 0, 1)
        return (tensor, index % 2) if self.labelled else tensor


def test_dataset_and_dataloader_of_image_label_pairs(rng, torch):
    images = list(rng.integers(0, 256, (10, 6, 7, 3), dtype=np.uint8))
    expected = stats_of(images)
    dataset = Pairs(images)
    assert compute_stats(dataset, progress=False) == expected
    assert compute_stats(torch.utils.data.DataLoader(dataset, batch_size=4), progress=False) == expected
    assert compute_stats(Pairs(images, labelled=False), num_workers=2, progress=False) == expected


def test_dataset_that_workers_cannot_unpickle_is_a_clear_error(torch, monkeypatch):
    class Local(torch.utils.data.Dataset):  # inside a function: pickle cannot find it by name
        def __len__(self):
            return 1

        def __getitem__(self, index):
            return np.zeros((2, 2, 3), np.uint8)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's own warning about the pickling error
        with pytest.raises(TypeError, match=r"num_workers=2 .* Local cannot be pickled .*num_workers=0"):
            compute_stats(Local(), num_workers=2, progress=False)
    assert compute_stats(Local(), progress=False).count == 4  # in this process: no pickling
    # Defined in a notebook or `python -c`: it pickles, but the workers could not import it.
    monkeypatch.setattr(Local, "__module__", "__main__")
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    with pytest.raises(TypeError, match=r"Local is defined in an interactive session .*\.py file"):
        compute_stats(Local(), num_workers=2, progress=False)


def test_dataset_of_pil_images(rng):
    pil = pytest.importorskip("PIL.Image")
    images = random_images(rng, np.uint8, 3)
    assert compute_stats([pil.fromarray(image) for image in images], progress=False) == stats_of(images)


def test_pickled_stats_are_equal_and_have_their_own_lock(rng):
    for dtype in (np.uint8, np.float32):
        stats = stats_of(random_images(rng, dtype, 3))
        image = random_images(rng, dtype, 3, count=1)[0]
        for copied in (pickle.loads(pickle.dumps(stats)), deepcopy(stats)):
            assert copied == stats and copied._lock is not stats._lock
            assert copied.update(image) == deepcopy(stats).update(image)  # its lock works


# --------------------------------------------------------------------------- worker processes


def test_workers_never_start_with_fork():
    from norm_transforms.stats import _worker_context

    assert _worker_context().get_start_method() in ("forkserver", "spawn")


# The scenario that hung the test suite: OpenCV's thread pool (and torch's) ran in this process,
# then compute_stats forked its workers, which blocked for ever in cv2.setNumThreads(1) on a
# mutex held by a pool thread that the child does not have; a Dataset that pins OpenCV's
# threads in its DataLoader workers blocked the same way.
HANG_SCENARIO = """
import json, sys
import cv2, numpy as np, torch
import norm_transforms.stats
from norm_transforms import compute_stats
from decoding import Decoding

if sys.argv[2] == "fork":  # the old start method, to see this test fail
    import multiprocessing
    norm_transforms.stats._worker_context = lambda: multiprocessing.get_context("fork")
cv2.resize(np.zeros((2000, 2000, 3), np.uint8), (1000, 1000))  # OpenCV's thread pool ran
torch.ones(512, 512) @ torch.ones(512, 512)  # and torch's
folder = sys.argv[1]
results = [
    compute_stats(folder, progress=False),
    compute_stats(folder, num_workers=2, chunksize=1, progress=False),
    compute_stats(Decoding(folder), num_workers=2, progress=False),
]
print(json.dumps([stats.to_dict() for stats in results]))
"""

DECODING_DATASET = """
import os
import cv2
from torch.utils.data import Dataset


class Decoding(Dataset):
    # Decodes in the DataLoader worker and pins OpenCV to one thread there, as training code does.
    def __init__(self, folder):
        self.paths = sorted(os.path.join(folder, name) for name in os.listdir(folder))

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        cv2.setNumThreads(1)
        return cv2.cvtColor(cv2.imread(self.paths[index]), cv2.COLOR_BGR2RGB)
"""


def run_to_deadline(args: list[str], seconds: float, **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run, except that on timeout the whole process group dies: the workers of a
    hung pool too, which would otherwise outlive the test, blocked for ever."""
    posix = sys.platform != "win32"
    with subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=posix, **kwargs
    ) as process:
        try:
            out, err = process.communicate(timeout=seconds)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL) if posix else process.kill()
            process.communicate()
            pytest.fail(f"{args[:2]} did not finish within {seconds} s: hung")
    return subprocess.CompletedProcess(args, process.returncode, out, err)


def test_workers_do_not_hang_after_opencv_and_torch_ran_threads(rng, tmp_path, torch):
    folder = tmp_path / "images"
    images = [smooth_rgb(rng, size=(20 + index, 24)) for index in range(5)]
    for index, image in enumerate(images):
        write_image(folder / f"{index}.png", image)
    (tmp_path / "decoding.py").write_text(DECODING_DATASET)
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    # About 5 s here (torch imported in the script and in 2 DataLoader workers); hung, never.
    completed = run_to_deadline(
        [sys.executable, "-c", HANG_SCENARIO, str(folder), "default"], 60, env=env, cwd=tmp_path
    )
    assert completed.returncode == 0, completed.stderr
    in_process, in_workers, in_dataloader = (
        ChannelStats.from_dict(state) for state in json.loads(completed.stdout)
    )
    assert in_process == in_workers == in_dataloader == stats_of(images)


def test_importing_and_counting_arrays_does_not_import_torch():
    code = (
        "import sys, numpy as np, norm_transforms as nt; "
        "nt.compute_stats([np.zeros((2, 2, 3), np.uint8)], progress=False); "
        "nt.ChannelStats().update(np.zeros((2, 2), np.float32)); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- torch.distributed


def distributed_rank(rank: int, world_size: int, init_method: str, out_dir: str) -> None:
    """One rank: different data on each, then all_reduce; writes what it ended with."""
    from torch import distributed

    distributed.init_process_group("gloo", init_method=init_method, rank=rank, world_size=world_size)
    rng = np.random.default_rng(100 + rank)
    integer = stats_of(random_images(rng, np.uint8, 3, count=2 + rank)).all_reduce()
    floating = stats_of(random_images(rng, np.float64, 2, count=3 - rank)).all_reduce()
    only_rank_0 = (
        stats_of(random_images(rng, np.uint16, 1, count=2)) if rank == 0 else ChannelStats()
    ).all_reduce()
    with open(os.path.join(out_dir, f"{rank}.json"), "w") as file:
        json.dump([stats.to_dict() for stats in (integer, floating, only_rank_0)], file)
    distributed.destroy_process_group()


def test_all_reduce_on_gloo_gives_every_rank_the_stats_of_all_data(torch):
    import torch.multiprocessing as mp

    # fork starts in ~0.2 s where spawn re-imports torch (~4 s); spawn where fork is missing.
    start = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with tempfile.TemporaryDirectory() as out_dir:
        init = "file://" + os.path.join(out_dir, "rendezvous")
        context = mp.start_processes(
            distributed_rank, args=(2, init, out_dir), nprocs=2, start_method=start, join=False
        )
        for _ in range(120):  # at most a minute, never a hung test suite
            if context.join(timeout=0.5):
                break
        else:
            for process in context.processes:
                process.kill()
            pytest.fail("the gloo ranks did not finish within a minute")
        results = [json.loads(open(os.path.join(out_dir, f"{rank}.json")).read()) for rank in range(2)]
    assert results[0] == results[1]  # the same bits on both ranks, float moments included
    integer, floating, only_rank_0 = (ChannelStats.from_dict(state) for state in results[0])
    expected_images = [
        random_images(np.random.default_rng(100 + rank), np.uint8, 3, count=2 + rank) for rank in range(2)
    ]
    assert integer == stats_of(expected_images[0] + expected_images[1])
    floats = []
    for rank in range(2):
        rng = np.random.default_rng(100 + rank)
        random_images(rng, np.uint8, 3, count=2 + rank)
        floats += random_images(rng, np.float64, 2, count=3 - rank)
    assert_matches_reference(floating, floats)
    rng = np.random.default_rng(100)
    random_images(rng, np.uint8, 3, count=2)
    random_images(rng, np.float64, 2, count=3)
    assert only_rank_0 == stats_of(random_images(rng, np.uint16, 1, count=2))


# --------------------------------------------------------------------------- the command


def test_stats_command_prints_the_table_and_paste_ready_lines(folder, tmp_path, capsys):
    root, files = folder
    out = tmp_path / "stats.json"
    assert main(["stats", str(root), "--json", str(out), "--no-progress", "--workers", "2"]) == 0
    printed = capsys.readouterr().out
    stats = compute_stats(root, progress=False)
    assert ChannelStats.load(out) == stats
    assert f"{len(files)} images (uint8, 3 channels), {stats.count} pixels per channel" in printed
    red_row = f"| R | {stats.count} | {stats.mean[0]:.6g} | {stats.std[0]:.6g} | "
    assert red_row in printed and f"| {stats.median[0]:.6g} |" in printed
    kwargs = stats.to_normalize_kwargs()
    arguments = "mean=({}), std=({}), max_pixel_value=255.0".format(
        *(", ".join(f"{v:.6g}" for v in kwargs[key]) for key in ("mean", "std"))
    )
    for name in ("A.Normalize", "TorchNormalize", "NormalizeLayer"):
        assert f"{name}({arguments})" in printed


def test_stats_command_max_pixel_value(folder, capsys):
    root, _ = folder
    main(["stats", str(root), "--no-progress", "--max-pixel-value", "1"])
    mean = compute_stats(root, progress=False).mean
    assert f"A.Normalize(mean=({', '.join(f'{v:.6g}' for v in mean)})" in capsys.readouterr().out


def test_stats_command_reports_unreadable_files_and_skips_them_on_request(folder, tmp_path, capsys):
    root, files = folder
    broken = tmp_path / "broken.webp"
    broken.write_bytes(b"RIFF")
    with pytest.raises(SystemExit) as exit_info:
        main(["stats", str(root), str(broken), "--no-progress"])
    assert exit_info.value.code == 1
    assert "broken.webp" in capsys.readouterr().err
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["stats", str(root), str(broken), "--no-progress", "--skip-unreadable"]) == 0
    assert any("broken.webp" in str(warning.message) for warning in caught)
    assert f"{len(files)} images" in capsys.readouterr().out
