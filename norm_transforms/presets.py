"""Normalization constants of widely used model families, as data, each with its source.

Every preset's ``mean`` and ``std`` are fractions of full scale (the ``torchvision.Normalize``
convention, also timm's ``pretrained_cfg``): with 8-bit input use ``max_pixel_value=255``, or
``max_pixel_value=None`` for any dtype. So a preset carries no ``max_pixel_value`` of its own and
each transform keeps its default: 255 for ``Normalize`` and ``NormalizeLayer``, the dtype's full
scale for ``TorchNormalize``.

>>> from norm_transforms import get_preset
>>> get_preset("clip").mean
(0.48145466, 0.4578275, 0.40821073)

Hugging Face image processors keep the same numbers in a ``preprocessor_config.json``
(``do_rescale``, ``rescale_factor``, ``do_normalize``, ``image_mean``, ``image_std``):
:func:`normalize_kwargs_from_hf` reads one, ``from_hf`` builds a transform from it and
:func:`to_hf_config` writes our parameters back as those keys.
"""

from __future__ import annotations

import difflib
import json
import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeVar

import numpy as np

from .modes import IMAGENET_MEAN, IMAGENET_STD, NormalizeParams, _as_values


@dataclass(frozen=True, kw_only=True)
class Preset:
    """The ``mean`` and ``std`` a model family was trained with, and where they come from.

    ``mean`` and ``std`` are fractions of full scale, one per channel in ``channel_order``: the
    two Caffe-style presets expect BGR images (as ``cv2.imread`` returns them), every other
    preset RGB. ``source`` names the repository and file the numbers were taken from;
    ``models`` says which model families use them.

    >>> Preset(name="mine", mean=(0.5,), std=(0.25,), source="measured", models="my model").std
    (0.25,)
    """

    name: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str
    models: str
    channel_order: Literal["RGB", "BGR"] = "RGB"

    def __post_init__(self) -> None:
        # The same checks (and messages) as every transform, so a bad custom preset fails here.
        params = NormalizeParams.build(self.mean, self.std, 255.0, "standard")
        object.__setattr__(self, "mean", params.mean)
        object.__setattr__(self, "std", params.std)
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be 'RGB' or 'BGR', got {self.channel_order!r}")


def _per_pixel_value(values: tuple[float, ...]) -> tuple[float, ...]:
    """Constants published in 0..255 pixel units, as fractions of full scale."""
    return tuple(value / 255.0 for value in values)


_PRESET_LIST = (
    Preset(
        name="imagenet",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        source="pytorch/vision torchvision/transforms/_presets.py (ImageClassification); "
        "huggingface/pytorch-image-models timm/data/constants.py (IMAGENET_DEFAULT_MEAN/STD); "
        "facebookresearch/dinov2 dinov2/data/transforms.py; "
        "facebookresearch/segment-anything segment_anything/modeling/sam.py (x 255)",
        models="torchvision classification models; timm ResNet, ConvNeXt, EfficientNet, DeiT, Swin, "
        "BEiT v2, MAE; DINOv2; SAM; open_clip CLIPA; Keras applications mode='torch'",
    ),
    Preset(
        name="clip",
        mean=(0.48145466, 0.4578275, 0.40821073),
        std=(0.26862954, 0.26130258, 0.27577711),
        source="openai/CLIP clip/clip.py (_transform); "
        "mlfoundations/open_clip src/open_clip/constants.py (OPENAI_DATASET_MEAN/STD); "
        "timm/data/constants.py (OPENAI_CLIP_MEAN/STD)",
        models="OpenAI CLIP; open_clip's default for LAION, DataComp and MetaCLIP weights; "
        "EVA-CLIP and EVA02 in timm",
    ),
    Preset(
        name="inception",
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        source="timm/data/constants.py (IMAGENET_INCEPTION_MEAN/STD, the default of "
        "timm/models/vision_transformer.py); mlfoundations/open_clip src/open_clip/pretrained.py "
        "(_slpcfg: INCEPTION_MEAN/STD for SigLIP); keras-team/keras-applications "
        "keras_applications/imagenet_utils.py (mode='tf': x / 127.5 - 1)",
        models="Inception v3/v4, Xception; timm ViT (AugReg), BEiT v1, SigLIP; "
        "TensorFlow ports (tf_* in timm, Keras mode='tf'); maps [0, 1] to [-1, 1]",
    ),
    Preset(
        name="yolo",
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        source="ultralytics/ultralytics ultralytics/engine/predictor.py (preprocess: im /= 255); "
        "ultralytics/yolov5 detect.py",
        models="Ultralytics YOLOv5, YOLOv8, YOLO11 (divide by 255, no centering)",
    ),
    Preset(
        name="dpn",
        mean=_per_pixel_value((124.0, 117.0, 104.0)),
        std=(1.0 / (0.0167 * 255.0),) * 3,
        source="timm/data/constants.py (IMAGENET_DPN_MEAN/STD), used by timm/models/dpn.py",
        models="Dual Path Networks (DPN-68/92/98/107/131, MXNet weights)",
    ),
    Preset(
        name="caffe",
        mean=_per_pixel_value((103.939, 116.779, 123.68)),
        std=_per_pixel_value((1.0, 1.0, 1.0)),
        channel_order="BGR",
        source="keras-team/keras-applications keras_applications/imagenet_utils.py "
        "(mode='caffe': RGB -> BGR, subtract [103.939, 116.779, 123.68], no scaling)",
        models="Keras VGG16, VGG19, ResNet50/101/152 (v1); BGR input, mean subtracted in pixel units",
    ),
    Preset(
        name="detectron2",
        mean=_per_pixel_value((103.530, 116.280, 123.675)),
        std=_per_pixel_value((1.0, 1.0, 1.0)),
        channel_order="BGR",
        source="facebookresearch/detectron2 detectron2/config/defaults.py (MODEL.PIXEL_MEAN/PIXEL_STD); "
        "open-mmlab/mmdetection configs/*/*caffe* (mean=[103.530, 116.280, 123.675], std=[1, 1, 1], "
        "bgr_to_rgb=False)",
        models="Detectron2 defaults and mmdetection caffe-style backbones (MSRA R-50/R-101 weights, "
        "std folded into conv1); BGR input",
    ),
)

#: The presets by canonical name (read-only).
PRESETS: Mapping[str, Preset] = MappingProxyType({preset.name: preset for preset in _PRESET_LIST})

# Other names people look for, each pointing at the preset that has the same numbers.
_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "torchvision": "imagenet",
        "dinov2": "imagenet",
        "sam": "imagenet",
        "openai_clip": "clip",
        "openclip": "clip",
        "eva_clip": "clip",
        "vit": "inception",
        "siglip": "inception",
        "ultralytics": "yolo",
        "vgg_caffe": "caffe",
        "mmdet_caffe": "detectron2",
        "imagenet_1k": "imagenet",
        "in1k": "imagenet",
        "inception_v3": "inception",
        "yolov5": "yolo",
        "yolov8": "yolo",
        "yolo11": "yolo",
    }
)


def _lookup_key(name: str) -> str:
    """``name`` as looked up: lower case, without spaces, ``-`` or ``_`` ("Image-Net",
    "open_clip" and "OpenCLIP" are the same key)."""
    return "".join(character for character in name.lower() if character not in " -_")


# Every preset name and alias by its lookup key.
_NAMES_BY_KEY = {_lookup_key(alias): target for alias, target in _ALIASES.items()} | {
    _lookup_key(name): name for name in PRESETS
}


def get_preset(name: str | Preset) -> Preset:
    """The preset called ``name`` (case, spaces, ``-`` and ``_`` ignored; aliases such as ``"siglip"``
    resolve to the preset with the same numbers). A ``Preset`` passes through unchanged.

    >>> get_preset("ImageNet").std
    (0.229, 0.224, 0.225)
    """
    if isinstance(name, Preset):
        return name
    if not isinstance(name, str):
        raise TypeError(f"preset must be a name (str) or a Preset, got {type(name).__name__}: {name!r}")
    key = _lookup_key(name)
    if key in _NAMES_BY_KEY:
        return PRESETS[_NAMES_BY_KEY[key]]
    close = difflib.get_close_matches(name.strip().lower().replace("-", "_"), [*PRESETS, *_ALIASES], n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ValueError(f"unknown preset {name!r}; {hint}known presets: {_known_names()}")


def _known_names() -> str:
    aliases: dict[str, list[str]] = {}
    for alias, target in _ALIASES.items():
        aliases.setdefault(target, []).append(alias)
    return ", ".join(name + (f" ({', '.join(aliases[name])})" if name in aliases else "") for name in PRESETS)


def preset_from_timm(model_or_cfg: Any) -> Preset:
    """A preset from a timm model's ``pretrained_cfg``: a model, its cfg (dict or
    ``PretrainedCfg``) or a model name such as ``"resnet50.a1_in1k"``.

    A name is looked up in timm's registry of pretrained configs (the cfg that
    ``timm.create_model(name)`` attaches), so no model is built and nothing is downloaded;
    only this form needs timm installed. timm's mean and std are fractions of full scale,
    as a preset's are.

    >>> preset_from_timm({"architecture": "vit_small", "mean": (0.5,) * 3, "std": (0.5,) * 3}).name
    'timm:vit_small'
    """
    if isinstance(model_or_cfg, str):
        cfg = _registered_timm_cfg(model_or_cfg)
    else:
        cfg = getattr(model_or_cfg, "pretrained_cfg", None) or getattr(model_or_cfg, "default_cfg", None)
        if cfg is None:
            cfg = model_or_cfg
    mean, std = _cfg_value(cfg, "mean"), _cfg_value(cfg, "std")
    if mean is None or std is None:
        raise ValueError(
            "the timm config has no mean/std to normalize with (expected a timm model, its "
            f"pretrained_cfg, or a model name); got mean={mean!r}, std={std!r} from "
            f"{type(model_or_cfg).__name__}"
        )
    architecture, tag = _cfg_value(cfg, "architecture"), _cfg_value(cfg, "tag")
    name = "timm" + (f":{architecture}" if architecture else "") + (f".{tag}" if tag else "")
    return Preset(
        name=name,
        mean=tuple(mean),
        std=tuple(std),
        source=f"timm pretrained_cfg of {name.removeprefix('timm:') or 'a model'}",
        models=name.removeprefix("timm:") or "timm model",
    )


def _registered_timm_cfg(model_name: str) -> Any:
    try:
        from timm.models import get_pretrained_cfg
    except ImportError as error:
        raise ImportError(
            f"looking up the timm model {model_name!r} needs timm: pip install timm "
            "(or pass the model or its pretrained_cfg)"
        ) from error
    cfg = get_pretrained_cfg(model_name)
    if cfg is None:
        raise ValueError(
            f"timm has no pretrained config for {model_name!r}; timm.list_models() lists the names"
        )
    return cfg


def _cfg_value(cfg: Any, key: str) -> Any:
    """``cfg[key]`` for a dict, ``cfg.key`` for timm's ``PretrainedCfg`` dataclass; None if absent."""
    if isinstance(cfg, Mapping):
        return cfg.get(key)
    return getattr(cfg, key, None)


# --------------------------------------------------------------------------- Hugging Face

#: The keys of a Hugging Face ``preprocessor_config.json`` that :func:`to_hf_config` writes.
HF_CONFIG_KEYS = ("do_rescale", "rescale_factor", "do_normalize", "image_mean", "image_std")

_HF_CONFIG_FILE = "preprocessor_config.json"

# transformers' defaults for a key a config leaves out (BaseImageProcessor.rescale_factor, and
# do_rescale=True in every processor class that normalizes with image_mean/image_std). The
# oldest configs on the Hub (openai/clip-vit-base-patch32, google/vit-base-patch16-224, saved
# by the feature extractors) have neither key and rely on them.
_HF_DEFAULTS = {"do_rescale": True, "rescale_factor": 1 / 255}

# Processor families whose own defaults differ from those (or that add a step with a default
# of True): a dict config of theirs must spell these keys out. Keyed by the start of the
# config's image_processor_type / feature_extractor_type.
_HF_KEYS_WITH_OWN_DEFAULTS = {
    "Chameleon": ("rescale_factor",),  # 0.0078
    "Vivit": ("rescale_factor", "offset"),  # 1 / 127.5, offset=True
    "EfficientNet": ("include_top",),  # True: divides by image_std a second time
}


def normalize_kwargs_from_hf(config: Any) -> dict[str, Any]:
    """``{"mean", "std", "max_pixel_value"}`` that normalize as a Hugging Face image
    processor's rescale and normalize steps do: ``(x * rescale_factor - image_mean) /
    image_std`` is ``(x - mean * max_pixel_value) / (std * max_pixel_value)`` with
    ``max_pixel_value = 1 / rescale_factor``. ``config``: a ``preprocessor_config.json`` (or
    the folder holding one; read locally, nothing is downloaded), its dict, or an image
    processor object (``CLIPImageProcessor``..., or a processor such as ``CLIPProcessor``
    holding one). transformers is not needed.

    ``do_rescale`` false means the pixels are already in the units of ``image_mean``
    (``max_pixel_value=1``); ``do_normalize`` false means the processor only rescales (mean 0,
    std 1: the same numbers). A dict without ``do_rescale`` / ``rescale_factor`` gets
    transformers' defaults (true, 1/255), as the processor would. EfficientNet's
    ``rescale_offset`` / ViViT's ``offset`` (subtract 1 after rescaling) and EfficientNet's
    ``include_top`` (divide by ``image_std`` again) fold into mean and std. A config without
    ``do_normalize``, or without ``image_mean`` / ``image_std`` where they are used (a processor
    with no mean/std normalize step), a value of the wrong type or a file that is not JSON is
    an error naming the key or the file.

    >>> normalize_kwargs_from_hf({"do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
    ...                           "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]})
    {'mean': (0.5, 0.5, 0.5), 'std': (0.5, 0.5, 0.5), 'max_pixel_value': 255.0}
    """
    values, where, from_object = _hf_values(config)
    do_normalize = _hf_flag(values, "do_normalize", where)
    if do_normalize is None:
        raise ValueError(
            f"{where} has no 'do_normalize': it describes a processor without a mean/std normalize "
            "step (such as Swin2SR or SuperPoint, which only rescale), so there are no constants to "
            'normalize with. To reproduce its rescaling alone, set "do_normalize": false'
        )

    def missing(key: str) -> Any:
        # A processor object has resolved its class's defaults: an attribute left None is off.
        return None if from_object else _hf_common_default(values, key, where)

    do_rescale = _hf_flag(values, "do_rescale", where, missing)
    include_top = _hf_flag(values, "include_top", where, missing)
    pixel_scale, offset = 1.0, False
    if do_rescale:
        rescale_factor = values.get("rescale_factor")
        rescale_factor = missing("rescale_factor") if rescale_factor is None else rescale_factor
        if rescale_factor is None:
            raise ValueError(f"{where} has do_rescale true but no 'rescale_factor' (1/255 for 8-bit pixels)")
        pixel_scale = _full_scale(_hf_positive_number(rescale_factor, "rescale_factor", where))
        # EfficientNet's rescale_offset, ViViT's offset: x * rescale_factor - 1.
        offset = bool(
            _hf_flag(values, "rescale_offset", where, missing) or _hf_flag(values, "offset", where, missing)
        )
    mean, std = np.zeros(1), np.ones(1)
    if do_normalize:
        mean = np.asarray(_hf_channel_values(values, "image_mean", where, "do_normalize"))
        std = np.asarray(_hf_channel_values(values, "image_std", where, "do_normalize"))
    try:
        if include_top:  # EfficientNet: normalize(x, 0, image_std) after the normalize step
            std = std * np.asarray(_hf_channel_values(values, "image_std", where, "include_top"))
        if offset:
            mean = mean + 1.0
        kwargs = {"mean": tuple(mean.tolist()), "std": tuple(std.tolist()), "max_pixel_value": pixel_scale}
        NormalizeParams.build(**kwargs)
    except ValueError as error:
        raise ValueError(f"{where}: image_mean / image_std: {error}") from error
    return kwargs


def to_hf_config(source: Any, *, max_pixel_value: float | None = None) -> dict[str, Any]:
    """The Hugging Face image-processor keys (``HF_CONFIG_KEYS``) that normalize as ``source``
    does: ``do_rescale``, ``rescale_factor = 1 / max_pixel_value``, ``do_normalize``,
    ``image_mean``, ``image_std`` (lists, or one number for one value), a JSON-ready dict.
    Merge it into a ``preprocessor_config.json`` or pass it to an image processor
    (``ViTImageProcessor(**to_hf_config(transform))``); :func:`normalize_kwargs_from_hf` /
    ``from_hf`` read it back to the same transform.

    ``source``: a transform of the standard mode (``Normalize``, ``TorchNormalize``,
    ``NormalizeLayer``, ``NormalizeToTensor``, or a ``Denormalize`` class: the normalization it
    undoes), a ``Preset`` or a preset name. ``max_pixel_value`` is for a source without one (a
    preset, ``TorchNormalize``'s default ``None``): 255 unless given, as image processors take
    8-bit images. ``max_pixel_value=1`` writes ``do_rescale`` false. Per-image modes,
    ``clip_range`` and BGR presets have no such config and are refused.

    >>> to_hf_config("clip")["image_std"]
    [0.26862954, 0.26130258, 0.27577711]
    """
    if isinstance(source, (str, Preset)):
        preset = get_preset(source)
        if preset.channel_order != "RGB":
            raise ValueError(
                f"preset {preset.name!r} is {preset.channel_order}: image processors take RGB images, "
                "so its mean and std would apply to the wrong channels"
            )
        mean, std, own_scale = preset.mean, preset.std, None
    else:
        mean, std, own_scale = _standard_parameters(source)
    if own_scale is not None and max_pixel_value is not None and float(max_pixel_value) != own_scale:
        raise ValueError(
            f"max_pixel_value={max_pixel_value!r} differs from the {type(source).__name__}'s own "
            f"max_pixel_value={own_scale!r}; leave it out"
        )
    if own_scale is None:
        own_scale = 255.0 if max_pixel_value is None else max_pixel_value
    params = NormalizeParams.build(mean, std, own_scale, "standard")
    pixel_scale = params.max_pixel_value
    return {
        "do_rescale": pixel_scale != 1.0,
        "rescale_factor": 1.0 / pixel_scale,
        "do_normalize": True,
        "image_mean": _hf_list(params.mean),
        "image_std": _hf_list(params.std),
    }


def _standard_parameters(transform: Any) -> tuple[Any, Any, float | None]:
    """``(mean, std, max_pixel_value)`` of a standard-mode transform, from its attributes."""
    name = type(transform).__name__
    if not (hasattr(transform, "mean") and hasattr(transform, "std")):
        raise TypeError(
            f"to_hf_config takes a transform with mean and std (Normalize, TorchNormalize, "
            f"NormalizeLayer, NormalizeToTensor), a Preset or a preset name; got {name}"
        )
    normalization = getattr(transform, "normalization", "standard")
    if normalization != "standard":
        raise ValueError(
            f"{name} uses normalization={normalization!r}, whose constants come from each image; an "
            "image processor's config holds constants only (the standard mode)"
        )
    if getattr(transform, "clip_range", None) is not None:
        raise ValueError(
            f"{name} clips its output (clip_range={transform.clip_range!r}); an image processor's "
            "config has no clip"
        )
    mean, std = (_plain_values(getattr(transform, key)) for key in ("mean", "std"))
    own_scale = getattr(transform, "max_pixel_value", None)
    return mean, std, None if own_scale is None else float(own_scale)


def _plain_values(value: Any) -> Any:
    """A tensor (a layer's buffer or parameter) as a list; anything else as it is."""
    return value.detach().cpu().tolist() if hasattr(value, "detach") else value


def _hf_list(values: tuple[float, ...]) -> float | list[float]:
    """One value as a number (the processors broadcast it to every channel), else a list."""
    return values[0] if len(values) == 1 else list(values)


def _full_scale(rescale_factor: float) -> float:
    """``1 / rescale_factor``, as the shortest decimal whose reciprocal is ``rescale_factor``
    (255.0 for 1/255; a value we wrote as ``1 / max_pixel_value`` reads back as that
    ``max_pixel_value``). Every candidate is within float64 rounding of the reciprocal."""
    reciprocal = 1.0 / rescale_factor
    for digits in range(1, 18):
        candidate = float(f"{reciprocal:.{digits}g}")
        if 1.0 / candidate == rescale_factor:
            return candidate
    return reciprocal


def _hf_values(config: Any) -> tuple[Mapping[str, Any], str, bool]:
    """The config's keys, how to name it in a message, and whether it is a processor object."""
    if isinstance(config, (str, os.PathLike)):
        return _read_hf_file(Path(config)), f"preprocessor config {os.fspath(config)!r}", False
    if isinstance(config, Mapping):
        return config, "the preprocessor config dict", False
    if not hasattr(config, "do_normalize") and hasattr(config, "image_processor"):
        config = config.image_processor  # a processor (CLIPProcessor) holding an image processor
    if not any(hasattr(config, key) for key in HF_CONFIG_KEYS):
        raise TypeError(
            "config must be the path of a preprocessor_config.json (or its folder), its dict, or an "
            f"image processor; got {type(config).__name__}"
        )
    keys = (*HF_CONFIG_KEYS, "rescale_offset", "offset", "include_top")
    values = {key: getattr(config, key) for key in keys if getattr(config, key, None) is not None}
    return values, type(config).__name__, True


def _read_hf_file(path: Path) -> Mapping[str, Any]:
    file = path / _HF_CONFIG_FILE if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(
            f"no preprocessor config at {os.fspath(file)!r}; from_hf reads local files only (for a "
            "Hub repository pass transformers.AutoImageProcessor.from_pretrained(repo_id) instead)"
        )
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{os.fspath(file)!r} is not a JSON preprocessor config: {error}") from error
    if not isinstance(config, dict):
        raise TypeError(
            f"{os.fspath(file)!r} holds a JSON {type(config).__name__}, not the object of a "
            "preprocessor config"
        )
    return config


def _hf_common_default(values: Mapping[str, Any], key: str, where: str) -> Any:
    """transformers' common default for a key a dict config leaves out; refused for a key its
    processor family sets its own way."""
    kind = str(values.get("image_processor_type") or values.get("feature_extractor_type") or "")
    for family, keys in _HF_KEYS_WITH_OWN_DEFAULTS.items():
        if kind.startswith(family) and key in keys:
            raise ValueError(
                f"{where} has no {key!r}, and {kind} has its own default for it; add the key, or "
                "pass the image processor object"
            )
    return _HF_DEFAULTS.get(key, False)


def _hf_flag(values: Mapping[str, Any], key: str, where: str, missing: Any = None) -> Any:
    """A true/false key; ``missing(key)`` (or None) when the config leaves it out."""
    value = values.get(key)
    if value is None:
        return missing(key) if missing is not None else None
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where}: {key!r} must be true or false, got {type(value).__name__}: {value!r}")
    return bool(value)


def _hf_positive_number(value: Any, key: str, where: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}: {key!r} must be a number, got {type(value).__name__}: {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{where}: {key!r} must be a positive finite number, got {value!r}")
    return float(value)


def _hf_channel_values(values: Mapping[str, Any], key: str, where: str, needed_by: str) -> tuple[float, ...]:
    """``image_mean`` or ``image_std``: a number or a list of numbers (std positive)."""
    if values.get(key) is None:
        raise ValueError(
            f"{where} has no {key!r}, which {needed_by} true needs: its normalize step has no "
            "constants (Pix2Struct and Kosmos-2.5 standardize each image by its own statistics; "
            "the closest of ours is normalization='image', not the same numbers)"
        )
    result = _as_values(values[key], f"{where}: {key!r}")
    if key == "image_std" and not all(value > 0 for value in result):
        raise ValueError(
            f"{where}: 'image_std' must contain only positive numbers (it divides), got {list(result)}"
        )
    return result


TransformT = TypeVar("TransformT", bound="PresetConstructors")


class PresetConstructors:
    """``from_preset``, ``from_timm`` and ``from_hf`` for a transform whose constructor takes
    ``mean`` and ``std`` (``Normalize``, ``TorchNormalize``, ``NormalizeLayer``,
    ``NormalizeToTensor`` and the inverses ``Denormalize``, ``TorchDenormalize``,
    ``DenormalizeLayer``)."""

    @classmethod
    def from_preset(cls: type[TransformT], name: str | Preset, **overrides: Any) -> TransformT:
        """The transform with a preset's mean and std (see ``norm_transforms.PRESETS``);
        ``overrides`` are the other constructor arguments.

        >>> from norm_transforms import Normalize
        >>> transform = Normalize.from_preset("clip", p=0.5)
        """
        preset = get_preset(name)
        return cls(mean=preset.mean, std=preset.std, **overrides)

    @classmethod
    def from_timm(cls: type[TransformT], model_or_cfg: Any, **overrides: Any) -> TransformT:
        """The transform with the mean and std of a timm model: the model, its
        ``pretrained_cfg`` or its name (see :func:`preset_from_timm`)."""
        return cls.from_preset(preset_from_timm(model_or_cfg), **overrides)

    @classmethod
    def from_hf(cls: type[TransformT], config: Any, **overrides: Any) -> TransformT:
        """The transform that normalizes as a Hugging Face image processor's rescale and
        normalize steps: ``config`` is a ``preprocessor_config.json`` (or its folder), its dict
        or the image processor (see :func:`normalize_kwargs_from_hf`). The config gives
        ``mean``, ``std`` and ``max_pixel_value``; ``overrides`` are the other constructor
        arguments.

        >>> from norm_transforms import Normalize
        >>> config = {"do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
        ...           "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
        >>> Normalize.from_hf(config, p=1.0).max_pixel_value
        255.0
        """
        return cls(**normalize_kwargs_from_hf(config), **overrides)
