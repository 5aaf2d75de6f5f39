"""NumPy / OpenCV kernels: per-image statistics and a per-channel affine, written as float32.

Every input is viewed as ``(samples, rows, row_length)``, a C-contiguous block per sample whose
rows hold ``width * channels`` interleaved values, so one code path serves HW, HWC, NHWC, DHWC
and NDHWC. Speed notes (single thread, 512x512 RGB, measured in benchmarks/ and recorded beside
each choice) keep the reasons for each route next to it.

The backend contract (:class:`norm_transforms.backends.Backend`) is what this package exports;
its modules: ``layout`` (what it reads, the checks), ``statistics`` (the ``STATISTICS`` table
and the reductions), ``affine`` (the fused or centered affine), ``forward`` (``normalize``) and
``inverse`` (``denormalize``).
"""

from ...modes import NormalizeParams
from .. import kernels
from .forward import normalize, normalize_planar, normalize_to_planes, standard_affine_params
from .inverse import check_inverse_dtype, check_normalized, denormalize
from .layout import (
    NORMALIZED_DTYPES,
    SUPPORTED_DTYPES,
    Layout,
    check_image,
    describe_layout,
    terms_shape,
    value_range,
)
from .statistics import PRESCALE_ABOVE, STATISTICS, Statistic, histogram_percentiles

__all__ = [
    "NORMALIZED_DTYPES",
    "PRESCALE_ABOVE",
    "STATISTICS",
    "SUPPORTED_DTYPES",
    "Layout",
    "Statistic",
    "check_image",
    "check_inverse_dtype",
    "check_normalized",
    "denormalize",
    "describe_layout",
    "histogram_percentiles",
    "normalize",
    "normalize_planar",
    "normalize_to_planes",
    "route",
    "standard_affine_params",
    "terms_shape",
    "value_range",
]


def route(image: object, params: NormalizeParams) -> str:
    """``"c"``: the compiled C kernels (with OpenCV); ``"numpy"``: the NumPy/OpenCV fallback, where
    the C extension was not built or ``NORM_TRANSFORMS_DISABLE_C=1``."""
    return kernels.KERNELS_BACKEND
