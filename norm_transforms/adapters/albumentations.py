"""``Normalize``: a drop-in for ``albumentations.Normalize`` on the NumPy kernels.

Same signature, defaults, repr and serialized form as ``A.Normalize`` (albumentations 2.0.8),
with batches (``images``, ``volumes``) normalized per image / per volume in one call.
``Denormalize`` is the standard mode's inverse (for display and checks), on the NumPy
backend's ``denormalize``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import albumentations as A
import numpy as np

from ..backends.numpy import check_inverse_dtype, denormalize, normalize, value_range
from ..modes import DEFAULT_PERCENTILES, IMAGENET_MEAN, IMAGENET_STD, NormalizationName, NormalizeParams
from ..presets import PresetConstructors
from . import warn_if_pixel_scale_looks_wrong


class _EveryImageTarget:
    """The four image targets of ``A.Compose`` on one method, ``_run(image, batched, volume)``:
    ``images`` and ``volumes`` stacked in one array go through the kernel in one call, with
    statistics per image (per volume); a list, one call each."""

    def _run(self, image: np.ndarray, batched: bool = False, volume: bool = False) -> np.ndarray:
        raise NotImplementedError

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        return self._run(img)

    def apply_to_images(self, images: np.ndarray | Sequence[np.ndarray], **params: Any) -> Any:
        if isinstance(images, np.ndarray):
            return self._run(images, batched=True)
        return [self._run(image) for image in images]

    def apply_to_volume(self, volume: np.ndarray, **params: Any) -> np.ndarray:
        return self._run(volume, volume=True)

    def apply_to_volumes(self, volumes: np.ndarray | Sequence[np.ndarray], **params: Any) -> Any:
        if isinstance(volumes, np.ndarray):
            return self._run(volumes, batched=True, volume=True)
        return [self._run(volume, volume=True) for volume in volumes]


class _NormalizeArguments:
    """What ``Normalize`` and ``NormalizeToTensor`` share: the validated recipe, the arguments
    stored as ``A.Normalize`` stores them (Albumentations lists the init arguments that are
    attributes in the repr and the serialized form), and the first-call check of
    ``max_pixel_value``."""

    def _store_arguments(
        self,
        mean: Any,
        std: Any,
        max_pixel_value: Any,
        normalization: NormalizationName,
        percentiles: Any,
        clip_range: Any,
        nonzero: Any = False,
    ) -> None:
        self._recipe = NormalizeParams.build(
            mean, std, max_pixel_value, normalization, percentiles, clip_range, nonzero
        )
        self._pixel_scale_checked = False
        # As A.Normalize stores them: its schema turns lists (e.g. from JSON) into tuples.
        self.mean = _as_stored(mean)
        self.std = _as_stored(std)
        self.max_pixel_value = _as_stored(max_pixel_value)
        self.normalization = normalization
        if self._recipe.mode.statistic == "percentile":
            # Set only where it is read, so the repr and serialized form of the other modes stay
            # those of A.Normalize.
            self.percentiles = _as_stored(percentiles)
        if clip_range is not None:  # as AlbumentationsX: serialized only when set
            self.clip_range = _as_stored(clip_range)
        if nonzero:  # the same: the five Albumentations modes keep A.Normalize's exact dict
            self.nonzero = True

    def _check_pixel_scale_once(self, image: np.ndarray) -> None:
        """The first call only: later calls pay one attribute read."""
        if self._pixel_scale_checked:
            return
        self._pixel_scale_checked = True
        warn_if_pixel_scale_looks_wrong(self, self._recipe, image.dtype, lambda: value_range(image))


class Normalize(_EveryImageTarget, _NormalizeArguments, PresetConstructors, A.ImageOnlyTransform):
    """Normalize an image with a mode of ``albumentations.Normalize``, or one of ours.

    ``standard``: ``(img - mean * max_pixel_value) / (std * max_pixel_value)``;
    ``image`` / ``image_per_channel``: subtract the image's (channel's) mean, divide by its
    std + 1e-4, clip to [-20, 20]; ``min_max`` / ``min_max_per_channel``: map the image's
    (channel's) range to [0, 1]; ``percentile`` / ``percentile_per_channel`` (ours): map the
    ``percentiles=(low, high)`` to [0, 1] and clip; ``robust`` / ``robust_per_channel`` (ours):
    subtract the median, divide by the interquartile range + 1e-4. Output is float32.
    ``max_pixel_value=None`` means the dtype's full scale. ``clip_range=(low, high)``
    (keyword-only, as in AlbumentationsX 2.5.1) clips the output after the mode's formula.
    ``dtype="float16"`` (keyword-only) writes half the bytes, computed in float32 and rounded
    once: less to collate, share between workers and copy to a GPU. ``nonzero=True``
    (keyword-only, per-image modes) takes the statistics over the non-zero pixels only and
    leaves the zeros at 0 (MONAI's ``NormalizeIntensity(nonzero=True)``).

    >>> import albumentations as A
    >>> pipeline = A.Compose([Normalize(normalization="image_per_channel")])
    >>> brains = A.Compose([Normalize(normalization="image", nonzero=True)])
    """

    class InitSchema(A.ImageOnlyTransform.InitSchema):
        # Checked by NormalizeParams.build, whose messages name the argument; Any keeps
        # pydantic from converting the values before they are stored for serialization.
        mean: Any
        std: Any
        max_pixel_value: Any
        normalization: Any
        percentiles: Any
        clip_range: Any
        nonzero: Any
        dtype: Any

    def __init__(
        self,
        mean: tuple[float, ...] | float | None = IMAGENET_MEAN,
        std: tuple[float, ...] | float | None = IMAGENET_STD,
        max_pixel_value: float | None = 255.0,
        normalization: NormalizationName = "standard",
        p: float = 1.0,
        *,
        percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
        clip_range: tuple[float, float] | None = None,
        nonzero: bool = False,
        dtype: str = "float32",
    ):
        super().__init__(p=p)
        if dtype not in _OUTPUT_DTYPES:
            raise ValueError(f"dtype must be 'float32' or 'float16'; got {dtype!r}")
        self._dtype = _OUTPUT_DTYPES[dtype]
        self._store_arguments(mean, std, max_pixel_value, normalization, percentiles, clip_range, nonzero)
        if dtype != "float32":  # the default keeps A.Normalize's serialized form
            self.dtype = dtype

    @classmethod
    def get_class_fullname(cls) -> str:
        # The public path, stable whatever module the class lives in; A.from_dict finds it.
        return "norm_transforms.Normalize"

    def _run(self, image: np.ndarray, batched: bool = False, volume: bool = False) -> np.ndarray:
        out = normalize(image, self._recipe, batched=batched, volume=volume, dtype=self._dtype)
        self._check_pixel_scale_once(image)
        return out


class Denormalize(_EveryImageTarget, PresetConstructors, A.ImageOnlyTransform):
    """The inverse of the ``standard`` mode: ``img * std * max_pixel_value + mean * max_pixel_value``.

    Takes the same ``mean``, ``std`` and ``max_pixel_value`` as the :class:`Normalize` it undoes
    and returns ``dtype``: ``"float32"`` (default) in the original units, or ``"uint8"`` /
    ``"uint16"`` for display (``"int16"`` / ``"int32"`` for signed data such as CT), rounded and
    clipped to the dtype's range. ``max_pixel_value=None`` means the output dtype's full scale
    (255 for uint8, 65535 for uint16, 1.0 for floats; signed dtypes have none).
    Per-image modes need each image's statistics: use ``normalize(..., return_params=True)``
    and ``denormalize(..., params=...)`` for those.

    >>> import albumentations as A
    >>> show = A.Compose([Denormalize(dtype="uint8")])  # after Normalize() with its defaults
    >>> show_clip = Denormalize.from_preset("clip", dtype="uint8")  # after Normalize.from_preset("clip")
    """

    class InitSchema(A.ImageOnlyTransform.InitSchema):
        # Checked by NormalizeParams.build and the backend, whose messages name the argument.
        mean: Any
        std: Any
        max_pixel_value: Any
        dtype: Any

    def __init__(
        self,
        mean: tuple[float, ...] | float = IMAGENET_MEAN,
        std: tuple[float, ...] | float = IMAGENET_STD,
        max_pixel_value: float | None = 255.0,
        dtype: str = "float32",
        p: float = 1.0,
    ):
        super().__init__(p=p)
        # Validated once here, as Normalize does; each call goes straight to the kernel.
        self._recipe = NormalizeParams.build(mean, std, max_pixel_value, "standard")
        if not isinstance(dtype, str):
            raise TypeError(f"dtype must be a dtype name such as 'float32' or 'uint8'; got {dtype!r}")
        check_inverse_dtype(dtype)
        self.mean = _as_stored(mean)
        self.std = _as_stored(std)
        self.max_pixel_value = _as_stored(max_pixel_value)
        self.dtype = dtype

    @classmethod
    def get_class_fullname(cls) -> str:
        return "norm_transforms.Denormalize"

    def _run(self, image: np.ndarray, batched: bool = False, volume: bool = False) -> np.ndarray:
        return denormalize(image, self._recipe, batched=batched, volume=volume, dtype=self.dtype)


# Output dtypes by name, as Albumentations serializes them.
_OUTPUT_DTYPES = {"float32": np.dtype(np.float32), "float16": np.dtype(np.float16)}


def _as_stored(values: Any) -> Any:
    """As A.Normalize's schema stores them: numbers as floats, sequences as tuples of floats."""
    if isinstance(values, (list, tuple, np.ndarray)):
        return tuple(float(v) for v in np.asarray(values).ravel())
    if isinstance(values, (int, float, np.number)) and not isinstance(values, bool):
        return float(values)
    return values
