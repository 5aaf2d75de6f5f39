"""The Torch kernels, through ``norm_transforms.normalize(tensor, ...)``.

Every CPU test runs on both routes of the backend: ``cpu_kernels`` (CPU tensors go through the
C/OpenCV kernels of the NumPy backend, the default) and ``torch_ops`` (the Torch-op route that
CUDA tensors take, forced on CPU by patching ``uses_cpu_kernels``). Checked: parity with the
NumPy backend on random images and real photos, hypothesis properties against the float64
reference, torchvision ``ToDtype + Normalize`` parity, float16 / bfloat16 output, per-sample
statistics for batches and videos, channels_last, SPEC section 4 edge cases and errors. The
``cuda`` tests compare CUDA with CPU and run only where a GPU is present.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import (
    IMAGE_MODES,
    MODES,
    PER_IMAGE_MODES,
    PERCENTILE_MODES,
    full_scale,
    make_image,
    standard_kwargs,
    to_dtype,
    to_layout,
    tolerance,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from reference import reference_normalize
from torch_cases import TORCH_DTYPES, force_triton_route, full_scale_of, max_pixel_value_of
from torch_cases import normalize_to_float32 as normalize
from torchvision.transforms import v2

import norm_transforms
import norm_transforms.backends.torch as torch_backend

ATOL = 1e-5
# The route fixture patches a module attribute once per test, not per example: safe to share.
PROPERTY_SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

FLOAT_NAMES = ("float16", "bfloat16", "float32", "float64")
LAYOUTS = (None, 1, 3, 4, 5)  # HW, then CHW with that many channels
OUTPUT_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}
ROUTES = ("cpu_kernels", "torch_ops", "triton")
# The wide sweeps leave out the Triton kernels: in the interpreter a case costs ~0.1-6 s, and
# the conformance suite already runs them on every mode, dtype and layout, on strided views
# (never modified) and on NaN / inf; test_backend_triton on photo crops, channels_last and
# permuted views.
SWEEP_ROUTES = ("cpu_kernels", "torch_ops")


def layout_id(channels: int | None) -> str:
    return "HW" if channels is None else f"CHW{channels}"


@pytest.fixture(params=ROUTES)
def route(request, monkeypatch) -> str:
    """Run the test on the C/OpenCV route (default for CPU), on the Torch-op route (CUDA's
    without Triton) or on the Triton kernels (CUDA's), the last two forced on CPU tensors."""
    if request.param == "torch_ops":
        monkeypatch.setattr(torch_backend, "uses_cpu_kernels", lambda image: False)
    if request.param == "triton":
        force_triton_route(monkeypatch)
    return request.param


# --------------------------------------------------------------------------- conversions


def numpy_dtype(name: str) -> np.dtype:
    """The NumPy dtype holding the same values: float32 for bfloat16 (NumPy has none)."""
    return np.dtype(np.float32) if name == "bfloat16" else np.dtype(name)


def tensor_from_numpy(image: np.ndarray, name: str) -> torch.Tensor:
    """HW stays HW, (..., H, W, C) becomes a contiguous (..., C, H, W) tensor of ``name``."""
    tensor = torch.from_numpy(np.ascontiguousarray(image))
    if image.ndim >= 3:
        tensor = tensor.movedim(-1, -3).contiguous()
    return tensor.to(TORCH_DTYPES[name])


def numpy_from_tensor(tensor: torch.Tensor) -> np.ndarray:
    """The values of an HW or (..., C, H, W) tensor as an HW or (..., H, W, C) array (bfloat16 and
    float16 read as float32, which holds them exactly)."""
    if tensor.dtype in (torch.bfloat16, torch.float16):
        tensor = tensor.float()
    if tensor.ndim >= 3:
        tensor = tensor.movedim(-3, -1)
    return tensor.contiguous().numpy()


def numpy_twin(tensor: torch.Tensor) -> np.ndarray:
    """The NumPy image with the same values as ``tensor`` (dtype kept, bfloat16 as float32)."""
    if tensor.dtype == torch.bfloat16:
        return numpy_from_tensor(tensor)
    moved = tensor.movedim(-3, -1) if tensor.ndim >= 3 else tensor
    return moved.contiguous().numpy()


def random_pair(rng, name: str, shape_hwc: tuple[int, ...], content: str = "random"):
    """(tensor, NumPy twin): a test image in the tensor layout and the same values as HW / HWC."""
    image = make_image(rng, numpy_dtype(name), shape_hwc, content)
    tensor = tensor_from_numpy(image, name)
    return tensor, numpy_twin(tensor)


def random_tensor(rng, name: str, shape: tuple[int, ...], content: str = "random") -> torch.Tensor:
    """A tensor of ``shape`` (HW or (..., C, H, W)) made by ``conftest.make_image``."""
    shape_hwc = shape if len(shape) == 2 else (*shape[:-3], *shape[-2:], shape[-3])
    return random_pair(rng, name, shape_hwc, content)[0]


def channel_kwargs(channels: int | None, mode: str, name: str) -> dict:
    """One mean / std per channel, the dtype's full scale, and the mode."""
    count = 1 if channels is None else channels
    return {
        "mean": tuple(np.linspace(0.3, 0.6, count)),
        "std": tuple(np.linspace(0.2, 0.3, count)),
        "max_pixel_value": full_scale(numpy_dtype(name)),
        "normalization": mode,
    }


def assert_close_to_numpy(
    out: torch.Tensor, expected: np.ndarray, atol: float = ATOL, rtol: float = 0.0
) -> None:
    assert out.dtype == torch.float32
    np.testing.assert_allclose(numpy_from_tensor(out), expected, rtol=rtol, atol=atol)


# --------------------------------------------------------------------------- parity with NumPy


@pytest.mark.parametrize("route", SWEEP_ROUTES, indirect=True)
@pytest.mark.parametrize("channels", LAYOUTS, ids=layout_id)
@pytest.mark.parametrize("name", TORCH_DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_random_image_matches_numpy_backend(rng, route, mode, name, channels):
    shape = (23, 29) if channels is None else (23, 29, channels)
    tensor, twin = random_pair(rng, name, shape)
    kwargs = channel_kwargs(channels, mode, name)
    out = normalize(tensor, **kwargs)
    assert out.shape == tensor.shape
    assert_close_to_numpy(out, normalize(twin, **kwargs))


@pytest.mark.parametrize("route", SWEEP_ROUTES, indirect=True)
@pytest.mark.parametrize("channels", LAYOUTS, ids=layout_id)
@pytest.mark.parametrize("name", TORCH_DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_photo_matches_numpy_backend(photos, route, mode, name, channels):
    kwargs = channel_kwargs(channels, mode, name)
    for photo in photos.values():
        values = to_layout(to_dtype(photo, numpy_dtype(name)), channels)
        tensor = tensor_from_numpy(values, name)
        twin = numpy_twin(tensor)
        assert_close_to_numpy(normalize(tensor, **kwargs), normalize(twin, **kwargs))


# --------------------------------------------------------------------------- properties


def elements_for(name: str) -> st.SearchStrategy:
    """Every value of an integer dtype; finite floats in [-10, 10] of the dtype's width (bfloat16:
    float32 values, rounded when the tensor is made)."""
    if name in ("uint8", "uint16", "int16", "int32"):
        return st.integers(int(np.iinfo(name).min), int(np.iinfo(name).max))
    width = 16 if name == "float16" else 64 if name == "float64" else 32
    return st.floats(-10.0, 10.0, width=width, allow_nan=False, allow_infinity=False)


@st.composite
def tensor_images(draw, names=tuple(TORCH_DTYPES), max_side: int = 24, max_channels: int = 6, leading=()):
    """A tensor laid out as HW, CHW, or (*leading, C, H, W) when ``leading`` is given."""
    name = draw(st.sampled_from(names))
    height, width = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    channels = (
        draw(st.integers(1, max_channels)) if leading else draw(st.none() | st.integers(1, max_channels))
    )
    shape = (*leading, height, width) if channels is None else (*leading, channels, height, width)
    values = draw(arrays(numpy_dtype(name), shape, elements=elements_for(name)))
    return torch.from_numpy(values).to(TORCH_DTYPES[name])


def tensor_channels(tensor: torch.Tensor) -> int:
    return tensor.shape[-3] if tensor.ndim >= 3 else 1


def pixel_scale(tensor: torch.Tensor) -> float:
    return full_scale_of(str(tensor.dtype).removeprefix("torch."))


@PROPERTY_SETTINGS
@given(image=tensor_images(), mode=st.sampled_from(PER_IMAGE_MODES))
def test_per_image_modes_match_float64_reference(route, image, mode):
    out = normalize(image, normalization=mode)
    assert_close_to_numpy(out, reference_normalize(numpy_twin(image), normalization=mode), **tolerance(mode))


def signed_elements(name: str) -> st.SearchStrategy:
    """int16 / int32 values, often at the extremes and around 0, else anywhere in the range."""
    info = np.iinfo(name)
    edges = [int(info.min), int(info.min) + 1, -1024, -1, 0, 1, 3071, int(info.max) - 1, int(info.max)]
    return st.sampled_from(edges) | st.integers(int(info.min), int(info.max))


@PROPERTY_SETTINGS
@given(data=st.data(), name=st.sampled_from(["int16", "int32"]), mode=st.sampled_from(MODES))
def test_signed_tensors_match_float64_reference(route, data, name, mode):
    leading = data.draw(st.sampled_from([(), (2,)]))
    channels = data.draw(st.integers(1, 4))
    shape = (*leading, channels, data.draw(st.integers(1, 12)), data.draw(st.integers(1, 12)))
    image = torch.from_numpy(data.draw(arrays(np.dtype(name), shape, elements=signed_elements(name))))
    kwargs = data.draw(standard_kwargs(channels)) | {
        "max_pixel_value": full_scale_of(name),
        "normalization": mode,
    }
    out = normalize(image, **kwargs)
    samples = image.reshape(-1, *image.shape[-3:])
    expected = np.stack([reference_normalize(numpy_twin(sample), **kwargs) for sample in samples])
    assert_close_to_numpy(out.reshape(samples.shape), expected, **tolerance(mode))


@PROPERTY_SETTINGS
@given(image=tensor_images(), data=st.data())
def test_standard_mode_matches_float64_reference(route, image, data):
    kwargs = data.draw(standard_kwargs(tensor_channels(image)))
    kwargs["max_pixel_value"] = pixel_scale(image)
    out = normalize(image, **kwargs)
    assert_close_to_numpy(out, reference_normalize(numpy_twin(image), **kwargs))


@PROPERTY_SETTINGS
@given(
    batch=st.lists(st.integers(1, 3), min_size=1, max_size=2).flatmap(
        lambda leading: tensor_images(max_side=10, max_channels=4, leading=tuple(leading))
    ),
    mode=st.sampled_from(PER_IMAGE_MODES),
)
def test_every_sample_of_a_batch_or_video_is_normalized_alone(route, batch, mode):
    """NCHW batches, (T, C, H, W) videos and (B, T, C, H, W) video batches: per-sample statistics."""
    out = normalize(batch, normalization=mode)
    assert out.shape == batch.shape
    samples = batch.reshape(-1, *batch.shape[-3:])
    for sample, sample_out in zip(samples, out.reshape(samples.shape), strict=True):
        torch.testing.assert_close(sample_out, normalize(sample, normalization=mode), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", TORCH_DTYPES)
@pytest.mark.parametrize("mode", PERCENTILE_MODES)
def test_percentiles_of_every_sample_match_numpy_backend(rng, route, mode, name):
    # uint8 on the Torch-op route counts one histogram per scope in a single bincount; the other
    # dtypes sort. Both must give np.percentile's linear interpolation for each sample.
    batch = random_tensor(rng, name, (4, 3, 17, 13))
    batch[1] = (batch[1].double() / 3).to(batch.dtype)  # a sample with a different range
    kwargs = {"normalization": mode, "percentiles": (7.5, 80.0), "max_pixel_value": max_pixel_value_of(name)}
    out = normalize(batch, **kwargs)
    for sample, sample_out in zip(batch, out, strict=True):
        assert_close_to_numpy(sample_out, normalize(numpy_from_tensor(sample), **kwargs))


@pytest.mark.parametrize("name", ["uint8", "uint16", "int16"])
def test_integer_percentiles_are_np_percentiles_bits(rng, route, name):
    # Every route interpolates as NumPy writes it, from the nearer end: the center of an integer
    # image (float64, exact order statistics) is np.percentile's to the bit (in Triton's
    # interpreter; compiled, Triton may contract it into one FMA).
    batch = random_tensor(rng, name, (6, 1, 7, 9))
    values = numpy_from_tensor(batch).reshape(6, -1).astype(np.float64)
    for low in (0.5, 13.3, 30.0, 49.9, 71.0):
        kwargs = {"normalization": "percentile", "percentiles": (low, 99.0), "max_pixel_value": 1.0}
        _, params = normalize(batch, return_params=True, **kwargs)
        assert np.array_equal(params.center.numpy().ravel(), np.percentile(values, low, axis=1))


@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_video_frames_of_different_brightness_get_their_own_statistics(rng, route, mode):
    frames = [random_tensor(rng, "uint8", (3, 12, 14)) // (index + 1) for index in range(4)]
    frames[2] = torch.full((3, 12, 14), 77, dtype=torch.uint8)  # a constant frame stays exactly 0
    video = torch.stack(frames)  # (T, C, H, W)
    out = normalize(video, normalization=mode)
    for frame, frame_out in zip(frames, out, strict=True):
        assert_close_to_numpy(frame_out, reference_normalize(numpy_twin(frame), normalization=mode))
    assert torch.equal(out[2], torch.zeros(3, 12, 14))


# --------------------------------------------------------------------------- torchvision parity

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.mark.parametrize("shape", [(3, 31, 37), (2, 3, 31, 37)], ids=["CHW", "NCHW"])
@pytest.mark.parametrize("name", ["uint8", "float32"])
def test_standard_matches_torchvision_to_dtype_and_normalize(rng, route, name, shape):
    image = random_tensor(rng, name, shape)
    expected = v2.Normalize(MEAN, STD)(v2.ToDtype(torch.float32, scale=True)(image))
    out = normalize(image, MEAN, STD, max_pixel_value=None)
    torch.testing.assert_close(out, expected, rtol=0, atol=ATOL)


# --------------------------------------------------------------------------- half output


@pytest.mark.parametrize("out_name", OUTPUT_DTYPES)
@pytest.mark.parametrize("name", TORCH_DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_half_output_is_the_float32_output_rounded(rng, route, mode, name, out_name):
    """Exactly equal: both routes compute in float32 and round once on store (the clip bounds 0, 1
    and ±20 are float16 / bfloat16 numbers, and rounding is monotonic, so clipping before or after
    the rounding gives the same value)."""
    # One random sample and one near-constant sample with an outlier, which the image modes clip.
    batch = torch.stack(
        [random_tensor(rng, name, (3, 40, 40)), random_tensor(rng, name, (3, 40, 40), "outlier")]
    )
    kwargs = {"max_pixel_value": max_pixel_value_of(name), "normalization": mode}
    out = normalize(batch, **kwargs, dtype=OUTPUT_DTYPES[out_name])
    assert out.dtype == OUTPUT_DTYPES[out_name]
    assert torch.equal(out, normalize(batch, **kwargs).to(OUTPUT_DTYPES[out_name]))


# --------------------------------------------------------------------------- layouts and views


@pytest.mark.parametrize("route", SWEEP_ROUTES, indirect=True)
@pytest.mark.parametrize("out_name", ["float32", "float16"])
@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("name", TORCH_DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_channels_last_gives_channels_last_with_the_same_values(rng, route, mode, name, channels, out_name):
    batch = random_tensor(rng, name, (2, channels, 13, 17))
    dtype = torch.float32 if out_name == "float32" else OUTPUT_DTYPES[out_name]
    kwargs = {"mean": 0.4, "std": 0.25, "max_pixel_value": max_pixel_value_of(name), "normalization": mode}
    kwargs["dtype"] = dtype
    out = normalize(batch.contiguous(memory_format=torch.channels_last), **kwargs)
    assert out.is_contiguous(memory_format=torch.channels_last)
    # Torch reductions sum in another order over channels_last memory: float32 rounding apart,
    # which can move a float16 result by one ulp.
    rtol = 0.0 if out_name == "float32" else 2.0**-10
    torch.testing.assert_close(out.float(), normalize(batch, **kwargs).float(), rtol=rtol, atol=1e-6)


@pytest.mark.parametrize("route", SWEEP_ROUTES, indirect=True)
@pytest.mark.parametrize("name", ["uint8", "uint16", "float16", "bfloat16", "float32"])
@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_nonzero_and_a_mask_on_channels_last_batches_give_the_contiguous_result(rng, route, mode, name):
    image = make_image(rng, numpy_dtype(name), (2, 13, 17, 3), "random")
    image[:, :4] = 0
    image[rng.random(image.shape) < 0.2] = 0
    batch, zeros = tensor_from_numpy(image, name), torch.from_numpy(image == 0).movedim(-1, -3)
    mask = torch.from_numpy(rng.random((2, 13, 17)) < 0.7)  # (N, H, W): every channel alike
    kwargs = {"normalization": mode, "nonzero": True, "mask": mask}
    out = normalize(batch.contiguous(memory_format=torch.channels_last), **kwargs)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, normalize(batch, **kwargs), rtol=1e-6, atol=1e-6)
    assert not out[zeros].any()
    for index in range(2):  # each sample with its own statistics
        alone = normalize(batch[index], normalization=mode, nonzero=True, mask=mask[index])
        torch.testing.assert_close(out[index], alone, rtol=1e-6, atol=1e-6)


def test_a_numpy_mask_for_a_tensor_is_refused_saying_what_to_pass(rng):
    image = random_tensor(rng, "uint8", (3, 5, 6))
    with pytest.raises(TypeError, match=r"mask must be a bool tensor.*torch.from_numpy"):
        normalize(image, normalization="image", mask=np.ones((5, 6), bool))
    accepted = r"mask has shape \(3, 6, 5\).*\(5, 6\) \(every channel alike\) or \(3, 5, 6\)"
    with pytest.raises(ValueError, match=accepted):
        normalize(image, normalization="image", mask=torch.ones(3, 6, 5, dtype=torch.bool))


def interleaved(image: torch.Tensor) -> torch.Tensor:
    """``image`` in (..., H, W, C) memory: channels_last for (N, C, H, W)."""
    return image.movedim(-3, -1).contiguous().movedim(-1, -3)


VIEWS = {
    "contiguous": lambda x: x,
    "channels_last": lambda x: x.contiguous(memory_format=torch.channels_last),
    "column_step": lambda x: x[..., ::2],
    "row_slice": lambda x: x[..., 1:-2, :],
    "transposed_hw": lambda x: x.transpose(-1, -2),
    "chw_of_hwc_memory": lambda x: x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2),
    "channels_reversed": lambda x: x.flip(-3),  # a copy: torch has no negative strides
    "sliced_channels_last": lambda x: x.contiguous(memory_format=torch.channels_last)[..., ::2, :],
    "cropped_channels_last": lambda x: x.contiguous(memory_format=torch.channels_last)[..., 1:-2, 3:-1],
    "expanded_batch": lambda x: x[:1].expand(3, -1, -1, -1),
    "batch_and_channel_swapped": lambda x: x.transpose(0, 1),
    "image_of_hwc_memory": lambda x: x[0].permute(1, 2, 0).contiguous().permute(2, 0, 1),
    "video_of_nthwc_memory": lambda x: interleaved(x.unsqueeze(0)),
    "cropped_video_of_nthwc_memory": lambda x: interleaved(x.unsqueeze(0))[..., 2:, :-3],
    "gray_expanded_to_rgb": lambda x: x[:, :1].expand(-1, 3, -1, -1),
}
# What every route writes for each view (``torch.layout.output_strides``): a batch in interleaved
# memory (channels_last, crops and steps of it, NTHWC video) in that memory; anything else
# contiguous (``torch.empty_like`` would keep the HWC memory of one image and the other
# permutations, which collate then copies).
INTERLEAVED_VIEWS = {
    "channels_last", "chw_of_hwc_memory", "sliced_channels_last", "cropped_channels_last",
    "video_of_nthwc_memory", "cropped_video_of_nthwc_memory",
}  # fmt: skip


@pytest.mark.parametrize("name", ["uint8", "bfloat16"])  # bfloat16: the C route reads a float32 copy
@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("mode", ["standard", "image", "min_max_per_channel", "percentile"])
def test_every_route_gives_one_output_layout(rng, route, mode, view, name):
    """Interleaved batches (INTERLEAVED_VIEWS) stay interleaved, the rest comes back contiguous."""
    image = VIEWS[view](random_tensor(rng, name, (2, 3, 12, 14)))
    out = normalize(image, normalization=mode, mean=0.4, std=0.25)
    if view in INTERLEAVED_VIEWS:  # (..., H, W, C) in memory: channels_last for (N, C, H, W)
        assert out.movedim(-3, -1).is_contiguous(), out.stride()
    else:
        assert out.is_contiguous(), out.stride()


@pytest.mark.parametrize("route", SWEEP_ROUTES, indirect=True)
@pytest.mark.parametrize("view", [v for v in VIEWS if v != "contiguous"])
@pytest.mark.parametrize("name", ["uint8", "uint16", "bfloat16", "float32"])
@pytest.mark.parametrize("mode", MODES)
def test_view_gives_the_same_output_as_its_contiguous_copy(rng, route, mode, name, view):
    image = VIEWS[view](random_tensor(rng, name, (2, 3, 12, 14)))
    kwargs = {"mean": 0.4, "std": 0.25, "max_pixel_value": None, "normalization": mode}
    # Torch reductions may sum strided memory in another order: float32 rounding apart.
    torch.testing.assert_close(
        normalize(image, **kwargs), normalize(image.contiguous(), **kwargs), rtol=0, atol=1e-6
    )


@pytest.mark.parametrize("route", SWEEP_ROUTES, indirect=True)
@pytest.mark.parametrize("view", ["HW", "channels_last", "transposed_hw", "expanded_batch"])
@pytest.mark.parametrize("name", ["uint8", "float16", "bfloat16", "float32"])
@pytest.mark.parametrize("mode", MODES)
def test_half_output_of_every_layout_is_its_float32_output_rounded(rng, route, mode, name, view):
    """Identical bits: the CPU kernels write float16 themselves, on the planar and on the
    interleaved (channels_last) path, where Torch rounded the float32 output before."""
    batch = random_tensor(rng, name, (2, 3, 12, 14))
    image = batch[0, 0] if view == "HW" else VIEWS[view](batch)
    kwargs = {"mean": 0.4, "std": 0.25, "max_pixel_value": max_pixel_value_of(name), "normalization": mode}
    out = normalize(image, **kwargs, dtype=torch.float16)
    assert out.dtype == torch.float16
    assert torch.equal(out, normalize(image, **kwargs).to(torch.float16))


@pytest.mark.parametrize("route", SWEEP_ROUTES, indirect=True)
@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("name", TORCH_DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_input_is_never_modified(rng, route, mode, name, view):
    base = random_tensor(rng, name, (2, 3, 12, 14))
    before = base.clone()
    normalize(
        VIEWS[view](base), mean=0.4, std=0.25, max_pixel_value=max_pixel_value_of(name), normalization=mode
    )
    assert torch.equal(base, before)


@pytest.mark.parametrize("mode", MODES)
def test_float32_input_is_never_modified_with_half_output(rng, route, mode):
    base = random_tensor(rng, "float32", (2, 3, 12, 14))
    before = base.clone()
    normalize(base, max_pixel_value=1.0, normalization=mode, dtype=torch.float16)
    assert torch.equal(base, before)


# --------------------------------------------------------------------------- SPEC 4 edge cases


def constant_values(name: str) -> list:
    if name in ("uint8", "uint16", "int16", "int32"):
        return sorted({int(np.iinfo(name).min), 0, 100, int(np.iinfo(name).max)})
    if name in ("float32", "bfloat16"):
        # Beyond ~2e34, 1 / eps in the scope's units is beyond float32: capped, not inf (0 * inf).
        return [0.0, 0.3, -3.7, 1000.1, 1e35, -3e38]
    return [0.0, 0.3, -3.7, 1000.1]


CONSTANT_CASES = [
    pytest.param(name, value, id=f"{name}-{value}")
    for name in TORCH_DTYPES
    for value in constant_values(name)
]
SHAPES = {"HW": (9, 11), "CHW1": (1, 9, 11), "CHW3": (3, 9, 11), "NCHW5": (2, 5, 9, 11)}


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize(("name", "value"), CONSTANT_CASES)
def test_constant_image_gives_exact_zero(route, name, value, shape):
    image = torch.full(shape, value, dtype=TORCH_DTYPES[name])
    for mode in PER_IMAGE_MODES:
        out = normalize(image, normalization=mode)
        assert torch.equal(out, torch.zeros(shape)), mode


@pytest.mark.parametrize("name", TORCH_DTYPES)
@pytest.mark.parametrize("mode", IMAGE_MODES)
def test_single_outlier_is_clipped_to_20(rng, route, mode, name):
    image, twin = random_pair(rng, name, (40, 40, 3), "outlier")  # the outlier sits ~40 std out
    out = normalize(image, normalization=mode)
    assert out.max() == 20.0
    assert out.min() >= -20.0
    assert_close_to_numpy(out, reference_normalize(twin, normalization=mode))


BAD_VALUES = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}


def float32_with(rng, channels: int | None, bad: float, position: str) -> np.ndarray:
    """A random float32 HW / HWC image with ``bad`` in the last channel, mid-image or at the first pixel."""
    image = make_image(rng, np.float32, (9, 11) if channels is None else (9, 11, channels), "random")
    spatial = (4, 5) if position == "middle" else (0, 0)
    image[spatial if channels is None else (*spatial, channels - 1)] = bad
    return image


@pytest.mark.parametrize("route", SWEEP_ROUTES, indirect=True)
@pytest.mark.parametrize("position", ["middle", "first_pixel"])
@pytest.mark.parametrize("bad", BAD_VALUES)
@pytest.mark.parametrize("channels", [None, 1, 3, 5], ids=layout_id)
@pytest.mark.parametrize("mode", MODES)
def test_nan_and_inf_give_what_the_numpy_backend_gives(rng, route, mode, channels, bad, position):
    image = float32_with(rng, channels, BAD_VALUES[bad], position)
    kwargs = channel_kwargs(channels, mode, "float32")
    out = numpy_from_tensor(normalize(tensor_from_numpy(image, "float32"), **kwargs))
    expected = normalize(image, **kwargs)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    np.testing.assert_allclose(out, expected, rtol=0, atol=ATOL, equal_nan=True)  # ±inf must match too


@pytest.mark.parametrize("mode", MODES)
def test_all_nan_image_gives_all_nan(route, mode):
    out = normalize(torch.full((3, 5, 6), float("nan")), max_pixel_value=1.0, normalization=mode)
    assert out.isnan().all()


@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_inf_in_one_sample_leaves_the_other_samples_finite(rng, route, mode):
    batch = random_tensor(rng, "float32", (3, 3, 9, 11))
    batch[1, :, 4, 5] = float("inf")
    out = normalize(batch, normalization=mode)
    assert out[[0, 2]].isfinite().all()
    assert not out[1].isfinite().all()  # NaN where the statistics break, inf where they hold (robust)


@pytest.mark.parametrize(
    ("name", "mode"), [(name, mode) for name in ("uint16", "float32") for mode in IMAGE_MODES]
)
def test_near_constant_image_matches_float64_reference(request, rng, route, name, mode):
    """std / mean ~ 1e-5 to 1e-4: a mean rounded to float32 shifts every output by up to
    ulp(mean) / 2 / std, ~1e-3 here (SPEC 1: statistics in float64)."""
    if name == "uint16":
        hwc = rng.integers(30000, 30003, size=(32, 32, 3), endpoint=True).astype(np.uint16)
    else:
        hwc = (1000.0 + 0.01 * rng.standard_normal((32, 32, 3))).astype(np.float32)
    image = tensor_from_numpy(hwc, name)
    assert_close_to_numpy(normalize(image, normalization=mode), reference_normalize(hwc, normalization=mode))


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("dtype", [torch.int8, torch.int64, torch.uint32, torch.bool, torch.complex64])
def test_unsupported_input_dtype_is_a_type_error_listing_the_accepted_ones(dtype):
    with pytest.raises(
        TypeError,
        match=rf"image dtype {dtype} is not supported; accepted: uint8, uint16, int16, int32, .*bfloat16",
    ):
        normalize(torch.zeros(3, 4, 4, dtype=dtype))


DEFAULT_OUTPUT = {
    **{name: "float32" for name in ("uint8", "uint16", "int16", "int32")},
    **{name: name for name in FLOAT_NAMES},
}


@pytest.mark.parametrize("name", TORCH_DTYPES)
@pytest.mark.parametrize("mode", ["standard", "image_per_channel", "min_max", "robust"])
def test_default_output_dtype_keeps_a_float_inputs_dtype(rng, route, mode, name):
    # As v2.Normalize: a float input keeps its dtype, an integer one gives float32; computed in
    # float32 either way (float64 input on the Torch-op route: in float64).
    image = random_tensor(rng, name, (2, 3, 9, 11))
    kwargs = {"normalization": mode, "max_pixel_value": max_pixel_value_of(name)}
    out = norm_transforms.normalize(image, **kwargs)
    assert out.dtype == getattr(torch, DEFAULT_OUTPUT[name])
    single = norm_transforms.normalize(image, **kwargs, dtype=torch.float32)
    atol = {"float16": 0.02, "bfloat16": 0.13}.get(name, 1e-5)  # half an ulp at |y| <= 20 and 32
    torch.testing.assert_close(out.float(), single, rtol=0, atol=atol)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.complex64, torch.uint8, np.float32])
def test_unsupported_output_dtype_is_a_type_error(dtype):
    accepted = "float32, float16, bfloat16, float64"
    with pytest.raises(TypeError, match=rf"output dtype must be one of {accepted}; got "):
        normalize(torch.zeros(3, 4, 4, dtype=torch.uint8), dtype=dtype)


@pytest.mark.parametrize("shape", [(), (5,)], ids=["0-D", "1-D"])
def test_tensor_without_two_spatial_axes_is_a_value_error(shape):
    with pytest.raises(ValueError, match=r"expected a tensor of shape \(H, W\) or \(\.\.\., C, H, W\)"):
        normalize(torch.zeros(shape, dtype=torch.uint8))


@pytest.mark.parametrize("shape", [(0, 4), (3, 0, 4), (0, 3, 4, 4)])
def test_empty_tensor_is_a_value_error(shape):
    with pytest.raises(ValueError, match="image is empty"):
        normalize(torch.zeros(shape, dtype=torch.uint8))


@pytest.mark.parametrize("mode", MODES)
def test_tensor_requiring_grad_is_a_value_error_pointing_to_the_layer(route, mode):
    image = torch.rand(3, 4, 4, requires_grad=True)
    with pytest.raises(ValueError, match=r"requires grad; pass image\.detach\(\), or use NormalizeLayer"):
        normalize(image, normalization=mode)


def test_volume_is_refused_for_tensors():
    with pytest.raises(ValueError, match="volume=True is not supported for tensors"):
        normalize(torch.zeros(3, 4, 4, dtype=torch.uint8), volume=True)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"mean": (0.1, 0.2), "std": 0.2}, "mean"), ({"mean": 0.1, "std": (0.1, 0.2, 0.3, 0.4)}, "std")],
    ids=["mean", "std"],
)
def test_wrong_channel_count_of_mean_or_std_names_the_argument(route, kwargs, name):
    with pytest.raises(ValueError, match=rf"{name} has \d values but the image has 3 channels"):
        normalize(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"std": 0}, "std must contain only positive numbers"),
        ({"mean": float("nan")}, "mean must contain only finite numbers"),
        ({"normalization": "bogus"}, "normalization must be one of"),
        ({"max_pixel_value": 0}, "max_pixel_value must be a positive finite number"),
    ],
    ids=["std_zero", "mean_nan", "bogus_mode", "max_pixel_value_zero"],
)
def test_bad_arguments_are_value_errors_naming_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        normalize(torch.zeros(3, 4, 4, dtype=torch.uint8), **kwargs)


# --------------------------------------------------------------------------- CUDA


def needs_cuda(test):
    """Mark ``test`` as a CUDA test, skipped where no CUDA device is present."""
    skip = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
    return pytest.mark.cuda(skip(test))


@pytest.mark.parametrize("out_name", ["float32", "float16"])
@pytest.mark.parametrize("mode", MODES)
@needs_cuda
def test_cuda_matches_cpu(rng, mode, out_name):
    """float32 within 1e-5; float16 within one float16 ulp (a 1e-7 difference in float32 can
    round to the neighbouring float16)."""
    batch = random_tensor(rng, "uint8", (4, 3, 64, 48))
    dtype = torch.float32 if out_name == "float32" else torch.float16
    out = normalize(batch.cuda(), normalization=mode, dtype=dtype)
    expected = normalize(batch, normalization=mode, dtype=dtype)
    assert out.device.type == "cuda"
    assert out.dtype == dtype
    rtol = 0.0 if dtype == torch.float32 else 2.0**-10
    torch.testing.assert_close(out.cpu().float(), expected.float(), rtol=rtol, atol=ATOL)


@pytest.mark.parametrize("mode", MODES)
@needs_cuda
def test_cuda_call_does_not_sync_with_the_host(rng, mode):
    batch = random_tensor(rng, "uint8", (4, 3, 64, 48)).cuda()
    # nonzero=True too, in the per-image modes: the kernels skip the zeros on the device.
    selections = [{}, {"nonzero": True}] if mode in PER_IMAGE_MODES else [{}]
    for selection in selections:  # warm-up: constants are cached on the device
        normalize(batch, normalization=mode, **selection)
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for selection in selections:
            normalize(batch, normalization=mode, **selection)
            normalize(batch, normalization=mode, dtype=torch.float16, **selection)
    finally:
        torch.cuda.set_sync_debug_mode(previous)


@pytest.mark.parametrize("mode", MODES)
@needs_cuda
def test_cuda_keeps_channels_last(rng, mode):
    batch = random_tensor(rng, "uint8", (2, 3, 32, 40)).cuda()
    out = normalize(batch.contiguous(memory_format=torch.channels_last), normalization=mode)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, normalize(batch, normalization=mode), rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- scale safety (SPEC 6)

# float32 reductions overflow past ~1e19 (squares) and underflow below ~1e-19; float64 and
# bfloat16 tensors reach beyond float32 altogether or share its range.
TENSOR_SCALES = {
    "float32": [1e-30, 1e30, 3e37],
    "bfloat16": [1e-30, 1e30, 3e37],
    "float64": [1e-300, 1e30, 1e300, 8e307],
}
TENSOR_SCALE_CASES = [(name, scale) for name, scales in TENSOR_SCALES.items() for scale in scales]


@pytest.mark.parametrize(("name", "scale"), TENSOR_SCALE_CASES, ids=lambda v: f"{v}")
@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_per_image_modes_are_scale_safe_on_both_routes(rng, route, mode, name, scale):
    unit = torch.from_numpy(rng.random((2, 3, 13, 11)) * 2.0 - 1.0)
    image = (unit * scale).to(TORCH_DTYPES[name])
    out = normalize(image, normalization=mode)
    # The reference on the same values (after rounding to the tensor's dtype), channels last.
    values = image.double().numpy().transpose(0, 2, 3, 1)
    expected = np.stack([reference_normalize(v, normalization=mode) for v in values]).transpose(0, 3, 1, 2)
    assert torch.isfinite(out).all()
    np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_image_times_1e30_gives_the_same_output_within_eps_on_both_routes(rng, route, mode):
    image = torch.from_numpy((rng.random((2, 3, 15, 16)) * 2.0 - 1.0).astype(np.float32))
    # eps (1e-4, absolute) is the only difference: ~3e-4 at most on values of std ~0.6.
    torch.testing.assert_close(
        normalize(image * 1e30, normalization=mode), normalize(image, normalization=mode), rtol=0, atol=5e-4
    )


# --------------------------------------------------------------------------- tensors without data


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: torch.zeros(3, 4, 4, device="meta"),
            ValueError,
            r"meta device \(it has a shape but no data\)",
        ),
        (lambda: torch.zeros(3, 4, 4).to_sparse(), TypeError, r"layout torch.sparse_coo; pass a dense"),
    ],
    ids=["meta", "sparse"],
)
def test_tensors_without_strided_data_are_refused_clearly(make, error, message):
    with pytest.raises(error, match=message):
        normalize(make())


@pytest.mark.parametrize(("name", "scale"), [("float32", 3e37), ("bfloat16", 1e30), ("float64", 1e300)])
@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
@needs_cuda
def test_cuda_is_scale_safe_and_matches_cpu(rng, mode, name, scale):
    unit = torch.from_numpy(rng.random((2, 3, 32, 40)) * 2.0 - 1.0)
    image = (unit * scale).to(TORCH_DTYPES[name])
    out = normalize(image.cuda(), normalization=mode)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.cpu(), normalize(image, normalization=mode), rtol=0, atol=ATOL)


@needs_cuda
def test_cuda_value_range_skips_nan(rng):
    image = random_tensor(rng, "float32", (3, 16, 16))
    image[0, 0, 0] = torch.nan
    assert torch_backend.value_range(image.cuda()) == torch_backend.value_range(image)


@pytest.mark.parametrize("name", ["float32", "bfloat16"])
@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_scopes_below_float32s_normal_range_stay_finite(route, mode, name):
    # A factor 2**-e for values under 2**-126 overflowed float32: the whole image came out NaN.
    image = (torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0)) * 1e-39).to(TORCH_DTYPES[name])
    assert torch.isfinite(normalize(image, normalization=mode)).all()


def test_force_triton_variable_sends_cpu_tensors_off_the_cpu_kernels(monkeypatch):
    """NORM_TRANSFORMS_FORCE_TRITON=1, read once per process (cleared here to read it again)."""
    image = torch.zeros(3, 4, 4)
    monkeypatch.setenv(torch_backend.FORCE_TRITON_VARIABLE, "1")
    torch_backend._triton_forced.cache_clear()
    try:
        assert not torch_backend.uses_cpu_kernels(image)
    finally:
        torch_backend._triton_forced.cache_clear()  # read again, without the variable, next time
    monkeypatch.delenv(torch_backend.FORCE_TRITON_VARIABLE)
    assert torch_backend.uses_cpu_kernels(image)
