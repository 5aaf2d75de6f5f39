"""Hugging Face image-processor configs: ``from_hf`` on every transform,
``normalize_kwargs_from_hf`` and ``to_hf_config``.

Parity is measured against ``transformers`` itself, on the same uint8 images (a photograph,
random pixels, every level 0..255) and float images: the processor's ``preprocess`` with
resizing and cropping off runs exactly its rescale and normalize steps. Every processor is
built locally (its class, or ``AutoImageProcessor.from_pretrained`` on a folder written
here): nothing is downloaded. Both of transformers' backends are compared where the class has
them (``XImageProcessor``, torchvision, and ``XImageProcessorPil``, NumPy; ``...Fast`` for
transformers 4).

Neither backend is bit-identical to the other: the torchvision one folds ``rescale_factor``
into mean and std (``(x - mean / r) / (std / r)`` in float32), the NumPy one rescales in
float64, rounds to float32 and then normalizes in float32. We compute
``(x - mean * max_pixel_value) * (1 / (std * max_pixel_value))`` from float64 constants, so
the parity bound is a few float32 steps of the output's magnitude (PROCESSOR_ULPS); measured
here, at most 2 steps (4.8e-7 for the CLIP constants), as much as the two backends differ from
each other; 4 where EfficientNet's include_top divides a second time (the processor rounds
twice more). Our own output is within 1.5 steps of the float64 value (EXACT_ULPS).
"""

from __future__ import annotations

import inspect
import json
import math
import subprocess
import sys
import types

import albumentations as A
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from norm_transforms import (
    PRESETS,
    Denormalize,
    DenormalizeLayer,
    Normalize,
    NormalizeLayer,
    NormalizeToTensor,
    TorchDenormalize,
    TorchNormalize,
    normalize,
)
from norm_transforms.presets import HF_CONFIG_KEYS, normalize_kwargs_from_hf, to_hf_config

# Our output against the processor's: at most this many float32 steps (spacing) of the largest
# output magnitude. Measured: 1 to 2 (see the module docstring).
PROCESSOR_ULPS = 3
# Our output against the float64 value of the same formula: measured up to 1.5 steps.
EXACT_ULPS = 2

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

# Processor settings as in their configs. "wide" has per-channel constants far from any
# preset's (a std of 0.07 maps full scale to ~10); "chameleon" rescales by 0.0078, not 1/255.
CONFIGS = {
    "vit": {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]},
    "clip": {"image_mean": CLIP_MEAN, "image_std": CLIP_STD},
    "imagenet": {"image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]},
    "wide": {"image_mean": [0.3, 0.6, 0.1], "image_std": [0.07, 0.5, 0.9]},
    "chameleon": {"rescale_factor": 0.0078, "image_mean": [1.0, 1.0, 1.0], "image_std": [1.0, 1.0, 1.0]},
    "scalar": {"image_mean": 0.5, "image_std": 0.25},  # Fuyu's form: one number for every channel
    "rescale_only": {"do_normalize": False},  # RT-DETR, Gemma 4: x * rescale_factor
}

# The keys our configs hold, as a processor's save_pretrained writes them.
FULL = {"do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True}

# The oldest Hub configs, written by the feature extractors: no do_rescale, no rescale_factor
# (openai/clip-vit-base-patch32 and google/vit-base-patch16-224, typed here from the Hub).
FEATURE_EXTRACTOR_CONFIGS = {
    "clip": {
        "crop_size": 224,
        "do_center_crop": True,
        "do_normalize": True,
        "do_resize": True,
        "feature_extractor_type": "CLIPFeatureExtractor",
        "image_mean": CLIP_MEAN,
        "image_std": CLIP_STD,
        "resample": 3,
        "size": 224,
    },
    "vit": {
        "do_normalize": True,
        "do_resize": True,
        "feature_extractor_type": "ViTFeatureExtractor",
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
        "resample": 2,
        "size": 224,
    },
}


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def transformers():
    module = pytest.importorskip("transformers")
    module.logging.set_verbosity_error()  # "rescale already rescaled images" for float input
    return module


def backends(transformers, family: str) -> list:
    """The processor classes of a family, one per backend transformers has for it."""
    names = (f"{family}ImageProcessor", f"{family}ImageProcessorFast", f"{family}ImageProcessorPil")
    found = [getattr(transformers, name) for name in names if hasattr(transformers, name)]
    assert found, f"transformers has no {family} image processor"
    return found


def processed(processor, image: np.ndarray) -> np.ndarray:
    """What the processor's rescale and normalize steps make of an HWC image, as HWC."""
    out = processor(image, do_resize=False, do_center_crop=False, return_tensors="np")["pixel_values"]
    out = np.asarray(out)
    return out.reshape(-1, *out.shape[-3:])[0].transpose(1, 2, 0)


def ulp_of_largest(values: np.ndarray) -> float:
    """One float32 step at the largest magnitude of ``values``."""
    return float(np.spacing(np.float32(np.abs(values).max())))


def assert_processor_parity(ours: np.ndarray, theirs: np.ndarray, ulps: float = PROCESSOR_ULPS) -> None:
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    theirs = np.asarray(theirs, dtype=np.float32)
    bound = ulps * ulp_of_largest(theirs)
    difference = float(np.abs(ours.astype(np.float64) - theirs).max())
    assert difference <= bound, f"max |ours - processor| = {difference:.3g} > {bound:.3g}"


def assert_exact_to_float32(ours: np.ndarray, image: np.ndarray, kwargs: dict) -> None:
    """Our output within EXACT_ULPS float32 steps of the float64 value of the formula."""
    scale = kwargs["max_pixel_value"]
    exact = (image.astype(np.float64) - np.asarray(kwargs["mean"]) * scale) / (
        np.asarray(kwargs["std"]) * scale
    )
    difference = float(np.abs(ours.astype(np.float64) - exact).max())
    assert difference <= EXACT_ULPS * ulp_of_largest(exact), f"max |ours - exact| = {difference:.3g}"


def as_chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).contiguous()


def as_hwc(tensor: torch.Tensor) -> np.ndarray:
    return tensor.permute(1, 2, 0).numpy()


@pytest.fixture(scope="module")
def images(photos) -> dict[str, np.ndarray]:
    """uint8 RGB images: a photograph, random pixels, and every level in every channel."""
    photo = photos["grace_hopper.jpg"] if "grace_hopper.jpg" in photos else next(iter(photos.values()))
    rng = np.random.default_rng(14)
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    return {
        "photo": np.ascontiguousarray(photo[..., :3]),
        "random": rng.integers(0, 256, (37, 53, 3), dtype=np.uint8),
        "levels": np.stack([levels, levels.T, 255 - levels], axis=-1),
    }


# --------------------------------------------------------------------------- parity: NumPy


@pytest.mark.parametrize("family", ["ViT", "CLIP"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_normalize_from_hf_matches_the_processor(transformers, images, family, name):
    for cls in backends(transformers, family):
        processor = cls(**CONFIGS[name])
        transform = Normalize.from_hf(processor)
        kwargs = normalize_kwargs_from_hf(processor)
        for image in images.values():
            ours = transform(image=image)["image"]
            assert_processor_parity(ours, processed(processor, image))
            assert_exact_to_float32(ours, image, kwargs)
            np.testing.assert_array_equal(ours, normalize(image, **kwargs))


@pytest.mark.parametrize("family", ["ViT", "CLIP"])
def test_float_images_without_rescaling_match_the_processor(transformers, images, family):
    image = (images["photo"] / 255.0).astype(np.float32)
    for cls in backends(transformers, family):
        processor = cls(do_rescale=False, image_mean=CLIP_MEAN, image_std=CLIP_STD)
        assert normalize_kwargs_from_hf(processor)["max_pixel_value"] == 1.0
        assert_processor_parity(
            Normalize.from_hf(processor)(image=image)["image"], processed(processor, image)
        )


def test_a_grayscale_processor_matches(transformers, images):
    gray = np.ascontiguousarray(images["photo"][..., :1])
    for cls in backends(transformers, "ViT"):
        processor = cls(image_mean=[0.45], image_std=[0.22])
        ours = Normalize.from_hf(processor)(image=gray)["image"]
        assert_processor_parity(ours.reshape(gray.shape), processed(processor, gray))


@pytest.mark.parametrize("include_top", [True, False])
@pytest.mark.parametrize("rescale_offset", [True, False])
@pytest.mark.parametrize("do_normalize", [True, False])
def test_efficientnet_offset_and_include_top_fold_into_mean_and_std(
    transformers, images, include_top, rescale_offset, do_normalize
):
    # include_top divides by image_std a second time; rescale_offset subtracts 1 after rescaling.
    # Two divisions and a subtraction each rounded to float32: the processor is up to 3 steps
    # from the exact value, its two backends differ by up to 3 steps, and we by up to 4 from
    # either (1.4 steps from the exact value).
    ulps = 5 if include_top else PROCESSOR_ULPS
    for cls in backends(transformers, "EfficientNet"):
        processor = cls(
            include_top=include_top,
            rescale_offset=rescale_offset,
            do_normalize=do_normalize,
            image_mean=CLIP_MEAN,
            image_std=CLIP_STD,
        )
        for config in (processor, processor.to_dict()):
            ours = Normalize.from_hf(config)(image=images["random"])["image"]
            assert_processor_parity(ours, processed(processor, images["random"]), ulps)
            assert_exact_to_float32(ours, images["random"], normalize_kwargs_from_hf(config))


def test_vivit_offset_rescales_to_minus_one_one(transformers, images):
    processor = transformers.VivitImageProcessor()  # rescale_factor 1/127.5, offset: x / 127.5 - 1
    assert normalize_kwargs_from_hf(processor)["max_pixel_value"] == 127.5
    out = np.asarray(
        processor([images["photo"]], do_resize=False, do_center_crop=False, return_tensors="np")[
            "pixel_values"
        ]
    )
    theirs = out.reshape(-1, *out.shape[-3:])[0].transpose(1, 2, 0)
    assert_processor_parity(Normalize.from_hf(processor.to_dict())(image=images["photo"])["image"], theirs)


def test_chameleon_processor_matches(transformers, images):
    processor = transformers.ChameleonImageProcessor()
    assert normalize_kwargs_from_hf(processor)["max_pixel_value"] == 1 / 0.0078
    assert_processor_parity(
        Normalize.from_hf(processor)(image=images["photo"])["image"], processed(processor, images["photo"])
    )


# --------------------------------------------------------------------------- parity: Torch


@pytest.mark.parametrize("name", list(CONFIGS))
def test_torch_normalize_and_layer_from_hf_match_the_processor(transformers, images, name):
    for cls in backends(transformers, "CLIP"):
        processor = cls(**CONFIGS[name])
        for image in images.values():
            theirs = processed(processor, image)
            chw = as_chw(image)
            assert_processor_parity(as_hwc(TorchNormalize.from_hf(processor)(chw)), theirs)
            assert_processor_parity(as_hwc(NormalizeLayer.from_hf(processor)(chw[None])[0]), theirs)
            assert_processor_parity(
                as_hwc(NormalizeToTensor.from_hf(processor)(image=image)["image"]), theirs
            )


def test_the_torchvision_backend_on_tensors_matches_torch_normalize(transformers, images):
    # The torchvision backend takes CHW uint8 tensors and returns tensors: the same numbers.
    processor = backends(transformers, "CLIP")[0](**CONFIGS["clip"])
    chw = as_chw(images["photo"])
    theirs = processor(chw, do_resize=False, do_center_crop=False, return_tensors="pt")["pixel_values"][0]
    ours = TorchNormalize.from_hf(processor)(chw)
    assert ours.dtype == theirs.dtype == torch.float32
    assert_processor_parity(as_hwc(ours), as_hwc(theirs))


# --------------------------------------------------------------------------- the forms of config


def test_a_file_a_folder_a_dict_and_the_processor_give_the_same_transform(transformers, tmp_path):
    processor = transformers.CLIPImageProcessor(**CONFIGS["wide"], rescale_factor=1 / 65535)
    processor.save_pretrained(tmp_path)
    expected = {"mean": (0.3, 0.6, 0.1), "std": (0.07, 0.5, 0.9), "max_pixel_value": 65535.0}
    file = tmp_path / "preprocessor_config.json"
    for config in (processor, processor.to_dict(), tmp_path, str(tmp_path), file, str(file)):
        assert normalize_kwargs_from_hf(config) == expected
    holder = types.SimpleNamespace(image_processor=processor)  # as CLIPProcessor holds it
    assert normalize_kwargs_from_hf(holder) == expected


@pytest.mark.parametrize("name", list(FEATURE_EXTRACTOR_CONFIGS))
def test_feature_extractor_configs_get_the_defaults_transformers_gives_them(
    transformers, images, tmp_path, name
):
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(FEATURE_EXTRACTOR_CONFIGS[name]))
    from_file = normalize_kwargs_from_hf(tmp_path)
    assert from_file["max_pixel_value"] == 255.0
    for backend in ("torchvision", "pil"):
        loaded = transformers.AutoImageProcessor.from_pretrained(tmp_path, backend=backend)
        assert normalize_kwargs_from_hf(loaded) == from_file
        ours = Normalize.from_hf(tmp_path)(image=images["photo"])["image"]
        assert_processor_parity(ours, processed(loaded, images["photo"]))


def test_processors_without_constants_are_refused_naming_the_key(transformers):
    with pytest.raises(ValueError, match=r"has no 'do_normalize'.*only rescale"):
        Normalize.from_hf(transformers.Swin2SRImageProcessor())
    with pytest.raises(ValueError, match="has no 'do_normalize'"):
        TorchNormalize.from_hf(transformers.SuperPointImageProcessor().to_dict())
    with pytest.raises(ValueError, match=r"has no 'image_mean'.*Pix2Struct"):
        NormalizeLayer.from_hf(transformers.Pix2StructImageProcessor())


def test_rescaling_alone_is_mean_zero_std_one():
    kwargs = normalize_kwargs_from_hf({"do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": False})
    assert kwargs == {"mean": (0.0,), "std": (1.0,), "max_pixel_value": 255.0}
    # Nothing at all: the pixels as float32, as given.
    kwargs = normalize_kwargs_from_hf({"do_rescale": False, "do_normalize": False})
    assert kwargs == {"mean": (0.0,), "std": (1.0,), "max_pixel_value": 1.0}


# --------------------------------------------------------------------------- our configs, back


def standard_transforms() -> dict[str, object]:
    return {
        "Normalize": Normalize(CLIP_MEAN, CLIP_STD, max_pixel_value=255.0),
        "Normalize 16-bit": Normalize(CLIP_MEAN, CLIP_STD, max_pixel_value=65535.0),
        "Normalize 12-bit": Normalize((0.1, 0.2, 0.3), (0.4, 0.5, 0.6), max_pixel_value=4095.0),
        "Normalize float": Normalize(0.5, 0.25, max_pixel_value=1.0),
        "Normalize 49": Normalize(0.5, 0.25, max_pixel_value=49.0),  # 1 / (1 / 49) is not 49
        "TorchNormalize": TorchNormalize(CLIP_MEAN, CLIP_STD, max_pixel_value=255.0),
        "NormalizeLayer": NormalizeLayer(CLIP_MEAN, CLIP_STD),
        "NormalizeToTensor": NormalizeToTensor(CLIP_MEAN, CLIP_STD),
        "Denormalize": Denormalize(CLIP_MEAN, CLIP_STD),
        "TorchDenormalize": TorchDenormalize(CLIP_MEAN, CLIP_STD, max_pixel_value=255.0),
        "DenormalizeLayer": DenormalizeLayer(CLIP_MEAN, CLIP_STD),
    }


@pytest.mark.parametrize("name", list(standard_transforms()))
def test_our_config_reads_back_as_the_same_transform(name):
    transform = standard_transforms()[name]
    config = json.loads(json.dumps(to_hf_config(transform)))
    assert tuple(config) == HF_CONFIG_KEYS
    rebuilt = type(transform).from_hf(config)
    for attribute in ("mean", "std"):
        original, again = getattr(transform, attribute), getattr(rebuilt, attribute)
        if isinstance(original, torch.Tensor):
            assert torch.equal(original, again)
        else:
            assert as_floats(original) == as_floats(again)
    assert float(rebuilt.max_pixel_value) == float(transform.max_pixel_value)


def as_floats(value) -> tuple[float, ...]:
    return tuple(float(v) for v in np.atleast_1d(value))


def test_our_config_gives_the_same_numbers_as_the_transform(images):
    transform = Normalize(CLIP_MEAN, CLIP_STD, max_pixel_value=255.0)
    rebuilt = Normalize.from_hf(to_hf_config(transform))
    for image in images.values():
        np.testing.assert_array_equal(rebuilt(image=image)["image"], transform(image=image)["image"])
    layer = NormalizeLayer.from_hf(to_hf_config(NormalizeLayer(CLIP_MEAN, CLIP_STD)))
    batch = as_chw(images["photo"])[None]
    assert torch.equal(layer(batch), NormalizeLayer(CLIP_MEAN, CLIP_STD)(batch))


@pytest.mark.parametrize("name", ["imagenet", "clip", "inception", "yolo", "dpn"])
def test_a_config_we_write_loads_in_transformers_with_the_same_numbers(transformers, images, tmp_path, name):
    config = {"image_processor_type": "ViTImageProcessor", **to_hf_config(name), "do_resize": False}
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(config, indent=2))
    expected = Normalize.from_preset(name)(image=images["photo"])["image"]
    for backend in ("torchvision", "pil"):
        loaded = transformers.AutoImageProcessor.from_pretrained(tmp_path, backend=backend)
        assert_processor_parity(expected, processed(loaded, images["photo"]))
    for cls in backends(transformers, "ViT"):  # or straight into a constructor
        assert_processor_parity(expected, processed(cls(**to_hf_config(name)), images["photo"]))


def test_a_float_transform_writes_do_rescale_false(transformers, images):
    transform = Normalize(CLIP_MEAN, CLIP_STD, max_pixel_value=1.0)
    config = to_hf_config(transform)
    assert config["do_rescale"] is False and config["rescale_factor"] == 1.0
    image = (images["photo"] / 255.0).astype(np.float32)
    for cls in backends(transformers, "ViT"):
        assert_processor_parity(transform(image=image)["image"], processed(cls(**config), image))


def test_presets_and_scalars_write_as_processors_read_them():
    assert (
        to_hf_config("clip")
        == to_hf_config(PRESETS["clip"])
        == {
            "do_rescale": True,
            "rescale_factor": 1 / 255,
            "do_normalize": True,
            "image_mean": CLIP_MEAN,
            "image_std": CLIP_STD,
        }
    )
    assert to_hf_config("clip", max_pixel_value=65535.0)["rescale_factor"] == 1 / 65535
    scalar = to_hf_config(Normalize(0.5, 0.25, max_pixel_value=255.0))
    assert (scalar["image_mean"], scalar["image_std"]) == (0.5, 0.25)
    # TorchNormalize's default max_pixel_value (the dtype's full scale): 8-bit, as processors take.
    assert to_hf_config(TorchNormalize(CLIP_MEAN, CLIP_STD))["rescale_factor"] == 1 / 255


def test_a_learnable_layer_writes_its_current_constants():
    if "learnable" not in inspect.signature(NormalizeLayer).parameters:
        pytest.skip("NormalizeLayer has no learnable=")
    layer = NormalizeLayer(CLIP_MEAN, CLIP_STD)
    learnable = NormalizeLayer(CLIP_MEAN, CLIP_STD, learnable=True)
    config = to_hf_config(learnable)
    np.testing.assert_allclose(config["image_std"], layer.std.tolist(), rtol=1e-6)
    np.testing.assert_allclose(config["image_mean"], layer.mean.tolist(), rtol=1e-6)


@settings(max_examples=200, deadline=None)
@given(
    mean=st.lists(st.floats(-2.0, 2.0), min_size=1, max_size=4),
    std=st.floats(1e-3, 10.0),
    max_pixel_value=st.one_of(
        st.sampled_from([1.0, 49.0, 255.0, 1023.0, 4095.0, 65535.0, 127.5]), st.floats(1e-2, 1e6)
    ),
)
def test_any_parameters_read_back_within_rounding(mean, std, max_pixel_value):
    transform = Normalize(mean, std, max_pixel_value=max_pixel_value)
    kwargs = normalize_kwargs_from_hf(json.loads(json.dumps(to_hf_config(transform))))
    assert kwargs["mean"] == tuple(mean) and kwargs["std"] == (std,)
    # The reciprocal of the reciprocal: exact for every value that is the shortest decimal of
    # its reciprocal's reciprocal (integers, 127.5...), else within float64 rounding.
    assert 1.0 / kwargs["max_pixel_value"] == 1.0 / max_pixel_value
    assert math.isclose(kwargs["max_pixel_value"], max_pixel_value, rel_tol=4e-16)
    if float(max_pixel_value).is_integer() or max_pixel_value == 127.5:
        assert kwargs["max_pixel_value"] == max_pixel_value


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("config", "error", "message"),
    [
        ({"do_rescale": True}, ValueError, "has no 'do_normalize'"),
        ({"do_normalize": True, "image_std": [0.5]}, ValueError, "has no 'image_mean'"),
        ({"do_normalize": True, "image_mean": [0.5]}, ValueError, "has no 'image_std'"),
        (
            {**FULL, "do_normalize": "yes", "image_mean": 0.5, "image_std": 0.5},
            TypeError,
            "'do_normalize' must be true or false",
        ),
        (
            {**FULL, "do_rescale": 1, "image_mean": 0.5, "image_std": 0.5},
            TypeError,
            "'do_rescale' must be true or false",
        ),
        (
            {**FULL, "rescale_factor": "1/255", "image_mean": 0.5, "image_std": 0.5},
            TypeError,
            "'rescale_factor' must be a number",
        ),
        (
            {**FULL, "rescale_factor": True, "image_mean": 0.5, "image_std": 0.5},
            TypeError,
            "'rescale_factor' must be a number",
        ),
        (
            {**FULL, "rescale_factor": 0, "image_mean": 0.5, "image_std": 0.5},
            ValueError,
            "'rescale_factor' must be a positive",
        ),
        (
            {**FULL, "rescale_factor": -1 / 255, "image_mean": 0.5, "image_std": 0.5},
            ValueError,
            "'rescale_factor' must be a positive",
        ),
        (
            {**FULL, "image_mean": "0.5", "image_std": 0.5},
            TypeError,
            "'image_mean' must be a number or a sequence",
        ),
        (
            {**FULL, "image_mean": [0.5, "a"], "image_std": 0.5},
            TypeError,
            "'image_mean' must contain only real numbers",
        ),
        (
            {**FULL, "image_mean": [], "image_std": 0.5},
            ValueError,
            "'image_mean' must have at least one value",
        ),
        (
            {**FULL, "image_mean": 0.5, "image_std": [0.5, 0.0]},
            ValueError,
            "'image_std' must contain only positive",
        ),
        (
            {**FULL, "image_mean": [0.5, 0.5], "image_std": [1, 1, 1]},
            ValueError,
            "mean has 2 values and std 3",
        ),
        (
            {**FULL, "image_mean": 0.5, "image_std": 0.5, "include_top": "no"},
            TypeError,
            "'include_top' must be true or false",
        ),
        (
            {
                "image_processor_type": "EfficientNetImageProcessor",
                **FULL,
                "image_mean": 0.5,
                "image_std": 0.5,
            },
            ValueError,
            "no 'include_top', and EfficientNetImageProcessor has its own default",
        ),
        (
            {"image_processor_type": "VivitImageProcessor", **FULL, "image_mean": 0.5, "image_std": 0.5},
            ValueError,
            "no 'offset'",
        ),
        (
            {
                "image_processor_type": "ChameleonImageProcessor",
                "do_normalize": True,
                "image_mean": 1,
                "image_std": 1,
            },
            ValueError,
            "no 'rescale_factor'",
        ),
        (3, TypeError, "config must be the path of a preprocessor_config.json"),
    ],
)
def test_bad_configs_are_refused_naming_the_key(config, error, message):
    with pytest.raises(error, match=message):
        normalize_kwargs_from_hf(config)


def test_files_that_are_not_configs_are_refused_naming_the_file(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"do_normalize": true,')
    with pytest.raises(ValueError, match=r"broken\.json' is not a JSON preprocessor config"):
        Normalize.from_hf(broken)
    listed = tmp_path / "listed.json"
    listed.write_text("[1, 2]")
    with pytest.raises(TypeError, match="holds a JSON list"):
        Normalize.from_hf(listed)
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(ValueError, match="is not a JSON preprocessor config"):
        Normalize.from_hf(binary)
    with pytest.raises(FileNotFoundError, match=r"no preprocessor config at .*preprocessor_config\.json"):
        Normalize.from_hf(tmp_path)  # a folder without one
    with pytest.raises(FileNotFoundError, match="reads local files only"):
        Normalize.from_hf("openai/clip-vit-base-patch32")


def test_from_hf_takes_other_arguments_but_not_the_configs_own():
    config = {**FULL, "image_mean": CLIP_MEAN, "image_std": CLIP_STD}
    assert Normalize.from_hf(config, p=0.25).p == 0.25
    assert TorchNormalize.from_hf(config, dtype=torch.float16).dtype == torch.float16
    with pytest.raises(TypeError, match="max_pixel_value"):
        Normalize.from_hf(config, max_pixel_value=1.0)


def test_from_hf_round_trips_through_albumentations_serialization(images):
    pipeline = A.Compose([Normalize.from_hf({**FULL, "image_mean": CLIP_MEAN, "image_std": CLIP_STD}, p=1.0)])
    rebuilt = A.from_dict(json.loads(json.dumps(A.to_dict(pipeline))))
    np.testing.assert_array_equal(
        rebuilt(image=images["photo"])["image"], pipeline(image=images["photo"])["image"]
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (Normalize(normalization="image"), "normalization='image'"),
        (Normalize(clip_range=(-1.0, 1.0)), "clips its output"),
        ("caffe", "preset 'caffe' is BGR"),
        (object(), "to_hf_config takes a transform with mean and std"),
    ],
)
def test_what_no_processor_config_can_say_is_refused(source, message):
    with pytest.raises((ValueError, TypeError), match=message):
        to_hf_config(source)


def test_a_second_max_pixel_value_must_agree():
    transform = Normalize(CLIP_MEAN, CLIP_STD, max_pixel_value=255.0)
    assert to_hf_config(transform, max_pixel_value=255) == to_hf_config(transform)
    with pytest.raises(ValueError, match=r"differs from the Normalize's own max_pixel_value=255\.0"):
        to_hf_config(transform, max_pixel_value=1.0)


def test_reading_configs_needs_no_transformers():
    code = (
        "import sys\n"
        "from norm_transforms.presets import normalize_kwargs_from_hf, to_hf_config\n"
        "assert normalize_kwargs_from_hf(to_hf_config('clip'))['max_pixel_value'] == 255.0\n"
        "assert 'transformers' not in sys.modules and 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
