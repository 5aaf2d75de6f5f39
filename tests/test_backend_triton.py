"""What is specific to the Triton kernels (``norm_transforms.backends.triton``); the conformance
suite and the Torch backend's tests run them on every input besides.

Without a GPU they run on CPU tensors in Triton's interpreter (``TRITON_INTERPRET=1``, set by
conftest; forced with ``NORM_TRANSFORMS_FORCE_TRITON=1``), where tiles hold 256 elements, so
that the images here span several tiles and every split-reduction path runs. The ``cuda`` tests
run the compiled kernels on a GPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import triton
import triton.language as tl
from conftest import MODES, PER_IMAGE_MODES, to_dtype, tolerance
from reference import reference_normalize, reference_normalize_selected
from test_backend_torch import VIEWS
from torch_cases import force_triton_route, interpreting_triton

import norm_transforms.backends.torch as torch_backend
import norm_transforms.backends.triton as triton_backend
from norm_transforms import kernel_route, normalize
from norm_transforms.backends import kernels as cpu_kernels
from norm_transforms.backends.triton import kernels as triton_kernels
from norm_transforms.backends.triton import launch as triton_launch
from norm_transforms.backends.triton import layout as triton_layout
from norm_transforms.backends.triton import statistics as triton_statistics
from norm_transforms.backends.triton.layout import BLOCK_ELEMENTS, TILE_ALIGNMENT, output, planes
from norm_transforms.modes import EPS, NormalizeParams
from norm_transforms.modes import MODES as MODE_TABLE


@pytest.fixture
def triton_route(monkeypatch) -> None:
    force_triton_route(monkeypatch)


def chw_twin(tensor: torch.Tensor) -> np.ndarray:
    """The HWC (or HW) NumPy image with the values of a CHW / NCHW tensor."""
    moved = tensor if tensor.ndim == 2 else tensor.movedim(-3, -1)
    return moved.contiguous().numpy()


def hwc(out: torch.Tensor) -> np.ndarray:
    return chw_twin(out.float())


def reference_of(tensor: torch.Tensor, **kwargs) -> np.ndarray:
    """The float64 reference per sample of an (N, C, H, W), (C, H, W) or (H, W) tensor."""
    if tensor.ndim <= 3:
        return reference_normalize(chw_twin(tensor), **kwargs)
    return np.stack([reference_normalize(chw_twin(sample), **kwargs) for sample in tensor])


def random_chw(rng, dtype: torch.dtype, shape: tuple[int, ...]) -> torch.Tensor:
    if not dtype.is_floating_point:  # every value, the extremes of signed types included
        info = torch.iinfo(dtype)
        return torch.from_numpy(rng.integers(info.min, info.max + 1, shape).astype(np.int64)).to(dtype)
    return torch.from_numpy(rng.uniform(-3.0, 5.0, shape)).to(dtype)


def four_levels(mode: str, dtype: torch.dtype) -> bool:
    """Percentiles of 32-bit keys: four levels of histograms and three rank kernels, ~5-25 s a
    call in the interpreter; the tests of the shared machinery (views, tiles, finalize paths)
    take them out, and the 32-bit tests below and the conformance suite run them."""
    return MODE_TABLE[mode].statistic in ("percentile", "robust") and dtype in (torch.int32, torch.float32)


# --------------------------------------------------------------------------- the route


def test_kernel_route_names_the_kernels_each_input_takes(monkeypatch):
    image = torch.zeros(3, 8, 8, dtype=torch.uint8)
    assert kernel_route(np.zeros((8, 8, 3), np.uint8)) == cpu_kernels.KERNELS_BACKEND
    assert kernel_route(image) == cpu_kernels.KERNELS_BACKEND
    monkeypatch.setattr(torch_backend, "uses_cpu_kernels", lambda image: False)
    assert kernel_route(image) == "torch"


def test_forced_route_is_triton_except_float64_and_half_percentiles(triton_route):
    assert kernel_route(torch.zeros(3, 8, 8), "image") == "triton"
    # Percentiles of 8-, 16- and 32-bit keys from levels of byte histograms in the kernels.
    for dtype in (torch.uint8, torch.uint16, torch.int16, torch.int32, torch.float32):
        assert kernel_route(torch.zeros(3, 8, 8, dtype=dtype), "percentile") == "triton"
        assert kernel_route(torch.zeros(3, 8, 8, dtype=dtype), "robust_per_channel") == "triton"
    # Percentiles of the other floats are a device-side sort: the Torch-op route.
    for dtype in (torch.float64, torch.float16, torch.bfloat16):
        assert kernel_route(torch.zeros(3, 8, 8, dtype=dtype), "percentile") == "torch"
        assert kernel_route(torch.zeros(3, 8, 8, dtype=dtype), "robust") == "torch"
    # Signed integers: moments and extremes in the kernels (int16 as exact int64 sums, int32 in
    # float64).
    for dtype in (torch.int16, torch.int32):
        assert kernel_route(torch.zeros(3, 8, 8, dtype=dtype), "image_per_channel") == "triton"
        assert kernel_route(torch.zeros(3, 8, 8, dtype=dtype), "min_max") == "triton"


def test_forcing_triton_where_it_cannot_run_says_why(monkeypatch):
    monkeypatch.setattr(torch_backend, "_triton_forced", lambda: True)
    monkeypatch.setattr(torch_backend, "_load_triton", lambda: (None, "Triton does not import (test)"))
    with pytest.raises(RuntimeError, match=r"NORM_TRANSFORMS_FORCE_TRITON=1, but .*does not import"):
        normalize(torch.zeros(3, 4, 4))


def test_cpu_tensor_outside_the_interpreter_is_refused_clearly(triton_route, monkeypatch):
    monkeypatch.setattr(triton_kernels, "INTERPRETED", False)
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        normalize(torch.zeros(3, 4, 4))


def test_disable_switch_is_named_in_the_reason(monkeypatch):
    torch_backend._load_triton.cache_clear()
    monkeypatch.setenv(torch_backend.DISABLE_TRITON_VARIABLE, "1")
    try:
        assert torch_backend.triton_unavailable_reason() == "NORM_TRANSFORMS_DISABLE_TRITON=1"
    finally:
        monkeypatch.delenv(torch_backend.DISABLE_TRITON_VARIABLE)
        torch_backend._load_triton.cache_clear()
    assert torch_backend.triton_unavailable_reason() is None


# --------------------------------------------------------------------------- tiling


@pytest.mark.parametrize(
    ("shape", "channels_last", "tile_channels", "dense"),
    [
        ((2, 3, 5, 7), False, 1, False),
        ((2, 3, 5, 7), True, 3, True),
        ((2, 20, 5, 7), True, 1, False),
        ((5, 7), False, 1, False),
    ],
    ids=["NCHW", "channels_last", "channels_last_20_channels", "HW"],
)
def test_tiles_read_whole_pixels_only_for_interleaved_layouts(shape, channels_last, tile_channels, dense):
    image = torch.zeros(shape)
    if channels_last:
        image = image.contiguous(memory_format=torch.channels_last)
    source, geometry = planes(image)
    assert (geometry.tile_channels, geometry.dense) == (tile_channels, dense)
    assert geometry.block == BLOCK_ELEMENTS
    # Whole pixels per tile, and tiles of a dense layout 16 elements apart (vector loads).
    assert geometry.block_p * tile_channels <= BLOCK_ELEMENTS < 2 * geometry.block_p * tile_channels
    assert geometry.block_p % TILE_ALIGNMENT == 0
    assert source is image and not geometry.copied  # read in place, no copy


def test_a_crop_of_channels_last_memory_is_copied_to_channels_last_and_tiled_in_whole_pixels():
    image = torch.zeros(2, 3, 9, 11).contiguous(memory_format=torch.channels_last)[..., 1:-1, 2:]
    source, geometry = planes(image)
    assert geometry.copied and source.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(source, image)
    assert (geometry.tile_channels, geometry.dense) == (3, True)


def test_an_image_of_hwc_memory_is_read_in_place_and_written_contiguous():
    image = torch.zeros(9, 11, 3).permute(2, 0, 1)
    source, geometry = planes(image)
    assert source is image and not geometry.copied
    assert geometry.tile_channels == 3 and not geometry.dense  # planar output
    assert output(image, torch.float32, geometry).is_contiguous()


@pytest.mark.parametrize(
    ("mode", "dtype"),
    [
        (mode, dtype)
        for mode in MODES
        for dtype in (torch.uint8, torch.uint16, torch.int16, torch.int32, torch.float32, torch.float64)
        if not four_levels(mode, dtype)
    ],
    ids=str,
)
def test_images_of_many_tiles_match_the_float64_reference(triton_route, rng, mode, dtype):
    # 2 samples of 3 planes of 1200 pixels: 5 tiles per plane here, each a partial to combine.
    image = random_chw(rng, dtype, (2, 3, 30, 40))
    assert planes(image)[1].blocks > 1
    # Signed integers have no full scale: their largest value, explicitly.
    signed = not dtype.is_floating_point and dtype.is_signed
    max_pixel_value = float(torch.iinfo(dtype).max) if signed else None
    kwargs = {"normalization": mode, "max_pixel_value": max_pixel_value, "percentiles": (3.0, 91.5)}
    out = normalize(image, **kwargs)
    np.testing.assert_allclose(hwc(out), reference_of(image, **kwargs), **tolerance(mode))


@pytest.mark.parametrize("channels_last", [False, True], ids=["NCHW", "channels_last"])
@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_int32_near_2_to_the_30_keeps_its_small_spread(triton_route, rng, mode, channels_last):
    # float32 holds these values to 64 only: the statistics, the finalize and the affine of int32
    # images run in float64 (WIDE), where a float32 route would give noise for a spread of 5.
    image = torch.from_numpy(2**30 + rng.integers(0, 6, (2, 3, 20, 30))).to(torch.int32)
    if channels_last:
        image = image.contiguous(memory_format=torch.channels_last)
    out = normalize(image, normalization=mode)
    np.testing.assert_allclose(hwc(out), reference_of(image, normalization=mode), **tolerance(mode))


@pytest.mark.parametrize("dtype", [torch.int16, torch.int32], ids=str)
@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_signed_extremes_and_constant_planes(triton_route, mode, dtype):
    info = torch.iinfo(dtype)
    image = torch.full((2, 3, 20, 30), info.min, dtype=dtype)
    image[0, :, ::2] = info.max  # sample 0: half at each extreme; sample 1: constant at the minimum
    image[0, 1] = -1
    out = normalize(image, normalization=mode)
    np.testing.assert_allclose(hwc(out), reference_of(image, normalization=mode), **tolerance(mode))
    assert torch.equal(out[1], torch.zeros(3, 20, 30))


@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_channels_last_many_tiles_and_many_channels(triton_route, rng, mode):
    for channels in (3, 20):  # interleaved tiles, then one channel per tile on interleaved memory
        image = random_chw(rng, torch.uint8, (2, channels, 20, 30))
        image = image.contiguous(memory_format=torch.channels_last)
        out = normalize(image, normalization=mode)
        assert out.is_contiguous(memory_format=torch.channels_last)
        np.testing.assert_allclose(hwc(out), reference_of(image, normalization=mode), **tolerance(mode))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32], ids=str)
@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("mode", ["standard", "image_per_channel", "min_max", "percentile"])
def test_every_view_gives_its_copys_output_and_is_never_modified(triton_route, rng, mode, view, dtype):
    # Views whose spatial axes do not merge (column steps, transposed H and W) are copied once;
    # the others (channels_last, expanded or swapped leading axes) are read in place.
    if four_levels(mode, dtype):
        pytest.skip("views are read by the tiling every kernel shares; 32-bit keys: four_levels")
    image = VIEWS[view](random_chw(rng, dtype, (2, 3, 12, 17)))
    before = image.clone()
    kwargs = {"normalization": mode, "mean": 0.45, "std": 0.25}  # any channel count
    out = normalize(image, **kwargs)
    expected = normalize(image.contiguous(), **kwargs)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    assert torch.equal(image, before)


@pytest.mark.parametrize("out_dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("mode", ["standard", "image", "min_max_per_channel"])
def test_channels_last_half_output_is_the_float32_output_rounded(triton_route, rng, mode, out_dtype):
    image = random_chw(rng, torch.uint8, (2, 3, 20, 20)).contiguous(memory_format=torch.channels_last)
    assert_half_output_is_the_float32_output_rounded(image, mode, out_dtype)


def assert_half_output_is_the_float32_output_rounded(image: torch.Tensor, mode: str, out_dtype) -> None:
    """Rounded once, to nearest even (torch's own float32 -> half conversion), in the input's
    memory format."""
    out = normalize(image, normalization=mode, dtype=out_dtype)
    assert out.dtype == out_dtype and out.stride() == image.stride()
    assert torch.equal(out, normalize(image, normalization=mode, dtype=torch.float32).to(out_dtype))


# --------------------------------------------------------------------------- exactness


def test_scale_safety_holds_across_tiles_of_different_magnitude(triton_route, rng):
    # One plane whose first tiles hold values near 1e30 and whose last tile holds values near 1:
    # the partials carry different exponents and are combined in the largest one's units.
    plane = rng.uniform(0.5, 1.0, (1, 40, 40))
    plane[:, :20] *= 1e30
    for dtype in (torch.float32, torch.float64):
        image = torch.from_numpy(plane).to(dtype)
        for mode in ("image", "min_max", "image_per_channel"):
            out = normalize(image, normalization=mode)
            assert torch.isfinite(out).all()
            expected = reference_of(image, normalization=mode)
            np.testing.assert_allclose(hwc(out), expected, **tolerance(mode))


def test_float64_beyond_float32s_range_stays_finite_and_exact(triton_route, rng):
    image = torch.from_numpy(rng.uniform(-1.0, 1.0, (2, 3, 20, 20)) * 1e300)
    for mode in ("image", "min_max_per_channel"):
        out = normalize(image, normalization=mode)
        np.testing.assert_allclose(hwc(out), reference_of(image, normalization=mode), **tolerance(mode))


def test_uint8_percentiles_are_exact_over_many_tiles(triton_route, rng):
    # 3 planes of 2400 pixels with few distinct values: ranks land on ties and on bin edges.
    image = torch.from_numpy(rng.integers(0, 6, (3, 40, 60)).astype(np.uint8) * 40)
    for mode in ("percentile_per_channel", "robust", "percentile"):
        kwargs = {"normalization": mode, "percentiles": (10.0, 90.0)}
        np.testing.assert_allclose(
            hwc(normalize(image, **kwargs)), normalize(chw_twin(image), **kwargs), rtol=0, atol=1e-6
        )


HISTOGRAM_MODES = tuple(name for name, m in MODE_TABLE.items() if m.statistic in {"percentile", "robust"})
# The last value of one high byte and the first of the next (int16: keys 0x7FFF and 0x8000).
HIGH_BYTE_EDGES = {torch.uint16: (255, 256), torch.int16: (-1, 0)}


@pytest.mark.parametrize("dtype", [torch.uint16, torch.int16], ids=str)
def test_16_bit_percentiles_are_numpys_where_ranks_straddle_high_bytes(triton_route, rng, dtype):
    # Each plane of 2400 pixels (10 tiles) holds 1200 values of the high byte below an edge and
    # 1200 of the one above, shuffled: the median interpolates between the last value of one
    # high byte and the first of the next, and the second's rank is exactly the count of values
    # below its high byte. The center and spread are np.percentile's, the output the NumPy
    # backend's.
    last_below, first_above = HIGH_BYTE_EDGES[dtype]
    below = last_below - rng.integers(0, 256, (3, 1200))
    above = first_above + rng.integers(0, 256, (3, 1200))
    values = rng.permuted(np.concatenate([below, above], axis=1), axis=1)
    image = torch.from_numpy(values.reshape(3, 40, 60)).to(dtype)
    for mode in HISTOGRAM_MODES:
        kwargs = {"normalization": mode, "percentiles": (25.0, 50.0)}
        out, params = normalize(image, **kwargs, return_params=True)
        np.testing.assert_allclose(hwc(out), normalize(chw_twin(image), **kwargs), rtol=0, atol=1e-6)
        scopes = values.reshape(3 if "per_channel" in mode else 1, -1).astype(np.float64)
        quartile, median, upper = np.percentile(scopes, (25.0, 50.0, 75.0), axis=1)
        robust = mode.startswith("robust")
        center, spread = (median, upper - quartile) if robust else (quartile, median - quartile)
        np.testing.assert_allclose(params.center.ravel().numpy(), center, rtol=1e-12)
        np.testing.assert_allclose(1.0 / params.scale.ravel().numpy(), spread + EPS, rtol=1e-9)


def test_16_bit_second_level_counts_each_high_byte_once(triton_route, rng):
    # Values 1000-1099 (high bytes 3 and 4): the 1st percentile's two ranks share high byte 3,
    # the 99th's share 4; slots 1 and 3 repeat 0 and 2, so the second level leaves them empty.
    values = rng.integers(1000, 1100, (1, 3, 20, 30))
    image = torch.from_numpy(values).to(torch.uint16)
    source, geometry = planes(image)
    params = NormalizeParams.build(normalization="percentile")
    statistic = triton_statistics.statistic_for("percentile", torch.uint16)
    terms = triton_statistics.scope_terms(
        statistic, source, geometry, params, False, True, triton_layout.selection(False, None, geometry)
    )
    second = terms.partials[geometry.rows : 5 * geometry.rows].reshape(geometry.rows, 4, 256).sum(dim=(0, 2))
    assert second.tolist() == [(values < 1024).sum(), 0, (values >= 1024).sum(), 0]
    low, high = np.percentile(values, (1.0, 99.0))
    assert terms.table[4, 0] == low and terms.table[5, 0] == pytest.approx(1.0 / (high - low + EPS))


@pytest.mark.parametrize("layout", ["NCHW", "channels_last", "channels_last_5"])
@pytest.mark.parametrize("dtype", [torch.uint16, torch.int16], ids=str)
def test_16_bit_percentiles_in_every_layout_and_finalize(triton_route, rng, monkeypatch, dtype, layout):
    # Full-range values; interleaved tiles of 3 and 5 channels pick each lane's rank high bytes
    # by its channel in the per-channel modes. The finalize kernel (what runs) and the affine's
    # own finalize (forced) give the same bits.
    channels = 5 if layout.endswith("5") else 3
    image = image_in_layout(random_chw(rng, dtype, (2, channels, 20, 30)), layout)
    for mode in HISTOGRAM_MODES:
        split = assert_finalize_paths_agree(image, monkeypatch, mode)
        expected = reference_of(image, **finalize_kwargs(mode))
        np.testing.assert_allclose(hwc(split), expected, **tolerance(mode))


def keys_across_every_byte(rng, dtype: torch.dtype, size: int) -> np.ndarray:
    """``size`` values on both sides of the key edge where every byte of a 32-bit key changes
    (int32 -1 | 0, float32 -0.0 | 0.0: keys 0x7FFFFFFF | 0x80000000), of every magnitude from
    1 to 2**30 (float32: 2**-149 to 2**100), so that ranks fall between values that differ at
    each level of the histograms; with ties, and the dtype's extremes (and infinities) few
    enough to stay outside the percentiles."""
    if dtype == torch.int32:
        magnitudes = np.floor(2.0 ** rng.uniform(0, 30, size)).astype(np.int64)
        values = np.where(rng.random(size) < 0.5, -1 - magnitudes, magnitudes)
        extremes = [-(2**31), 2**31 - 1, -1, 0]
    else:
        magnitudes = 2.0 ** rng.uniform(-149, 100, size)
        values = np.where(rng.random(size) < 0.5, -magnitudes, magnitudes).astype(np.float32)
        extremes = [
            -np.inf,
            np.inf,
            -0.0,
            0.0,
            np.finfo(np.float32).max,
            np.finfo(np.float32).smallest_subnormal,
        ]
    values[rng.integers(0, size, 2 * len(extremes))] = extremes * 2
    values[: size // 8] = values[size // 8 : size // 4]  # ties
    return rng.permuted(values).astype(np.int32 if dtype == torch.int32 else np.float32)


@pytest.mark.parametrize(
    ("mode", "layout"),
    [
        ("percentile", "NCHW"),
        ("percentile_per_channel", "channels_last"),
        ("robust", "channels_last"),
        ("robust_per_channel", "NCHW"),
    ],
)
@pytest.mark.parametrize("dtype", [torch.int32, torch.float32], ids=str)
def test_32_bit_percentiles_are_numpys_at_every_byte(kernels_only, rng, dtype, mode, layout):
    # Four levels of byte histograms, each rank's key read byte by byte: the centers are
    # np.percentile's bits (the Triton route and the NumPy backend's), the spreads within a
    # rounding of the interpolation, the output the NumPy backend's; a float32 image's NaN
    # pixels are skipped, as np.nanpercentile skips them.
    values = np.stack([keys_across_every_byte(rng, dtype, 1200) for _ in range(6)]).reshape(2, 3, 30, 40)
    if dtype == torch.float32:
        values[0, 1, :5] = np.nan
    image = image_in_layout(torch.from_numpy(values), layout)
    signed = {"max_pixel_value": float(2**31 - 1)} if dtype == torch.int32 else {}
    kwargs = {"normalization": mode, "percentiles": (2.5, 60.0), **signed}
    out, params = normalize(image, **kwargs, return_params=True)
    numpy_out, numpy_params = normalize(chw_twin(image), **kwargs, return_params=True, batched=True)
    np.testing.assert_allclose(hwc(out), numpy_out, rtol=0, atol=1e-6)
    scopes = values.reshape(6 if "per_channel" in mode else 2, -1).astype(np.float64)
    if mode.startswith("robust"):
        lower, center, upper = np.nanpercentile(scopes, (25.0, 50.0, 75.0), axis=1)
    else:
        center, upper = np.nanpercentile(scopes, (2.5, 60.0), axis=1)
        lower = center
    assert params.center.ravel().numpy().tolist() == center.tolist()
    assert params.center.ravel().numpy().tolist() == np.ravel(numpy_params.center).tolist()
    np.testing.assert_allclose(1.0 / params.scale.ravel().numpy(), upper - lower + EPS, rtol=1e-12)


@pytest.mark.parametrize("mode", HISTOGRAM_MODES)
def test_float32_scopes_of_only_nan_come_out_nan_and_empty_ones_0(kernels_only, mode):
    # The NaN pixels count apart (no key): sample 0 all NaN has no percentile (NaN out, NaN
    # params, as the Torch-op route and the NumPy backend give); with a mask, sample 1's
    # selected pixels are all NaN (NaN), sample 2 selects none (0, params 0).
    image = torch.arange(3 * 2 * 16 * 20, dtype=torch.float32).reshape(3, 2, 16, 20) - 900.0
    image[0] = float("nan")
    image[1, :, :8] = float("nan")
    mask = torch.ones(3, 16, 20, dtype=torch.bool)
    mask[1, 8:] = False
    mask[2] = False
    for kwargs in ({}, {"mask": mask}):
        out, params = normalize(image, normalization=mode, return_params=True, **kwargs)
        numpy_mask = {"mask": kwargs["mask"].numpy()} if kwargs else {}
        numpy_out, numpy_params = normalize(
            chw_twin(image), normalization=mode, return_params=True, batched=True, **numpy_mask
        )
        np.testing.assert_allclose(hwc(out), numpy_out, rtol=0, atol=1e-6)  # NaN where NaN
        np.testing.assert_array_equal(params.center.numpy().ravel(), np.ravel(numpy_params.center))
        np.testing.assert_array_equal(params.scale.numpy().ravel(), np.ravel(numpy_params.scale))
        assert out[0].isnan().all() and params.center[0].isnan().all()
        if kwargs:
            assert out[1].isnan().all() and not out[2].any() and not params.scale[2].any()
        else:  # NaN pixels map to NaN, the others by their scope's percentiles
            assert params.center[1:].isfinite().all() and not out[2].isnan().any()


def force_finalize(monkeypatch, fused: bool) -> None:
    """Every scope finalized by the affine programs (``fused``) or by the finalize kernel."""
    monkeypatch.setattr(triton_statistics, "_fused", lambda *arguments: fused)


@pytest.mark.parametrize("layout", ["NCHW", "channels_last", "channels_last_5"])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int32, torch.float32], ids=str)
@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_finalize_kernel_and_fused_finalize_give_the_same_bits(
    triton_route, rng, monkeypatch, mode, dtype, layout
):
    if four_levels(mode, dtype):
        pytest.skip("histograms of more than one level always take the finalize kernel")
    # Scopes of few partials are finalized in every affine program, others by a finalize kernel
    # first: the same function of the same partials, so the same output and params. An
    # interleaved tile of 3 or 5 channels gathers its channels' terms in a loop first.
    image = image_in_layout(random_chw(rng, dtype, (2, 5 if layout.endswith("5") else 3, 20, 30)), layout)
    split = assert_finalize_paths_agree(image, monkeypatch, mode)
    np.testing.assert_allclose(hwc(split), reference_of(image, **finalize_kwargs(mode)), **tolerance(mode))


def image_in_layout(image: torch.Tensor, layout: str) -> torch.Tensor:
    return image if layout == "NCHW" else image.contiguous(memory_format=torch.channels_last)


def finalize_kwargs(mode: str) -> dict[str, object]:
    return {"normalization": mode, "max_pixel_value": 1.0, "mean": 0.5, "std": 0.25}


def assert_finalize_paths_agree(image: torch.Tensor, monkeypatch, mode: str, **options) -> torch.Tensor:
    """The output and params of ``image`` with every scope finalized in the affine programs and
    with the finalize kernel are the same bits; returns the output."""
    kwargs = {**finalize_kwargs(mode), **options}
    force_finalize(monkeypatch, fused=True)
    fused, fused_params = normalize(image, **kwargs, return_params=True)
    force_finalize(monkeypatch, fused=False)
    split, split_params = normalize(image, **kwargs, return_params=True)
    torch.testing.assert_close(fused, split, rtol=0, atol=0, equal_nan=True)  # NaN pixels kept
    torch.testing.assert_close(fused_params.center, split_params.center, rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(fused_params.scale, split_params.scale, rtol=0, atol=0, equal_nan=True)
    return split


@pytest.mark.parametrize("mode", ["image", "min_max"])
def test_scopes_of_more_partials_than_one_loop_holds(triton_route, rng, monkeypatch, mode):
    # 67 tiles of 256 pixels in one plane: past FUSED_MAX_PARTIALS, so the finalize kernel runs,
    # and its loops take 64 partials at a time (two iterations); the fused path, forced, the same.
    image = random_chw(rng, torch.float32, (1, 130, 130))
    assert planes(image)[1].blocks > triton_statistics.FUSED_MAX_PARTIALS
    split = normalize(image, normalization=mode, max_pixel_value=1.0)
    force_finalize(monkeypatch, fused=True)
    assert torch.equal(normalize(image, normalization=mode, max_pixel_value=1.0), split)
    np.testing.assert_allclose(
        hwc(split), reference_of(image, normalization=mode, max_pixel_value=1.0), **tolerance(mode)
    )


def test_the_affine_finalizes_only_small_scopes_of_few_channels():
    moments = triton_statistics.statistic_for("mean_std", torch.uint8)
    histograms = triton_statistics.statistic_for("percentile", torch.uint8)
    assert triton_statistics._fused(moments, 64, 1) and not triton_statistics._fused(moments, 65, 1)
    assert triton_statistics._fused(histograms, 4, 4) and not triton_statistics._fused(histograms, 5, 1)
    assert not triton_statistics._fused(moments, 1, 8)  # 8 scopes finalized by every program
    # Two-level histograms: 1 + 4 or 6 rows of 256 counts per channel, finalized once.
    for dtype in (torch.uint16, torch.int16):
        assert not triton_statistics._fused(triton_statistics.statistic_for("robust", dtype), 1, 1)


def test_histogram_counts_pass_int32(triton_route):
    # A bin of a plane of 2**31 pixels (a 50000x50000 slide's background) holds more values than
    # an int32 count: the histogram table is int64, and the tiles add into it as int64. Here the
    # table starts 5 below 2**31 in bin 7, and an image of twenty 7s brings it past.
    image = torch.full((1, 4, 5), 7, dtype=torch.uint8)
    source, geometry = planes(image)
    table = torch.zeros((geometry.rows, triton_kernels.HISTOGRAM_BINS), dtype=torch.int64)
    table[0, 7] = 2**31 - 5
    statistic = triton_statistics.statistic_for("percentile", torch.uint8)
    triton_statistics.reduce_into(
        table, statistic, source, geometry, False, triton_layout.selection(False, None, geometry)
    )
    assert table[0, 7] == 2**31 + 15 and table.sum() == 2**31 + 15
    # The table that normalize() allocates for them.
    params = NormalizeParams.build(normalization="percentile")
    terms = triton_statistics.scope_terms(
        statistic, source, geometry, params, False, False, triton_layout.selection(False, None, geometry)
    )
    assert terms.partials.dtype == torch.int64


@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_output_is_the_same_bits_on_every_call(triton_route, rng, mode):
    # The split reductions combine partials in a fixed order (no float atomics): deterministic.
    if four_levels(mode, torch.float32):
        pytest.skip("histograms are integer counts, the same in any order; 32-bit keys: four_levels")
    image = random_chw(rng, torch.float32, (2, 3, 20, 30))
    assert torch.equal(normalize(image, normalization=mode), normalize(image, normalization=mode))


@pytest.mark.parametrize("mode", MODES)
def test_photo_crop_matches_numpy_backend(triton_route, photos, mode):
    for photo in photos.values():
        for name in ("uint8", "float32"):
            if four_levels(mode, getattr(torch, name)):
                continue  # the 32-bit tests above
            crop = np.ascontiguousarray(to_dtype(photo, np.dtype(name))[:40, :48])
            tensor = torch.from_numpy(crop).movedim(-1, -3)
            kwargs = {"normalization": mode, "max_pixel_value": None, "mean": 0.45, "std": 0.25}
            np.testing.assert_allclose(
                hwc(normalize(tensor, **kwargs)), normalize(crop, **kwargs), rtol=0, atol=1e-5
            )


def test_return_params_of_every_scope(triton_route, rng):
    image = random_chw(rng, torch.uint8, (2, 3, 20, 20))
    for mode in PER_IMAGE_MODES:
        out, params = normalize(image, normalization=mode, return_params=True)
        per_channel = MODE_TABLE[mode].per_channel
        assert params.center.shape == (2, 3 if per_channel else 1, 1, 1)
        assert params.center.dtype == params.scale.dtype == torch.float64
        expected = (image.double() - params.center) * params.scale
        clip = MODE_TABLE[mode].clip
        if clip is not None:
            expected = expected.clamp(*clip)
        torch.testing.assert_close(out.double(), expected, rtol=0, atol=2e-6)


def large_offset_views(device: str) -> dict[str, torch.Tensor]:
    """Small images whose element offsets pass 2**31 (their strides span a storage of 2-3 GB,
    left unwritten but a few hundred values): int32 offsets wrap there and read outside the
    image. A channel stride of 2**30 (channel 2 starts at 2**31, as in a 3x32768x32768 uint8
    tensor), and a pixel stride whose 256th pixel lies at 3.2e9."""
    storage = torch.empty(3 << 30, dtype=torch.uint8, device=device)
    channels = storage.as_strided((3, 4, 4), (1 << 30, 4, 1))
    step = 12_582_912  # 255 * step + 1 < 3 << 30
    pixels = storage.as_strided((1, 16, 16), (0, 16 * step, step))
    views = {"channel stride 2**30": channels, "pixel offsets to 3.2e9": pixels}
    for view in views.values():
        view.copy_(torch.arange(view.numel(), dtype=torch.uint8).reshape(view.shape) * 3)
    return views


def check_large_offsets(device: str = "cpu") -> None:
    """Every kernel (affine, moments, extremes, histograms) on ``large_offset_views``: each
    view gives its compact copy's output."""
    for name, view in large_offset_views(device).items():
        for mode in ("standard", "image_per_channel", "min_max", "percentile"):
            kwargs = {"normalization": mode, "mean": 0.45, "std": 0.25}
            got, expected = normalize(view, **kwargs), normalize(view.contiguous(), **kwargs)
            assert torch.equal(got, expected), f"{name}, {mode}: {(got - expected).abs().max()}"


def test_offsets_beyond_int32_read_inside_the_image():
    # In a subprocess: before int64 offsets, the wrapped ones crashed the interpreter (SIGSEGV).
    if not interpreting_triton():
        pytest.skip("Triton runs compiled here: the cuda test checks this")
    tests = Path(__file__).resolve().parent
    code = f"import sys; sys.path[:0] = [{str(tests)!r}]; import {__name__} as t; t.check_large_offsets()"
    environment = {**os.environ, "NORM_TRANSFORMS_FORCE_TRITON": "1", "TRITON_INTERPRET": "1"}
    check = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0, f"exit {check.returncode}\n{check.stdout[-2000:]}{check.stderr[-4000:]}"


@triton.jit
def tile_probe(
    mask_ptr,
    offset_ptr,
    pixels,
    sample_stride,
    channel_stride,
    pixel_stride,
    block,
    TILE_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK: tl.constexpr,
    DENSE: tl.constexpr,
    LARGE: tl.constexpr,
):
    """The mask and offsets (-1 where masked) of tile ``block`` of sample 0 (``_tile``)."""
    channel0 = tl.program_id(0)  # 0, typed as the kernels' own
    if LARGE:
        channel0, block = channel0.to(tl.int64), block.to(tl.int64)
    offsets, mask, _ = triton_kernels._tile(
        channel0.to(tl.int64), channel0, block, pixels, sample_stride, channel_stride, pixel_stride,
        TILE_C, BLOCK_P, BLOCK, DENSE, LARGE,
    )  # fmt: skip
    lanes = tl.arange(0, BLOCK)
    tl.store(mask_ptr + lanes, mask.to(tl.int32))
    tl.store(offset_ptr + lanes, tl.where(mask, offsets.to(tl.int64), -1))


@pytest.mark.parametrize(
    ("shape", "strides"),
    [
        ((1, 3, 30000, 30000), (2_700_000_000, 1, 90_000, 3)),  # pixels * 3 > 2**31
        ((1, 4, 16384, 32768), (2**31, 1, 4 * 32768, 4)),  # pixels * 4 == 2**31
        ((1, 3, 1, 715_827_841), (2_147_483_523, 1, 2_147_483_523, 3)),  # 125 short of 2**31
        ((1, 1, 1, 2**31 - 100), (2**31 - 100, 2**31 - 100, 2**31 - 100, 1)),  # planar
    ],
    ids=["RGB_30000", "RGBA_exactly_2**31", "RGB_just_below", "planar_just_below"],
)
def test_tiles_of_images_of_2_31_elements_mask_exactly_their_pixels(monkeypatch, shape, strides):
    # The tiling of the compiled kernels (4096 lanes). An int32 ``pixels * 3`` of a 30000x30000
    # RGB image was negative and masked every lane (nothing written, the output left as
    # allocated); just below 2**31, the last tile's flat lane indices wrapped negative and
    # unmasked lanes outside the image.
    device = "cpu" if interpreting_triton() else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("Triton runs compiled here, and there is no CUDA device")
    monkeypatch.setattr(triton_layout, "BLOCK_ELEMENTS", 4096)
    triton_layout._planes.cache_clear()
    try:
        geometry = triton_layout._planes(torch.Size(shape), strides)
    finally:
        triton_layout._planes.cache_clear()
    assert geometry.large
    channel_stride, pixel_stride = geometry.strides[1:]
    for block in (0, geometry.blocks // 2, geometry.blocks - 1):
        mask = torch.zeros(geometry.block, dtype=torch.int32, device=device)
        offsets = torch.zeros(geometry.block, dtype=torch.int64, device=device)
        tile_probe[(1,)](
            mask, offsets, geometry.pixels, *geometry.strides, block, **geometry.tiling
        )  # fmt: skip
        valid = min(geometry.pixels - block * geometry.block_p, geometry.block_p) * geometry.tile_channels
        lanes = torch.arange(geometry.block, dtype=torch.int64)
        pixel = block * geometry.block_p + lanes // geometry.tile_channels
        expected = (lanes % geometry.tile_channels) * channel_stride + pixel * pixel_stride
        expected[valid:] = -1
        assert int(mask.sum()) == valid, f"tile {block}"
        assert torch.equal(offsets.cpu(), expected), f"tile {block}"


# --------------------------------------------------------------------------- nonzero=True


@pytest.fixture
def kernels_only(triton_route, monkeypatch) -> None:
    """The Triton route, with the Torch-op route refused: each call runs the kernels."""

    def refused(*arguments, **kwargs):
        raise AssertionError("the call took the Torch-op route")

    monkeypatch.setattr(triton_backend, "normalize_with_ops", refused)


def with_background(rng, dtype: torch.dtype, shape: tuple[int, ...]) -> torch.Tensor:
    """Random pixels with zeros: the first 300 pixels of every plane (its first tile, 256 pixels
    here, holds none else), a third of the rest, and all of sample 1's last channel."""
    image = random_chw(rng, dtype, shape)
    zeros = rng.random(shape) < 1 / 3
    zeros.reshape(*shape[:-2], -1)[..., :300] = True
    zeros[1, -1] = True
    return torch.where(torch.from_numpy(zeros), torch.zeros((), dtype=dtype), image)


def kernels_reduce(mode: str, dtype: torch.dtype) -> bool:
    """float64 percentiles sort on the device: the Torch-op route, tested with it."""
    return MODE_TABLE[mode].statistic in ("mean_std", "min_max") or dtype != torch.float64


NONZERO_CASES = [
    (mode, dtype)
    for mode in PER_IMAGE_MODES
    for dtype in (torch.uint8, torch.uint16, torch.int16, torch.int32, torch.float32, torch.float64)
    if kernels_reduce(mode, dtype) and not four_levels(mode, dtype)
]


def selection_kwargs(rng, image: torch.Tensor, selection: str) -> dict[str, object]:
    """``nonzero`` and ``mask`` as ``selection`` names them: a "mask" of every channel alike
    ``(N, H, W)`` or a "channel mask" ``(N, C, H, W)``, which selects about 60 % of the pixels
    and none of sample 1 (a mask) or of its last channel (a channel mask); a float image then
    gets NaN outside the mask in sample 0 and inf in sample 1's empty scope."""
    kwargs: dict[str, object] = {"nonzero": "nonzero" in selection}
    if "mask" not in selection:
        return kwargs
    per_channel = "channel mask" in selection
    mask = torch.from_numpy(
        rng.random(image.shape if per_channel else (image.shape[0], *image.shape[-2:])) < 0.6
    )
    if per_channel:
        mask[1, -1] = False
    else:
        mask[1] = False
    if image.dtype.is_floating_point:
        outside = (~mask[0]).nonzero()[0].tolist()  # (c, h, w) or (h, w)
        image[(0, slice(None), *outside[-2:])] = float("nan")
        image[1, -1, 0, 0] = float("inf")
    kwargs["mask"] = mask
    return kwargs


def numpy_twin_of_mask(mask: torch.Tensor, image: torch.Tensor) -> np.ndarray:
    """The NumPy mask of a tensor's: channels last where it has a channel axis."""
    return chw_twin(mask) if mask.ndim == image.ndim else mask.numpy()


SELECTION_CASES = [
    (mode, dtype, selection, layout)
    for mode, dtype in NONZERO_CASES
    for selection, layouts in (
        ("nonzero", ("NCHW", "channels_last")),
        ("mask", ("NCHW", "channels_last")),
        ("channel mask and nonzero", ("channels_last",)),
    )
    if selection == "nonzero" or dtype in (torch.uint8, torch.int16, torch.float32)
    for layout in layouts
] + [
    ("percentile", torch.float32, "mask", "NCHW"),
    ("percentile_per_channel", torch.int32, "nonzero", "NCHW"),
    ("robust", torch.float32, "nonzero", "channels_last"),
    ("robust_per_channel", torch.float32, "channel mask and nonzero", "channels_last"),
]


@pytest.mark.parametrize(("mode", "dtype", "selection", "layout"), SELECTION_CASES, ids=str)
def test_selected_statistics_of_the_kernels_match_the_reference(
    kernels_only, rng, mode, dtype, selection, layout
):
    # Zero tiles first, scattered zeros, a mask, and scopes without a selected pixel: the
    # statistics of the selected pixels only, every zero exactly 0 after the affine with
    # nonzero, every pixel of an empty scope 0 (inf included), and an empty scope's terms 0
    # (the other routes' too); NaN outside the mask stays NaN, as on the other routes.
    image = with_background(rng, dtype, (2, 3, 30, 40))
    selected = selection_kwargs(rng, image, selection)
    if layout == "channels_last":
        image = image.contiguous(memory_format=torch.channels_last)
    signed = not dtype.is_floating_point and dtype.is_signed
    kwargs = {
        "normalization": mode,
        "max_pixel_value": float(torch.iinfo(dtype).max) if signed else None,
        "percentiles": (3.0, 91.5),
    }
    out, params = normalize(image, return_params=True, **selected, **kwargs)
    mask = selected.get("mask")

    numpy_mask = None if mask is None else numpy_twin_of_mask(mask, image)
    references = [
        reference_normalize_selected(
            chw_twin(image[index]), sample_mask, nonzero=selected["nonzero"], **kwargs
        )
        for index, sample_mask in enumerate([None] * len(image) if mask is None else numpy_mask)
    ]
    np.testing.assert_allclose(hwc(out), np.stack(references), **tolerance(mode))
    if selected["nonzero"]:
        assert not out[image == 0].any()
    cpu_out, cpu_params = normalize(
        chw_twin(image), return_params=True, batched=True, **{**selected, "mask": numpy_mask}, **kwargs
    )
    np.testing.assert_allclose(hwc(out), cpu_out, **tolerance(mode))
    for name in ("center", "scale"):  # per scope
        ours, numpy_backends = getattr(params, name), getattr(cpu_params, name)
        np.testing.assert_allclose(ours.numpy().ravel(), np.ravel(numpy_backends), rtol=1e-12)
    empty = slice(None) if selection == "mask" else -1  # sample 1's scopes without a pixel
    if MODE_TABLE[mode].per_channel or selection == "mask":
        assert not out[1, empty].any()
        assert not params.center[1, empty].any() and not params.scale[1, empty].any()


@pytest.mark.parametrize(
    ("mode", "dtype"),
    [
        (mode, dtype)
        for mode in PER_IMAGE_MODES
        for dtype in (torch.float64, torch.float32, torch.uint8)
        if kernels_reduce(mode, dtype)
    ],
    ids=str,
)
def test_nonzero_constant_after_zero_tiles_is_exactly_zero(kernels_only, mode, dtype):
    # The moments combine about the mean of the first partial that holds a pixel, not of an
    # empty tile (mean 0): about 0, the float64 sum of 800 times 1/3 divided by 800 came out
    # an ulp away from 1/3, and the image not 0.
    value = 1 / 3 if dtype.is_floating_point else 7
    image = torch.full((2, 30, 40), value, dtype=dtype)
    image[:, :10] = 0  # the first 400 pixels: the whole first tile of each plane
    out, params = normalize(image, normalization=mode, nonzero=True, return_params=True, max_pixel_value=1.0)
    assert not out.any()
    assert torch.equal(params.center, torch.full_like(params.center, float(torch.tensor(value, dtype=dtype))))


@pytest.mark.parametrize(("selection", "layout"), [("nonzero", "NCHW"), ("channel mask", "channels_last")])
@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_selected_statistics_finalize_kernel_and_fused_finalize_give_the_same_bits(
    kernels_only, rng, monkeypatch, mode, selection, layout
):
    dtype = torch.int16 if MODE_TABLE[mode].statistic in ("percentile", "robust") else torch.float32
    image = with_background(rng, dtype, (2, 3, 20, 30))
    selected = selection_kwargs(rng, image, selection)
    if layout == "channels_last":
        image = image.contiguous(memory_format=torch.channels_last)
    assert_finalize_paths_agree(image, monkeypatch, mode, **selected)


def test_a_mask_view_of_any_strides_gives_its_copys_output(kernels_only, rng):
    # The kernels read a mask with strides of its own: a transposed view of a larger mask
    # (no axes merge: copied first) and the expanded view of an (N, H, W) mask give the output
    # of their contiguous copies.
    image = with_background(rng, torch.uint8, (2, 3, 20, 30))
    larger = torch.from_numpy(rng.random((2, 3, 40, 50)) < 0.5)
    views = [
        larger[:, :, 1:31:1, 3:23].transpose(-1, -2),
        larger[:, 0, :20, :30].unsqueeze(1).expand(2, 3, 20, 30),
    ]
    for view in views:
        kwargs = {"normalization": "image_per_channel", "max_pixel_value": None}
        expected = normalize(image, mask=view.contiguous(), **kwargs)
        assert torch.equal(normalize(image, mask=view, **kwargs), expected)


# --------------------------------------------------------------------------- compiled


def run_compiled_check(script: str, cache: Path) -> str:
    """Run ``tests/<script>`` in a process of its own without TRITON_INTERPRET (it compiles the
    kernels for sm_90 with a compile-only driver, which it swaps in for the whole process);
    skip where this Triton cannot be driven so (exit 2). Returns what it printed."""
    root = Path(__file__).resolve().parents[1]
    environment = {**os.environ, "TRITON_CACHE_DIR": str(cache)}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    environment.pop("TRITON_INTERPRET", None)
    check = subprocess.run(
        [sys.executable, str(root / "tests" / script)],
        env=environment, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if check.returncode == 2:
        pytest.skip(check.stdout.strip())
    assert check.returncode == 0, check.stdout[-4000:] + check.stderr[-2000:]
    return check.stdout


@pytest.fixture(scope="module")
def sm90_cache(tmp_path_factory):
    """One Triton cache for the compiled checks: what one compiles for sm_90, the next reuses."""
    return tmp_path_factory.mktemp("triton_sm90_cache")


# The subprocess's own limit: every variant compiled took ~120 s on a 2-core Xeon, 320 s on a
# 2-core EPYC, and 460 s there with the 32-bit percentiles' kernels (four levels of histograms).
@pytest.mark.timeout(600)
def test_every_kernel_variant_compiles_for_a_gpu(sm90_cache):
    # The interpreter accepts code that Triton's compiler refuses: compile (not launch) every
    # variant normalize() would launch, for sm_90, in a process without TRITON_INTERPRET.
    assert "0 failed to compile" in run_compiled_check("triton_compile_check.py", sm90_cache)


def test_direct_launches_launch_what_triton_would(sm90_cache):
    # launch.Launcher skips Triton's launch path after a kernel's first launch: the same calls,
    # launched directly and through kernel[grid], must reach the driver with the same compiled
    # kernel, grid and arguments, across every specialization (tests/triton_launch_check.py).
    assert "0 calls launched differently" in run_compiled_check("triton_launch_check.py", sm90_cache)


# --------------------------------------------------------------------------- compiled, on a GPU


def needs_cuda(test):
    skip = pytest.mark.skipif(
        not torch.cuda.is_available() or interpreting_triton(), reason="needs a CUDA device (compiled Triton)"
    )
    return pytest.mark.cuda(skip(test))


@needs_cuda
def test_cuda_tensors_take_the_triton_kernels():
    assert kernel_route(torch.zeros(3, 8, 8, device="cuda"), "image") == "triton"


@needs_cuda
@pytest.mark.parametrize("out_dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("mode", MODES)
def test_cuda_batch_matches_the_cpu_kernels(rng, mode, out_dtype):
    batch = random_chw(rng, torch.uint8, (8, 3, 224, 224))
    for memory_format in (torch.contiguous_format, torch.channels_last):
        image = batch.contiguous(memory_format=memory_format)
        out = normalize(image.cuda(), normalization=mode, dtype=out_dtype)
        assert out.is_contiguous(memory_format=memory_format)
        expected = normalize(image, normalization=mode).to(out_dtype)
        atol = 1e-5 if out_dtype == torch.float32 else 0.02
        torch.testing.assert_close(out.cpu().float(), expected.float(), rtol=0, atol=atol)


@needs_cuda
@pytest.mark.parametrize("layout", ["NCHW", "channels_last", "channels_last_5"])
@pytest.mark.parametrize("dtype", [torch.uint16, torch.int16, torch.float32, torch.bfloat16], ids=str)
def test_cuda_dtypes_and_layouts_match_the_cpu_kernels(rng, dtype, layout):
    # The per-dtype paths of the kernels (exact integer sums, float64 two-pass moments with
    # exponents, min/max in float32 or float64) on planar and interleaved tiles of 3 and 5
    # channels, compiled, against the CPU kernels.
    image = image_in_layout(random_chw(rng, dtype, (4, 5 if layout.endswith("5") else 3, 96, 80)), layout)
    for mode in MODES:
        kwargs = {**finalize_kwargs(mode), "dtype": torch.float32}  # bfloat16 in: not its rounding
        out = normalize(image.cuda(), **kwargs)
        torch.testing.assert_close(out.cpu(), normalize(image, **kwargs), rtol=1e-5, atol=1e-5)


@needs_cuda
@pytest.mark.parametrize("layout", ["NCHW", "channels_last", "channels_last_5"])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32], ids=str)
@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_cuda_finalize_kernel_and_fused_finalize_give_the_same_bits(monkeypatch, rng, mode, dtype, layout):
    image = image_in_layout(random_chw(rng, dtype, (2, 5 if layout.endswith("5") else 3, 64, 96)), layout)
    assert_finalize_paths_agree(image.cuda(), monkeypatch, mode)


@needs_cuda
@pytest.mark.parametrize("out_dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("mode", ["standard", "image", "min_max_per_channel", "percentile"])
def test_cuda_half_output_is_the_float32_output_rounded(rng, mode, out_dtype):
    # The batch test compares halves with the CPU within 0.02; this one, bit for bit.
    batch = random_chw(rng, torch.uint8, (4, 3, 64, 80)).cuda()
    for image in (batch, batch.contiguous(memory_format=torch.channels_last)):
        assert_half_output_is_the_float32_output_rounded(image, mode, out_dtype)


@needs_cuda
@pytest.mark.parametrize("mode", ["standard", "image_per_channel", "min_max", "percentile_per_channel"])
def test_cuda_direct_launches_give_the_bits_of_triton_launches(monkeypatch, rng, mode):
    # launch.Launcher launches a compiled kernel directly after its first launch: on the GPU,
    # the same bits as through kernel[grid], for the specializations a cached kernel could be
    # mistaken across (a misaligned view after an aligned image, one channel, one pixel).
    batch = random_chw(rng, torch.uint8, (2, 3, 48, 64)).cuda()
    misaligned = torch.empty(1 + batch.numel(), dtype=batch.dtype, device="cuda")[1:].view_as(batch)
    misaligned.copy_(batch)
    images = [batch, misaligned, batch[:, :1].contiguous(), batch[:1, :, :1, :1].contiguous()]
    kwargs = {"normalization": mode, "mean": 0.5, "std": 0.25, "max_pixel_value": 255.0}
    direct = [[normalize(image, **kwargs) for image in images] for _ in range(2)][1]
    monkeypatch.setattr(triton_launch, "DIRECT", False)
    for image, out in zip(images, direct, strict=True):
        assert torch.equal(out, normalize(image, **kwargs))


@needs_cuda
def test_cuda_single_image_of_4k_matches_the_cpu_kernels(rng):
    # 8.3 million pixels per plane: 2025 partials per plane in the finalize loops.
    image = random_chw(rng, torch.uint8, (3, 2160, 3840))
    for mode in PER_IMAGE_MODES:
        out = normalize(image.cuda(), normalization=mode)
        torch.testing.assert_close(out.cpu(), normalize(image, normalization=mode), rtol=0, atol=1e-5)


@needs_cuda
def test_cuda_offsets_beyond_int32_read_inside_the_image():
    check_large_offsets("cuda")
