"""The ``Accumulator`` interface (norm_transforms/stats/accumulators.py). Every implementation
listed in ``ACCUMULATORS`` and ``NONZERO_ACCUMULATORS`` goes through the same contract tests,
on every dtype it counts (the nonzero ones on images with zeros): any
order of updates and merges gives the same totals, the summary equals the float64 reference,
``measure`` reads no totals, the state and array forms round-trip, copies are independent,
channels reorder, an empty accumulator merges as nothing. Then what is particular to each: the
Python-integer sums of large histograms and the float64 blocks of the moments.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from types import SimpleNamespace

import numpy as np
import pytest
from test_stats import assert_matches_reference, random_images, stats_of, with_zeros

from norm_transforms import ChannelStats
from norm_transforms.stats.accumulators import (
    ACCUMULATORS,
    KIND_OF_DTYPE,
    NONZERO_ACCUMULATORS,
    Accumulator,
    IntegerSumAccumulator,
    accumulator_class,
    new_accumulator,
)

# Each accumulator with each dtype it counts: uint8, uint16 and int16 histograms, int32 integer
# sums, float16/32/64 moments, plain and with nonzero=True.
CASES = [
    pytest.param(kind, dtype, nonzero, id=f"{dtype.name}{'-nonzero' if nonzero else ''}")
    for nonzero in (False, True)
    for dtype, kind in KIND_OF_DTYPE.items()
]
ADDITIVE_CASES = [case for case in CASES if accumulator_class(*case.values[::2]).additive]


def images_and_pixels(
    rng, dtype, count: int = 5, zeros: bool = False
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """RGB images of different sizes, and their pixels ``(P, 3)`` as ChannelStats hands them over;
    with ``zeros``, a share of zero values in each channel and a channel of one image all zero."""
    images = random_images(rng, dtype, 3, count=count)
    if zeros:
        images = [with_zeros(rng, image) for image in images]
        images[0][..., 1] = 0
    return images, [image.reshape(-1, 3) for image in images]


def accumulated(kind: str, parts: list[np.ndarray], nonzero: bool = False) -> Accumulator:
    accumulator = new_accumulator(kind, parts[0].shape[1], nonzero)
    for part in parts:
        accumulator.update(np.ascontiguousarray(part))
    return accumulator


def assert_same_totals(accumulator: Accumulator, expected: Accumulator) -> None:
    """Bit for bit for exact (integer) totals; moments to float64 rounding, min and max exactly."""
    assert (accumulator.kind, accumulator.channels, accumulator.count) == (
        expected.kind,
        expected.channels,
        expected.count,
    )
    np.testing.assert_array_equal(accumulator.channel_counts(), expected.channel_counts())
    if accumulator.kind != "float":  # exact integer totals: bit for bit
        assert accumulator == expected
        return
    summary, reference = accumulator.summary(), expected.summary()
    np.testing.assert_allclose(summary.mean, reference.mean, rtol=1e-13, atol=0)
    np.testing.assert_allclose(summary.std, reference.std, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(summary.min, reference.min)
    np.testing.assert_array_equal(summary.max, reference.max)


# --------------------------------------------------------------------------- the contract


@pytest.mark.parametrize(("kind", "dtype", "nonzero"), CASES)
def test_updates_and_merges_in_any_order_give_the_same_totals(rng, kind, dtype, nonzero):
    _, parts = images_and_pixels(rng, dtype, zeros=nonzero)
    forward = accumulated(kind, parts, nonzero)
    assert_same_totals(accumulated(kind, parts[::-1], nonzero), forward)
    merged = accumulated(kind, parts[3:], nonzero)
    merged.merge(accumulated(kind, parts[:3], nonzero))
    assert_same_totals(merged, forward)


@pytest.mark.parametrize(("kind", "dtype", "nonzero"), CASES)
def test_summary_equals_the_float64_reference(rng, kind, dtype, nonzero):
    images, parts = images_and_pixels(rng, dtype, zeros=nonzero)
    accumulator = accumulated(kind, parts, nonzero)
    summary = dataclasses.asdict(accumulator.summary())
    counts = accumulator.channel_counts()
    as_stats = SimpleNamespace(channels=accumulator.channels, nonzero=nonzero, counts=counts, **summary)
    assert_matches_reference(as_stats, images, nonzero=nonzero)


@pytest.mark.parametrize(("kind", "dtype", "nonzero"), CASES)
def test_measure_reads_no_totals_and_add_counts_what_it_measured(rng, kind, dtype, nonzero):
    _, parts = images_and_pixels(rng, dtype, zeros=nonzero)
    accumulator = accumulated(kind, parts[:2], nonzero)
    before = accumulator.copy()
    measured = accumulator_class(kind, nonzero).measure(np.ascontiguousarray(parts[2]))
    assert accumulator == before
    accumulator.add(measured)
    assert accumulator == accumulated(kind, parts[:3], nonzero)


@pytest.mark.parametrize(("kind", "dtype", "nonzero"), CASES)
def test_state_round_trip_through_json_gives_an_equal_accumulator(rng, kind, dtype, nonzero):
    accumulator = accumulated(kind, images_and_pixels(rng, dtype, zeros=nonzero)[1], nonzero)
    state = json.loads(json.dumps({"count": accumulator.count, **accumulator.state()}))
    assert accumulator_class(kind, nonzero).from_state(state, kind, accumulator.channels) == accumulator


@pytest.mark.parametrize(("kind", "dtype", "nonzero"), CASES)
def test_array_round_trip_gives_an_equal_accumulator_with_a_row_per_channel(rng, kind, dtype, nonzero):
    accumulator = accumulated(kind, images_and_pixels(rng, dtype, zeros=nonzero)[1], nonzero)
    array = accumulator.to_array()
    assert len(array) == accumulator.channels
    assert accumulator_class(kind, nonzero).from_array(array.copy(), accumulator.count, kind) == accumulator


@pytest.mark.parametrize(("kind", "dtype", "nonzero"), ADDITIVE_CASES)
def test_additive_arrays_add_up_to_the_array_of_the_union(rng, kind, dtype, nonzero):
    # What lets torch.distributed pool them with one all_reduce.
    _, parts = images_and_pixels(rng, dtype, zeros=nonzero)
    first, second = accumulated(kind, parts[:2], nonzero), accumulated(kind, parts[2:], nonzero)
    union = accumulated(kind, parts, nonzero)
    np.testing.assert_array_equal(first.to_array() + second.to_array(), union.to_array())


@pytest.mark.parametrize(("kind", "dtype", "nonzero"), CASES)
def test_merging_rebuilt_arrays_equals_merging_the_accumulators(rng, kind, dtype, nonzero):
    # What torch.distributed does with the arrays of the others, in rank order.
    _, parts = images_and_pixels(rng, dtype, zeros=nonzero)
    first, second = accumulated(kind, parts[:2], nonzero), accumulated(kind, parts[2:], nonzero)
    rebuilt = accumulator_class(kind, nonzero).from_array(first.to_array().copy(), first.count, kind)
    rebuilt.merge(accumulator_class(kind, nonzero).from_array(second.to_array().copy(), second.count, kind))
    first.merge(second)
    assert rebuilt == first


@pytest.mark.parametrize(("kind", "dtype", "nonzero"), CASES)
def test_a_copy_is_independent_of_the_original(rng, kind, dtype, nonzero):
    _, parts = images_and_pixels(rng, dtype, zeros=nonzero)
    accumulator = accumulated(kind, parts[:2], nonzero)
    copy = accumulator.copy()
    assert copy == accumulator
    copy.update(parts[2])
    assert accumulator == accumulated(kind, parts[:2], nonzero) and copy != accumulator


@pytest.mark.parametrize(("kind", "dtype", "nonzero"), CASES)
def test_reordered_permutes_the_channels(rng, kind, dtype, nonzero):
    _, parts = images_and_pixels(rng, dtype, zeros=nonzero)
    order = [2, 0, 1]
    reordered = accumulated(kind, [part[:, order] for part in parts], nonzero)
    assert accumulated(kind, parts, nonzero).reordered(order) == reordered


@pytest.mark.parametrize(("kind", "dtype", "nonzero"), CASES)
def test_an_empty_accumulator_counts_nothing_and_merges_as_nothing(rng, kind, dtype, nonzero):
    empty = new_accumulator(kind, 3, nonzero)
    assert empty.count == 0
    assert accumulator_class(kind, nonzero).from_state({"count": 0, **empty.state()}, kind, 3) == empty
    accumulator = accumulated(kind, images_and_pixels(rng, dtype, zeros=nonzero)[1], nonzero)
    before = accumulator.copy()
    accumulator.merge(empty)
    assert accumulator == before
    empty.merge(accumulator)
    assert empty == accumulator


def test_every_pixel_kind_has_a_concrete_accumulator():
    for table, nonzero in ((ACCUMULATORS, False), (NONZERO_ACCUMULATORS, True)):
        assert set(KIND_OF_DTYPE.values()) == set(table)
        for accumulator in table.values():
            assert issubclass(accumulator, Accumulator) and not inspect.isabstract(accumulator)
            assert accumulator.nonzero == nonzero


# --------------------------------------------------------------------------- each implementation


def test_float_stats_of_many_blocks_equal_the_reference(rng, monkeypatch):
    # Images larger than one float64 block go through the block merge.
    monkeypatch.setattr("norm_transforms.stats.accumulators._FLOAT_BLOCK_PIXELS", 97)
    images = random_images(rng, np.float32, 3, content="offset")
    assert_matches_reference(stats_of(images), images)


def test_integer_sums_stay_exact_beyond_int64_dot_products(rng, monkeypatch):
    # Force the Python-integer route that counts above 2**31 pixels per channel take.
    monkeypatch.setattr("norm_transforms.stats.accumulators._INT64_SAFE_COUNT", 0)
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


def test_int32_sums_of_many_blocks_are_exact(rng, monkeypatch):
    # Images larger than one block: the blocks' sums add up in Python integers.
    monkeypatch.setattr("norm_transforms.stats.accumulators._INTEGER_BLOCK_PIXELS", 97)
    images = random_images(rng, np.int32, 3)
    stats = stats_of(images)
    pixels = np.concatenate([image.reshape(-1, 3) for image in images]).T.tolist()
    state = stats.to_dict()
    assert state["sum"] == [sum(values) for values in pixels]
    assert state["sum_of_squares"] == [sum(v * v for v in values) for values in pixels]


@pytest.mark.parametrize("value", [-(2**31), 2**31 - 1, -1, 0])
def test_int32_extremes_give_their_exact_mean_and_zero_std(value):
    # 2**21 pixels of the value: sums of 2**52 and squares of 2**83, beyond int64 and float64.
    stats = ChannelStats().update(np.full((1024, 2048), value, np.int32))
    assert stats.mean.tolist() == [float(value)] and stats.std.tolist() == [0.0]
    assert stats.to_dict()["sum_of_squares"] == [2**21 * value * value]


def test_int32_totals_of_a_huge_count_survive_the_array_form():
    # 2**62 pixels at the extremes: sums near 2**93 and squares near 2**124, carried in int64 limbs
    # (what torch.distributed moves between ranks).
    count = 2**62
    accumulator = IntegerSumAccumulator.from_state(
        {"count": count, "sum": [-(2**31) * count], "sum_of_squares": [2**62 * count],
         "min": [-(2**31)], "max": [-(2**31)]},
        "int32", 1,
    )  # fmt: skip
    array = accumulator.to_array()
    assert array.dtype == np.int64
    rebuilt = IntegerSumAccumulator.from_array(array, count, "int32")
    assert rebuilt == accumulator
    assert rebuilt.summary().mean.tolist() == [-(2.0**31)] and rebuilt.summary().std.tolist() == [0.0]
