"""``PRESETS``, ``get_preset`` and ``preset_from_timm``; ``from_preset`` / ``from_timm`` on
``Normalize``, ``TorchNormalize`` and ``NormalizeLayer`` against ``normalize`` on a real photo;
serialization; bad names and a missing timm.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import albumentations as A
import numpy as np
import pytest
import torch

from norm_transforms import (
    PRESETS,
    Normalize,
    NormalizeLayer,
    Preset,
    TorchNormalize,
    get_preset,
    normalize,
)
from norm_transforms.presets import preset_from_timm

# float32 output: a few ulps, and the Torch layer folds its constants its own way.
RTOL, ATOL = 1e-6, 1e-5

# The published constants, typed here from their sources rather than imported from them.
# ImageNet: torchvision models' docs and torchvision/transforms/_presets.py.
PUBLISHED_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# OpenAI CLIP: openai/CLIP clip/clip.py, _transform().
PUBLISHED_CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))


@pytest.fixture(scope="module")
def photo(photos) -> np.ndarray:
    """An RGB uint8 photograph (HWC)."""
    name = "grace_hopper.jpg" if "grace_hopper.jpg" in photos else next(iter(photos))
    return np.ascontiguousarray(photos[name][..., :3])


def expected_output(photo: np.ndarray, preset: Preset) -> np.ndarray:
    return normalize(photo, preset.mean, preset.std, max_pixel_value=255.0)


def as_chw(photo: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(photo).permute(2, 0, 1).contiguous()


def as_hwc(tensor: torch.Tensor) -> np.ndarray:
    return tensor.permute(1, 2, 0).numpy()


# --------------------------------------------------------------------------- the table


def test_published_imagenet_and_clip_constants_are_pinned():
    assert (PRESETS["imagenet"].mean, PRESETS["imagenet"].std) == PUBLISHED_IMAGENET
    assert (PRESETS["clip"].mean, PRESETS["clip"].std) == PUBLISHED_CLIP


def test_inception_maps_full_scale_to_minus_one_one_and_yolo_divides_by_255():
    assert PRESETS["inception"].mean == PRESETS["inception"].std == (0.5, 0.5, 0.5)
    assert (PRESETS["yolo"].mean, PRESETS["yolo"].std) == ((0.0,) * 3, (1.0,) * 3)
    ends = np.array([[[0, 0, 0], [255, 255, 255]]], np.uint8)
    inception = Normalize.from_preset("inception")(image=ends)["image"][0, :, 0]
    np.testing.assert_allclose(inception, [-1, 1], rtol=0, atol=1e-6)
    np.testing.assert_allclose(Normalize.from_preset("yolo")(image=ends)["image"][0, :, 0], [0, 1], atol=1e-6)


def test_caffe_style_presets_subtract_the_bgr_mean_in_pixel_units():
    pixel = np.array([[[103, 116, 123]]], np.uint8)  # B, G, R
    out = Normalize.from_preset("detectron2")(image=pixel)["image"][0, 0]
    np.testing.assert_allclose(out, [103 - 103.530, 116 - 116.280, 123 - 123.675], atol=1e-4)
    assert PRESETS["caffe"].channel_order == PRESETS["detectron2"].channel_order == "BGR"


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_names_its_source_and_models(name):
    preset = PRESETS[name]
    assert preset.name == name == name.lower()
    assert "/" in preset.source, "the source names a repository and file"
    assert preset.models
    assert len(preset.mean) == len(preset.std) == 3


def test_presets_cannot_be_changed():
    with pytest.raises(TypeError):
        PRESETS["mine"] = PRESETS["clip"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS["clip"].mean = (0.5, 0.5, 0.5)  # type: ignore[misc]


def test_a_custom_preset_is_validated_like_a_transform():
    with pytest.raises(ValueError, match="std must contain only positive numbers"):
        Preset(name="bad", mean=(0.5,), std=(0.0,), source="here", models="none")
    with pytest.raises(ValueError, match="channel_order"):
        Preset(name="bad", mean=(0.5,), std=(0.5,), source="here", models="none", channel_order="GBR")


# --------------------------------------------------------------------------- get_preset


def test_names_ignore_case_and_dashes_and_aliases_resolve():
    assert get_preset("ImageNet") is PRESETS["imagenet"]
    assert get_preset("OpenAI-CLIP") is PRESETS["clip"]
    assert get_preset("siglip") is PRESETS["inception"]
    assert get_preset(PRESETS["yolo"]) is PRESETS["yolo"]


def test_unknown_name_lists_the_known_presets_and_suggests_the_closest():
    with pytest.raises(ValueError, match="unknown preset 'clipp'; did you mean 'clip'") as error:
        get_preset("clipp")
    for name in PRESETS:
        assert name in str(error.value)


def test_a_name_that_is_not_a_string_is_a_type_error():
    with pytest.raises(TypeError, match="preset must be a name"):
        get_preset(3)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- from_preset


@pytest.mark.parametrize("name", list(PRESETS))
def test_normalize_from_preset_equals_normalize(photo, name):
    transform = Normalize.from_preset(name)
    np.testing.assert_array_equal(transform(image=photo)["image"], expected_output(photo, PRESETS[name]))


@pytest.mark.parametrize("name", list(PRESETS))
def test_torch_normalize_from_preset_equals_normalize(photo, name):
    out = TorchNormalize.from_preset(name)(as_chw(photo))
    np.testing.assert_allclose(as_hwc(out), expected_output(photo, PRESETS[name]), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", list(PRESETS))
def test_normalize_layer_from_preset_equals_normalize(photo, name):
    out = NormalizeLayer.from_preset(name)(as_chw(photo)[None])[0]
    np.testing.assert_allclose(as_hwc(out), expected_output(photo, PRESETS[name]), rtol=RTOL, atol=ATOL)


def test_torch_normalize_from_preset_reads_the_full_scale_from_the_dtype(photo):
    transform = TorchNormalize.from_preset("clip")
    assert transform.max_pixel_value is None
    sixteen_bit = as_chw(photo).to(torch.int32).mul(257).to(torch.uint16)
    np.testing.assert_allclose(
        as_hwc(transform(sixteen_bit)), expected_output(photo, PRESETS["clip"]), rtol=RTOL, atol=ATOL
    )


def test_from_preset_passes_the_other_arguments_through():
    assert Normalize.from_preset("clip", p=0.25).p == 0.25
    assert TorchNormalize.from_preset("clip", dtype=torch.float16).dtype == torch.float16
    assert NormalizeLayer.from_preset("clip", dtype=torch.bfloat16).dtype == torch.bfloat16
    assert NormalizeLayer.from_preset("clip", max_pixel_value=1.0).max_pixel_value == 1.0


def test_from_preset_refuses_a_mean_of_its_own():
    with pytest.raises(TypeError, match="mean"):
        Normalize.from_preset("clip", mean=0.5)


def test_from_preset_with_an_unknown_name_lists_the_presets():
    with pytest.raises(ValueError, match="known presets: imagenet"):
        NormalizeLayer.from_preset("imagenett")


def test_normalize_from_preset_round_trips_through_to_dict_and_json(photo):
    pipeline = A.Compose([Normalize.from_preset("clip", p=1.0)])
    serialized = A.to_dict(pipeline)["transform"]["transforms"][0]
    assert serialized["mean"] == PUBLISHED_CLIP[0]
    assert serialized["std"] == PUBLISHED_CLIP[1]
    rebuilt = A.from_dict(json.loads(json.dumps(A.to_dict(pipeline)))).transforms[0]
    assert type(rebuilt) is Normalize
    np.testing.assert_array_equal(rebuilt(image=photo)["image"], pipeline(image=photo)["image"])


def test_normalize_layer_from_preset_round_trips_through_a_state_dict(photo):
    batch = as_chw(photo)[None]
    saved = NormalizeLayer.from_preset("clip")
    loaded = NormalizeLayer()
    loaded.load_state_dict(saved.state_dict())
    assert torch.equal(loaded(batch), saved(batch))
    assert loaded.mean.tolist() == list(PUBLISHED_CLIP[0])


# --------------------------------------------------------------------------- timm


@pytest.fixture(scope="module")
def timm():
    return pytest.importorskip("timm")


@pytest.fixture(scope="module")
def timm_models(timm) -> dict:
    """Models created without weights: a ResNet (ImageNet constants) and a ViT (0.5 / 0.5)."""
    return {name: timm.create_model(name, pretrained=False) for name in ("resnet18", "vit_tiny_patch16_224")}


@pytest.mark.parametrize("model_name", ["resnet18", "vit_tiny_patch16_224"])
def test_preset_from_a_timm_model_has_its_pretrained_cfg(timm_models, model_name):
    model = timm_models[model_name]
    preset = preset_from_timm(model)
    assert preset.mean == tuple(model.pretrained_cfg["mean"])
    assert preset.std == tuple(model.pretrained_cfg["std"])
    assert preset.name == f"timm:{model_name}.{model.pretrained_cfg['tag']}"


def test_the_resnet_and_the_vit_get_different_constants(timm_models):
    assert preset_from_timm(timm_models["resnet18"]).mean == PUBLISHED_IMAGENET[0]
    assert preset_from_timm(timm_models["vit_tiny_patch16_224"]).mean == (0.5, 0.5, 0.5)


@pytest.mark.parametrize("model_name", ["resnet18", "vit_tiny_patch16_224"])
def test_a_timm_model_name_gives_the_cfg_create_model_attaches(timm_models, model_name):
    from_name = preset_from_timm(model_name)
    from_model = preset_from_timm(timm_models[model_name])
    assert dataclasses.astuple(from_name) == dataclasses.astuple(from_model)


def test_a_timm_cfg_dict_or_pretrained_cfg_object_works(timm):
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg("resnet18")
    assert preset_from_timm(cfg).mean == tuple(cfg.mean)
    assert preset_from_timm(cfg.to_dict()).std == tuple(cfg.std)


@pytest.mark.parametrize("model_name", ["resnet18", "vit_tiny_patch16_224"])
def test_every_transform_from_timm_equals_normalize_with_the_cfg(photo, timm_models, model_name):
    model = timm_models[model_name]
    expected = normalize(photo, model.pretrained_cfg["mean"], model.pretrained_cfg["std"], 255.0)
    np.testing.assert_array_equal(Normalize.from_timm(model)(image=photo)["image"], expected)
    torch_out = as_hwc(TorchNormalize.from_timm(model)(as_chw(photo)))
    np.testing.assert_allclose(torch_out, expected, rtol=RTOL, atol=ATOL)
    layer_out = as_hwc(NormalizeLayer.from_timm(model, dtype=torch.float32)(as_chw(photo)[None])[0])
    np.testing.assert_allclose(layer_out, expected, rtol=RTOL, atol=ATOL)


def test_a_timm_cfg_without_mean_and_std_is_refused():
    with pytest.raises(ValueError, match="no mean/std"):
        preset_from_timm({"architecture": "mystery", "mean": (0.5,) * 3})


def test_an_unknown_timm_model_name_is_refused(timm):
    with pytest.raises(ValueError, match="timm has no pretrained config for 'no_such_model'"):
        preset_from_timm("no_such_model")


def test_a_model_name_without_timm_installed_says_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)
    monkeypatch.setitem(sys.modules, "timm.models", None)
    with pytest.raises(ImportError, match="needs timm: pip install timm"):
        preset_from_timm("resnet18")
    # A cfg in hand needs no timm.
    assert preset_from_timm({"mean": (0.5,) * 3, "std": (0.5,) * 3}).name == "timm"


# --------------------------------------------------------------------------- the package


def test_package_exports_presets_and_plot_without_importing_optional_dependencies():
    code = (
        "import sys, norm_transforms as nt\n"
        "assert nt.get_preset('clip') is nt.PRESETS['clip'] and callable(nt.plot_histograms)\n"
        "assert {'PRESETS', 'Preset', 'get_preset', 'plot_histograms'} <= set(nt.__all__)\n"
        "loaded = [m for m in ('torch', 'albumentations', 'matplotlib', 'timm') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("name", "preset"),
    [
        ("Image-Net", "imagenet"),
        ("IMAGENET", "imagenet"),
        (" image net ", "imagenet"),
        ("open_clip", "clip"),
        ("OpenCLIP", "clip"),
        ("open-clip", "clip"),
        ("EVA-CLIP", "clip"),
        ("in1k", "imagenet"),
        ("Inception-v3", "inception"),
        ("YOLOv8", "yolo"),
        ("vgg-caffe", "caffe"),
    ],
)
def test_names_match_whatever_the_case_spaces_dashes_and_underscores(name, preset):
    assert get_preset(name) is PRESETS[preset]
