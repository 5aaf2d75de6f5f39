"""``TorchNormalize``, the torchvision v2 transform: parity with ``normalize`` and with
``ToImage + ToDtype + Normalize``, v2 and v1 ``Compose``, which inputs it normalizes and which it
passes through, pickling, DataLoader workers, argument checks and repr.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import PIL.Image
import pytest
import torch
import torchvision.transforms as transforms_v1
from conftest import MODES, make_image
from torch.utils.data import DataLoader, Dataset
from torch_cases import TORCH_DTYPES, max_pixel_value_of
from torchvision import tv_tensors
from torchvision.transforms import v2

from norm_transforms import TorchNormalize, denormalize, normalize

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
ATOL = 1e-6
OUTPUT_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def random_chw(rng, dtype: torch.dtype, shape=(3, 20, 24)) -> torch.Tensor:
    """A random image tensor: the full range for integers, [0, 1) for floats."""
    if not dtype.is_floating_point:
        return torch.from_numpy(make_image(rng, np.dtype(str(dtype).removeprefix("torch.")), shape, "random"))
    return torch.from_numpy(make_image(rng, np.float32, shape, "random")).to(dtype)


def random_hwc_uint8(rng, channels: int = 3) -> np.ndarray:
    return make_image(rng, np.uint8, (20, 24, channels), "random")


def torchvision_reference(image, mean=MEAN, std=STD) -> torch.Tensor:
    """What ``TorchNormalize(mean, std)`` replaces: ToImage + ToDtype(float32, scale) + Normalize."""
    pipeline = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])
    return pipeline(image)


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize("out_name", OUTPUT_DTYPES)
@pytest.mark.parametrize("name", TORCH_DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_output_equals_normalize_with_the_same_arguments(rng, mode, name, out_name):
    batch = torch.stack([random_chw(rng, TORCH_DTYPES[name]) for _ in range(2)])
    kwargs = {"mean": 0.4, "std": 0.25, "max_pixel_value": max_pixel_value_of(name), "normalization": mode}
    transform = TorchNormalize(**kwargs, dtype=OUTPUT_DTYPES[out_name])
    assert torch.equal(transform(batch), normalize(batch, **kwargs, dtype=OUTPUT_DTYPES[out_name]))


@pytest.mark.parametrize("mode", ["percentile", "percentile_per_channel"])
def test_percentiles_reach_the_kernel(rng, mode):
    image = random_chw(rng, torch.uint8)
    out = TorchNormalize(normalization=mode, percentiles=(10, 90))(tv_tensors.Image(image))
    expected = normalize(image, normalization=mode, percentiles=(10, 90))
    torch.testing.assert_close(out.as_subclass(torch.Tensor), expected, rtol=0, atol=0)
    assert not torch.equal(expected, normalize(image, normalization=mode))


@pytest.mark.parametrize("mode", ["standard", "image_per_channel"])
def test_clip_range_reaches_the_kernel(rng, mode):
    image = random_chw(rng, torch.uint8)
    transform = TorchNormalize(normalization=mode, clip_range=(-0.5, 0.5))
    out = transform(tv_tensors.Image(image))
    expected = normalize(image, max_pixel_value=None, normalization=mode, clip_range=(-0.5, 0.5))
    torch.testing.assert_close(out.as_subclass(torch.Tensor), expected, rtol=0, atol=0)
    assert out.min() == -0.5 and out.max() == 0.5
    assert "clip_range=(-0.5, 0.5)" in repr(transform)


@pytest.mark.parametrize("mode", ["image", "min_max_per_channel"])
def test_nonzero_reaches_the_kernel_and_video_frames_keep_their_zeros(rng, mode):
    video = torch.stack([random_chw(rng, torch.uint8) for _ in range(3)])
    video[:, :, :4] = 0  # a zero background in every frame
    video[1] = 0  # an all-zero frame
    transform = TorchNormalize(normalization=mode, nonzero=True)
    out = transform(tv_tensors.Video(video))
    assert isinstance(out, tv_tensors.Video)
    expected = normalize(video, normalization=mode, nonzero=True)
    torch.testing.assert_close(out.as_subclass(torch.Tensor), expected, rtol=0, atol=0)
    assert not out[video == 0].any() and not out[1].any()
    assert "nonzero=True" in repr(transform)
    with pytest.raises(ValueError, match="nonzero=True selects"):
        TorchNormalize(nonzero=True)


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32", "float64"])
def test_float_input_keeps_its_dtype_by_default_as_v2_normalize(rng, name):
    image = tv_tensors.Image(random_chw(rng, TORCH_DTYPES[name]))
    out = TorchNormalize()(image)
    expected = v2.Normalize(MEAN, STD)(image)  # float input: v2 keeps its dtype
    assert out.dtype == expected.dtype == image.dtype
    atol = {"float16": 0.01, "bfloat16": 0.05}.get(name, 1e-5)  # both round to the dtype once
    torch.testing.assert_close(out.float(), expected.float(), rtol=0, atol=atol)


def test_integer_input_gives_float32_by_default_and_dtype_overrides(rng):
    image = tv_tensors.Image(random_chw(rng, torch.uint8))
    assert TorchNormalize()(image).dtype == torch.float32
    assert TorchNormalize(dtype=torch.float16)(image).dtype == torch.float16
    assert TorchNormalize(dtype=torch.float32)(image.float() / 255).dtype == torch.float32


# --------------------------------------------------------------------------- inplace (v2.Normalize)


# The first-call max_pixel_value check reads the input before it is overwritten: no warning.
@pytest.mark.filterwarnings("error::UserWarning")
@pytest.mark.parametrize("kind", [torch.Tensor, tv_tensors.Image], ids=["tensor", "Image"])
@pytest.mark.parametrize("mode", ["standard", "image_per_channel"])
def test_inplace_writes_the_result_into_the_float_input(rng, mode, kind):
    image = random_chw(rng, torch.float32)
    expected = TorchNormalize(normalization=mode)(image.clone())
    inpt = image.clone() if kind is torch.Tensor else tv_tensors.Image(image.clone())
    out = TorchNormalize(normalization=mode, inplace=True)(inpt)
    assert type(out) is type(inpt)
    assert out.data_ptr() == inpt.data_ptr()
    torch.testing.assert_close(inpt.as_subclass(torch.Tensor), expected, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("inpt", "got"),
    [
        (torch.zeros(3, 4, 4, dtype=torch.uint8), r"a torch.uint8 tensor of shape \(3, 4, 4\)"),
        (np.zeros((4, 4, 3), np.float32), r"a float32 array of shape \(4, 4, 3\)"),
    ],
    ids=["uint8", "ndarray"],
)
def test_inplace_where_it_cannot_apply_says_why(inpt, got):
    message = rf"inplace=True .* tensor of the output dtype \(torch.float32\).*; got {got}"
    with pytest.raises(ValueError, match=message):
        TorchNormalize(inplace=True)(inpt)


def test_inplace_must_be_a_bool():
    with pytest.raises(TypeError, match="inplace must be True or False"):
        TorchNormalize(inplace="yes")


# The functional takes inplace= too, as v2.functional.normalize does (torchvision's
# TestNormalize.test_kernel_image_inplace, run with ours patched in, needs it).
@pytest.mark.parametrize("name", ["float16", "float32", "float64"])
@pytest.mark.parametrize("kind", [torch.Tensor, tv_tensors.Image, tv_tensors.Video], ids=lambda k: k.__name__)
def test_functional_inplace_writes_into_the_input_and_returns_it(rng, kind, name):
    image = random_chw(rng, TORCH_DTYPES[name], (2, 3, 20, 24))
    expected = normalize(image.clone(), max_pixel_value=None)
    inpt = kind(image.clone())
    pointer, version = inpt.data_ptr(), inpt._version
    out = normalize(inpt, max_pixel_value=None, inplace=True)
    assert out is inpt and type(out) is kind
    assert out.data_ptr() == pointer and out._version > version
    assert torch.equal(inpt.as_subclass(torch.Tensor), expected)


def test_functional_inplace_gives_what_f_normalize_inplace_gives(rng):
    image = random_chw(rng, torch.float32)
    theirs = v2.functional.normalize(image.clone(), list(MEAN), list(STD), inplace=True)
    ours = normalize(image.clone(), MEAN, STD, max_pixel_value=None, inplace=True)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=ATOL)


def test_functional_inplace_returns_the_input_with_the_params_that_undo_it(rng):
    image = random_chw(rng, torch.float32)
    inpt = image.clone()
    out, params = normalize(inpt, normalization="image_per_channel", inplace=True, return_params=True)
    assert out is inpt
    torch.testing.assert_close(denormalize(inpt, params=params), image, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("inpt", "kwargs", "message"),
    [
        (
            torch.full((3, 4, 4), 7, dtype=torch.uint8),
            {},
            r"tensor of the output dtype \(torch.float32\) and shape \(3, 4, 4\); "
            r"got a torch.uint8 tensor of shape \(3, 4, 4\)",
        ),
        (torch.full((3, 4, 4), 0.5), {"dtype": torch.float16}, r"output dtype \(torch.float16\)"),
        (
            np.full((4, 4, 3), 0.5, np.float64),
            {},
            r"writable array of the output dtype \(float32\).*; got a float64 array",
        ),
    ],
    ids=["uint8_tensor", "dtype_override", "float64_array"],
)
def test_functional_inplace_where_it_cannot_apply_says_why_and_leaves_the_input(inpt, kwargs, message):
    before = inpt.copy() if isinstance(inpt, np.ndarray) else inpt.clone()
    with pytest.raises(ValueError, match=rf"inplace=True writes the result into the input.*{message}"):
        normalize(inpt, max_pixel_value=None, inplace=True, **kwargs)
    assert (np.array_equal if isinstance(inpt, np.ndarray) else torch.equal)(inpt, before)


def test_functional_inplace_must_be_a_bool():
    with pytest.raises(TypeError, match="inplace must be True or False; got 1"):
        normalize(torch.rand(3, 4, 4), inplace=1)


# --------------------------------------------------------------------------- functional on tv_tensors


@pytest.mark.parametrize("kind", [tv_tensors.Image, tv_tensors.Video], ids=lambda kind: kind.__name__)
def test_functional_normalize_keeps_the_tv_tensor_type_as_f_normalize_does(rng, kind):
    image = kind(random_chw(rng, torch.uint8, (2, 3, 20, 24)))
    out = normalize(image, max_pixel_value=None)
    expected = v2.functional.normalize(
        v2.functional.to_dtype(image, torch.float32, scale=True), list(MEAN), list(STD)
    )
    assert type(out) is type(expected) is kind
    plain = torch.Tensor
    torch.testing.assert_close(out.as_subclass(plain), expected.as_subclass(plain), rtol=0, atol=1e-5)
    per_image, params = normalize(image, normalization="image", return_params=True)
    assert type(per_image) is kind
    assert type(denormalize(per_image, params=params)) is kind


@pytest.mark.parametrize(
    "inpt",
    [
        tv_tensors.Mask(torch.zeros(8, 8)),
        tv_tensors.BoundingBoxes([[0, 0, 4, 4]], format="XYXY", canvas_size=(8, 8)),
    ],
    ids=["Mask", "BoundingBoxes"],
)
def test_functional_normalize_refuses_tv_tensors_that_are_not_images(inpt):
    with pytest.raises(TypeError, match=rf"cannot normalize a tv_tensors\.{type(inpt).__name__}"):
        normalize(inpt)


def test_default_max_pixel_value_is_the_dtype_full_scale(rng):
    image = random_chw(rng, torch.uint16)
    expected = normalize(image, MEAN, STD, max_pixel_value=65535.0)
    assert torch.equal(TorchNormalize()(image), expected)


@pytest.mark.parametrize("name", ["uint8", "float32"])
def test_replaces_to_dtype_and_normalize(rng, name):
    image = tv_tensors.Image(random_chw(rng, TORCH_DTYPES[name]))
    torch.testing.assert_close(
        TorchNormalize(MEAN, STD)(image), torchvision_reference(image), rtol=0, atol=ATOL
    )


# --------------------------------------------------------------------------- pipelines


def test_works_in_v2_compose(rng):
    image = PIL.Image.fromarray(random_hwc_uint8(rng))
    pipeline = v2.Compose([v2.ToImage(), v2.RandomHorizontalFlip(p=1.0), TorchNormalize(MEAN, STD)])
    flipped = v2.RandomHorizontalFlip(p=1.0)(v2.ToImage()(image))
    out = pipeline(image)
    assert isinstance(out, tv_tensors.Image)
    torch.testing.assert_close(out, torchvision_reference(flipped), rtol=0, atol=ATOL)


def detection_sample(rng, kind) -> dict:
    """An image or video with the targets that v2's geometric transforms dispatch on."""
    shape = (3, 32, 40) if kind is tv_tensors.Image else (2, 3, 32, 40)
    return {
        "image": kind(random_chw(rng, torch.uint8, shape)),
        "boxes": tv_tensors.BoundingBoxes(
            [[2, 3, 20, 30], [10, 1, 39, 12]], format="XYXY", canvas_size=(32, 40)
        ),
        "mask": tv_tensors.Mask((random_chw(rng, torch.uint8, (32, 40)) > 128).to(torch.uint8)),
        "points": np.array([[1.0, 2.0]]),  # an ndarray target: every transform passes it through
        "label": 3,
    }


@pytest.mark.parametrize("kind", [tv_tensors.Image, tv_tensors.Video], ids=lambda kind: kind.__name__)
def test_in_v2_compose_flip_and_resize_after_it_transform_the_image_and_its_targets(rng, kind):
    sample = detection_sample(rng, kind)
    geometry = [v2.RandomHorizontalFlip(p=1.0), v2.Resize((16, 20))]
    ours = v2.Compose([TorchNormalize(MEAN, STD), *geometry])(sample)
    reference = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)]
    theirs = v2.Compose([*reference, *geometry])(sample)
    assert type(ours["image"]) is kind and ours["image"].shape[-2:] == (16, 20)
    torch.testing.assert_close(ours["image"], theirs["image"], rtol=0, atol=2e-6)
    for key in ("boxes", "mask"):
        assert type(ours[key]) is type(sample[key])
        assert torch.equal(ours[key], theirs[key]), key
    assert ours["boxes"].canvas_size == (16, 20)
    assert not torch.equal(ours["boxes"], sample["boxes"])  # flipped and resized, not passed by
    assert ours["points"] is sample["points"] and ours["label"] == 3


def test_in_v2_compose_before_it_the_targets_follow_the_image(rng):
    sample = detection_sample(rng, tv_tensors.Image)
    geometry = [v2.RandomHorizontalFlip(p=1.0), v2.Resize((16, 20))]
    ours = v2.Compose([*geometry, TorchNormalize(MEAN, STD)])(sample)
    expected = v2.Compose(geometry)(sample)
    assert torch.equal(ours["boxes"], expected["boxes"]) and torch.equal(ours["mask"], expected["mask"])
    torch.testing.assert_close(ours["image"], torchvision_reference(expected["image"]), rtol=0, atol=ATOL)


def test_transforms_after_it_dispatch_on_the_tv_tensor_type_it_keeps(rng):
    # ToDtype with a per-type table converts only what is still an Image or a Video: a
    # normalize that returned plain tensors would leave them float32.
    to_half = v2.ToDtype({tv_tensors.Image: torch.float16, tv_tensors.Video: torch.float16, "others": None})
    image = tv_tensors.Image(random_chw(rng, torch.uint8))
    video = tv_tensors.Video(random_chw(rng, torch.uint8, (2, 3, 20, 24)))
    out = v2.Compose([TorchNormalize(), to_half])({"image": image, "video": video})
    assert (type(out["image"]), out["image"].dtype) == (tv_tensors.Image, torch.float16)
    assert (type(out["video"]), out["video"].dtype) == (tv_tensors.Video, torch.float16)
    functional_out = to_half(normalize(image, max_pixel_value=None))
    assert (type(functional_out), functional_out.dtype) == (tv_tensors.Image, torch.float16)


def test_works_in_v1_compose_in_place_of_to_tensor_and_normalize(rng):
    image = PIL.Image.fromarray(random_hwc_uint8(rng))
    ours = transforms_v1.Compose([transforms_v1.PILToTensor(), TorchNormalize(MEAN, STD)])(image)
    theirs = transforms_v1.Compose([transforms_v1.ToTensor(), transforms_v1.Normalize(MEAN, STD)])(image)
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, theirs, rtol=0, atol=ATOL)


# --------------------------------------------------------------------------- input types


@pytest.mark.parametrize("mode", MODES)
def test_image_stays_an_image(rng, mode):
    image = tv_tensors.Image(random_chw(rng, torch.uint8))
    out = TorchNormalize(normalization=mode)(image)
    assert type(out) is tv_tensors.Image
    assert torch.equal(
        out.as_subclass(torch.Tensor), normalize(image.as_subclass(torch.Tensor), MEAN, STD, None, mode)
    )


@pytest.mark.parametrize("mode", MODES)
def test_video_stays_a_video_with_statistics_per_frame(rng, mode):
    frames = torch.stack([random_chw(rng, torch.uint8) // (t + 1) for t in range(4)])
    video = tv_tensors.Video(frames)
    out = TorchNormalize(normalization=mode)(video)
    assert type(out) is tv_tensors.Video
    for frame, frame_out in zip(frames, out.as_subclass(torch.Tensor), strict=True):
        assert torch.equal(frame_out, normalize(frame, MEAN, STD, None, mode))


def test_plain_tensor_stays_a_plain_tensor(rng):
    image = random_chw(rng, torch.uint8)
    out = TorchNormalize()(image)
    assert type(out) is torch.Tensor
    assert torch.equal(out, normalize(image, MEAN, STD, None))


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
def test_pil_image_becomes_a_chw_float_image(rng, mode):
    image = PIL.Image.fromarray(random_hwc_uint8(rng, 4)).convert(mode)
    channels = len(mode)
    mean, std = MEAN[:1] * channels if channels != 3 else MEAN, STD[:1] * channels if channels != 3 else STD
    out = TorchNormalize(mean, std)(image)
    assert type(out) is tv_tensors.Image
    assert out.shape == (channels, 20, 24)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, torchvision_reference(image, mean, std), rtol=0, atol=ATOL)


@pytest.mark.parametrize("shape", [(20, 24, 3), (20, 24)], ids=["HWC", "HW"])
def test_hwc_ndarray_becomes_a_chw_float_image(rng, shape):
    array = make_image(rng, np.uint8, shape, "random")
    out = TorchNormalize((0.5,), (0.25,))(array)
    assert type(out) is tv_tensors.Image
    assert out.shape == (1 if len(shape) == 2 else 3, 20, 24)
    torch.testing.assert_close(out, torchvision_reference(array, (0.5,), (0.25,)), rtol=0, atol=ATOL)


def other_targets() -> dict:
    canvas = (20, 24)
    targets = {
        "boxes": tv_tensors.BoundingBoxes([[1, 2, 10, 12]], format="XYXY", canvas_size=canvas),
        "mask": tv_tensors.Mask(torch.ones(canvas, dtype=torch.uint8)),
        "label": 7,
        "name": "cat",
    }
    if hasattr(tv_tensors, "KeyPoints"):
        targets["keypoints"] = tv_tensors.KeyPoints([[3.0, 4.0]], canvas_size=canvas)
    return targets


@pytest.mark.parametrize("image_type", ["Image", "PIL"])
def test_boxes_masks_keypoints_and_labels_pass_through_unchanged(rng, image_type):
    array = random_hwc_uint8(rng)
    image = (
        PIL.Image.fromarray(array)
        if image_type == "PIL"
        else tv_tensors.Image(torch.from_numpy(array).permute(2, 0, 1))
    )
    targets = other_targets()
    out = TorchNormalize()({"image": image, **targets})
    assert isinstance(out["image"], tv_tensors.Image)
    assert out["image"].dtype == torch.float32
    for key, target in targets.items():
        assert out[key] is target, key


def test_with_an_image_present_a_plain_tensor_passes_through(rng):
    image = tv_tensors.Image(random_chw(rng, torch.uint8))
    extra = random_chw(rng, torch.uint8)
    out_image, out_extra = TorchNormalize()(image, extra)
    assert out_image.dtype == torch.float32
    assert out_extra is extra


def test_without_an_image_only_the_first_plain_tensor_is_normalized(rng):
    first, second = random_chw(rng, torch.uint8), random_chw(rng, torch.uint8)
    out_first, out_second = TorchNormalize()(first, second)
    assert torch.equal(out_first, normalize(first, MEAN, STD, None))
    assert out_second is second


def test_ndarray_image_with_ndarray_boxes_normalizes_only_the_image(rng):
    # v2's rule with ndarrays counted as plain inputs: the first one is the image.
    array, boxes = random_hwc_uint8(rng), np.array([[1, 2, 10, 12]], dtype=np.float32)
    out_image, out_boxes = TorchNormalize()(array, boxes)
    assert type(out_image) is tv_tensors.Image and out_image.dtype == torch.float32
    assert out_boxes is boxes


@pytest.mark.parametrize("image_type", ["Image", "PIL", "tensor"])
def test_ndarray_targets_pass_through_beside_an_image(rng, image_type):
    array = random_hwc_uint8(rng)
    images = {
        "Image": tv_tensors.Image(torch.from_numpy(array).permute(2, 0, 1)),
        "PIL": PIL.Image.fromarray(array),
        "tensor": torch.from_numpy(array).permute(2, 0, 1),
    }
    target = np.arange(6, dtype=np.uint8).reshape(2, 3)
    out = TorchNormalize()({"image": images[image_type], "target": target})
    assert out["image"].dtype == torch.float32
    assert out["target"] is target


# --------------------------------------------------------------------------- pickling and workers


@pytest.mark.parametrize("mode", ["standard", "image_per_channel"])
def test_pickle_round_trip_gives_the_same_output(rng, mode):
    transform = TorchNormalize((0.5, 0.4, 0.3), (0.2, 0.3, 0.4), 255.0, mode, torch.float16)
    restored = pickle.loads(pickle.dumps(transform))
    image = tv_tensors.Image(random_chw(rng, torch.uint8))
    assert repr(restored) == repr(transform)
    assert torch.equal(restored(image), transform(image))


class RandomImages(Dataset):
    """Deterministic uint8 images with an int label, transformed on access (in the worker)."""

    def __init__(self, transform, count: int = 8):
        self.transform = transform
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int):
        rng = np.random.default_rng(index)
        image = tv_tensors.Image(torch.from_numpy(rng.integers(0, 256, (3, 16, 18), dtype=np.uint8)))
        return self.transform(image), index


def test_dataloader_workers_give_the_same_batches_as_the_main_process():
    dataset = RandomImages(TorchNormalize(normalization="image"))
    in_process = list(DataLoader(dataset, batch_size=3, num_workers=0))
    # forkserver, as compute_stats uses: workers forked from a process whose torch and OpenCV
    # thread pools ran (earlier tests) can deadlock. It also proves the transform pickles.
    in_workers = list(DataLoader(dataset, batch_size=3, num_workers=2, multiprocessing_context="forkserver"))
    assert len(in_workers) == len(in_process) == 3
    for (images, labels), (expected_images, expected_labels) in zip(in_workers, in_process, strict=True):
        assert torch.equal(images, expected_images)
        assert torch.equal(labels, expected_labels)


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"dtype": torch.int32}, TypeError, r"dtype must be one of .*float32.*; got torch\.int32"),
        ({"dtype": torch.complex64}, TypeError, r"dtype must be one of .*; got torch\.complex64"),
        ({"normalization": "bogus"}, ValueError, r"normalization must be one of .*; got 'bogus'"),
        ({"std": 0}, ValueError, r"std must contain only positive numbers"),
        ({"std": (0.2, 0.0, 0.2)}, ValueError, r"std must contain only positive numbers"),
        ({"max_pixel_value": -1.0}, ValueError, r"max_pixel_value must be a positive finite number"),
    ],
    ids=["int32", "complex64", "bogus_mode", "std_zero", "std_has_zero", "negative_max_pixel_value"],
)
def test_bad_constructor_arguments_raise_clearly(kwargs, error, message):
    with pytest.raises(error, match=message):
        TorchNormalize(**kwargs)


def test_mean_of_the_wrong_length_is_reported_when_the_image_arrives(rng):
    transform = TorchNormalize(mean=(0.1, 0.2), std=0.2)
    with pytest.raises(ValueError, match="mean has 2 values but the image has 3 channels"):
        transform(random_chw(rng, torch.uint8))


def test_repr_shows_the_arguments():
    text = repr(TorchNormalize((0.5, 0.4, 0.3), 0.25, 255.0, "min_max", torch.bfloat16))
    assert text.startswith("TorchNormalize(")
    for part in ("mean=(0.5, 0.4, 0.3)", "std=0.25", "max_pixel_value=255.0", "'min_max'", "torch.bfloat16"):
        assert part in text


def test_is_a_module_and_a_v2_transform():
    transform = TorchNormalize()
    assert isinstance(transform, v2.Transform)
    assert isinstance(transform, torch.nn.Module)


@pytest.mark.parametrize(
    ("array", "error", "message"),
    [
        (
            np.zeros((4, 4, 3), dtype=object),
            TypeError,
            r"image dtype object is not supported; accepted: uint8",
        ),
        (np.zeros((4, 4, 3), dtype=np.int64), TypeError, r"image dtype int64 is not supported"),
        (
            np.zeros((2, 4, 4, 3), dtype=np.uint8),
            ValueError,
            r"\(H, W\) or \(H, W, C\); got shape \(2, 4, 4, 3\)",
        ),
        (np.zeros((0, 4, 3), dtype=np.uint8), ValueError, r"image is empty"),
    ],
    ids=["object", "int64", "4d", "empty"],
)
def test_bad_ndarray_gets_our_message_not_torchs(array, error, message):
    with pytest.raises(error, match=message):
        TorchNormalize()(array)


def test_negative_stride_ndarray_is_normalized_like_its_copy(rng):
    image = random_hwc_uint8(rng)[:, ::-1]
    expected = TorchNormalize()(np.ascontiguousarray(image))
    assert torch.equal(TorchNormalize()(image), expected)


def test_a_likely_wrong_max_pixel_value_warns_once(rng):
    transform = TorchNormalize(max_pixel_value=1.0)
    image = torch.from_numpy(random_hwc_uint8(rng)).permute(2, 0, 1)
    with pytest.warns(UserWarning, match=r"TorchNormalize: max_pixel_value=1\.0, but this uint8 image"):
        transform(image)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        transform(image)


@pytest.mark.parametrize("dtype", [torch.int16, torch.int32], ids=str)
def test_signed_tensors_need_an_explicit_max_pixel_value_in_the_standard_mode_only(rng, dtype):
    # torchvision's ToDtype would scale int16 by 32767; SPEC 6 asks for the value instead.
    image = torch.from_numpy(rng.integers(-1024, 3072, (3, 12, 14))).to(dtype)
    with pytest.raises(ValueError, match=r"max_pixel_value=None .* images have none.*Pass max_pixel_value"):
        TorchNormalize()(image)
    per_image = TorchNormalize(normalization="image_per_channel")(image)
    assert torch.equal(per_image, normalize(image, normalization="image_per_channel"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 1.0 with mean and std in the image's units: no warning
        out = TorchNormalize(mean=40.0, std=400.0, max_pixel_value=1.0)(image)
    torch.testing.assert_close(out, (image.float() - 40.0) / 400.0, rtol=1e-6, atol=1e-6)


def test_the_default_max_pixel_value_follows_the_dtype_without_warning(rng):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TorchNormalize()(torch.from_numpy(random_hwc_uint8(rng)).permute(2, 0, 1))
        TorchNormalize()(torch.rand(3, 8, 8))
