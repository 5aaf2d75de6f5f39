# Types of the C extension built from _kernels.c (norm_transforms.backends.kernels picks it, or
# the NumPy fallback with the same signatures). Arguments are positional only; buffers are
# C-contiguous (checked by the glue, which raises on a wrong call, never crashes).
from collections.abc import Callable

from typing_extensions import Buffer

def affine(
    source: Buffer, out: Buffer, scale: Buffer, offset: Buffer, low: float, high: float, block: int = 1, /
) -> None:
    """out[i] = clip(float32(source[i]) * scale[c] + offset[c], low, high), c = (i // block) % len(scale).

    source: uint8, uint16, float16, float32 or float64; out: float32 with as many values (or
    source itself when it is float32), or float16 (computed in float32, rounded once to nearest
    even). NaN stays NaN; -inf and inf skip the clip.
    """

def affine_to_planes(
    source: Buffer, out: Buffer, scale: Buffer, offset: Buffer, low: float, high: float, /
) -> None:
    """The affine of interleaved pixels written as channel planes: with C = len(scale) and
    P = len(source) // C, out[c * P + p] = clip(float32(source[p * C + c]) * scale[c] + offset[c],
    low, high), computed and rounded as affine() does (same dtypes); out must not overlap
    source."""

def min_max(source: Buffer, low: Buffer, high: Buffer, block: int = 1, /) -> None:
    """Writes each channel's minimum and maximum to the float64 buffers low and high (value i is
    in channel (i // block) % len(low)); NaN is skipped, a channel of only NaN gets NaN; a zero
    extreme is +0.0 (-0.0 == +0.0: the one seen first would depend on the thread count)."""

def moments(
    source: Buffer, low: Buffer, high: Buffer, sums: Buffer, squares: Buffer, block: int = 1, /
) -> None:
    """Per entry c (value i is in entry (i // block) % len(low)), in float64: low[c] and high[c]
    its minimum and maximum (NaN skipped, a zero +0.0, as min_max), sums[c] the sum of x - k and squares[c]
    the sum of (x - k)**2 over its values x, k = source[c * block]; exact for uint8, uint16 and
    int16 while below 2**53."""

def histogram(source: Buffer, counts: Buffer, /) -> None:
    """Adds to the int64 counts[c * B + v] the number of values v of channel c (value i is in
    channel i % C) of a uint8 (B = 256) or uint16 (B = 65536) source."""

def select(source: Buffer, selected: Buffer, out: Buffer, counts: Buffer, /) -> None:
    """Gathers the values of source whose bool flag in selected is true, channel by channel: with
    C = len(counts) interleaved channels (value i in channel i % C) and P = len(source) // C,
    channel c's selected values, in order, go to out[c * P : c * P + counts[c]] (out: the dtype
    of source, as many values, not overlapping source, overwritten past each channel's selected
    run; counts: int64, written)."""

def keep_selected(out: Buffer, selected: Buffer, /) -> None:
    """Sets the float32 out[i] to +0.0 where the bool selected[i] is false, whatever out[i] was
    (NaN and inf included)."""

def set_thread_policy(policy: Callable[[], int] | None, /) -> None:
    """policy() -> int: how many threads a large call may use (read at each such call); None:
    one thread. Set at import by backends/kernels.py to norm_transforms.threads."""

def parallel_jobs() -> int:
    """How many calls in this process ran on more than one thread (for tests)."""
