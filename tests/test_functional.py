"""``norm_transforms.normalize``: defaults, agreement with the transform, and kernel dispatch."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from conftest import MODES, PER_IMAGE_MODES, make_image
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from reference import reference_normalize_selected

from norm_transforms import backends, functional, normalize
from norm_transforms.backends.numpy import normalize as numpy_normalize
from norm_transforms.backends.numpy import selection
from norm_transforms.modes import NormalizeParams

A = pytest.importorskip("albumentations")

from norm_transforms import Normalize  # noqa: E402  (needs albumentations)

SHARED_ARGUMENTS = ("mean", "std", "max_pixel_value", "normalization")


def test_defaults_equal_albumentations_normalize_defaults():
    ours = inspect.signature(normalize).parameters
    theirs = inspect.signature(A.Normalize.__init__).parameters
    assert {name: ours[name].default for name in SHARED_ARGUMENTS} == {
        name: theirs[name].default for name in SHARED_ARGUMENTS
    }


def test_defaults_are_imagenet_255_standard():
    defaults = {name: p.default for name, p in inspect.signature(normalize).parameters.items()}
    assert defaults["mean"] == (0.485, 0.456, 0.406)
    assert defaults["std"] == (0.229, 0.224, 0.225)
    assert defaults["max_pixel_value"] == 255.0
    assert defaults["normalization"] == "standard"


@pytest.mark.parametrize("shape", [(16, 20, 3), (16, 20)], ids=["HWC3", "HW"])
def test_default_call_equals_default_transform(rng, shape):
    image = make_image(rng, np.uint8, shape, "random")
    np.testing.assert_array_equal(normalize(image), Normalize()(image=image)["image"])


@pytest.mark.parametrize("mode", MODES)
def test_call_equals_transform_in_every_mode(rng, mode):
    image = make_image(rng, np.float32, (16, 20, 3), "random")
    kwargs = {"mean": 0.4, "std": 0.25, "max_pixel_value": 1.0, "normalization": mode}
    np.testing.assert_array_equal(normalize(image, **kwargs), Normalize(**kwargs)(image=image)["image"])


def test_default_call_matches_albumentations_within_1e5(rng):
    image = make_image(rng, np.uint8, (16, 20, 3), "random")
    np.testing.assert_allclose(normalize(image), A.Normalize()(image=image)["image"], rtol=0, atol=1e-5)


@pytest.mark.parametrize("mode", ["standard", "image_per_channel"])
def test_inplace_writes_into_a_float32_array_and_returns_it(rng, mode):
    image = make_image(rng, np.float32, (16, 20, 3), "random")
    expected = normalize(image, max_pixel_value=1.0, normalization=mode)
    inpt = image.copy()
    assert normalize(inpt, max_pixel_value=1.0, normalization=mode, inplace=True) is inpt
    np.testing.assert_array_equal(inpt, expected)


@pytest.mark.parametrize(
    ("dtype", "writeable", "got"),
    [(np.uint8, True, "a uint8 array"), (np.float32, False, "a float32 read-only array")],
    ids=["uint8", "read_only"],
)
def test_inplace_where_it_cannot_apply_says_why_and_leaves_the_array(rng, dtype, writeable, got):
    image = make_image(rng, dtype, (16, 20, 3), "random")
    image.flags.writeable = writeable
    before = image.copy()
    with pytest.raises(ValueError, match=rf"writable array of the output dtype \(float32\).*; got {got}"):
        normalize(image, inplace=True)
    np.testing.assert_array_equal(image, before)


class Box:
    """A custom array-like type that no built-in kernel knows."""

    def __init__(self, data):
        self.data = data


class SubBox(Box):
    pass


@pytest.fixture
def kernels(monkeypatch):
    """The kernel table, restored after the test."""
    table = dict(backends._LOADED)
    monkeypatch.setattr(backends, "_LOADED", table)
    return table


def test_unregistered_type_is_a_type_error(kernels):
    with pytest.raises(TypeError, match="Box"):
        normalize(Box(np.zeros((2, 2))))


def test_register_kernel_routes_a_custom_type(kernels):
    calls = []

    def kernel(array, params, **options):
        calls.append((array, params, options))
        return "sentinel"

    functional.register_kernel(Box, kernel)
    box = Box(np.zeros((2, 2)))
    assert normalize(box, mean=0.5, std=0.25, normalization="min_max", batched=True) == "sentinel"
    [(array, params, options)] = calls
    assert array is box
    assert params == NormalizeParams.build(0.5, 0.25, 255.0, "min_max")
    assert options == {"batched": True, "volume": False}


def test_registered_kernel_serves_subclasses(kernels):
    functional.register_kernel(Box, lambda array, params, **options: type(array).__name__)
    assert normalize(SubBox(None)) == "SubBox"


def test_registering_a_kernel_leaves_numpy_arrays_on_the_numpy_kernel(kernels, rng):
    image = make_image(rng, np.uint8, (6, 7, 3), "random")
    before = normalize(image)
    functional.register_kernel(Box, lambda array, params, **options: None)
    np.testing.assert_array_equal(normalize(image), before)


# --------------------------------------------------------------------------- the parameter cache


@pytest.mark.parametrize(
    ("accepted", "refused"),
    [
        ({"max_pixel_value": 1}, {"max_pixel_value": True}),
        ({"mean": (1, 0.5, 0.5)}, {"mean": (True, 0.5, 0.5)}),
        ({"std": (1, 1, 1)}, {"std": (True, 1, 1)}),
    ],
    ids=["max_pixel_value", "mean", "std"],
)
def test_bools_are_refused_even_after_an_equal_number_was_cached(rng, accepted, refused):
    # True == 1 and both hash alike: a cache keyed on values alone would accept True.
    image = make_image(rng, np.uint8, (4, 4, 3), "random")
    normalize(image, **accepted)
    normalize(image, **accepted)
    with pytest.raises(TypeError):
        normalize(image, **refused)


# --------------------------------------------------------------------------- denormalize arguments


@pytest.mark.parametrize(
    "defaults",
    [
        {"mean": (0.485, 0.456, 0.406)},
        {"mean": [0.485, 0.456, 0.406], "std": np.array([0.229, 0.224, 0.225])},
        {"max_pixel_value": 255},
    ],
    ids=["tuple", "list_and_array", "int_255"],
)
def test_denormalize_accepts_arguments_equal_to_the_defaults_beside_params(rng, defaults):
    image = make_image(rng, np.uint8, (6, 5, 3), "random")
    out, params = normalize(image, normalization="image", return_params=True)
    expected = functional.denormalize(out, params=params)
    np.testing.assert_array_equal(functional.denormalize(out, params=params, **defaults), expected)


@pytest.mark.parametrize(
    "other", [{"mean": (0.5, 0.5, 0.5)}, {"std": 0.5}, {"max_pixel_value": 1.0}], ids=["mean", "std", "mpv"]
)
def test_denormalize_refuses_other_arguments_beside_params(rng, other):
    image = make_image(rng, np.uint8, (6, 5, 3), "random")
    out, params = normalize(image, normalization="image", return_params=True)
    with pytest.raises(ValueError, match="pass either params"):
        functional.denormalize(out, params=params, **other)


def test_a_kernel_registered_without_an_inverse_leaves_denormalize_where_it_was(kernels, rng):
    # register_kernel(np.ndarray, k) replaced NumPy's whole backend: denormalize then raised.
    image = make_image(rng, np.uint8, (6, 7, 3), "random")
    expected = functional.denormalize(normalize(image))
    functional.register_kernel(np.ndarray, lambda array, params, **options: numpy_normalize(array, params))
    np.testing.assert_array_equal(functional.denormalize(normalize(image)), expected)


# --------------------------------------------------------------------------- nonzero and mask: properties

PROPERTY_SETTINGS = settings(max_examples=60, deadline=None)

# Per-image modes whose global twin takes the same statistic (for "the pixels alone" below).
GLOBAL_TWIN = {mode: mode.removesuffix("_per_channel") for mode in PER_IMAGE_MODES}


@st.composite
def images_with_zeros(draw, batched: bool = False) -> np.ndarray:
    """HW or HWC images (a batch with ``batched``) of uint8, uint16, float16 or float32, about
    half of whose values are 0."""
    dtype = np.dtype(draw(st.sampled_from(["uint8", "uint16", "float16", "float32"])))
    channels = draw(st.sampled_from([None, 1, 3]))
    shape = (draw(st.integers(1, 3)),) if batched else ()
    shape += (draw(st.integers(1, 7)), draw(st.integers(1, 7))) + (() if channels is None else (channels,))
    if dtype.kind == "u":
        values = st.integers(1, int(np.iinfo(dtype).max))
    else:
        values = st.floats(0.0009765625, 1.0, width=16 if dtype == np.float16 else 32)  # 2**-10
    return draw(arrays(dtype, shape, elements=st.one_of(st.just(0), values)))


def scopes_of(image: np.ndarray, per_channel: bool) -> list[tuple]:
    """Index tuples of the statistics scopes of one HW or HWC image."""
    if image.ndim == 2 or not per_channel:
        return [(Ellipsis,)]
    return [(Ellipsis, channel) for channel in range(image.shape[-1])]


def kwargs_for(image: np.ndarray, mode: str) -> dict:
    return {"normalization": mode, "max_pixel_value": None}


@PROPERTY_SETTINGS
@given(image=images_with_zeros(), mode=st.sampled_from(PER_IMAGE_MODES))
def test_nonzero_keeps_zeros_and_maps_the_rest_as_the_mode_maps_those_pixels_alone(image, mode):
    out = normalize(image, nonzero=True, **kwargs_for(image, mode))
    assert out.dtype == np.float32 and out.shape == image.shape
    assert not out[image == 0].any()  # exactly 0, +0.0 or -0.0
    for scope in scopes_of(image, mode.endswith("_per_channel")):
        values = image[scope][image[scope] != 0]
        if values.size:
            alone = normalize(values.reshape(-1, 1), **kwargs_for(image, GLOBAL_TWIN[mode]))
            np.testing.assert_allclose(out[scope][image[scope] != 0], alone[:, 0], rtol=1e-6, atol=1e-5)
    reference = reference_normalize_selected(image, nonzero=True, **kwargs_for(image, mode))
    np.testing.assert_allclose(out, reference, rtol=1e-6, atol=1e-5)


@PROPERTY_SETTINGS
@given(image=images_with_zeros(), mode=st.sampled_from(PER_IMAGE_MODES), data=st.data())
def test_a_mask_gives_the_statistics_of_its_pixels_and_all_true_equals_no_mask(image, mode, data):
    shape = image.shape if data.draw(st.booleans()) else image.shape[:2]
    mask = data.draw(arrays(np.bool_, shape))
    out = normalize(image, mask=mask, **kwargs_for(image, mode))
    reference = reference_normalize_selected(image, mask, **kwargs_for(image, mode))
    np.testing.assert_allclose(out, reference, rtol=1e-6, atol=1e-5)
    everything = normalize(image, mask=np.ones(shape, bool), **kwargs_for(image, mode))
    np.testing.assert_allclose(everything, normalize(image, **kwargs_for(image, mode)), rtol=1e-6, atol=1e-5)


@PROPERTY_SETTINGS
@given(images=images_with_zeros(batched=True), mode=st.sampled_from(PER_IMAGE_MODES), data=st.data())
def test_a_batch_is_normalized_as_each_image_on_its_own(images, mode, data):
    mask = data.draw(arrays(np.bool_, images.shape[:3]))
    kwargs = kwargs_for(images, mode)
    batch = normalize(images, nonzero=True, mask=mask, batched=True, **kwargs)
    for index, image in enumerate(images):
        single = normalize(image, nonzero=True, mask=mask[index], **kwargs)
        np.testing.assert_array_equal(batch[index], single)


def gathered(image: np.ndarray, **kwargs):
    """``normalize`` with every scope's terms from the gather of its selected values: the
    reference of the passes that skip it (selection.py)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(selection, "_terms_without_a_gather", lambda *args, **options: None)
        return normalize(image, **kwargs)


def assert_same_bits(result, expected) -> None:
    """Two ``(out, AffineParams)`` results: the same float32 bits, the same terms."""
    (out, terms), (expected_out, expected_terms) = result, expected
    np.testing.assert_array_equal(out.view(np.uint32), expected_out.view(np.uint32))
    np.testing.assert_array_equal(terms.center, expected_terms.center)
    np.testing.assert_array_equal(terms.scale, expected_terms.scale)


@PROPERTY_SETTINGS
@given(
    image=images_with_zeros(batched=True),
    mode=st.sampled_from(["image", "image_per_channel", "min_max", "min_max_per_channel"]),
    data=st.data(),
)
def test_terms_without_a_gather_are_the_gathered_ones_bit_for_bit(image, mode, data):
    """Integer images take the image modes' moments from passes over every pixel, unsigned ones
    the min_max modes' extremes with nonzero alone (selection.py): the gather's terms exactly."""
    selection_options = data.draw(
        st.sampled_from([{"nonzero": True}, {"mask": None}, {"nonzero": True, "mask": None}])
    )
    if "mask" in selection_options:
        shape = image.shape if data.draw(st.booleans()) else image.shape[:3]
        selection_options["mask"] = data.draw(arrays(np.bool_, shape))
    kwargs = {**kwargs_for(image, mode), **selection_options, "batched": True, "return_params": True}
    assert_same_bits(normalize(image, **kwargs), gathered(image, **kwargs))


@pytest.mark.parametrize("masked", [False, True], ids=["nonzero", "nonzero_and_mask"])
@pytest.mark.parametrize("mode", ["image", "image_per_channel"])
def test_int16_moments_without_a_gather_hold_at_the_extremes(rng, mode, masked):
    # A first value far from the mean (the kernel's shift), the extremes, empty and one-value scopes.
    image = rng.integers(-32768, 32768, (2, 9, 11, 3)).astype(np.int16)
    image[image % 3 == 0] = 0
    image[0, 0, 0] = (-32768, 32767, 0)
    image[1, :, :, 1] = 0  # a channel without a non-zero value
    image[1, :, :, 2] = 0
    image[1, 4, 5, 2] = -7  # one non-zero value
    mask = rng.random(image.shape[:3]) < 0.8 if masked else None
    if masked:
        mask[1, 4, 5] = True
    kwargs = {"normalization": mode, "max_pixel_value": 32767.0, "nonzero": True}
    result = normalize(image, mask=mask, batched=True, return_params=True, **kwargs)
    assert_same_bits(result, gathered(image, mask=mask, batched=True, return_params=True, **kwargs))
    for index, single_out in enumerate(result[0]):
        chosen = None if mask is None else mask[index]
        expected = reference_normalize_selected(image[index], chosen, **kwargs)
        np.testing.assert_allclose(single_out, expected, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("mode", ["min_max", "min_max_per_channel"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_unsigned_nonzero_extremes_without_a_gather_hold_at_the_extremes(rng, dtype, mode):
    top = np.iinfo(dtype).max
    image = rng.integers(0, 3, (3, 5, 6, 3)).astype(dtype)  # 0, 1 and 2
    image[0, ..., 1] = np.where(image[0, ..., 1] == 0, 0, top)  # non-zero values all at the top
    image[1, ..., 2] = 0  # a channel without a non-zero value
    image[2] = 0  # a sample without one
    kwargs = {"normalization": mode, "max_pixel_value": None, "batched": True, "return_params": True}
    result = normalize(image, nonzero=True, **kwargs)
    assert_same_bits(result, gathered(image, nonzero=True, **kwargs))
    for single, single_out in zip(image, result[0], strict=True):
        expected = reference_normalize_selected(
            single, nonzero=True, normalization=mode, max_pixel_value=None
        )
        np.testing.assert_allclose(single_out, expected, rtol=1e-6, atol=1e-5)


def test_nonzero_moments_past_exact_sums_take_the_gather(rng, monkeypatch):
    # 2.5M uint16 values near 65535 from a first value of 0: squares past 2**53, which float64
    # sums no longer hold exactly; the terms then come from the gathered values.
    image = rng.integers(62000, 65536, (1700, 1700)).astype(np.uint16)
    image[0, 0] = 0
    image[::7] = 0
    gather, gathers = selection._values_per_scope, []

    def counted_gather(*args):
        gathers.append(args)
        return gather(*args)

    monkeypatch.setattr(selection, "_values_per_scope", counted_gather)
    out = normalize(image, normalization="image", nonzero=True, max_pixel_value=None)
    assert len(gathers) == 1
    kept = image[image != 0].astype(np.float64)
    expected = np.where(image != 0, (image - kept.mean()) / (kept.std() + 1e-4), 0.0)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4)


def test_nonzero_and_mask_never_modify_the_caller_data(rng):
    image = make_image(rng, np.float32, (6, 7, 3), "random")
    image[:2] = 0
    mask = rng.random((6, 7)) < 0.5
    before, mask_before = image.copy(), mask.copy()
    normalize(image, normalization="image_per_channel", nonzero=True, mask=mask)
    np.testing.assert_array_equal(image, before)
    np.testing.assert_array_equal(mask, mask_before)


def test_nonzero_must_be_a_bool_naming_it(rng):
    with pytest.raises(TypeError, match="nonzero must be True or False; got 'yes'"):
        normalize(np.ones((2, 2), np.uint8), normalization="image", nonzero="yes")


@pytest.mark.parametrize("mask_shape", ["DHW", "DHWC"])
@pytest.mark.parametrize("mode", ["image", "min_max_per_channel", "robust"])
def test_a_volume_takes_its_statistics_over_its_selected_voxels(rng, mode, mask_shape):
    volumes = make_image(rng, np.uint16, (2, 4, 6, 5, 3), "random")  # (N, D, H, W, C)
    volumes[:, :, :2] = 0
    mask = rng.random(volumes.shape if mask_shape == "DHWC" else volumes.shape[:-1]) < 0.7
    kwargs = {"normalization": mode, "max_pixel_value": None}
    out = normalize(volumes, nonzero=True, mask=mask, batched=True, volume=True, **kwargs)
    for volume, selected, volume_out in zip(volumes, mask, out, strict=True):
        # One volume is one tall image: (D*H, W, C), with the same statistics.
        tall = volume.reshape(-1, *volume.shape[-2:])
        chosen = selected.reshape(-1, *selected.shape[2:])
        expected = reference_normalize_selected(tall, chosen, nonzero=True, **kwargs)
        np.testing.assert_allclose(volume_out.reshape(tall.shape), expected, rtol=1e-6, atol=1e-5)
