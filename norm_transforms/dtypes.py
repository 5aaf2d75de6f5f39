"""The pixel types the library reads, as data: the one table that validation, the backends,
the dataset statistics, the docs and the tests read.

>>> PIXEL_TYPES["uint16"].full_scale
65535.0
>>> [name for name, pixel in PIXEL_TYPES.items() if pixel.histogram_bins]
['uint8', 'uint16', 'int16']
>>> PIXEL_TYPES["int16"].full_scale is None  # signed: max_pixel_value must be given
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PixelType:
    """One input dtype.

    ``full_scale`` is a full-scale pixel, what ``max_pixel_value=None`` means, or ``None`` for
    signed integers (CT in Hounsfield units, ...), whose values are not fractions of a full-scale
    pixel: there the standard mode needs an explicit ``max_pixel_value``. ``histogram_bins`` is
    the number of values of the integer types whose statistics are exact from a histogram (the
    dataset statistics and the percentile modes), ``None`` for the others (floats; int32, whose
    2**32 bins would not fit); value ``v`` is counted in bin ``v + histogram_offset`` (32768 for
    int16, whose values start at -32768). ``numpy`` says whether NumPy has the type (bfloat16 is
    Torch's only).
    """

    name: str
    full_scale: float | None
    histogram_bins: int | None = None
    numpy: bool = True
    histogram_offset: int = 0

    @property
    def is_float(self) -> bool:
        """Floats are what ``normalize`` writes, so ``denormalize`` reads them. (The table is keyed
        by the dtype names that NumPy and Torch share.)"""
        return self.name.startswith(("float", "bfloat"))

    @property
    def is_signed_integer(self) -> bool:
        """int16, int32: values below 0, and no full scale."""
        return self.name.startswith("int")


PIXEL_TYPES: dict[str, PixelType] = {
    pixel.name: pixel
    for pixel in (
        PixelType("uint8", 255.0, histogram_bins=256),
        PixelType("uint16", 65535.0, histogram_bins=65536),
        PixelType("int16", None, histogram_bins=65536, histogram_offset=32768),
        PixelType("int32", None),
        PixelType("float16", 1.0),
        PixelType("bfloat16", 1.0, numpy=False),
        PixelType("float32", 1.0),
        PixelType("float64", 1.0),
    )
}

#: The NumPy dtypes that normalize reads, in the table's order.
NUMPY_DTYPES = tuple(np.dtype(name) for name, pixel in PIXEL_TYPES.items() if pixel.numpy)


def accepted_names(*, numpy: bool, floats_only: bool = False) -> str:
    """The names for an error message: ``"uint8, uint16, float16, float32, float64"``."""
    return ", ".join(
        name
        for name, pixel in PIXEL_TYPES.items()
        if (pixel.numpy or not numpy) and (pixel.is_float or not floats_only)
    )
