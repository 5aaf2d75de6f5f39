"""``ChannelStats`` (norm_transforms/stats/channel_stats.py): exactness against a float64
reference over all pixels at once, independence of order, batching and merging, percentiles,
the histogram kernel it counts with, the Normalize arguments, bad input, threads sharing one
``ChannelStats``, Torch tensors, pickling.

The rest of the stats package is tested beside it, in files that import the helpers defined
here (``random_images``, ``stats_of``, the float64 reference): test_stats_accumulators.py,
test_stats_serialization.py, test_stats_sources.py (``compute_stats``: files, other sources,
worker processes, the ``stats`` command), test_stats_shards.py (tar shards) and
test_stats_distributed.py (ranks of a process group, the command under torchrun).
"""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
import threading
from copy import deepcopy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from norm_transforms import ChannelStats

RTOL = 1e-9  # the target: mean and std within 1e-9 relative of the float64 reference


# --------------------------------------------------------------------------- reference


def pooled_pixels(images: list[np.ndarray]) -> np.ndarray:
    """Every pixel of every channels-last image, as float64 rows ``(P, C)``: the reference data."""
    channels = 1 if images[0].ndim == 2 else images[0].shape[-1]
    return np.concatenate([image.reshape(-1, channels).astype(np.float64) for image in images])


def assert_matches_reference(
    stats: ChannelStats, images: list[np.ndarray], rtol: float = RTOL, nonzero: bool = False
) -> None:
    """Every statistic against float64 NumPy over the pooled pixels; with ``nonzero``, over each
    channel's non-zero values (NaN for a channel without one), which ``counts`` counts."""
    pixels = pooled_pixels(images)
    assert stats.count == len(pixels)
    assert stats.channels == pixels.shape[1]
    if not nonzero:
        np.testing.assert_allclose(stats.mean, pixels.mean(axis=0), rtol=rtol, atol=0)
        np.testing.assert_allclose(stats.std, pixels.std(axis=0), rtol=rtol, atol=0)
        np.testing.assert_array_equal(stats.min, pixels.min(axis=0))
        np.testing.assert_array_equal(stats.max, pixels.max(axis=0))
        return
    values = [column[column != 0] for column in pixels.T]
    np.testing.assert_array_equal(stats.counts, [len(column) for column in values])
    expected = {"mean": np.mean, "std": np.std, "min": np.min, "max": np.max}
    for name, reduce in expected.items():
        reference = [reduce(column) if column.size else np.nan for column in values]
        np.testing.assert_allclose(getattr(stats, name), reference, rtol=rtol, atol=0, err_msg=name)


def with_zeros(rng, image: np.ndarray, share: float = 0.3) -> np.ndarray:
    """A copy with a ``share`` of its values set to 0, each channel on its own."""
    image = image.copy()
    image[rng.random(image.shape) < share] = 0
    return image


def random_images(rng, dtype, channels: int | None, count: int = 6, content: str = "random") -> list:
    """Images of different sizes (HW when ``channels`` is None, else HWC).

    ``content``: ``random`` over the full range (integers) or [0, 1) (floats); ``offset``: a
    large mean with a small spread (the case where E[x²] - E[x]² would lose every digit).
    ``negative_offset``: the same at the lowest values of a signed type.
    """
    dtype = np.dtype(dtype)
    images = []
    for _ in range(count):
        shape = (int(rng.integers(1, 40)), int(rng.integers(1, 40)))
        shape += () if channels is None else (channels,)
        if content == "negative_offset":
            bottom = np.iinfo(dtype).min
            images.append(rng.integers(bottom, bottom + 3, size=shape, dtype=dtype, endpoint=True))
        elif content == "offset" and dtype.kind == "f":
            images.append((1000.0 + rng.random(shape) * 1e-3).astype(dtype))
        elif content == "offset":
            top = np.iinfo(dtype).max
            images.append(rng.integers(top - 3, top, size=shape, dtype=dtype, endpoint=True))
        elif dtype.kind in "ui":  # the whole range, negative values of signed types included
            info = np.iinfo(dtype)
            images.append(rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True))
        else:
            images.append(rng.random(shape).astype(dtype))
    return images


def stats_of(images, nonzero: bool = False) -> ChannelStats:
    stats = ChannelStats(nonzero=nonzero)
    for image in images:
        stats.update(image)
    return stats


# --------------------------------------------------------------------------- exactness


DTYPES = [np.uint8, np.uint16, np.int16, np.int32, np.float16, np.float32, np.float64]
# Exact: integer counts (histograms, or the integer sums of int32).
INTEGER_DTYPES = [np.uint8, np.uint16, np.int16, np.int32]
# Kept as histograms: percentiles.
HISTOGRAM_DTYPES = [np.uint8, np.uint16, np.int16]


@pytest.mark.parametrize("content", ["random", "offset"])
@pytest.mark.parametrize("channels", [None, 1, 3, 4])
@pytest.mark.parametrize("dtype", DTYPES)
def test_stats_equal_the_float64_reference_over_all_pixels(rng, dtype, channels, content):
    images = random_images(rng, dtype, channels, content=content)
    assert_matches_reference(stats_of(images), images)


EXACT_CASES = [
    pytest.param(dtype, content, id=f"{np.dtype(dtype).name}-{content}")
    for dtype in INTEGER_DTYPES
    for content in ("random", "offset", "negative_offset")
    if content != "negative_offset" or np.dtype(dtype).kind == "i"
]


@pytest.mark.parametrize(("dtype", "content"), EXACT_CASES)
def test_integer_mean_and_std_are_the_exact_values_rounded_once(rng, dtype, content):
    # Exact sums in Python integers over the raw pixels (not the histogram): the mean and the
    # variance are then rationals, and int / int rounds them once, correctly.
    images = random_images(rng, dtype, 2, content=content)
    pixels = np.concatenate([image.reshape(-1, 2) for image in images]).T.tolist()
    stats = stats_of(images)
    for channel, values in enumerate(pixels):
        count, first, second = len(values), sum(values), sum(v * v for v in values)
        assert stats.mean[channel] == first / count
        assert stats.std[channel] == math.sqrt((count * second - first * first) / (count * count))


@pytest.mark.parametrize("dtype", INTEGER_DTYPES)
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


dtypes = st.sampled_from(DTYPES)
channel_counts = st.sampled_from([None, 1, 2, 3, 4, 5])


@settings(max_examples=60, deadline=None)
@given(dtype=dtypes, channels=channel_counts, count=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_any_split_into_updates_and_merges_equals_the_reference(dtype, channels, count, seed):
    rng = np.random.default_rng(seed)
    images = random_images(rng, dtype, channels, count=count)
    cut = int(rng.integers(0, count + 1))
    stats = stats_of(images[:cut]).merge(stats_of(images[cut:]))
    assert_matches_reference(stats, images)
    if np.dtype(dtype).kind in "ui":
        assert stats == stats_of(images)


# --------------------------------------------------------------------------- percentiles


@pytest.mark.parametrize("method", ["linear", "inverted_cdf"])
@pytest.mark.parametrize("dtype", HISTOGRAM_DTYPES)
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


@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_percentile_of_float_or_int32_data_is_refused(rng, dtype):
    stats = stats_of(random_images(rng, dtype, 3))
    assert stats.histogram is None
    with pytest.raises(ValueError, match=f"histogram .* uint8, uint16 and int16 .* of {stats.kind} images"):
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


def test_int16_histogram_counts_value_v_in_bin_v_plus_32768(rng):
    image = np.array([[-32768, -1], [0, 32767]], np.int16)
    histogram = stats_of([image, image[:1]]).histogram
    assert histogram.shape == (1, 65536)
    assert {int(b): int(histogram[0, b]) for b in np.flatnonzero(histogram[0])} == {
        0: 2,
        32767: 2,
        32768: 1,
        65535: 1,
    }
    stats = stats_of([image])
    assert stats.min.tolist() == [-32768.0] and stats.max.tolist() == [32767.0]
    assert stats.median.tolist() == [np.median(image.astype(np.float64))]


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
        (
            np.zeros(6, np.float32),
            np.zeros(256, np.int64),
            TypeError,
            "source must hold uint8, uint16 or int16",
        ),
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


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.float32])
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


# Signed integers have no full scale: their mean and std stay in the data's units (1.0).
@pytest.mark.parametrize(
    ("dtype", "scale"),
    [(np.uint8, 255.0), (np.uint16, 65535.0), (np.int16, 1.0), (np.int32, 1.0), (np.float64, 1.0)],
)
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


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("images", "error", "message"),
    [
        (np.zeros(5, np.uint8), ValueError, r"got shape \(5,\)"),
        (np.zeros((1, 2, 2, 2, 3), np.uint8), ValueError, "got shape"),
        (np.zeros((0, 4, 3), np.uint8), ValueError, "empty"),
        (
            np.zeros((4, 4), np.int64),
            TypeError,
            "int64 is not supported; accepted: uint8, uint16, int16, int32",
        ),
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


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.float32])
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


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.float32])
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
        if np.dtype(dtype).kind in "ui":
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


# --------------------------------------------------------------------------- tensors


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


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32", "uint16", "int16", "int32"])
def test_tensor_dtypes(rng, torch, name):
    dtype = getattr(torch, name)
    tensor = torch.from_numpy(rng.random((2, 3, 5, 6)).astype(np.float32) * 1000).to(dtype)
    pixels = tensor.to(torch.float64).permute(0, 2, 3, 1).numpy()
    assert_matches_reference(ChannelStats().update(tensor), [pixels])


def test_tensor_of_unsupported_shape_or_dtype_is_refused(torch):
    with pytest.raises(ValueError, match=r"\(N, C, H, W\); got shape \(1, 1, 1, 2, 2\)"):
        ChannelStats().update(torch.zeros(1, 1, 1, 2, 2))
    with pytest.raises(TypeError, match="int64 is not supported"):
        ChannelStats().update(torch.zeros(3, 2, 2, dtype=torch.int64))


def test_importing_and_counting_arrays_does_not_import_torch():
    code = (
        "import sys, numpy as np, norm_transforms as nt; "
        "nt.compute_stats([np.zeros((2, 2, 3), np.uint8)], progress=False); "
        "nt.ChannelStats().update(np.zeros((2, 2), np.float32)); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- pickling


def test_pickled_stats_are_equal_and_have_their_own_lock(rng):
    for dtype in (np.uint8, np.float32):
        stats = stats_of(random_images(rng, dtype, 3))
        image = random_images(rng, dtype, 3, count=1)[0]
        for copied in (pickle.loads(pickle.dumps(stats)), deepcopy(stats)):
            assert copied == stats and copied._lock is not stats._lock
            assert copied.update(image) == deepcopy(stats).update(image)  # its lock works


# --------------------------------------------------------------------------- nonzero=True


@pytest.mark.parametrize("channels", [None, 1, 3])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float16, np.float32, np.float64])
def test_nonzero_stats_equal_the_float64_reference_over_the_non_zero_values(rng, dtype, channels):
    images = [with_zeros(rng, image) for image in random_images(rng, dtype, channels)]
    stats = stats_of(images, nonzero=True)
    assert stats.nonzero
    assert_matches_reference(stats, images, nonzero=True)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_nonzero_stats_of_images_without_zeros_equal_the_plain_stats(rng, dtype):
    # No zero value anywhere: 1 and up (integers), [1, 2) (floats).
    shifted = {"u": lambda image: np.maximum(image, 1), "f": lambda image: image + 1}
    images = [shifted[image.dtype.kind](image) for image in random_images(rng, dtype, 3)]
    plain, nonzero = stats_of(images), stats_of(images, nonzero=True)
    for name in ("mean", "std", "min", "max"):
        np.testing.assert_allclose(getattr(nonzero, name), getattr(plain, name), rtol=1e-12, err_msg=name)
    np.testing.assert_array_equal(nonzero.counts, plain.counts)


@pytest.mark.parametrize("method", ["linear", "inverted_cdf"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_nonzero_percentiles_equal_numpy_over_the_non_zero_values(rng, dtype, method):
    images = [with_zeros(rng, image, share=0.5) for image in random_images(rng, dtype, 3)]
    stats = stats_of(images, nonzero=True)
    values = [column[column != 0] for column in pooled_pixels(images).T]
    q = [0.0, 1.0, 25.0, 50.0, 99.0, 100.0]
    expected = np.stack([np.percentile(column, q, method=method) for column in values], axis=1)
    np.testing.assert_array_equal(stats.percentile(q, method=method), expected)
    np.testing.assert_array_equal(stats.median, [np.median(column) for column in values])


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_a_channel_without_a_non_zero_value_has_nan_statistics_and_no_normalize_kwargs(rng, dtype):
    image = random_images(rng, dtype, 3, count=1)[0]
    image[..., 1] = 0
    stats = ChannelStats(nonzero=True).update(image)
    assert stats.counts.tolist() == [np.count_nonzero(image[..., 0]), 0, np.count_nonzero(image[..., 2])]
    for name in ("mean", "std", "min", "max"):
        values = getattr(stats, name)
        assert np.isnan(values[1]) and np.isfinite(values[[0, 2]]).all(), name
    with pytest.raises(ValueError, match=r"channel\(s\) \[1\] have no non-zero value"):
        stats.to_normalize_kwargs()
    assert stats.count == image.shape[0] * image.shape[1]  # every pixel read


def test_nonzero_and_plain_stats_do_not_merge_or_compare_equal(rng):
    images = random_images(rng, np.uint8, 3)
    plain, nonzero = stats_of(images), stats_of(images, nonzero=True)
    message = r"cannot merge a ChannelStats\(nonzero=False\) into a ChannelStats\(nonzero=True\)"
    with pytest.raises(ValueError, match=message):
        nonzero.merge(plain)
    with pytest.raises(ValueError, match=r"nonzero=True\) into a ChannelStats\(nonzero=False\)"):
        plain.merge(ChannelStats(nonzero=True))
    assert plain != nonzero and ChannelStats() != ChannelStats(nonzero=True)


def test_nonzero_must_be_a_bool():
    with pytest.raises(TypeError, match="nonzero must be True or False; got 1"):
        ChannelStats(nonzero=1)


def test_nonzero_stats_say_so_in_the_repr_and_survive_pickling(rng):
    for dtype in (np.uint8, np.float32):
        stats = stats_of([with_zeros(rng, image) for image in random_images(rng, dtype, 3)], nonzero=True)
        assert "nonzero=True, counts=[" in repr(stats)
        copied = pickle.loads(pickle.dumps(stats))
        assert copied == stats and copied.nonzero
        np.testing.assert_array_equal(copied.counts, stats.counts)
