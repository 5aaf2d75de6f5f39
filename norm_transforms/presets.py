"""Normalization constants of widely used model families, as data, each with its source.

Every preset's ``mean`` and ``std`` are fractions of full scale (the ``torchvision.Normalize``
convention, also timm's ``pretrained_cfg``): with 8-bit input use ``max_pixel_value=255``, or
``max_pixel_value=None`` for any dtype. So a preset carries no ``max_pixel_value`` of its own and
each transform keeps its default: 255 for ``Normalize`` and ``NormalizeLayer``, the dtype's full
scale for ``TorchNormalize``.

>>> from norm_transforms import get_preset
>>> get_preset("clip").mean
(0.48145466, 0.4578275, 0.40821073)
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, TypeVar

from .modes import IMAGENET_MEAN, IMAGENET_STD, NormalizeParams


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


TransformT = TypeVar("TransformT", bound="PresetConstructors")


class PresetConstructors:
    """``from_preset`` and ``from_timm`` for a transform whose constructor takes ``mean`` and
    ``std`` (``Normalize``, ``TorchNormalize``, ``NormalizeLayer`` and the inverses
    ``Denormalize``, ``TorchDenormalize``, ``DenormalizeLayer``)."""

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
