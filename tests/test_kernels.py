"""The kernels of the NumPy backend, called directly: values, lane tails, NaN/inf, bad calls.

The backend tests reach them through ``normalize``; these pin the kernel contract itself
(every dtype, channel counts around the lane period, lengths that leave a tail) so a bug
shows up here with a small input rather than as a parity failure. Every contract test runs on
both implementations, the C extension ``_kernels`` and its NumPy/OpenCV ``_fallback`` (the C
ones skip where the extension is not built), and the two are compared with each other.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from norm_transforms.backends import _fallback, kernels

try:
    from norm_transforms.backends import _kernels as c_kernels
except ImportError:  # installed without a C compiler: the fallback is tested alone
    c_kernels = None

NO_C = pytest.mark.skipif(c_kernels is None, reason="the C kernels are not built in this install")
IMPLEMENTATIONS = [pytest.param(c_kernels, id="c", marks=NO_C), pytest.param(_fallback, id="numpy")]
each_implementation = pytest.mark.parametrize("impl", IMPLEMENTATIONS)
TESTS = Path(__file__).resolve().parent
SUBPROCESS_TIMEOUT = 100  # seconds; under the 120 s per-test limit, so a hang fails with output

SOURCE_DTYPES = [np.uint8, np.uint16, np.int16, np.int32, np.float16, np.float32, np.float64]
# The sources the histogram counts, and the bin of value 0 in each.
HISTOGRAM_OFFSETS = {np.dtype(np.uint8): 0, np.dtype(np.uint16): 0, np.dtype(np.int16): 32768}
# 1 and 3: the common cases; 5 and 37: lane periods that are not powers of two; 1500: past the
# padded-lane limit, where a lane round is one pixel.
CHANNELS = [1, 3, 5, 37, 1500]
TWO_ULPS = 2.0**-23
SMALLEST_SUBNORMAL = 2.0**-149  # the absolute rounding allowance near zero


def _source(rng, dtype, values: int) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":  # every value, the extremes of signed types included
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=values, endpoint=True).astype(dtype)
    return (rng.standard_normal(values) * 50).astype(dtype)


def _pixel_values(dtype: np.dtype) -> st.SearchStrategy:
    """Every value of an integer type; finite floats in ±1024 (the products stay exact enough)."""
    if dtype.kind in "ui":
        return st.integers(int(np.iinfo(dtype).min), int(np.iinfo(dtype).max))
    return st.floats(-1024.0, 1024.0, width=dtype.itemsize * 8, allow_nan=False)


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


@each_implementation
@pytest.mark.parametrize("pixels", [1, 7, 97, 1001])
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("dtype", SOURCE_DTYPES, ids=lambda d: np.dtype(d).name)
def test_affine_matches_float64_within_float32_rounding(impl, rng, dtype, channels, pixels):
    source = _source(rng, dtype, pixels * channels)
    scale, offset = _constants(rng, channels)
    out = np.full(source.size, np.nan, dtype=np.float32)
    impl.affine(source, out, scale, offset, -np.inf, np.inf)
    expected, allowance = _affine_reference(source, scale, offset)
    assert np.all(np.abs(out - expected) <= allowance)


@each_implementation
@pytest.mark.parametrize("dtype", SOURCE_DTYPES, ids=lambda d: np.dtype(d).name)
def test_affine_clips_to_bounds(impl, rng, dtype):
    source = _source(rng, dtype, 3 * 500)
    scale, offset = _constants(rng, 3)
    out = np.empty(source.size, dtype=np.float32)
    impl.affine(source, out, scale, offset, 0.0, 1.0)
    expected, allowance = _affine_reference(source, scale, offset, 0.0, 1.0)
    assert out.min() >= 0.0
    assert out.max() <= 1.0
    assert np.all(np.abs(out - expected) <= allowance)


@each_implementation
@pytest.mark.parametrize("shift", range(0, 64, 4))
@pytest.mark.parametrize("dtype", [np.uint8, np.float32], ids=lambda d: np.dtype(d).name)
def test_affine_output_at_any_alignment_keeps_each_value_on_its_channel(impl, rng, dtype, shift):
    # The C loops start their vectors at the output's first 64-byte boundary, rotating the
    # per-channel tables by the values done before it: every offset of the output, lengths
    # shorter and longer than that head, clipped and not, must give the bits of a call into a fresh array.
    scale, offset = _constants(rng, 3)
    for values in [3, 12, 99, 3 * 97]:
        source = _source(rng, dtype, values)
        unshifted = np.empty(values, dtype=np.float32)
        storage = np.empty(values + 32, dtype=np.float32)
        start = (-storage.ctypes.data % 64 + shift) % 64 // 4
        shifted = storage[start : start + values]
        for low, high in [(-np.inf, np.inf), (-1.0, 1.0)]:
            impl.affine(source, unshifted, scale, offset, low, high)
            impl.affine(source, shifted, scale, offset, low, high)
            expected, allowance = _affine_reference(source, scale, offset, low, high)
            assert np.all(np.abs(shifted - expected) <= allowance)
            assert np.array_equal(shifted.view(np.uint32), unshifted.view(np.uint32))


@each_implementation
def test_affine_keeps_nan_and_clips_infinity(impl):
    source = np.array([np.nan, np.inf, -np.inf, 0.5], dtype=np.float32)
    one, zero = np.ones(1, dtype=np.float32), np.zeros(1, dtype=np.float32)
    unclipped, clipped = np.empty(4, dtype=np.float32), np.empty(4, dtype=np.float32)
    impl.affine(source, unclipped, one, zero, -np.inf, np.inf)
    impl.affine(source, clipped, one, zero, 0.0, 1.0)
    np.testing.assert_array_equal(unclipped, source)
    np.testing.assert_array_equal(clipped, [np.nan, 1.0, 0.0, 0.5])


@each_implementation
def test_affine_decodes_every_float16_exactly(impl):
    halves = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    out = np.empty(halves.size, dtype=np.float32)
    # offset -0.0 keeps the sign of zero: -0.0 * 1 + -0.0 = -0.0
    impl.affine(halves, out, np.ones(1, np.float32), np.full(1, -0.0, np.float32), -np.inf, np.inf)
    expected = halves.astype(np.float32)
    nan = np.isnan(expected)
    assert np.array_equal(np.isnan(out), nan)
    assert np.array_equal(out[~nan].view(np.uint32), expected[~nan].view(np.uint32))  # -0.0 included


@each_implementation
def test_affine_in_place_on_float32_equals_out_of_place(impl, rng):
    source = _source(rng, np.float32, 3 * 333)
    scale, offset = _constants(rng, 3)
    expected = np.empty_like(source)
    impl.affine(source, expected, scale, offset, -1.0, 1.0)
    impl.affine(source, source, scale, offset, -1.0, 1.0)
    np.testing.assert_array_equal(source, expected)


@each_implementation
@pytest.mark.parametrize("pixels", [1, 5, 200, 3001])
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("dtype", SOURCE_DTYPES, ids=lambda d: np.dtype(d).name)
def test_min_max_per_channel_matches_numpy(impl, rng, dtype, channels, pixels):
    source = _source(rng, dtype, pixels * channels)
    low, high = np.empty(channels), np.empty(channels)
    impl.min_max(source, low, high)
    by_channel = source.reshape(-1, channels)
    np.testing.assert_array_equal(low, by_channel.min(axis=0).astype(np.float64))
    np.testing.assert_array_equal(high, by_channel.max(axis=0).astype(np.float64))


@each_implementation
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_min_max_skips_nan_and_keeps_infinity(impl, dtype):
    # channel 0: values and NaN; channel 1: only NaN; channel 2: infinities
    source = np.array([1.0, np.nan, np.inf, np.nan, np.nan, -np.inf, -2.0, np.nan, 3.0] * 50, dtype=dtype)
    low, high = np.empty(3), np.empty(3)
    impl.min_max(source, low, high)
    np.testing.assert_array_equal(low, [-2.0, np.nan, -np.inf])
    np.testing.assert_array_equal(high, [1.0, np.nan, np.inf])


@each_implementation
@pytest.mark.parametrize("block", [1, 2, 31, 97, 1000])
@pytest.mark.parametrize("entries", [1, 3, 192])
@pytest.mark.parametrize("dtype", SOURCE_DTYPES, ids=lambda d: np.dtype(d).name)
def test_blocks_take_one_table_entry_each(impl, rng, dtype, entries, block):
    # (N, C, H, W) planes: value i belongs to entry (i // block) % entries; 2 rounds of entries.
    source = _source(rng, dtype, 2 * entries * block)
    scale, offset = _constants(rng, entries)
    out = np.full(source.size, np.nan, dtype=np.float32)
    impl.affine(source, out, scale, offset, -np.inf, np.inf, block)
    # The reference: the tables written out per value (one "channel" per value).
    per_value = np.tile(np.repeat(np.arange(entries), block), 2)
    expected, allowance = _affine_reference(source, scale[per_value], offset[per_value])
    assert np.all(np.abs(out - expected) <= allowance)
    low, high = np.empty(entries), np.empty(entries)
    impl.min_max(source, low, high, block)
    by_entry = source.reshape(2, entries, block).transpose(1, 0, 2).reshape(entries, -1)
    np.testing.assert_array_equal(low, by_entry.min(axis=1).astype(np.float64))
    np.testing.assert_array_equal(high, by_entry.max(axis=1).astype(np.float64))


@each_implementation
@pytest.mark.parametrize("values", [1, 130, 1001])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_one_channel_min_max_skips_nan(impl, rng, dtype, values):
    # One channel has its own register-resident loop; NaN first (where cv2.minMaxLoc fails), and
    # only NaN.
    source = _source(rng, dtype, values)
    source[:: max(values // 7, 1)] = np.nan
    source[0] = np.nan
    low, high = np.empty(1), np.empty(1)
    impl.min_max(source, low, high)
    expected = (np.fmin.reduce(source), np.fmax.reduce(source))
    np.testing.assert_array_equal([low[0], high[0]], np.array(expected, dtype=np.float64))
    impl.min_max(np.full(values, np.nan, dtype), low, high)
    assert np.isnan(low[0]) and np.isnan(high[0])


@each_implementation
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_min_max_blocks_skip_nan(impl, dtype):
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
    impl.min_max(np.array(blocks, dtype=dtype).ravel(), low, high, 4)
    np.testing.assert_array_equal(low, [-1.0, np.nan, -np.inf])
    np.testing.assert_array_equal(high, [3.0, np.nan, np.inf])


@each_implementation
def test_affine_blocks_in_place_on_float32(impl, rng):
    source = _source(rng, np.float32, 6 * 50)
    scale, offset = _constants(rng, 3)
    expected = np.empty_like(source)
    impl.affine(source, expected, scale, offset, -1.0, 1.0, 50)
    impl.affine(source, source, scale, offset, -1.0, 1.0, 50)
    np.testing.assert_array_equal(source, expected)


@each_implementation
@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    dtype=st.sampled_from(SOURCE_DTYPES),
    channels=st.integers(1, 70),
    pixels=st.integers(1, 300),
)
def test_affine_and_min_max_properties(impl, data, dtype, channels, pixels):
    dtype = np.dtype(dtype)
    source = data.draw(arrays(dtype, pixels * channels, elements=_pixel_values(dtype)))
    scale = data.draw(arrays(np.float32, channels, elements=st.floats(0.0009765625, 10.0, width=32)))
    offset = data.draw(arrays(np.float32, channels, elements=st.floats(-10.0, 10.0, width=32)))
    out = np.empty(source.size, dtype=np.float32)
    impl.affine(source, out, scale, offset, -np.inf, np.inf)
    expected, allowance = _affine_reference(source, scale, offset)
    assert np.all(np.abs(out - expected) <= allowance)
    low, high = np.empty(channels), np.empty(channels)
    impl.min_max(source, low, high)
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


@each_implementation
@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"source": np.zeros(12, np.int8)}, TypeError, "source must hold uint8, uint16, int16, int32"),
        ({"source": np.zeros(12, np.int64)}, TypeError, "source must hold uint8, uint16, int16, int32"),
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
        "int64",
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
def test_affine_refuses_bad_calls(impl, changes, error, message):
    with pytest.raises(error, match=message):
        impl.affine(*_affine_args(**changes))


@each_implementation
def test_affine_refuses_read_only_output(impl):
    out = np.empty(12, np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        impl.affine(*_affine_args(out=out))


@each_implementation
def test_kernels_refuse_wrong_argument_counts(impl):
    with pytest.raises(TypeError, match=r"affine\(\) takes 6 or 7 arguments \(2 given\)"):
        impl.affine(np.zeros(3, np.uint8), np.empty(3, np.float32))
    with pytest.raises(TypeError, match=r"min_max\(\) takes 3 or 4 arguments \(1 given\)"):
        impl.min_max(np.zeros(3, np.uint8))


@each_implementation
@pytest.mark.parametrize(
    ("entries", "block", "message"),
    [
        (3, 0, "block must be at least 1; got 0"),
        (3, 5, "times block 5, divides"),  # 12 values are not whole blocks of 5
        (2, 4, "times block 4, divides"),  # 3 blocks do not cycle evenly through 2 entries
    ],
)
def test_kernels_refuse_blocks_that_do_not_tile_the_source(impl, entries, block, message):
    tables = {"scale": np.ones(entries, np.float32), "offset": np.zeros(entries, np.float32)}
    with pytest.raises(ValueError, match=message):
        impl.affine(*_affine_args(**tables), block)
    with pytest.raises(ValueError, match=message):
        impl.min_max(np.zeros(12, np.uint8), np.empty(entries), np.empty(entries), block)
    with pytest.raises(TypeError):
        impl.min_max(np.zeros(12, np.uint8), np.empty(3), np.empty(3), "4")


@each_implementation
def test_min_max_refuses_bad_tables(impl):
    with pytest.raises(TypeError, match="low must hold float64"):
        impl.min_max(np.zeros(6, np.uint8), np.empty(3, np.float32), np.empty(3))
    with pytest.raises(ValueError, match="got lengths 3 and 2"):
        impl.min_max(np.zeros(6, np.uint8), np.empty(3), np.empty(2))


@each_implementation
def test_kernels_refuse_keyword_arguments(impl):
    with pytest.raises(TypeError, match="takes no keyword arguments"):
        impl.affine(*_affine_args(), block=1)
    with pytest.raises(TypeError, match="takes no keyword arguments"):
        impl.min_max(np.zeros(3, np.uint8), np.empty(3), np.empty(3), block=1)


@each_implementation
def test_affine_clamp_keeps_negative_zero_and_nan(impl):
    # The C clamp is `v < low ? low : v`: -0.0 is not below 0.0, so it stays -0.0, bit for bit.
    source = np.array([-0.0, 0.0, -1.0, 2.0, np.nan, 0.5], dtype=np.float32)
    out = np.empty_like(source)
    impl.affine(source, out, np.ones(1, np.float32), np.full(1, -0.0, np.float32), 0.0, 1.0)
    expected = np.array([-0.0, 0.0, 0.0, 1.0, np.nan, 0.5], dtype=np.float32)
    assert np.array_equal(out.view(np.uint32)[:4], expected.view(np.uint32)[:4])
    assert np.isnan(out[4]) and out[5] == 0.5


@each_implementation
@pytest.mark.parametrize("channels", [1, 3, 5])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16], ids=lambda d: np.dtype(d).name)
def test_histogram_adds_counts_per_channel(impl, rng, dtype, channels):
    bins = 256 if dtype == np.uint8 else 65536
    offset = HISTOGRAM_OFFSETS[np.dtype(dtype)]  # int16 value v in bin v + 32768
    source = _source(rng, dtype, channels * 1001)
    counts = np.full(channels * bins, 7, dtype=np.int64)
    impl.histogram(source, counts)
    by_channel = source.reshape(-1, channels).astype(np.int64) + offset
    expected = [np.bincount(by_channel[:, c], minlength=bins) + 7 for c in range(channels)]
    np.testing.assert_array_equal(counts, np.concatenate(expected))


@each_implementation
def test_histogram_refuses_bad_calls(impl):
    with pytest.raises(TypeError, match="source must hold uint8, uint16 or int16 values, got format 'f'"):
        impl.histogram(np.zeros(6, np.float32), np.zeros(3 * 256, np.int64))
    with pytest.raises(TypeError, match="source must hold uint8, uint16 or int16 values, got format 'i'"):
        impl.histogram(np.zeros(6, np.int32), np.zeros(3 * 65536, np.int64))
    with pytest.raises(TypeError, match="counts must hold int64 values, got format 'i'"):
        impl.histogram(np.zeros(6, np.uint8), np.zeros(3 * 256, np.int32))
    with pytest.raises(ValueError, match=r"counts must hold C \* 256 values .* got 1024 values"):
        impl.histogram(np.zeros(6, np.uint8), np.zeros(4 * 256, np.int64))
    with pytest.raises(TypeError, match=r"histogram\(\) takes 2 or 3 arguments \(1 given\)"):
        impl.histogram(np.zeros(6, np.uint8))


@each_implementation
def test_empty_sources(impl):
    # Zero values tile any table: nothing is written, and every scope's range is undefined.
    impl.affine(np.zeros(0, np.uint8), np.zeros(0, np.float32), *_affine_args()[2:])
    low, high = np.zeros(3), np.zeros(3)
    impl.min_max(np.zeros(0, np.float32), low, high, 5)
    assert np.isnan(low).all() and np.isnan(high).all()


# --------------------------------------------------------------------------- C against the fallback

COMPARED_CHANNELS = [1, 2, 3, 4, 5, 37, 1500]
COMPARED_BLOCKS = [1, 2, 31, 1000]


def _compared_source(rng, dtype, values: int) -> np.ndarray:
    """Random values, and for floats some NaN and infinities."""
    source = _source(rng, dtype, values)
    if source.dtype.kind == "f":
        special = rng.choice(values, size=max(values // 50, 1), replace=False)
        source[special] = rng.choice(np.array([np.nan, np.inf, -np.inf], dtype=source.dtype), special.size)
    return source


def assert_affine_outputs_agree(c_out: np.ndarray, numpy_out: np.ndarray, product: np.ndarray) -> None:
    """The C output equals the fallback's bit for bit, or differs from it by FMA contraction alone:
    at most one float32 ulp of the larger of |x * scale| (``product``, rounded) and |out|.

    Why not always bitwise: the fallback rounds x * scale to float32, then the sum. GCC and Clang
    contract the C loop's x * scale + offset into one FMA (one rounding) where the target has one:
    the x86-64-v3 and v4 clones of _kernels.c, and arm64. Measured on an AMD EPYC (x86-64-v3 clone): the
    C output equals a float64 emulation of the single rounding on 6.0M of 6.0M values and differs
    from the fallback in 5-35% of them; the same file built with -ffp-contract=off equals the
    fallback bit for bit on 312M values (every dtype, channels 1-1500, blocks 1-1000, clips).
    The bound: the product's own rounding moves the sum by at most half an ulp of |x * scale|,
    and rounding both sums to the float32 grid adds at most the rest of one ulp of the larger
    magnitude (measured: 1.0 at most). It is not one ulp of |out| alone: where the sum cancels,
    |out| is tiny, and the same half ulp of the product measured up to 64978 of its ulps.
    """
    same_bits = c_out.view(np.uint32) == numpy_out.view(np.uint32)
    both_nan = np.isnan(c_out) & np.isnan(numpy_out)
    with np.errstate(invalid="ignore"):
        ulp = np.spacing(np.maximum(np.abs(product), np.abs(numpy_out)))
        within = np.abs(c_out.astype(np.float64) - numpy_out) <= ulp
    agree = same_bits | both_nan | within
    assert agree.all(), (c_out[~agree][:5], numpy_out[~agree][:5])


@NO_C
@pytest.mark.parametrize("block", COMPARED_BLOCKS)
@pytest.mark.parametrize("channels", COMPARED_CHANNELS)
@pytest.mark.parametrize("dtype", SOURCE_DTYPES, ids=lambda d: np.dtype(d).name)
def test_fallback_matches_c_on_random_inputs(rng, dtype, channels, block):
    # 2 rounds of the table, then a whole row of the fallback and a tail (its layouts differ).
    rounds = 2 + (5000 // (channels * block))
    source = _compared_source(rng, dtype, rounds * channels * block)
    scale, offset = _constants(rng, channels)
    entry = (np.arange(source.size) // block) % channels
    with np.errstate(invalid="ignore", over="ignore"):
        product = source.astype(np.float32) * scale[entry]
    for low, high in [(-np.inf, np.inf), (0.0, 1.0), (-20.0, 20.0)]:
        c_out, numpy_out = (np.full(source.size, 3.0, np.float32) for _ in range(2))
        c_kernels.affine(source, c_out, scale, offset, low, high, block)
        _fallback.affine(source, numpy_out, scale, offset, low, high, block)
        assert_affine_outputs_agree(c_out, numpy_out, product)
    # The ranges are comparisons only: bitwise, NaN skipped alike.
    ranges = [(np.empty(channels), np.empty(channels)) for _ in range(2)]
    c_kernels.min_max(source, *ranges[0], block)
    _fallback.min_max(source, *ranges[1], block)
    np.testing.assert_array_equal(ranges[0], ranges[1])
    if source.dtype in HISTOGRAM_OFFSETS and block == 1:
        bins = 256 if source.dtype == np.uint8 else 65536
        counts = [np.full(channels * bins, 3, np.int64) for _ in range(2)]
        c_kernels.histogram(source, counts[0])
        _fallback.histogram(source, counts[1])
        np.testing.assert_array_equal(counts[0], counts[1])


@each_implementation
@pytest.mark.parametrize("out_dtype", [np.float32, np.float16], ids=["float32", "float16"])
@pytest.mark.parametrize("channels", [1, 2, 3, 4, 5, 37])
@pytest.mark.parametrize("dtype", SOURCE_DTYPES, ids=lambda d: np.dtype(d).name)
def test_affine_to_planes_is_the_affine_of_the_split_planes_bit_for_bit(
    impl, rng, dtype, channels, out_dtype
):
    # 1000 pixels: the C kernel's chunks (1024 pixels) and a tail; 3000: several chunks.
    for pixels in (1, 1000, 3000):
        source = _compared_source(rng, dtype, pixels * channels).reshape(pixels, channels)
        scale, offset = _constants(rng, channels)
        planes, before = np.ascontiguousarray(source.T), source.copy()
        for low, high in [(-np.inf, np.inf), (-1.0, 1.0)]:
            expected, out = (np.full((channels, pixels), 3.0, out_dtype) for _ in range(2))
            impl.affine(planes, expected, scale, offset, low, high, pixels)
            impl.affine_to_planes(source, out, scale, offset, low, high)
            np.testing.assert_array_equal(out, expected)
        np.testing.assert_array_equal(source, before)  # the source is only read


@each_implementation
def test_affine_to_planes_refuses_bad_calls(impl):
    source, out = np.zeros((4, 3), np.uint8), np.zeros((3, 4), np.float32)
    tables = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="out has 8 values, source 12"):
        impl.affine_to_planes(source, out[:2], tables, tables, 0.0, 1.0)
    with pytest.raises(ValueError, match="got lengths 3 and 2"):
        impl.affine_to_planes(source, out, tables, tables[:2], 0.0, 1.0)
    with pytest.raises(TypeError, match="source must hold uint8, uint16"):
        impl.affine_to_planes(source.astype(np.int8), out, tables, tables, 0.0, 1.0)
    with pytest.raises(TypeError, match="takes 6 arguments"):
        impl.affine_to_planes(source, out, tables, tables, 0.0, 1.0, 4)


@NO_C
@pytest.mark.parametrize("channels", [1, 3, 37])
@pytest.mark.parametrize("dtype", SOURCE_DTYPES, ids=lambda d: np.dtype(d).name)
def test_fallback_matches_c_bitwise_where_the_product_is_exact(rng, dtype, channels):
    # Power-of-two scales make x * scale exact, so an FMA and a rounded product give the same
    # sum: bit for bit, whatever the C build contracts.
    source = _compared_source(rng, dtype, 3001 * channels)
    scale = (2.0 ** rng.integers(-8, 4, channels)).astype(np.float32)
    offset = rng.uniform(-5.0, 5.0, channels).astype(np.float32)
    for low, high in [(-np.inf, np.inf), (0.0, 1.0)]:
        c_out, numpy_out = np.empty(source.size, np.float32), np.empty(source.size, np.float32)
        c_kernels.affine(source, c_out, scale, offset, low, high)
        _fallback.affine(source, numpy_out, scale, offset, low, high)
        nan = np.isnan(c_out)
        assert np.array_equal(nan, np.isnan(numpy_out))
        assert np.array_equal(c_out[~nan].view(np.uint32), numpy_out[~nan].view(np.uint32))


# --------------------------------------------------------------------------- which implementation runs


def _run_python(code: str, **environment: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter (the choice is made once, at import), outside the source
    tree so that it imports the installed package, with tests/ on its path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    env.pop("NORM_TRANSFORMS_DISABLE_C", None)
    env.update(environment)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        env=env,
        cwd=TESTS,
        check=False,
    )


def test_kernels_backend_names_the_implementation_in_use():
    if os.environ.get(kernels.DISABLE_C_VARIABLE) == "1" or c_kernels is None:
        assert kernels.KERNELS_BACKEND == "numpy" and kernels.affine is _fallback.affine
    else:
        assert kernels.KERNELS_BACKEND == "c" and kernels.affine is c_kernels.affine


def test_missing_c_kernels_fall_back_with_one_warning():
    # `None` in sys.modules makes the import of the extension raise ImportError, as a missing
    # file does.
    result = _run_python(
        """
        import sys, warnings
        sys.modules["norm_transforms.backends._kernels"] = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import norm_transforms
            from norm_transforms import normalize
            from norm_transforms.backends import _fallback, kernels
            import numpy as np
            normalize(np.zeros((4, 4, 3), np.uint8))
        mine = [w for w in caught if "C kernels were not built" in str(w.message)]
        assert len(mine) == 1, [str(w.message) for w in caught]
        assert issubclass(mine[0].category, RuntimeWarning)
        assert kernels.KERNELS_BACKEND == "numpy" and kernels.affine is _fallback.affine
        print("ok")
        """
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_disable_c_selects_the_fallback_and_keeps_albumentations_parity():
    pytest.importorskip("albumentations")
    result = _run_python(
        """
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            from norm_transforms import normalize
            from norm_transforms.backends import _fallback, kernels
        assert not [w for w in caught if "C kernels" in str(w.message)], "a deliberate switch warns"
        assert kernels.KERNELS_BACKEND == "numpy" and kernels.affine is _fallback.affine

        import albumentations as A
        import numpy as np
        from reference import reference_normalize

        rng = np.random.default_rng(11)
        images = {
            "uint8": rng.integers(0, 256, (48, 50, 3), dtype=np.uint8),
            "float32": rng.random((48, 50, 3), dtype=np.float32),
        }
        modes = ("standard", "image", "image_per_channel", "min_max", "min_max_per_channel")
        for name, image in images.items():
            for mode in modes:
                kwargs = {
                    "mean": (0.485, 0.456, 0.406),
                    "std": (0.229, 0.224, 0.225),
                    "max_pixel_value": 255.0 if name == "uint8" else 1.0,
                    "normalization": mode,
                }
                ours = normalize(image, **kwargs)
                # SPEC 3.2: for float input the reference omits eps in these two modes, and we
                # follow the SPEC 1 formula there (as tests/test_adapter_albumentations.py does).
                if name == "float32" and mode in ("image_per_channel", "min_max"):
                    expected = reference_normalize(image, **kwargs)
                else:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        expected = A.Normalize(**kwargs, p=1.0)(image=image.copy())["image"]
                np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-5, err_msg=f"{name} {mode}")
        print("ok")
        """,
        NORM_TRANSFORMS_DISABLE_C="1",
        NO_ALBUMENTATIONS_UPDATE="1",
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


# --------------------------------------------------------------------------- float16 output


def _float32_patterns(rng, count: int) -> np.ndarray:
    """Random float32 bit patterns (every exponent, NaNs and infinities among them), then the
    values where rounding to float16 is decided: halfway cases, the subnormal range, the
    overflow edge."""
    patterns = rng.integers(0, 2**32, count, dtype=np.uint64).astype(np.uint32).view(np.float32)
    finite = np.arange(0, 0x7C00, dtype=np.uint16).view(np.float16).astype(np.float32)  # 0 .. 65504
    midpoints = finite[:-1] / 2 + finite[1:] / 2  # exact in float32: ties to even decide these
    edges = [65504, 65519.996, 65520, 65536, 2.0**-14, 2.0**-24, 2.0**-25, 2.0**-26, 3e-8]
    edges = np.array(edges, np.float32)
    near = np.concatenate([finite, midpoints, np.nextafter(midpoints, np.float32(0)), edges])
    return np.concatenate([patterns, near, -near])


@each_implementation
def test_affine_float16_output_is_numpys_rounding_bit_for_bit(impl, rng):
    values = _float32_patterns(rng, 300_000)
    out = np.empty(values.size, np.float16)
    impl.affine(values, out, np.ones(1, np.float32), np.full(1, -0.0, np.float32), -np.inf, np.inf)
    with np.errstate(over="ignore"):
        expected = values.astype(np.float16)
    same = (out.view(np.uint16) == expected.view(np.uint16)) | (np.isnan(out) & np.isnan(expected))
    assert same.all(), values[~same][:5]


@each_implementation
@pytest.mark.parametrize("block", [1, 35])
@pytest.mark.parametrize("dtype", SOURCE_DTYPES)
def test_affine_float16_output_is_the_float32_output_rounded(impl, rng, dtype, block):
    source = _source(rng, dtype, 3 * 35 * 157)  # several 4096-value chunks and a tail
    scale, offset = _constants(rng, 3)
    single, half = np.empty(source.size, np.float32), np.empty(source.size, np.float16)
    impl.affine(source, single, scale, offset, -30.0, 40.0, block)
    impl.affine(source, half, scale, offset, -30.0, 40.0, block)
    np.testing.assert_array_equal(half, single.astype(np.float16))


@NO_C
def test_portable_float16_rounding_where_the_cpu_has_no_f16c(rng):
    # ARM builds run the portable loop; x86 runs F16C. The switch makes x86 run the portable one.
    script = textwrap.dedent(
        """
        import numpy as np, sys
        sys.path.insert(0, sys.argv[1])
        from test_kernels import _float32_patterns
        from norm_transforms.backends import _kernels
        values = _float32_patterns(np.random.default_rng(7), 300_000)
        out = np.empty(values.size, np.float16)
        _kernels.affine(values, out, np.ones(1, np.float32), np.full(1, -0.0, np.float32), -np.inf, np.inf)
        with np.errstate(over="ignore"):
            expected = values.astype(np.float16)
        same = (out.view(np.uint16) == expected.view(np.uint16)) | (np.isnan(out) & np.isnan(expected))
        print(int((~same).sum()))
        """
    )
    environment = {**os.environ, "NORM_TRANSFORMS_DISABLE_F16C": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script, str(TESTS)],
        env=environment, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "0"


# --------------------------------------------------------------------------- moments


def _moments_reference(source: np.ndarray, entries: int, block: int = 1) -> list[np.ndarray]:
    """Per entry: min and max (NaN skipped), and the sums of d = x - k and of d² (k the entry's
    first value), exact for integers (Python ints), in float64 for floats."""
    by_entry = source.reshape(-1, entries, block).transpose(1, 0, 2).reshape(entries, -1)
    low, high = np.fmin.reduce(by_entry, axis=1), np.fmax.reduce(by_entry, axis=1)
    if source.dtype.kind in "ui":
        shifted = [[int(x) - int(row[0]) for x in row] for row in by_entry]
        sums = [float(sum(row)) for row in shifted]
        squares = [float(sum(d * d for d in row)) for row in shifted]
    else:
        with np.errstate(invalid="ignore", over="ignore"):
            differences = by_entry.astype(np.float64) - by_entry[:, :1].astype(np.float64)
            sums, squares = differences.sum(axis=1), (differences * differences).sum(axis=1)
    return [low.astype(np.float64), high.astype(np.float64), np.array(sums), np.array(squares)]


def _run_moments(impl, source: np.ndarray, entries: int, block: int = 1) -> list[np.ndarray]:
    tables = list(np.full((4, entries), 3.0))
    impl.moments(source, *tables, block)
    return tables


def _assert_moments_match(got: list[np.ndarray], expected: list[np.ndarray], dtype: np.dtype) -> None:
    """Extremes bitwise; integer sums of 8 and 16-bit values exactly; the others within float64
    rounding of the sum of |d| (of d² for the squares), in another summation order."""
    np.testing.assert_array_equal(got[:2], expected[:2])
    if dtype.kind in "ui" and dtype.itemsize <= 2:
        np.testing.assert_array_equal(got[2:], expected[2:])
    else:
        np.testing.assert_allclose(
            got[2], expected[2], rtol=1e-12, atol=1e-12 * np.abs(expected[3]).max() ** 0.5
        )
        np.testing.assert_allclose(got[3], expected[3], rtol=1e-12)


@each_implementation
@pytest.mark.parametrize("pixels", [1, 5, 200, 3001])
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("dtype", SOURCE_DTYPES, ids=lambda d: np.dtype(d).name)
def test_moments_per_channel_match_the_reference(impl, rng, dtype, channels, pixels):
    source = _source(rng, dtype, pixels * channels)
    got = _run_moments(impl, source, channels)
    _assert_moments_match(got, _moments_reference(source, channels), source.dtype)


@each_implementation
@pytest.mark.parametrize("block", [1, 2, 31, 97, 1000])
@pytest.mark.parametrize("entries", [1, 3, 192])
@pytest.mark.parametrize("dtype", SOURCE_DTYPES, ids=lambda d: np.dtype(d).name)
def test_moments_blocks_take_one_entry_each(impl, rng, dtype, entries, block):
    source = _source(rng, dtype, 2 * entries * block)
    got = _run_moments(impl, source, entries, block)
    _assert_moments_match(got, _moments_reference(source, entries, block), source.dtype)


@each_implementation
@pytest.mark.parametrize("channels", [1, 3, 5])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16], ids=lambda d: np.dtype(d).name)
def test_moments_of_integers_are_exact_across_many_blocks(impl, rng, dtype, channels):
    # 3 * 2**17 values per channel: several of the C kernel's blocks of 2**16 values.
    source = _source(rng, dtype, 3 * 2**17 * channels)
    got = _run_moments(impl, source, channels)
    by_channel = source.reshape(-1, channels).astype(np.int64)
    shifted = by_channel - by_channel[0]
    # Python ints: exact whatever the size (the squares pass 2**53 for uint16 here).
    sums = [int(v) for v in shifted.sum(axis=0)]
    squares = [sum(int(v) for v in column) for column in (shifted * shifted).T]
    np.testing.assert_array_equal(got[2], [float(v) for v in sums])
    np.testing.assert_allclose(got[3], [float(v) for v in squares], rtol=2**-52)


@each_implementation
@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16], ids=lambda d: np.dtype(d).name)
def test_moments_of_integer_extremes_do_not_wrap_the_lane_sums(impl, dtype, channels):
    # The C loops sum uint8 in uint16 lanes for at most 257 rounds (257 * 255 = 65535) and 16-bit
    # values in 32-bit lanes: channels of the type's maximum beside channels of its minimum,
    # over several blocks, must come out exact, extremes included.
    info = np.iinfo(dtype)
    source = np.full((70001, channels), info.min, dtype=dtype)
    source[:, ::2] = info.max
    source[0] = info.min  # the shift k: every later maximum counts in full
    got = _run_moments(impl, source.ravel(), channels)
    _assert_moments_match(got, _moments_reference(source.ravel(), channels), source.dtype)


@each_implementation
@pytest.mark.parametrize("values", [1, 100, 70001])
@pytest.mark.parametrize("dtype", SOURCE_DTYPES, ids=lambda d: np.dtype(d).name)
def test_moments_of_constant_entries_are_exactly_zero(impl, dtype, values):
    # The sums are taken from each entry's first value: a constant entry sums exactly 0, so its
    # std is exactly 0 and a constant image normalizes to exactly 0.
    source = np.repeat(np.array([7, 200, 3], dtype=dtype)[None], values, axis=0).ravel()
    low, high, sums, squares = _run_moments(impl, source, 3)
    np.testing.assert_array_equal(low, [7.0, 200.0, 3.0])
    np.testing.assert_array_equal(high, low)
    assert not sums.any() and not squares.any()


@each_implementation
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_moments_skip_nan_in_the_extremes_and_spread_it_in_the_sums(impl, dtype):
    # channel 0: values and NaN; channel 1: only NaN; channel 2: infinities; channel 3: finite
    pattern = [1.0, np.nan, np.inf, 5.0, np.nan, np.nan, -np.inf, 6.0, -2.0, np.nan, 3.0, 7.0]
    source = np.array(pattern * 50, dtype=dtype)
    low, high, sums, squares = _run_moments(impl, source, 4)
    np.testing.assert_array_equal(low, [-2.0, np.nan, -np.inf, 5.0])
    np.testing.assert_array_equal(high, [1.0, np.nan, np.inf, 7.0])
    assert np.isnan(sums[:3]).all() and np.isnan(squares[:3]).all()
    np.testing.assert_array_equal([sums[3], squares[3]], [150.0, 250.0])


@each_implementation
@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    dtype=st.sampled_from(SOURCE_DTYPES),
    channels=st.sampled_from([1, 2, 3, 4, 5, 37]),
    pixels=st.integers(1, 400),
)
def test_moments_properties(impl, data, dtype, channels, pixels):
    dtype = np.dtype(dtype)
    source = data.draw(arrays(dtype, pixels * channels, elements=_pixel_values(dtype)))
    got = _run_moments(impl, source, channels)
    _assert_moments_match(got, _moments_reference(source, channels), dtype)


@each_implementation
def test_moments_refuse_bad_calls(impl):
    with pytest.raises(TypeError, match=r"moments\(\) takes 5 or 6 arguments \(1 given\)"):
        impl.moments(np.zeros(3, np.uint8))
    with pytest.raises(TypeError, match="sums must hold float64"):
        impl.moments(np.zeros(6, np.uint8), np.empty(3), np.empty(3), np.empty(3, np.float32), np.empty(3))
    with pytest.raises(ValueError, match="got lengths 3 and 2"):
        impl.moments(np.zeros(6, np.uint8), np.empty(3), np.empty(3), np.empty(3), np.empty(2))
    with pytest.raises(ValueError, match="times block 5, divides"):
        impl.moments(np.zeros(12, np.uint8), *np.empty((4, 3)), 5)
    with pytest.raises(ValueError, match="read-only"):
        squares = np.empty(3)
        squares.flags.writeable = False
        impl.moments(np.zeros(6, np.uint8), np.empty(3), np.empty(3), np.empty(3), squares)


@NO_C
@pytest.mark.parametrize("block", COMPARED_BLOCKS)
@pytest.mark.parametrize("channels", COMPARED_CHANNELS)
@pytest.mark.parametrize("dtype", SOURCE_DTYPES, ids=lambda d: np.dtype(d).name)
def test_fallback_moments_match_c(rng, dtype, channels, block):
    # Past one C block of 2**16 values where it is cheap; NaN and infinities in float sources.
    rounds = 2 + (70000 // (channels * block))
    source = _compared_source(rng, dtype, rounds * channels * block)
    c_tables = _run_moments(c_kernels, source, channels, block)
    numpy_tables = _run_moments(_fallback, source, channels, block)
    np.testing.assert_array_equal(c_tables[:2], numpy_tables[:2])
    if source.dtype.kind in "ui" and source.dtype.itemsize <= 2:
        np.testing.assert_array_equal(c_tables[2:], numpy_tables[2:])
    else:
        finite = np.isfinite(numpy_tables[3])
        np.testing.assert_array_equal(finite, np.isfinite(c_tables[3]))
        scale = np.sqrt(numpy_tables[3][finite]) * np.sqrt(source.size)
        assert np.all(np.abs(c_tables[2][finite] - numpy_tables[2][finite]) <= 1e-12 * scale + 1e-300)
        np.testing.assert_allclose(c_tables[3][finite], numpy_tables[3][finite], rtol=1e-12)


# --------------------------------------------------------------------------- select, keep_selected


def _run_select(impl, source: np.ndarray, selected: np.ndarray, channels: int) -> list[np.ndarray]:
    out, counts = np.empty_like(source), np.empty(channels, np.int64)
    impl.select(source, selected, out, counts)
    length = source.size // channels
    return [out[c * length : c * length + count] for c, count in enumerate(counts.tolist())]


def _selected_reference(source: np.ndarray, selected: np.ndarray, channels: int) -> list[np.ndarray]:
    pixels, chosen = source.reshape(-1, channels), selected.reshape(-1, channels)
    return [pixels[:, c][chosen[:, c]] for c in range(channels)]


@each_implementation
@pytest.mark.parametrize("share", [0.0, 0.27, 0.5, 1.0])  # none, scattered, half, every value selected
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("dtype", SOURCE_DTYPES, ids=lambda d: np.dtype(d).name)
def test_select_gathers_each_channels_selected_values_in_order(impl, rng, dtype, channels, share):
    source = _compared_source(rng, dtype, 97 * channels)
    selected = rng.random(source.size) < share
    got = _run_select(impl, source, selected, channels)
    for values, expected in zip(got, _selected_reference(source, selected, channels), strict=True):
        assert values.dtype == source.dtype
        np.testing.assert_array_equal(values.view(np.uint8), expected.view(np.uint8))  # the bits: NaN too


@each_implementation
@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    dtype=st.sampled_from(SOURCE_DTYPES),
    channels=st.sampled_from([1, 2, 3, 4, 5, 37]),
    pixels=st.integers(1, 300),
)
def test_select_properties(impl, data, dtype, channels, pixels):
    dtype = np.dtype(dtype)
    source = data.draw(arrays(dtype, pixels * channels, elements=_pixel_values(dtype)))
    selected = data.draw(arrays(np.bool_, source.size))
    got = _run_select(impl, source, selected, channels)
    for values, expected in zip(got, _selected_reference(source, selected, channels), strict=True):
        np.testing.assert_array_equal(values, expected)


@each_implementation
def test_select_refuses_bad_calls(impl):
    source, selected = np.zeros(6, np.uint8), np.ones(6, bool)
    with pytest.raises(TypeError, match=r"select\(\) takes 4 arguments \(3 given\)"):
        impl.select(source, selected, np.empty(6, np.uint8))
    with pytest.raises(TypeError, match="selected must hold bool values"):
        impl.select(source, np.ones(6, np.uint8), np.empty(6, np.uint8), np.empty(3, np.int64))
    with pytest.raises(TypeError, match="out must hold the values of source"):
        impl.select(source, selected, np.empty(6, np.uint16), np.empty(3, np.int64))
    with pytest.raises(ValueError, match="must have the 6 values of source; got 6 and 5"):
        impl.select(source, selected, np.empty(5, np.uint8), np.empty(3, np.int64))
    with pytest.raises(ValueError, match="C dividing the 6 values of source; got 4"):
        impl.select(source, selected, np.empty(6, np.uint8), np.empty(4, np.int64))
    with pytest.raises(TypeError, match="counts must hold int64"):
        impl.select(source, selected, np.empty(6, np.uint8), np.empty(3, np.int32))
    with pytest.raises(ValueError, match="read-only"):
        out = np.empty(6, np.uint8)
        out.flags.writeable = False
        impl.select(source, selected, out, np.empty(3, np.int64))
    with pytest.raises(TypeError, match="takes no keyword arguments"):
        impl.select(source, selected, np.empty(6, np.uint8), counts=np.empty(3, np.int64))
    # Overlapping buffers: a later channel would read what an earlier one wrote.
    memory = np.arange(14, dtype=np.float32)
    flags = np.ones(12, bool)
    for source, out in ((memory[:12], memory[:12]), (memory[:12], memory[2:])):
        with pytest.raises(ValueError, match="out must not overlap source"):
            impl.select(source, flags, out, np.empty(3, np.int64))


@each_implementation
def test_keep_selected_zeroes_the_rest_exactly_whatever_they_were(impl, rng):
    values = np.array([1.5, -2.0, np.nan, np.inf, -np.inf, -0.0, 3.0, np.nan] * 13, np.float32)
    selected = rng.random(values.size) < 0.5
    out = values.copy()
    impl.keep_selected(out, selected)
    expected = np.where(selected, values, np.float32(0.0))
    np.testing.assert_array_equal(out.view(np.uint32), expected.view(np.uint32))  # +0.0, NaN kept


@each_implementation
def test_keep_selected_refuses_bad_calls(impl):
    with pytest.raises(TypeError, match=r"keep_selected\(\) takes 2 arguments \(1 given\)"):
        impl.keep_selected(np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="out must hold float32 values"):
        impl.keep_selected(np.zeros(3, np.float64), np.ones(3, bool))
    with pytest.raises(ValueError, match="selected must have the 3 values of out; got 2"):
        impl.keep_selected(np.zeros(3, np.float32), np.ones(2, bool))
    with pytest.raises(ValueError, match="not C-contiguous"):
        impl.keep_selected(np.zeros(6, np.float32)[::2], np.ones(3, bool))
