"""The conformance suite: every backend (and route) through ``norm_transforms.normalize`` /
``denormalize`` against the float64 reference (tests/reference.py), on the same inputs.

A backend is done when it passes this file; its own test module keeps only what is specific
to it (OpenCV routes, channels_last, CUDA). Backends and routes here:

- ``numpy``: NumPy arrays on the C kernels;
- ``numpy_fallback``: the same with the NumPy/OpenCV fallback kernels (no C compiler);
- ``torch_cpu``: CPU tensors, which go through the NumPy backend's kernels on zero-copy views;
- ``torch_ops``: the Torch-op route that CUDA tensors take without Triton, forced on CPU tensors;
- ``torch_triton``: the Triton kernels, on CPU tensors in Triton's interpreter (forced with
  ``NORM_TRANSFORMS_FORCE_TRITON=1``), or on CUDA tensors where a GPU runs them compiled.

Images are written once, channels-last (``(H, W)``, ``(H, W, C)``, ``(N, H, W, C)``), and each
backend case converts them to its own layout (Torch: ``(H, W)``, ``(C, H, W)``,
``(N, C, H, W)``) and back. Mode and dtype lists come from the mode and dtype tables, so a new
mode or dtype is checked here the moment it is added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from conftest import (
    ALL_DTYPES,
    CONTENTS,
    MODES,
    PER_IMAGE_MODES,
    SIGNED_DTYPES,
    dtype_id,
    full_scale,
    make_image,
    tolerance,
)
from reference import reference_normalize, reference_normalize_samples, reference_normalize_selected
from torch_cases import force_triton_route, interpreting_triton
from torch_cases import normalize_to_float32 as normalize

import norm_transforms.backends.torch as torch_backend
from norm_transforms import backends, denormalize
from norm_transforms.backends import _fallback, kernels
from norm_transforms.modes import EPS
from norm_transforms.modes import MODES as MODE_TABLE

ATOL = 1e-5


@dataclass(frozen=True)
class BackendCase:
    """How one backend (route) takes a channels-last NumPy image and gives its output back."""

    name: str
    tensors: bool

    def setup(self, monkeypatch: pytest.MonkeyPatch) -> None:
        if self.name == "numpy_fallback":
            for name in ("affine", "min_max", "histogram"):
                monkeypatch.setattr(kernels, name, getattr(_fallback, name))
        if self.name == "torch_ops":
            monkeypatch.setattr(torch_backend, "uses_cpu_kernels", lambda image: False)
        if self.name == "torch_triton" and not self.on_cuda:
            force_triton_route(monkeypatch)

    @property
    def on_cuda(self) -> bool:
        """Compiled Triton kernels read CUDA tensors (a GPU machine)."""
        return self.name == "torch_triton" and not interpreting_triton() and torch.cuda.is_available()

    def to_input(self, image: np.ndarray) -> Any:
        if not self.tensors:
            return image
        tensor = torch.from_numpy(np.ascontiguousarray(image))
        tensor = tensor.cuda() if self.on_cuda else tensor
        return tensor if image.ndim == 2 else tensor.movedim(-1, -3)

    def to_numpy(self, out: Any) -> np.ndarray:
        if not self.tensors:
            return out
        return (out if out.ndim == 2 else out.movedim(-3, -1)).cpu().numpy()

    def to_mask(self, mask: np.ndarray, image: np.ndarray) -> Any:
        """A channels-last mask (the image's shape, or without its channel axis) as this
        backend takes it: Torch moves a channel axis to -3, as it moves the image's."""
        if not self.tensors:
            return mask
        tensor = torch.from_numpy(np.ascontiguousarray(mask))
        tensor = tensor.cuda() if self.on_cuda else tensor
        return tensor.movedim(-1, -3) if mask.ndim == image.ndim and image.ndim > 2 else tensor

    def normalize(self, image: np.ndarray, *, batched: bool = False, **kwargs: Any) -> np.ndarray:
        # Tensors read every leading axis as samples: no batched flag.
        options = {} if self.tensors else {"batched": batched}
        if kwargs.get("mask") is not None:
            kwargs["mask"] = self.to_mask(kwargs["mask"], image)
        return self.to_numpy(normalize(self.to_input(image), **kwargs, **options))


CASES = [
    BackendCase("numpy", tensors=False),
    BackendCase("numpy_fallback", tensors=False),
    BackendCase("torch_cpu", tensors=True),
    BackendCase("torch_ops", tensors=True),
    BackendCase("torch_triton", tensors=True),
]


@pytest.fixture(params=CASES, ids=[case.name for case in CASES])
def backend(request, monkeypatch) -> BackendCase:
    request.param.setup(monkeypatch)
    return request.param


LAYOUTS = {"HW": None, "HWC1": 1, "HWC3": 3, "HWC5": 5}


def shape_of(layout: str, height: int = 9, width: int = 11) -> tuple[int, ...]:
    channels = LAYOUTS[layout]
    return (height, width) if channels is None else (height, width, channels)


def mode_kwargs(mode: str, dtype: Any, channels: int) -> dict[str, Any]:
    """Per-channel constants for the standard mode, the dtype's full scale for every mode."""
    return {
        "mean": tuple(np.linspace(0.3, 0.6, channels)),
        "std": tuple(np.linspace(0.2, 0.3, channels)),
        "max_pixel_value": full_scale(dtype),
        "normalization": mode,
    }


def channels_of(image: np.ndarray, batched: bool = False) -> int:
    return 1 if image.ndim == 2 + batched else image.shape[-1]


# --------------------------------------------------------------------------- every mode, dtype, layout


@pytest.mark.parametrize("content", CONTENTS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("mode", MODES)
def test_matches_the_float64_reference(backend, rng, mode, dtype, layout, content):
    image = make_image(rng, dtype, shape_of(layout), content)
    kwargs = mode_kwargs(mode, dtype, channels_of(image))
    out = backend.normalize(image, **kwargs)
    assert out.dtype == np.float32
    assert out.shape == image.shape
    np.testing.assert_allclose(out, reference_normalize(image, **kwargs), **tolerance(mode))


@pytest.mark.parametrize("layout", ["HW", "HWC3", "HWC5"])
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("mode", MODES)
def test_float16_output_is_the_float32_output_rounded_once(backend, rng, mode, dtype, layout):
    image = make_image(rng, dtype, shape_of(layout), "outlier")
    kwargs = mode_kwargs(mode, dtype, channels_of(image))
    half = torch.float16 if backend.tensors else np.float16
    out = backend.normalize(image, **kwargs, dtype=half)
    assert out.dtype == np.float16
    # Bit for bit: both computed in float32, then rounded to nearest even once (an int32 outlier
    # in a robust mode lies beyond float16's range: inf in both).
    with np.errstate(over="ignore"):
        expected = backend.normalize(image, **kwargs).astype(np.float16)
    np.testing.assert_array_equal(out, expected)


# Inside the mode's own clip, across one of its bounds, and outside it (a single value).
CLIP_RANGES = {"inside": (-0.6, 0.7), "across": (0.5, 30.0), "outside": (25.0, 26.0)}


@pytest.mark.parametrize("clip_range", CLIP_RANGES.values(), ids=CLIP_RANGES.keys())
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64], ids=dtype_id)
@pytest.mark.parametrize("mode", MODES)
def test_clip_range_clips_after_the_modes_formula_and_its_clip(backend, rng, mode, dtype, clip_range):
    image = make_image(rng, dtype, shape_of("HWC3"), "random")
    kwargs = {**mode_kwargs(mode, dtype, 3), "clip_range": clip_range}
    out = backend.normalize(image, **kwargs)
    np.testing.assert_allclose(out, reference_normalize(image, **kwargs), **tolerance(mode))
    assert out.min() >= clip_range[0] and out.max() <= clip_range[1]


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_batch_samples_get_their_own_statistics(backend, rng, mode, dtype):
    # Three images of very different brightness: pooled statistics would be far off for each.
    images = np.stack([make_image(rng, dtype, (8, 10, 3), "random") for _ in range(3)])
    images[0] //= 4 if images.dtype.kind in "ui" else 1
    if images.dtype.kind == "f":
        images[0] *= 0.25
    kwargs = mode_kwargs(mode, dtype, 3)
    out = backend.normalize(images, batched=True, **kwargs)
    expected = reference_normalize_samples(images, has_channels=True, **kwargs)
    np.testing.assert_allclose(out, expected, **tolerance(mode))


# --------------------------------------------------------------------------- SPEC section 4 inputs


@pytest.mark.parametrize("layout", ["HW", "HWC1", "HWC3"])
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("mode", MODES)
def test_one_by_one_image(backend, rng, mode, dtype, layout):
    image = make_image(rng, dtype, shape_of(layout, 1, 1), "random")
    kwargs = mode_kwargs(mode, dtype, channels_of(image))
    np.testing.assert_allclose(
        backend.normalize(image, **kwargs), reference_normalize(image, **kwargs), atol=ATOL
    )


@pytest.mark.parametrize("channels", [16, 130])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32], ids=dtype_id)
@pytest.mark.parametrize("mode", MODES)
def test_many_channels(backend, rng, mode, dtype, channels):
    image = make_image(rng, dtype, (6, 7, channels), "random")
    kwargs = mode_kwargs(mode, dtype, channels)
    np.testing.assert_allclose(
        backend.normalize(image, **kwargs), reference_normalize(image, **kwargs), atol=ATOL
    )


@pytest.mark.parametrize(
    ("dtype", "factor"),
    [(np.float32, 1e30), (np.float64, 1e39), (np.float64, 1e300)],
    ids=["float32-1e30", "float64-1e39", "float64-1e300"],
)
@pytest.mark.parametrize("mode", [name for name in PER_IMAGE_MODES if MODE_TABLE[name].per_channel])
def test_each_channel_maps_as_alone_whatever_the_others_magnitude(backend, rng, mode, dtype, factor):
    # Channels 0 and 1 map as they do without channel 2 of values near 1e300 beside them (whose
    # eps is relatively smaller: only the reference's own output): the NumPy backend scaled the whole
    # interleaved sample by the power of two of the largest (2**-997), whose squares of the
    # others underflowed (a std of 0, a NaN output in min_max_per_channel; found in review).
    image = make_image(rng, dtype, shape_of("HWC3"), "random")
    huge = image.copy()
    huge[..., 2] *= dtype(factor)
    kwargs = mode_kwargs(mode, dtype, 3)
    out, alone = backend.normalize(huge, **kwargs), backend.normalize(image, **kwargs)
    np.testing.assert_allclose(out[..., :2], alone[..., :2], **tolerance(mode))
    np.testing.assert_allclose(out, reference_normalize(huge, **kwargs), **tolerance(mode))


def strided(image: Any) -> Any:
    return image[::2, 1::2] if isinstance(image, np.ndarray) else image[..., ::2, 1::2]


def flipped(image: np.ndarray) -> np.ndarray:
    return image[::-1, ::-1]


def read_only(image: np.ndarray) -> np.ndarray:
    view = image.view()
    view.flags.writeable = False
    return view


VIEWS = {"strided": strided, "negative_stride": flipped, "read_only": read_only}


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("mode", MODES)
def test_views_give_their_copys_output_and_are_never_modified(backend, rng, mode, dtype, view):
    if backend.tensors and view != "strided":
        pytest.skip("torch has no negative strides or read-only tensors")
    base = make_image(rng, dtype, (12, 14, 3), "random")
    # Tensors: a strided view of a CHW view of channels-last memory, far from contiguous.
    image = VIEWS[view](backend.to_input(base))
    before = image.clone() if backend.tensors else image.copy()
    kwargs = mode_kwargs(mode, dtype, 3)
    copy = image.contiguous() if backend.tensors else np.ascontiguousarray(image)
    expected = backend.to_numpy(normalize(copy, **kwargs))
    # Bitwise on the C kernels; Torch's reductions sum a strided tensor in another order.
    np.testing.assert_allclose(backend.to_numpy(normalize(image, **kwargs)), expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(backend.to_numpy(image), backend.to_numpy(before))


# --------------------------------------------------------------------------- NaN and inf (README)


def with_bad_pixel(rng, dtype, bad: float) -> np.ndarray:
    # 400 pixels per channel: one infinite pixel lies beyond the 1st and 99th percentiles (in a
    # channel of under 100 pixels it would make a percentile infinite, and the channel NaN).
    image = make_image(rng, dtype, (20, 20, 3), "random")
    image[4, 5, 2] = bad
    return image


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64], ids=dtype_id)
@pytest.mark.parametrize("mode", MODES)
def test_nan_and_inf_give_the_documented_result(backend, rng, mode, dtype, bad):
    image = with_bad_pixel(rng, dtype, bad)
    out = backend.normalize(image, **mode_kwargs(mode, dtype, 3))
    statistic = MODE_TABLE[mode].statistic
    scope = (slice(None), slice(None), 2) if MODE_TABLE[mode].per_channel else (Ellipsis,)
    others = np.ones(image.shape, bool)
    others[scope] = False
    if statistic is None:  # the affine maps it: NaN stays NaN, inf stays inf, the rest is finite
        assert np.isnan(out[4, 5, 2]) == np.isnan(bad)
        good = np.ones(image.shape, bool)
        good[4, 5, 2] = False
        assert np.isfinite(out[good]).all()
    elif statistic == "mean_std" or (statistic == "min_max" and not np.isnan(bad)):
        assert np.isnan(out[scope]).all()  # undefined statistics: the whole scope is NaN
        assert np.isfinite(out[others]).all()
    else:  # NaN skipped by min/max and the percentiles; a few inf pixels are clipped by the percentiles
        finite = np.isfinite(image)
        assert np.isfinite(out[finite]).all()
        if np.isnan(bad):
            assert np.isnan(out[4, 5, 2])


# --------------------------------------------------------------------------- signed integers (SPEC 6)


def with_extremes(rng, dtype, shape=(9, 11, 3)) -> np.ndarray:
    """A random image with whole rows at the lowest and highest value, at -1 and at 0."""
    info = np.iinfo(dtype)
    image = make_image(rng, dtype, shape, "random")
    image[0], image[1], image[2], image[3, ::2] = info.min, info.max, -1, 0
    return image


@pytest.mark.parametrize("dtype", SIGNED_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("mode", MODES)
def test_signed_extremes_match_the_float64_reference(backend, rng, mode, dtype):
    image = with_extremes(rng, dtype)
    kwargs = mode_kwargs(mode, dtype, 3)
    np.testing.assert_allclose(
        backend.normalize(image, **kwargs), reference_normalize(image, **kwargs), **tolerance(mode)
    )


@pytest.mark.parametrize("extreme", ["min", "max"])
@pytest.mark.parametrize("dtype", SIGNED_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_signed_constant_image_at_an_extreme_gives_zero(backend, mode, dtype, extreme):
    image = np.full((7, 9, 3), getattr(np.iinfo(dtype), extreme), dtype)
    np.testing.assert_array_equal(
        backend.normalize(image, normalization=mode), np.zeros(image.shape, np.float32)
    )


HUGE_CONSTANTS = [
    (np.float16, 65504.0),
    (np.float32, 3e37),
    (np.float32, float(np.finfo(np.float32).max)),
    (np.float64, 1e300),
    (np.float64, 1.7e307),
    (np.float64, float(np.finfo(np.float64).max)),
]


@pytest.mark.parametrize("nonzero", [False, True], ids=["all", "nonzero"])
@pytest.mark.parametrize(("dtype", "value"), HUGE_CONSTANTS, ids=str)
@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_a_constant_image_at_any_magnitude_gives_zero_and_the_scale_of_eps(
    backend, mode, dtype, value, nonzero
):
    # Scale safety (SPEC 6) at the top of each dtype's range. The statistics of an image scaled
    # by 2**-e have the scale 1 / (eps * 2**-e) for a constant scope, beyond float64 above
    # ~4e304: 0 * inf gave NaN on the NumPy route, and the scale param came out NaN (Torch
    # ops), 8 (Triton: its float32 cap in the image's units) instead of 1e4.
    image = np.full((7, 9, 3), value, dtype)
    out, params = normalize(backend.to_input(image), normalization=mode, nonzero=nonzero, return_params=True)
    assert not np.any(backend.to_numpy(out))  # NaN counts as non-zero here
    center, scale = (
        np.asarray(term.cpu() if backend.tensors else term) for term in (params.center, params.scale)
    )
    np.testing.assert_array_equal(center, np.full(center.shape, float(image.flat[0])))
    np.testing.assert_allclose(scale, 1 / EPS, rtol=1e-12)


@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_int32_near_2_to_the_30_keeps_its_small_spread(backend, rng, mode):
    # float32 holds these values only to a multiple of 64: a route that rounded the pixels to
    # float32 before subtracting the center would turn a spread of 5 into noise.
    image = (2**30 + rng.integers(0, 6, (9, 11, 3))).astype(np.int32)
    out = backend.normalize(image, normalization=mode)
    np.testing.assert_allclose(out, reference_normalize(image, normalization=mode), **tolerance(mode))


@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_int32_image_is_the_int16_image_in_finer_units(backend, rng, mode):
    # Scale safety for integers: the same CT slice stored with 65536 times finer steps gives the
    # same output (eps, 1e-4 absolute, is negligible against stds in the thousands).
    hounsfield = rng.integers(-1024, 3072, (9, 11, 3)).astype(np.int16)
    finer = hounsfield.astype(np.int32) * 65536
    np.testing.assert_allclose(
        backend.normalize(finer, normalization=mode), backend.normalize(hounsfield, normalization=mode),
        rtol=1e-6, atol=1e-6,
    )  # fmt: skip


@pytest.mark.parametrize("dtype", SIGNED_DTYPES, ids=dtype_id)
def test_signed_standard_mode_needs_an_explicit_max_pixel_value(backend, rng, dtype):
    image = make_image(rng, dtype, (6, 7, 3), "random")
    with pytest.raises(ValueError, match=rf"max_pixel_value=None .* {np.dtype(dtype).name} images have none"):
        backend.normalize(image, max_pixel_value=None)
    # The per-image modes do not read it.
    np.testing.assert_allclose(
        backend.normalize(image, max_pixel_value=None, normalization="image"),
        reference_normalize(image, normalization="image"),
        atol=ATOL,
    )
    # Any explicit value is taken as given, the Albumentations default 255 too (the same numbers
    # as A.Normalize: (x - mean * 255) / (std * 255)), and 1.0 with mean and std in pixel units.
    for kwargs in ({}, {"mean": 40.0, "std": 400.0, "max_pixel_value": 1.0}):
        expected = reference_normalize(image, **kwargs)
        np.testing.assert_allclose(backend.normalize(image, **kwargs), expected, rtol=1e-6, atol=ATOL)


# --------------------------------------------------------------------------- the inverse


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("mode", MODES)
def test_return_params_are_inverted_exactly(backend, rng, mode, dtype):
    image = make_image(rng, dtype, (3, 9, 11, 3), "random")
    kwargs = mode_kwargs(mode, dtype, 3)
    inputs = backend.to_input(image)
    options = {} if backend.tensors else {"batched": True}
    out, params = normalize(inputs, **kwargs, **options, return_params=True)
    back = backend.to_numpy(denormalize(out, params=params, **options)).astype(np.float64)
    clip = MODE_TABLE[mode].clip
    values = backend.to_numpy(out)
    unclipped = np.ones(values.shape, bool) if clip is None else (values > clip[0]) & (values < clip[1])
    scale = full_scale(dtype)
    np.testing.assert_allclose(
        back[unclipped] / scale, image.astype(np.float64)[unclipped] / scale, atol=2e-6
    )


# --------------------------------------------------------------------------- selected pixels (SPEC 6)


def with_zeros(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """``image`` with a zero background (a block of whole pixels, as around a brain) and zero
    values scattered in single channels (so each channel selects other pixels)."""
    image = image.copy()
    image[: image.shape[0] // 3] = 0
    image[rng.random(image.shape) < 0.2] = 0
    return image


def random_mask(rng: np.random.Generator, image: np.ndarray, per_channel: bool) -> np.ndarray:
    shape = image.shape if per_channel or image.ndim == 2 else image.shape[:-1]
    return rng.random(shape) < 0.6


@pytest.mark.parametrize("layout", ["HW", "HWC1", "HWC3"])
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_nonzero_matches_the_float64_reference(backend, rng, mode, dtype, layout):
    image = with_zeros(rng, make_image(rng, dtype, shape_of(layout), "random"))
    kwargs = {**mode_kwargs(mode, dtype, channels_of(image)), "nonzero": True}
    out = backend.normalize(image, **kwargs)
    np.testing.assert_allclose(out, reference_normalize_selected(image, **kwargs), **tolerance(mode))
    assert np.array_equal(out[image == 0], np.zeros(np.count_nonzero(image == 0), np.float32))


@pytest.mark.parametrize("per_channel_mask", [False, True], ids=["HW_mask", "HWC_mask"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32], ids=dtype_id)
@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_mask_selects_the_pixels_the_statistics_come_from(backend, rng, mode, dtype, per_channel_mask):
    image = make_image(rng, dtype, shape_of("HWC3"), "random")
    mask = random_mask(rng, image, per_channel_mask)
    kwargs = mode_kwargs(mode, dtype, 3)
    out = backend.normalize(image, mask=mask, **kwargs)
    np.testing.assert_allclose(out, reference_normalize_selected(image, mask, **kwargs), **tolerance(mode))


@pytest.mark.parametrize(
    ("dtype", "outside"),
    [(np.float32, 1e30), (np.float32, float(np.finfo(np.float32).min)), (np.float64, 1e300)],
    ids=["float32-1e30", "float32-lowest", "float64-1e300"],
)
@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_pixels_outside_the_mask_take_no_part_whatever_their_magnitude(backend, rng, mode, dtype, outside):
    # The masked pixels map as they do where the others hold a masked pixel's value. The NumPy
    # and Torch-op routes scaled each scope (for scale safety) by the magnitude of every pixel,
    # masked or not: values of 1 scaled by 2**-100 or 2**-997 squared to 0, and the scale came
    # out 1e4 (found in review; the Triton kernels scale each tile by its selected pixels).
    image = make_image(rng, dtype, shape_of("HWC3"), "random")
    mask = random_mask(rng, image, per_channel=False)
    kwargs = mode_kwargs(mode, dtype, 3)
    out = backend.normalize(np.where(mask[..., None], image, dtype(outside)), mask=mask, **kwargs)
    quiet = backend.normalize(np.where(mask[..., None], image, image[mask][:1]), mask=mask, **kwargs)
    np.testing.assert_allclose(out[mask], quiet[mask], **tolerance(mode))
    if MODE_TABLE[mode].per_channel:  # and each channel's statistics are its own
        huge_channel = image.copy()
        huge_channel[..., 2] = dtype(outside)
        channels = backend.normalize(huge_channel, mask=mask, **kwargs)
        np.testing.assert_allclose(channels[mask][:, :2], quiet[mask][:, :2], **tolerance(mode))


@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_mask_and_nonzero_together_take_the_masked_non_zero_pixels(backend, rng, mode):
    image = with_zeros(rng, make_image(rng, np.float32, shape_of("HWC3"), "random"))
    mask = random_mask(rng, image, per_channel=False)
    kwargs = {**mode_kwargs(mode, np.float32, 3), "nonzero": True}
    out = backend.normalize(image, mask=mask, **kwargs)
    expected = reference_normalize_selected(image, mask, **kwargs)
    np.testing.assert_allclose(out, expected, **tolerance(mode))


@pytest.mark.parametrize("dtype", [np.uint8, np.float32], ids=dtype_id)
@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_a_mask_selecting_every_pixel_equals_no_mask(backend, rng, mode, dtype):
    image = make_image(rng, dtype, shape_of("HWC3"), "random")
    kwargs = mode_kwargs(mode, dtype, 3)
    everything = np.ones(image.shape[:-1], bool)
    np.testing.assert_allclose(
        backend.normalize(image, mask=everything, **kwargs), backend.normalize(image, **kwargs), atol=1e-6
    )


@pytest.mark.parametrize("dtype", [np.uint8, np.float16, np.float32], ids=dtype_id)
@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_scopes_without_a_selected_pixel_are_all_zero(backend, rng, mode, dtype):
    kwargs = {**mode_kwargs(mode, dtype, 3), "clip_range": (0.5, 30.0)}  # 0 even outside the clip
    assert not backend.normalize(np.zeros((6, 7, 3), dtype), nonzero=True, **kwargs).any()
    image = make_image(rng, dtype, (6, 7, 3), "random")
    assert not backend.normalize(image, mask=np.zeros((6, 7), bool), **kwargs).any()
    image[..., 1] = 0  # one empty channel: zero in the per-channel modes, its zeros in the others
    out = backend.normalize(image, nonzero=True, **kwargs)
    assert not out[..., 1].any()
    np.testing.assert_allclose(out, reference_normalize_selected(image, **kwargs, nonzero=True), atol=ATOL)


@pytest.mark.parametrize("layout", ["HW", "HWC3"])
@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_one_non_zero_value_maps_to_zero_like_a_constant_image(backend, mode, layout):
    image = np.zeros(shape_of(layout), np.uint8)
    image[4, 5] = 200
    out = backend.normalize(image, nonzero=True, **mode_kwargs(mode, np.uint8, channels_of(image)))
    assert not out.any()


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_nonzero_batch_samples_get_their_own_statistics(backend, rng, mode, dtype):
    images = np.stack([with_zeros(rng, make_image(rng, dtype, (8, 10, 3), "random")) for _ in range(3)])
    images[1] = 0  # an all-zero sample among others
    kwargs = {**mode_kwargs(mode, dtype, 3), "nonzero": True}
    out = backend.normalize(images, batched=True, **kwargs)
    for image, image_out in zip(images, out, strict=True):
        expected = reference_normalize_selected(image, **kwargs)
        np.testing.assert_allclose(image_out, expected, **tolerance(mode))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64], ids=dtype_id)
@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_nan_is_non_zero_and_zeros_stay_zero(backend, rng, mode, dtype):
    image = with_zeros(rng, make_image(rng, dtype, (20, 20, 3), "random"))
    image[14, 5, 2] = np.nan
    out = backend.normalize(image, nonzero=True, **mode_kwargs(mode, dtype, 3))
    assert not out[image == 0].any()
    assert np.isnan(out[14, 5, 2])
    statistic, per_channel = MODE_TABLE[mode].statistic, MODE_TABLE[mode].per_channel
    scope = np.zeros(image.shape, bool)
    scope[..., 2 if per_channel else slice(None)] = True
    if statistic == "mean_std":  # undefined statistics: the scope's non-zero pixels are NaN
        assert np.isnan(out[scope & (image != 0)]).all()
    assert np.isfinite(out[~scope]).all()


@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_float16_output_keeps_the_zeros(backend, rng, mode):
    image = with_zeros(rng, make_image(rng, np.uint8, shape_of("HWC3"), "random"))
    kwargs = {**mode_kwargs(mode, np.uint8, 3), "nonzero": True}
    out = backend.normalize(image, **kwargs, dtype=torch.float16 if backend.tensors else np.float16)
    np.testing.assert_array_equal(out, backend.normalize(image, **kwargs).astype(np.float16))
    assert not out[image == 0].any()


@pytest.mark.parametrize("selection", ["nonzero", "mask"])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32], ids=dtype_id)
@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_return_params_of_selected_statistics_are_inverted_exactly(backend, rng, mode, dtype, selection):
    # nonzero: exact on the non-zero pixels (the zeros were set to 0 after the affine); mask:
    # on every pixel, the affine applies to all of them.
    images = np.stack([with_zeros(rng, make_image(rng, dtype, (9, 11, 3), "random")) for _ in range(2)])
    if selection == "nonzero":
        kwargs = {**mode_kwargs(mode, dtype, 3), "nonzero": True}
    else:
        mask = backend.to_mask(random_mask(rng, images, per_channel=False), images)  # (N, H, W)
        kwargs = {**mode_kwargs(mode, dtype, 3), "mask": mask}
    options = {} if backend.tensors else {"batched": True}
    out, params = normalize(backend.to_input(images), **kwargs, **options, return_params=True)
    back = backend.to_numpy(denormalize(out, params=params, **options)).astype(np.float64)
    values = backend.to_numpy(out)
    clip = MODE_TABLE[mode].clip
    unclipped = np.ones(values.shape, bool) if clip is None else (values > clip[0]) & (values < clip[1])
    kept = (images != 0) & unclipped if selection == "nonzero" else unclipped
    scale = full_scale(dtype)
    np.testing.assert_allclose(back[kept] / scale, images.astype(np.float64)[kept] / scale, atol=2e-6)


def test_nonzero_or_a_mask_with_the_standard_mode_is_refused_naming_the_argument(backend):
    image = np.ones((4, 5, 3), np.uint8)
    with pytest.raises(ValueError, match=r"nonzero=True selects .* normalization='standard' has none"):
        backend.normalize(image, nonzero=True)
    with pytest.raises(ValueError, match=r"mask selects .* normalization='standard' has none"):
        backend.normalize(image, mask=np.ones((4, 5), bool))


@pytest.mark.parametrize(
    ("mask", "error", "message"),
    [
        (np.ones((4, 5), np.uint8), TypeError, r"mask must be a bool.*got .*uint8"),
        (np.ones((5, 4), bool), ValueError, r"mask has shape \(5, 4\).*must have shape"),
        (np.ones((4, 5, 2), bool), ValueError, r"mask has shape"),
    ],
    ids=["integer", "transposed", "channels"],
)
def test_a_mask_of_the_wrong_dtype_or_shape_is_refused_saying_what_is_accepted(backend, mask, error, message):
    with pytest.raises(error, match=message):
        backend.normalize(np.ones((4, 5, 3), np.uint8), mask=mask, normalization="image")


# --------------------------------------------------------------------------- refused inputs


@pytest.mark.parametrize("mode", MODES)
def test_empty_image_is_a_value_error(backend, mode):
    with pytest.raises(ValueError, match="empty"):
        backend.normalize(np.zeros((0, 4, 3), np.uint8), **mode_kwargs(mode, np.uint8, 3))


@pytest.mark.parametrize("dtype", [np.int8, np.uint32, np.int64, np.bool_], ids=dtype_id)
def test_unsupported_dtype_is_a_type_error_listing_the_accepted_ones(backend, dtype):
    with pytest.raises(TypeError, match=r"not supported; accepted: uint8, uint16, int16, int32, float16"):
        backend.normalize(np.zeros((4, 4, 3), dtype))


# --------------------------------------------------------------------------- the written contract


@pytest.mark.parametrize("module", sorted({*backends.BACKENDS.values(), *backends.ROUTED_BACKENDS}))
def test_every_registered_backend_implements_the_contract(module):
    backend = pytest.importorskip(module)
    # The functions the written contract (backends.Backend) lists.
    required = [
        name for name, value in vars(backends.Backend).items() if callable(value) and not name.startswith("_")
    ]
    assert {"normalize", "denormalize", "check_image", "value_range"} <= set(required)
    for name in required:
        assert callable(getattr(backend, name, None)), f"{module} lacks {name}()"
    # Every statistic that a mode names has a function in every backend.
    statistics = {mode.statistic for mode in MODE_TABLE.values() if mode.statistic is not None}
    assert statistics <= set(backend.STATISTICS), f"{module} lacks {statistics - set(backend.STATISTICS)}"
