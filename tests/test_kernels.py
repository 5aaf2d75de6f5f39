"""The C kernels of the NumPy backend, called directly: values, lane tails, NaN/inf, bad calls.

The backend tests reach them through ``normalize``; these pin the kernel contract itself
(every dtype, channel counts around the lane period, lengths that leave a tail) so a bug
shows up here with a small input rather than as a parity failure.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from norm_transforms.backends import _kernels

SOURCE_DTYPES = [np.uint8, np.uint16, np.float16, np.float32, np.float64]
# 1 and 3: the common cases; 5 and 37: lane periods that are not powers of two; 1500: past the
# padded-lane limit, where a lane round is one pixel.
CHANNELS = [1, 3, 5, 37, 1500]
TWO_ULPS = 2.0**-23
SMALLEST_SUBNORMAL = 2.0**-149  # the absolute rounding allowance near zero


def _source(rng, dtype, values: int) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind == "u":
        return rng.integers(0, np.iinfo(dtype).max, size=values, endpoint=True).astype(dtype)
    return (rng.standard_normal(values) * 50).astype(dtype)


def _affine_reference(source, scale, offset, low=-np.inf, high=np.inf) -> tuple[np.ndarray, np.ndarray]:
    """float64 value of float32(x) * scale + offset, and the float32 rounding allowance."""
    channels = scale.size
    values = source.astype(np.float32).astype(np.float64).reshape(-1, channels)
    product = values * scale.astype(np.float64)
    exact = np.clip(product + offset.astype(np.float64), low, high)
    allowance = TWO_ULPS * (np.abs(product) + np.abs(offset)) + SMALLEST_SUBNORMAL
    return exact.ravel(), allowance.ravel()


def _constants(rng, channels):
    scale = rng.uniform(0.001, 3.0, channels).astype(np.float32)
    offset = rng.uniform(-5.0, 5.0, channels).astype(np.float32)
    return scale, offset


@pytest.mark.parametrize("pixels", [1, 7, 97, 1001])
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("dtype", SOURCE_DTYPES, ids=lambda d: np.dtype(d).name)
def test_affine_matches_float64_within_float32_rounding(rng, dtype, channels, pixels):
    source = _source(rng, dtype, pixels * channels)
    scale, offset = _constants(rng, channels)
    out = np.full(source.size, np.nan, dtype=np.float32)
    _kernels.affine(source, out, scale, offset, -np.inf, np.inf)
    expected, allowance = _affine_reference(source, scale, offset)
    assert np.all(np.abs(out - expected) <= allowance)


@pytest.mark.parametrize("dtype", SOURCE_DTYPES, ids=lambda d: np.dtype(d).name)
def test_affine_clips_to_bounds(rng, dtype):
    source = _source(rng, dtype, 3 * 500)
    scale, offset = _constants(rng, 3)
    out = np.empty(source.size, dtype=np.float32)
    _kernels.affine(source, out, scale, offset, 0.0, 1.0)
    expected, allowance = _affine_reference(source, scale, offset, 0.0, 1.0)
    assert out.min() >= 0.0
    assert out.max() <= 1.0
    assert np.all(np.abs(out - expected) <= allowance)


def test_affine_keeps_nan_and_clips_infinity():
    source = np.array([np.nan, np.inf, -np.inf, 0.5], dtype=np.float32)
    one, zero = np.ones(1, dtype=np.float32), np.zeros(1, dtype=np.float32)
    unclipped, clipped = np.empty(4, dtype=np.float32), np.empty(4, dtype=np.float32)
    _kernels.affine(source, unclipped, one, zero, -np.inf, np.inf)
    _kernels.affine(source, clipped, one, zero, 0.0, 1.0)
    np.testing.assert_array_equal(unclipped, source)
    np.testing.assert_array_equal(clipped, [np.nan, 1.0, 0.0, 0.5])


def test_affine_decodes_every_float16_exactly():
    halves = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    out = np.empty(halves.size, dtype=np.float32)
    # offset -0.0 keeps the sign of zero: -0.0 * 1 + -0.0 = -0.0
    _kernels.affine(halves, out, np.ones(1, np.float32), np.full(1, -0.0, np.float32), -np.inf, np.inf)
    expected = halves.astype(np.float32)
    nan = np.isnan(expected)
    assert np.array_equal(np.isnan(out), nan)
    assert np.array_equal(out[~nan].view(np.uint32), expected[~nan].view(np.uint32))  # -0.0 included


def test_affine_in_place_on_float32_equals_out_of_place(rng):
    source = _source(rng, np.float32, 3 * 333)
    scale, offset = _constants(rng, 3)
    expected = np.empty_like(source)
    _kernels.affine(source, expected, scale, offset, -1.0, 1.0)
    _kernels.affine(source, source, scale, offset, -1.0, 1.0)
    np.testing.assert_array_equal(source, expected)


@pytest.mark.parametrize("pixels", [1, 5, 200, 3001])
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("dtype", SOURCE_DTYPES, ids=lambda d: np.dtype(d).name)
def test_min_max_per_channel_matches_numpy(rng, dtype, channels, pixels):
    source = _source(rng, dtype, pixels * channels)
    low, high = np.empty(channels), np.empty(channels)
    _kernels.min_max(source, low, high)
    by_channel = source.reshape(-1, channels)
    np.testing.assert_array_equal(low, by_channel.min(axis=0).astype(np.float64))
    np.testing.assert_array_equal(high, by_channel.max(axis=0).astype(np.float64))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_min_max_skips_nan_and_keeps_infinity(dtype):
    # channel 0: values and NaN; channel 1: only NaN; channel 2: infinities
    source = np.array([1.0, np.nan, np.inf, np.nan, np.nan, -np.inf, -2.0, np.nan, 3.0] * 50, dtype=dtype)
    low, high = np.empty(3), np.empty(3)
    _kernels.min_max(source, low, high)
    np.testing.assert_array_equal(low, [-2.0, np.nan, -np.inf])
    np.testing.assert_array_equal(high, [1.0, np.nan, np.inf])


@pytest.mark.parametrize("block", [1, 2, 31, 97, 1000])
@pytest.mark.parametrize("entries", [1, 3, 192])
@pytest.mark.parametrize("dtype", SOURCE_DTYPES, ids=lambda d: np.dtype(d).name)
def test_blocks_take_one_table_entry_each(rng, dtype, entries, block):
    # (N, C, H, W) planes: value i belongs to entry (i // block) % entries; 2 rounds of entries.
    source = _source(rng, dtype, 2 * entries * block)
    scale, offset = _constants(rng, entries)
    out = np.full(source.size, np.nan, dtype=np.float32)
    _kernels.affine(source, out, scale, offset, -np.inf, np.inf, block)
    # The reference: the tables written out per value (one "channel" per value).
    per_value = np.tile(np.repeat(np.arange(entries), block), 2)
    expected, allowance = _affine_reference(source, scale[per_value], offset[per_value])
    assert np.all(np.abs(out - expected) <= allowance)
    low, high = np.empty(entries), np.empty(entries)
    _kernels.min_max(source, low, high, block)
    by_entry = source.reshape(2, entries, block).transpose(1, 0, 2).reshape(entries, -1)
    np.testing.assert_array_equal(low, by_entry.min(axis=1).astype(np.float64))
    np.testing.assert_array_equal(high, by_entry.max(axis=1).astype(np.float64))


@pytest.mark.parametrize("values", [1, 130, 1001])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_one_channel_min_max_skips_nan(rng, dtype, values):
    # One channel has its own register-resident loop; NaN first (where cv2.minMaxLoc fails), and
    # only NaN.
    source = _source(rng, dtype, values)
    source[:: max(values // 7, 1)] = np.nan
    source[0] = np.nan
    low, high = np.empty(1), np.empty(1)
    _kernels.min_max(source, low, high)
    expected = (np.fmin.reduce(source), np.fmax.reduce(source))
    np.testing.assert_array_equal([low[0], high[0]], np.array(expected, dtype=np.float64))
    _kernels.min_max(np.full(values, np.nan, dtype), low, high)
    assert np.isnan(low[0]) and np.isnan(high[0])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_min_max_blocks_skip_nan(dtype):
    # entry 0: one block of only NaN, one with values; entry 1: only NaN blocks; entry 2: infinities
    blocks = [
        [np.nan] * 4,
        [np.nan] * 4,
        [1.0, np.inf, 2.0, np.nan],
        [3.0, np.nan, -1.0, np.nan],
        [np.nan] * 4,
        [np.nan, -np.inf, np.nan, np.nan],
    ]
    low, high = np.empty(3), np.empty(3)
    _kernels.min_max(np.array(blocks, dtype=dtype).ravel(), low, high, 4)
    np.testing.assert_array_equal(low, [-1.0, np.nan, -np.inf])
    np.testing.assert_array_equal(high, [3.0, np.nan, np.inf])


def test_affine_blocks_in_place_on_float32(rng):
    source = _source(rng, np.float32, 6 * 50)
    scale, offset = _constants(rng, 3)
    expected = np.empty_like(source)
    _kernels.affine(source, expected, scale, offset, -1.0, 1.0, 50)
    _kernels.affine(source, source, scale, offset, -1.0, 1.0, 50)
    np.testing.assert_array_equal(source, expected)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    dtype=st.sampled_from(SOURCE_DTYPES),
    channels=st.integers(1, 70),
    pixels=st.integers(1, 300),
)
def test_affine_and_min_max_properties(data, dtype, channels, pixels):
    dtype = np.dtype(dtype)
    elements = (
        st.integers(0, int(np.iinfo(dtype).max))
        if dtype.kind == "u"
        else st.floats(-1024.0, 1024.0, width=dtype.itemsize * 8, allow_nan=False)
    )
    source = data.draw(arrays(dtype, pixels * channels, elements=elements))
    scale = data.draw(arrays(np.float32, channels, elements=st.floats(0.0009765625, 10.0, width=32)))
    offset = data.draw(arrays(np.float32, channels, elements=st.floats(-10.0, 10.0, width=32)))
    out = np.empty(source.size, dtype=np.float32)
    _kernels.affine(source, out, scale, offset, -np.inf, np.inf)
    expected, allowance = _affine_reference(source, scale, offset)
    assert np.all(np.abs(out - expected) <= allowance)
    low, high = np.empty(channels), np.empty(channels)
    _kernels.min_max(source, low, high)
    np.testing.assert_array_equal(low, source.reshape(-1, channels).min(axis=0).astype(np.float64))
    np.testing.assert_array_equal(high, source.reshape(-1, channels).max(axis=0).astype(np.float64))


# --------------------------------------------------------------------------- bad calls


def _affine_args(**changes):
    args = {
        "source": np.zeros(12, np.uint8),
        "out": np.empty(12, np.float32),
        "scale": np.ones(3, np.float32),
        "offset": np.zeros(3, np.float32),
        "low": 0.0,
        "high": 1.0,
    }
    args.update(changes)
    return tuple(args.values())


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"source": np.zeros(12, np.int8)}, TypeError, "source must hold uint8, uint16"),
        ({"out": np.empty(12, np.float64)}, TypeError, "out must hold float32"),
        ({"scale": np.ones(3, np.float64)}, TypeError, "scale must hold float32"),
        ({"out": np.empty(11, np.float32)}, ValueError, "out has 11 values, source 12"),
        ({"offset": np.zeros(2, np.float32)}, ValueError, "got lengths 3 and 2"),
        ({"scale": np.ones(5, np.float32), "offset": np.zeros(5, np.float32)}, ValueError, "divides"),
        ({"scale": np.ones(0, np.float32), "offset": np.zeros(0, np.float32)}, ValueError, "non-zero"),
        ({"source": np.zeros((4, 6), np.uint8)[:, ::2]}, ValueError, "contiguous"),
        ({"low": "zero"}, TypeError, "must be real number"),
    ],
    ids=[
        "int8",
        "out-float64",
        "scale-float64",
        "out-size",
        "table-lengths",
        "not-dividing",
        "empty",
        "strided",
        "low-str",
    ],
)
def test_affine_refuses_bad_calls(changes, error, message):
    with pytest.raises(error, match=message):
        _kernels.affine(*_affine_args(**changes))


def test_affine_refuses_read_only_output():
    out = np.empty(12, np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _kernels.affine(*_affine_args(out=out))


def test_kernels_refuse_wrong_argument_counts():
    with pytest.raises(TypeError, match=r"affine\(\) takes 6 or 7 arguments \(2 given\)"):
        _kernels.affine(np.zeros(3, np.uint8), np.empty(3, np.float32))
    with pytest.raises(TypeError, match=r"min_max\(\) takes 3 or 4 arguments \(1 given\)"):
        _kernels.min_max(np.zeros(3, np.uint8))


@pytest.mark.parametrize(
    ("entries", "block", "message"),
    [
        (3, 0, "block must be at least 1; got 0"),
        (3, 5, "times block 5, divides"),  # 12 values are not whole blocks of 5
        (2, 4, "times block 4, divides"),  # 3 blocks do not cycle evenly through 2 entries
    ],
)
def test_kernels_refuse_blocks_that_do_not_tile_the_source(entries, block, message):
    tables = {"scale": np.ones(entries, np.float32), "offset": np.zeros(entries, np.float32)}
    with pytest.raises(ValueError, match=message):
        _kernels.affine(*_affine_args(**tables), block)
    with pytest.raises(ValueError, match=message):
        _kernels.min_max(np.zeros(12, np.uint8), np.empty(entries), np.empty(entries), block)
    with pytest.raises(TypeError):
        _kernels.min_max(np.zeros(12, np.uint8), np.empty(3), np.empty(3), "4")


def test_min_max_refuses_bad_tables():
    with pytest.raises(TypeError, match="low must hold float64"):
        _kernels.min_max(np.zeros(6, np.uint8), np.empty(3, np.float32), np.empty(3))
    with pytest.raises(ValueError, match="got lengths 3 and 2"):
        _kernels.min_max(np.zeros(6, np.uint8), np.empty(3), np.empty(2))
