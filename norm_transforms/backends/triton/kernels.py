"""The Triton kernels: a statistics pass, a per-scope finalize, and the affine pass.

Every image arrives as a ``(samples, channels, pixels)`` view with any strides (``layout.py``),
and every program reads one tile of it: ``TILE_C`` channels of ``BLOCK_P`` pixels of one
sample, on ``BLOCK`` lanes, lane ``i`` holding channel ``i % TILE_C`` of pixel ``i // TILE_C``.
A planar layout (NCHW) takes one channel per tile (``TILE_C == 1``: a contiguous run of
pixels); an interleaved one (channels_last) takes every channel of a run of pixels, whose lanes
are then, where the layout is dense (``DENSE``), one run of memory too: both load and store
whole 16-byte vectors (sm_90 PTX, tests/triton_compile_check.py), where a ``[channels,
pixels]`` tile of an RGB image was read a byte per load. The grid is one-dimensional: program
``pid`` is pixel block ``pid % blocks`` of channel group ``(pid // blocks) % channel_groups`` of
sample ``pid // (blocks * channel_groups)`` (a group per channel for planar tiles, one for
interleaved ones: ``channels // TILE_C``), so any batch fits the grid's limits.

The standard mode is one launch (``standard_kernel``). Per-image modes take two launches (a
third, a memset, zeroes the histograms of the percentile modes) and two passes over the image
(one read for the statistics, one read and one write for the affine):

1. a statistics kernel writes one partial per (row, pixel block), where a row is one channel of
   one sample: a split reduction, so a single image still fills the GPU, deterministic (no
   float atomics), or adds a tile's 256-bin histogram into its row (integer atomics, exact);
   of a 16- or 32-bit image, of its keys' high bytes, and one pass per further byte
   (``next_byte_histogram_kernel``) those of the next byte of the keys that share each
   interpolated rank's bytes so far (a radix select), finalized by the finalize kernel: a
   third read of the image, or a fifth;
2. the affine kernel maps every pixel with its scope's terms, clips, and rounds once to the
   output dtype. Each program finalizes the partials of its tile's scope itself (a sample, or
   a channel of it: ``_tile_terms``) where scopes have few of them (a 224² image: 13 per
   plane); for scopes of many partials (a 4K plane has 2025), a finalize kernel, one program
   per scope, writes each scope's terms first and the affine reads them: three launches.
   Both finalize with the same function (``_scope_terms``): the same bits either way.

``nonzero=True`` (``NONZERO``) and a mask (``MASKED``) add no launch and no pass: each
statistics kernel counts only the selected pixels of its tile (non-zero, under the mask; a tile
without one writes a partial of count 0), the finalize gives a scope without one the terms 0
(``SELECTED``), and the affine writes every zero pixel back as 0 (``nonzero``) and every pixel
of an empty scope as 0.

Host time (benchmarks/bench_triton_host.py): Triton binds every argument of every launch on
the host, ~0.2 us each, and checks every module global a kernel reads, ~2.3 us each; so each
kernel takes only the arguments it reads and reads no global.

Scale safety (SPEC 6): for float32, bfloat16 and float64 input (``SCALED``) every tile records
the binary exponent ``e`` of its largest finite magnitude and reduces ``x * 2**-e``; the
finalize brings every partial to the scope's largest exponent ``E`` (factors ``2**(e - E)``,
exact) and the affine computes ``(x * 2**-E - center) * scale + offset`` in those units, so
nothing overflows or loses range whatever the magnitude. Powers of two are built from their
bits (``_power_of_two``), exact on every device.
"""

from __future__ import annotations

import triton
import triton.language as tl

# The fields of the partials of the moments (float64, ``[4, rows, blocks]``).
MOMENT_FIELDS = 4  # count, exponent, mean, m2 (sum of squared deviations from the tile mean)
# The fields of the min_max partials (float64, ``[4, rows, blocks]``).
EXTREME_FIELDS = 4  # low, high, exponent, selected pixels (written for nonzero=True only)
# What the finalize writes per scope (float64, ``[6, scopes]``): the affine's four terms, then
# the center and scale in the image's units (``return_params``).
TERM_FIELDS = 6  # factor 2**-E, center (float32 part), scale, offset, center, scale
# Bins of the uint8 histograms (``BINS`` in the kernels). Kernels read no module global:
# Triton checks each one on every launch, 2.3 us of host time per global per launch
# (benchmarks/bench_triton_host.py), so each kernel that needs the number names it itself.
HISTOGRAM_BINS = 256
# The counts of a scope's rank state (``rank_prefix_kernel``): ranks, key prefixes, values
# below them and the last rank, 8 slots each.
RANK_STATE_COUNTS = 32


@triton.jit
def _program(blocks, channels, TILE_C: tl.constexpr, LARGE: tl.constexpr):
    """(sample as int64, first channel, pixel block) of this program; with ``LARGE`` (an
    element offset or a flat lane index reaches 2**31, ``layout.py``) the channel and
    the block are int64 too, so that every offset and pixel index computed from them is: in
    int32, a channel stride of 2**30 times channel 2 wrapped negative and read outside the
    image (a 3x32768x32768 uint8 tensor)."""
    pid = tl.program_id(0)
    channel_groups = channels // TILE_C  # a group per channel (planar), or one (interleaved)
    block = pid % blocks
    rest = pid // blocks
    channel0 = (rest % channel_groups) * TILE_C
    sample = (rest // channel_groups).to(tl.int64)
    if LARGE:  # a compile-time branch: one return (Triton refuses returns of different types)
        channel0 = channel0.to(tl.int64)
        block = block.to(tl.int64)
    return sample, channel0, block


@triton.jit
def _tile(
    sample,
    channel0,
    block,
    pixels,
    sample_stride,
    channel_stride,
    pixel_stride,
    TILE_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK: tl.constexpr,
    DENSE: tl.constexpr,
    LARGE: tl.constexpr,
):
    """Offsets ``[BLOCK]`` of a tile's lanes, its mask, and the channel of each lane in the
    tile (``within``: its channel is ``channel0 + within``). The mask is written in flat
    indices (``flat < pixels * TILE_C``), as the offsets of a dense tile are, so that the
    compiler sees whole vectors in and out of it; in int64 with ``LARGE``, which ``layout.py``
    sets where these flat indices reach 2**31 (an int32 ``pixels * 3`` of a 30000x30000 RGB
    image was negative and masked every lane: found in review)."""
    lane = tl.arange(0, BLOCK)
    within = lane % TILE_C
    flat = block * (BLOCK_P * TILE_C) + lane
    if LARGE:
        mask = flat < pixels.to(tl.int64) * TILE_C
    else:
        mask = flat < pixels * TILE_C
    if BLOCK_P * TILE_C < BLOCK:  # an interleaved tile: its last lanes hold no pixel
        mask = mask & (lane < BLOCK_P * TILE_C)
    if DENSE:
        offsets = sample * sample_stride + flat
    else:
        pixel = block * BLOCK_P + lane // TILE_C
        offsets = sample * sample_stride + (channel0 + within) * channel_stride + pixel * pixel_stride
    return offsets, mask, within


@triton.jit
def _tile_pixels(block, pixels, BLOCK_P: tl.constexpr):
    """The pixels of each channel in tile ``block`` (the last tile may be short)."""
    return tl.minimum(pixels - block * BLOCK_P, BLOCK_P)


@triton.jit
def _exponent(magnitude):
    """frexp's exponent of a finite float64 magnitude, clamped to [0, 1022]: scopes are only
    ever scaled down, and 2**-1022 is the smallest normal power of two."""
    biased = (magnitude.to(tl.int64, bitcast=True) >> 52) & 0x7FF
    return tl.minimum(tl.maximum(biased - 1022, 0), 1022)


@triton.jit
def _power_of_two(exponent):
    """``2**-exponent`` for an int64 ``exponent`` in [0, 1022], exactly, from its bits."""
    return ((1023 - exponent) << 52).to(tl.float64, bitcast=True)


@triton.jit
def _finite_magnitude(x):
    """|x| where x is finite, else 0 (an inf or NaN pixel must not set the scale)."""
    magnitude = tl.abs(x)
    return tl.where(magnitude < float("inf"), magnitude, 0.0)


# --------------------------------------------------------------------------- 1. statistics


@triton.jit
def _selected(
    x,
    mask,
    sample,
    channel0,
    block,
    pixels,
    selection_ptr,
    selection_sample_stride,
    selection_channel_stride,
    selection_pixel_stride,
    NONZERO: tl.constexpr,
    MASKED: tl.constexpr,
    TILE_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK: tl.constexpr,
    LARGE: tl.constexpr,
):
    """The lanes whose pixels the statistics read: the tile's (``mask``), only the non-zero
    ones with ``NONZERO`` (NaN is non-zero), only those of the selection mask (``uint8``, 0 or
    1, with strides of its own: a mask without a channel axis is expanded, stride 0) with
    ``MASKED``."""
    selected = mask
    if NONZERO:
        selected = selected & (x != 0)
    if MASKED:
        offsets, _, _ = _tile(
            sample, channel0, block, pixels, selection_sample_stride, selection_channel_stride,
            selection_pixel_stride, TILE_C, BLOCK_P, BLOCK, False, LARGE,
        )  # fmt: skip
        selected = selected & (tl.load(selection_ptr + offsets, mask=mask, other=0) != 0)
    return selected


@triton.jit
def moments_kernel(
    image_ptr,
    partial_ptr,
    selection_ptr,
    channels,
    pixels,
    blocks,
    rows,
    sample_stride,
    channel_stride,
    pixel_stride,
    selection_sample_stride,
    selection_channel_stride,
    selection_pixel_stride,
    SCALED: tl.constexpr,
    NONZERO: tl.constexpr,
    MASKED: tl.constexpr,
    TILE_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK: tl.constexpr,
    DENSE: tl.constexpr,
    LARGE: tl.constexpr,
):
    """Per (row, block): pixel count, exponent, mean and the sum of squared deviations from
    that mean (``m2``), for each channel of the tile; of its selected pixels only with
    ``NONZERO`` or ``MASKED`` (``_selected``; a tile without one: count 0, mean 0, m2 0).

    8- and 16-bit integer images: exact integer sums of ``x`` and ``x**2`` (int32 for uint8: a
    tile of 4096 pixels sums to at most 2.7e8; int64 for uint16 and int16), and
    ``m2 = (n * S2 - S1**2) / n`` from exact int64 products: integer operations per pixel, no
    float64 ones. Float and int32 images (whose squares, up to 2**62, would overflow an int64
    sum): float64, which holds every int32 exactly, two passes over the tile in registers (no
    cancellation), and the rounding left in the first mean added back (``residual``), so that a
    constant tile's mean is its value exactly and a constant image comes out exactly 0."""
    sample, channel0, block = _program(blocks, channels, TILE_C, LARGE)
    offsets, mask, within = _tile(
        sample, channel0, block, pixels, sample_stride, channel_stride, pixel_stride,
        TILE_C, BLOCK_P, BLOCK, DENSE, LARGE,
    )  # fmt: skip
    # The tile's pixels per channel from its position (not a float64 sum of the mask).
    count = _tile_pixels(block, pixels, BLOCK_P)
    source = image_ptr.dtype.element_ty
    integers: tl.constexpr = source.is_int() and source.primitive_bitwidth <= 16
    if integers:
        wide: tl.constexpr = source.primitive_bitwidth > 8
        x = tl.load(image_ptr + offsets, mask=mask, other=0).to(tl.int64 if wide else tl.int32)
    else:
        x = tl.load(image_ptr + offsets, mask=mask, other=0).to(tl.float64)
    field = rows * blocks
    # A loop, not unrolled: each channel's float64 temporaries die before the next's (sm_90:
    # 130 registers a thread on average over RGB channels_last variants unrolled, 113 this way;
    # the min/max kernel's went from 73 to 97 the same way, so its loop stays unrolled).
    counted = _selected(
        x, mask, sample, channel0, block, pixels, selection_ptr, selection_sample_stride,
        selection_channel_stride, selection_pixel_stride, NONZERO, MASKED, TILE_C, BLOCK_P, BLOCK, LARGE,
    )  # fmt: skip
    for c in range(TILE_C):
        exponent = tl.zeros([], tl.int64)
        selected = counted & (within == c)
        n = count
        if NONZERO or MASKED:
            n = tl.sum(selected.to(tl.int32), axis=0)
        divisor = tl.maximum(n, 1)  # a tile without a selected pixel: mean 0, m2 0
        if integers:
            xc = tl.where(selected, x, 0)
            total = tl.sum(xc, axis=0).to(tl.int64)
            squares = tl.sum(xc * xc, axis=0).to(tl.int64)
            mean = total.to(tl.float64) / divisor
            m2 = (n.to(tl.int64) * squares - total * total).to(tl.float64) / divisor
        else:
            xc = x
            if SCALED:
                exponent = _exponent(tl.max(tl.where(selected, _finite_magnitude(x), 0.0), axis=0))
                xc = x * _power_of_two(exponent)
            mean = tl.sum(tl.where(selected, xc, 0.0), axis=0) / divisor
            deviation = tl.where(selected, xc - mean, 0.0)
            residual = tl.sum(deviation, axis=0) / divisor
            deviation = tl.where(selected, deviation - residual, 0.0)
            m2 = tl.sum(deviation * deviation, axis=0)
            mean = mean + residual
        index = (sample * channels + channel0 + c) * blocks + block
        tl.store(partial_ptr + index, n.to(tl.float64))
        tl.store(partial_ptr + field + index, exponent.to(tl.float64))
        tl.store(partial_ptr + 2 * field + index, mean)
        tl.store(partial_ptr + 3 * field + index, m2)


@triton.jit
def extremes_kernel(
    image_ptr,
    partial_ptr,
    selection_ptr,
    channels,
    pixels,
    blocks,
    rows,
    sample_stride,
    channel_stride,
    pixel_stride,
    selection_sample_stride,
    selection_channel_stride,
    selection_pixel_stride,
    SCALED: tl.constexpr,
    NONZERO: tl.constexpr,
    MASKED: tl.constexpr,
    TILE_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK: tl.constexpr,
    DENSE: tl.constexpr,
    LARGE: tl.constexpr,
):
    """Per (row, block): the smallest and largest pixel, NaN skipped (as cv2.normalize skips
    it), and the exponent of the largest finite magnitude, for each channel of the tile; with
    ``NONZERO`` or ``MASKED``, of its selected pixels (``_selected``), and their number (NaN
    counted: a scope of only NaN is NaN, one without a selected pixel is empty, and both have
    no extremes). Compared in
    float32, which holds every uint8, uint16, int16, float16 and bfloat16 value exactly
    (float64 and int32 images in float64)."""
    sample, channel0, block = _program(blocks, channels, TILE_C, LARGE)
    offsets, mask, within = _tile(
        sample, channel0, block, pixels, sample_stride, channel_stride, pixel_stride,
        TILE_C, BLOCK_P, BLOCK, DENSE, LARGE,
    )  # fmt: skip
    source = image_ptr.dtype.element_ty
    wide: tl.constexpr = (source == tl.float64) or (source == tl.int32)
    x = tl.load(image_ptr + offsets, mask=mask, other=0).to(tl.float64 if wide else tl.float32)
    field = rows * blocks
    chosen = _selected(
        x, mask, sample, channel0, block, pixels, selection_ptr, selection_sample_stride,
        selection_channel_stride, selection_pixel_stride, NONZERO, MASKED, TILE_C, BLOCK_P, BLOCK, LARGE,
    )  # fmt: skip
    for c in tl.static_range(TILE_C):
        selected = chosen & (within == c)
        counted = selected & (x == x)  # NaN != NaN
        low = tl.min(tl.where(counted, x, float("inf")), axis=0).to(tl.float64)
        high = tl.max(tl.where(counted, x, -float("inf")), axis=0).to(tl.float64)
        exponent = tl.zeros([], tl.int64)
        if SCALED:
            magnitude = tl.max(tl.where(counted, _finite_magnitude(x), 0.0), axis=0)
            exponent = _exponent(magnitude.to(tl.float64))
        index = (sample * channels + channel0 + c) * blocks + block
        tl.store(partial_ptr + index, low)
        tl.store(partial_ptr + field + index, high)
        tl.store(partial_ptr + 2 * field + index, exponent.to(tl.float64))
        if NONZERO or MASKED:
            tl.store(partial_ptr + 3 * field + index, tl.sum(selected.to(tl.float64), axis=0))


@triton.jit
def _histogram_key(x):
    """The bin key of each loaded value, whose order is the values' order: a uint8 or uint16
    value as it is, an int16 one plus 32768 (keys of 16 bits); an int32 one plus 2**31, a
    float32 one from its bits, a positive one's plus 2**31 and a negative one's complement (-0.0
    just below 0.0; keys of 32 bits, in int64). NaN has no key: -1."""
    if x.dtype == tl.int32:
        key = x.to(tl.int64) + 2147483648
    elif x.dtype == tl.float32:
        bits = x.to(tl.int32, bitcast=True).to(tl.int64)
        key = tl.where(bits >= 0, bits + 2147483648, -1 - bits)
        key = tl.where(x == x, key, -1)
    else:
        key = x.to(tl.int32)
        if x.dtype == tl.int16:
            key = key + 32768
    return key


@triton.jit
def _tile_keys(
    image_ptr,
    selection_ptr,
    channels,
    pixels,
    blocks,
    sample_stride,
    channel_stride,
    pixel_stride,
    selection_sample_stride,
    selection_channel_stride,
    selection_pixel_stride,
    NONZERO: tl.constexpr,
    MASKED: tl.constexpr,
    TILE_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK: tl.constexpr,
    DENSE: tl.constexpr,
    LARGE: tl.constexpr,
):
    """This program's sample and first channel, the lanes that count (``_selected``) and have a
    key, the selected lanes without one (NaN), the channel of each lane in the tile, and each
    lane's histogram key (``_histogram_key``)."""
    sample, channel0, block = _program(blocks, channels, TILE_C, LARGE)
    offsets, mask, within = _tile(
        sample, channel0, block, pixels, sample_stride, channel_stride, pixel_stride,
        TILE_C, BLOCK_P, BLOCK, DENSE, LARGE,
    )  # fmt: skip
    x = tl.load(image_ptr + offsets, mask=mask, other=0)
    selected = _selected(
        x, mask, sample, channel0, block, pixels, selection_ptr, selection_sample_stride,
        selection_channel_stride, selection_pixel_stride, NONZERO, MASKED, TILE_C, BLOCK_P, BLOCK, LARGE,
    )  # fmt: skip
    key = _histogram_key(x)
    return sample, channel0, selected & (key >= 0), selected & (key < 0), within, key


@triton.jit
def _add_counts(row_ptr, bins, counts, TILE_C: tl.constexpr):
    """Adds a tile's counts of ``bins`` (channel in the tile * 256 + bin) into the rows of 256
    counts of their channels (``row_ptr``: where each bin's row starts): exact int64 atomics,
    relaxed, none for the channels that pad the tile's to a power of two nor for empty bins."""
    BINS: tl.constexpr = 256  # HISTOGRAM_BINS
    inside = (bins // BINS < TILE_C) & (counts != 0)
    tl.atomic_add(row_ptr + bins % BINS, counts.to(tl.int64), mask=inside, sem="relaxed")


@triton.jit
def _bins_per_tile(TILE_C: tl.constexpr):
    """The bins of a tile's histogram: 256 per channel, for ``TILE_C`` (at most 16,
    layout.MAX_INTERLEAVED_CHANNELS) rounded up to a power of two."""
    BINS: tl.constexpr = 256  # HISTOGRAM_BINS
    BINS_C: tl.constexpr = (
        1 if TILE_C == 1 else 2 if TILE_C == 2 else 4 if TILE_C <= 4 else 8 if TILE_C <= 8 else 16
    )
    return tl.arange(0, BINS_C * BINS)


@triton.jit
def _add_histogram(rows_ptr, bins, selected, within, key, BLOCK: tl.constexpr, TILE_C: tl.constexpr):
    """Adds the 256-bin histogram of the ``key``s of the ``selected`` lanes of each channel of
    the tile (``bins``: ``_bins_per_tile``) into the row of its channel (``rows_ptr``: where
    each bin's row starts)."""
    BINS: tl.constexpr = 256  # HISTOGRAM_BINS
    # One histogram for every channel (bin = channel in the tile * 256 + key), with no mask
    # operand: the other lanes land in bin 0 and are taken back out.
    counts = tl.histogram(tl.where(selected, within * BINS + key, 0), bins.shape[0])
    others = BLOCK - tl.sum(selected.to(tl.int32), axis=0)
    counts = tl.where(bins == 0, counts - others, counts)
    _add_counts(rows_ptr, bins, counts, TILE_C)


@triton.jit
def histogram_kernel(
    image_ptr,
    histogram_ptr,
    selection_ptr,
    channels,
    pixels,
    blocks,
    unkeyed_field,
    sample_stride,
    channel_stride,
    pixel_stride,
    selection_sample_stride,
    selection_channel_stride,
    selection_pixel_stride,
    NONZERO: tl.constexpr,
    MASKED: tl.constexpr,
    TILE_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK: tl.constexpr,
    DENSE: tl.constexpr,
    LARGE: tl.constexpr,
):
    """Adds the tile's 256-bin histogram of each channel into its row (exact integer atomics,
    256 per channel and tile, into a zeroed ``[rows, 256]`` int64 buffer: a plane of 2**31
    pixels, a 50000x50000 slide, can hold as many values in one bin, which an int32 count
    wrapped negative): of the values of a uint8 image, of the keys' high bytes of a 16- or
    32-bit one (``_histogram_key``: the first level of its two or four,
    ``next_byte_histogram_kernel``); of the selected pixels only (``_selected``). A float32
    image's NaN pixels have no key: the selected ones are counted in bin 0 of the rows at
    ``unkeyed_field``, so that a scope of only NaN comes out NaN, not as a scope without pixels."""
    sample, channel0, keyed, unkeyed, within, key = _tile_keys(
        image_ptr, selection_ptr, channels, pixels, blocks, sample_stride, channel_stride, pixel_stride,
        selection_sample_stride, selection_channel_stride, selection_pixel_stride,
        NONZERO, MASKED, TILE_C, BLOCK_P, BLOCK, DENSE, LARGE,
    )  # fmt: skip
    BINS: tl.constexpr = 256  # HISTOGRAM_BINS
    KEY_BITS: tl.constexpr = image_ptr.dtype.element_ty.primitive_bitwidth
    high_byte = (key >> (KEY_BITS - 8)).to(tl.int32)
    bins = _bins_per_tile(TILE_C)
    rows_ptr = histogram_ptr + (sample * channels + channel0 + bins // BINS) * BINS
    _add_histogram(rows_ptr, bins, keyed, within, high_byte, BLOCK, TILE_C)
    if image_ptr.dtype.element_ty == tl.float32:
        _add_histogram(rows_ptr + unkeyed_field, bins, unkeyed, within, 0, BLOCK, TILE_C)


@triton.jit
def _rank_slots(last, constants_ptr, ROBUST: tl.constexpr):
    """The ranks (float64 ``[8]``) whose values a percentile mode interpolates between: slot
    ``2j`` the floor of ``last * fraction_j`` and slot ``2j + 1`` the next rank (``last`` at
    most), for the fractions (``constants_ptr`` 1, 3, then 2 when ``ROBUST``) low, high and the
    median; the slots beyond hold rank 0."""
    slots = tl.arange(0, 8)
    pair = slots // 2
    fraction = tl.load(constants_ptr + tl.where(pair == 0, 1, tl.where(pair == 1, 3, 2)))
    below = tl.floor(last * fraction)
    ranks = tl.where(slots % 2 == 0, below, tl.minimum(below + 1.0, last))
    return tl.where(slots < (6 if ROBUST else 4), ranks, 0.0)


@triton.jit
def _first_level_ranks(histogram_ptr, first, rows, constants_ptr, ROBUST: tl.constexpr):
    """Of the scope whose first-level histograms are rows ``first .. first + rows``: the ranks of
    each slot (``_rank_slots``), the first byte of each rank's key, the number of values below
    that byte (float64 ``[8]`` each), and the scope's last rank."""
    BINS: tl.constexpr = 256  # HISTOGRAM_BINS
    bins = tl.arange(0, BINS)
    counts = tl.zeros([BINS], tl.int64)
    for row in range(0, rows):
        counts += tl.load(histogram_ptr + (first + row) * BINS + bins)
    cumulative = tl.cumsum(counts, axis=0).to(tl.float64)
    last = tl.sum(counts, axis=0).to(tl.float64) - 1.0
    ranks = _rank_slots(last, constants_ptr, ROBUST)
    reached = cumulative[None, :] <= ranks[:, None]  # the bins wholly at or below each rank
    prefix = tl.sum(reached.to(tl.float64), axis=1)
    below = tl.max(tl.where(reached, cumulative[None, :], 0.0), axis=1)
    return ranks, prefix, below, last


@triton.jit
def _next_level_prefixes(level_ptr, first, rows, ranks, prefix, below, ROBUST: tl.constexpr):
    """Each rank slot's key ``prefix`` one byte longer, and the values below it, from a level's
    ``[rows, slots, 256]`` histograms (``level_ptr``, rows ``first .. first + rows``) of the
    next byte of the keys that share each prefix, counted in its slot (``_counted_slot``)."""
    BINS: tl.constexpr = 256  # HISTOGRAM_BINS
    SLOTS: tl.constexpr = 6 if ROBUST else 4
    bins = tl.arange(0, BINS)
    slots = tl.arange(0, 8)
    counted = _counted_slot(prefix)
    counts = tl.zeros([8, BINS], tl.int64)
    for row in range(0, rows):
        index = ((first + row) * SLOTS + counted[:, None]) * BINS + bins[None, :]
        counts += tl.load(level_ptr + index, mask=slots[:, None] < SLOTS, other=0)
    cumulative = tl.cumsum(counts, axis=1).to(tl.float64)
    reached = cumulative <= (ranks - below)[:, None]
    prefix = prefix * BINS + tl.sum(reached.to(tl.float64), axis=1)
    return prefix, below + tl.max(tl.where(reached, cumulative, 0.0), axis=1)


@triton.jit
def _counted_slot(prefix):
    """For each rank slot, the first slot whose rank has the same key prefix (``prefix``,
    float64 ``[8]``): the next level counts the next bytes of each prefix once, in that slot
    (the two ranks around a percentile nearly always share their prefix: half the histograms)."""
    slots = tl.arange(0, 8)
    same = (prefix[:, None] == prefix[None, :]) & (slots[None, :] <= slots[:, None])
    return tl.min(tl.where(same, slots[None, :], 8), axis=1)


@triton.jit
def _level_ptr(histogram_ptr, field, level, ROBUST: tl.constexpr):
    """Where level ``level`` (1 or more) of the histograms starts: after the first level's
    ``[rows, 256]`` (``field`` counts), ``[rows, slots, 256]`` per level."""
    SLOTS: tl.constexpr = 6 if ROBUST else 4
    return histogram_ptr + field * (1 + (level - 1) * SLOTS)


@triton.jit
def _state_ptr(histogram_ptr, field, LEVELS: tl.constexpr, ROBUST: tl.constexpr, UNKEYED: tl.constexpr):
    """Where the scopes' rank states start (``rank_prefix_kernel``): after every level of
    ``LEVELS`` and, with ``UNKEYED`` (float32), the NaN counts' ``[rows, 256]``."""
    SLOTS: tl.constexpr = 6 if ROBUST else 4
    return histogram_ptr + field * (1 + (LEVELS - 1) * SLOTS + (1 if UNKEYED else 0))


@triton.jit
def _load_state(state_ptr, scope):
    """A scope's rank state (``rank_prefix_kernel``): its ranks, key prefixes and values below
    them (float64 ``[8]`` each), and its last rank."""
    slots = tl.arange(0, 8)
    base = state_ptr + scope.to(tl.int64) * 32
    ranks = tl.load(base + slots).to(tl.float64)
    prefix = tl.load(base + 8 + slots).to(tl.float64)
    below = tl.load(base + 16 + slots).to(tl.float64)
    return ranks, prefix, below, tl.load(base + 24).to(tl.float64)


@triton.jit
def rank_prefix_kernel(
    histogram_ptr,
    constants_ptr,
    rows,
    field,
    LEVEL: tl.constexpr,
    LEVELS: tl.constexpr,
    ROBUST: tl.constexpr,
    UNKEYED: tl.constexpr,
):
    """One program per scope (of ``rows`` histogram rows): the prefix of each rank's key once
    level ``LEVEL`` of the histograms is complete, the first byte from the first level
    (``_first_level_ranks``), a byte more from each level after it (``_next_level_prefixes``),
    written with the ranks, the values below each prefix and the last rank (integers, int64
    ``[4, 8]`` per scope) into the table's state (``_state_ptr``), which the next level's
    histograms and the finalize read: each scope's levels are combined once, where every
    program of the next level combined them again (a 130-channel scope's rows, or three levels
    of an RGB scope's, read by each tile)."""
    scope = tl.program_id(0).to(tl.int64)
    first = scope * rows
    state_ptr = _state_ptr(histogram_ptr, field, LEVELS, ROBUST, UNKEYED)
    if LEVEL == 0:
        ranks, prefix, below, last = _first_level_ranks(histogram_ptr, first, rows, constants_ptr, ROBUST)
    else:
        ranks, prefix, below, last = _load_state(state_ptr, scope)
        level_ptr = _level_ptr(histogram_ptr, field, LEVEL, ROBUST)
        prefix, below = _next_level_prefixes(level_ptr, first, rows, ranks, prefix, below, ROBUST)
    slots = tl.arange(0, 8)
    base = state_ptr + scope * 32
    tl.store(base + slots, ranks.to(tl.int64))
    tl.store(base + 8 + slots, prefix.to(tl.int64))
    tl.store(base + 16 + slots, below.to(tl.int64))
    tl.store(base + 24 + slots, tl.full([8], 0, tl.int64) + last.to(tl.int64))


@triton.jit(do_not_specialize=["level"])  # one compiled kernel for every level
def next_byte_histogram_kernel(
    image_ptr,
    histogram_ptr,
    selection_ptr,
    channels,
    pixels,
    blocks,
    field,
    level,
    sample_stride,
    channel_stride,
    pixel_stride,
    selection_sample_stride,
    selection_channel_stride,
    selection_pixel_stride,
    ROBUST: tl.constexpr,
    PER_CHANNEL: tl.constexpr,
    NONZERO: tl.constexpr,
    MASKED: tl.constexpr,
    TILE_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK: tl.constexpr,
    DENSE: tl.constexpr,
    LARGE: tl.constexpr,
):
    """Level ``level`` (1 of a 16-bit key's two, 1 to 3 of a 32-bit key's four) of an image's
    histograms: for each rank slot of the scope (``_rank_slots``: 4, or 6 when ``ROBUST``), the
    256-bin histogram of byte ``level`` of the keys whose first ``level`` bytes are that rank's
    (its scope's state, ``rank_prefix_kernel``), added into the zeroed int64 ``[rows, slots,
    256]`` table of the level as ``histogram_kernel`` adds: once per prefix, in its first slot
    (``_counted_slot``), where the tile has one scope. The finalize then reads each rank's key
    exactly, from 256 bins per level instead of 2**16 or 2**32. Of the selected pixels only, as
    the first level."""
    sample, channel0, keyed, _, within, key = _tile_keys(
        image_ptr, selection_ptr, channels, pixels, blocks, sample_stride, channel_stride, pixel_stride,
        selection_sample_stride, selection_channel_stride, selection_pixel_stride,
        NONZERO, MASKED, TILE_C, BLOCK_P, BLOCK, DENSE, LARGE,
    )  # fmt: skip
    BINS: tl.constexpr = 256  # HISTOGRAM_BINS
    SLOTS: tl.constexpr = 6 if ROBUST else 4
    KEY_BITS: tl.constexpr = image_ptr.dtype.element_ty.primitive_bitwidth
    UNKEYED: tl.constexpr = image_ptr.dtype.element_ty == tl.float32
    byte_shift = KEY_BITS - 8 * (level + 1)
    prefix = key >> (byte_shift + 8)
    byte = ((key >> byte_shift) & 255).to(tl.int32)
    level_ptr = _level_ptr(histogram_ptr, field, level, ROBUST)
    state_ptr = _state_ptr(histogram_ptr, field, KEY_BITS // 8, ROBUST, UNKEYED)
    slots = tl.arange(0, 8)
    row0 = sample * channels + channel0
    bins = _bins_per_tile(TILE_C)
    if PER_CHANNEL and TILE_C > 1:  # each lane's scope is its channel: a prefix per channel
        channel_slots = tl.arange(0, bins.shape[0] // BINS)
        prefixes = tl.zeros([bins.shape[0] // BINS, 8], tl.float64)
        for c in tl.static_range(TILE_C):
            _, prefix_c, _, _ = _load_state(state_ptr, row0 + c)
            prefixes = tl.where(channel_slots[:, None] == c, prefix_c[None, :], prefixes)
    else:
        _, prefix_of_rank, _, _ = _load_state(state_ptr, row0 if PER_CHANNEL else sample)
        counted = _counted_slot(prefix_of_rank)
    for s in tl.static_range(SLOTS):
        rows_ptr = level_ptr + ((row0 + bins // BINS) * SLOTS + s) * BINS  # slot s of each channel's row
        if PER_CHANNEL and TILE_C > 1:  # every slot counted: channels may share prefixes differently
            column = tl.sum(tl.where(slots[None, :] == s, prefixes, 0.0), axis=1)
            target = _spread(column, channel_slots, within, TILE_C, tl.int32)
            _add_histogram(rows_ptr, bins, keyed & (prefix == target), within, byte, BLOCK, TILE_C)
        else:
            target = tl.sum(tl.where(slots == s, prefix_of_rank, 0.0), axis=0).to(tl.int32)
            if tl.sum(tl.where(slots == s, counted, 0), axis=0) == s:  # its prefix's first slot
                _add_histogram(rows_ptr, bins, keyed & (prefix == target), within, byte, BLOCK, TILE_C)


# --------------------------------------------------------------------------- 2. finalize

# Which reduction a scope's partials come from (the ``STATISTIC`` constexpr of the finalize).
# HISTOGRAMS: of uint8 values; HISTOGRAMS_16: two levels (high bytes, then low bytes per rank)
# of the keys of uint16 and int16 values; HISTOGRAMS_32: four of the keys of int32 and float32
# values (``_histogram_key``).
MOMENTS, EXTREMES, HISTOGRAMS, HISTOGRAMS_16, HISTOGRAMS_32 = 0, 1, 2, 3, 4


@triton.jit
def _scaled_means(
    partial_ptr, first, start, count, field, largest, SCALED: tl.constexpr, BLOCK: tl.constexpr
):
    """Partials ``start .. start + BLOCK`` of a scope: their indices, which exist, pixel counts,
    means in units of ``2**-largest``, and the factors that brought them there (1 for an
    image that is not ``SCALED``: every exponent is 0, and nothing is loaded or multiplied)."""
    index = first + start + tl.arange(0, BLOCK)
    inside = start + tl.arange(0, BLOCK) < count
    weight = tl.load(partial_ptr + index, mask=inside, other=0.0)
    mean = tl.load(partial_ptr + 2 * field + index, mask=inside, other=0.0)
    if SCALED:
        exponent = tl.load(partial_ptr + field + index, mask=inside, other=0.0).to(tl.int64)
        factor = _power_of_two(largest - exponent)
        mean = mean * factor
    else:
        factor = tl.full([BLOCK], 1.0, tl.float64)
    return index, inside, weight, mean, factor


@triton.jit
def _moments_scope(
    partial_ptr, first, count, field, SCALED: tl.constexpr, SELECTED: tl.constexpr, BLOCK: tl.constexpr
):
    """(center, spread, exponent, pixels) of the ``count`` moment partials at ``first``:
    combined with Chan's parallel formula in units of the largest exponent, about the first
    partial's mean (equal means combine to exactly that mean; with ``SELECTED``, the first
    partial that holds a pixel: an empty tile's mean is 0, no value of the scope); spread = the
    population std."""
    largest = tl.zeros([], tl.int64)
    reference_at = first
    if SELECTED:
        reference_at = first + count  # none yet
        for start in range(0, count, BLOCK):
            index = first + start + tl.arange(0, BLOCK)
            inside = start + tl.arange(0, BLOCK) < count
            holds = tl.load(partial_ptr + index, mask=inside, other=0.0) > 0.0
            reference_at = tl.minimum(reference_at, tl.min(tl.where(holds, index, first + count), axis=0))
        reference_at = tl.where(reference_at < first + count, reference_at, first)  # an empty scope
    reference = tl.load(partial_ptr + 2 * field + reference_at)
    if SCALED:
        for start in range(0, count, BLOCK):
            index = first + start + tl.arange(0, BLOCK)
            inside = start + tl.arange(0, BLOCK) < count
            exponent = tl.load(partial_ptr + field + index, mask=inside, other=0.0).to(tl.int64)
            largest = tl.maximum(largest, tl.max(exponent, axis=0))
        reference_exponent = tl.load(partial_ptr + field + reference_at).to(tl.int64)
        reference = reference * _power_of_two(largest - reference_exponent)
    pixels = tl.zeros([], tl.float64)
    total = tl.zeros([], tl.float64)
    for start in range(0, count, BLOCK):
        _, _, weight, mean, _ = _scaled_means(partial_ptr, first, start, count, field, largest, SCALED, BLOCK)
        pixels += tl.sum(weight, axis=0)
        total += tl.sum(weight * (mean - reference), axis=0)
    divisor = tl.maximum(pixels, 1.0)  # a scope without a pixel (SELECTED): no 0 / 0
    center = reference + total / divisor
    m2 = tl.zeros([], tl.float64)
    for start in range(0, count, BLOCK):
        index, inside, weight, mean, factor = _scaled_means(
            partial_ptr, first, start, count, field, largest, SCALED, BLOCK
        )
        deviations = tl.load(partial_ptr + 3 * field + index, mask=inside, other=0.0)
        gap = tl.where(inside, mean - center, 0.0)
        m2 += tl.sum(deviations * factor * factor + weight * gap * gap, axis=0)
    return center, tl.sqrt(m2 / divisor), largest, pixels


@triton.jit
def _extremes_scope(
    partial_ptr, first, count, field, SCALED: tl.constexpr, SELECTED: tl.constexpr, BLOCK: tl.constexpr
):
    """(center, spread, exponent, pixels) of the ``count`` min/max partials at ``first``: the
    min, and max - min; a scope of only NaN gives NaN. ``pixels``: the selected pixels with
    ``SELECTED``, else 1 (every scope holds some)."""
    low = tl.full([], float("inf"), tl.float64)
    high = tl.full([], -float("inf"), tl.float64)
    largest = tl.zeros([], tl.int64)
    pixels = tl.full([], 1.0, tl.float64)
    if SELECTED:
        pixels = tl.zeros([], tl.float64)
    for start in range(0, count, BLOCK):
        index = first + start + tl.arange(0, BLOCK)
        inside = start + tl.arange(0, BLOCK) < count
        low = tl.minimum(low, tl.min(tl.load(partial_ptr + index, mask=inside, other=float("inf")), axis=0))
        high = tl.maximum(
            high, tl.max(tl.load(partial_ptr + field + index, mask=inside, other=-float("inf")), axis=0)
        )
        if SCALED:  # else every exponent is 0
            exponent = tl.load(partial_ptr + 2 * field + index, mask=inside, other=0.0).to(tl.int64)
            largest = tl.maximum(largest, tl.max(exponent, axis=0))
        if SELECTED:
            pixels += tl.sum(tl.load(partial_ptr + 3 * field + index, mask=inside, other=0.0), axis=0)
    empty = low > high
    factor = _power_of_two(largest)
    center = tl.where(empty, float("nan"), low * factor)
    spread = tl.where(empty, float("nan"), high * factor - low * factor)
    return center, spread, largest, pixels


@triton.jit
def _order_statistic(cumulative, rank):
    """The value of 0-based ``rank`` in a scope whose histogram has ``cumulative`` counts: the
    number of bins holding ``rank`` values or fewer up to them."""
    return tl.sum((cumulative <= rank).to(tl.float64), axis=0)


@triton.jit
def _lerp(low, high, weight):
    """``np.percentile``'s linear interpolation as NumPy writes it: from the nearer end (from
    ``low`` the other way round, a result could differ from NumPy's by an ulp)."""
    step = high - low
    return tl.where(weight < 0.5, low + step * weight, high - step * (1.0 - weight))


@triton.jit
def _percentile(cumulative, last, fraction):
    """``np.percentile``'s linear interpolation between the two order statistics around
    ``last * fraction``."""
    rank = last * fraction
    below = tl.floor(rank)
    low = _order_statistic(cumulative, below)
    high = _order_statistic(cumulative, tl.minimum(below + 1.0, last))
    return _lerp(low, high, rank - below)


@triton.jit
def _histogram_scope(histogram_ptr, first, rows, constants_ptr, ROBUST: tl.constexpr):
    """(center, spread, exponent 0, pixels) of the scope whose histograms are rows ``first ..
    first + rows``: their sum's percentiles (``constants_ptr``); ``percentile`` modes: center =
    the low percentile, spread = high - low; ``robust``: center = the median, spread = the
    interquartile range."""
    BINS: tl.constexpr = 256  # HISTOGRAM_BINS
    bins = tl.arange(0, BINS)
    counts = tl.zeros([BINS], tl.int64)
    for row in range(0, rows):
        counts += tl.load(histogram_ptr + (first + row) * BINS + bins)
    cumulative = tl.cumsum(counts, axis=0).to(tl.float64)
    last = tl.sum(counts, axis=0).to(tl.float64) - 1.0
    low = _percentile(cumulative, last, tl.load(constants_ptr + 1))
    high = _percentile(cumulative, last, tl.load(constants_ptr + 3))
    if ROBUST:
        center = _percentile(cumulative, last, tl.load(constants_ptr + 2))
    else:
        center = low
    return center, high - low, tl.zeros([], tl.int64), last + 1.0  # integers: no scaling


@triton.jit
def _slot(values, s):
    """Slot ``s`` of the float64 ``[8]`` vector ``values``."""
    return tl.sum(tl.where(tl.arange(0, 8) == s, values, 0.0), axis=0)


@triton.jit
def _interpolated(values, ranks, last, constants_ptr, pair, index):
    """``np.percentile``'s linear interpolation for fraction ``index`` of ``constants_ptr``,
    between the values of rank slots ``2 * pair`` and ``2 * pair + 1`` (``_rank_slots``)."""
    rank = last * tl.load(constants_ptr + index)
    return _lerp(_slot(values, 2 * pair), _slot(values, 2 * pair + 1), rank - _slot(ranks, 2 * pair))


@triton.jit
def _float32_of_keys(keys):
    """The float32 values (in float64) of 32-bit keys (an integer in float64 each: the inverse
    of ``_histogram_key``)."""
    key = keys.to(tl.int64)
    bits = tl.where(key >= 2147483648, key - 2147483648, -1 - key)
    return bits.to(tl.int32).to(tl.float32, bitcast=True).to(tl.float64)


@triton.jit
def _radix_scope(
    histogram_ptr, scope, first, rows, field, constants_ptr, ROBUST: tl.constexpr, LEVELS: tl.constexpr,
    SCALED: tl.constexpr,
):  # fmt: skip
    """``_histogram_scope`` of a 16-bit (``LEVELS`` 2) or 32-bit (4) image: each rank's value
    from its key, whose last byte the last level gives after the prefix of the scope's state
    (``rank_prefix_kernel``): less the key's offset (``constants_ptr`` 4: 32768 for int16,
    2**31 for int32), or from its bits (float32: ``SCALED``). A float32 scope's NaN pixels,
    counted apart, count as pixels of the scope but not as values: a scope of only NaN has no
    percentile (NaN), one of no pixel is empty. Its center and spread are in units of
    ``2**-exponent``, the exponent of the largest finite percentile (exact powers of two, as the
    moments scale)."""
    UNKEYED: tl.constexpr = SCALED  # float32
    ranks, prefix, below, last = _load_state(_state_ptr(histogram_ptr, field, LEVELS, ROBUST, UNKEYED), scope)
    level_ptr = _level_ptr(histogram_ptr, field, LEVELS - 1, ROBUST)
    keys, _ = _next_level_prefixes(level_ptr, first, rows, ranks, prefix, below, ROBUST)
    if SCALED:
        values = _float32_of_keys(keys)
    else:
        values = keys - tl.load(constants_ptr + 4)
    low_percentile = _interpolated(values, ranks, last, constants_ptr, 0, 1)
    high_percentile = _interpolated(values, ranks, last, constants_ptr, 1, 3)
    if ROBUST:
        center = _interpolated(values, ranks, last, constants_ptr, 2, 2)
    else:
        center = low_percentile
    spread = high_percentile - low_percentile
    exponent = tl.zeros([], tl.int64)
    pixels = last + 1.0
    if SCALED:
        unkeyed_ptr = _level_ptr(histogram_ptr, field, LEVELS, ROBUST)  # after the last level
        for row in range(0, rows):
            pixels += tl.load(unkeyed_ptr + (first + row) * 256).to(tl.float64)  # bin 0: the NaN
        center = tl.where(last < 0.0, float("nan"), center)
        magnitude = tl.maximum(
            tl.maximum(_finite_magnitude(low_percentile), _finite_magnitude(high_percentile)),
            _finite_magnitude(center),
        )
        exponent = _exponent(magnitude)
        factor = _power_of_two(exponent)
        center, spread = center * factor, spread * factor
    return center, spread, exponent, pixels


@triton.jit
def _scope_terms(
    partial_ptr,
    constants_ptr,
    scope,
    count,
    field,
    STATISTIC: tl.constexpr,
    SCALED: tl.constexpr,
    WIDE: tl.constexpr,
    ROBUST: tl.constexpr,
    SELECTED: tl.constexpr,
):
    """The terms of scope ``scope`` (``constants_ptr``: float64 eps, then the percentiles as
    fractions, see ``statistics.py``) from its ``count`` partials (moments, extremes) or
    histogram rows, consecutive from ``scope * count``: ``y = (x * factor - center_high) *
    scale + offset``, where ``center_high`` is the float32 part of the center and ``offset =
    -(center - center_high) * scale`` carries the rest (a near-constant image stays exact); for
    a float64 or int32 image (``WIDE``: the affine runs in float64) the whole center, with no
    offset, so that a constant image gives exactly 0 even where the affine is fused into one
    FMA. Then the center and scale in the image's units (``return_params``). An undefined
    statistic (NaN or inf reached it) gives a NaN spread, so the scope comes out NaN as
    documented, and NaN params. With ``SELECTED``, a scope without a selected pixel gets the
    terms 0 (center 0, scale 0), as on the other routes."""
    # Partials per iteration of the loops: a 224² plane has 13, a 4K one 2025; the affine finalizes
    # scopes of up to 64 (statistics.FUSED_MAX_PARTIALS) in one iteration, lanes mostly in use.
    BLOCK: tl.constexpr = 64
    first = scope.to(tl.int64) * count
    if STATISTIC == 0:
        center, spread, exponent, pixels = _moments_scope(
            partial_ptr, first, count, field, SCALED, SELECTED, BLOCK
        )
    elif STATISTIC == 1:
        center, spread, exponent, pixels = _extremes_scope(
            partial_ptr, first, count, field, SCALED, SELECTED, BLOCK
        )
    elif STATISTIC == 2:
        center, spread, exponent, pixels = _histogram_scope(partial_ptr, first, count, constants_ptr, ROBUST)
    else:
        center, spread, exponent, pixels = _radix_scope(
            partial_ptr, scope, first, count, field, constants_ptr, ROBUST, 2 if STATISTIC == 3 else 4, SCALED
        )
    if SELECTED:
        empty = pixels == 0.0
        center = tl.where(empty, 0.0, center)
        spread = tl.where(empty, 0.0, spread)
    factor = _power_of_two(exponent)
    defined = (tl.abs(center) < float("inf")) & (tl.abs(spread) < float("inf"))
    spread = tl.where(defined, spread, float("nan"))
    eps = tl.load(constants_ptr)
    scale = 1.0 / (spread + eps * factor)
    if SELECTED:
        scale = tl.where(empty, 0.0, scale)
    # In the image's units from the scale before its cap: a constant scope of values beyond
    # ~1e34 (float32) or ~4e304 (float64, where 1e4 / factor is inf) has 1e4, as at any
    # magnitude (the capped scale gave 8 and inf).
    image_scale = tl.where(scale < float("inf"), scale * factor, 1.0 / (spread / factor + eps))
    if WIDE:
        center_high = center
        scale = tl.where(scale > 1.7976931348623157e308, 1.7976931348623157e308, scale)
    else:
        center_high = center.to(tl.float32).to(tl.float64)
        scale = tl.where(scale > 3.4028234663852886e38, 3.4028234663852886e38, scale)  # NaN kept
    offset = -(center - center_high) * scale
    image_center = tl.where(defined, center / factor, float("nan"))
    return factor, center_high, scale, offset, image_center, image_scale


@triton.jit
def _store_terms(terms_ptr, scope, scopes, factor, center_high, scale, offset, center, image_scale, mask):
    """One scope's terms (``_scope_terms``) into the float64 ``[TERM_FIELDS, scopes]`` table."""
    tl.store(terms_ptr + scope, factor, mask=mask)
    tl.store(terms_ptr + scopes + scope, center_high, mask=mask)
    tl.store(terms_ptr + 2 * scopes + scope, scale, mask=mask)
    tl.store(terms_ptr + 3 * scopes + scope, offset, mask=mask)
    tl.store(terms_ptr + 4 * scopes + scope, center, mask=mask)
    tl.store(terms_ptr + 5 * scopes + scope, image_scale, mask=mask)


@triton.jit
def finalize_kernel(
    partial_ptr,
    terms_ptr,
    constants_ptr,
    count,
    scopes,
    field,
    STATISTIC: tl.constexpr,
    SCALED: tl.constexpr,
    WIDE: tl.constexpr,
    ROBUST: tl.constexpr,
    SELECTED: tl.constexpr,
):
    """One program per scope: its terms (``_scope_terms``) into ``terms_ptr``, for the affine
    of scopes of many partials (a fused affine would reduce them again in every program)."""
    scope = tl.program_id(0)
    factor, center_high, scale, offset, center, image_scale = _scope_terms(
        partial_ptr, constants_ptr, scope, count, field, STATISTIC, SCALED, WIDE, ROBUST, SELECTED
    )
    _store_terms(terms_ptr, scope, scopes, factor, center_high, scale, offset, center, image_scale, True)


# --------------------------------------------------------------------------- 3. affine


@triton.jit
def _scope_terms_of(
    partial_ptr,
    terms_ptr,
    constants_ptr,
    scope,
    first,
    scopes,
    count,
    field,
    STATISTIC: tl.constexpr,
    SCALED: tl.constexpr,
    WIDE: tl.constexpr,
    ROBUST: tl.constexpr,
    SELECTED: tl.constexpr,
    FUSED: tl.constexpr,
    RECORD: tl.constexpr,
):
    """The float64 terms (factor, center_high, scale, offset) of ``scope``: read from the
    finalize's ``[TERM_FIELDS, scopes]`` table ``terms_ptr``, or, ``FUSED``, reduced from its
    partials here (``_scope_terms``), where scopes have few partials; then with ``RECORD``
    (``return_params``) the scope's ``first`` tile also writes them to the table."""
    if FUSED:
        factor, center_high, scale, offset, center, image_scale = _scope_terms(
            partial_ptr, constants_ptr, scope, count, field, STATISTIC, SCALED, WIDE, ROBUST, SELECTED
        )
        if RECORD:
            _store_terms(
                terms_ptr, scope, scopes, factor, center_high, scale, offset, center, image_scale, first
            )
    else:
        factor = tl.load(terms_ptr + scope)
        center_high = tl.load(terms_ptr + scopes + scope)
        scale = tl.load(terms_ptr + 2 * scopes + scope)
        offset = tl.load(terms_ptr + 3 * scopes + scope)
    return factor, center_high, scale, offset


@triton.jit
def _spread(values, slots, within, TILE_C: tl.constexpr, COMPUTE: tl.constexpr):
    """Per lane, ``values[within]`` in ``COMPUTE``: each slot taken out of the small float64
    vector ``values`` as the int64 sum of its bits alone (exact, NaN and -0.0 kept), then
    selected by the lanes of its channel."""
    bits = values.to(tl.int64, bitcast=True)
    spread = tl.sum(tl.where(slots == 0, bits, 0), axis=0).to(tl.float64, bitcast=True).to(COMPUTE)
    for c in tl.static_range(1, TILE_C):
        value = tl.sum(tl.where(slots == c, bits, 0), axis=0).to(tl.float64, bitcast=True).to(COMPUTE)
        spread = tl.where(within == c, value, spread)
    return spread


@triton.jit
def _tile_terms(
    partial_ptr,
    terms_ptr,
    constants_ptr,
    sample,
    channel0,
    block,
    within,
    channels,
    scopes,
    count,
    field,
    STATISTIC: tl.constexpr,
    SCALED: tl.constexpr,
    WIDE: tl.constexpr,
    ROBUST: tl.constexpr,
    SELECTED: tl.constexpr,
    PER_CHANNEL: tl.constexpr,
    FUSED: tl.constexpr,
    RECORD: tl.constexpr,
    TILE_C: tl.constexpr,
):
    """The terms (factor, center_high, scale, offset) of each lane's scope in the affine's
    precision (``_scope_terms_of``): a scalar each where the tile has one scope (a planar tile,
    or a whole-sample mode); else one per lane, the channels' terms gathered in a loop into
    small vectors first, then spread over the lanes. Spread as each channel's terms came, the
    lanes' terms stayed in registers through the next channel's finalize (sm_90: 119 registers
    a thread on average over the RGB channels_last variants, 220 at most)."""
    COMPUTE: tl.constexpr = tl.float64 if WIDE else tl.float32
    if PER_CHANNEL and TILE_C > 1:
        SLOTS: tl.constexpr = 4 if TILE_C <= 4 else 8 if TILE_C <= 8 else 16  # a power of two
        slots = tl.arange(0, SLOTS)
        factors = tl.zeros([SLOTS], tl.float64)
        centers = tl.zeros([SLOTS], tl.float64)
        scales = tl.zeros([SLOTS], tl.float64)
        offsets = tl.zeros([SLOTS], tl.float64)
        for c in range(TILE_C):  # a loop, not unrolled: one finalize's registers
            f, ch, sc, of = _scope_terms_of(
                partial_ptr, terms_ptr, constants_ptr, sample * channels + channel0 + c, block == 0,
                scopes, count, field, STATISTIC, SCALED, WIDE, ROBUST, SELECTED, FUSED, RECORD,
            )  # fmt: skip
            factors = tl.where(slots == c, f, factors)
            centers = tl.where(slots == c, ch, centers)
            scales = tl.where(slots == c, sc, scales)
            offsets = tl.where(slots == c, of, offsets)
        factor = _spread(factors, slots, within, TILE_C, COMPUTE)
        center_high = _spread(centers, slots, within, TILE_C, COMPUTE)
        scale = _spread(scales, slots, within, TILE_C, COMPUTE)
        offset = _spread(offsets, slots, within, TILE_C, COMPUTE)
    else:
        if PER_CHANNEL:
            scope = sample * channels + channel0
            first = block == 0
        else:
            scope = sample
            first = (block == 0) & (channel0 == 0)
        factor, center_high, scale, offset = _scope_terms_of(
            partial_ptr, terms_ptr, constants_ptr, scope, first, scopes, count, field,
            STATISTIC, SCALED, WIDE, ROBUST, SELECTED, FUSED, RECORD,
        )  # fmt: skip
        factor, center_high = factor.to(COMPUTE), center_high.to(COMPUTE)
        scale, offset = scale.to(COMPUTE), offset.to(COMPUTE)
    return factor, center_high, scale, offset


@triton.jit
def _affine_tiles(
    blocks,
    channels,
    pixels,
    sample_stride,
    channel_stride,
    pixel_stride,
    out_sample_stride,
    out_channel_stride,
    out_pixel_stride,
    TILE_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK: tl.constexpr,
    DENSE: tl.constexpr,
    LARGE: tl.constexpr,
):
    """This program's sample, first channel and pixel block, and the offsets of its tile in the
    image and in the output, the tile's mask and the channel of each lane in the tile."""
    sample, channel0, block = _program(blocks, channels, TILE_C, LARGE)
    offsets, mask, within = _tile(
        sample, channel0, block, pixels, sample_stride, channel_stride, pixel_stride,
        TILE_C, BLOCK_P, BLOCK, DENSE, LARGE,
    )  # fmt: skip
    out_offsets, _, _ = _tile(
        sample, channel0, block, pixels, out_sample_stride, out_channel_stride, out_pixel_stride,
        TILE_C, BLOCK_P, BLOCK, DENSE, LARGE,
    )  # fmt: skip
    return sample, channel0, block, offsets, out_offsets, mask, within


@triton.jit
def _clipped(y, clip_low, clip_high, CLIP: tl.constexpr):
    """``y`` clipped to [clip_low, clip_high] with ``CLIP``, NaN kept."""
    if CLIP:
        y = tl.minimum(
            tl.maximum(y, clip_low, propagate_nan=tl.PropagateNan.ALL),
            clip_high,
            propagate_nan=tl.PropagateNan.ALL,
        )
    return y


@triton.jit
def _store(y, out_ptr, out_offsets, mask):
    """Rounded once to the output dtype from float32 (the half output is the float32 output
    rounded, for float64 input too)."""
    y = y.to(tl.float32)
    if out_ptr.dtype.element_ty == tl.bfloat16:
        tl.store(out_ptr + out_offsets, _to_bfloat16(y), mask=mask)
    else:
        tl.store(out_ptr + out_offsets, y.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def standard_kernel(
    image_ptr,
    out_ptr,
    constants_ptr,
    channels,
    pixels,
    blocks,
    sample_stride,
    channel_stride,
    pixel_stride,
    out_sample_stride,
    out_channel_stride,
    out_pixel_stride,
    clip_low,
    clip_high,
    CLIP: tl.constexpr,
    TILE_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK: tl.constexpr,
    DENSE: tl.constexpr,
    LARGE: tl.constexpr,
):
    """The standard mode, ``y = x * scale + offset`` with the float32 ``[scale, offset]`` of
    each channel (``constants_ptr``, ``[2, channels]``), computed in float32. A kernel of its
    own, with only the arguments it reads: Triton binds every argument of every launch on the
    host (~0.2 us each, benchmarks/bench_triton_host.py)."""
    _, channel0, _, offsets, out_offsets, mask, within = _affine_tiles(
        blocks, channels, pixels, sample_stride, channel_stride, pixel_stride,
        out_sample_stride, out_channel_stride, out_pixel_stride, TILE_C, BLOCK_P, BLOCK, DENSE, LARGE,
    )  # fmt: skip
    x = tl.load(image_ptr + offsets, mask=mask, other=0).to(tl.float32)
    scale = tl.load(constants_ptr + channel0)
    offset = tl.load(constants_ptr + channels + channel0)
    for c in tl.static_range(1, TILE_C):  # the other channels of an interleaved tile
        scale = tl.where(within == c, tl.load(constants_ptr + channel0 + c), scale)
        offset = tl.where(within == c, tl.load(constants_ptr + channels + channel0 + c), offset)
    _store(_clipped(x * scale + offset, clip_low, clip_high, CLIP), out_ptr, out_offsets, mask)


@triton.jit
def affine_kernel(
    image_ptr,
    out_ptr,
    terms_ptr,
    partial_ptr,
    constants_ptr,
    scopes,
    count,
    field,
    channels,
    pixels,
    blocks,
    sample_stride,
    channel_stride,
    pixel_stride,
    out_sample_stride,
    out_channel_stride,
    out_pixel_stride,
    clip_low,
    clip_high,
    SCALED: tl.constexpr,
    CLIP: tl.constexpr,
    WIDE: tl.constexpr,
    FUSED: tl.constexpr,
    STATISTIC: tl.constexpr,
    ROBUST: tl.constexpr,
    NONZERO: tl.constexpr,
    SELECTED: tl.constexpr,
    PER_CHANNEL: tl.constexpr,
    RECORD: tl.constexpr,
    TILE_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK: tl.constexpr,
    DENSE: tl.constexpr,
    LARGE: tl.constexpr,
):
    """The per-image modes: ``y = (x * factor - center_high) * scale + offset`` with the terms
    of each lane's scope (a channel of a sample, or the sample: ``_tile_terms``), computed in
    float32 (float64 when ``WIDE``: a float64 or int32 image), clipped and rounded once to the
    output dtype; with ``NONZERO`` (statistics of the non-zero pixels), every zero pixel
    exactly 0, clip or not; with ``SELECTED`` (statistics of selected pixels: ``nonzero``, a
    mask), every pixel of a scope without a selected one exactly 0 (its terms are 0: a NaN or
    inf pixel outside a mask would give NaN)."""
    sample, channel0, block, offsets, out_offsets, mask, within = _affine_tiles(
        blocks, channels, pixels, sample_stride, channel_stride, pixel_stride,
        out_sample_stride, out_channel_stride, out_pixel_stride, TILE_C, BLOCK_P, BLOCK, DENSE, LARGE,
    )  # fmt: skip
    # The terms first, then the pixels: loaded before them, the pixels stayed in registers
    # through the fused finalize (sm_90: 66 registers a thread on average over the planar
    # variants, 44 this way; 139 and 119 for RGB channels_last tiles).
    factor, center, scale, offset = _tile_terms(
        partial_ptr, terms_ptr, constants_ptr, sample, channel0, block, within, channels, scopes,
        count, field, STATISTIC, SCALED, WIDE, ROBUST, SELECTED, PER_CHANNEL, FUSED, RECORD, TILE_C,
    )  # fmt: skip
    pixel = tl.load(image_ptr + offsets, mask=mask, other=0).to(tl.float64 if WIDE else tl.float32)
    x = pixel * factor if SCALED else pixel
    y = _clipped((x - center) * scale + offset, clip_low, clip_high, CLIP)
    if NONZERO:  # the pixel as loaded: a scaled subnormal could become 0
        y = tl.where(pixel == 0, 0.0, y)
    if SELECTED:  # only an empty scope's scale is 0 (others': 1 / (spread + eps), spread finite)
        y = tl.where(scale == 0, 0.0, y)
    _store(y, out_ptr, out_offsets, mask)


INTERPRETED: bool = bool(triton.knobs.runtime.interpret)

if INTERPRETED:

    @triton.jit
    def _to_bfloat16(y):
        """float32 -> bfloat16, rounded to nearest even from the bits: Triton's interpreter
        truncates instead (its casts to bfloat16 do not round), and the tests run there."""
        bits = y.to(tl.uint32, bitcast=True)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        rounded = tl.where(y == y, rounded, 0x7FC0)  # NaN stays a quiet NaN
        return rounded.to(tl.uint16).to(tl.bfloat16, bitcast=True)

else:

    @triton.jit
    def _to_bfloat16(y):
        """float32 -> bfloat16, rounded to nearest even by the hardware (``cvt.rn.bf16x2.f32``
        in sm_90 PTX; tests/test_backend_triton.py checks the bits on CUDA). The rounding from
        the bits, as interpreted, took 128 registers a thread instead of 64 in an RGB
        channels_last per-channel affine."""
        return y.to(tl.bfloat16)
