"""The JSON form of ``ChannelStats`` (norm_transforms/stats/serialization.py and the checked
reads of checks.py): exact round trips, and corrupt states refused with an error that names
the field, what it holds and what is accepted.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from test_stats import random_images, stats_of

from norm_transforms import ChannelStats

# --------------------------------------------------------------------------- JSON


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.float32])
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


# int16 histograms hold the pixel values themselves (negative ones too), not the bins.
INT16_STATE = UINT8_STATE | {"kind": "int16", "histogram": [{"values": [-1024, 7], "counts": [1, 2]}] * 3}
# int32: exact integer sums. Channel 0 holds -2, 1, 1; channel 1 three times 5; channel 2 three
# times the lowest int32.
INT32_STATE = {
    "format": "norm_transforms.ChannelStats",
    "version": 1,
    "kind": "int32",
    "channels": 3,
    "images": 1,
    "count": 3,
    "sum": [0, 15, -3 * 2**31],
    "sum_of_squares": [6, 75, 3 * 2**62],
    "min": [-2, 5, -(2**31)],
    "max": [1, 5, -(2**31)],
}


def test_the_corrupt_state_templates_are_themselves_accepted():
    assert ChannelStats.from_dict(FLOAT_STATE).std.tolist() == [math.sqrt(0.1), math.sqrt(0.2), 0.0]
    assert ChannelStats.from_dict(UINT8_STATE).max.tolist() == [7.0, 7.0, 7.0]
    int16 = ChannelStats.from_dict(INT16_STATE)
    assert int16.min.tolist() == [-1024.0] * 3 and int16.median.tolist() == [7.0] * 3
    int32 = ChannelStats.from_dict(INT32_STATE)
    assert int32.mean.tolist() == [0.0, 5.0, -(2.0**31)] and int32.std.tolist() == [math.sqrt(2), 0.0, 0.0]
    assert ChannelStats.from_dict(json.loads(json.dumps(int32.to_dict()))) == int32


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


# --------------------------------------------------------------------------- nonzero=True


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.float32])
def test_nonzero_json_round_trip_is_exact_with_an_empty_channel(rng, tmp_path, dtype):
    images = random_images(rng, dtype, 3)
    images[0][rng.random(images[0].shape) < 0.3] = 0
    for image in images:
        image[..., 2] = 0  # no non-zero value: null in the summary, not NaN (not JSON)
    stats = stats_of(images, nonzero=True)
    stats.save(tmp_path / "stats.json")
    text = (tmp_path / "stats.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    state = json.loads(text)
    assert state["nonzero"] is True
    assert state["summary"]["counts"] == stats.counts.tolist() and state["summary"]["mean"][2] is None
    loaded = ChannelStats.load(tmp_path / "stats.json")
    assert loaded == stats and loaded.nonzero
    np.testing.assert_array_equal(loaded.std, stats.std)
    np.testing.assert_array_equal(loaded.counts, stats.counts)


def test_plain_json_has_no_nonzero_field_and_empty_nonzero_stats_round_trip():
    assert "nonzero" not in ChannelStats().to_dict()
    empty = ChannelStats.from_dict(ChannelStats(nonzero=True).to_dict())
    assert empty.nonzero and empty == ChannelStats(nonzero=True)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"nonzero": "yes"}, TypeError, "'nonzero' must be true or false"),
        ({"nonzero_counts": [1, 2]}, ValueError, "'nonzero_counts' must hold 3 integers"),
        ({"nonzero_counts": [1, 2, 10**9]}, ValueError, r"in \[0, count="),
        ({"nonzero_counts": [1, 2, "3"]}, TypeError, "'nonzero_counts'"),
        ({"m2": [-1.0, 0.0, 0.0]}, ValueError, "'m2' must be >= 0"),
    ],
)
def test_corrupt_nonzero_float_state_is_refused_naming_the_field(rng, change, error, message):
    images = random_images(rng, np.float32, 3)
    state = stats_of(images, nonzero=True).to_dict() | change
    with pytest.raises(error, match=message):
        ChannelStats.from_dict(state)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"histogram": [{"values": [-40000], "counts": [3]}] * 3},
            r"integer values in \[-32768, 32768\), got -40000",
        ),
        (
            {"histogram": [{"values": [32768], "counts": [3]}] * 3},
            r"integer values in \[-32768, 32768\), got 32768",
        ),
    ],
)
def test_corrupt_int16_state_is_refused_naming_the_field(change, message):
    with pytest.raises(ValueError, match=message):
        ChannelStats.from_dict(INT16_STATE | change)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"sum": [0, 15]}, ValueError, r"'sum' must hold one integer per channel \(3\), got 2"),
        ({"sum": [0.0, 15, 0]}, TypeError, r"'sum' must hold integers, got 0\.0"),
        ({"sum_of_squares": None}, TypeError, r"'sum_of_squares' must be a list of integers, got None"),
        ({"min": [2, 5, 0], "max": [1, 5, 0]}, ValueError, r"min <= max .* min 2 and max 1 in channel 0"),
        ({"max": [1, 5, 2**31]}, ValueError, r"int32 values .* max 2147483648 in channel 2"),
        ({"sum": [4, 15, -3 * 2**31]}, ValueError, r"'sum' of channel 0 \(4\) must lie between count \* min"),
        ({"sum_of_squares": [6, 74, 3 * 2**62]}, ValueError, r"'sum_of_squares' of channel 1 is too small"),
    ],
)
def test_corrupt_int32_state_is_refused_naming_the_field(change, error, message):
    with pytest.raises(error, match=message):
        ChannelStats.from_dict(INT32_STATE | change)
