"""The NumPy/OpenCV kernels, through ``norm_transforms.normalize``, against the float64 reference.

Property tests (hypothesis) cover random shapes, channel counts, dtypes and modes; the explicit
tests cover what is specific to this backend: the views NumPy alone has (negative strides,
transposed and read-only arrays), volumes, its OpenCV and C routes (channel groups, the
exactness guard, prescaling), NaN and inf, and ill-conditioned statistics. What every backend
must do is in tests/test_conformance.py.
"""

from __future__ import annotations

import math
import threading
import warnings

import numpy as np
import pytest
from conftest import (
    ALL_DTYPES,
    CONTENTS,
    FLOAT_DTYPES,
    IMAGE_MODES,
    MIN_MAX_MODES,
    MODES,
    PER_IMAGE_MODES,
    PERCENTILE_MODES,
    SIGNED_DTYPES,
    dtype_id,
    full_scale,
    layout_id,
    layout_shape,
    make_image,
    max_pixel_value_for,
    standard_kwargs,
    tolerance,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from reference import reference_normalize, reference_normalize_samples

from norm_transforms import normalize
from norm_transforms.backends.numpy import normalize_planar, normalize_to_planes
from norm_transforms.backends.numpy import statistics as numpy_statistics
from norm_transforms.modes import EPS, NormalizeParams

ATOL = 1e-5
PROPERTY_SETTINGS = settings(max_examples=40, deadline=None)

# --------------------------------------------------------------------------- strategies


def elements_for(dtype) -> st.SearchStrategy:
    """Every value of an integer dtype; finite floats in [-10, 10] (exactly representable)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        return st.integers(int(np.iinfo(dtype).min), int(np.iinfo(dtype).max))
    return st.floats(-10.0, 10.0, width=dtype.itemsize * 8, allow_nan=False, allow_infinity=False)


@st.composite
def images(draw, dtypes=ALL_DTYPES, max_side: int = 40, max_channels: int = 6, leading: tuple = ()):
    """An HW or HWC array (with optional ``leading`` axes) of one of ``dtypes``."""
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    height = draw(st.integers(1, max_side))
    width = draw(st.integers(1, max_side))
    channels = draw(st.none() | st.integers(1, max_channels))
    shape = (*leading, *layout_shape(height, width, channels))
    return draw(arrays(dtype, shape, elements=elements_for(dtype)))


def channel_count(image: np.ndarray, spatial_axes: int = 2) -> int:
    return image.shape[-1] if image.ndim > spatial_axes else 1


# --------------------------------------------------------------------------- properties


@PROPERTY_SETTINGS
@given(image=images(), mode=st.sampled_from(PER_IMAGE_MODES))
def test_per_image_modes_match_float64_reference(image, mode):
    out = normalize(image, normalization=mode)
    np.testing.assert_allclose(out, reference_normalize(image, normalization=mode), **tolerance(mode, ATOL))


@PROPERTY_SETTINGS
@given(image=images(), data=st.data())
def test_standard_mode_matches_float64_reference(image, data):
    kwargs = data.draw(standard_kwargs(channel_count(image)))
    kwargs["max_pixel_value"] = full_scale(image.dtype)
    out = normalize(image, **kwargs)
    np.testing.assert_allclose(out, reference_normalize(image, **kwargs), rtol=0, atol=ATOL)


@PROPERTY_SETTINGS
@given(image=images(), mode=st.sampled_from(MODES))
def test_output_is_float32_with_input_shape(image, mode):
    out = normalize(image, mean=0.4, std=0.25, max_pixel_value=full_scale(image.dtype), normalization=mode)
    assert out.dtype == np.float32
    assert out.shape == image.shape


@PROPERTY_SETTINGS
@given(
    batch=st.integers(1, 4).flatmap(lambda n: images(max_side=12, leading=(n,))),
    mode=st.sampled_from(PER_IMAGE_MODES),
)
def test_batches_use_per_sample_statistics(batch, mode):
    out = normalize(batch, normalization=mode, batched=True)
    expected = reference_normalize_samples(batch, has_channels=batch.ndim == 4, normalization=mode)
    np.testing.assert_allclose(out, expected, **tolerance(mode, ATOL))


def signed_elements(dtype) -> st.SearchStrategy:
    """Values of a signed integer dtype, drawn often from its extremes and around 0 (CT: -1024 air,
    -32768 padding), else from anywhere in its range."""
    info = np.iinfo(dtype)
    edges = [int(info.min), int(info.min) + 1, -1024, -1, 0, 1, 3071, int(info.max) - 1, int(info.max)]
    return st.sampled_from(edges) | st.integers(int(info.min), int(info.max))


@st.composite
def signed_images(draw, leading: tuple = ()):
    """An int16 or int32 array, HW or HWC (with optional ``leading`` axes), often at the extremes."""
    dtype = np.dtype(draw(st.sampled_from(SIGNED_DTYPES)))
    height, width = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    channels = draw(st.none() | st.integers(1, 5))
    shape = (*leading, *layout_shape(height, width, channels))
    return draw(arrays(dtype, shape, elements=signed_elements(dtype)))


@PROPERTY_SETTINGS
@given(image=signed_images(), mode=st.sampled_from(MODES), data=st.data())
def test_signed_images_match_float64_reference(image, mode, data):
    kwargs = data.draw(standard_kwargs(channel_count(image)))
    kwargs |= {"max_pixel_value": full_scale(image.dtype), "normalization": mode}
    out = normalize(image, **kwargs)
    assert out.dtype == np.float32 and out.shape == image.shape
    np.testing.assert_allclose(out, reference_normalize(image, **kwargs), **tolerance(mode, ATOL))


@PROPERTY_SETTINGS
@given(
    batch=st.integers(1, 4).flatmap(lambda n: signed_images(leading=(n,))),
    mode=st.sampled_from(PER_IMAGE_MODES),
)
def test_signed_batches_use_per_sample_statistics(batch, mode):
    out = normalize(batch, normalization=mode, batched=True)
    expected = reference_normalize_samples(batch, has_channels=batch.ndim == 4, normalization=mode)
    np.testing.assert_allclose(out, expected, **tolerance(mode, ATOL))


@PROPERTY_SETTINGS
@given(
    volumes=st.integers(1, 3).flatmap(lambda n: images(max_side=8, leading=(n, 3))),
    mode=st.sampled_from(PER_IMAGE_MODES),
)
def test_volume_batches_use_per_volume_statistics(volumes, mode):
    out = normalize(volumes, normalization=mode, batched=True, volume=True)
    expected = reference_normalize_samples(volumes, has_channels=volumes.ndim == 5, normalization=mode)
    np.testing.assert_allclose(out, expected, **tolerance(mode, ATOL))


@PROPERTY_SETTINGS
@given(
    image=images(dtypes=(np.uint8, np.uint16, np.float16, np.float32)), mode=st.sampled_from(MIN_MAX_MODES)
)
def test_min_max_output_lies_in_unit_interval(image, mode):
    # float64 also has its own regression test below (found by hypothesis).
    out = normalize(image, normalization=mode)
    assert out.min() >= 0.0
    assert out.max() <= 1.0


@pytest.mark.parametrize("mode", MIN_MAX_MODES)
def test_min_max_float64_output_lies_in_unit_interval(mode):
    image = np.array([[4.0, 1.16460545]], dtype=np.float64)  # found by hypothesis; ~8% of random images
    out = normalize(image, normalization=mode)
    assert out.min() >= 0.0
    assert out.max() <= 1.0


@PROPERTY_SETTINGS
@given(image=images(), mode=st.sampled_from(IMAGE_MODES))
def test_image_mode_output_lies_in_plus_minus_20(image, mode):
    out = normalize(image, normalization=mode)
    assert out.min() >= -20.0
    assert out.max() <= 20.0


# --------------------------------------------------------------------------- input handling

VIEWS = {
    "contiguous": lambda x: x,
    "read_only": lambda x: x,  # made read-only below
    "column_step": lambda x: x[:, ::2],
    "transposed": lambda x: x.transpose(1, 0, 2),
    "rows_reversed": lambda x: x[::-1],
    "channels_reversed": lambda x: x[:, :, ::-1],
}


def make_view(rng, dtype, view: str) -> tuple[np.ndarray, np.ndarray]:
    """(base array, view of it) for a 12x14x3 random image."""
    base = make_image(rng, dtype, (12, 14, 3), "random")
    if view == "read_only":
        base.flags.writeable = False
    return base, VIEWS[view](base)


def mode_kwargs(dtype, mode: str) -> dict:
    return {"mean": (0.3, 0.4, 0.5), "std": (0.2, 0.25, 0.3), "max_pixel_value": full_scale(dtype)} | {
        "normalization": mode
    }


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("mode", MODES)
def test_input_is_never_modified(rng, mode, dtype, view):
    base, image = make_view(rng, dtype, view)
    before = base.copy()
    normalize(image, **mode_kwargs(dtype, mode))
    np.testing.assert_array_equal(base, before)


@pytest.mark.parametrize("view", [v for v in VIEWS if v != "contiguous"])
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("mode", MODES)
def test_view_gives_the_same_output_as_its_contiguous_copy(rng, mode, dtype, view):
    _, image = make_view(rng, dtype, view)
    kwargs = mode_kwargs(dtype, mode)
    np.testing.assert_array_equal(
        normalize(image, **kwargs), normalize(np.ascontiguousarray(image), **kwargs)
    )


def constant_values(dtype) -> list:
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        return sorted({int(np.iinfo(dtype).min), 0, 1, 100, int(np.iinfo(dtype).max)})
    return [0.0, 0.3, 1.0, -3.7, 1000.1]


CONSTANT_CASES = [
    pytest.param(dtype, value, id=f"{dtype_id(dtype)}-{value}")
    for dtype in ALL_DTYPES
    for value in constant_values(dtype)
]


@pytest.mark.parametrize("channels", [None, 1, 3, 5], ids=layout_id)
@pytest.mark.parametrize(("dtype", "value"), CONSTANT_CASES)
@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_constant_image_gives_exact_zero(mode, dtype, value, channels):
    image = np.full(layout_shape(9, 11, channels), value, dtype=dtype)
    out = normalize(image, normalization=mode)
    np.testing.assert_array_equal(out, np.zeros(image.shape, np.float32))


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("mode", IMAGE_MODES)
def test_single_outlier_is_clipped_to_20(rng, mode, dtype):
    image = make_image(rng, dtype, (40, 40, 3), "outlier")  # the outlier sits ~40 std out
    out = normalize(image, normalization=mode)
    assert out.max() == 20.0
    assert out.min() >= -20.0
    np.testing.assert_allclose(out, reference_normalize(image, normalization=mode), **tolerance(mode, ATOL))


# --------------------------------------------------------------------------- NaN and inf (README)

# ±inf in the image modes leaks NumPy RuntimeWarnings (test_nan_or_inf_input_emits_no_runtime_warning);
# the other NaN/inf tests check the values only.
NAN_LAYOUTS = [None, 1, 3, 5]  # HW, 1 channel, the OpenCV per-channel route, the NumPy one
BAD_VALUES = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}


def image_with(rng, dtype, channels, bad: float) -> tuple[np.ndarray, tuple]:
    """A random [0, 1) image with ``bad`` at one pixel of the last channel."""
    image = make_image(rng, dtype, layout_shape(9, 11, channels), "random")
    where = (4, 5) if channels is None else (4, 5, channels - 1)
    image[where] = bad
    return image, where


def others(out: np.ndarray, where: tuple) -> np.ndarray:
    mask = np.ones(out.shape, bool)
    mask[where] = False
    return out[mask]


@pytest.mark.parametrize("per_channel_mean", [False, True], ids=["scalar_mean", "vector_mean"])
@pytest.mark.parametrize("channels", NAN_LAYOUTS, ids=layout_id)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
def test_standard_nan_pixel_stays_nan_and_others_finite(rng, dtype, channels, per_channel_mean):
    image, where = image_with(rng, dtype, channels, np.nan)
    count = 1 if channels is None else channels
    mean = tuple(np.linspace(0.3, 0.6, count)) if per_channel_mean else 0.4
    out = normalize(image, mean=mean, std=0.25, max_pixel_value=1.0)
    assert np.isnan(out[where])
    assert np.isfinite(others(out, where)).all()


def _standard_inf_cases():
    for dtype in FLOAT_DTYPES:
        for channels in NAN_LAYOUTS:
            for per_channel_mean in (False, True):
                for sign in ("inf", "-inf"):
                    yield pytest.param(
                        dtype,
                        channels,
                        per_channel_mean,
                        sign,
                        id=f"{dtype_id(dtype)}-{layout_id(channels)}-"
                        f"{'vector' if per_channel_mean else 'scalar'}_mean-{sign}",
                    )


@pytest.mark.parametrize(("dtype", "channels", "per_channel_mean", "sign"), list(_standard_inf_cases()))
def test_standard_inf_pixel_stays_inf(rng, dtype, channels, per_channel_mean, sign):
    image, where = image_with(rng, dtype, channels, BAD_VALUES[sign])
    count = 1 if channels is None else channels
    mean = tuple(np.linspace(0.3, 0.6, count)) if per_channel_mean else 0.4
    out = normalize(image, mean=mean, std=0.25, max_pixel_value=1.0)
    assert out[where] == BAD_VALUES[sign]
    assert np.isfinite(others(out, where)).all()


@pytest.mark.parametrize("bad", BAD_VALUES)
@pytest.mark.parametrize("channels", NAN_LAYOUTS, ids=layout_id)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
def test_image_mode_with_nan_or_inf_is_all_nan(rng, dtype, channels, bad):
    image, _ = image_with(rng, dtype, channels, BAD_VALUES[bad])
    assert np.isnan(normalize(image, normalization="image")).all()


# The per-channel modes and the values that break one channel's statistics: the min_max modes
# skip NaN pixels (documented), so only ±inf breaks them.
CHANNEL_BREAKERS = [("image_per_channel", bad) for bad in ("nan", "inf", "-inf")] + [
    ("min_max_per_channel", bad) for bad in ("inf", "-inf")
]


@pytest.mark.parametrize(("mode", "bad"), CHANNEL_BREAKERS)
@pytest.mark.parametrize("channels", [3, 5], ids=layout_id)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
def test_per_channel_mode_with_nan_or_inf_is_nan_in_that_channel_only(rng, dtype, channels, mode, bad):
    image, _ = image_with(rng, dtype, channels, BAD_VALUES[bad])
    out = normalize(image, normalization=mode)
    assert np.isnan(out[..., -1]).all()
    assert np.isfinite(out[..., :-1]).all()


@pytest.mark.parametrize("bad", ["inf", "-inf"])
@pytest.mark.parametrize("channels", NAN_LAYOUTS, ids=layout_id)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
def test_min_max_with_inf_is_all_nan(rng, dtype, channels, bad):
    image, _ = image_with(rng, dtype, channels, BAD_VALUES[bad])
    assert np.isnan(normalize(image, normalization="min_max")).all()


def call_with_time_limit(function, seconds: float):
    """``function()``, failing (instead of hanging the suite) if it runs longer than ``seconds``."""
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = function()
        except BaseException as error:  # re-raised in the test's thread
            outcome["error"] = error

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still running after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def nan_skipping_min_max(image: np.ndarray, per_channel: bool) -> np.ndarray:
    """SPEC 1 min_max with NaN pixels left out of the minimum and maximum (README decision)."""
    values = image.astype(np.float64)
    values = values[..., None] if values.ndim == 2 else values
    axes = (0, 1) if per_channel else (0, 1, 2)
    low, high = np.nanmin(values, axis=axes), np.nanmax(values, axis=axes)
    return ((values - low) / (high - low + 1e-4)).reshape(image.shape)


@pytest.mark.parametrize("position", ["first_pixel", "middle"])
@pytest.mark.parametrize("channels", NAN_LAYOUTS, ids=layout_id)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("mode", MIN_MAX_MODES)
def test_min_max_skips_nan_pixels_which_stay_nan(rng, mode, dtype, channels, position):
    image, where = image_with(rng, dtype, channels, np.nan)
    if position == "first_pixel":  # OpenCV's minMaxLoc returns NaN when the first pixel is NaN
        image[where] = 0.5
        where = (0,) * image.ndim
        image[where] = np.nan
    out = normalize(image, normalization=mode)
    expected = nan_skipping_min_max(image, per_channel=mode == "min_max_per_channel")
    assert np.isnan(out[where])
    np.testing.assert_allclose(others(out, where), others(expected, where), rtol=0, atol=ATOL)


@pytest.mark.parametrize("bad", BAD_VALUES)
@pytest.mark.parametrize("batched", [False, True], ids=["image", "batch"])
@pytest.mark.parametrize("mode", MODES)
def test_nan_or_inf_input_returns_promptly_without_raising(rng, mode, batched, bad):
    image, _ = image_with(rng, np.float32, 3, BAD_VALUES[bad])
    data = np.stack([image, image]) if batched else image
    out = call_with_time_limit(lambda: normalize(data, normalization=mode, batched=batched), seconds=10.0)
    assert out.shape == data.shape


def _warning_cases():
    for mode in MODES:
        for bad in BAD_VALUES:
            yield pytest.param(mode, bad, id=f"{mode}-{bad}")


@pytest.mark.parametrize(("mode", "bad"), list(_warning_cases()))
def test_nan_or_inf_input_emits_no_runtime_warning(rng, mode, bad):
    image, _ = image_with(rng, np.float32, 3, BAD_VALUES[bad])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        normalize(image, mean=0.4, std=0.25, max_pixel_value=1.0, normalization=mode)


@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_inf_in_one_batch_image_leaves_the_others_finite(rng, mode):
    batch = make_image(rng, np.float32, (3, 9, 11, 3), "random")
    batch[1, 4, 5, :] = np.inf
    out = normalize(batch, normalization=mode, batched=True)
    assert np.isfinite(out[[0, 2]]).all()
    assert not np.isfinite(out[1]).all()  # NaN where the statistics break, inf where they hold (robust)


# --------------------------------------------------------------------------- statistics accuracy

NEAR_CONSTANT_CASES = [
    pytest.param(dtype, mode, id=f"{dtype_id(dtype)}-{mode}")
    for dtype in (np.float32, np.float64)
    for mode in IMAGE_MODES
]


@pytest.mark.parametrize(("dtype", "mode"), NEAR_CONSTANT_CASES)
def test_near_constant_float_image_matches_float64_reference(rng, dtype, mode):
    # std / mean ~ 1e-5: one-pass sums of x and x² would lose every digit; the moments kernel sums
    # x - k, k the first pixel, which keeps them.
    # The values are float32 numbers for both dtypes: float64 pixels are rounded to float32 before the
    # affine by design (README), which this test leaves out.
    image = (1000.0 + 0.01 * rng.standard_normal((32, 32, 3))).astype(np.float32).astype(dtype)
    expected = reference_normalize(image, normalization=mode)
    np.testing.assert_allclose(normalize(image, normalization=mode), expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize(("dtype", "mode"), NEAR_CONSTANT_CASES)
def test_first_pixel_far_in_the_tail_matches_float64_reference(rng, dtype, mode):
    # The moments kernel sums x - k from the first pixel k; 1e6 here lies ~200 std from the mean
    # of every scope, where those sums would cancel: the scope is recomputed in two passes.
    image = (1000.0 + 0.01 * rng.standard_normal((128, 128, 3))).astype(np.float32).astype(dtype)
    image[0, 0] = 1e6
    expected = reference_normalize(image, normalization=mode)
    np.testing.assert_allclose(normalize(image, normalization=mode), expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize(
    "mode",
    [
        "image",
        "image_per_channel",
        "min_max",
        "min_max_per_channel",
    ],
)
def test_near_constant_uint16_image_matches_float64_reference(rng, mode):
    image = rng.integers(30000, 30003, size=(32, 32, 3), endpoint=True).astype(np.uint16)
    expected = reference_normalize(image, normalization=mode)
    np.testing.assert_allclose(normalize(image, normalization=mode), expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_low_contrast_uint8_image_matches_float64_reference(rng, mode):
    # Values 100..103: the fused affine would lose digits; the kernel uses an exact float64 table.
    image = rng.integers(100, 103, size=(32, 32, 3), endpoint=True).astype(np.uint8)
    expected = reference_normalize(image, normalization=mode)
    np.testing.assert_allclose(normalize(image, normalization=mode), expected, rtol=0, atol=ATOL)


def test_smallest_center_rounding_example():
    # Two float32 neighbours: the mean 0.50000003 is not a float32, std 3e-8 << eps.
    image = np.array([[0.5, np.nextafter(np.float32(0.5), np.float32(1))]], dtype=np.float32)
    expected = reference_normalize(image, normalization="image")
    np.testing.assert_allclose(normalize(image, normalization="image"), expected, rtol=0, atol=ATOL)


# --------------------------------------------------------------------------- channel-planar batches


def _mixed_planar_batch(rng, dtype) -> np.ndarray:
    """(5, 3, 9, 11): random, constant, near-constant, low-contrast samples, and for floats a NaN in
    one channel and an inf in another; one kernel call serves all of them, the irregular ones
    (undefined or ill-conditioned statistics) must still come out as when normalized alone."""
    dtype = np.dtype(dtype)
    planes = np.stack([make_image(rng, dtype, (3, 9, 11), content) for content in CONTENTS])
    if dtype.kind == "f":
        broken = make_image(rng, dtype, (3, 9, 11), "random")
        broken[0, 2, 3], broken[2, 4, 5] = np.nan, np.inf
    else:
        broken = (rng.integers(100, 103, size=(3, 9, 11), endpoint=True)).astype(dtype)
    return np.concatenate([planes, broken[None]])


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("mode", MODES)
def test_planar_batch_matches_each_sample_alone(rng, mode, dtype):
    planes = _mixed_planar_batch(rng, dtype)
    params = NormalizeParams.build(max_pixel_value=max_pixel_value_for(dtype), normalization=mode)
    out = normalize_planar(planes, params)
    for sample, sample_out in zip(planes, out, strict=True):
        interleaved = np.moveaxis(sample, 0, -1)
        with np.errstate(invalid="ignore"):
            expected = reference_normalize(interleaved, max_pixel_value=full_scale(dtype), normalization=mode)
        # Where the reference is undefined (NaN in the scope) or differs on purpose (inf in a scope
        # gives NaN, SPEC), the same as the sample alone gives.
        alone = normalize(interleaved, max_pixel_value=full_scale(dtype), normalization=mode)
        got = np.moveaxis(sample_out, 0, -1)
        np.testing.assert_allclose(got, alone, **tolerance(mode, ATOL))  # NaN where alone has NaN
        defined = ~np.isnan(expected) & ~np.isnan(alone)
        np.testing.assert_allclose(got[defined], expected[defined], **tolerance(mode, ATOL))


# --------------------------------------------------------------------------- percentile modes


@pytest.mark.parametrize("percentiles", [(1.0, 99.0), (0.0, 100.0), (12.5, 87.5), (0.3, 99.7)])
@pytest.mark.parametrize("channels", [None, 1, 3, 5], ids=layout_id)
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("mode", PERCENTILE_MODES)
def test_percentile_modes_match_np_percentile_reference(rng, mode, dtype, channels, percentiles):
    # Integers go through exact per-channel histograms (65536 bins for uint16); the reference
    # sorts with np.percentile.
    image = make_image(rng, dtype, layout_shape(37, 29, channels), "random")
    kwargs = {"max_pixel_value": full_scale(dtype), "normalization": mode}
    out = normalize(image, percentiles=percentiles, **kwargs)
    expected = reference_normalize(image, percentiles=percentiles, **kwargs)
    np.testing.assert_allclose(out, expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("shape", [(37, 29), (37, 29, 3), (2, 9, 7, 5)], ids=str)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16], ids=dtype_id)
def test_integer_percentiles_from_histograms_are_the_partitions_bits(monkeypatch, rng, dtype, shape):
    # Small scopes take np.percentile's partition, others a histogram of every value: forced
    # each way, the same output and params, bit for bit, on values few enough to tie.
    image = rng.integers(0, 40, shape).astype(dtype) * (1 if dtype == np.uint8 else 997)
    if dtype == np.int16:
        image -= 20000
    batched = len(shape) == 4
    for mode in [*PERCENTILE_MODES, "robust", "robust_per_channel"]:
        kwargs = {"normalization": mode, "percentiles": (3.0, 62.5), "max_pixel_value": 1.0}
        results = []
        for least in (0.0, math.inf):  # every scope counted in a histogram, then none
            monkeypatch.setattr(numpy_statistics, "HISTOGRAM_MIN_PIXELS_PER_BIN", least)
            results.append(normalize(image, **kwargs, batched=batched, return_params=True))
        (histogram, histogram_params), (partition, partition_params) = results
        np.testing.assert_array_equal(histogram, partition)
        np.testing.assert_array_equal(histogram_params.center, partition_params.center)
        np.testing.assert_array_equal(histogram_params.scale, partition_params.scale)


@PROPERTY_SETTINGS
@given(
    values=arrays(
        st.sampled_from([np.float32, np.float64]),
        st.tuples(st.integers(1, 300), st.integers(1, 4)),
        elements=st.floats(-1e6, 1e6, width=32) | st.sampled_from([0.0, -0.0, 1.0, np.inf, -np.inf]),
    ),
    percentiles=st.lists(st.floats(0.0, 100.0) | st.sampled_from([0.0, 50.0, 100.0]), min_size=1, max_size=3),
)
def test_partitioned_percentiles_are_np_percentiles_bits(values, percentiles):
    # The partition around the interpolated ranks replaces np.percentile (its checks cost 60 us
    # a call): the same bits, dtype and the sign of zero included (a review found -0.0 and 0.0
    # swapped), infinities and ties too; None for NaN columns.
    with np.errstate(invalid="ignore"):  # inf - inf: NaN from both
        ours = numpy_statistics._partitioned_percentiles(values, percentiles)
        expected = np.percentile(values, percentiles, axis=0)
    assert ours.dtype == expected.dtype
    np.testing.assert_array_equal(ours.view(np.uint64), expected.view(np.uint64))
    values[-1, -1] = np.nan
    assert numpy_statistics._partitioned_percentiles(values, percentiles) is None


@PROPERTY_SETTINGS
@given(image=images(), mode=st.sampled_from(PERCENTILE_MODES), data=st.data())
def test_percentile_modes_match_reference_for_any_percentiles(image, mode, data):
    low = data.draw(st.floats(0.0, 99.0))
    high = data.draw(st.floats(low + 0.5, 100.0))
    kwargs = {"max_pixel_value": full_scale(image.dtype), "normalization": mode, "percentiles": (low, high)}
    np.testing.assert_allclose(
        normalize(image, **kwargs), reference_normalize(image, **kwargs), rtol=0, atol=ATOL
    )


def test_percentile_mode_ignores_hot_pixels_that_min_max_follows(rng):
    image = rng.integers(60, 190, size=(64, 64, 3), endpoint=True).astype(np.uint8)
    image[0, :8], image[1, :8] = 255, 0  # 16 stuck pixels of 4096: under 1% on each side
    body = (slice(2, None), slice(None))
    robust = normalize(image, normalization="percentile")[body]
    plain = normalize(image, normalization="min_max")[body]
    assert np.ptp(robust) == 1.0  # the body spans [0, 1] (its own 1% tails clipped)
    assert np.ptp(plain) < 0.55  # the hot pixels squeeze the body into ~half the range


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("mode", PERCENTILE_MODES)
def test_percentile_modes_skip_nan_pixels_which_stay_nan(rng, mode, dtype):
    image = make_image(rng, dtype, (31, 23, 3), "random")
    image[3, 4, :] = image[10, :, 1] = np.nan
    out = normalize(image, normalization=mode, max_pixel_value=1.0)
    values = image.astype(np.float64)
    axes = (0, 1) if mode == "percentile_per_channel" else None
    low, high = np.nanpercentile(values, (1.0, 99.0), axis=axes)
    expected = np.clip((values - low) / (high - low + EPS), 0.0, 1.0)
    np.testing.assert_allclose(out, expected, rtol=0, atol=ATOL)  # NaN where the input is NaN


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_percentile_mode_clips_a_few_infinite_pixels_and_is_nan_when_a_percentile_is_infinite(rng, sign):
    image = make_image(rng, np.float32, (20, 20), "random")
    image[0, :2] = sign * np.inf  # 2 of 400 pixels: beyond the 1st / 99th percentile
    out = normalize(image, normalization="percentile", max_pixel_value=1.0)
    assert np.isfinite(out).all()
    assert (out[0, :2] == (1.0 if sign > 0 else 0.0)).all()
    image[1, :] = sign * np.inf  # 22 pixels, 5.5%: the percentile itself is infinite
    assert np.isnan(normalize(image, normalization="percentile", max_pixel_value=1.0)).all()


# --------------------------------------------------------------------------- scale safety (SPEC 6)

# Magnitudes beyond float32 (float64 only), near its top (where squares and max - min overflow
# float32 and a float32 scale is subnormal), and tiny ones.
SCALES = {
    np.dtype(np.float32): [1e-30, 1e30, 3e37],
    np.dtype(np.float64): [1e-300, 1e-30, 1e30, 3e37, 1e100, 1e300, 8e307],
}
SCALE_CASES = [(dtype, scale) for dtype, scales in SCALES.items() for scale in scales]


@pytest.mark.parametrize("batched", [False, True], ids=["image", "batch"])
@pytest.mark.parametrize(("dtype", "scale"), SCALE_CASES, ids=lambda v: f"{v}")
@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_per_image_modes_are_scale_safe_for_any_finite_input(rng, mode, dtype, scale, batched):
    # Values in [-scale, scale): at 8e307 the range max - min is itself beyond float64.
    unit = rng.random((2, 13, 11, 3)) * 2.0 - 1.0
    image = (unit * scale).astype(dtype)
    out = normalize(image if batched else image[0], normalization=mode, batched=batched)
    expected = reference_normalize_samples(image, has_channels=True, normalization=mode)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, expected if batched else expected[0], rtol=0, atol=ATOL)


@pytest.mark.parametrize("scale", [1e30, 1e300])
@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_image_times_a_huge_factor_gives_the_same_output_within_eps(rng, mode, scale):
    # SPEC 6: the same output for an image and the image x 1e30. eps (1e-4, absolute) is the
    # only difference: on values of std ~0.6 it moves the output by at most ~4e-4.
    image = rng.random((17, 19, 3)) * 2.0 - 1.0
    np.testing.assert_allclose(
        normalize(image * scale, normalization=mode), normalize(image, normalization=mode), rtol=0, atol=5e-4
    )


@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_constant_image_beyond_float32_gives_exact_zero(mode):
    out = normalize(np.full((5, 6, 3), -1e300), normalization=mode)
    assert (out == 0.0).all()


@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_return_params_of_a_prescaled_image_invert_it(rng, mode):
    from norm_transforms import denormalize

    image = (rng.random((9, 8, 3)) + 0.5) * 1e300
    out, params = normalize(image, normalization=mode, return_params=True)
    unclipped = (out > 0.0) & (out < 1.0) if mode not in IMAGE_MODES else np.abs(out) < 20.0
    back = denormalize(out, params=params, dtype=np.float64)
    np.testing.assert_allclose(back[unclipped], image[unclipped], rtol=1e-6)


# --------------------------------------------------------------------------- channel counts


@pytest.mark.parametrize("size", [(8, 8), (7, 9)], ids=["HW_multiple_of_4", "HW_odd"])
@pytest.mark.parametrize("channels", [33, 35, 66, 127, 128, 129, 200, 513])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32], ids=dtype_id)
def test_image_per_channel_takes_any_channel_count(rng, dtype, channels, size):
    # cv2.meanStdDev refuses more than 128 channels, and the grouped views of some counts
    # (33 -> 132) went past that limit.
    image = make_image(rng, dtype, (*size, channels), "random")
    kwargs = {"max_pixel_value": full_scale(dtype), "normalization": "image_per_channel"}
    np.testing.assert_allclose(normalize(image, **kwargs), reference_normalize(image, **kwargs), atol=ATOL)


@pytest.mark.parametrize("dtype", ["nonsense", 3.5, object(), np.float64, "uint8"])
def test_output_dtype_other_than_float32_or_float16_is_refused_with_our_message(rng, dtype):
    message = r"NumPy images normalize to float32 \(default\) or float16; got dtype="
    with pytest.raises(TypeError, match=message):
        normalize(make_image(rng, np.uint8, (4, 4, 3), "random"), dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float16, "float16", np.dtype("float16")], ids=str)
def test_float16_output_is_asked_for_as_numpy_reads_a_dtype(rng, dtype):
    assert normalize(make_image(rng, np.uint8, (4, 4, 3), "random"), dtype=dtype).dtype == np.float16


# --------------------------------------------------------------------------- robust modes


def test_robust_mode_ignores_hot_pixels_that_image_mode_follows(rng):
    image = rng.normal(120, 20, size=(64, 64, 3)).clip(0, 255).astype(np.uint8)
    hot = image.copy()
    hot[0, :40] = 255  # 40 stuck pixels of 4096 (1%)
    body = (slice(1, None), slice(None))
    robust_shift = np.abs(
        normalize(hot, normalization="robust")[body] - normalize(image, normalization="robust")[body]
    )
    image_shift = np.abs(
        normalize(hot, normalization="image")[body] - normalize(image, normalization="image")[body]
    )
    assert robust_shift.max() < 0.2  # the median and quartiles move by a few levels
    assert image_shift.max() > 0.5  # the mean and std follow the hot pixels


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16], ids=dtype_id)
@pytest.mark.parametrize("mode", ["robust", "robust_per_channel"])
def test_robust_statistics_of_integer_images_are_exact(rng, mode, dtype):
    # From the histogram, the same median and quartiles as np.percentile's linear method.
    image = make_image(rng, dtype, (31, 29, 3), "random")
    _, params = normalize(image, normalization=mode, max_pixel_value=None, return_params=True)
    axis = (0, 1) if mode == "robust_per_channel" else None
    q1, median, q3 = np.percentile(image.astype(np.float64), (25, 50, 75), axis=axis)
    np.testing.assert_array_equal(params.center.ravel(), np.ravel(median))
    np.testing.assert_allclose(params.scale.ravel(), np.ravel(1.0 / (q3 - q1 + EPS)), rtol=1e-15)


@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan_channel", "inf_pixel"])
@pytest.mark.parametrize("mode", ["image_per_channel", "min_max_per_channel", "percentile_per_channel"])
def test_a_broken_channel_leaves_the_prescaling_of_the_others_on(rng, mode, bad):
    # The exponent came from min()/max() over every channel: a NaN first or an inf anywhere
    # turned the scaling off, and the huge channel came out wrong or NaN.
    image = (rng.random((20, 20, 2)) * 2.0 - 1.0) * 1.5e308
    if np.isnan(bad):
        image[..., 0] = np.nan
    else:
        image[0, 0, 0] = np.inf
    out = normalize(image, normalization=mode)
    expected = reference_normalize(image[..., 1:], normalization=mode)
    np.testing.assert_allclose(out[..., 1:], expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("out_dtype", [np.float32, np.float16], ids=dtype_id)
@pytest.mark.parametrize("channels", [1, 3, 4, 6])
@pytest.mark.parametrize(
    "dtype", [np.uint8, np.uint16, np.int16, np.float16, np.float32, np.float64], ids=dtype_id
)
def test_normalize_to_planes_is_normalize_planar_of_the_split_image_bit_for_bit(
    rng, dtype, channels, out_dtype
):
    image = make_image(rng, dtype, (37, 41, channels), "random")[:, ::-1]  # any strides
    max_pixel_value = 1.0 if np.dtype(dtype).kind in "fi" else None
    for clip_range in (None, (-0.5, 0.5)):
        params = NormalizeParams.build(0.4, 0.3, max_pixel_value, "standard", clip_range=clip_range)
        expected = np.empty((1, channels, 37, 41), out_dtype)
        normalize_planar(np.ascontiguousarray(image.transpose(2, 0, 1))[None], params, out=expected)
        out = normalize_to_planes(image, params, out=np.empty((channels, 37, 41), out_dtype))
        np.testing.assert_array_equal(out, expected[0])


def test_normalize_to_planes_refuses_per_image_modes_and_wrong_outputs(rng):
    image = make_image(rng, np.uint8, (4, 5, 3), "random")
    with pytest.raises(ValueError, match="standard mode only; got 'image'"):
        normalize_to_planes(
            image, NormalizeParams.build(normalization="image"), out=np.empty((3, 4, 5), np.float32)
        )
    with pytest.raises(
        ValueError,
        match=r"out must be a writeable C-contiguous float32 or float16 array of shape \(3, 4, 5\)",
    ):
        normalize_to_planes(image, NormalizeParams.build(), out=np.empty((4, 5, 3), np.float32))


def test_normalize_to_planes_reads_an_overlapping_source_before_writing(rng):
    image = make_image(rng, np.float32, (6, 7, 3), "random")
    params = NormalizeParams.build(0.4, 0.3, 1.0, "standard")
    expected = normalize_to_planes(image, params, out=np.empty((3, 6, 7), np.float32))
    shared = image.copy()
    out = normalize_to_planes(shared, params, out=shared.reshape(3, 6, 7))
    np.testing.assert_array_equal(out, expected)
