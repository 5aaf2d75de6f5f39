"""``norm_transforms.Normalize`` against the real ``albumentations.Normalize`` (SPEC sections 2 and 3).

Parity is checked within 1e-5 absolute. Where SPEC 3 says we differ on purpose, the output is
checked against the float64 formula of SPEC 1 (``tests/reference.py``) instead, and a separate
test shows that the reference really does differ there.
"""

from __future__ import annotations

import inspect
import json
import math
import warnings

import numpy as np
import pytest
from conftest import (
    ALBUMENTATIONS_MODES,
    CONTENTS,
    IMAGE_MODES,
    MIN_MAX_MODES,
    MODES,
    PER_IMAGE_MODES,
    PERCENTILE_MODES,
    dtype_id,
    full_scale,
    layout_id,
    layout_shape,
    make_image,
    to_dtype,
    to_layout,
    tolerance,
)
from reference import reference_normalize, reference_normalize_samples

A = pytest.importorskip("albumentations")

from norm_transforms import Normalize, normalize  # noqa: E402  (needs albumentations)

ATOL = 1e-5
PARITY_DTYPES = (np.uint8, np.uint16, np.float32, np.float64)
LAYOUTS = (None, 1, 2, 3, 4, 5, 8)  # None: HW
HEIGHT, WIDTH = 24, 26  # 624 pixels: a single outlier sits ~25 std out, so image modes clip it


# --------------------------------------------------------------------------- helpers


def transform_kwargs(dtype, channels: int | None, mode: str) -> dict:
    """One mean/std value per channel (ImageNet for 3), scalars for HW; full-scale max_pixel_value."""
    if channels is None:
        mean, std = 0.4, 0.25
    elif channels == 3:
        mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    else:
        mean = tuple(float(v) for v in np.linspace(0.3, 0.6, channels))
        std = tuple(float(v) for v in np.linspace(0.2, 0.3, channels))
    return {"mean": mean, "std": std, "max_pixel_value": full_scale(dtype), "normalization": mode}


def albumentations_normalize(image: np.ndarray, **kwargs) -> np.ndarray:
    """The reference's output; it gets a copy because it overwrites some float32 inputs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return A.Normalize(**kwargs)(image=image.copy())["image"]


def ours(image: np.ndarray, **kwargs) -> np.ndarray:
    return Normalize(**kwargs)(image=image)["image"]


def differs_on_purpose(mode: str, dtype, channels: int | None) -> bool:
    """SPEC 3.2: for non-uint8 input the reference omits eps in these cases."""
    if np.dtype(dtype) == np.uint8:
        return False
    count = 1 if channels is None else channels
    return (
        (mode == "image_per_channel" and count > 1)
        or mode == "min_max"
        or (mode == "min_max_per_channel" and count == 1)
    )


def is_constant_float_image(mode: str, dtype, channels: int | None, content: str) -> bool:
    """Float input, constant image, image modes: the reference's float32 mean leaves a residual."""
    whole_image_constant = content == "constant" or (content == "constant_channel" and channels in (None, 1))
    return np.dtype(dtype).kind == "f" and mode in IMAGE_MODES and whole_image_constant


def inputs_for(request, rng, dtype, channels: int | None, content: str) -> list[tuple[str, np.ndarray]]:
    """(label, image) pairs: one synthetic image, or every sample photograph."""
    if content == "photo":
        photos = request.getfixturevalue("photos")
        return [(name, to_layout(to_dtype(photo, dtype), channels)) for name, photo in photos.items()]
    return [(content, make_image(rng, dtype, layout_shape(HEIGHT, WIDTH, channels), content))]


def case_id(mode, dtype, channels, content) -> str:
    return f"{mode}-{dtype_id(dtype)}-{layout_id(channels)}-{content}"


ALL_CASES = [
    (mode, dtype, channels, content)
    for mode in ALBUMENTATIONS_MODES
    for dtype in PARITY_DTYPES
    for channels in LAYOUTS
    for content in (*CONTENTS, "photo")
]
PARITY_CASES = [
    pytest.param(*case, id=case_id(*case))
    for case in ALL_CASES
    if not differs_on_purpose(*case[:3]) and not is_constant_float_image(*case)
]
DOCUMENTED_CASES = [
    pytest.param(*case, id=case_id(*case))
    for case in ALL_CASES
    if differs_on_purpose(*case[:3]) or is_constant_float_image(*case)
]


# --------------------------------------------------------------------------- single images


@pytest.mark.parametrize(("mode", "dtype", "channels", "content"), PARITY_CASES)
def test_matches_albumentations_within_1e5(request, rng, mode, dtype, channels, content):
    for label, image in inputs_for(request, rng, dtype, channels, content):
        kwargs = transform_kwargs(dtype, channels, mode)
        expected = albumentations_normalize(image, **kwargs)
        assert np.isfinite(expected).all(), f"{label}: the reference itself is not finite here"
        np.testing.assert_allclose(ours(image, **kwargs), expected, rtol=0, atol=ATOL, err_msg=label)


@pytest.mark.parametrize(("mode", "dtype", "channels", "content"), DOCUMENTED_CASES)
def test_documented_difference_matches_float64_formula(request, rng, mode, dtype, channels, content):
    for label, image in inputs_for(request, rng, dtype, channels, content):
        kwargs = transform_kwargs(dtype, channels, mode)
        expected = reference_normalize(image, **kwargs)
        np.testing.assert_allclose(ours(image, **kwargs), expected, rtol=0, atol=ATOL, err_msg=label)


@pytest.mark.parametrize("content", [*CONTENTS, "photo"])
@pytest.mark.parametrize("channels", LAYOUTS, ids=layout_id)
@pytest.mark.parametrize("mode", MODES)
def test_float16_matches_float64_formula(request, rng, mode, channels, content):
    # The reference does not take float16, so float16 is checked against SPEC 1 only.
    for label, image in inputs_for(request, rng, np.float16, channels, content):
        kwargs = transform_kwargs(np.float16, channels, mode)
        expected = reference_normalize(image, **kwargs)
        np.testing.assert_allclose(ours(image, **kwargs), expected, **tolerance(mode, ATOL), err_msg=label)


@pytest.mark.parametrize("channels", LAYOUTS, ids=layout_id)
@pytest.mark.parametrize("dtype", PARITY_DTYPES, ids=dtype_id)
def test_scalar_mean_std_matches_albumentations(rng, dtype, channels):
    image = make_image(rng, dtype, layout_shape(HEIGHT, WIDTH, channels), "random")
    kwargs = {"mean": 0.4, "std": 0.25, "max_pixel_value": full_scale(dtype)}
    np.testing.assert_allclose(
        ours(image, **kwargs), albumentations_normalize(image, **kwargs), rtol=0, atol=ATOL
    )


@pytest.mark.parametrize("channels", [None, 1], ids=layout_id)
@pytest.mark.parametrize("dtype", PARITY_DTYPES, ids=dtype_id)
def test_one_channel_image_uses_first_of_three_values_like_albumentations(rng, dtype, channels):
    image = make_image(rng, dtype, layout_shape(HEIGHT, WIDTH, channels), "random")
    kwargs = {"mean": (0.1, 0.5, 0.9), "std": (0.2, 0.3, 0.4), "max_pixel_value": full_scale(dtype)}
    np.testing.assert_allclose(
        ours(image, **kwargs), albumentations_normalize(image, **kwargs), rtol=0, atol=ATOL
    )


@pytest.mark.parametrize("channels", LAYOUTS, ids=layout_id)
@pytest.mark.parametrize("dtype", [*PARITY_DTYPES, np.float16], ids=dtype_id)
@pytest.mark.parametrize("mode", MODES)
def test_output_is_float32_with_the_input_shape(rng, mode, dtype, channels):
    image = make_image(rng, dtype, layout_shape(HEIGHT, WIDTH, channels), "random")
    out = ours(image, **transform_kwargs(dtype, channels, mode))
    assert out.dtype == np.float32
    assert out.shape == image.shape


@pytest.mark.skipif(np.lib.NumpyVersion(np.__version__) < "2.0.0", reason="NEP 50 promotion (NumPy 2)")
@pytest.mark.parametrize("mode", ALBUMENTATIONS_MODES[1:])
def test_reference_returns_float64_for_uint8_in_per_image_modes(rng, mode):
    # SPEC 3.1: the documented difference is real; ours is float32 (checked above).
    image = make_image(rng, np.uint8, (HEIGHT, WIDTH, 3), "random")
    assert albumentations_normalize(image, normalization=mode).dtype == np.float64


# --------------------------------------------------------------------------- the reference really differs

NON_UINT8 = (np.uint16, np.float32, np.float64)


@pytest.mark.parametrize("channels", [2, 3, 4, 5, 8], ids=layout_id)
@pytest.mark.parametrize("dtype", NON_UINT8, ids=dtype_id)
def test_constant_channel_is_zero_where_reference_gives_nan(rng, dtype, channels):
    # SPEC 3.2: the reference divides by a std without eps in image_per_channel (C > 1). Channel 0
    # holds a value whose float32 mean is exact (0.5, 100), so the reference computes 0 / 0.
    image = make_image(rng, dtype, (HEIGHT, WIDTH, channels), "random")
    image[..., 0] = 100 if np.dtype(dtype).kind == "u" else 0.5
    kwargs = transform_kwargs(dtype, channels, "image_per_channel")
    reference = albumentations_normalize(image, **kwargs)
    out = ours(image, **kwargs)
    assert np.isnan(reference[..., 0]).all()
    assert np.array_equal(out[..., 0], np.zeros_like(out[..., 0]))
    assert np.isfinite(out).all()


def _small_range_image(rng, dtype, channels):
    """min_max without eps is visible when the range is small: integers 1000..1003, floats [0, 1)."""
    shape = layout_shape(HEIGHT, WIDTH, channels)
    if np.dtype(dtype).kind == "u":
        return rng.integers(1000, 1003, size=shape, endpoint=True).astype(dtype)
    return rng.random(shape).astype(dtype)


MIN_MAX_WITHOUT_EPS = [
    pytest.param("min_max", channels, id=f"min_max-{layout_id(channels)}") for channels in LAYOUTS
] + [pytest.param("min_max_per_channel", c, id=f"min_max_per_channel-{layout_id(c)}") for c in (None, 1)]


@pytest.mark.parametrize(("mode", "channels"), MIN_MAX_WITHOUT_EPS)
@pytest.mark.parametrize("dtype", NON_UINT8, ids=dtype_id)
def test_min_max_keeps_eps_where_reference_omits_it(rng, dtype, mode, channels):
    image = _small_range_image(rng, dtype, channels)
    kwargs = transform_kwargs(dtype, channels, mode)
    reference = albumentations_normalize(image, **kwargs)
    out = ours(image, **kwargs)
    span = float(image.max()) - float(image.min())
    np.testing.assert_allclose(reference.max(), 1.0, rtol=0, atol=1e-6)  # no eps in the reference
    np.testing.assert_allclose(out.max(), span / (span + 1e-4), rtol=0, atol=1e-6)
    assert np.abs(out - reference).max() > ATOL


@pytest.mark.parametrize("channels", LAYOUTS, ids=layout_id)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=dtype_id)
def test_constant_float_image_is_exactly_zero_where_reference_leaves_a_residual(dtype, channels):
    image = np.full(layout_shape(HEIGHT, WIDTH, channels), 0.3, dtype=dtype)
    kwargs = transform_kwargs(dtype, channels, "image")
    reference = albumentations_normalize(image, **kwargs)
    assert np.abs(reference).max() > ATOL  # float32 mean residual, magnified by 1 / eps
    assert np.array_equal(ours(image, **kwargs), np.zeros(image.shape, np.float32))


@pytest.mark.parametrize("mode", MIN_MAX_MODES)
def test_input_is_not_overwritten_where_reference_overwrites_it(rng, mode):
    # SPEC 3.3: the reference writes its result into float32 input in min_max_per_channel.
    image = make_image(rng, np.float32, (HEIGHT, WIDTH, 3), "random")
    before = image.copy()
    ours(image, normalization=mode)
    assert np.array_equal(image, before)


# --------------------------------------------------------------------------- Compose with other targets


@pytest.fixture
def compose_result(rng):
    image = make_image(rng, np.uint8, (32, 40, 3), "random")
    mask = rng.integers(0, 4, size=(32, 40), dtype=np.uint8)
    bboxes = [(1.0, 2.0, 20.0, 30.0), (5.0, 4.0, 39.0, 31.0)]
    labels = ["cat", "dog"]
    with warnings.catch_warnings():  # "Got processor for bboxes, but no transform to process it"
        warnings.simplefilter("ignore", UserWarning)
        pipeline = A.Compose(
            [Normalize(normalization="image_per_channel")],
            bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"]),
        )
    out = pipeline(image=image.copy(), mask=mask.copy(), bboxes=bboxes, labels=labels)
    return {"image": image, "mask": mask, "bboxes": bboxes, "labels": labels, "out": out}


def test_compose_normalizes_the_image(compose_result):
    expected = normalize(compose_result["image"], normalization="image_per_channel")
    np.testing.assert_array_equal(compose_result["out"]["image"], expected)


def test_compose_leaves_the_mask_unchanged(compose_result):
    mask = compose_result["out"]["mask"]
    assert mask.dtype == compose_result["mask"].dtype
    np.testing.assert_array_equal(mask, compose_result["mask"])


def test_compose_leaves_bboxes_and_labels_unchanged(compose_result):
    # Albumentations converts boxes to normalized coordinates and back: float32-level round trip.
    np.testing.assert_allclose(
        np.asarray(compose_result["out"]["bboxes"], dtype=np.float64),
        np.asarray(compose_result["bboxes"]),
        rtol=0,
        atol=1e-4,
    )
    assert list(compose_result["out"]["labels"]) == compose_result["labels"]


# --------------------------------------------------------------------------- batches and volumes

# target -> (shape with channels, shape without), N and D first.
BATCH_SHAPES = {
    "images": ((3, 10, 12, 3), (3, 10, 12)),
    "volume": ((4, 10, 12, 3), (4, 10, 12)),
    "volumes": ((2, 3, 10, 12, 3), (2, 3, 10, 12)),
}
BATCH_CASES = [
    pytest.param(target, shape, id=f"{target}-{'C' if len(shape) == len(shapes[0]) else 'noC'}")
    for target, shapes in BATCH_SHAPES.items()
    for shape in shapes
]


def make_stack(rng, dtype, shape) -> np.ndarray:
    """A stack whose elements (along axis 0) have clearly different statistics."""
    dtype = np.dtype(dtype)
    unit = rng.random(shape)
    # Element i lives in [i / (2n), i / (2n) + 0.5) of the full scale.
    offsets = (np.arange(shape[0]) / (2 * shape[0])).reshape((-1,) + (1,) * (len(shape) - 1))
    values = (offsets + 0.5 * unit) * full_scale(dtype)
    return np.floor(values).astype(dtype) if dtype.kind == "u" else values.astype(dtype)


def run_target(transform, target: str, data: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return A.Compose([transform])(**{target: data.copy()})[target]


@pytest.mark.parametrize(("target", "shape"), BATCH_CASES)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32], ids=dtype_id)
def test_batch_standard_matches_albumentations(rng, dtype, target, shape):
    data = make_stack(rng, dtype, shape)
    kwargs = {"mean": 0.4, "std": 0.25, "max_pixel_value": full_scale(dtype)}
    out = run_target(Normalize(**kwargs), target, data)
    assert out.dtype == np.float32
    assert out.shape == data.shape
    np.testing.assert_allclose(out, run_target(A.Normalize(**kwargs), target, data), rtol=0, atol=ATOL)


# Each batch target and the single-element target its elements are normalized as, alone.
ELEMENT_TARGET = {"images": "image", "volumes": "volume"}
PER_ELEMENT_CASES = [case for case in BATCH_CASES if case.values[0] in ELEMENT_TARGET]


@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
@pytest.mark.parametrize(("target", "shape"), PER_ELEMENT_CASES)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32], ids=dtype_id)
def test_batch_elements_each_get_their_own_statistics(rng, dtype, target, shape, mode):
    data = make_stack(rng, dtype, shape)
    out = run_target(Normalize(normalization=mode), target, data)
    assert out.shape == data.shape
    assert out.dtype == np.float32
    for index, element in enumerate(data):
        alone = run_target(Normalize(normalization=mode), ELEMENT_TARGET[target], element)
        np.testing.assert_allclose(out[index], alone, rtol=0, atol=1e-6, err_msg=f"{target}[{index}]")


@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
@pytest.mark.parametrize(("target", "shape"), BATCH_CASES)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32], ids=dtype_id)
def test_batch_statistics_match_float64_formula_per_sample(rng, dtype, target, shape, mode):
    data = make_stack(rng, dtype, shape)
    out = run_target(Normalize(normalization=mode), target, data)
    samples = data[None] if target == "volume" else data  # a single volume is one sample
    has_channels = len(shape) == len(BATCH_SHAPES[target][0])
    expected = reference_normalize_samples(samples, has_channels=has_channels, normalization=mode)
    np.testing.assert_allclose(out, expected.reshape(data.shape), rtol=0, atol=ATOL)


@pytest.mark.parametrize("mode", ALBUMENTATIONS_MODES[1:])
@pytest.mark.parametrize(
    ("target", "shape"), [case for case in BATCH_CASES if case.values[0] in ("images", "volumes")]
)
def test_batch_differs_from_reference_which_pools_over_the_batch(rng, target, shape, mode):
    # SPEC 3.4: the reference computes one set of statistics for the whole stack.
    data = make_stack(rng, np.uint8, shape)
    out = run_target(Normalize(normalization=mode), target, data)
    pooled = run_target(A.Normalize(normalization=mode), target, data)
    assert np.abs(out - pooled).max() > 0.05


# --------------------------------------------------------------------------- probability


def test_p_half_returns_some_inputs_unchanged_and_normalizes_others(rng):
    image = make_image(rng, np.uint8, (8, 9, 3), "random")
    expected = normalize(image)
    pipeline = A.Compose([Normalize(p=0.5)], seed=137)
    unchanged = normalized = 0
    for _ in range(20):
        out = pipeline(image=image.copy())["image"]
        if out.dtype == image.dtype and np.array_equal(out, image):
            unchanged += 1
        elif out.dtype == np.float32 and np.array_equal(out, expected):
            normalized += 1
    assert unchanged > 0
    assert normalized > 0
    assert unchanged + normalized == 20


@pytest.mark.parametrize("dtype", [np.uint8, np.float32], ids=dtype_id)
def test_p_zero_returns_the_input_unchanged(rng, dtype):
    image = make_image(rng, dtype, (8, 9, 3), "random")
    out = A.Compose([Normalize(p=0.0)], seed=1)(image=image.copy())["image"]
    assert out.dtype == image.dtype
    np.testing.assert_array_equal(out, image)


# ------------------------------------------------------------------------- construction, repr, serialization


def test_strict_true_constructs():
    assert isinstance(Normalize(normalization="min_max", strict=True), Normalize)


def test_unknown_kwarg_with_strict_true_raises():
    with pytest.raises(ValueError, match="bogus"):
        Normalize(strict=True, bogus=1)


REPR_ARGS = [
    {},
    {"mean": 0.4, "std": 0.25, "max_pixel_value": 1.0, "normalization": "image", "p": 0.3},
    {"mean": (0.1, 0.2, 0.3), "std": (0.3, 0.2, 0.1), "normalization": "min_max_per_channel"},
]


@pytest.mark.parametrize("kwargs", REPR_ARGS)
def test_repr_equals_albumentations(kwargs):
    assert repr(Normalize(**kwargs)) == repr(A.Normalize(**kwargs))


def _transform_dict(transform) -> dict:
    return A.to_dict(transform)["transform"]


def _comparable(serialized: dict) -> list[tuple[str, str]]:
    # repr of each value: tells (0.1, 0.2) from [0.1, 0.2] and 255 from 255.0, and never raises.
    return sorted((key, repr(value)) for key, value in serialized.items() if key != "__class_fullname__")


SERIALIZATION_ARGS = [
    pytest.param({}, id="defaults"),
    pytest.param(
        {"mean": (0.1, 0.2, 0.3), "std": 0.5, "max_pixel_value": 1.0, "normalization": "min_max", "p": 0.7},
        id="tuple-and-floats",
    ),
    pytest.param({"mean": [0.1, 0.2, 0.3]}, id="list-mean"),
    pytest.param({"max_pixel_value": 255, "std": 1, "mean": 0}, id="int-values"),
    pytest.param({"mean": np.array([0.1, 0.2, 0.3])}, id="ndarray-mean"),
]


@pytest.mark.parametrize("kwargs", SERIALIZATION_ARGS)
def test_to_dict_equals_albumentations_apart_from_class_name(kwargs):
    assert _comparable(_transform_dict(Normalize(**kwargs))) == _comparable(
        _transform_dict(A.Normalize(**kwargs))
    )


ROUND_TRIP_ARGS = {
    "mean": (0.1, 0.2, 0.3),
    "std": (0.3, 0.2, 0.1),
    "max_pixel_value": None,
    "normalization": "image_per_channel",
    "p": 0.8,
}


def test_to_dict_names_our_class_and_init_args():
    serialized = _transform_dict(A.Compose([Normalize(**ROUND_TRIP_ARGS)]))["transforms"][0]
    assert serialized["__class_fullname__"] == "norm_transforms.Normalize"
    assert {key: serialized[key] for key in ROUND_TRIP_ARGS} == ROUND_TRIP_ARGS


def test_from_dict_round_trip_rebuilds_our_normalize(rng):
    pipeline = A.Compose([Normalize(**ROUND_TRIP_ARGS)])
    rebuilt = A.from_dict(A.to_dict(pipeline))
    transform = rebuilt.transforms[0]
    assert type(transform) is Normalize
    assert transform.get_transform_init_args() == pipeline.transforms[0].get_transform_init_args()
    image = make_image(rng, np.uint8, (8, 9, 3), "random")
    np.testing.assert_array_equal(
        transform(image=image, force_apply=True)["image"],
        pipeline.transforms[0](image=image, force_apply=True)["image"],
    )


@pytest.mark.parametrize("mode", PERCENTILE_MODES)
def test_percentile_mode_serializes_its_percentiles_and_round_trips(rng, mode):
    pipeline = A.Compose([Normalize(normalization=mode, percentiles=(2, 97.5))])
    serialized = _transform_dict(pipeline)["transforms"][0]
    assert serialized["normalization"] == mode
    assert serialized["percentiles"] == (2.0, 97.5)
    transform = A.from_dict(json.loads(json.dumps(A.to_dict(pipeline)))).transforms[0]
    assert transform.percentiles == (2.0, 97.5)
    image = make_image(rng, np.uint8, (30, 20, 3), "random")
    expected = normalize(image, normalization=mode, percentiles=(2, 97.5))
    np.testing.assert_array_equal(transform(image=image)["image"], expected)


def test_albumentations_modes_leave_percentiles_out_of_the_serialized_form():
    assert (
        "percentiles" not in _transform_dict(A.Compose([Normalize(normalization="min_max")]))["transforms"][0]
    )


JSON_ARGS = [
    pytest.param(ROUND_TRIP_ARGS, id="tuple-args"),
    pytest.param({"mean": np.array([0.1, 0.2, 0.3]), "std": [0.5]}, id="ndarray-and-list"),
]


@pytest.mark.parametrize("kwargs", JSON_ARGS)
def test_json_round_trip(tmp_path, kwargs):
    path = tmp_path / "pipeline.json"
    A.save(A.Compose([Normalize(**kwargs)]), str(path), data_format="json")
    assert json.loads(path.read_text())["transform"]["transforms"][0]["__class_fullname__"] == (
        "norm_transforms.Normalize"
    )
    loaded = A.load(str(path), data_format="json")
    assert type(loaded.transforms[0]) is Normalize
    assert loaded.transforms[0].get_transform_init_args() == Normalize(**kwargs).get_transform_init_args()


def _signature_without_annotations(signature: inspect.Signature) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


def test_signature_and_defaults_equal_albumentations_plus_keyword_only_additions():
    ours = inspect.signature(Normalize.__init__)
    # clip_range: AlbumentationsX 2.5.1's; nonzero: MONAI's; dtype: float16 output (ours)
    additions = {"percentiles": (1.0, 99.0), "clip_range": None, "nonzero": False, "dtype": "float32"}
    for name, default in additions.items():
        assert ours.parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert ours.parameters[name].default == default
    kept = [p for p in ours.parameters.values() if p.name not in additions]
    without_additions = ours.replace(parameters=kept)
    assert _signature_without_annotations(without_additions) == _signature_without_annotations(
        inspect.signature(A.Normalize.__init__)
    )


# --------------------------------------------------------------------------- clip_range (AlbumentationsX)


@pytest.mark.parametrize("clip_range", [(0.0, 1.0), (-0.5, 0.25), (0.3, 0.3)])
@pytest.mark.parametrize("mode", ALBUMENTATIONS_MODES)
def test_clip_range_is_albumentations_output_clipped(rng, mode, clip_range):
    # AlbumentationsX's documented formula: the mode's output, then np.clip to clip_range.
    image = make_image(rng, np.uint8, (16, 18, 3), "random")
    expected = np.clip(A.Normalize(normalization=mode)(image=image)["image"], *clip_range)
    out = Normalize(normalization=mode, clip_range=clip_range)(image=image)["image"]
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5)


def test_clip_range_is_serialized_only_when_set_and_round_trips(rng):
    assert "clip_range" not in _transform_dict(A.Compose([Normalize()]))["transforms"][0]
    pipeline = A.Compose([Normalize(normalization="image", clip_range=[-3, 3])])
    assert _transform_dict(pipeline)["transforms"][0]["clip_range"] == (-3.0, 3.0)
    transform = A.from_dict(json.loads(json.dumps(A.to_dict(pipeline)))).transforms[0]
    image = make_image(rng, np.uint8, (20, 20, 3), "outlier")
    np.testing.assert_array_equal(
        transform(image=image)["image"], normalize(image, normalization="image", clip_range=(-3, 3))
    )


@pytest.mark.parametrize("clip_range", [(1.0, 0.0), (0.0, math.inf), (0.0,), "0,1", (math.nan, 1.0)])
def test_bad_clip_range_is_refused_naming_it(clip_range):
    with pytest.raises((ValueError, TypeError), match="clip_range"):
        Normalize(clip_range=clip_range)


# --------------------------------------------------------------------------- nonzero (MONAI)


@pytest.mark.parametrize("target", ["image", "images", "volume"])
@pytest.mark.parametrize("mode", PER_IMAGE_MODES)
def test_nonzero_equals_the_functional_nonzero_per_image(rng, mode, target):
    shapes = {"image": (16, 18, 3), "images": (2, 16, 18, 3), "volume": (3, 16, 18, 3)}
    data = make_image(rng, np.uint8, shapes[target], "random")
    data[..., :5, :] = 0  # a zero background
    out = Normalize(normalization=mode, nonzero=True)(**{target: data})[target]
    flags = {"batched": target == "images", "volume": target == "volume"}
    np.testing.assert_array_equal(out, normalize(data, normalization=mode, nonzero=True, **flags))
    assert not out[data == 0].any()


def test_nonzero_is_serialized_only_when_set_and_round_trips(rng):
    # The five Albumentations modes keep albumentations 2.0.8's exact dict when it is not set.
    for mode in ALBUMENTATIONS_MODES:
        assert "nonzero" not in _transform_dict(A.Compose([Normalize(normalization=mode)]))["transforms"][0]
    pipeline = A.Compose([Normalize(normalization="image", nonzero=True)])
    assert _transform_dict(pipeline)["transforms"][0]["nonzero"] is True
    transform = A.from_dict(json.loads(json.dumps(A.to_dict(pipeline)))).transforms[0]
    image = make_image(rng, np.uint8, (20, 20, 3), "random")
    image[:8] = 0
    np.testing.assert_array_equal(
        transform(image=image)["image"], normalize(image, normalization="image", nonzero=True)
    )


@pytest.mark.parametrize("nonzero", [1, "yes", None])
def test_nonzero_must_be_a_bool(nonzero):
    with pytest.raises(TypeError, match="nonzero must be True or False"):
        Normalize(normalization="image", nonzero=nonzero)


def test_nonzero_with_the_standard_mode_is_refused_naming_it():
    message = r"nonzero=True selects the pixels .* normalization='standard' has none"
    with pytest.raises(ValueError, match=message):
        Normalize(nonzero=True)


# --------------------------------------------------------------------------- float16 output


@pytest.mark.parametrize("target", ["image", "images", "volume"])
@pytest.mark.parametrize("mode", MODES)
def test_float16_output_is_the_float32_output_rounded_once(rng, mode, target):
    shapes = {"image": (16, 18, 3), "images": (2, 16, 18, 3), "volume": (3, 16, 18, 3)}
    data = make_image(rng, np.uint8, shapes[target], "random")
    half = Normalize(normalization=mode, dtype="float16")(**{target: data})[target]
    single = Normalize(normalization=mode)(**{target: data})[target]
    assert half.dtype == np.float16
    np.testing.assert_array_equal(half, single.astype(np.float16))


def test_float16_dtype_is_serialized_only_when_set_and_round_trips(rng):
    assert "dtype" not in _transform_dict(A.Compose([Normalize()]))["transforms"][0]
    pipeline = A.Compose([Normalize(dtype="float16")])
    assert _transform_dict(pipeline)["transforms"][0]["dtype"] == "float16"
    transform = A.from_dict(json.loads(json.dumps(A.to_dict(pipeline)))).transforms[0]
    assert transform(image=make_image(rng, np.uint8, (8, 8, 3), "random"))["image"].dtype == np.float16


@pytest.mark.parametrize("dtype", ["float64", "uint8", np.float16])
def test_other_output_dtypes_are_refused_naming_dtype(dtype):
    with pytest.raises(ValueError, match=r"dtype must be 'float32' or 'float16'"):
        Normalize(dtype=dtype)


def test_clip_range_is_no_longer_silently_ignored():
    # Albumentations' base class takes unknown keywords with only a warning: before clip_range
    # was added, Normalize(clip_range=(0, 1)) ran and did not clip.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        transform = Normalize(clip_range=(0.0, 1.0))
    out = transform(image=np.full((4, 4, 3), 255, np.uint8))["image"]
    assert out.max() == 1.0


def test_targets_include_image_images_volume_volumes():
    targets = set(Normalize().targets)
    assert {"image", "images", "volume", "volumes"} <= targets
    assert targets == set(A.Normalize().targets)


# --------------------------------------------------------------------------- max_pixel_value check


MISTAKES = [
    # (image, Normalize kwargs, what the warning says)
    (lambda rng: rng.random((8, 8, 3)).astype(np.float32), {}, r"lies in \[0, 1\].*max_pixel_value=1\.0"),
    (
        lambda rng: rng.integers(0, 256, (8, 8, 3), dtype=np.uint8),
        {"max_pixel_value": 1.0},
        r"uint8 image has values up to \d+.*max_pixel_value=255",
    ),
    (
        lambda rng: rng.integers(0, 4096, (8, 8), dtype=np.uint16),
        {"max_pixel_value": 255.0},
        r"uint16 image has values up to .*65535 for 16-bit data, 4095 for 12-bit",
    ),
    (
        lambda rng: (rng.random((8, 8, 3)) * 255).astype(np.float32),
        {"max_pixel_value": None},
        r"float32 image has values up to .*255\.0 for data in 0\.\.255",
    ),
    (
        # A CT slice in Hounsfield units with the Albumentations default 255: accepted (it is a
        # value, and A.Normalize computes the same), but flagged.
        lambda rng: rng.integers(-1024, 3072, (8, 8), dtype=np.int16),
        {},
        r"255\.0 \(the Albumentations default\), but this int16 image has values reaching -?\d+.*"
        r"1\.0 with mean and std in the image's own units",
    ),
]


@pytest.mark.parametrize(
    ("make", "kwargs", "message"),
    MISTAKES,
    ids=["float01_255", "uint8_1", "uint16_255", "float255_none", "int16_hounsfield_255"],
)
def test_a_likely_wrong_max_pixel_value_warns_once_per_transform(rng, make, kwargs, message):
    transform = Normalize(**kwargs)
    with pytest.warns(UserWarning, match=message):
        A.Compose([transform])(image=make(rng))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # checked on the first call only
        A.Compose([transform])(image=make(rng))


@pytest.mark.parametrize(
    ("image", "kwargs"),
    [
        (np.full((8, 8, 3), 200, np.uint8), {}),
        (np.full((8, 8, 3), 0.5, np.float32), {"max_pixel_value": 1.0}),
        (np.full((8, 8, 3), 0.5, np.float32), {"normalization": "image"}),  # max_pixel_value unused
        (np.zeros((8, 8, 3), np.float32), {}),  # black: says nothing about the scale
        (np.full((8, 8), 3000, np.uint16), {"max_pixel_value": 4095.0}),
        (np.full((8, 8), -1000, np.int16), {"mean": 40.0, "std": 400.0, "max_pixel_value": 1.0}),
        (np.full((8, 8), -1000, np.int16), {"normalization": "image"}),
        (np.full((8, 8), 3000, np.int32), {"max_pixel_value": 4095.0}),  # chosen: taken as meant
        (np.full((8, 8), 200, np.int16), {}),  # 8-bit data in an int16 array
    ],
    ids=[
        "uint8_255",
        "float_1",
        "image_mode",
        "black_float",
        "uint16_12bit",
        "int16_1",
        "int16_image",
        "int32_4095",
        "int16_8bit",
    ],
)
def test_a_fitting_max_pixel_value_does_not_warn(image, kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Normalize(**kwargs)(image=image)


def test_the_check_runs_on_batches_and_volumes_too(rng):
    images = rng.random((2, 8, 8, 3)).astype(np.float32)
    with pytest.warns(UserWarning, match=r"lies in \[0, 1\]"):
        A.Compose([Normalize()])(images=images)
    with pytest.warns(UserWarning, match=r"lies in \[0, 1\]"):
        A.Compose([Normalize()])(volume=images)


# --------------------------------------------------------------------------- signed integers (SPEC 6)


@pytest.mark.filterwarnings("ignore:Normalize. max_pixel_value=255.0 .the Albumentations default:UserWarning")
@pytest.mark.parametrize("dtype", [np.int16, np.int32], ids=dtype_id)
@pytest.mark.parametrize("max_pixel_value", [255.0, 1.0])
@pytest.mark.parametrize("mode", ALBUMENTATIONS_MODES)
def test_signed_images_match_albumentations(rng, mode, max_pixel_value, dtype):
    # A.Normalize takes int16 and int32 images too (it computes in float32): a CT slice in
    # Hounsfield units gives its numbers, within float32 rounding of values up to ~1.3e4.
    image = rng.integers(-1024, 3072, (HEIGHT, WIDTH, 3)).astype(dtype)
    kwargs = {"max_pixel_value": max_pixel_value, "normalization": mode}
    out = ours(image, **kwargs)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, albumentations_normalize(image, **kwargs), rtol=1e-6, atol=ATOL)


def test_signed_image_with_max_pixel_value_none_is_refused_in_the_standard_mode_only(rng):
    image = rng.integers(-1024, 3072, (HEIGHT, WIDTH), dtype=np.int16)
    with pytest.raises(
        ValueError, match=r"max_pixel_value=None .* int16 images have none.*Pass max_pixel_value"
    ):
        A.Compose([Normalize(max_pixel_value=None)])(image=image)
    out = A.Compose([Normalize(max_pixel_value=None, normalization="image")])(image=image)["image"]
    np.testing.assert_allclose(out, reference_normalize(image, normalization="image"), atol=ATOL)
