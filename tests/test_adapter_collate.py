"""norm_transforms.NormalizeCollate: a DataLoader collate_fn normalizing into the batch, against
what it replaces (A.Normalize or our Normalize per sample, ToTensorV2, default_collate), in the
main process and in DataLoader workers."""

from __future__ import annotations

import pickle
from collections import namedtuple

import numpy as np
import pytest

torch = pytest.importorskip("torch")
A = pytest.importorskip("albumentations")

from albumentations.pytorch import ToTensorV2  # noqa: E402
from conftest import ALBUMENTATIONS_MODES, MODES, dtype_id, full_scale, make_image  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch.utils.data import DataLoader, Dataset, default_collate  # noqa: E402

from norm_transforms import Normalize, NormalizeCollate  # noqa: E402

# How far A.Normalize is from the float64 formula (README, "Where we differ"): one float32
# rounding in the standard mode, float32 statistics in the image modes, and min_max divides by
# the range + 1e-4 where ours (and the formula) divide by the range.
ALBUMENTATIONS_ATOL = {
    "standard": 1e-6,
    "image": 1e-5,
    "image_per_channel": 1e-5,
    "min_max": 1e-4,
    "min_max_per_channel": 1e-4,
}
LAYOUTS = {"HW": (18, 22), "HWC1": (18, 22, 1), "HWC3": (18, 22, 3), "HWC4": (18, 22, 4)}


def arguments(mode: str, dtype) -> dict:
    return {"mean": 0.45, "std": 0.25, "max_pixel_value": full_scale(dtype), "normalization": mode}


def per_sample_then_collated(images: list[np.ndarray], peer=Normalize, **kwargs) -> torch.Tensor:
    """What NormalizeCollate replaces: normalize each image, ToTensorV2, default_collate."""
    pipeline = A.Compose([peer(**kwargs), ToTensorV2()])
    return default_collate([pipeline(image=image)["image"] for image in images])


def random_images(rng, dtype, shape, count: int = 4) -> list[np.ndarray]:
    images = [make_image(rng, dtype, shape, "random") for _ in range(count)]
    images[1] = (images[1] / 3).astype(dtype)  # another range: per-image statistics show
    return images


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32], ids=dtype_id)
@pytest.mark.parametrize("mode", MODES)
def test_equals_normalize_to_tensor_and_default_collate(rng, mode, dtype, layout):
    images = random_images(rng, dtype, LAYOUTS[layout])
    expected = per_sample_then_collated(images, **arguments(mode, dtype))
    batch = NormalizeCollate(**arguments(mode, dtype))([{"image": image} for image in images])["image"]
    assert batch.shape == expected.shape and batch.dtype == torch.float32 and batch.is_contiguous()
    # The planar kernels sum the statistics in another order than the interleaved ones.
    torch.testing.assert_close(batch, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode", ALBUMENTATIONS_MODES)
def test_equals_albumentations_normalize_to_tensor_and_default_collate(rng, mode):
    images = random_images(rng, np.uint8, (18, 22, 3))
    expected = per_sample_then_collated(images, peer=A.Normalize, normalization=mode)
    batch = NormalizeCollate(normalization=mode)(images)
    # A.Normalize 2.0.8 returns float64 in its per-image modes: a float64 batch, twice the bytes.
    torch.testing.assert_close(batch, expected.to(torch.float32), rtol=0, atol=ALBUMENTATIONS_ATOL[mode])


@settings(max_examples=40, deadline=None)
@given(
    mode=st.sampled_from(MODES),
    dtype=st.sampled_from([np.uint8, np.uint16, np.float32, np.float64]),
    height=st.integers(1, 9),
    width=st.integers(1, 9),
    channels=st.sampled_from([None, 1, 2, 3, 5]),
    count=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_mode_shape_and_dtype_equals_our_normalize_per_image(
    mode, dtype, height, width, channels, count, seed
):
    rng = np.random.default_rng(seed)
    shape = (height, width) if channels is None else (height, width, channels)
    images = [make_image(rng, dtype, shape, "random") for _ in range(count)]
    kwargs = {"max_pixel_value": full_scale(dtype), "normalization": mode, "mean": 0.4, "std": 0.3}
    transform = Normalize(**kwargs)
    expected = np.stack([transform(image=image)["image"].reshape(height, width, -1) for image in images])
    batch = NormalizeCollate(**kwargs)(images)
    np.testing.assert_allclose(batch.numpy(), expected.transpose(0, 3, 1, 2), rtol=0, atol=2e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, "float16", "bfloat16"])
@pytest.mark.parametrize("mode", ["standard", "image_per_channel", "min_max", "robust"])
def test_half_batches_are_the_float32_batch_rounded_once(rng, mode, dtype):
    images = random_images(rng, np.uint8, (18, 22, 3))
    single = NormalizeCollate(normalization=mode)(images)
    half = NormalizeCollate(normalization=mode, dtype=dtype)(images)
    assert half.dtype == single.to(dtype if isinstance(dtype, torch.dtype) else getattr(torch, dtype)).dtype
    assert torch.equal(half, single.to(half.dtype))


def test_dict_samples_keep_their_keys_and_other_fields_collate_as_default_collate(rng):
    images = random_images(rng, np.uint8, (18, 22, 3))
    samples = [
        {"label": index, "image": image, "mask": image[..., 0] > 100, "name": f"img{index}"}
        for index, image in enumerate(images)
    ]
    batch = NormalizeCollate()(samples)
    expected = default_collate(samples)
    assert list(batch) == list(expected)  # the samples' key order
    for key in ("label", "mask", "name"):
        assert batch[key] == expected[key] if key == "name" else torch.equal(batch[key], expected[key])
    torch.testing.assert_close(batch["image"], per_sample_then_collated(images), rtol=0, atol=0)


def test_tuple_list_and_namedtuple_samples_collate_as_default_collate(rng):
    images = random_images(rng, np.uint8, (18, 22, 3))
    expected_images = per_sample_then_collated(images)
    collate = NormalizeCollate()

    tuples = [(image, index, np.float32(index) / 2) for index, image in enumerate(images)]
    batch, labels, weights = collate(tuples)
    _, expected_labels, expected_weights = default_collate(tuples)
    assert isinstance(collate(tuples), list)  # as default_collate returns for tuples
    assert torch.equal(labels, expected_labels) and torch.equal(weights, expected_weights)
    torch.testing.assert_close(batch, expected_images, rtol=0, atol=0)

    assert torch.equal(collate([[image, 1] for image in images])[0], batch)
    assert torch.equal(collate([(image,) for image in images])[0], batch)

    Sample = namedtuple("Sample", ["image", "target"])
    named = collate([Sample(image, index) for index, image in enumerate(images)])
    assert isinstance(named, Sample) and torch.equal(named.image, batch)
    assert torch.equal(named.target, torch.arange(len(images)))


def test_tensor_images_from_to_tensor_v2_give_the_same_batch(rng):
    images = random_images(rng, np.uint8, (18, 22, 3))
    collate = NormalizeCollate(normalization="image_per_channel")
    expected = collate(images)
    views = [ToTensorV2()(image=image)["image"] for image in images]  # CHW views of HWC memory
    assert not views[0].is_contiguous()
    assert torch.equal(collate(views), expected)
    assert torch.equal(collate([view.contiguous() for view in views]), expected)


def test_odd_arrays_are_read_as_they_are_and_never_modified(rng):
    base = random_images(rng, np.uint8, (18, 22, 3))
    expected = NormalizeCollate()(base)
    flipped = [np.ascontiguousarray(image[::-1, ::-1])[::-1, ::-1] for image in base]  # negative strides
    read_only = [image.copy() for image in base]
    for image in read_only:
        image.flags.writeable = False
    wide = [np.pad(image, ((0, 0), (0, 0), (0, 1)))[..., :3] for image in base]  # padded rows
    for images in (flipped, read_only, wide):
        before = [image.copy() for image in images]
        assert torch.equal(NormalizeCollate()(images), expected)
        assert all(np.array_equal(image, copy) for image, copy in zip(images, before, strict=True))


def test_constant_and_nan_images_give_the_documented_results(rng):
    constant = [np.full((6, 7, 3), 9, np.uint8), np.zeros((6, 7, 3), np.uint8)]
    assert torch.equal(NormalizeCollate(normalization="image")(constant), torch.zeros(2, 3, 6, 7))
    with_nan = make_image(rng, np.float32, (6, 7, 3), "random")
    with_nan[2, 3, 1] = np.nan
    batch = NormalizeCollate(normalization="image_per_channel", max_pixel_value=1.0)([with_nan])
    expected = Normalize(normalization="image_per_channel", max_pixel_value=1.0)(image=with_nan)["image"]
    np.testing.assert_array_equal(np.isnan(batch[0].numpy()), np.isnan(expected.transpose(2, 0, 1)))


@pytest.mark.parametrize("mode", ["standard", "image_per_channel"])
def test_more_channels_than_opencv_splits(rng, mode):
    images = [make_image(rng, np.uint8, (4, 5, 129), "random") for _ in range(2)]
    batch = NormalizeCollate(normalization=mode, mean=0.5, std=0.25)(images)
    expected = per_sample_then_collated(images, normalization=mode, mean=0.5, std=0.25)
    torch.testing.assert_close(batch, expected, rtol=0, atol=1e-6)


def test_mapping_samples_keep_their_type_and_bfloat16_tensors_are_refused(rng):
    from collections import OrderedDict

    images = random_images(rng, np.uint8, (5, 6, 3))
    batch = NormalizeCollate()([OrderedDict(image=image, label=1) for image in images])
    assert type(batch) is OrderedDict and list(batch) == ["image", "label"]
    with pytest.raises(TypeError, match="bfloat16 image tensors"):
        NormalizeCollate()([torch.zeros(3, 4, 5, dtype=torch.bfloat16)])


def test_nonzero_reaches_the_batch(rng):
    images = random_images(rng, np.uint8, (18, 22, 3))
    images[0][:5] = 0
    batch = NormalizeCollate(normalization="image_per_channel", nonzero=True)(images)
    expected = per_sample_then_collated(images, normalization="image_per_channel", nonzero=True)
    torch.testing.assert_close(batch, expected, rtol=0, atol=1e-6)
    assert torch.all(batch[0, :, :5] == 0)
    with pytest.raises(ValueError, match="nonzero"):
        NormalizeCollate(nonzero=True)  # the standard mode has no statistics to restrict


def test_clip_range_and_presets_reach_the_batch(rng):
    images = random_images(rng, np.uint8, (18, 22, 3))
    clipped = NormalizeCollate(clip_range=(-1.0, 1.0))(images)
    assert torch.equal(clipped, NormalizeCollate()(images).clamp(-1.0, 1.0))
    from_preset = NormalizeCollate.from_preset("clip", dtype=torch.float16)
    expected = per_sample_then_collated(images, mean=from_preset.params.mean, std=from_preset.params.std)
    torch.testing.assert_close(from_preset(images), expected.half(), rtol=0, atol=0)


def test_pickles_for_worker_processes_and_repr_names_the_arguments(rng):
    collate = NormalizeCollate(normalization="min_max", dtype="bfloat16")
    restored = pickle.loads(pickle.dumps(collate))
    images = random_images(rng, np.uint8, (5, 6, 3))
    assert torch.equal(restored(images), collate(images))
    assert repr(restored) == repr(collate)
    assert "normalization='min_max'" in repr(collate) and "torch.bfloat16" in repr(collate)


class AugmentedImages(Dataset):
    """Deterministic uint8 HWC images through an A.Compose that stops before normalization."""

    def __init__(self, count: int = 10):
        self.count = count
        self.augment = A.Compose([A.HorizontalFlip(p=1.0)])

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int):
        rng = np.random.default_rng(index)
        image = rng.integers(0, 256, (16, 18, 3), dtype=np.uint8)
        return {**self.augment(image=image), "label": index}


def test_dataloader_workers_give_the_main_process_batches_through_shared_memory():
    collate = NormalizeCollate(normalization="image", dtype=torch.float16)
    in_process = list(DataLoader(AugmentedImages(), batch_size=4, collate_fn=collate))
    # forkserver: workers forked from a process whose thread pools ran can deadlock.
    loader = DataLoader(
        AugmentedImages(),
        batch_size=4,
        collate_fn=collate,
        num_workers=2,
        multiprocessing_context="forkserver",
    )
    in_workers = list(loader)
    assert [len(batch["label"]) for batch in in_workers] == [4, 4, 2]
    for batch, expected in zip(in_workers, in_process, strict=True):
        assert torch.equal(batch["image"], expected["image"])
        assert torch.equal(batch["label"], expected["label"])


def test_pin_memory_without_a_cuda_device_warns_that_it_does_nothing(rng, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("norm_transforms.adapters.collate._WARNED", set())
    images = random_images(rng, np.uint8, (5, 6, 3))
    with pytest.warns(UserWarning, match="no CUDA device"):
        batch = NormalizeCollate(pin_memory=True)(images)
    assert torch.equal(batch, NormalizeCollate()(images))


@pytest.mark.cuda
def test_pin_memory_pins_the_batch_for_a_non_blocking_copy(rng):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    batch = NormalizeCollate(pin_memory=True)(random_images(rng, np.uint8, (5, 6, 3)))
    assert batch.is_pinned()
    assert torch.equal(batch.to("cuda", non_blocking=True).cpu(), batch)


def test_a_wrong_max_pixel_value_warns_on_the_first_batch_only(rng):
    images = [make_image(rng, np.float32, (5, 6, 3), "random") for _ in range(2)]
    collate = NormalizeCollate(max_pixel_value=255.0)
    with pytest.warns(UserWarning, match="NormalizeCollate: .*max_pixel_value"):
        collate(images)
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("error")
        collate(images)


@pytest.mark.parametrize(
    ("samples", "error", "message"),
    [
        ([], ValueError, "non-empty list of samples"),
        ([{"img": np.zeros((2, 2, 3), np.uint8)}], TypeError, r"sample\['image'\] .* got NoneType"),
        ([("not an image", 1)], TypeError, r"sample\[0\] .* got str"),
        ([np.zeros((2, 2, 3, 1), np.uint8)], TypeError, r"got ndarray of shape \(2, 2, 3, 1\)"),
        ([torch.zeros(3, 4)], ValueError, r"\(C, H, W\) on the CPU; got shape \(3, 4\)"),
        (
            [np.zeros((4, 5, 3), np.uint8), np.zeros((4, 6, 3), np.uint8)],
            ValueError,
            r"sample 0 has uint8 \(4, 5, 3\), sample 1 uint8 \(4, 6, 3\)",
        ),
        (
            [np.zeros((4, 5, 3), np.uint8), np.zeros((4, 5, 3), np.uint16)],
            ValueError,
            r"sample 0 has uint8 \(4, 5, 3\), sample 1 uint16",
        ),
        ([np.zeros((4, 5, 3), np.int8)], TypeError, "int8"),
        ([np.zeros((0, 5, 3), np.uint8)], ValueError, "empty"),
    ],
)
def test_bad_batches_raise_saying_what_was_received(samples, error, message):
    with pytest.raises(error, match=message):
        NormalizeCollate()(samples)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"dtype": torch.float64}, TypeError, "dtype must be torch.float32, torch.float16 or torch.bfloat16"),
        ({"dtype": "half"}, TypeError, "got 'half'"),
        ({"pin_memory": "yes"}, TypeError, "pin_memory must be True or False"),
        ({"normalization": "bogus"}, ValueError, "normalization must be one of"),
        ({"std": 0}, ValueError, "std must contain only positive numbers"),
        ({"clip_range": (1, 0)}, ValueError, "clip_range"),
    ],
)
def test_bad_arguments_raise_at_construction_naming_them(kwargs, error, message):
    with pytest.raises(error, match=message):
        NormalizeCollate(**kwargs)
