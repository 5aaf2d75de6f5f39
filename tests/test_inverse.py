"""The inverse: ``denormalize``, ``Denormalize`` and ``TorchDenormalize``, and the params that
``normalize(..., return_params=True)`` returns.

Round trips for every mode x dtype x layout on the NumPy backend and on both routes of the
Torch backend (``route``: the C/OpenCV kernels, and the Torch-op route that CUDA tensors take,
forced on CPU): ``denormalize(y, params=...)`` gives the image back within 1e-6 of full scale
on every pixel the mode did not clip, and 8- and 16-bit integer images exactly. The standard mode inverts
from ``mean`` / ``std`` alone. Then the adapters in their pipelines, serialization, a
hypothesis property, NaN scopes and the errors.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import albumentations as A
import numpy as np
import pytest
import torch
from conftest import (
    ALL_DTYPES,
    MODES,
    PER_IMAGE_MODES,
    PERCENTILE_MODES,
    SIGNED_DTYPES,
    exact_integer_round_trip,
    full_scale,
    make_image,
    max_pixel_value_for,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch_cases import TORCH_DTYPES
from torch_cases import normalize_to_float32 as normalize
from torchvision import tv_tensors
from torchvision.transforms import v2

import norm_transforms.backends.torch as torch_backend
from norm_transforms import (
    AffineParams,
    Denormalize,
    Normalize,
    TorchDenormalize,
    TorchNormalize,
    backends,
    denormalize,
    functional,
)
from norm_transforms.modes import MODES as MODE_TABLE

# Within 1e-6 of full scale: float32 output, float32 affine both ways (measured up to ~1e-7).
RELATIVE_TOLERANCE = 1e-6
CONTENTS = ("random", "outlier", "constant")

# NumPy layouts: name -> (shape, normalize / denormalize keywords).
NUMPY_LAYOUTS = {
    "HW": ((13, 11), {}),
    "HWC3": ((13, 11, 3), {}),
    "NHWC": ((4, 9, 7, 3), {"batched": True}),
    "DHWC": ((3, 9, 7, 3), {"volume": True}),
    "NDHW": ((2, 3, 9, 7), {"batched": True, "volume": True}),
}
# Torch layouts: name -> (HWC shape that make_image fills, channels_last).
TORCH_LAYOUTS = {
    "HW": ((13, 11), False),
    "CHW": ((13, 11, 3), False),
    "NCHW": ((4, 9, 7, 3), False),
    "channels_last": ((4, 9, 7, 3), True),
    "BTCHW": ((2, 3, 9, 7, 3), False),
}
ROUTES = ("cpu_kernels", "torch_ops")


@pytest.fixture(params=ROUTES)
def route(request, monkeypatch) -> str:
    """The C/OpenCV route (default for CPU tensors) or the Torch-op route (CUDA's), forced."""
    if request.param == "torch_ops":
        monkeypatch.setattr(torch_backend, "uses_cpu_kernels", lambda image: False)
    return request.param


def unclipped(image, params: AffineParams, mode: str):
    """Where the mode's clip left the pixel as it was: ``(x - center) * scale`` inside the bounds,
    in float64 (NumPy arrays or tensors alike). The bounds are widened by a float32 rounding of
    x: float64 input may be rounded to float32 before the affine (documented), and a pixel
    clipped by less than that still comes back within it."""
    low, high = MODE_TABLE[mode].clip or (-np.inf, np.inf)
    image = image.double() if isinstance(image, torch.Tensor) else image.astype(np.float64)
    mapped = (image - params.center) * params.scale
    slack = 2.0**-23 * abs(image) * params.scale
    return (mapped >= low - slack) & (mapped <= high + slack)


def tensor_image(rng, name: str, shape_hwc: tuple[int, ...], content: str, channels_last: bool = False):
    """A test tensor of dtype ``name``: HW as it is, (..., H, W, C) moved to (..., C, H, W)."""
    numpy_dtype = np.float32 if name == "bfloat16" else np.dtype(name)
    image = torch.from_numpy(make_image(rng, numpy_dtype, shape_hwc, content))
    if image.ndim >= 3:
        image = image.movedim(-1, -3).contiguous()
    image = image.to(TORCH_DTYPES[name])
    return image.contiguous(memory_format=torch.channels_last) if channels_last else image


def tensor_full_scale(tensor: torch.Tensor) -> float:
    return 1.0 if tensor.dtype == torch.bfloat16 else full_scale(str(tensor.dtype).removeprefix("torch."))


def tensor_max_pixel_value(tensor: torch.Tensor) -> float | None:
    return (
        None
        if tensor.dtype == torch.bfloat16
        else max_pixel_value_for(str(tensor.dtype).removeprefix("torch."))
    )


# --------------------------------------------------------------------------- NumPy round trips


@pytest.mark.parametrize("layout", NUMPY_LAYOUTS)
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("mode", MODES)
def test_numpy_round_trip_recovers_every_unclipped_pixel(rng, mode, dtype, layout):
    shape, flags = NUMPY_LAYOUTS[layout]
    tolerance = RELATIVE_TOLERANCE * full_scale(dtype)
    for content in CONTENTS:
        image = make_image(rng, dtype, shape, content)
        kwargs = {"max_pixel_value": max_pixel_value_for(dtype), "normalization": mode, **flags}
        out, params = normalize(image, **kwargs, return_params=True)
        np.testing.assert_array_equal(out, normalize(image, **kwargs))
        kept = np.broadcast_to(unclipped(image, params, mode), image.shape)
        back = denormalize(out, params=params, **flags)
        assert back.dtype == np.float32 and back.shape == image.shape
        np.testing.assert_allclose(back[kept], image[kept].astype(np.float64), rtol=0, atol=tolerance)
        if exact_integer_round_trip(dtype):
            np.testing.assert_array_equal(
                denormalize(out, params=params, dtype=dtype, **flags)[kept], image[kept]
            )
        assert kept.mean() > 0.9  # the checks above saw most of the image


@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_numpy_params_are_per_sample_and_per_channel_float64(rng, mode):
    batch = make_image(rng, np.uint8, (4, 6, 5, 3), "random")
    batch[1] //= 3  # a darker sample gets its own terms
    _, params = normalize(batch, normalization=mode, batched=True, return_params=True)
    channels = 3 if MODE_TABLE[mode].per_channel else 1
    for terms in (params.center, params.scale):
        assert terms.shape == (4, 1, 1, channels) and terms.dtype == np.float64
    for index, sample in enumerate(batch):
        _, alone = normalize(sample, normalization=mode, return_params=True)
        np.testing.assert_array_equal(params.center[index], alone.center)
        np.testing.assert_array_equal(params.scale[index], alone.scale)
    assert not np.array_equal(params.scale[0], params.scale[1])


def test_numpy_standard_params_are_the_folded_constants():
    _, params = normalize(np.zeros((4, 5, 3), np.uint8), mean=(0.5, 0.25, 0.125), std=0.5, return_params=True)
    np.testing.assert_array_equal(params.center, np.array([[[127.5, 63.75, 31.875]]]))
    np.testing.assert_array_equal(params.scale, np.full((1, 1, 3), 1 / 127.5))


# --------------------------------------------------------------------------- standard mode from mean / std


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: np.dtype(d).name)
def test_standard_mode_inverts_from_mean_and_std_alone(rng, dtype):
    image = make_image(rng, dtype, (17, 19, 3), "random")
    kwargs = {"mean": (0.3, 0.5, 0.7), "std": (0.2, 0.25, 0.3), "max_pixel_value": full_scale(dtype)}
    back = denormalize(normalize(image, **kwargs), **kwargs, dtype=dtype)
    if exact_integer_round_trip(dtype):
        np.testing.assert_array_equal(back, image)
    else:
        tolerance = RELATIVE_TOLERANCE * max(1.0, float(np.abs(image.astype(np.float64)).max()))
        np.testing.assert_allclose(back, image, rtol=0, atol=tolerance)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_max_pixel_value_none_takes_the_output_dtypes_full_scale(rng, dtype):
    image = make_image(rng, dtype, (9, 8, 3), "random")
    out = normalize(image, max_pixel_value=None)  # the input's full scale
    back = denormalize(out, max_pixel_value=None, dtype=dtype)  # the output's: the same dtype
    np.testing.assert_allclose(back, image, rtol=0, atol=RELATIVE_TOLERANCE * full_scale(dtype))
    # Float output in [0, 1] units, whatever the input was: ToDtype(float32, scale=True).
    unit = denormalize(out, max_pixel_value=None)
    np.testing.assert_allclose(unit, image / full_scale(dtype), rtol=0, atol=RELATIVE_TOLERANCE)


def test_default_arguments_undo_normalize_defaults_on_uint8(rng):
    image = make_image(rng, np.uint8, (31, 29, 3), "random")
    np.testing.assert_array_equal(denormalize(normalize(image), dtype=np.uint8), image)
    assert denormalize(normalize(image)).dtype == np.float32


def test_integer_output_is_rounded_and_clipped_and_nan_becomes_zero():
    normalized = np.array([[0.0, 1.0, 2.0, -1.0, np.nan, 0.5]], np.float32)
    # center 100, scale 1/100: 100, 200, 300 -> 255, 0 -> 0, NaN -> 0, 150.
    params = AffineParams(np.full((1, 1), 100.0), np.full((1, 1), 0.01))
    back = denormalize(normalized, params=params, dtype=np.uint8)
    np.testing.assert_array_equal(back, [[100, 200, 255, 0, 0, 150]])
    rounded = denormalize(np.array([[0.004, 0.006]], np.float32), params=params, dtype=np.uint16)
    np.testing.assert_array_equal(rounded, [[100, 101]])


def test_float64_output_is_computed_in_float64(rng):
    image = make_image(rng, np.float64, (8, 9, 3), "random")
    out, params = normalize(image, max_pixel_value=1.0, return_params=True)
    back = denormalize(out, params=params, dtype=np.float64)
    assert back.dtype == np.float64
    expected = out.astype(np.float64) / params.scale + params.center
    np.testing.assert_allclose(back, expected, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- clipped pixels and NaN scopes


@pytest.mark.parametrize("mode", PERCENTILE_MODES)
def test_clipped_pixels_come_back_at_the_clip_bound(rng, mode):
    """Documented: a clipped pixel cannot be inverted; it returns as the value that maps to the bound."""
    image = make_image(rng, np.uint8, (20, 20, 3), "random")
    out, params = normalize(image, normalization=mode, percentiles=(10, 90), return_params=True)
    back = denormalize(out, params=params)
    high = np.broadcast_to(params.center + 1.0 / params.scale, image.shape)
    above = np.broadcast_to(~unclipped(image, params, mode), image.shape) & (out == 1.0)
    assert above.any()
    np.testing.assert_allclose(back[above], high[above], rtol=1e-6)
    assert (back[above] < image[above]).all()


def test_numpy_scope_with_nan_has_nan_params_and_comes_back_nan(rng):
    image = make_image(rng, np.float32, (6, 7, 3), "random")
    image[2, 3, 1] = np.nan
    out, params = normalize(
        image, normalization="image_per_channel", max_pixel_value=None, return_params=True
    )
    assert np.isnan(params.center[..., 1]).all() and np.isnan(params.scale[..., 1]).all()
    assert np.isfinite(params.center[..., [0, 2]]).all()
    back = denormalize(out, params=params)
    assert np.isnan(back[..., 1]).all()
    np.testing.assert_allclose(back[..., [0, 2]], image[..., [0, 2]], rtol=0, atol=RELATIVE_TOLERANCE)
    assert (denormalize(out, params=params, dtype=np.uint8)[..., 1] == 0).all()


@pytest.mark.parametrize("mode", ["min_max", "percentile"])
def test_numpy_infinite_pixel_gives_nan_params(rng, mode):
    image = make_image(rng, np.float64, (2, 6, 7), "random")
    image[1, 0, 0] = np.inf
    _, params = normalize(image, normalization=mode, batched=True, return_params=True)
    assert np.isfinite(params.center[0]).all() and np.isfinite(params.scale[0]).all()
    assert np.isnan(params.center[1]).all() and np.isnan(params.scale[1]).all()


# --------------------------------------------------------------------------- Torch round trips


@pytest.mark.parametrize("layout", TORCH_LAYOUTS)
@pytest.mark.parametrize("name", TORCH_DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_torch_round_trip_recovers_every_unclipped_pixel(rng, route, mode, name, layout):
    shape_hwc, channels_last = TORCH_LAYOUTS[layout]
    for content in CONTENTS:
        image = tensor_image(rng, name, shape_hwc, content, channels_last)
        tolerance = RELATIVE_TOLERANCE * tensor_full_scale(image)
        kwargs = {"max_pixel_value": tensor_max_pixel_value(image), "normalization": mode}
        out, params = normalize(image, **kwargs, return_params=True)
        torch.testing.assert_close(out, normalize(image, **kwargs), rtol=0, atol=0)
        for terms in (params.center, params.scale):
            assert terms.dtype == torch.float64 and terms.device == image.device
        kept = unclipped(image, params, mode).expand(image.shape)
        back = denormalize(out, params=params)
        assert back.dtype == torch.float32 and back.shape == image.shape
        torch.testing.assert_close(back[kept].double(), image[kept].double(), rtol=0, atol=tolerance)
        if image.dtype != torch.bfloat16 and exact_integer_round_trip(
            str(image.dtype).removeprefix("torch.")
        ):
            assert torch.equal(denormalize(out, params=params, dtype=image.dtype)[kept], image[kept])
        assert kept.double().mean() > 0.9  # the checks above saw most of the image


@pytest.mark.parametrize(
    ("shape", "mode", "expected"),
    [
        ((5, 6), "image_per_channel", (1, 1)),
        ((3, 5, 6), "standard", (3, 1, 1)),
        ((3, 5, 6), "min_max", (1, 1, 1)),
        ((4, 3, 5, 6), "standard", (3, 1, 1)),
        ((4, 3, 5, 6), "image", (4, 1, 1, 1)),
        ((2, 4, 3, 5, 6), "percentile_per_channel", (2, 4, 3, 1, 1)),
    ],
)
def test_torch_params_shape_broadcasts_per_sample_and_channel(rng, route, shape, mode, expected):
    image = torch.from_numpy(make_image(rng, np.uint8, shape, "random"))
    _, params = normalize(image, normalization=mode, return_params=True)
    assert tuple(params.center.shape) == expected and tuple(params.scale.shape) == expected


@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_torch_params_match_the_numpy_params_of_the_same_image(rng, route, mode):
    image = make_image(rng, np.uint16, (11, 12, 3), "random")
    _, numpy_params = normalize(image, normalization=mode, return_params=True)
    tensor = torch.from_numpy(image).permute(2, 0, 1).contiguous()
    _, torch_params = normalize(tensor, normalization=mode, return_params=True)
    for name in ("center", "scale"):
        torch_terms, numpy_terms = getattr(torch_params, name), getattr(numpy_params, name)
        np.testing.assert_allclose(torch_terms.numpy().ravel(), numpy_terms.ravel(), rtol=1e-6)


@pytest.mark.parametrize("name", TORCH_DTYPES)
def test_torch_standard_mode_inverts_from_mean_and_std_alone(rng, route, name):
    image = tensor_image(rng, name, (2, 15, 14, 3), "random")
    kwargs = {
        "mean": (0.3, 0.5, 0.7),
        "std": (0.2, 0.25, 0.3),
        "max_pixel_value": tensor_max_pixel_value(image),
    }
    out = normalize(image, **kwargs)
    if image.is_floating_point():
        back = denormalize(out, **kwargs)
        torch.testing.assert_close(back.double(), image.double(), rtol=0, atol=RELATIVE_TOLERANCE)
    elif exact_integer_round_trip(name):
        assert torch.equal(denormalize(out, **kwargs, dtype=image.dtype), image)
    else:  # int32: within 1e-6 of full scale, in the dtype
        back = denormalize(out, **kwargs, dtype=image.dtype)
        assert back.dtype == image.dtype
        tolerance = RELATIVE_TOLERANCE * tensor_full_scale(image)
        torch.testing.assert_close(back.double(), image.double(), rtol=0, atol=tolerance)


@pytest.mark.parametrize("out_name", ["float16", "bfloat16", "float64"])
def test_torch_float_output_dtypes(rng, route, out_name):
    image = tensor_image(rng, "uint8", (3, 8, 9, 3), "random")
    out, params = normalize(image, normalization="image_per_channel", return_params=True)
    back = denormalize(out, params=params, dtype=TORCH_DTYPES[out_name])
    assert back.dtype == TORCH_DTYPES[out_name]
    # Computed in float32 and rounded once on store; float64 only for float64 output.
    in_float32 = denormalize(out, params=params)
    expected = in_float32.double() if out_name == "float64" else in_float32.to(back.dtype)
    torch.testing.assert_close(
        back, expected, rtol=0, atol=RELATIVE_TOLERANCE * 255 if out_name == "float64" else 0
    )
    torch.testing.assert_close(back.double(), image.double(), rtol=0, atol=2.0)  # half-precision steps


def test_torch_scope_with_nan_has_nan_params_and_comes_back_nan(rng, route):
    image = tensor_image(rng, "float32", (2, 6, 7, 3), "random")
    image[1, 2, 3, 4] = torch.nan  # sample 1, channel 2
    out, params = normalize(
        image, normalization="image_per_channel", max_pixel_value=None, return_params=True
    )
    broken = torch.zeros(2, 3, 1, 1, dtype=torch.bool)
    broken[1, 2] = True
    assert torch.equal(params.center.isnan(), broken) and torch.equal(params.scale.isnan(), broken)
    back = denormalize(out, params=params, dtype=torch.uint8)
    assert (back[1, 2] == 0).all()
    assert denormalize(out, params=params)[1, 2].isnan().all()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("mode", MODES)
def test_cuda_round_trip_keeps_params_on_the_device(rng, mode):
    batch = tensor_image(rng, "uint8", (4, 32, 24, 3), "random").cuda()
    out, params = normalize(batch, normalization=mode, return_params=True)
    assert params.center.device == batch.device and params.scale.device == batch.device
    kept = unclipped(batch, params, mode).expand(batch.shape)
    back = denormalize(out, params=params, dtype=torch.uint8)
    assert back.device == batch.device and torch.equal(back[kept], batch[kept])
    _, cpu_params = normalize(batch.cpu(), normalization=mode, return_params=True)
    torch.testing.assert_close(params.center.cpu(), cpu_params.center, rtol=1e-6, atol=0)
    torch.testing.assert_close(params.scale.cpu(), cpu_params.scale, rtol=1e-6, atol=0)


# --------------------------------------------------------------------------- signed integer output


@pytest.mark.parametrize("dtype", SIGNED_DTYPES, ids=lambda d: np.dtype(d).name)
def test_numpy_signed_output_is_rounded_clipped_to_the_dtype_and_nan_is_0(dtype):
    info = np.iinfo(dtype)
    y = np.array([[-1.0, 0.25, 0.5, np.nan, 1e12, -1e12]], np.float32)  # x = y * 4 + 0
    params = AffineParams(np.zeros((1, 1)), np.full((1, 1), 0.25))
    back = denormalize(y, params=params, dtype=dtype)
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, [[-4, 1, 2, 0, info.max, info.min]])


@pytest.mark.parametrize("name", ["int16", "int32"])
def test_torch_signed_output_is_rounded_clipped_to_the_dtype_and_nan_is_0(route, name):
    dtype = TORCH_DTYPES[name]
    info = torch.iinfo(dtype)
    y = torch.tensor([[-1.0, 0.25, 0.5, torch.nan, 1e12, -1e12]])
    params = AffineParams(
        torch.zeros(1, 1, dtype=torch.float64), torch.full((1, 1), 0.25, dtype=torch.float64)
    )
    back = denormalize(y, params=params, dtype=dtype)
    assert back.dtype == dtype
    assert back.tolist() == [[-4, 1, 2, 0, info.max, info.min]]  # int32's max is exact (float64 math)


@pytest.mark.parametrize("dtype", SIGNED_DTYPES, ids=lambda d: np.dtype(d).name)
def test_signed_output_needs_an_explicit_max_pixel_value(rng, dtype):
    y = np.zeros((4, 5, 3), np.float32)
    with pytest.raises(ValueError, match=r"max_pixel_value=None .* images have none"):
        denormalize(y, max_pixel_value=None, dtype=dtype)
    with pytest.raises(ValueError, match=r"max_pixel_value=None .* images have none"):
        denormalize(torch.zeros(3, 4, 5), max_pixel_value=None, dtype=TORCH_DTYPES[np.dtype(dtype).name])
    # A CT round trip in Hounsfield units: mean and std in HU, max_pixel_value 1.0.
    hounsfield = rng.integers(-1024, 3072, (4, 5, 3)).astype(dtype)
    kwargs = {"mean": 40.0, "std": 400.0, "max_pixel_value": 1.0}
    np.testing.assert_array_equal(
        denormalize(normalize(hounsfield, **kwargs), **kwargs, dtype=dtype), hounsfield
    )


# --------------------------------------------------------------------------- hypothesis


def element_strategy(dtype: np.dtype) -> st.SearchStrategy:
    if dtype.kind in "ui":
        return st.integers(int(np.iinfo(dtype).min), int(np.iinfo(dtype).max))
    return st.floats(-10.0, 10.0, width=8 * min(dtype.itemsize, 8), allow_nan=False, allow_infinity=False)


@st.composite
def numpy_images(draw):
    """An HW, HWC or (batched) NHWC array of any supported dtype."""
    dtype = np.dtype(draw(st.sampled_from(ALL_DTYPES)))
    batched = draw(st.booleans())
    samples = (draw(st.integers(1, 3)),) if batched else ()
    channels = draw(st.just(()) | st.tuples(st.integers(1, 5)))
    shape = (*samples, draw(st.integers(1, 9)), draw(st.integers(1, 9)), *channels)
    return draw(arrays(dtype, shape, elements=element_strategy(dtype))), batched


# One mean / std for every channel, so that the standard mode takes any channel count.
PROPERTY_KWARGS = {"mean": 0.4, "std": 0.3}


@settings(max_examples=60, deadline=None)
@given(case=numpy_images(), mode=st.sampled_from(MODES))
def test_round_trip_property_over_shapes_dtypes_and_modes(case, mode):
    image, batched = case
    kwargs = {**PROPERTY_KWARGS, "max_pixel_value": max_pixel_value_for(image.dtype), "normalization": mode}
    out, params = normalize(image, **kwargs, batched=batched, return_params=True)
    kept = np.broadcast_to(unclipped(image, params, mode), image.shape)
    back = denormalize(out, params=params, batched=batched, dtype=np.float64)
    scale = max(full_scale(image.dtype), float(np.abs(image.astype(np.float64)).max()))
    np.testing.assert_allclose(
        back[kept], image[kept].astype(np.float64), rtol=0, atol=RELATIVE_TOLERANCE * scale
    )
    if exact_integer_round_trip(image.dtype):
        np.testing.assert_array_equal(denormalize(out, params=params, dtype=image.dtype)[kept], image[kept])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=numpy_images(), mode=st.sampled_from(MODES))
def test_torch_round_trip_property(route, case, mode):
    array, _ = case
    image = torch.from_numpy(array)  # any tensor is a valid (..., C, H, W) or (H, W) layout
    kwargs = {**PROPERTY_KWARGS, "max_pixel_value": tensor_max_pixel_value(image), "normalization": mode}
    out, params = normalize(image, **kwargs, return_params=True)
    kept = unclipped(image, params, mode).expand(image.shape)
    back = denormalize(out, params=params, dtype=torch.float64)
    scale = max(tensor_full_scale(image), image.double().abs().max().item())
    torch.testing.assert_close(back[kept], image[kept].double(), rtol=0, atol=RELATIVE_TOLERANCE * scale)


# --------------------------------------------------------------------------- Albumentations: Denormalize


@pytest.mark.parametrize("target", ["image", "images", "volume", "volumes"])
def test_denormalize_after_normalize_in_compose_returns_the_image(rng, target):
    shapes = {
        "image": (12, 13, 3),
        "images": (3, 12, 13, 3),
        "volume": (4, 12, 13, 3),
        "volumes": (2, 4, 12, 13, 3),
    }
    image = make_image(rng, np.uint8, shapes[target], "random")
    mask = rng.integers(0, 3, (12, 13), dtype=np.uint8)
    kwargs = {"mean": (0.4, 0.5, 0.6), "std": (0.2, 0.3, 0.4)}
    pipeline = A.Compose([Normalize(**kwargs), Denormalize(**kwargs, dtype="uint8")], strict=True)
    result = pipeline(**{target: image}, mask=mask) if target == "image" else pipeline(**{target: image})
    np.testing.assert_array_equal(result[target], image)
    if target == "image":
        np.testing.assert_array_equal(result["mask"], mask)


def test_denormalize_float_output_on_float_images(rng):
    image = make_image(rng, np.float32, (12, 13, 3), "random")
    pipeline = A.Compose([Normalize(max_pixel_value=1.0), Denormalize(max_pixel_value=1.0)])
    back = pipeline(image=image)["image"]
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, image, rtol=0, atol=RELATIVE_TOLERANCE)


def test_denormalize_list_of_images_of_different_sizes(rng):
    images = [make_image(rng, np.uint8, (8, 9 + index, 3), "random") for index in range(2)]
    normalized = Normalize().apply_to_images(images)
    for back, image in zip(Denormalize(dtype="uint8").apply_to_images(normalized), images, strict=True):
        np.testing.assert_array_equal(back, image)


def test_denormalize_serializes_and_round_trips_through_json(rng):
    transform = Denormalize(mean=[0.1, 0.2, 0.3], std=0.5, max_pixel_value=None, dtype="uint8", p=0.5)
    serialized = A.to_dict(A.Compose([transform]))
    entry = serialized["transform"]["transforms"][0]
    assert entry["__class_fullname__"] == "norm_transforms.Denormalize"
    assert entry["mean"] == (0.1, 0.2, 0.3) and entry["dtype"] == "uint8" and entry["max_pixel_value"] is None
    restored = A.from_dict(json.loads(json.dumps(serialized))).transforms[0]
    assert isinstance(restored, Denormalize)
    assert (restored.mean, restored.std, restored.max_pixel_value, restored.dtype, restored.p) == (
        (0.1, 0.2, 0.3),
        0.5,
        None,
        "uint8",
        0.5,
    )
    normalized = rng.standard_normal((6, 7, 3)).astype(np.float32)
    np.testing.assert_array_equal(restored.apply(normalized), transform.apply(normalized))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"dtype": "int8"}, TypeError, "denormalize writes"),
        ({"dtype": np.uint8}, TypeError, "dtype name"),
        ({"std": 0.0}, ValueError, "std"),
        ({"max_pixel_value": -1.0}, ValueError, "max_pixel_value"),
    ],
)
def test_denormalize_refuses_bad_arguments_at_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        Denormalize(**kwargs)


# --------------------------------------------------------------------------- torchvision: TorchDenormalize


@pytest.mark.parametrize("kind", ["image", "video", "plain"])
@pytest.mark.parametrize("name", ["uint8", "uint16"])
def test_torch_denormalize_after_torch_normalize_returns_the_pixels(rng, kind, name):
    shape_hwc = (13, 11, 3) if kind != "video" else (4, 13, 11, 3)
    pixels = tensor_image(rng, name, shape_hwc, "random")
    wrap = {"image": tv_tensors.Image, "video": tv_tensors.Video, "plain": lambda t: t}[kind]
    pipeline = v2.Compose([TorchNormalize(), TorchDenormalize(dtype=pixels.dtype)])
    back = pipeline(wrap(pixels))
    assert type(back) is type(wrap(pixels))
    assert torch.equal(back.as_subclass(torch.Tensor), pixels)


def test_torch_denormalize_float_output_is_to_dtype_scaled(rng):
    image = tv_tensors.Image(tensor_image(rng, "uint8", (2, 13, 11, 3), "random"))
    boxes = tv_tensors.BoundingBoxes([[1, 2, 5, 6]], format="XYXY", canvas_size=(13, 11))
    back, boxes_out, label = v2.Compose([TorchNormalize(), TorchDenormalize()])(image, boxes, 7)
    expected = v2.ToDtype(torch.float32, scale=True)(image)
    torch.testing.assert_close(back, expected, rtol=0, atol=RELATIVE_TOLERANCE)
    assert boxes_out is boxes and label == 7


def test_torch_denormalize_pickles_and_has_a_repr(rng):
    transform = TorchDenormalize(mean=0.5, std=0.25, max_pixel_value=255.0, dtype=torch.uint8)
    restored = pickle.loads(pickle.dumps(transform))
    normalized = torch.randn(3, 5, 6)
    assert torch.equal(restored(normalized), transform(normalized))
    assert "mean=0.5, std=0.25, max_pixel_value=255.0, dtype=torch.uint8" in repr(transform)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [({"dtype": torch.int64}, TypeError, "denormalize writes"), ({"std": (1.0, 0.0)}, ValueError, "std")],
)
def test_torch_denormalize_refuses_bad_arguments_at_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        TorchDenormalize(**kwargs)


# --------------------------------------------------------------------------- dispatch and errors


def test_numpy_input_never_imports_torch():
    code = (
        "import sys, numpy as np\n"
        "from norm_transforms import normalize, denormalize\n"
        "x = np.zeros((4, 5, 3), np.uint8)\n"
        "y, params = normalize(x, normalization='image', return_params=True)\n"
        "denormalize(y, params=params); denormalize(y, dtype=np.uint8)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr


class Box:
    def __init__(self, array):
        self.array = array


@pytest.fixture
def kernel_tables(monkeypatch):
    """The kernel tables, restored after the test."""
    monkeypatch.setattr(backends, "_LOADED", dict(backends._LOADED))


def test_register_kernel_routes_denormalize_to_the_inverse_kernel(kernel_tables):
    calls = []
    functional.register_kernel(
        Box,
        lambda array, params, **options: calls.append(("normalize", options)) or "out",
        inverse=lambda array, params, **options: calls.append(("denormalize", params, options)) or "back",
    )
    assert denormalize(Box(None), mean=0.5, std=0.25, dtype="uint8") == "back"
    [(_, params, options)] = calls
    assert params.mode.name == "standard" and params.mean == (0.5,)
    assert options == {"batched": False, "volume": False, "dtype": "uint8"}
    # return_params reaches a kernel only when asked for, so older kernels keep working.
    normalize(Box(None))
    normalize(Box(None), return_params=True)
    assert calls[1] == ("normalize", {"batched": False, "volume": False})
    assert calls[2] == ("normalize", {"batched": False, "volume": False, "return_params": True})


def test_unregistered_type_cannot_be_denormalized(kernel_tables):
    functional.register_kernel(Box, lambda array, params, **options: None)  # no inverse
    with pytest.raises(TypeError, match="cannot denormalize a Box: its kernel was registered without"):
        denormalize(Box(None))
    with pytest.raises(TypeError, match=r"cannot denormalize an object of <class 'list'>"):
        denormalize([[0.0]])


def numpy_params(shape=(1, 1, 3)) -> AffineParams:
    return AffineParams(np.zeros(shape), np.ones(shape))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda y: denormalize(y.astype(np.uint8)), TypeError, "normalized"),
        (lambda y: denormalize(y[:0]), ValueError, "empty"),
        (lambda y: denormalize(y, dtype=np.int64), TypeError, "denormalize writes"),
        (lambda y: denormalize(y, dtype=torch.uint8), TypeError, "denormalize writes"),
        (lambda y: denormalize(y, max_pixel_value=0.0), ValueError, "max_pixel_value"),
        (lambda y: denormalize(y, params=(np.zeros(3), np.ones(3))), TypeError, "AffineParams"),
        (lambda y: denormalize(y, params=numpy_params((4, 1, 1, 3))), ValueError, "does not broadcast"),
        (lambda y: denormalize(y, params=numpy_params((1, 1, 2))), ValueError, r"shape \(1, 1, 2\)"),
        (
            lambda y: denormalize(y, params=AffineParams(torch.zeros(3), torch.ones(3))),
            TypeError,
            "NumPy array",
        ),
        (lambda y: denormalize(y, mean=0.5, params=numpy_params()), ValueError, "not both"),
        (lambda y: denormalize(y, max_pixel_value=None, params=numpy_params()), ValueError, "not both"),
        (lambda y: denormalize(y[..., :2], mean=(0.1, 0.2, 0.3)), ValueError, "3 values"),
    ],
    ids=[
        "integer_input",
        "empty",
        "int64_output",
        "torch_dtype",
        "zero_max_pixel_value",
        "tuple_params",
        "batch_params_on_one_image",
        "wrong_channels",
        "tensor_params",
        "params_and_mean",
        "params_and_max_pixel_value",
        "mean_length",
    ],
)
def test_numpy_bad_input_is_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call(np.zeros((4, 5, 3), np.float32))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda y: denormalize(y.to(torch.uint8)), TypeError, "normalized"),
        (lambda y: denormalize(y[0, 0, 0]), ValueError, "shape"),
        (lambda y: denormalize(y[:0]), ValueError, "empty"),
        (lambda y: denormalize(y, dtype=torch.int64), TypeError, "denormalize writes"),
        (lambda y: denormalize(y, volume=True), ValueError, "volume"),
        (lambda y: denormalize(y, params=numpy_params((3, 1, 1))), TypeError, "tensor"),
        (
            lambda y: denormalize(y, params=AffineParams(torch.zeros(5, 3, 1, 1), torch.ones(5, 3, 1, 1))),
            ValueError,
            "does not broadcast",
        ),
    ],
    ids=["integer_input", "one_axis", "empty", "int64_output", "volume", "numpy_params", "batch_mismatch"],
)
def test_torch_bad_input_is_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call(torch.zeros(2, 3, 4, 5))
