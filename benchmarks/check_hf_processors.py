"""``from_hf`` against every image processor that transformers ships (README, "From a Hugging
Face image processor"): each class built with its defaults, read as an object and through its
``to_dict()``, and where its ``preprocess`` keeps the pixels in place (resizing, cropping and
padding off), its output on a random uint8 image against ``normalize`` with the constants read.

python benchmarks/check_hf_processors.py           # about a minute; one line per class

Lines: ``match`` (max |ours - processor| and that in float32 steps of the largest output),
``refused`` (our error, for processors with no mean/std normalize step), ``constants only``
(the constants were read, but ``preprocess`` reshapes the pixels: patches, tiles, fixed sizes).
A processor that flips RGB to BGR around its normalize step shows as a large difference.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import warnings

import numpy as np
import transformers
import transformers.models
from transformers.image_processing_utils import BaseImageProcessor

from norm_transforms import normalize
from norm_transforms.presets import normalize_kwargs_from_hf


def processor_classes() -> dict[str, type]:
    found = {}
    for module_info in pkgutil.iter_modules(transformers.models.__path__):
        for prefix in ("image_processing_", "image_processing_pil_"):
            name = f"transformers.models.{module_info.name}.{prefix}{module_info.name}"
            try:
                module = importlib.import_module(name)
            except Exception:  # a model whose optional dependency is missing
                continue
            for class_name, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, BaseImageProcessor) and cls.__module__ == module.__name__:
                    found[class_name] = cls
    return found


def check(cls: type, image: np.ndarray) -> str:
    try:
        processor = cls()
    except Exception as error:  # e.g. TimmWrapperImageProcessor needs a cfg
        return f"not built with defaults ({type(error).__name__})"
    try:
        kwargs = normalize_kwargs_from_hf(processor)
    except (ValueError, TypeError) as error:
        return f"refused: {error}"[:120]
    if normalize_kwargs_from_hf(processor.to_dict()) != kwargs:
        return "MISMATCH between the object and its to_dict()"
    try:
        out = processor(image, do_resize=False, do_center_crop=False, do_pad=False, return_tensors="np")
        theirs = np.asarray(out["pixel_values"])
        theirs = theirs.reshape(-1, *theirs.shape[-3:])[0].transpose(1, 2, 0)
    except Exception:  # preprocess cannot skip resizing, or needs other inputs
        return f"constants only: {kwargs}"
    ours = normalize(image, **kwargs)
    if theirs.shape != ours.shape:
        return f"constants only (preprocess gives {theirs.shape}): {kwargs}"
    difference = float(np.abs(ours.astype(np.float64) - theirs).max())
    steps = difference / float(np.spacing(np.float32(np.abs(theirs).max())))
    return f"match {difference:.3g} ({steps:.2f} float32 steps)"


def main() -> None:
    warnings.filterwarnings("ignore")
    transformers.logging.set_verbosity_error()
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    print(f"transformers {transformers.__version__}")
    for name, cls in sorted(processor_classes().items()):
        print(f"{name}: {check(cls, image)}")


if __name__ == "__main__":
    main()
