"""Argument validation (``NormalizeParams.build``, SPEC 3.5-3.7) and bad inputs to ``normalize`` (SPEC 4)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import MODES, dtype_id, full_scale, make_image

import norm_transforms
from norm_transforms import NormalizeParams, normalize
from norm_transforms.modes import DTYPE_MAX_PIXEL_VALUE, default_max_pixel_value

PACKAGE_DIR = Path(norm_transforms.__file__).resolve().parent

# --------------------------------------------------------------------------- NormalizeParams.build


def test_unknown_normalization_names_the_argument_and_lists_the_modes():
    with pytest.raises(ValueError, match="normalization") as error:
        NormalizeParams.build(normalization="per_image")
    for mode in MODES:
        assert mode in str(error.value)


@pytest.mark.parametrize("std", [0, 0.0, -0.5, (0.2, 0.0, 0.2), (0.2, -0.1, 0.2)], ids=repr)
def test_zero_or_negative_std_names_std(std):
    with pytest.raises(ValueError, match="std"):
        NormalizeParams.build(std=std)


@pytest.mark.parametrize("argument", ["mean", "std"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=repr)
@pytest.mark.parametrize("as_sequence", [False, True], ids=["scalar", "sequence"])
def test_non_finite_mean_or_std_is_a_value_error_naming_it(argument, value, as_sequence):
    given = (0.5, value, 0.5) if as_sequence else value
    with pytest.raises(ValueError, match=argument):
        NormalizeParams.build(**{argument: given})


@pytest.mark.parametrize("argument", ["mean", "std"])
def test_none_mean_or_std_is_a_value_error_naming_it(argument):
    with pytest.raises(ValueError, match=argument):
        NormalizeParams.build(**{argument: None})


@pytest.mark.parametrize("argument", ["mean", "std"])
@pytest.mark.parametrize("value", ["0.5", True, (0.5, "0.5", 0.5), (0.5, False, 0.5)], ids=repr)
def test_string_or_bool_mean_or_std_is_a_type_error_naming_it(argument, value):
    with pytest.raises(TypeError, match=argument):
        NormalizeParams.build(**{argument: value})


@pytest.mark.parametrize("value", [0, 0.0, -1.0, math.inf, math.nan], ids=repr)
def test_bad_max_pixel_value_names_max_pixel_value(value):
    with pytest.raises(ValueError, match="max_pixel_value"):
        NormalizeParams.build(max_pixel_value=value)


@pytest.mark.parametrize(
    "value",
    [(1.0, 0.0), (0.0, math.inf), (math.nan, 1.0), (0.0,), (0.0, 1.0, 2.0), "01", (0.0, "1")],
    ids=repr,
)
def test_bad_clip_range_names_clip_range(value):
    with pytest.raises((ValueError, TypeError), match="clip_range"):
        NormalizeParams.build(clip_range=value)


CLIP_FOLDS = [
    # mode, clip_range, the one clamp that stands for the mode's clip then clip_range
    ("standard", None, None),
    ("standard", (-1.0, 2.0), (-1.0, 2.0)),
    ("min_max", (0.25, 3.0), (0.25, 1.0)),
    ("min_max", (2.0, 3.0), (2.0, 2.0)),  # disjoint: everything ends at clip_range's low bound
    ("image", (-30.0, -25.0), (-25.0, -25.0)),
    ("image", (-1.0, 1.0), (-1.0, 1.0)),
    ("robust", (0.0, 1.0), (0.0, 1.0)),
]


@pytest.mark.parametrize(("mode", "clip_range", "expected"), CLIP_FOLDS)
def test_clip_range_folds_with_the_modes_clip_into_one_clamp(mode, clip_range, expected):
    params = NormalizeParams.build(normalization=mode, clip_range=clip_range)
    assert params.clip == expected
    # The fold equals clipping twice, for values below, inside and above every bound.
    values = np.array([-1e3, -25.5, -1.5, -0.5, 0.0, 0.3, 0.99, 1.5, 2.5, 40.0, np.nan])
    mode_clip = norm_transforms.MODES[mode].clip
    twice = values if mode_clip is None else np.clip(values, *mode_clip)
    twice = twice if clip_range is None else np.clip(twice, *clip_range)
    once = values if expected is None else np.clip(values, *expected)
    np.testing.assert_array_equal(once, twice)


@pytest.mark.parametrize("mode", MODES)
def test_valid_arguments_build(mode):
    params = NormalizeParams.build((0.1, 0.2, 0.3), 0.5, None, mode)
    assert params.mode.name == mode
    assert params.mean == (0.1, 0.2, 0.3)
    assert params.std == (0.5,)
    assert params.max_pixel_value is None


@pytest.mark.parametrize("channels", [None, 1, 3], ids=["HW", "HWC1", "HWC3"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float16, np.float32, np.float64], ids=dtype_id)
def test_max_pixel_value_none_is_the_dtype_full_scale(dtype, channels):
    shape = (2, 3) if channels is None else (2, 3, channels)
    image = np.zeros(shape, dtype=dtype)
    image[0, 0] = full_scale(dtype) if np.dtype(dtype).kind == "f" else np.iinfo(dtype).max
    out = normalize(image, mean=0.0, std=1.0, max_pixel_value=None)
    np.testing.assert_array_equal(out[0, 0], np.ones_like(out[0, 0]))
    np.testing.assert_array_equal(out[1], np.zeros_like(out[1]))


@pytest.mark.parametrize("dtype", [np.int16, np.int32], ids=dtype_id)
def test_signed_dtypes_have_no_full_scale_and_say_which_argument_to_pass(dtype):
    # SPEC 6: the standard mode of int16 / int32 images needs an explicit max_pixel_value.
    with pytest.raises(ValueError, match=r"^max_pixel_value=None means the dtype's full scale, and int"):
        default_max_pixel_value(dtype)
    with pytest.raises(ValueError, match=r"Pass max_pixel_value explicitly: 1\.0 with mean and std"):
        NormalizeParams.build(max_pixel_value=None).pixel_scale(np.dtype(dtype))
    assert np.dtype(dtype) not in DTYPE_MAX_PIXEL_VALUE
    # Constants are still checked against every dtype that has a full scale.
    assert NormalizeParams.build(max_pixel_value=None).max_pixel_value is None


@pytest.mark.parametrize(
    ("max_pixel_value", "low", "high", "flagged"),
    [
        (255.0, -1024.0, 3071.0, True),  # Hounsfield units with the Albumentations default
        (255.0, -5.0, 100.0, True),  # negative values: not 8-bit data
        (255.0, 0.0, 255.0, False),  # 8-bit data stored as int16
        (1.0, -1024.0, 3071.0, False),  # mean and std in Hounsfield units: what the docs advise
        (4095.0, 0.0, 30000.0, False),  # any other explicit value is taken as meant
    ],
)
def test_signed_pixel_scale_mistake_flags_only_the_albumentations_default(
    max_pixel_value, low, high, flagged
):
    params = NormalizeParams.build(max_pixel_value=max_pixel_value)
    mistake = params.pixel_scale_mistake(np.int16, low, high)
    assert (mistake is not None) == flagged
    if flagged:
        assert "the Albumentations default" in mistake and "Hounsfield" in mistake


# --------------------------------------------------------------------------- channel rule (SPEC 3.5)


@pytest.mark.parametrize("channels", [None, 1, 2, 3, 4, 7], ids=lambda c: "HW" if c is None else f"HWC{c}")
@pytest.mark.parametrize("form", ["scalar", "one_value"])
def test_scalar_or_one_value_applies_to_every_channel(rng, channels, form):
    shape = (5, 6) if channels is None else (5, 6, channels)
    image = make_image(rng, np.uint8, shape, "random")
    mean, std = (0.3, 0.2) if form == "scalar" else ((0.3,), (0.2,))
    expected = (image.astype(np.float64) - 0.3 * 255) / (0.2 * 255)
    np.testing.assert_allclose(normalize(image, mean=mean, std=std), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("layout", ["HW", "HWC1"])
def test_one_channel_image_uses_the_first_of_three_values(rng, layout):
    image = make_image(rng, np.uint8, (5, 6) if layout == "HW" else (5, 6, 1), "random")
    three = normalize(image, mean=(0.1, 0.5, 0.9), std=(0.2, 0.3, 0.4))
    np.testing.assert_array_equal(three, normalize(image, mean=0.1, std=0.2))


@pytest.mark.parametrize(
    ("argument", "values", "channels"),
    [
        ("mean", (0.1, 0.2, 0.3), 4),
        ("std", (0.2, 0.2, 0.2), 4),
        ("mean", (0.1, 0.2), 3),
        ("std", (0.1,) * 5, 3),
    ],
    ids=["mean3-C4", "std3-C4", "mean2-C3", "std5-C3"],
)
def test_mismatched_length_names_both_lengths(rng, argument, values, channels):
    image = make_image(rng, np.uint8, (4, 5, channels), "random")
    kwargs = {"mean": 0.5, "std": 0.25, argument: values}
    with pytest.raises(ValueError, match=argument) as error:
        normalize(image, **kwargs)
    numbers = set(re.findall(r"\d+", str(error.value)))
    assert {str(len(values)), str(channels)} <= numbers


# --------------------------------------------------------------------------- the Albumentations transform


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"normalization": "bogus"}, "normalization"),
        ({"std": (0.2, 0, 0.2)}, "std"),
        ({"p": 1.5}, "p"),
        ({"p": -0.1}, "p"),
        ({"max_pixel_value": 0}, "max_pixel_value"),
    ],
    ids=["mode", "std", "p_above_1", "p_below_0", "max_pixel_value"],
)
def test_transform_raises_value_error_at_construction(kwargs, argument):
    pytest.importorskip("albumentations")
    from norm_transforms import Normalize

    with pytest.raises(ValueError, match=argument):
        Normalize(**kwargs)


# --------------------------------------------------------------------------- bad inputs to normalize (SPEC 4)

ACCEPTED_DTYPES = ("uint8", "uint16", "int16", "int32", "float16", "float32", "float64")
# Words that our messages contain and NumPy's or OpenCV's would not.
OUR_WORDS = re.compile(r"accepted|expected|empty|cannot normalize", re.IGNORECASE)


@pytest.mark.parametrize(
    "shape", [(0, 4, 3), (4, 0), (4, 5, 0)], ids=lambda s: "x".join(map(str, s)) if s else "scalar"
)
def test_empty_array_is_a_value_error_mentioning_empty(shape):
    with pytest.raises(ValueError, match="empty"):
        normalize(np.zeros(shape, np.uint8))


def test_empty_batch_is_a_value_error_mentioning_empty():
    with pytest.raises(ValueError, match="empty"):
        normalize(np.zeros((0, 4, 4, 3), np.float32), batched=True)


@pytest.mark.parametrize(
    "dtype", [bool, np.int8, np.int64, np.uint32, np.uint64, np.complex64, object], ids=str
)
def test_unsupported_dtype_is_a_type_error_listing_accepted_dtypes(dtype):
    with pytest.raises(TypeError) as error:
        normalize(np.zeros((4, 5, 3), dtype=dtype))
    for name in ACCEPTED_DTYPES:
        assert name in str(error.value)


@pytest.mark.parametrize(
    ("shape", "options"),
    [
        ((5,), {}),
        ((), {}),
        ((2, 4, 5, 3), {}),
        ((2, 2, 4, 5, 3), {"batched": True}),
        ((4, 5), {"volume": True}),
    ],
    ids=["1-D", "0-D", "4-D", "5-D-batched", "2-D-volume"],
)
def test_wrong_ndim_is_a_value_error_showing_accepted_shapes(shape, options):
    with pytest.raises(ValueError, match=r"\(.*H,W\)") as error:
        normalize(np.zeros(shape, np.uint8), **options)
    assert str(shape) in str(error.value)


@pytest.mark.parametrize("kind", ["list", "tuple", "PIL"])
def test_non_array_input_is_a_type_error(kind):
    if kind == "PIL":
        image_module = pytest.importorskip("PIL.Image")
        value = image_module.new("RGB", (4, 5))
    else:
        value = [[1, 2], [3, 4]] if kind == "list" else ((1, 2), (3, 4))
    with pytest.raises(TypeError, match="ndarray"):
        normalize(value)


BAD_INPUTS = [
    pytest.param(np.zeros((0, 3), np.uint8), {}, id="empty"),
    pytest.param(np.zeros((4, 5), np.int64), {}, id="int64"),
    pytest.param(np.zeros((4, 5), bool), {}, id="bool"),
    pytest.param(np.zeros((4, 5), np.complex128), {}, id="complex"),
    pytest.param(np.zeros(5, np.float32), {}, id="1-D"),
    pytest.param(np.zeros((2, 4, 5, 3), np.uint8), {}, id="4-D"),
    pytest.param(np.zeros((4, 5), np.uint8), {"batched": True}, id="2-D-batched"),
    pytest.param([[1, 2]], {}, id="list"),
]


@pytest.mark.parametrize(("value", "options"), BAD_INPUTS)
@pytest.mark.parametrize("mode", MODES)
def test_bad_input_error_is_ours_not_numpy_or_opencv(value, options, mode):
    with pytest.raises((TypeError, ValueError)) as error:
        normalize(value, normalization=mode, **options)
    assert OUR_WORDS.search(str(error.value)), str(error.value)
    raised_in = Path(error.traceback[-1].path)
    assert PACKAGE_DIR in raised_in.parents, f"raised in {raised_in}"


# --------------------------------------------------------------------------- float32 constants


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"std": 1e-40}, r"mean=0\.485 with std=1e-40 gives the offset"),
        ({"std": 1e-300}, r"std=1e-300 with max_pixel_value=255\.0 gives the scale"),
        ({"max_pixel_value": 1e-320}, r"max_pixel_value=1e-320 gives the scale .* = inf"),
        ({"mean": 1e40}, r"mean=1e\+40 with std=0\.229 gives the offset -mean / std = -4\.37e\+40"),
        ({"mean": 0.0, "std": 1e40}, r"gives the scale .* = 3\.92e-43, outside float32's normal range"),
        ({"mean": 0.0, "std": 1e-40, "max_pixel_value": None}, r"max_pixel_value=1\.0 gives the scale"),
    ],
    ids=["std_tiny", "std_1e-300", "max_pixel_value_subnormal", "mean_huge", "std_huge", "none_scale"],
)
def test_constants_outside_float32_are_refused_at_construction(kwargs, message):
    # Folded to float32 they gave inf, NaN or a subnormal scale for every pixel.
    with pytest.raises(ValueError, match=message):
        NormalizeParams.build(**kwargs)


def test_float32_range_check_applies_only_where_the_constants_are_used():
    # The per-image modes ignore mean, std and max_pixel_value, as A.Normalize does.
    assert NormalizeParams.build(std=1e-40, normalization="image").std == (1e-40,)


def test_constants_at_the_edge_of_float32_still_normalize_exactly():
    kwargs = {"mean": 0.0, "std": 1e-30, "max_pixel_value": 1.0}
    out = normalize(np.full((2, 2), 1e-30, np.float32), **kwargs)
    np.testing.assert_allclose(out, 1.0, rtol=1e-6)


@pytest.mark.parametrize("normalization", MODES)
def test_mean_and_std_of_different_lengths_are_refused_at_construction(normalization):
    with pytest.raises(ValueError, match=r"mean has 3 values and std 4; give both one value per channel"):
        NormalizeParams.build((0.1, 0.2, 0.3), (0.1, 0.2, 0.3, 0.4), normalization=normalization)
