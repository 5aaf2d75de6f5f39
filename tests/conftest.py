"""Shared fixtures and image makers for the norm_transforms test suite.

Test modules import the plain helpers (``make_image``, ``full_scale``, ``MODES``, ...) with
``from conftest import ...``; pytest puts this directory on ``sys.path`` (rootdir ``tests``
has no ``__init__.py``), the same way the modules import ``reference``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import strategies as st

# Without a GPU, the Triton kernels run on CPU tensors in Triton's interpreter, which must be
# chosen before the kernels are first imported (the tests force that route with
# NORM_TRANSFORMS_FORCE_TRITON=1). With one, they run compiled, on CUDA tensors.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from norm_transforms.dtypes import NUMPY_DTYPES, PIXEL_TYPES
from norm_transforms.modes import MODES as MODE_TABLE

# Mode lists, read from the mode table: a mode added there is tested everywhere these are used.
MODES = tuple(MODE_TABLE)
ALBUMENTATIONS_MODES = tuple(name for name, mode in MODE_TABLE.items() if mode.albumentations)
PER_IMAGE_MODES = tuple(name for name, mode in MODE_TABLE.items() if mode.statistic is not None)
IMAGE_MODES = tuple(name for name, mode in MODE_TABLE.items() if mode.statistic == "mean_std")
MIN_MAX_MODES = tuple(name for name, mode in MODE_TABLE.items() if mode.statistic == "min_max")
PERCENTILE_MODES = tuple(name for name, mode in MODE_TABLE.items() if mode.statistic == "percentile")

# NumPy dtypes, read from the dtype table.
INTEGER_DTYPES = tuple(np.dtype(d) for d in NUMPY_DTYPES if not PIXEL_TYPES[d.name].is_float)
FLOAT_DTYPES = tuple(np.dtype(d) for d in NUMPY_DTYPES if PIXEL_TYPES[d.name].is_float)
ALL_DTYPES = INTEGER_DTYPES + FLOAT_DTYPES
# The dtypes with a full-scale pixel (max_pixel_value=None works), and the signed integers
# (int16, int32), which have none.
FULL_SCALE_DTYPES = tuple(d for d in ALL_DTYPES if PIXEL_TYPES[d.name].full_scale is not None)
SIGNED_DTYPES = tuple(d for d in ALL_DTYPES if PIXEL_TYPES[d.name].is_signed_integer)

CONTENTS = ("random", "constant", "constant_channel", "outlier")

# Sample images shipped with matplotlib (mpl-data/sample_data), and the crop kept of each:
# (top, left) of a window of at most PHOTO_SIZE x PHOTO_SIZE pixels with some structure in it.
PHOTO_CROPS = {
    "grace_hopper.jpg": (120, 190),
    "Minduka_Present_Blue_Pack.png": (0, 0),
    "logo2.png": (0, 200),
}
PHOTO_SIZE = 96


def tolerance(mode: str, atol: float = 1e-5) -> dict[str, float]:
    """``assert_allclose`` tolerances against the float64 reference: absolute ``atol`` (the
    parity bound), and for the modes without a clip also the float32 rounding of the value
    itself: a robust mode maps an outlier to ~1e3 or more, where one float32 step is 6e-5."""
    return {"atol": atol, "rtol": 1e-6 if MODE_TABLE[mode].clip is None else 0.0}


def full_scale(dtype) -> float:
    """The value of a full-scale pixel: what ``max_pixel_value`` should be for ``dtype``. Signed
    integers have none (their standard mode needs an explicit ``max_pixel_value``): the tests use
    their largest value, so that the random images span [-1, 1] of it."""
    dtype = np.dtype(dtype)
    scale = PIXEL_TYPES[dtype.name].full_scale
    return float(np.iinfo(dtype).max) if scale is None else scale


def max_pixel_value_for(dtype) -> float | None:
    """``None`` (the dtype's full scale) where the dtype has one; for signed integers, whose
    standard mode needs an explicit value, :func:`full_scale`."""
    return None if PIXEL_TYPES[np.dtype(dtype).name].full_scale is not None else full_scale(dtype)


def exact_integer_round_trip(dtype) -> bool:
    """Integer dtypes whose pixels ``denormalize`` gives back exactly from float32 output: those
    of 8 and 16 bits (a float32 holds 24). int32 pixels come back within 1e-6 of full scale."""
    dtype = np.dtype(dtype)
    return dtype.kind in "ui" and dtype.itemsize <= 2


def dtype_id(dtype) -> str:
    return np.dtype(dtype).name


def layout_shape(height: int, width: int, channels: int | None) -> tuple[int, ...]:
    """(H, W) when ``channels`` is None, else (H, W, C)."""
    return (height, width) if channels is None else (height, width, channels)


def layout_id(channels: int | None) -> str:
    return "HW" if channels is None else f"HWC{channels}"


def _random(rng: np.random.Generator, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    return rng.random(shape).astype(dtype)


def _level(rng: np.random.Generator, dtype: np.dtype) -> np.ndarray:
    """One in-range value that is not special (not 0, not full scale, not a power of two);
    negative for signed integers."""
    if dtype.kind in "ui":
        top = int(np.iinfo(dtype).max)
        level = rng.integers(top // 10, top - top // 10)
        return np.asarray(-level if dtype.kind == "i" else level, dtype=dtype)
    return np.asarray(rng.uniform(0.1, 0.9), dtype=dtype)


def make_image(rng: np.random.Generator, dtype, shape: tuple[int, ...], content: str) -> np.ndarray:
    """A test image of ``dtype`` and ``shape`` (HW or HWC, or any leading batch axes).

    ``content``:
    - ``random``: uniform over the full range (integers, negative values included for signed
      ones) or [0, 1) (floats);
    - ``constant``: every pixel equal;
    - ``constant_channel``: random, except channel 0 is constant (the whole image when HW);
    - ``outlier``: a near-constant background (noise of one integer step, or 1e-3 for floats)
      with one pixel at full scale in every channel.
    """
    dtype = np.dtype(dtype)
    if content == "random":
        return _random(rng, dtype, shape)
    if content == "constant":
        return np.full(shape, _level(rng, dtype), dtype=dtype)
    if content == "constant_channel":
        image = _random(rng, dtype, shape)
        if len(shape) == 2:
            image[...] = _level(rng, dtype)
        else:
            image[..., 0] = _level(rng, dtype)
        return image
    if content == "outlier":
        if dtype.kind in "ui":
            background = 100 + rng.integers(0, 2, size=shape)
        else:
            background = 0.25 + 1e-3 * rng.random(shape)
        image = background.astype(dtype)
        corner = (0,) * 2 if len(shape) == 2 else (0, 0, slice(None))
        image[corner] = full_scale(dtype) if dtype.kind == "f" else np.iinfo(dtype).max
        return image
    raise ValueError(f"unknown content {content!r}")


def to_dtype(photo: np.ndarray, dtype) -> np.ndarray:
    """A uint8 photo at full scale in ``dtype`` (x257 for uint16, /255 for floats; signed
    integers spread over their whole range, 0 to the lowest value)."""
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return photo.copy()
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        step = (int(info.max) - int(info.min)) // 255  # 257 for 16 bits
        return (photo.astype(np.int64) * step + int(info.min)).astype(dtype)
    return (photo.astype(np.float64) / 255.0).astype(dtype)


def to_layout(photo: np.ndarray, channels: int | None) -> np.ndarray:
    """A photo with ``channels`` channels (its own ones, cycled), or HW (its first channel)."""
    if channels is None:
        return np.ascontiguousarray(photo[..., 0])
    return np.ascontiguousarray(np.take(photo, np.arange(channels) % photo.shape[-1], axis=-1))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240611)


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """Real photographs (uint8, HWC with 3 or 4 channels) cropped to at most 96x96."""
    matplotlib = pytest.importorskip("matplotlib")
    from matplotlib import cbook
    from matplotlib import image as mpimg

    sample_dir = os.path.join(matplotlib.get_data_path(), "sample_data")
    loaded = {}
    for name, (top, left) in PHOTO_CROPS.items():
        if not os.path.exists(os.path.join(sample_dir, name)):
            continue
        image = mpimg.imread(cbook.get_sample_data(name, asfileobj=False))
        if image.dtype.kind == "f":  # PNGs come back as float32 in [0, 1]; they hold 8-bit data
            image = np.round(image * 255.0).astype(np.uint8)
        crop = image[top : top + PHOTO_SIZE, left : left + PHOTO_SIZE]
        loaded[name] = np.ascontiguousarray(crop)
    if not loaded:
        pytest.skip("matplotlib ships no sample photographs here")
    return loaded


@st.composite
def standard_kwargs(draw, channels: int) -> dict:
    """One mean/std per channel (or scalars); |output| stays below ~25 for float data in [-10, 10]."""
    count = draw(st.sampled_from([1, channels]))
    mean = draw(st.lists(st.floats(-1.0, 1.0), min_size=count, max_size=count))
    std = draw(st.lists(st.floats(0.5, 2.0), min_size=count, max_size=count))
    return {"mean": tuple(mean), "std": tuple(std)}
