/*
 * One-pass CPU kernels for the NumPy backend: the fused affine (any supported dtype in, float32
 * out), per-lane min/max and per-channel histograms (the percentile modes and norm_transforms.stats),
 * and the gather and zeroing of the selected-pixel statistics (nonzero=True, masks).
 *
 * Why C: OpenCV has no call that converts uint8 to float32 and applies a per-channel
 * multiply-add in one pass; its routes (addWeighted, convert + transform) cost 2-3x the astype
 * floor, where this loop runs at 1.0-1.1x it (RGB 224²..1024², single thread). Per-channel
 * min/max has no OpenCV call at all, and the one-channel loop matches cv2.minMaxLoc while
 * skipping NaN. These loops read the input once and write the output once, and the compiler
 * vectorizes them (an AVX-512 or AVX2 clone is picked at load time where the CPU has it). The moments
 * take one pass with the extremes (see "moments"), where cv2.meanStdDev cost 3x a read.
 *
 * Data layout: the source is C-contiguous and read flat, channels interleaved, so value i
 * belongs to channel i % channels. An optional `block` groups values first: value i belongs to
 * table entry (i / block) % entries, which serves channel-planar data (Torch's (N, C, H, W):
 * block = H * W, one entry per channel or per plane) and one scope per sample (block = C * H * W)
 * in a single call, where a call per plane measured ~5 µs of glue each. The loops run over
 * "lanes", a period of the flat index that
 * is a multiple of the channel count (each lane holds one channel) and of 32 (whole AVX2
 * vectors of uint8), so the inner loop over lanes is a clean vector loop; per-channel tables
 * are tiled to that length here. Buffers are validated (format, contiguity, sizes), so a wrong
 * call raises, never crashes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_pool.h"

/* target_clones dispatches through an ifunc, which only glibc's loader provides: musl and Mach-O
 * (macOS) builds refuse it, so they get the plain loop (vectorized for the baseline ISA). */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && !defined(__INTEL_COMPILER) && \
    defined(__GLIBC__)
/* x86-64-v4 (AVX-512) is picked where the CPU has it: the uint8 affine at 224x224x3 measured
 * 17 us against 21 us for the AVX2 clone, min/max of 3 channels 5 against 8 us (Xeon, GCC 12). */
#define VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VECTOR_CLONES
#endif

#if defined(_MSC_VER)
#define RESTRICT __restrict
#else
#define RESTRICT restrict
#endif

/* float16 -> float32 for all 65536 bit patterns, built once at import: exact, portable (no
 * F16C or _Float16 needed) and an L2-resident lookup per value. */
static float half_to_float[65536];

static float decode_half(uint16_t bits)
{
    uint32_t sign = (uint32_t)(bits >> 15) << 31;
    uint32_t exponent = (bits >> 10) & 0x1f;
    uint32_t mantissa = bits & 0x3ff;
    float magnitude;
    if (exponent == 0) {
        magnitude = ldexpf((float)mantissa, -24); /* zero and subnormals */
    } else if (exponent == 31) {
        magnitude = mantissa ? NAN : INFINITY;
    } else {
        magnitude = ldexpf((float)(mantissa | 0x400), (int)exponent - 25);
    }
    uint32_t word;
    memcpy(&word, &magnitude, sizeof word);
    word |= sign;
    memcpy(&magnitude, &word, sizeof word);
    return magnitude;
}

#define LOAD_PLAIN(x) (x)
#define LOAD_HALF(x) (half_to_float[(x)])

/* ------------------------------------------------------------------ float16 output */

/* float32 -> float16 bits, rounded to nearest even, where the CPU has no F16C: normal halves
 * rebias the exponent (127 -> 15) and round the 13 dropped bits to even (+0xfff plus the kept
 * lowest bit; a carry past 65504 lands on infinity's bits); below 2**-14, adding 0.5f (whose
 * last place is 2**-24, the subnormal step) lets the float adder round; 2**16 and above give
 * infinity, NaN a quiet NaN. ~0.5 ns a value here (NumPy's astype(float16): ~2 ns). */
static uint16_t encode_half(float value)
{
    uint32_t bits, shifted_bits;
    memcpy(&bits, &value, sizeof bits);
    uint32_t magnitude = bits & 0x7fffffffu, half;
    float shifted = fabsf(value) + 0.5f;
    memcpy(&shifted_bits, &shifted, sizeof shifted_bits);
    if (magnitude > 0x7f800000u)
        half = 0x7e00u;
    else if (magnitude >= (143u << 23))
        half = 0x7c00u;
    else if (magnitude < (113u << 23))
        half = shifted_bits - 0x3f000000u;
    else
        half = (magnitude - (112u << 23) + 0xfffu + ((magnitude >> 13) & 1u)) >> 13;
    return (uint16_t)(half | ((bits >> 16) & 0x8000u));
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define HAS_F16C_PATH 1
/* F16C converts 8 values per instruction, rounding to nearest even: 10 us for a 224x224x3
 * image, where the portable loop takes 80 us. */
__attribute__((target("avx,f16c"))) static void narrow_f16c(const float *src, uint16_t *dst,
                                                             Py_ssize_t n)
{
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}
#endif

static int cpu_has_f16c = 0; /* set at import */

static void narrow_to_half(const float *src, uint16_t *dst, Py_ssize_t n)
{
#ifdef HAS_F16C_PATH
    if (cpu_has_f16c) {
        narrow_f16c(src, dst, n);
        return;
    }
#endif
    for (Py_ssize_t i = 0; i < n; i++)
        dst[i] = encode_half(src[i]);
}

/* ------------------------------------------------------------------ lanes */

/* Rounds of 96+ values measured fastest for the affine (48: ~10% slower); min/max wants 384+,
 * as its loop also loads and stores the running extremes. */
#define AFFINE_MIN_LANES 96
#define MIN_MAX_MIN_LANES 384
#define VECTOR_BYTES 32
#define MAX_PADDED_CHANNELS 1024 /* beyond this, rows of `channels` values are long enough */

static Py_ssize_t gcd(Py_ssize_t a, Py_ssize_t b)
{
    while (b) {
        Py_ssize_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static Py_ssize_t lane_count(Py_ssize_t channels, Py_ssize_t at_least)
{
    Py_ssize_t period = channels;
    if (channels <= MAX_PADDED_CHANNELS)
        period = channels / gcd(channels, VECTOR_BYTES) * VECTOR_BYTES;
    return period * ((at_least + period - 1) / period);
}

/* ------------------------------------------------------------------ affine */

/* dst[i] = clamp(float(src[i]) * scale[k] + offset[k], low, high), k = i % lanes. float64 and int32
 * input are rounded to float32 first, like every other route of the backend (the centered route,
 * in Python, handles the samples where that rounding would show). The clamp costs nothing
 * in a loop bound by memory, and its comparisons are false for NaN, so NaN stays NaN. */
#define AFFINE_VALUE(x, k)                                                                         \
    float v = (float)(x) * scale[k] + offset[k];                                                   \
    v = v < low ? low : v;                                                                         \
    v = v > high ? high : v

/* The loops for the usual lanes (AFFINE_MIN_LANES: every channel count that divides 96, and
 * blocks) hold the tables in registers, where a run-time lane count reloads them from memory and
 * runs each round as a 64-value vector step plus a 32-value remainder. They start at the first
 * 64-byte boundary of the output (the values before it done one by one, the tables rotated to
 * match), because np.empty's float32 buffers sit 16 bytes past one, which splits every AVX-512
 * store across two cache lines: uint8 RGB at 224x224, 15.9 -> 13.0 us (astype: 12.7) with the
 * output 16 bytes off, the same as before when it happens to be aligned. With both bounds
 * infinite the loop skips the clamp (the same values: no comparison is true then); measured
 * within noise of the clamped loop once aligned, but it is one branch a call. Tried and not
 * kept: AVX-512 intrinsics that widen uint8 to int32 in one step (vpmovzxbd from memory), no
 * faster than GCC's two-step widening here: the loop is bound by the stores. */
#define AFFINE_FIXED_LANES AFFINE_MIN_LANES
#define AFFINE_ALIGN 64
#define AFFINE_UNCLIPPED(x, k) float v = (float)(x) * scale[k] + offset[k]

#define AFFINE_ROUNDS(LANES, LOAD, VALUE)                                                          \
    Py_ssize_t i = 0;                                                                              \
    for (; i + (LANES) <= n; i += (LANES))                                                         \
        for (Py_ssize_t k = 0; k < (LANES); k++) {                                                 \
            VALUE(LOAD(src[i + k]), k);                                                            \
            dst[i + k] = v;                                                                        \
        }                                                                                          \
    for (Py_ssize_t k = 0; i + k < n; k++) {                                                       \
        VALUE(LOAD(src[i + k]), k);                                                                \
        dst[i + k] = v;                                                                            \
    }

#define DEFINE_AFFINE(NAME, TYPE, LOAD)                                                            \
    VECTOR_CLONES static void NAME##_any(const TYPE *RESTRICT src, float *RESTRICT dst,            \
                                         Py_ssize_t n, const float *RESTRICT scale,                \
                                         const float *RESTRICT offset, Py_ssize_t lanes,           \
                                         float low, float high)                                    \
    {                                                                                              \
        AFFINE_ROUNDS(lanes, LOAD, AFFINE_VALUE)                                                   \
    }                                                                                              \
    VECTOR_CLONES static void NAME##_fixed(const TYPE *RESTRICT src, float *RESTRICT dst,          \
                                           Py_ssize_t n, const float *RESTRICT table_scale,        \
                                           const float *RESTRICT table_offset, float low,          \
                                           float high)                                             \
    {                                                                                              \
        float scale[AFFINE_FIXED_LANES], offset[AFFINE_FIXED_LANES];                               \
        Py_ssize_t head = 0;                                                                       \
        if ((uintptr_t)dst % sizeof(float) == 0) {                                                 \
            head = (Py_ssize_t)((AFFINE_ALIGN - (uintptr_t)dst % AFFINE_ALIGN) % AFFINE_ALIGN /    \
                                sizeof(float));                                                    \
            head = head < n ? head : n;                                                            \
        }                                                                                          \
        for (Py_ssize_t k = 0; k < head; k++) {                                                    \
            float v = (float)LOAD(src[k]) * table_scale[k] + table_offset[k];                      \
            v = v < low ? low : v;                                                                 \
            dst[k] = v > high ? high : v;                                                          \
        }                                                                                          \
        for (int k = 0; k < AFFINE_FIXED_LANES; k++) {                                             \
            scale[k] = table_scale[(k + head) % AFFINE_FIXED_LANES];                               \
            offset[k] = table_offset[(k + head) % AFFINE_FIXED_LANES];                             \
        }                                                                                          \
        src += head;                                                                               \
        dst += head;                                                                               \
        n -= head;                                                                                 \
        if (low == -INFINITY && high == INFINITY) {                                                \
            AFFINE_ROUNDS(AFFINE_FIXED_LANES, LOAD, AFFINE_UNCLIPPED)                              \
        } else {                                                                                   \
            AFFINE_ROUNDS(AFFINE_FIXED_LANES, LOAD, AFFINE_VALUE)                                  \
        }                                                                                          \
    }                                                                                              \
    static void NAME(const TYPE *src, float *dst, Py_ssize_t n, const float *scale,                \
                     const float *offset, Py_ssize_t lanes, float low, float high)                 \
    {                                                                                              \
        if (lanes == AFFINE_FIXED_LANES)                                                           \
            NAME##_fixed(src, dst, n, scale, offset, low, high);                                   \
        else                                                                                       \
            NAME##_any(src, dst, n, scale, offset, lanes, low, high);                              \
    }

DEFINE_AFFINE(affine_u8, uint8_t, LOAD_PLAIN)
DEFINE_AFFINE(affine_u16, uint16_t, LOAD_PLAIN)
DEFINE_AFFINE(affine_s16, int16_t, LOAD_PLAIN)
DEFINE_AFFINE(affine_s32, int32_t, LOAD_PLAIN)
DEFINE_AFFINE(affine_f16, uint16_t, LOAD_HALF)
DEFINE_AFFINE(affine_f32, float, LOAD_PLAIN)
DEFINE_AFFINE(affine_f64, double, LOAD_PLAIN)

/* In place on float32 (the float16 route converts into the output first): one pointer, so the
 * loop vectorizes without an aliasing question. */
VECTOR_CLONES static void affine_f32_in_place(float *RESTRICT data, Py_ssize_t n,
                                              const float *RESTRICT scale,
                                              const float *RESTRICT offset, Py_ssize_t lanes,
                                              float low, float high)
{
    Py_ssize_t i = 0;
    for (; i + lanes <= n; i += lanes)
        for (Py_ssize_t k = 0; k < lanes; k++) {
            AFFINE_VALUE(data[i + k], k);
            data[i + k] = v;
        }
    for (Py_ssize_t k = 0; i + k < n; k++) {
        AFFINE_VALUE(data[i + k], k);
        data[i + k] = v;
    }
}

/* ------------------------------------------------------------------ min / max */

/* Per lane, in the input's own type (uint8 lanes compare 32 at a time), then folded per
 * channel. `v < low ? v : low` is false for NaN, so NaN values are skipped; a channel with no
 * other value gets NaN for both. */
#define DEFINE_MIN_MAX(NAME, TYPE, ACC, LOAD, ACC_LOWEST, ACC_HIGHEST)                            \
    VECTOR_CLONES static void NAME##_lanes(const TYPE *RESTRICT src, Py_ssize_t n,                \
                                           ACC *RESTRICT low, ACC *RESTRICT high,                 \
                                           Py_ssize_t lanes)                                      \
    {                                                                                             \
        Py_ssize_t i = 0;                                                                         \
        for (; i + lanes <= n; i += lanes)                                                        \
            for (Py_ssize_t k = 0; k < lanes; k++) {                                              \
                ACC v = (ACC)LOAD(src[i + k]);                                                    \
                low[k] = v < low[k] ? v : low[k];                                                 \
                high[k] = v > high[k] ? v : high[k];                                              \
            }                                                                                     \
        for (Py_ssize_t k = 0; i + k < n; k++) {                                                  \
            ACC v = (ACC)LOAD(src[i + k]);                                                        \
            low[k] = v < low[k] ? v : low[k];                                                     \
            high[k] = v > high[k] ? v : high[k];                                                  \
        }                                                                                         \
    }                                                                                             \
    static void NAME(const TYPE *src, Py_ssize_t n, double *low, double *high,                    \
                     Py_ssize_t channels, Py_ssize_t lanes, void *scratch)                        \
    {                                                                                             \
        ACC *lo = (ACC *)scratch, *hi = lo + lanes;                                               \
        for (Py_ssize_t k = 0; k < lanes; k++) {                                                  \
            lo[k] = ACC_HIGHEST;                                                                  \
            hi[k] = ACC_LOWEST;                                                                   \
        }                                                                                         \
        NAME##_lanes(src, n, lo, hi, lanes);                                                      \
        for (Py_ssize_t c = 0; c < channels; c++) {                                               \
            for (Py_ssize_t k = c + channels; k < lanes; k += channels) {                         \
                lo[c] = lo[k] < lo[c] ? lo[k] : lo[c];                                            \
                hi[c] = hi[k] > hi[c] ? hi[k] : hi[c];                                            \
            }                                                                                     \
            int empty = lo[c] > hi[c];                                                            \
            low[c] = empty ? NAN : (double)lo[c];                                                 \
            high[c] = empty ? NAN : (double)hi[c];                                                \
        }                                                                                         \
    }

/* One channel (a planar block, a one-channel image): a fixed 128 bytes of lanes whose extremes
 * stay in registers, where the general loop above keeps its lanes in memory; measured 2-3x
 * faster on a 224x224 float32 plane. */
#define ONE_CHANNEL_BYTES 128
#define DEFINE_MIN_MAX_ONE(NAME, TYPE, ACC, LOAD, ACC_LOWEST, ACC_HIGHEST)                        \
    VECTOR_CLONES static void NAME##_one(const TYPE *RESTRICT src, Py_ssize_t n, double *low,     \
                                         double *high)                                            \
    {                                                                                             \
        enum { LANES = ONE_CHANNEL_BYTES / sizeof(ACC) };                                         \
        ACC lo[LANES], hi[LANES];                                                                 \
        for (int k = 0; k < LANES; k++) {                                                         \
            lo[k] = ACC_HIGHEST;                                                                  \
            hi[k] = ACC_LOWEST;                                                                   \
        }                                                                                         \
        Py_ssize_t i = 0;                                                                         \
        for (; i + LANES <= n; i += LANES)                                                        \
            for (int k = 0; k < LANES; k++) {                                                     \
                ACC v = (ACC)LOAD(src[i + k]);                                                    \
                lo[k] = v < lo[k] ? v : lo[k];                                                    \
                hi[k] = v > hi[k] ? v : hi[k];                                                    \
            }                                                                                     \
        for (int k = 0; i + k < n; k++) {                                                         \
            ACC v = (ACC)LOAD(src[i + k]);                                                        \
            lo[k] = v < lo[k] ? v : lo[k];                                                        \
            hi[k] = v > hi[k] ? v : hi[k];                                                        \
        }                                                                                         \
        for (int k = 1; k < LANES; k++) {                                                         \
            lo[0] = lo[k] < lo[0] ? lo[k] : lo[0];                                                \
            hi[0] = hi[k] > hi[0] ? hi[k] : hi[0];                                                \
        }                                                                                         \
        int empty = lo[0] > hi[0];                                                                \
        *low = empty ? NAN : (double)lo[0];                                                       \
        *high = empty ? NAN : (double)hi[0];                                                      \
    }

#define DEFINE_MIN_MAX_BOTH(NAME, TYPE, ACC, LOAD, ACC_LOWEST, ACC_HIGHEST)                       \
    DEFINE_MIN_MAX(NAME, TYPE, ACC, LOAD, ACC_LOWEST, ACC_HIGHEST)                                \
    DEFINE_MIN_MAX_ONE(NAME, TYPE, ACC, LOAD, ACC_LOWEST, ACC_HIGHEST)

DEFINE_MIN_MAX_BOTH(min_max_u8, uint8_t, uint8_t, LOAD_PLAIN, 0, UINT8_MAX)
DEFINE_MIN_MAX_BOTH(min_max_u16, uint16_t, uint16_t, LOAD_PLAIN, 0, UINT16_MAX)
DEFINE_MIN_MAX_BOTH(min_max_s16, int16_t, int16_t, LOAD_PLAIN, INT16_MIN, INT16_MAX)
DEFINE_MIN_MAX_BOTH(min_max_s32, int32_t, int32_t, LOAD_PLAIN, INT32_MIN, INT32_MAX)
DEFINE_MIN_MAX_BOTH(min_max_f16, uint16_t, float, LOAD_HALF, -INFINITY, INFINITY)
DEFINE_MIN_MAX_BOTH(min_max_f32, float, float, LOAD_PLAIN, -INFINITY, INFINITY)
DEFINE_MIN_MAX_BOTH(min_max_f64, double, double, LOAD_PLAIN, -INFINITY, INFINITY)

/* ------------------------------------------------------------------ histogram */

/* counts[c][v] += how many values of channel c equal v. Dataset statistics keep uint8, uint16
 * and int16 images as exact histograms; decoding a 256x256 RGB file takes ~0.6-1.3 ms, and the counting
 * must stay a few percent of that. cv2.calcHist (one call per channel) takes ~105 us there,
 * np.bincount ~350 us; this loop ~75 us, close to one increment per cycle, the bound of a scalar
 * read-modify-write. uint8 values go to uint32 tables, two per channel (even and odd pixels), so
 * that the runs of equal values of smooth images do not chain every increment through one
 * counter; the tables are added to the int64 counts after each block. A channel count known at
 * compile time (1-4) measured 2x faster than a run-time one. uint16 values go straight to the
 * int64 counts: two 65536-entry tables per channel would cost more to clear than they save; int16
 * values too, to bin v + 32768, which is their bits with the sign bit flipped. */
#define HISTOGRAM_COPIES 2
#define HISTOGRAM_BLOCK_PIXELS ((Py_ssize_t)1 << 30) /* a uint32 counter sees at most half */

/* Inlined into each specialization, so that the channel count is a constant there. */
#if defined(_MSC_VER)
#define ALWAYS_INLINE __forceinline
#else
#define ALWAYS_INLINE inline __attribute__((always_inline))
#endif

static ALWAYS_INLINE void count_u8(const uint8_t *RESTRICT src, Py_ssize_t pixels,
                                   Py_ssize_t channels, uint32_t *RESTRICT tables)
{
    /* Value k of each round of HISTOGRAM_COPIES pixels goes to table k (copy k / channels,
     * channel k % channels). */
    Py_ssize_t round = HISTOGRAM_COPIES * channels, n = pixels * channels, i = 0;
    for (; i + round <= n; i += round)
        for (Py_ssize_t k = 0; k < round; k++)
            tables[k * 256 + src[i + k]]++;
    for (Py_ssize_t k = 0; i + k < n; k++)
        tables[k * 256 + src[i + k]]++;
}

#define DEFINE_COUNT_U8(NAME, CHANNELS)                                                           \
    static void NAME(const uint8_t *src, Py_ssize_t pixels, Py_ssize_t channels, uint32_t *tables) \
    {                                                                                             \
        (void)channels; /* CHANNELS is this constant, or the argument itself */                   \
        count_u8(src, pixels, CHANNELS, tables);                                                  \
    }

DEFINE_COUNT_U8(count_u8_1, 1)
DEFINE_COUNT_U8(count_u8_2, 2)
DEFINE_COUNT_U8(count_u8_3, 3)
DEFINE_COUNT_U8(count_u8_4, 4)
DEFINE_COUNT_U8(count_u8_any, channels)

static void histogram_u8(const uint8_t *src, Py_ssize_t n, Py_ssize_t channels, int64_t *counts,
                         uint32_t *tables)
{
    void (*count)(const uint8_t *, Py_ssize_t, Py_ssize_t, uint32_t *) =
        channels == 1   ? count_u8_1
        : channels == 2 ? count_u8_2
        : channels == 3 ? count_u8_3
        : channels == 4 ? count_u8_4
                        : count_u8_any;
    Py_ssize_t pixels = n / channels, table_values = HISTOGRAM_COPIES * channels * 256;
    for (Py_ssize_t start = 0; start < pixels; start += HISTOGRAM_BLOCK_PIXELS) {
        Py_ssize_t block = pixels - start < HISTOGRAM_BLOCK_PIXELS ? pixels - start
                                                                   : HISTOGRAM_BLOCK_PIXELS;
        memset(tables, 0, (size_t)table_values * sizeof *tables);
        count(src + start * channels, block, channels, tables);
        for (Py_ssize_t k = 0; k < table_values; k++)
            counts[(k / 256) % channels * 256 + k % 256] += tables[k];
    }
}

/* uint16, or int16 read through its bits (`flip` = 0x8000: v + 32768); the two types may alias. */
static void histogram_16(const uint16_t *src, Py_ssize_t n, Py_ssize_t channels, int64_t *counts,
                         uint16_t flip)
{
    for (Py_ssize_t i = 0; i < n; i += channels)
        for (Py_ssize_t c = 0; c < channels; c++)
            counts[c * 65536 + (uint16_t)(src[i + c] ^ flip)]++;
}

/* ------------------------------------------------------------------ Python glue */

typedef struct {
    Py_buffer view;
    int held;
    char code; /* canonical_code() of the view */
} Buffer;

static void release(Buffer *buffers, int count)
{
    for (int i = 0; i < count; i++)
        if (buffers[i].held) {
            PyBuffer_Release(&buffers[i].view);
            buffers[i].held = 0;
        }
}

/* The single-character struct code of a buffer ('B', 'H', 'h', 'i', 'e', 'f', 'd', ...), or 0. */
static char format_code(const Py_buffer *view)
{
    const char *format = view->format ? view->format : "B";
    if (format[0] == '=' || format[0] == '@' || format[0] == '<')
        format++;
    return format[0] && !format[1] ? format[0] : 0;
}

/* The struct code with the signed integers named by their size: 'h' int16, 'i' int32 ('i', or 'l'
 * where long has 4 bytes: Windows), 'q' int64 ('l' on LP64 platforms, 'q'); 0 for an integer code
 * of another size. The kernels switch on it. */
static char canonical_code(const Py_buffer *view)
{
    char code = format_code(view);
    switch (code) {
    case 'h': return view->itemsize == 2 ? 'h' : 0;
    case 'i':
    case 'l':
    case 'q': return view->itemsize == 4 ? 'i' : view->itemsize == 8 ? 'q' : 0;
    default: return code;
    }
}

/* Acquire a C-contiguous buffer whose canonical code is one of `codes` ('q' means int64);
 * `what` names them in the error. */
static int acquire(PyObject *object, Buffer *buffer, int writable, const char *codes,
                   const char *what, const char *name)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(object, &buffer->view, flags) < 0)
        return -1;
    buffer->held = 1;
    buffer->code = canonical_code(&buffer->view);
    if (buffer->code == 0 || !strchr(codes, buffer->code)) {
        PyErr_Format(PyExc_TypeError, "%s must hold %s values, got format '%s'", name, what,
                     buffer->view.format ? buffer->view.format : "B");
        return -1;
    }
    return 0;
}

#define ANY_SOURCE "BHhiefd", "uint8, uint16, int16, int32, float16, float32 or float64"
#define FLOAT32 "f", "float32"
#define FLOAT64 "d", "float64"

static Py_ssize_t length(const Buffer *buffer)
{
    return buffer->view.len / buffer->view.itemsize;
}

static int check_arg_count(Py_ssize_t given, Py_ssize_t expected, const char *name)
{
    if (given != expected && given != expected + 1) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd or %zd arguments (%zd given)", name, expected,
                     expected + 1, given);
        return -1;
    }
    return 0;
}

/* The kernels without an optional `block`. */
static int check_exact_arg_count(Py_ssize_t given, Py_ssize_t expected, const char *name)
{
    if (given != expected) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", name, expected, given);
        return -1;
    }
    return 0;
}

static int check_channel_tables(Py_ssize_t channels, Py_ssize_t other, Py_ssize_t values,
                                Py_ssize_t block)
{
    if (block < 1) {
        PyErr_Format(PyExc_ValueError, "block must be at least 1; got %zd", block);
        return -1;
    }
    if (channels < 1 || other != channels || values % block || (values / block) % channels) {
        PyErr_Format(PyExc_ValueError,
                     "per-channel tables must have one equal, non-zero length that, times block "
                     "%zd, divides the source's %zd values; got lengths %zd and %zd",
                     block, values, channels, other);
        return -1;
    }
    return 0;
}

/* The optional last argument, `block` (default 1), or -1 with an exception set. */
static Py_ssize_t block_argument(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t required)
{
    return nargs > required ? PyLong_AsSsize_t(args[required]) : 1;
}

/* ------------------------------------------------------------------ threads */

/* Work (bytes read plus bytes written) each thread must get before a call uses more than one.
 *
 * A call on its own (the previous one of run size ended more than RUN_SECONDS before) finds
 * the workers asleep; on this VM a woken worker first shares the caller's core (_pool.c), so its
 * part runs after the caller's instead of beside it: measured with calls 5 ms apart, 2 threads
 * gave 0.88-0.99x at 320x320x3 and 512x512x3 (uint8 and float32 in, float32 out) and 1.3x at
 * 1024x1024x3 uint8. Such a call takes threads from 4 MB a thread only.
 *
 * Within a run of calls (a loop over images, a benchmark) the workers spin between calls and,
 * once the scheduler has spread them over the cores (a few hundred to a few thousand calls
 * here), threads pay from 512 KB a thread: back to back, 2 threads ran the affine 1.5x faster
 * at 224x224x3 float32 (1.2 MB in all), 1.9-3.4x at 320x320x3, 2.2-2.5x at 512x512x3 and 2.0x
 * at 1024x1024x3; the uint8 affine at 224x224x3 (0.75 MB) and read-only passes of 600 KB
 * gained nothing or lost, and stay on one thread. */
#define PARALLEL_MIN_BYTES_PER_THREAD ((Py_ssize_t)1 << 22)
#define RUN_MIN_BYTES_PER_THREAD ((Py_ssize_t)1 << 19)
#define RUN_SECONDS 1e-3

static double previous_call_end = -1e300; /* when the last call of run size ended (GIL held) */

/* Python's say on the thread count, norm_transforms.threads.threads_for_kernels: a callable
 * that returns an int, set at import by set_thread_policy(); until then, one thread. */
static PyObject *thread_policy = NULL;

/* The threads a job of `bytes` uses: 1 below the thresholds (no Python call), else the
 * policy's count capped by the work; -1 with an exception set when the policy fails. Holds the
 * GIL, which also guards previous_call. */
static int threads_for(Py_ssize_t bytes)
{
    if (bytes < 2 * RUN_MIN_BYTES_PER_THREAD || thread_policy == NULL || pool_supported_threads() < 2)
        return 1;
    int in_a_run = pool_seconds() - previous_call_end < RUN_SECONDS;
    Py_ssize_t most = bytes / (in_a_run ? RUN_MIN_BYTES_PER_THREAD : PARALLEL_MIN_BYTES_PER_THREAD);
    if (most < 2)
        return 1;
    PyObject *result = PyObject_CallNoArgs(thread_policy);
    if (result == NULL)
        return -1;
    /* A count past a C long (set_num_threads(2**64): "as many as there are") is capped below
     * like any other, not an OverflowError. */
    int overflow;
    long wanted = PyLong_AsLongAndOverflow(result, &overflow);
    Py_DECREF(result);
    if (wanted == -1 && PyErr_Occurred())
        return -1;
    if (overflow)
        wanted = overflow > 0 ? LONG_MAX : 1;
    if (wanted > most)
        wanted = (long)most;
    if (wanted > POOL_MAX_THREADS)
        wanted = POOL_MAX_THREADS;
    return wanted < 1 ? 1 : (int)wanted;
}

/* Parts a thread owns: its share of a job in a few pieces, so that the others can take the
 * last ones when it falls behind (another process on its core). The shares stay contiguous and
 * land on the same core call after call, which keeps each core's half of a 512x512 image in its
 * own L2 cache: the uint8 affine ran 3.0x faster on 2 threads with one part a thread, 1.8x with
 * 4 parts a thread claimed in turn from the start. */
#define PARTS_PER_THREAD 4

/* Notes the end of a call of `bytes` (GIL held): the next one may be in a run with it. */
static void call_ended(Py_ssize_t bytes)
{
    if (bytes >= 2 * RUN_MIN_BYTES_PER_THREAD)
        previous_call_end = pool_seconds();
}

static Py_ssize_t parts_for(int threads) { return threads > 1 ? (Py_ssize_t)threads * PARTS_PER_THREAD : 1; }

/* Part `part` of `parts` of [0, total): contiguous ranges whose ends are multiples of `align`
 * (the last one ends at total), as even as that allows. */
static void part_range(Py_ssize_t total, Py_ssize_t align, Py_ssize_t part, Py_ssize_t parts,
                       Py_ssize_t *start, Py_ssize_t *end)
{
    Py_ssize_t units = (total + align - 1) / align;
    Py_ssize_t first = units * part / parts, last = units * (part + 1) / parts;
    *start = first * align < total ? first * align : total;
    *end = last * align < total ? last * align : total;
}

PyDoc_STRVAR(set_thread_policy_doc,
             "set_thread_policy(policy)\n\n"
             "policy() -> int: how many threads a large call may use (read at each such call);\n"
             "None: one thread. Calls below 512 KB a thread (of input plus output; 4 MB a thread\n"
             "for a call that does not follow another within 1 ms) always run on one.");

PyDoc_STRVAR(parallel_jobs_doc,
             "parallel_jobs() -> int\n\n"
             "How many calls in this process ran on more than one thread (for tests).");

static PyObject *py_parallel_jobs(PyObject *self, PyObject *unused)
{
    return PyLong_FromUnsignedLong(pool_parallel_jobs());
}

static PyObject *py_set_thread_policy(PyObject *self, PyObject *policy)
{
    if (policy != Py_None && !PyCallable_Check(policy)) {
        PyErr_Format(PyExc_TypeError, "policy must be a callable or None, got %s",
                     Py_TYPE(policy)->tp_name);
        return NULL;
    }
    Py_XSETREF(thread_policy, policy == Py_None ? NULL : Py_NewRef(policy));
    Py_RETURN_NONE;
}

PyDoc_STRVAR(affine_doc,
             "affine(source, out, scale, offset, low, high, block=1)\n\n"
             "out[i] = clip(float32(source[i]) * scale[c] + offset[c], low, high),\n"
             "c = (i // block) % C, C = len(scale) = len(offset). source: C-contiguous uint8,\n"
             "uint16, int16, int32, float16, float32 or float64; out: float32 with as many\n"
             "values, or source itself when it is float32, or float16 (computed in float32,\n"
             "rounded once to nearest even). NaN stays NaN; pass -inf and inf to skip the clip.");

static void run_affine(char code, const char *src, float *dst, Py_ssize_t n, const float *scale,
                       const float *offset, Py_ssize_t lanes, float lo, float hi)
{
    switch (code) {
    case 'B': affine_u8((const uint8_t *)src, dst, n, scale, offset, lanes, lo, hi); break;
    case 'H': affine_u16((const uint16_t *)src, dst, n, scale, offset, lanes, lo, hi); break;
    case 'h': affine_s16((const int16_t *)src, dst, n, scale, offset, lanes, lo, hi); break;
    case 'i': affine_s32((const int32_t *)src, dst, n, scale, offset, lanes, lo, hi); break;
    case 'e': affine_f16((const uint16_t *)src, dst, n, scale, offset, lanes, lo, hi); break;
    case 'f':
        if ((const float *)src == dst)
            affine_f32_in_place(dst, n, scale, offset, lanes, lo, hi);
        else
            affine_f32((const float *)src, dst, n, scale, offset, lanes, lo, hi);
        break;
    default: affine_f64((const double *)src, dst, n, scale, offset, lanes, lo, hi); break;
    }
}

/* float16 output: the float32 affine into an L1-sized scratch (a whole number of lanes, so the
 * tiled tables line up at every chunk), then narrowed: one write of the float16 output and no
 * float32 buffer of the image's size. */
static void run_affine_to_half(char code, const char *src, Py_ssize_t itemsize, uint16_t *dst,
                               Py_ssize_t n, const float *scale, const float *offset,
                               Py_ssize_t lanes, float lo, float hi, float *scratch, Py_ssize_t chunk)
{
    for (Py_ssize_t start = 0; start < n; start += chunk) {
        Py_ssize_t count = n - start < chunk ? n - start : chunk;
        run_affine(code, src + start * itemsize, scratch, count, scale, offset, lanes, lo, hi);
        narrow_to_half(scratch, dst + start, count);
    }
}

#define HALF_CHUNK_VALUES 4096 /* 16 KB of float32 scratch: stays in L1 */

/* The chunk of the float16 route for `lanes`: a whole number of lanes, so the tiled tables line
 * up at every chunk; 0 for float32 output. */
static Py_ssize_t half_chunk(int to_half, Py_ssize_t lanes)
{
    return to_half ? lanes * (HALF_CHUNK_VALUES / lanes > 0 ? HALF_CHUNK_VALUES / lanes : 1) : 0;
}

/* One affine call as a pool job; each part writes its own range of the output. */
typedef struct {
    char code;
    const char *src;
    Py_ssize_t itemsize, n, block, channels, lanes, chunk;
    char *dst;
    int to_half;
    const float *scale_in, *offset_in; /* one per channel */
    const float *scale, *offset;       /* tiled to the lanes (interleaved: block == 1) */
    float *scratch;                    /* `chunk` floats per thread (float16 output) */
    float lo, hi;
} AffineJob;

static void affine_range(const AffineJob *job, Py_ssize_t start, Py_ssize_t count,
                         const float *scale, const float *offset, float *scratch)
{
    const char *src = job->src + start * job->itemsize;
    if (job->to_half)
        run_affine_to_half(job->code, src, job->itemsize, (uint16_t *)job->dst + start, count, scale,
                           offset, job->lanes, job->lo, job->hi, scratch, job->chunk);
    else
        run_affine(job->code, src, (float *)job->dst + start, count, scale, offset, job->lanes,
                   job->lo, job->hi);
}

static void affine_part(void *context, Py_ssize_t part, Py_ssize_t parts, int thread)
{
    const AffineJob *job = context;
    Py_ssize_t start, end;
    part_range(job->n, job->block == 1 ? job->lanes : 1, part, parts, &start, &end);
    float *scratch = job->scratch ? job->scratch + thread * job->chunk : NULL;
    if (job->block == 1) {
        affine_range(job, start, end - start, job->scale, job->offset, scratch);
        return;
    }
    /* Blocks: the range in pieces of one block each, the block's entry filled into the lanes. */
    float scale[AFFINE_MIN_LANES], offset[AFFINE_MIN_LANES];
    while (start < end) {
        Py_ssize_t index = start / job->block, stop = (index + 1) * job->block;
        Py_ssize_t c = index % job->channels;
        stop = stop < end ? stop : end;
        for (Py_ssize_t k = 0; k < job->lanes; k++) {
            scale[k] = job->scale_in[c];
            offset[k] = job->offset_in[c];
        }
        affine_range(job, start, stop - start, scale, offset, scratch);
        start = stop;
    }
}

/* The arguments of affine() and affine_to_planes(): (source, out, scale, offset, low, high),
 * and `block` after them where `takes_block`; the buffers acquired into b[0..3] (the caller
 * releases them) and checked against each other. 0, or -1 with an exception set. */
static int affine_arguments(PyObject *const *args, Py_ssize_t nargs, const char *name,
                            int takes_block, Buffer *b, double *low, double *high,
                            Py_ssize_t *block)
{
    if (check_arg_count(nargs, 6, name) < 0 ||
        acquire(args[0], &b[0], 0, ANY_SOURCE, "source") < 0 ||
        acquire(args[1], &b[1], 1, "fe", "float32 or float16", "out") < 0 ||
        acquire(args[2], &b[2], 0, FLOAT32, "scale") < 0 ||
        acquire(args[3], &b[3], 0, FLOAT32, "offset") < 0)
        return -1;
    if (!takes_block && nargs != 6) {
        PyErr_Format(PyExc_TypeError, "%s() takes 6 arguments", name);
        return -1;
    }
    *low = PyFloat_AsDouble(args[4]);
    *high = PyFloat_AsDouble(args[5]);
    *block = takes_block ? block_argument(args, nargs, 6) : 1;
    if (PyErr_Occurred())
        return -1;
    Py_ssize_t n = length(&b[0]);
    if (check_channel_tables(length(&b[2]), length(&b[3]), n, *block) < 0)
        return -1;
    if (length(&b[1]) != n) {
        PyErr_Format(PyExc_ValueError, "out has %zd values, source %zd", length(&b[1]), n);
        return -1;
    }
    return 0;
}

static PyObject *py_affine(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Buffer b[4];
    memset(b, 0, sizeof b);
    float *tables = NULL;
    double low, high;
    Py_ssize_t block;
    if (affine_arguments(args, nargs, "affine", 1, b, &low, &high, &block) < 0)
        goto fail;
    Py_ssize_t n = length(&b[0]), channels = length(&b[2]);
    int threads = threads_for(b[0].view.len + b[1].view.len);
    if (threads < 0)
        goto fail;
    AffineJob job = {
        .code = b[0].code, .src = b[0].view.buf, .itemsize = b[0].view.itemsize, .n = n,
        .block = block, .channels = channels, .dst = b[1].view.buf, .to_half = b[1].code == 'e',
        .scale_in = b[2].view.buf, .offset_in = b[3].view.buf, .lo = (float)low, .hi = (float)high,
    };
    /* Interleaved: the tables tiled to the lanes once, shared by the parts. Blocks: one value
     * per block, filled into the lanes by each part (affine_part). */
    job.lanes = lane_count(block == 1 ? channels : 1, AFFINE_MIN_LANES);
    job.chunk = half_chunk(job.to_half, job.lanes);
    tables = PyMem_Malloc((2 * (size_t)job.lanes + (size_t)(threads * job.chunk)) * sizeof *tables);
    if (!tables) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t k = 0; k < job.lanes; k++) {
        tables[k] = job.scale_in[k % channels];
        tables[job.lanes + k] = job.offset_in[k % channels];
    }
    job.scale = tables;
    job.offset = tables + job.lanes;
    job.scratch = job.to_half ? tables + 2 * job.lanes : NULL;
    Py_BEGIN_ALLOW_THREADS
    pool_run(affine_part, &job, parts_for(threads), threads);
    Py_END_ALLOW_THREADS
    call_ended(b[0].view.len + b[1].view.len);
    PyMem_Free(tables);
    release(b, 4);
    Py_RETURN_NONE;
fail:
    PyMem_Free(tables);
    release(b, 4);
    return NULL;
}

/* ------------------------------------------------------------------ affine into planes */

/* Interleaved pixels (p0c0 p0c1 p0c2 p1c0 ...) into channel planes, for one chunk: the source's
 * values copied to planes of the source's own type. 3 and 4 channels get loops with a constant
 * stride, which the compiler vectorizes. */
#define DEFINE_DEINTERLEAVE(NAME, TYPE)                                                           \
    VECTOR_CLONES static void NAME(const TYPE *RESTRICT src, TYPE *RESTRICT planes,              \
                                   Py_ssize_t count, Py_ssize_t channels, Py_ssize_t stride)      \
    {                                                                                             \
        if (channels == 3) {                                                                      \
            for (Py_ssize_t j = 0; j < count; j++) {                                              \
                planes[j] = src[3 * j];                                                           \
                planes[stride + j] = src[3 * j + 1];                                              \
                planes[2 * stride + j] = src[3 * j + 2];                                          \
            }                                                                                     \
        } else if (channels == 4) {                                                               \
            for (Py_ssize_t j = 0; j < count; j++) {                                              \
                planes[j] = src[4 * j];                                                           \
                planes[stride + j] = src[4 * j + 1];                                              \
                planes[2 * stride + j] = src[4 * j + 2];                                          \
                planes[3 * stride + j] = src[4 * j + 3];                                          \
            }                                                                                     \
        } else {                                                                                  \
            for (Py_ssize_t c = 0; c < channels; c++)                                             \
                for (Py_ssize_t j = 0; j < count; j++)                                            \
                    planes[c * stride + j] = src[j * channels + c];                               \
        }                                                                                         \
    }

DEFINE_DEINTERLEAVE(deinterleave_8, uint8_t)
DEFINE_DEINTERLEAVE(deinterleave_16, uint16_t)
DEFINE_DEINTERLEAVE(deinterleave_32, uint32_t)
DEFINE_DEINTERLEAVE(deinterleave_64, uint64_t)

static void deinterleave(const char *src, char *planes, Py_ssize_t itemsize, Py_ssize_t count,
                         Py_ssize_t channels, Py_ssize_t stride)
{
    switch (itemsize) {
    case 1: deinterleave_8((const uint8_t *)src, (uint8_t *)planes, count, channels, stride); break;
    case 2: deinterleave_16((const uint16_t *)src, (uint16_t *)planes, count, channels, stride); break;
    case 4: deinterleave_32((const uint32_t *)src, (uint32_t *)planes, count, channels, stride); break;
    default: deinterleave_64((const uint64_t *)src, (uint64_t *)planes, count, channels, stride); break;
    }
}

PyDoc_STRVAR(affine_to_planes_doc,
             "affine_to_planes(source, out, scale, offset, low, high)\n\n"
             "The affine of interleaved pixels written as channel planes: with C = len(scale),\n"
             "P = len(source) // C, out[c * P + p] = clip(float32(source[p * C + c]) * scale[c]\n"
             "+ offset[c], low, high), computed and rounded as affine() does (same dtypes);\n"
             "out must not overlap source.");

/* Pixels per chunk: the chunk's planes (at most 8 bytes a value) stay in L1 between the copy and
 * the affine. cv2.split into planes, then affine(): 60-110 us at 224x224x3 uint8, because the
 * planes that cv2.split writes read back slowly; this: 25 us. */
#define PLANES_CHUNK_PIXELS 1024

/* One affine_to_planes call as a pool job; each part writes its pixels' range of every plane. */
typedef struct {
    char code;
    const char *src;
    Py_ssize_t itemsize, pixels, channels, lanes, chunk;
    char *dst;
    int to_half;
    const float *tables; /* per channel: its scale, then its offset, tiled to the lanes */
    char *scratch;       /* per thread: the chunk's planes, then `chunk` floats (float16 output) */
    Py_ssize_t scratch_bytes;
    float lo, hi;
} PlanesJob;

static void planes_part(void *context, Py_ssize_t part, Py_ssize_t parts, int thread)
{
    const PlanesJob *job = context;
    Py_ssize_t first, last;
    part_range(job->pixels, PLANES_CHUNK_PIXELS, part, parts, &first, &last);
    char *planes = job->scratch + thread * job->scratch_bytes;
    float *half_scratch = (float *)(planes + job->channels * PLANES_CHUNK_PIXELS * job->itemsize);
    for (Py_ssize_t start = first; start < last; start += PLANES_CHUNK_PIXELS) {
        Py_ssize_t count = last - start < PLANES_CHUNK_PIXELS ? last - start : PLANES_CHUNK_PIXELS;
        deinterleave(job->src + start * job->channels * job->itemsize, planes, job->itemsize, count,
                     job->channels, PLANES_CHUNK_PIXELS);
        for (Py_ssize_t c = 0; c < job->channels; c++) {
            const char *plane = planes + c * PLANES_CHUNK_PIXELS * job->itemsize;
            const float *scale = job->tables + 2 * c * job->lanes, *offset = scale + job->lanes;
            Py_ssize_t at = c * job->pixels + start;
            if (job->to_half)
                run_affine_to_half(job->code, plane, job->itemsize, (uint16_t *)job->dst + at, count,
                                   scale, offset, job->lanes, job->lo, job->hi, half_scratch, job->chunk);
            else
                run_affine(job->code, plane, (float *)job->dst + at, count, scale, offset, job->lanes,
                           job->lo, job->hi);
        }
    }
}

static PyObject *py_affine_to_planes(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Buffer b[4];
    memset(b, 0, sizeof b);
    float *tables = NULL;
    char *scratch = NULL;
    double low, high;
    Py_ssize_t block;
    if (affine_arguments(args, nargs, "affine_to_planes", 0, b, &low, &high, &block) < 0)
        goto fail;
    Py_ssize_t n = length(&b[0]), channels = length(&b[2]);
    int threads = threads_for(b[0].view.len + b[1].view.len);
    if (threads < 0)
        goto fail;
    PlanesJob job = {
        .code = b[0].code, .src = b[0].view.buf, .itemsize = b[0].view.itemsize,
        .pixels = n / channels, .channels = channels, .dst = b[1].view.buf,
        .to_half = b[1].code == 'e', .lo = (float)low, .hi = (float)high,
    };
    job.lanes = lane_count(1, AFFINE_MIN_LANES);
    job.chunk = half_chunk(job.to_half, job.lanes);
    job.scratch_bytes = channels * PLANES_CHUNK_PIXELS * job.itemsize + job.chunk * (Py_ssize_t)sizeof(float);
    tables = PyMem_Malloc(2 * (size_t)channels * (size_t)job.lanes * sizeof *tables);
    scratch = PyMem_Malloc((size_t)threads * (size_t)job.scratch_bytes);
    if (!tables || !scratch) {
        PyErr_NoMemory();
        goto fail;
    }
    const float *scale_in = b[2].view.buf, *offset_in = b[3].view.buf;
    for (Py_ssize_t c = 0; c < channels; c++)
        for (Py_ssize_t k = 0; k < job.lanes; k++) {
            tables[2 * c * job.lanes + k] = scale_in[c];
            tables[(2 * c + 1) * job.lanes + k] = offset_in[c];
        }
    job.tables = tables;
    job.scratch = scratch;
    Py_BEGIN_ALLOW_THREADS
    pool_run(planes_part, &job, parts_for(threads), threads);
    Py_END_ALLOW_THREADS
    call_ended(b[0].view.len + b[1].view.len);
    PyMem_Free(scratch);
    PyMem_Free(tables);
    release(b, 4);
    Py_RETURN_NONE;
fail:
    PyMem_Free(scratch);
    PyMem_Free(tables);
    release(b, 4);
    return NULL;
}

PyDoc_STRVAR(min_max_doc,
             "min_max(source, low, high, block=1)\n\n"
             "Writes the minimum and maximum of each channel of source (value i is in channel\n"
             "(i // block) % C, C = len(low) = len(high)) to low and high (float64). NaN values\n"
             "are skipped; a channel with no other value gets NaN. A zero extreme is +0.0\n"
             "(-0.0 and +0.0 are equal: which one comes first depends on the thread count).");

static void run_min_max(char code, const char *src, Py_ssize_t n, double *low, double *high,
                        Py_ssize_t channels, Py_ssize_t lanes, void *scratch)
{
    if (channels == 1) {
        switch (code) {
        case 'B': min_max_u8_one((const uint8_t *)src, n, low, high); break;
        case 'H': min_max_u16_one((const uint16_t *)src, n, low, high); break;
        case 'h': min_max_s16_one((const int16_t *)src, n, low, high); break;
        case 'i': min_max_s32_one((const int32_t *)src, n, low, high); break;
        case 'e': min_max_f16_one((const uint16_t *)src, n, low, high); break;
        case 'f': min_max_f32_one((const float *)src, n, low, high); break;
        default: min_max_f64_one((const double *)src, n, low, high); break;
        }
        return;
    }
    switch (code) {
    case 'B': min_max_u8((const uint8_t *)src, n, low, high, channels, lanes, scratch); break;
    case 'H': min_max_u16((const uint16_t *)src, n, low, high, channels, lanes, scratch); break;
    case 'h': min_max_s16((const int16_t *)src, n, low, high, channels, lanes, scratch); break;
    case 'i': min_max_s32((const int32_t *)src, n, low, high, channels, lanes, scratch); break;
    case 'e': min_max_f16((const uint16_t *)src, n, low, high, channels, lanes, scratch); break;
    case 'f': min_max_f32((const float *)src, n, low, high, channels, lanes, scratch); break;
    default: min_max_f64((const double *)src, n, low, high, channels, lanes, scratch); break;
    }
}

/* -0.0 and +0.0 compare equal, so the one that a minimum or maximum keeps is the one it saw first
 * (in lane, part and thread order): with both in a scope, its extreme's sign bit would depend on
 * how the values were split between threads, and so would the bits of the output computed from
 * it (offset = -low / range). An extreme that is zero is written +0.0, whatever the split. */
static double unsigned_zero(double value) { return value == 0.0 ? 0.0 : value; }

/* Folds the extremes lo, hi of some values (NaN: none) into *low, *high (NaN: none yet). */
static void fold_extremes(double *low, double *high, double lo, double hi)
{
    if (!(lo <= hi))
        return;
    if (!(*low <= *high)) {
        *low = lo;
        *high = hi;
        return;
    }
    *low = lo < *low ? lo : *low;
    *high = hi > *high ? hi : *high;
}

/* One min_max call as a pool job: each thread folds the extremes of its parts into its own
 * (NaN where it has none yet), folded together afterwards; min and max give the same bits in
 * any order. */
typedef struct {
    char code;
    const char *src;
    Py_ssize_t itemsize, n, block, channels, lanes;
    double *low, *high;   /* the extremes, `channels` values per thread */
    char *scratch;        /* per thread: 2 * lanes doubles, then 2 * channels doubles */
    Py_ssize_t scratch_bytes;
} MinMaxJob;

static void min_max_part(void *context, Py_ssize_t part, Py_ssize_t parts, int thread)
{
    const MinMaxJob *job = context;
    Py_ssize_t start, end, channels = job->channels;
    part_range(job->n, job->block == 1 ? job->lanes : 1, part, parts, &start, &end);
    double *low = job->low + thread * channels, *high = job->high + thread * channels;
    char *scratch = job->scratch + thread * job->scratch_bytes;
    if (job->block == 1) {
        /* A whole number of lanes from the start: lane k is channel k % C. */
        double *lo = (double *)(scratch + 2 * job->lanes * sizeof(double)), *hi = lo + channels;
        if (end > start)
            run_min_max(job->code, job->src + start * job->itemsize, end - start, lo, hi, channels,
                        job->lanes, scratch);
        for (Py_ssize_t c = 0; end > start && c < channels; c++)
            fold_extremes(&low[c], &high[c], lo[c], hi[c]);
        return;
    }
    /* Blocks: each piece of a block reduced as one channel, then folded into its channel. */
    while (start < end) {
        Py_ssize_t index = start / job->block, stop = (index + 1) * job->block;
        stop = stop < end ? stop : end;
        double lo, hi;
        run_min_max(job->code, job->src + start * job->itemsize, stop - start, &lo, &hi, 1,
                    job->lanes, scratch);
        fold_extremes(&low[index % channels], &high[index % channels], lo, hi);
        start = stop;
    }
}

static PyObject *py_min_max(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Buffer b[3];
    memset(b, 0, sizeof b);
    char *scratch = NULL;
    if (check_arg_count(nargs, 3, "min_max") < 0 ||
        acquire(args[0], &b[0], 0, ANY_SOURCE, "source") < 0 ||
        acquire(args[1], &b[1], 1, FLOAT64, "low") < 0 ||
        acquire(args[2], &b[2], 1, FLOAT64, "high") < 0)
        goto fail;
    Py_ssize_t block = block_argument(args, nargs, 3);
    if (PyErr_Occurred())
        goto fail;
    Py_ssize_t n = length(&b[0]), channels = length(&b[1]);
    if (check_channel_tables(channels, length(&b[2]), n, block) < 0)
        goto fail;
    int threads = threads_for(b[0].view.len);
    if (threads < 0)
        goto fail;
    MinMaxJob job = {
        .code = b[0].code, .src = b[0].view.buf, .itemsize = b[0].view.itemsize, .n = n,
        .block = block, .channels = channels,
        .lanes = lane_count(block == 1 ? channels : 1, MIN_MAX_MIN_LANES),
    };
    job.scratch_bytes = (2 * job.lanes + 2 * channels) * (Py_ssize_t)sizeof(double);
    Py_ssize_t extremes = 2 * channels * threads;
    scratch = PyMem_Malloc((size_t)(extremes * (Py_ssize_t)sizeof(double) + threads * job.scratch_bytes));
    if (!scratch) {
        PyErr_NoMemory();
        goto fail;
    }
    job.low = (double *)scratch;
    job.high = job.low + channels * threads;
    job.scratch = scratch + extremes * (Py_ssize_t)sizeof(double);
    for (Py_ssize_t k = 0; k < extremes; k++)
        job.low[k] = NAN; /* low and high: nothing seen yet */
    double *low = b[1].view.buf, *high = b[2].view.buf;
    Py_BEGIN_ALLOW_THREADS
    pool_run(min_max_part, &job, parts_for(threads), threads);
    for (Py_ssize_t c = 0; c < channels; c++) {
        low[c] = high[c] = NAN;
        for (int thread = 0; thread < threads; thread++)
            fold_extremes(&low[c], &high[c], job.low[thread * channels + c], job.high[thread * channels + c]);
        low[c] = unsigned_zero(low[c]);
        high[c] = unsigned_zero(high[c]);
    }
    Py_END_ALLOW_THREADS
    call_ended(b[0].view.len);
    PyMem_Free(scratch);
    release(b, 3);
    Py_RETURN_NONE;
fail:
    PyMem_Free(scratch);
    release(b, 3);
    return NULL;
}

PyDoc_STRVAR(histogram_doc,
             "histogram(source, counts)\n\n"
             "Adds to counts[c * B + v + o] the number of values v of channel c of source, where\n"
             "value i is in channel i % C. source: C-contiguous uint8 (B = 256, o = 0), uint16\n"
             "(B = 65536, o = 0) or int16 (B = 65536, o = 32768) whose length is a multiple of C;\n"
             "counts: writable C-contiguous int64 with C * B values.");

/* One histogram call as a pool job: thread 0 counts into the caller's counts, every other
 * thread into zeroed counts of its own, added to the caller's afterwards (integers: exact in any
 * order). */
typedef struct {
    char code;
    const char *src;
    Py_ssize_t n, channels, bins;
    int64_t *counts;      /* the caller's */
    int64_t *thread_counts; /* channels * bins per thread after the first */
    uint32_t *tables;       /* uint8: HISTOGRAM_COPIES * channels * 256 per thread */
} HistogramJob;

static void histogram_part(void *context, Py_ssize_t part, Py_ssize_t parts, int thread)
{
    const HistogramJob *job = context;
    Py_ssize_t start, end, size = job->channels * job->bins;
    part_range(job->n, job->channels, part, parts, &start, &end);
    int64_t *counts = thread == 0 ? job->counts : job->thread_counts + (thread - 1) * size;
    if (job->code == 'B')
        histogram_u8((const uint8_t *)job->src + start, end - start, job->channels, counts,
                     job->tables + thread * HISTOGRAM_COPIES * job->channels * 256);
    else
        histogram_16((const uint16_t *)job->src + start, end - start, job->channels, counts,
                     job->code == 'h' ? 0x8000u : 0);
}

static PyObject *py_histogram(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Buffer b[2];
    memset(b, 0, sizeof b);
    uint32_t *tables = NULL;
    int64_t *thread_counts = NULL;
    if (check_arg_count(nargs, 2, "histogram") < 0 ||
        acquire(args[0], &b[0], 0, "BHh", "uint8, uint16 or int16", "source") < 0 ||
        acquire(args[1], &b[1], 1, "q", "int64", "counts") < 0)
        goto fail;
    char code = b[0].code;
    Py_ssize_t n = length(&b[0]), bins = code == 'B' ? 256 : 65536;
    Py_ssize_t channels = length(&b[1]) / bins;
    if (channels < 1 || length(&b[1]) % bins || n % channels) {
        PyErr_Format(PyExc_ValueError,
                     "counts must hold C * %zd values for a source of %zd values in C interleaved "
                     "channels; got %zd values",
                     bins, n, length(&b[1]));
        goto fail;
    }
    /* The extra counts each thread adds are work too: a thread needs a source of their size or
     * more (bytes: 8 a count), so the threads are capped by that too, not only the first. */
    Py_ssize_t size = channels * bins, most = b[0].view.len / (8 * size);
    int threads = most >= 2 ? threads_for(b[0].view.len) : 1;
    if (threads < 0)
        goto fail;
    if (most >= 2 && threads > most)
        threads = (int)most;
    if (code == 'B')
        tables = PyMem_Malloc((size_t)threads * HISTOGRAM_COPIES * channels * 256 * sizeof *tables);
    if (threads > 1)
        thread_counts = PyMem_Calloc((size_t)(threads - 1) * (size_t)size, sizeof *thread_counts);
    if ((code == 'B' && !tables) || (threads > 1 && !thread_counts)) {
        PyErr_NoMemory();
        goto fail;
    }
    HistogramJob job = {
        .code = code, .src = b[0].view.buf, .n = n, .channels = channels, .bins = bins,
        .counts = b[1].view.buf, .thread_counts = thread_counts, .tables = tables,
    };
    Py_BEGIN_ALLOW_THREADS
    pool_run(histogram_part, &job, parts_for(threads), threads);
    for (int thread = 1; thread < threads; thread++)
        for (Py_ssize_t k = 0; k < size; k++)
            job.counts[k] += thread_counts[(thread - 1) * size + k];
    Py_END_ALLOW_THREADS
    call_ended(b[0].view.len);
    PyMem_Free(thread_counts);
    PyMem_Free(tables);
    release(b, 2);
    Py_RETURN_NONE;
fail:
    PyMem_Free(thread_counts);
    PyMem_Free(tables);
    release(b, 2);
    return NULL;
}

/* ------------------------------------------------------------------ moments */

/* One pass for the mean_std modes: per entry (channel, plane or sample, as for min_max) the
 * minimum and maximum (NaN skipped, as min_max does) and the sums of d = x - k and of d * d,
 * where k is the entry's first value. Before this kernel the float32 image modes read the image
 * three times (min_max, cv2.meanStdDev, the affine); cv2.meanStdDev alone cost 1.3 ms at
 * 1024x1024x3, 3x a read-only pass, converting every value to double.
 *
 * Why the shift k: one-pass sums of squares lose digits to cancellation when the mean is far
 * from 0 against the spread (var = E[x²] - E[x]²); measured from a value of the data, they lose
 * them only when that value lies far out in the tail, which the caller checks for. A constant
 * entry gives sums of exactly 0.
 *
 * Exact for 8 and 16-bit integers: d and d * d are integers, summed in integer lanes within a
 * block (a lane sees at most 65536 / 96 = 682 values of a block: uint32 squares for uint8;
 * 16-bit values sum in 32-bit lanes, 682 * 65535 < 2**32, which measured 1.4x faster than
 * 64-bit ones at 512x512x3, and square in uint64 ones), so each block's sums are exact integers
 * below 2**53, added in float64: exact while the totals stay below 2**53 (every uint8 image
 * below 1.4e11 values). int32 and floats sum float64 lanes.
 *
 * Determinism: the values are cut into a fixed partition of blocks of a constant number of
 * values (a whole number of lanes, so each lane keeps its channel), each block's lanes are
 * folded per channel in lane order and the block sums added in block order: any split of whole
 * blocks between threads can give the same bits. */

#define MOMENTS_BLOCK_VALUES 65536
/* Lanes held in registers where the channel count divides them: uint8 192 (3 zmm of bytes; 48
 * measured 1.6x slower), 16-bit 96, the rest 48 (16 float32 to double, 3 times). Other channel
 * counts take lanes in memory (lane_count). */
#define MOMENTS_LANES_8 192
#define MOMENTS_LANES_16 96
#define MOMENTS_LANES_WIDE 48

/* Lanes of one block: lo/hi (running, in double) take the block's extremes, sums and squares
 * the block's lane sums (in double, exact for the integer lanes). */
typedef void (*MomentsBlock)(const void *source, Py_ssize_t n, Py_ssize_t lanes,
                             const double *shift, double *low, double *high, double *sums,
                             double *squares, void *work);

#define MOMENTS_ROUNDS(LANES, MM, LOAD, DIFF, SHIFTED, SQUARE)                                     \
    Py_ssize_t i = 0;                                                                             \
    for (; i + (LANES) <= n; i += (LANES))                                                        \
        for (Py_ssize_t k = 0; k < (LANES); k++) {                                                \
            MM v = (MM)LOAD(src[i + k]);                                                          \
            lo[k] = v < lo[k] ? v : lo[k];                                                        \
            hi[k] = v > hi[k] ? v : hi[k];                                                        \
            DIFF d = SHIFTED(v, shifted[k]);                                                      \
            s[k] += d;                                                                            \
            q[k] += SQUARE(d);                                                                    \
        }                                                                                         \
    for (Py_ssize_t k = 0; i + k < n; k++) {                                                      \
        MM v = (MM)LOAD(src[i + k]);                                                              \
        lo[k] = v < lo[k] ? v : lo[k];                                                            \
        hi[k] = v > hi[k] ? v : hi[k];                                                            \
        DIFF d = SHIFTED(v, shifted[k]);                                                          \
        s[k] += d;                                                                                \
        q[k] += SQUARE(d);                                                                        \
    }

#define MOMENTS_STORE(LANES)                                                                      \
    for (Py_ssize_t k = 0; k < (LANES); k++) {                                                    \
        low[k] = (double)lo[k] < low[k] ? (double)lo[k] : low[k];                                 \
        high[k] = (double)hi[k] > high[k] ? (double)hi[k] : high[k];                              \
        sums[k] = (double)s[k];                                                                   \
        squares[k] = (double)q[k];                                                                \
    }

/* _fixed: LANES lanes as local arrays, which the compiler keeps in registers (2-3x faster than
 * lanes in memory, as for min_max); _any: `lanes` lanes in `work`. Empty integer lanes (the
 * tail) keep the type's extremes, which bound every value: harmless in the running extremes. */
#define DEFINE_MOMENTS(NAME, TYPE, LOAD, MM, MM_LOWEST, MM_HIGHEST, DIFF, SHIFTED, SUM, SQ, SQUARE, \
                       LANES)                                                                     \
    DEFINE_MOMENTS_FIXED(NAME, TYPE, LOAD, MM, MM_LOWEST, MM_HIGHEST, DIFF, SHIFTED, SUM, SQ,      \
                         SQUARE, LANES)                                                           \
    DEFINE_MOMENTS_ANY(NAME, TYPE, LOAD, MM, MM_LOWEST, MM_HIGHEST, DIFF, SHIFTED, SUM, SQ, SQUARE)

#define DEFINE_MOMENTS_FIXED(NAME, TYPE, LOAD, MM, MM_LOWEST, MM_HIGHEST, DIFF, SHIFTED, SUM, SQ,  \
                             SQUARE, LANES)                                                       \
    VECTOR_CLONES static void NAME##_fixed(const void *source, Py_ssize_t n, Py_ssize_t lanes,    \
                                           const double *shift, double *RESTRICT low,             \
                                           double *RESTRICT high, double *RESTRICT sums,          \
                                           double *RESTRICT squares, void *work)                  \
    {                                                                                             \
        (void)lanes;                                                                              \
        (void)work;                                                                               \
        const TYPE *RESTRICT src = source;                                                        \
        MM lo[LANES], hi[LANES];                                                                  \
        SUM s[LANES];                                                                             \
        SQ q[LANES];                                                                              \
        DIFF shifted[LANES];                                                                      \
        for (int k = 0; k < (LANES); k++) {                                                       \
            lo[k] = MM_HIGHEST;                                                                   \
            hi[k] = MM_LOWEST;                                                                    \
            s[k] = 0;                                                                             \
            q[k] = 0;                                                                             \
            shifted[k] = (DIFF)shift[k];                                                          \
        }                                                                                         \
        (void)shifted; /* unused where the lanes sum x */                                         \
        MOMENTS_ROUNDS(LANES, MM, LOAD, DIFF, SHIFTED, SQUARE)                                    \
        MOMENTS_STORE(LANES)                                                                      \
    }

#define DEFINE_MOMENTS_ANY(NAME, TYPE, LOAD, MM, MM_LOWEST, MM_HIGHEST, DIFF, SHIFTED, SUM, SQ,    \
                           SQUARE)                                                                \
    VECTOR_CLONES static void NAME##_any(const void *source, Py_ssize_t n, Py_ssize_t lanes,      \
                                         const double *shift, double *RESTRICT low,               \
                                         double *RESTRICT high, double *RESTRICT sums,            \
                                         double *RESTRICT squares, void *work)                    \
    {                                                                                             \
        const TYPE *RESTRICT src = source;                                                        \
        MM *RESTRICT lo = work, *RESTRICT hi = lo + lanes;                                        \
        SUM *RESTRICT s = (SUM *)(hi + lanes);                                                    \
        SQ *RESTRICT q = (SQ *)(s + lanes);                                                       \
        DIFF *RESTRICT shifted = (DIFF *)(q + lanes);                                             \
        for (Py_ssize_t k = 0; k < lanes; k++) {                                                  \
            lo[k] = MM_HIGHEST;                                                                   \
            hi[k] = MM_LOWEST;                                                                    \
            s[k] = 0;                                                                             \
            q[k] = 0;                                                                             \
            shifted[k] = (DIFF)shift[k];                                                          \
        }                                                                                         \
        (void)shifted;                                                                            \
        MOMENTS_ROUNDS(lanes, MM, LOAD, DIFF, SHIFTED, SQUARE)                                    \
        MOMENTS_STORE(lanes)                                                                      \
    }

/* Integer lanes sum x and x * x as they are (the block's sums are shifted exactly in double by
 * the driver: every term stays below 2**53); uint8 squares in uint16 (255² < 2**16, one vector
 * multiply of 32 values), 16-bit ones in uint32. Floats and int32 subtract k in the lanes. */
#define RAW(v, k) (v)
#define MINUS_SHIFT(v, k) ((double)(v) - (k))
#define SQUARE_U8(d) ((uint16_t)((uint16_t)(d) * (uint16_t)(d)))
#define SQUARE_16(d) ((uint32_t)((d) * (d)))
#define SQUARE_REAL(d) ((d) * (d))

/* uint8: the _fixed lanes are moments_u8_fixed below. */
DEFINE_MOMENTS_ANY(moments_u8, uint8_t, LOAD_PLAIN, uint8_t, 0, UINT8_MAX, uint16_t, RAW, uint32_t,
                   uint32_t, SQUARE_U8)
DEFINE_MOMENTS(moments_u16, uint16_t, LOAD_PLAIN, uint16_t, 0, UINT16_MAX, uint32_t, RAW, uint32_t,
               uint64_t, SQUARE_16, MOMENTS_LANES_16)
DEFINE_MOMENTS(moments_s16, int16_t, LOAD_PLAIN, int16_t, INT16_MIN, INT16_MAX, int32_t, RAW,
               int32_t, uint64_t, SQUARE_16, MOMENTS_LANES_16)
DEFINE_MOMENTS(moments_s32, int32_t, LOAD_PLAIN, int32_t, INT32_MIN, INT32_MAX, double,
               MINUS_SHIFT, double, double, SQUARE_REAL, MOMENTS_LANES_WIDE)
DEFINE_MOMENTS(moments_f16, uint16_t, LOAD_HALF, float, -INFINITY, INFINITY, double, MINUS_SHIFT,
               double, double, SQUARE_REAL, MOMENTS_LANES_WIDE)
DEFINE_MOMENTS(moments_f32, float, LOAD_PLAIN, float, -INFINITY, INFINITY, double, MINUS_SHIFT,
               double, double, SQUARE_REAL, MOMENTS_LANES_WIDE)
DEFINE_MOMENTS(moments_f64, double, LOAD_PLAIN, double, -INFINITY, INFINITY, double, MINUS_SHIFT,
               double, double, SQUARE_REAL, MOMENTS_LANES_WIDE)

/* uint8 in its 192 register lanes: the sums of x in uint16 lanes, moved into uint32 every 257
 * rounds (257 * 255 = 65535 at most), so that the lanes that stay in registers (extremes in
 * bytes, sums in words, squares in dwords: 24 of the 32 zmm) hold no uint32 sums; the generic loop
 * spilled its 30. 512x512x3, one thread: 84 -> 59 us (min_max: 17). */
#define MOMENTS_U8_FLUSH_ROUNDS 257
VECTOR_CLONES static void moments_u8_lanes(const void *source, Py_ssize_t n, Py_ssize_t lanes,
                                            const double *shift, double *RESTRICT low,
                                            double *RESTRICT high, double *RESTRICT sums,
                                            double *RESTRICT squares, void *work)
{
    (void)lanes;
    (void)work;
    (void)shift;
    const uint8_t *RESTRICT src = source;
    uint8_t lo[MOMENTS_LANES_8], hi[MOMENTS_LANES_8];
    uint16_t partial[MOMENTS_LANES_8];
    uint32_t s[MOMENTS_LANES_8], q[MOMENTS_LANES_8];
    for (int k = 0; k < MOMENTS_LANES_8; k++) {
        lo[k] = UINT8_MAX;
        hi[k] = 0;
        s[k] = 0;
        q[k] = 0;
    }
    Py_ssize_t i = 0;
    while (i + MOMENTS_LANES_8 <= n) {
        Py_ssize_t rounds = (n - i) / MOMENTS_LANES_8;
        rounds = rounds < MOMENTS_U8_FLUSH_ROUNDS ? rounds : MOMENTS_U8_FLUSH_ROUNDS;
        for (int k = 0; k < MOMENTS_LANES_8; k++)
            partial[k] = 0;
        for (Py_ssize_t r = 0; r < rounds; r++, i += MOMENTS_LANES_8)
            for (int k = 0; k < MOMENTS_LANES_8; k++) {
                uint8_t v = src[i + k];
                lo[k] = v < lo[k] ? v : lo[k];
                hi[k] = v > hi[k] ? v : hi[k];
                partial[k] += v;
                q[k] += (uint16_t)((uint16_t)v * (uint16_t)v);
            }
        for (int k = 0; k < MOMENTS_LANES_8; k++)
            s[k] += partial[k];
    }
    for (Py_ssize_t k = 0; i + k < n; k++) {
        uint8_t v = src[i + k];
        lo[k] = v < lo[k] ? v : lo[k];
        hi[k] = v > hi[k] ? v : hi[k];
        s[k] += v;
        q[k] += (uint16_t)((uint16_t)v * (uint16_t)v);
    }
    MOMENTS_STORE(MOMENTS_LANES_8)
}

/* The same lanes with AVX-512 VNNI (Ice Lake and later Xeons, Zen 4): each 64 bytes read as
 * 32 words, even bytes (x & 0xff) and odd bytes (x >> 8) apart, so no value is shuffled; the
 * squares of a word vector w go to uint32 by vpdpwssd (w[2m]² + w[2m+1]², lanes 4m and 4m + 2 of
 * the even words), and a second one on w with its odd words cleared keeps lane 4m alone, so each
 * lane's sum comes out exact by a subtraction. 512x512x3: 54 -> 41 us, 224x224x3 11.5 -> 9.1
 * (the portable loop above: the compiler widens every square with two shuffles; without VNNI,
 * vpmaddwd plus an add came within 10% of it, not kept). GCC only: built and measured there. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && !defined(__INTEL_COMPILER) && \
    !defined(__clang__)
#define HAS_MOMENTS_VNNI 1
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void
moments_u8_vnni(const void *source, Py_ssize_t n, Py_ssize_t lanes, const double *shift,
                  double *RESTRICT low, double *RESTRICT high, double *RESTRICT sums,
                  double *RESTRICT squares, void *work)
{
    (void)lanes;
    (void)work;
    (void)shift;
    enum { VECTORS = MOMENTS_LANES_8 / 64 };
    const uint8_t *src = source;
    const __m512i even_bytes = _mm512_set1_epi16(0x00ff), even_words = _mm512_set1_epi32(0xffff);
    __m512i lo[VECTORS], hi[VECTORS], sum_even[VECTORS], sum_odd[VECTORS];
    __m512i q_e0[VECTORS], q_e[VECTORS], q_o1[VECTORS], q_o[VECTORS];
    uint32_t s[MOMENTS_LANES_8];
    for (int p = 0; p < VECTORS; p++) {
        lo[p] = _mm512_set1_epi8(-1);
        hi[p] = q_e0[p] = q_e[p] = q_o1[p] = q_o[p] = _mm512_setzero_si512();
    }
    for (int k = 0; k < MOMENTS_LANES_8; k++)
        s[k] = 0;
    Py_ssize_t i = 0;
    while (i + MOMENTS_LANES_8 <= n) {
        Py_ssize_t rounds = (n - i) / MOMENTS_LANES_8;
        rounds = rounds < MOMENTS_U8_FLUSH_ROUNDS ? rounds : MOMENTS_U8_FLUSH_ROUNDS;
        for (int p = 0; p < VECTORS; p++)
            sum_even[p] = sum_odd[p] = _mm512_setzero_si512();
        for (Py_ssize_t r = 0; r < rounds; r++, i += MOMENTS_LANES_8)
            for (int p = 0; p < VECTORS; p++) {
                __m512i x = _mm512_loadu_si512((const void *)(src + i + 64 * p));
                lo[p] = _mm512_min_epu8(lo[p], x);
                hi[p] = _mm512_max_epu8(hi[p], x);
                __m512i even = _mm512_and_si512(x, even_bytes), odd = _mm512_srli_epi16(x, 8);
                sum_even[p] = _mm512_add_epi16(sum_even[p], even);
                sum_odd[p] = _mm512_add_epi16(sum_odd[p], odd);
                q_e0[p] = _mm512_dpwssd_epi32(q_e0[p], even, _mm512_and_si512(even, even_words));
                q_e[p] = _mm512_dpwssd_epi32(q_e[p], even, even);
                q_o1[p] = _mm512_dpwssd_epi32(q_o1[p], odd, _mm512_and_si512(odd, even_words));
                q_o[p] = _mm512_dpwssd_epi32(q_o[p], odd, odd);
            }
        for (int p = 0; p < VECTORS; p++) {
            uint16_t e[32], o[32];
            _mm512_storeu_si512((void *)e, sum_even[p]);
            _mm512_storeu_si512((void *)o, sum_odd[p]);
            for (int j = 0; j < 32; j++) {
                s[64 * p + 2 * j] += e[j];
                s[64 * p + 2 * j + 1] += o[j];
            }
        }
    }
    uint8_t l[MOMENTS_LANES_8], h[MOMENTS_LANES_8];
    uint32_t q[MOMENTS_LANES_8];
    for (int p = 0; p < VECTORS; p++) {
        uint32_t e0[16], e[16], o1[16], o[16];
        _mm512_storeu_si512((void *)(l + 64 * p), lo[p]);
        _mm512_storeu_si512((void *)(h + 64 * p), hi[p]);
        _mm512_storeu_si512((void *)e0, q_e0[p]);
        _mm512_storeu_si512((void *)e, q_e[p]);
        _mm512_storeu_si512((void *)o1, q_o1[p]);
        _mm512_storeu_si512((void *)o, q_o[p]);
        for (int m = 0; m < 16; m++) {
            q[64 * p + 4 * m] = e0[m];
            q[64 * p + 4 * m + 2] = e[m] - e0[m];
            q[64 * p + 4 * m + 1] = o1[m];
            q[64 * p + 4 * m + 3] = o[m] - o1[m];
        }
    }
    for (Py_ssize_t k = 0; i + k < n; k++) {
        uint8_t v = src[i + k];
        l[k] = v < l[k] ? v : l[k];
        h[k] = v > h[k] ? v : h[k];
        s[k] += v;
        q[k] += (uint32_t)v * v;
    }
    for (int k = 0; k < MOMENTS_LANES_8; k++) {
        low[k] = (double)l[k] < low[k] ? (double)l[k] : low[k];
        high[k] = (double)h[k] > high[k] ? (double)h[k] : high[k];
        sums[k] = (double)s[k];
        squares[k] = (double)q[k];
    }
}
#endif

static void moments_u8_fixed(const void *source, Py_ssize_t n, Py_ssize_t lanes,
                             const double *shift, double *low, double *high, double *sums,
                             double *squares, void *work)
{
#ifdef HAS_MOMENTS_VNNI
    if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni")) {
        moments_u8_vnni(source, n, lanes, shift, low, high, sums, squares, work);
        return;
    }
#endif
    moments_u8_lanes(source, n, lanes, shift, low, high, sums, squares, work);
}

typedef struct {
    char code;
    int raw; /* the lanes sum x, not x - k */
    Py_ssize_t fixed_lanes;
    MomentsBlock fixed, any;
} MomentsKernel;

static const MomentsKernel moments_kernels[] = {
    {'B', 1, MOMENTS_LANES_8, moments_u8_fixed, moments_u8_any},
    {'H', 1, MOMENTS_LANES_16, moments_u16_fixed, moments_u16_any},
    {'h', 1, MOMENTS_LANES_16, moments_s16_fixed, moments_s16_any},
    {'i', 0, MOMENTS_LANES_WIDE, moments_s32_fixed, moments_s32_any},
    {'e', 0, MOMENTS_LANES_WIDE, moments_f16_fixed, moments_f16_any},
    {'f', 0, MOMENTS_LANES_WIDE, moments_f32_fixed, moments_f32_any},
    {'d', 0, MOMENTS_LANES_WIDE, moments_f64_fixed, moments_f64_any},
};

static const MomentsKernel *moments_kernel(char code)
{
    for (size_t j = 0; j < sizeof moments_kernels / sizeof moments_kernels[0]; j++)
        if (moments_kernels[j].code == code)
            return &moments_kernels[j];
    return NULL;
}

/* The lanes a run of values of `channels` interleaved channels is read with, and which block
 * function reads them. */
static Py_ssize_t moments_lanes(const MomentsKernel *kernel, Py_ssize_t channels, MomentsBlock *run)
{
    if (kernel->fixed_lanes % channels == 0) {
        *run = kernel->fixed;
        return kernel->fixed_lanes;
    }
    *run = kernel->any;
    return lane_count(channels, MIN_MAX_MIN_LANES);
}

/* One block of a run of `channels` interleaved channels (a whole number of lanes from the run's
 * start, so that lane k is channel k % channels): the block's sums per channel into sums and
 * squares (shifted by the channel's first value), its extremes folded into low and high. `lane`
 * holds 5 * lanes doubles, `work` the _any lanes. */
static void moments_block(const MomentsKernel *kernel, MomentsBlock run, const char *src,
                          Py_ssize_t count, Py_ssize_t channels, Py_ssize_t lanes,
                          const double *first, double *low, double *high, double *sums,
                          double *squares, double *lane, void *work)
{
    double *shift = lane, *lane_low = lane + lanes, *lane_high = lane_low + lanes;
    double *lane_sums = lane_high + lanes, *lane_squares = lane_sums + lanes;
    for (Py_ssize_t k = 0; k < lanes; k++) {
        shift[k] = first[k % channels];
        lane_low[k] = INFINITY;
        lane_high[k] = -INFINITY;
    }
    run(src, count, lanes, shift, lane_low, lane_high, lane_sums, lane_squares, work);
    for (Py_ssize_t c = 0; c < channels; c++) {
        double s = 0.0, q = 0.0;
        for (Py_ssize_t k = c; k < lanes; k += channels) {
            s += lane_sums[k];
            q += lane_squares[k];
        }
        if (kernel->raw) { /* the sums of x - k from those of x: exact integers here */
            double values = (double)(count / channels), shift = first[c];
            q -= shift * (2.0 * s - values * shift);
            s -= values * shift;
        }
        sums[c] = s;
        squares[c] = q;
    }
    for (Py_ssize_t k = 0; k < lanes; k++) {
        Py_ssize_t c = k % channels;
        low[c] = lane_low[k] < low[c] ? lane_low[k] : low[c];
        high[c] = lane_high[k] > high[c] ? lane_high[k] : high[c];
    }
}

/* One moments call as a pool job. The source is cut into runs (the whole source when block is
 * 1, with `entries` interleaved channels; else each block of one entry) and each run into fixed
 * blocks of `block_values`; every block writes its own sums, which are added in block order
 * afterwards, so the result has the same bits for any thread count. Extremes: per thread. */
typedef struct {
    const MomentsKernel *kernel;
    MomentsBlock run;
    const char *src;
    Py_ssize_t itemsize, entries, lanes, block_values;
    Py_ssize_t runs, run_length, run_channels, blocks_per_run, blocks;
    const double *first; /* per entry */
    double *block_sums, *block_squares; /* run_channels per block */
    double *low, *high;                 /* entries per thread */
    char *scratch;                      /* per thread: 5 * lanes doubles, then the _any lanes */
    Py_ssize_t scratch_bytes;
} MomentsJob;

static void moments_part(void *context, Py_ssize_t part, Py_ssize_t parts, int thread)
{
    const MomentsJob *job = context;
    Py_ssize_t first_block, last_block;
    part_range(job->blocks, 1, part, parts, &first_block, &last_block);
    double *lane = (double *)(job->scratch + thread * job->scratch_bytes);
    void *work = lane + 5 * job->lanes;
    for (Py_ssize_t index = first_block; index < last_block; index++) {
        Py_ssize_t run = index / job->blocks_per_run;
        Py_ssize_t offset = index % job->blocks_per_run * job->block_values;
        Py_ssize_t left = job->run_length - offset;
        Py_ssize_t count = left < job->block_values ? left : job->block_values;
        Py_ssize_t entry = job->run_channels == 1 ? run % job->entries : 0;
        const char *src = job->src + (run * job->run_length + offset) * job->itemsize;
        moments_block(job->kernel, job->run, src, count,
                      job->run_channels, job->lanes, job->first + entry,
                      job->low + thread * job->entries + entry, job->high + thread * job->entries + entry,
                      job->block_sums + index * job->run_channels,
                      job->block_squares + index * job->run_channels, lane, work);
    }
}

static double decoded(char code, const char *value)
{
    switch (code) {
    case 'B': return *(const uint8_t *)value;
    case 'H': return *(const uint16_t *)value;
    case 'h': return *(const int16_t *)value;
    case 'i': return *(const int32_t *)value;
    case 'e': return half_to_float[*(const uint16_t *)value];
    case 'f': return *(const float *)value;
    default: return *(const double *)value;
    }
}

PyDoc_STRVAR(moments_doc,
             "moments(source, low, high, sums, squares, block=1)\n\n"
             "For each entry c of source (value i is in entry (i // block) % C, C = len(low)):\n"
             "low[c], high[c] its minimum and maximum (NaN skipped; NaN when it has no other\n"
             "value, as min_max; a zero extreme is +0.0), sums[c] the sum of x - k and\n"
             "squares[c] the sum of (x - k)**2 over its values x, k = source[c * block] (the\n"
             "entry's first value), in float64;\n"
             "exact for uint8, uint16 and int16 while below 2**53. source: as for min_max;\n"
             "low, high, sums, squares: float64, written.");

static PyObject *py_moments(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Buffer b[5];
    memset(b, 0, sizeof b);
    double *numbers = NULL;
    char *scratch = NULL;
    if (check_arg_count(nargs, 5, "moments") < 0 ||
        acquire(args[0], &b[0], 0, ANY_SOURCE, "source") < 0 ||
        acquire(args[1], &b[1], 1, FLOAT64, "low") < 0 ||
        acquire(args[2], &b[2], 1, FLOAT64, "high") < 0 ||
        acquire(args[3], &b[3], 1, FLOAT64, "sums") < 0 ||
        acquire(args[4], &b[4], 1, FLOAT64, "squares") < 0)
        goto fail;
    Py_ssize_t block = block_argument(args, nargs, 5);
    if (PyErr_Occurred())
        goto fail;
    Py_ssize_t n = length(&b[0]), entries = length(&b[1]);
    if (check_channel_tables(entries, length(&b[2]), n, block) < 0 ||
        check_channel_tables(entries, length(&b[3]), n, block) < 0 ||
        check_channel_tables(entries, length(&b[4]), n, block) < 0)
        goto fail;
    int threads = threads_for(b[0].view.len);
    if (threads < 0)
        goto fail;
    MomentsJob job = {.kernel = moments_kernel(b[0].code), .src = b[0].view.buf,
                      .itemsize = b[0].view.itemsize, .entries = entries};
    job.run_channels = block == 1 ? entries : 1;
    job.lanes = moments_lanes(job.kernel, job.run_channels, &job.run);
    Py_ssize_t lanes_a_block = MOMENTS_BLOCK_VALUES / job.lanes;
    job.block_values = job.lanes * (lanes_a_block > 0 ? lanes_a_block : 1);
    job.run_length = block == 1 ? n : block;
    job.runs = n ? n / job.run_length : 0;
    job.blocks_per_run = (job.run_length + job.block_values - 1) / job.block_values;
    job.blocks = job.runs * job.blocks_per_run;
    /* Numbers: each entry's first value, the blocks' sums and squares, each thread's extremes. */
    size_t count = (size_t)entries + 2 * (size_t)(job.blocks * job.run_channels) +
                   2 * (size_t)(threads * entries);
    job.scratch_bytes = 10 * job.lanes * (Py_ssize_t)sizeof(double); /* 5 lanes; the _any lanes */
    numbers = PyMem_Malloc(count * sizeof(double));
    scratch = PyMem_Malloc((size_t)threads * (size_t)job.scratch_bytes);
    if (!numbers || !scratch) {
        PyErr_NoMemory();
        goto fail;
    }
    double *first = numbers;
    job.first = first;
    job.block_sums = first + entries;
    job.block_squares = job.block_sums + job.blocks * job.run_channels;
    job.low = job.block_squares + job.blocks * job.run_channels;
    job.high = job.low + threads * entries;
    job.scratch = scratch;
    const char *src = b[0].view.buf;
    double *low = b[1].view.buf, *high = b[2].view.buf, *sums = b[3].view.buf,
           *squares = b[4].view.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t c = 0; c < entries; c++)
        first[c] = n ? decoded(b[0].code, src + c * block * job.itemsize) : 0.0;
    for (Py_ssize_t k = 0; k < threads * entries; k++) {
        job.low[k] = INFINITY;
        job.high[k] = -INFINITY;
    }
    pool_run(moments_part, &job, parts_for(threads) < job.blocks ? parts_for(threads) : job.blocks, threads);
    for (Py_ssize_t c = 0; c < entries; c++) {
        low[c] = INFINITY;
        high[c] = -INFINITY;
        sums[c] = squares[c] = 0.0;
        for (int thread = 0; thread < threads; thread++) {
            low[c] = job.low[thread * entries + c] < low[c] ? job.low[thread * entries + c] : low[c];
            high[c] = job.high[thread * entries + c] > high[c] ? job.high[thread * entries + c] : high[c];
        }
    }
    for (Py_ssize_t index = 0; index < job.blocks; index++) { /* in block order: the same bits */
        Py_ssize_t entry = job.run_channels == 1 ? index / job.blocks_per_run % entries : 0;
        for (Py_ssize_t c = 0; c < job.run_channels; c++) {
            sums[entry + c] += job.block_sums[index * job.run_channels + c];
            squares[entry + c] += job.block_squares[index * job.run_channels + c];
        }
    }
    for (Py_ssize_t c = 0; c < entries; c++) {
        low[c] = unsigned_zero(low[c]);
        high[c] = unsigned_zero(high[c]);
        if (low[c] > high[c])
            low[c] = high[c] = NAN;
    }
    Py_END_ALLOW_THREADS
    call_ended(b[0].view.len);
    PyMem_Free(scratch);
    PyMem_Free(numbers);
    release(b, 5);
    Py_RETURN_NONE;
fail:
    PyMem_Free(scratch);
    PyMem_Free(numbers);
    release(b, 5);
    return NULL;
}

/* ------------------------------------------------------------------ select */

PyDoc_STRVAR(select_doc,
             "select(source, selected, out, counts)\n\n"
             "Gathers the values of source whose selected flag is true, channel by channel: with\n"
             "C = len(counts) interleaved channels (value i in channel i % C) and P = len(source)\n"
             "// C, channel c's selected values, in order, go to out[c * P : c * P + counts[c]].\n"
             "source: C-contiguous uint8, uint16, int16, int32, float16, float32 or float64 whose\n"
             "length is a multiple of C; selected: bool with as many values; out: writable, the\n"
             "dtype of source, as many values, not overlapping source (past each channel's\n"
             "selected run it is overwritten); counts: writable int64, written.");

/* Every value is stored and the write position advances by its flag: no branch, where NumPy's
 * boolean indexing branches on each flag and, on scattered flags (27 % zeros of a 224x224x3
 * uint8 image), took 231 us to gather them and 195 us for each channel of a strided one. */
#define DEFINE_SELECT(name, type)                                                                  \
    static void name(const type *RESTRICT src, const uint8_t *RESTRICT flags, type *RESTRICT dst,     \
                     Py_ssize_t pixels, Py_ssize_t channels, int64_t *counts)                      \
    {                                                                                              \
        if (channels == 1) {                                                                       \
            Py_ssize_t k = 0;                                                                      \
            for (Py_ssize_t i = 0; i < pixels; i++) {                                              \
                dst[k] = src[i];                                                                   \
                k += flags[i] != 0;                                                                \
            }                                                                                      \
            counts[0] = k;                                                                         \
            return;                                                                                \
        }                                                                                          \
        for (Py_ssize_t c = 0; c < channels; c++) {                                                \
            type *out = dst + c * pixels;                                                          \
            const type *in = src + c;                                                              \
            const uint8_t *flag = flags + c;                                                       \
            Py_ssize_t k = 0;                                                                      \
            for (Py_ssize_t p = 0; p < pixels; p++) {                                              \
                out[k] = in[p * channels];                                                         \
                k += flag[p * channels] != 0;                                                      \
            }                                                                                      \
            counts[c] = k;                                                                         \
        }                                                                                          \
    }

DEFINE_SELECT(select_1, uint8_t)
DEFINE_SELECT(select_2, uint16_t)
DEFINE_SELECT(select_4, uint32_t)
DEFINE_SELECT(select_8, uint64_t)

static PyObject *py_select(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Buffer b[4];
    memset(b, 0, sizeof b);
    if (check_exact_arg_count(nargs, 4, "select") < 0 ||
        acquire(args[0], &b[0], 0, ANY_SOURCE, "source") < 0 ||
        acquire(args[1], &b[1], 0, "?", "bool", "selected") < 0 ||
        acquire(args[2], &b[2], 1, ANY_SOURCE, "out") < 0 ||
        acquire(args[3], &b[3], 1, "q", "int64", "counts") < 0)
        goto fail;
    Py_ssize_t n = length(&b[0]), channels = length(&b[3]);
    if (b[2].code != b[0].code) {
        PyErr_Format(PyExc_TypeError, "out must hold the values of source (format '%c'), got '%c'",
                     b[0].code, b[2].code);
        goto fail;
    }
    if (length(&b[1]) != n || length(&b[2]) != n) {
        PyErr_Format(PyExc_ValueError,
                     "selected and out must have the %zd values of source; got %zd and %zd", n,
                     length(&b[1]), length(&b[2]));
        goto fail;
    }
    if (channels < 1 || n % channels) {
        PyErr_Format(PyExc_ValueError,
                     "counts must have C >= 1 values, C dividing the %zd values of source; got %zd", n,
                     channels);
        goto fail;
    }
    const char *source_start = b[0].view.buf, *out_start = b[2].view.buf;
    if (n && source_start < out_start + b[2].view.len && out_start < source_start + b[0].view.len) {
        PyErr_SetString(PyExc_ValueError, "out must not overlap source");
        goto fail;
    }
    const void *src = b[0].view.buf;
    const uint8_t *flags = b[1].view.buf;
    void *dst = b[2].view.buf;
    int64_t *counts = b[3].view.buf;
    Py_ssize_t pixels = n / channels;
    Py_BEGIN_ALLOW_THREADS
    switch (b[0].view.itemsize) {
    case 1: select_1(src, flags, dst, pixels, channels, counts); break;
    case 2: select_2(src, flags, dst, pixels, channels, counts); break;
    case 4: select_4(src, flags, dst, pixels, channels, counts); break;
    default: select_8(src, flags, dst, pixels, channels, counts); break;
    }
    Py_END_ALLOW_THREADS
    release(b, 4);
    Py_RETURN_NONE;
fail:
    release(b, 4);
    return NULL;
}

PyDoc_STRVAR(keep_selected_doc,
             "keep_selected(out, selected)\n\n"
             "Sets out[i] to +0.0 where selected[i] is false, whatever out[i] was (NaN and inf\n"
             "included). out: writable C-contiguous float32; selected: bool with as many values.");

/* Bits masked, no branch: np.copyto(out, 0.0, where=...) branches on every flag and took 205 us
 * on scattered flags (27 % of 224x224x3 false); NumPy's own branchless routes need a uint32 mask
 * of the image's size, whose fresh pages cost more than the work. */
VECTOR_CLONES static void keep_selected_f32(uint32_t *RESTRICT bits, const uint8_t *RESTRICT flags,
                                             Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++)
        bits[i] &= 0u - (uint32_t)(flags[i] != 0);
}

static PyObject *py_keep_selected(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Buffer b[2];
    memset(b, 0, sizeof b);
    if (check_exact_arg_count(nargs, 2, "keep_selected") < 0 ||
        acquire(args[0], &b[0], 1, FLOAT32, "out") < 0 ||
        acquire(args[1], &b[1], 0, "?", "bool", "selected") < 0)
        goto fail;
    Py_ssize_t n = length(&b[0]);
    if (length(&b[1]) != n) {
        PyErr_Format(PyExc_ValueError, "selected must have the %zd values of out; got %zd", n,
                     length(&b[1]));
        goto fail;
    }
    uint32_t *bits = b[0].view.buf;
    const uint8_t *flags = b[1].view.buf;
    Py_BEGIN_ALLOW_THREADS
    keep_selected_f32(bits, flags, n);
    Py_END_ALLOW_THREADS
    release(b, 2);
    Py_RETURN_NONE;
fail:
    release(b, 2);
    return NULL;
}

static PyMethodDef methods[] = {
    {"affine", (PyCFunction)(void (*)(void))py_affine, METH_FASTCALL, affine_doc},
    {"affine_to_planes", (PyCFunction)(void (*)(void))py_affine_to_planes, METH_FASTCALL,
     affine_to_planes_doc},
    {"min_max", (PyCFunction)(void (*)(void))py_min_max, METH_FASTCALL, min_max_doc},
    {"histogram", (PyCFunction)(void (*)(void))py_histogram, METH_FASTCALL, histogram_doc},
    {"moments", (PyCFunction)(void (*)(void))py_moments, METH_FASTCALL, moments_doc},
    {"select", (PyCFunction)(void (*)(void))py_select, METH_FASTCALL, select_doc},
    {"keep_selected", (PyCFunction)(void (*)(void))py_keep_selected, METH_FASTCALL, keep_selected_doc},
    {"set_thread_policy", py_set_thread_policy, METH_O, set_thread_policy_doc},
    {"parallel_jobs", py_parallel_jobs, METH_NOARGS, parallel_jobs_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernels",
    "One-pass CPU kernels of the NumPy backend (see _kernels.c for why they exist).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__kernels(void)
{
    for (uint32_t bits = 0; bits < 65536; bits++)
        half_to_float[bits] = decode_half((uint16_t)bits);
#ifdef HAS_F16C_PATH
    __builtin_cpu_init();
    cpu_has_f16c = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
#endif
    /* The portable loop, which ARM builds run, on demand: how the tests check it on x86. */
    const char *no_f16c = getenv("NORM_TRANSFORMS_DISABLE_F16C");
    if (no_f16c && no_f16c[0] == '1')
        cpu_has_f16c = 0;
    if (pool_init() != 0) {
        PyErr_SetString(PyExc_RuntimeError,
                        "norm_transforms: could not install the thread pool's fork handler");
        return NULL;
    }
    return PyModule_Create(&module);
}
