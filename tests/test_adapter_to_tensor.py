"""norm_transforms.NormalizeToTensor: Normalize + ToTensorV2 in one Albumentations transform,
against the two transforms it replaces, in A.Compose, with masks, batches and serialization."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
A = pytest.importorskip("albumentations")

from albumentations.pytorch import ToTensorV2  # noqa: E402
from conftest import MODES, dtype_id, full_scale, make_image  # noqa: E402
from torch.utils.data import default_collate  # noqa: E402

from norm_transforms import Normalize, NormalizeToTensor  # noqa: E402

LAYOUTS = {"HW": (18, 22), "HWC1": (18, 22, 1), "HWC3": (18, 22, 3), "HWC4": (18, 22, 4)}


def arguments(mode: str, dtype) -> dict:
    return {"mean": 0.45, "std": 0.25, "max_pixel_value": full_scale(dtype), "normalization": mode}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32], ids=dtype_id)
@pytest.mark.parametrize("mode", MODES)
def test_equals_normalize_then_to_tensor_v2_as_a_contiguous_tensor(rng, mode, dtype, layout):
    image = make_image(rng, dtype, LAYOUTS[layout], "random")
    expected = A.Compose([Normalize(**arguments(mode, dtype)), ToTensorV2()])(image=image)["image"]
    out = A.Compose([NormalizeToTensor(**arguments(mode, dtype))])(image=image)["image"]
    assert out.shape == expected.shape and out.dtype == torch.float32
    assert out.is_contiguous()
    # The planar kernels sum the statistics in another order than the interleaved ones.
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("mode", ["standard", "image_per_channel", "min_max"])
def test_half_output_is_the_float32_output_rounded(rng, mode, dtype):
    image = make_image(rng, np.uint8, (18, 22, 3), "random")
    single = NormalizeToTensor(normalization=mode)(image=image)["image"]
    half = NormalizeToTensor(normalization=mode, dtype=dtype)(image=image)["image"]
    assert half.dtype == getattr(torch, dtype)
    assert torch.equal(half, single.to(half.dtype))


@pytest.mark.parametrize("transpose_mask", [False, True])
def test_masks_are_converted_as_to_tensor_v2_converts_them(rng, transpose_mask):
    image = make_image(rng, np.uint8, (18, 22, 3), "random")
    mask = make_image(rng, np.uint8, (18, 22, 2), "random")
    ours = NormalizeToTensor(transpose_mask=transpose_mask)(image=image, mask=mask)["mask"]
    theirs = ToTensorV2(transpose_mask=transpose_mask)(image=image, mask=mask)["mask"]
    assert torch.equal(ours, theirs)


def test_images_get_their_own_statistics_and_collate_into_the_batch(rng):
    images = np.stack([make_image(rng, np.uint8, (18, 22, 3), "random") for _ in range(3)])
    images[1] //= 4
    transform = NormalizeToTensor(normalization="image_per_channel")
    batch = transform(images=images)["images"]
    assert batch.shape == (3, 3, 18, 22) and batch.is_contiguous()
    singles = [transform(image=image)["image"] for image in images]
    torch.testing.assert_close(batch, default_collate(singles), rtol=0, atol=1e-6)


def test_serializes_and_round_trips_through_json(rng):
    pipeline = A.Compose([NormalizeToTensor(normalization="image", dtype="float16", clip_range=(-3, 3))])
    serialized = A.to_dict(pipeline)["transform"]["transforms"][0]
    assert serialized["__class_fullname__"] == "norm_transforms.NormalizeToTensor"
    assert (serialized["dtype"], serialized["clip_range"]) == ("float16", (-3.0, 3.0))
    restored = A.from_dict(json.loads(json.dumps(A.to_dict(pipeline))))
    image = make_image(rng, np.uint8, (18, 22, 3), "outlier")
    assert torch.equal(restored(image=image)["image"], pipeline(image=image)["image"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dtype": "float64"}, "dtype must be 'float32', 'float16' or 'bfloat16'"),
        ({"normalization": "bogus"}, "normalization must be one of"),
        ({"std": 0}, "std must contain only positive numbers"),
    ],
)
def test_bad_arguments_raise_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NormalizeToTensor(**kwargs)


def test_presets_work():
    assert NormalizeToTensor.from_preset("clip").mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))


@pytest.mark.parametrize("mode", ["image", "image_per_channel", "min_max_per_channel", "robust"])
def test_nonzero_equals_normalize_nonzero_then_to_tensor_v2(rng, mode):
    images = make_image(rng, np.uint16, (2, 18, 22, 3), "random")
    images[:, :6] = 0
    images[rng.random(images.shape) < 0.2] = 0
    kwargs = {**arguments(mode, np.uint16), "nonzero": True}
    expected = A.Compose([Normalize(**kwargs), ToTensorV2()])(image=images[0])["image"]
    out = A.Compose([NormalizeToTensor(**kwargs)])(image=images[0])["image"]
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    assert not out[torch.from_numpy(images[0]).permute(2, 0, 1) == 0].any()
    batch = NormalizeToTensor(**kwargs)(images=images)["images"]
    torch.testing.assert_close(batch[1], NormalizeToTensor(**kwargs)(image=images[1])["image"])
    restored = A.from_dict(json.loads(json.dumps(A.to_dict(A.Compose([NormalizeToTensor(**kwargs)])))))
    assert restored.transforms[0]._recipe.nonzero
