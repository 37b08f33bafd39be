/* The reduction kernels, and the narrow-float conversions they inline. */
#include "types.h"

#include <assert.h>
#include <string.h>

/* Floating-point traps are never enabled; without this gcc keeps the float ops
 * of the narrow-float conversions behind branches and their loops stay scalar.
 * No result changes, only whether discarded ops may raise exception flags. */
#pragma GCC optimize("no-trapping-math")

/* ---- narrow floats <-> float ------------------------------------------------ */

static inline uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* NaN payloads are kept where the narrow mantissa has room (so every code
 * round-trips); a payload that would vanish becomes the quiet bit. */
static inline uint32_t nan_mantissa(uint32_t abs_bits, int mbits)
{
    uint32_t m = (abs_bits & 0x7fffff) >> (23 - mbits);
    return m ? m : 1u << (mbits - 1);
}

/* Round a float magnitude (sign cleared) to a narrow format with mbits mantissa
 * bits and the given exponent bias, to nearest even. Valid below the format's
 * overflow threshold; callers select saturation, infinity and NaN themselves.
 * Branch-free (selects only) so that the loops around it can vectorize. */
static inline uint32_t round_magnitude(uint32_t a, int mbits, int bias)
{
    int shift = 23 - mbits;
    /* Normal: rebias the exponent and round the dropped bits to nearest even;
     * a carry moves into the exponent. */
    uint32_t rebias = (uint32_t)(bias - 127) << 23;
    uint32_t normal = (a + rebias + (1u << (shift - 1)) - 1 + ((a >> shift) & 1)) >> shift;
    /* Below the smallest normal: adding a float whose ulp is the subnormal
     * step makes the FPU round to nearest even for us. */
    uint32_t magic = (uint32_t)(151 - bias - mbits) << 23;
    uint32_t subnormal = float_bits(bits_float(a) + bits_float(magic)) - magic;
    uint32_t min_normal = (uint32_t)(128 - bias) << 23;
    return a < min_normal ? subnormal : normal;
}

/* Widen a narrow float whose exponent and mantissa sit at bit 23 - mbits up:
 * rescaling by 2^(127 - bias) is exact for normals and subnormals alike. */
static inline uint32_t widen_magnitude(uint32_t exp_mant, float scale)
{
    return float_bits(bits_float(exp_mant) * scale);
}

static inline float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp_mant = (uint32_t)(h & 0x7fff) << 13;
    uint32_t mag = widen_magnitude(exp_mant, 0x1p112f);
    mag = exp_mant >= 0x0f800000 ? exp_mant | 0x7f800000 : mag;   /* inf, NaN */
    return bits_float(sign | mag);
}

static inline uint16_t float_to_half(float f)
{
    uint32_t u = float_bits(f), a = u & 0x7fffffff;
    uint32_t r = round_magnitude(a, 10, 15);
    r = a >= 0x477ff000 ? 0x7c00 : r;   /* >= 65520 = max + half an ulp: IEEE overflow */
    r = a > 0x7f800000 ? 0x7c00 | nan_mantissa(a, 10) : r;
    return (uint16_t)(((u >> 16) & 0x8000) | r);
}

static inline float bf16_to_float(uint16_t b)
{
    return bits_float((uint32_t)b << 16);
}

static inline uint16_t float_to_bf16(float f)
{
    uint32_t u = float_bits(f);
    uint32_t rounded = (u + 0x7fff + ((u >> 16) & 1)) >> 16;   /* overflow reaches inf */
    uint32_t nan = ((u >> 16) & 0xff80) | nan_mantissa(u, 7);
    return (uint16_t)((u & 0x7fffffff) > 0x7f800000 ? nan : rounded);
}

static inline float e4m3_to_float(uint8_t v)
{
    uint32_t sign = (uint32_t)(v & 0x80) << 24;
    uint32_t mag = widen_magnitude((uint32_t)(v & 0x7f) << 20, 0x1p120f);
    mag = (v & 0x7f) == 0x7f ? 0x7fc00000 : mag;   /* the one NaN */
    return bits_float(sign | mag);
}

static inline uint8_t float_to_e4m3(float f)
{
    uint32_t u = float_bits(f), a = u & 0x7fffffff;
    uint32_t r = round_magnitude(a, 3, 7);
    r = a > 0x43e00000 ? 0x7e : r;      /* > 448, infinity too: saturate */
    r = a > 0x7f800000 ? 0x7f : r;
    return (uint8_t)(((u >> 24) & 0x80) | r);
}

static inline float e5m2_to_float(uint8_t v)
{
    return half_to_float((uint16_t)(v << 8));   /* e5m2 is the top byte of a half */
}

static inline uint8_t float_to_e5m2(float f)
{
    uint32_t u = float_bits(f), a = u & 0x7fffffff;
    uint32_t r = round_magnitude(a, 2, 15);
    r = a > 0x47600000 ? 0x7b : r;      /* > 57344: saturate */
    r = a == 0x7f800000 ? 0x7c : r;     /* infinity stays infinity */
    r = a > 0x7f800000 ? 0x7c | nan_mantissa(a, 2) : r;
    return (uint8_t)(((u >> 24) & 0x80) | r);
}

float cb_half_to_float(uint16_t h) { return half_to_float(h); }
uint16_t cb_float_to_half(float f) { return float_to_half(f); }
float cb_bf16_to_float(uint16_t b) { return bf16_to_float(b); }
uint16_t cb_float_to_bf16(float f) { return float_to_bf16(f); }
float cb_e4m3_to_float(uint8_t v) { return e4m3_to_float(v); }
uint8_t cb_float_to_e4m3(float f) { return float_to_e4m3(f); }
float cb_e5m2_to_float(uint8_t v) { return e5m2_to_float(v); }
uint8_t cb_float_to_e5m2(float f) { return float_to_e5m2(f); }

/* ---- kernels ------------------------------------------------------------------ */

/* Each loop computes 64-byte blocks into a local array before storing. dst may
 * be a or b, and a plain loop would need a runtime alias check, which gcc -O2's
 * very-cheap cost model refuses; the block form vectorizes at -O2. */
#define BLOCK_BYTES 64

typedef void binary_kernel(void *dst, const void *a, const void *b, size_t n);
typedef void divide_kernel(void *buf, size_t n, int nranks);

/* Native types; integer sum and prod run on the unsigned type, so they wrap
 * without undefined behaviour and serve the signed type too. */
#define DEFINE_NATIVE(NAME, T, EXPR)                                        \
    static void NAME(void *dstv, const void *av, const void *bv, size_t n)  \
    {                                                                       \
        T *dst = dstv;                                                      \
        const T *a = av, *b = bv;                                           \
        enum { B = BLOCK_BYTES / sizeof(T) };                               \
        size_t i = 0;                                                       \
        for (; i + B <= n; i += B) {                                        \
            T r[B];                                                         \
            for (size_t k = 0; k < B; k++) {                                \
                T x = a[i + k], y = b[i + k];                               \
                r[k] = (T)(EXPR);                                           \
            }                                                               \
            memcpy(dst + i, r, sizeof r);                                   \
        }                                                                   \
        for (; i < n; i++) {                                                \
            T x = a[i], y = b[i];                                           \
            dst[i] = (T)(EXPR);                                             \
        }                                                                   \
    }

#define OP_SUM (x + y)
#define OP_PROD (x * y)
#define OP_MIN (x < y ? x : y)
#define OP_MAX (x > y ? x : y)

/* Sum and prod of native types, the kernels bulk data runs through: whole
 * 64-byte blocks as gcc vectors, both inputs loaded before the store (so dst
 * may be a or b) and no round trip through a stack array. x86-64 builds stay
 * baseline and pick AVX2/AVX-512 clones at load time where the CPU has them. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

#define DEFINE_NATIVE_VECTOR(NAME, T, EXPR)                                 \
    VECTOR_CLONES static void NAME(void *dstv, const void *av, const void *bv, size_t n) \
    {                                                                       \
        typedef T block __attribute__((vector_size(BLOCK_BYTES)));          \
        char *dst = dstv;                                                   \
        const char *a = av, *b = bv;                                        \
        size_t bytes = n * sizeof(T), i = 0;                                \
        for (; i + BLOCK_BYTES <= bytes; i += BLOCK_BYTES) {                \
            block x, y, r;                                                  \
            memcpy(&x, a + i, BLOCK_BYTES);                                 \
            memcpy(&y, b + i, BLOCK_BYTES);                                 \
            r = EXPR;                                                       \
            memcpy(dst + i, &r, BLOCK_BYTES);                               \
        }                                                                   \
        for (; i < bytes; i += sizeof(T)) {                                 \
            T x, y, r;                                                      \
            memcpy(&x, a + i, sizeof x);                                    \
            memcpy(&y, b + i, sizeof y);                                    \
            r = (T)(EXPR);                                                  \
            memcpy(dst + i, &r, sizeof r);                                  \
        }                                                                   \
    }

#define DEFINE_NATIVE_ARITH(SUFFIX, T)               \
    DEFINE_NATIVE_VECTOR(sum_##SUFFIX, T, OP_SUM)    \
    DEFINE_NATIVE_VECTOR(prod_##SUFFIX, T, OP_PROD)
#define DEFINE_NATIVE_MINMAX(SUFFIX, T)       \
    DEFINE_NATIVE(min_##SUFFIX, T, OP_MIN)    \
    DEFINE_NATIVE(max_##SUFFIX, T, OP_MAX)

DEFINE_NATIVE_ARITH(u8, uint8_t)
DEFINE_NATIVE_ARITH(u32, uint32_t)
DEFINE_NATIVE_ARITH(u64, uint64_t)
DEFINE_NATIVE_ARITH(f32, float)
DEFINE_NATIVE_ARITH(f64, double)
DEFINE_NATIVE_MINMAX(i8, int8_t)
DEFINE_NATIVE_MINMAX(u8, uint8_t)
DEFINE_NATIVE_MINMAX(i32, int32_t)
DEFINE_NATIVE_MINMAX(u32, uint32_t)
DEFINE_NATIVE_MINMAX(i64, int64_t)
DEFINE_NATIVE_MINMAX(u64, uint64_t)
DEFINE_NATIVE_MINMAX(f32, float)
DEFINE_NATIVE_MINMAX(f64, double)

/* Narrow floats: widen to float, one float op, one rounding back. EXPR sees the
 * floats x, y and the codes cx, cy; min and max pick a code unchanged. */
#define DEFINE_NARROW(NAME, T, TO_F, EXPR)                                  \
    static void NAME(void *dstv, const void *av, const void *bv, size_t n)  \
    {                                                                       \
        T *dst = dstv;                                                      \
        const T *a = av, *b = bv;                                           \
        enum { B = BLOCK_BYTES / sizeof(T) };                               \
        size_t i = 0;                                                       \
        for (; i + B <= n; i += B) {                                        \
            T r[B];                                                         \
            for (size_t k = 0; k < B; k++) {                                \
                T cx = a[i + k], cy = b[i + k];                             \
                float x = TO_F(cx), y = TO_F(cy);                           \
                r[k] = (EXPR);                                              \
            }                                                               \
            memcpy(dst + i, r, sizeof r);                                   \
        }                                                                   \
        for (; i < n; i++) {                                                \
            T cx = a[i], cy = b[i];                                         \
            float x = TO_F(cx), y = TO_F(cy);                               \
            dst[i] = (EXPR);                                                \
        }                                                                   \
    }

#define DEFINE_NARROW_ALL(SUFFIX, T, TO_F, FROM_F)                      \
    DEFINE_NARROW(sum_##SUFFIX, T, TO_F, FROM_F(x + y))                 \
    DEFINE_NARROW(prod_##SUFFIX, T, TO_F, FROM_F(x * y))                \
    DEFINE_NARROW(min_##SUFFIX, T, TO_F, (x < y ? cx : cy))             \
    DEFINE_NARROW(max_##SUFFIX, T, TO_F, (x > y ? cx : cy))             \
    static void divide_##SUFFIX(void *bufv, size_t n, int nranks)       \
    {                                                                   \
        T *buf = bufv;                                                  \
        float d = (float)nranks;                                        \
        for (size_t i = 0; i < n; i++)                                  \
            buf[i] = FROM_F(TO_F(buf[i]) / d);                          \
    }

DEFINE_NARROW_ALL(f16, uint16_t, half_to_float, float_to_half)
DEFINE_NARROW_ALL(bf16, uint16_t, bf16_to_float, float_to_bf16)
DEFINE_NARROW_ALL(e4m3, uint8_t, e4m3_to_float, float_to_e4m3)
DEFINE_NARROW_ALL(e5m2, uint8_t, e5m2_to_float, float_to_e5m2)

/* Average: truncating division in the element's own type (float for float). */
#define DEFINE_DIVIDE(SUFFIX, T, DIVISOR_T)                             \
    static void divide_##SUFFIX(void *bufv, size_t n, int nranks)       \
    {                                                                   \
        T *buf = bufv;                                                  \
        DIVISOR_T d = (DIVISOR_T)nranks;                                \
        for (size_t i = 0; i < n; i++)                                  \
            buf[i] = (T)(buf[i] / d);                                   \
    }

DEFINE_DIVIDE(i8, int8_t, int)
DEFINE_DIVIDE(u8, uint8_t, int)
DEFINE_DIVIDE(i32, int32_t, int32_t)
DEFINE_DIVIDE(u32, uint32_t, uint32_t)
DEFINE_DIVIDE(i64, int64_t, int64_t)
DEFINE_DIVIDE(u64, uint64_t, uint64_t)
DEFINE_DIVIDE(f32, float, float)
DEFINE_DIVIDE(f64, double, double)

#define KERNELS(SUM, PROD, MIN, MAX) \
    {[CB_SUM] = SUM, [CB_PROD] = PROD, [CB_MIN] = MIN, [CB_MAX] = MAX, [CB_AVG] = SUM, [CB_MULSUM] = SUM}

static binary_kernel *const binary_kernels[CB_NTYPES][CB_NOPS] = {
    [CB_INT8] = KERNELS(sum_u8, prod_u8, min_i8, max_i8),
    [CB_UINT8] = KERNELS(sum_u8, prod_u8, min_u8, max_u8),
    [CB_INT32] = KERNELS(sum_u32, prod_u32, min_i32, max_i32),
    [CB_UINT32] = KERNELS(sum_u32, prod_u32, min_u32, max_u32),
    [CB_INT64] = KERNELS(sum_u64, prod_u64, min_i64, max_i64),
    [CB_UINT64] = KERNELS(sum_u64, prod_u64, min_u64, max_u64),
    [CB_HALF] = KERNELS(sum_f16, prod_f16, min_f16, max_f16),
    [CB_FLOAT] = KERNELS(sum_f32, prod_f32, min_f32, max_f32),
    [CB_DOUBLE] = KERNELS(sum_f64, prod_f64, min_f64, max_f64),
    [CB_BFLOAT16] = KERNELS(sum_bf16, prod_bf16, min_bf16, max_bf16),
    [CB_F8E4M3] = KERNELS(sum_e4m3, prod_e4m3, min_e4m3, max_e4m3),
    [CB_F8E5M2] = KERNELS(sum_e5m2, prod_e5m2, min_e5m2, max_e5m2),
};

static divide_kernel *const divide_kernels[CB_NTYPES] = {
    [CB_INT8] = divide_i8,     [CB_UINT8] = divide_u8,     [CB_INT32] = divide_i32,
    [CB_UINT32] = divide_u32,  [CB_INT64] = divide_i64,    [CB_UINT64] = divide_u64,
    [CB_HALF] = divide_f16,    [CB_FLOAT] = divide_f32,    [CB_DOUBLE] = divide_f64,
    [CB_BFLOAT16] = divide_bf16, [CB_F8E4M3] = divide_e4m3, [CB_F8E5M2] = divide_e5m2,
};

void cb_reduce(void *dst, const void *a, const void *b, size_t count, cb_type t, cb_op op)
{
    assert((unsigned)t < CB_NTYPES && (unsigned)op < CB_NOPS);
    binary_kernels[t][op](dst, a, b, count);
}

void cb_reduce_premultiply(void *dst, const void *src, size_t count, cb_type t, int rank)
{
    assert((unsigned)t < CB_NTYPES);
    if (cb_mulsum_scalar(rank) == 2)
        binary_kernels[t][CB_SUM](dst, src, src, count);
    else if (dst != src)
        memmove(dst, src, count * cb_type_size(t));
}

/* Elements per pass of the fused sum-then-divide, so the divide finds the sums in L1. */
#define AVG_CHUNK_BYTES 8192

void cb_reduce_last(void *dst, const void *a, const void *b, size_t count, cb_type t, cb_op op, int nranks)
{
    assert((unsigned)t < CB_NTYPES && (unsigned)op < CB_NOPS && nranks >= 1);
    if (op != CB_AVG) {
        binary_kernels[t][op](dst, a, b, count);
        return;
    }
    size_t size = cb_type_size(t), chunk = AVG_CHUNK_BYTES / size;
    for (size_t i = 0; i < count; i += chunk) {
        size_t n = count - i < chunk ? count - i : chunk, at = i * size;
        binary_kernels[t][CB_SUM]((char *)dst + at, (const char *)a + at, (const char *)b + at, n);
        divide_kernels[t]((char *)dst + at, n, nranks);
    }
}

void cb_reduce_finish(void *buf, size_t count, cb_type t, cb_op op, int nranks)
{
    assert((unsigned)t < CB_NTYPES && (unsigned)op < CB_NOPS && nranks >= 1);
    if (op == CB_AVG)
        divide_kernels[t](buf, count, nranks);
}
