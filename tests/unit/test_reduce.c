/* The narrow-float conversions against independent formulas, and every
 * reduction kernel against a scalar reference. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/types.h"

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bitsf(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint64_t rng_next(uint64_t *state)   /* splitmix64 */
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- the narrow formats, described independently of src/ ------------------ */

struct format {
    const char *name;
    int exp_bits, mant_bits, bias;
    int saturates;      /* fp8: finite overflow gives the max finite value */
    int ieee_special;   /* the top exponent holds inf and NaN (else e4m3's single NaN) */
    float (*to_float)(uint32_t code);
    uint32_t (*from_float)(float f);
};

static float half_dec(uint32_t c) { return cb_half_to_float((uint16_t)c); }
static uint32_t half_enc(float f) { return cb_float_to_half(f); }
static float bf16_dec(uint32_t c) { return cb_bf16_to_float((uint16_t)c); }
static uint32_t bf16_enc(float f) { return cb_float_to_bf16(f); }
static float e4m3_dec(uint32_t c) { return cb_e4m3_to_float((uint8_t)c); }
static uint32_t e4m3_enc(float f) { return cb_float_to_e4m3(f); }
static float e5m2_dec(uint32_t c) { return cb_e5m2_to_float((uint8_t)c); }
static uint32_t e5m2_enc(float f) { return cb_float_to_e5m2(f); }

static const struct format formats[] = {
    {"half", 5, 10, 15, 0, 1, half_dec, half_enc},
    {"bfloat16", 8, 7, 127, 0, 1, bf16_dec, bf16_enc},
    {"f8e4m3", 4, 3, 7, 1, 0, e4m3_dec, e4m3_enc},
    {"f8e5m2", 5, 2, 15, 1, 1, e5m2_dec, e5m2_enc},
};

static uint32_t fmt_codes(const struct format *f) { return 1u << (1 + f->exp_bits + f->mant_bits); }
static uint32_t fmt_sign(const struct format *f) { return 1u << (f->exp_bits + f->mant_bits); }
static uint32_t fmt_exp_max(const struct format *f) { return (1u << f->exp_bits) - 1; }

static int fmt_is_nan(const struct format *f, uint32_t code)
{
    uint32_t mag = code & (fmt_sign(f) - 1), exp = mag >> f->mant_bits;
    uint32_t mant = mag & ((1u << f->mant_bits) - 1);
    if (f->ieee_special)
        return exp == fmt_exp_max(f) && mant != 0;
    return mag == fmt_sign(f) - 1;
}

static int fmt_is_inf(const struct format *f, uint32_t code)
{
    uint32_t mag = code & (fmt_sign(f) - 1);
    return f->ieee_special && mag == fmt_exp_max(f) << f->mant_bits;
}

/* The value of a code by the textbook formula, in double. */
static double fmt_value(const struct format *f, uint32_t code)
{
    uint32_t mag = code & (fmt_sign(f) - 1), exp = mag >> f->mant_bits;
    uint32_t mant = mag & ((1u << f->mant_bits) - 1);
    double sign = code & fmt_sign(f) ? -1.0 : 1.0;
    if (fmt_is_inf(f, code))
        return sign * INFINITY;
    if (exp == 0)
        return sign * ldexp(mant, 1 - f->bias - f->mant_bits);
    return sign * ldexp((double)((1u << f->mant_bits) + mant), (int)exp - f->bias - f->mant_bits);
}

/* The largest positive finite code. */
static uint32_t fmt_max_code(const struct format *f)
{
    uint32_t top = fmt_sign(f) - 1;
    return f->ieee_special ? (fmt_exp_max(f) << f->mant_bits) - 1 : top - 1;
}

/* Round a finite double to a code, to nearest even, by searching the codes. */
static uint32_t fmt_round_reference(const struct format *f, double v)
{
    uint32_t sign = signbit(v) ? fmt_sign(f) : 0, max = fmt_max_code(f);
    double a = fabs(v), max_value = fmt_value(f, max);
    double ulp_at_max = max_value - fmt_value(f, max - 1);
    if (a > max_value) {
        if (f->saturates)
            return sign | max;
        /* IEEE: beyond max + half an ulp (a tie goes to the even "2^emax+1") is inf */
        return a >= max_value + ulp_at_max / 2 ? sign | (max + 1) : sign | max;
    }
    uint32_t lo = 0, hi = max;   /* find the last code whose value <= a */
    while (lo < hi) {
        uint32_t mid = (lo + hi + 1) / 2;
        if (fmt_value(f, mid) <= a)
            lo = mid;
        else
            hi = mid - 1;
    }
    if (fmt_value(f, lo) == a || lo == max)
        return sign | lo;
    double below = a - fmt_value(f, lo), above = fmt_value(f, lo + 1) - a;
    if (below < above || (below == above && (lo & 1) == 0))
        return sign | lo;
    return sign | (lo + 1);
}

static void check_encode(const struct format *f, float x)
{
    uint32_t got = f->from_float(x);
    if (isnan(x)) {
        if (!fmt_is_nan(f, got))
            fail_msg("%s: NaN (0x%08x) became 0x%x", f->name, fbits(x), got);
        return;
    }
    uint32_t want = fmt_round_reference(f, x);
    if (isinf(x) && f->ieee_special)   /* infinity stays infinity, e5m2 too */
        want = (x < 0 ? fmt_sign(f) : 0) | (fmt_max_code(f) + 1);
    if (got != want)
        fail_msg("%s: %a (0x%08x) encoded 0x%x, want 0x%x", f->name, (double)x, fbits(x), got, want);
}

static void test_decode_matches_formula(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof formats / sizeof formats[0]; k++) {
        const struct format *f = &formats[k];
        for (uint32_t c = 0; c < fmt_codes(f); c++) {
            float got = f->to_float(c);
            if (fmt_is_nan(f, c)) {
                if (!isnan(got))
                    fail_msg("%s: code 0x%x should be NaN", f->name, c);
                continue;
            }
            double want = fmt_value(f, c);
            if ((double)got != want || !signbit(got) != !signbit(want))
                fail_msg("%s: code 0x%x gave %a, want %a", f->name, c, (double)got, want);
        }
    }
}

static void test_every_code_round_trips(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof formats / sizeof formats[0]; k++) {
        const struct format *f = &formats[k];
        for (uint32_t c = 0; c < fmt_codes(f); c++) {
            uint32_t back = f->from_float(f->to_float(c));
            if (back != c)
                fail_msg("%s: 0x%x came back as 0x%x", f->name, c, back);
        }
    }
}

/* The value of the code after c; past the largest finite one, where the
 * next binade would start. */
static double fmt_next_value(const struct format *f, uint32_t c)
{
    uint32_t max = fmt_max_code(f);
    if (c < max)
        return fmt_value(f, c + 1);
    return 2 * fmt_value(f, max) - fmt_value(f, max - 1);
}

/* Every representable value, every midpoint between neighbours (the ties),
 * and the floats just either side of each midpoint, both signs. */
static void test_encode_neighbours_and_midpoints(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof formats / sizeof formats[0]; k++) {
        const struct format *f = &formats[k];
        for (uint32_t c = 0; c <= fmt_max_code(f); c++) {
            double mid = (fmt_value(f, c) + fmt_next_value(f, c)) / 2;
            if (mid > FLT_MAX)
                continue;
            for (float sign = -1; sign <= 1; sign += 2) {
                check_encode(f, sign * (float)fmt_value(f, c));
                check_encode(f, sign * (float)mid);
                check_encode(f, sign * nextafterf((float)mid, 0));
                check_encode(f, sign * nextafterf((float)mid, INFINITY));
            }
        }
    }
}

static void test_encode_random_floats(void **state)
{
    (void)state;
    uint64_t rng = 42;
    for (size_t k = 0; k < sizeof formats / sizeof formats[0]; k++) {
        for (int i = 0; i < 200000; i++) {
            float x = bitsf((uint32_t)rng_next(&rng));
            if (!isnan(x))
                check_encode(&formats[k], x);
        }
        /* and magnitudes near the format's range */
        for (int i = 0; i < 200000; i++) {
            uint32_t u = (uint32_t)rng_next(&rng);
            float x = ldexpf(1.0f + (float)(u & 0xffffff) * 0x1p-24f, (int)(u >> 24) % 48 - 30);
            check_encode(&formats[k], u & 0x80000000u ? -x : x);
        }
    }
}

static void test_encode_specials(void **state)
{
    (void)state;
    /* ties to even */
    assert_int_equal(cb_float_to_half(1.0f + 0x1p-11f), 0x3c00);
    assert_int_equal(cb_float_to_half(1.0f + 3 * 0x1p-11f), 0x3c02);
    assert_int_equal(cb_float_to_bf16(1.0f + 0x1p-8f), 0x3f80);
    assert_int_equal(cb_float_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
    assert_int_equal(cb_float_to_e4m3(1.0f + 0x1p-4f), 0x38);
    assert_int_equal(cb_float_to_e4m3(1.0f + 3 * 0x1p-4f), 0x3a);
    assert_int_equal(cb_float_to_e5m2(1.0f + 0x1p-3f), 0x3c);
    assert_int_equal(cb_float_to_e5m2(1.0f + 3 * 0x1p-3f), 0x3e);
    /* subnormals: the smallest, its half (a tie with 0), 1.5 of it (a tie with 2) */
    assert_int_equal(cb_float_to_half(0x1p-24f), 0x0001);
    assert_int_equal(cb_float_to_half(0x1p-25f), 0x0000);
    assert_int_equal(cb_float_to_half(0x1.8p-24f), 0x0002);
    assert_int_equal(cb_float_to_half(-0x1p-25f), 0x8000);
    assert_int_equal(cb_float_to_half(0x1.ffcp-15f), 0x0400);   /* a tie, up into the normals */
    assert_int_equal(cb_float_to_e4m3(0x1p-9f), 0x01);
    assert_int_equal(cb_float_to_e4m3(0x1p-10f), 0x00);
    assert_int_equal(cb_float_to_e4m3(0x1.8p-9f), 0x02);
    assert_int_equal(cb_float_to_e5m2(0x1p-16f), 0x01);
    assert_int_equal(cb_float_to_e5m2(0x1.8p-16f), 0x02);
    assert_int_equal(cb_float_to_bf16(0x1p-133f), 0x0001);
    /* overflow: half and bf16 to inf like IEEE, fp8 saturates */
    assert_int_equal(cb_float_to_half(65504.0f), 0x7bff);
    assert_int_equal(cb_float_to_half(65519.0f), 0x7bff);
    assert_int_equal(cb_float_to_half(65520.0f), 0x7c00);
    assert_int_equal(cb_float_to_half(1e10f), 0x7c00);
    assert_int_equal(cb_float_to_half(-INFINITY), 0xfc00);
    assert_int_equal(cb_float_to_bf16(3.4e38f), 0x7f80);
    assert_int_equal(cb_float_to_e4m3(448.0f), 0x7e);
    assert_int_equal(cb_float_to_e4m3(464.0f), 0x7e);
    assert_int_equal(cb_float_to_e4m3(1e6f), 0x7e);
    assert_int_equal(cb_float_to_e4m3(-1e30f), 0xfe);
    assert_int_equal(cb_float_to_e4m3(INFINITY), 0x7e);
    assert_int_equal(cb_float_to_e5m2(57344.0f), 0x7b);
    assert_int_equal(cb_float_to_e5m2(61440.0f), 0x7b);
    assert_int_equal(cb_float_to_e5m2(-1e9f), 0xfb);
    assert_int_equal(cb_float_to_e5m2(INFINITY), 0x7c);
    /* NaN stays NaN */
    assert_true(isnan(cb_half_to_float(cb_float_to_half(NAN))));
    assert_true(isnan(cb_bf16_to_float(cb_float_to_bf16(NAN))));
    assert_int_equal(cb_float_to_e4m3(NAN) & 0x7f, 0x7f);
    assert_true(isnan(cb_e5m2_to_float(cb_float_to_e5m2(NAN))));
    assert_true(isnan(cb_e4m3_to_float(0xff)));
    assert_true(isnan(cb_e4m3_to_float(0x7f)));
    assert_true(cb_e4m3_to_float(0x7e) == 448.0f);
    assert_true(cb_e5m2_to_float(0x7b) == 57344.0f);
}

/* ---- names ------------------------------------------------------------------- */

static void test_names_and_parse(void **state)
{
    (void)state;
    static const char *const names[CB_NTYPES] = {"int8", "uint8", "int32", "uint32", "int64", "uint64",
                                                 "half", "float", "double", "bfloat16", "f8e4m3", "f8e5m2"};
    static const size_t sizes[CB_NTYPES] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2, 1, 1};
    for (int t = 0; t < CB_NTYPES; t++) {
        assert_string_equal(cb_type_name(t), names[t]);
        assert_int_equal(cb_type_size(t), sizes[t]);
        assert_int_equal(cb_type_parse(names[t]), t);
        assert_int_equal(cb_type_is_float(t), t >= CB_HALF);
    }
    static const struct { const char *alias; int type; } aliases[] = {
        {"char", CB_INT8}, {"uchar", CB_UINT8}, {"int", CB_INT32}, {"uint", CB_UINT32},
        {"float16", CB_HALF}, {"float32", CB_FLOAT}, {"fp32", CB_FLOAT}, {"float64", CB_DOUBLE},
        {"bf16", CB_BFLOAT16}, {"fp8_e4m3", CB_F8E4M3}, {"fp8_e5m2", CB_F8E5M2},
    };
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        assert_int_equal(cb_type_parse(aliases[i].alias), aliases[i].type);
    assert_int_equal(cb_type_parse("float8"), -1);
    assert_int_equal(cb_type_parse(""), -1);
    assert_int_equal(cb_type_parse(NULL), -1);
    static const char *const ops[CB_NOPS] = {"sum", "prod", "min", "max", "avg", "mulsum"};
    for (int op = 0; op < CB_NOPS; op++) {
        assert_string_equal(cb_op_name(op), ops[op]);
        assert_int_equal(cb_op_parse(ops[op]), op);
    }
    assert_int_equal(cb_op_parse("mean"), -1);
}

static void test_load_store(void **state)
{
    (void)state;
    static const double values[] = {0, 1, -1, 2, 7, -8, 100, -100};
    unsigned char buf[16];
    for (int t = 0; t < CB_NTYPES; t++) {
        for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
            double v = values[i];
            if (t == CB_UINT8 || t == CB_UINT32 || t == CB_UINT64)
                v = fabs(v);
            if ((t == CB_F8E4M3 || t == CB_F8E5M2) && fabs(v) == 100)
                v = v / 100 * 96;   /* 100 is not an fp8 value */
            cb_store(buf, 1, t, v);
            assert_true(cb_load(buf, 1, t) == v);
        }
    }
}

/* ---- kernels against a scalar reference ---------------------------------------- */

static int type_is_signed(cb_type t) { return t == CB_INT8 || t == CB_INT32 || t == CB_INT64; }

static uint64_t get_bits(const void *buf, size_t i, size_t size)
{
    uint64_t v = 0;
    memcpy(&v, (const char *)buf + i * size, size);   /* little-endian */
    return v;
}

static void put_bits(void *buf, size_t i, size_t size, uint64_t v)
{
    memcpy((char *)buf + i * size, &v, size);
}

static int64_t as_signed(uint64_t v, size_t size)
{
    unsigned shift = 64 - 8 * (unsigned)size;
    return (int64_t)(v << shift) >> shift;
}

static uint64_t ref_int(uint64_t x, uint64_t y, cb_type t, cb_op op)
{
    size_t size = cb_type_size(t);
    int64_t sx = as_signed(x, size), sy = as_signed(y, size);
    switch (op) {
    case CB_SUM: case CB_AVG: case CB_MULSUM: return x + y;
    case CB_PROD: return x * y;
    case CB_MIN: return type_is_signed(t) ? (sx < sy ? x : y) : (x < y ? x : y);
    default: return type_is_signed(t) ? (sx > sy ? x : y) : (x > y ? x : y);
    }
}

static uint64_t ref_int_divide(uint64_t v, cb_type t, int n)
{
    size_t size = cb_type_size(t);
    uint64_t mask = size == 8 ? UINT64_MAX : (1ull << (8 * size)) - 1;
    if (type_is_signed(t))
        return (uint64_t)(as_signed(v, size) / n);
    return (v & mask) / (uint64_t)n;
}

static float narrow_to_float(cb_type t, uint64_t c)
{
    switch (t) {
    case CB_HALF: return cb_half_to_float((uint16_t)c);
    case CB_BFLOAT16: return cb_bf16_to_float((uint16_t)c);
    case CB_F8E4M3: return cb_e4m3_to_float((uint8_t)c);
    default: return cb_e5m2_to_float((uint8_t)c);
    }
}

static uint64_t float_to_narrow(cb_type t, float f)
{
    switch (t) {
    case CB_HALF: return cb_float_to_half(f);
    case CB_BFLOAT16: return cb_float_to_bf16(f);
    case CB_F8E4M3: return cb_float_to_e4m3(f);
    default: return cb_float_to_e5m2(f);
    }
}

#define REF_FLOAT_OP(T, x, y, op)                                       \
    ((op) == CB_PROD ? (T)((x) * (y)) : (op) == CB_MIN ? ((x) < (y) ? (x) : (y)) \
     : (op) == CB_MAX ? ((x) > (y) ? (x) : (y)) : (T)((x) + (y)))

/* One element of dst = a OP b, then for avg on the last step / n. */
static uint64_t ref_element(uint64_t ca, uint64_t cb, cb_type t, cb_op op, int last_n)
{
    if (!cb_type_is_float(t)) {
        uint64_t r = ref_int(ca, cb, t, op);
        return op == CB_AVG && last_n ? ref_int_divide(r, t, last_n) : r;
    }
    if (t == CB_FLOAT) {
        float x = bitsf((uint32_t)ca), y = bitsf((uint32_t)cb), r = REF_FLOAT_OP(float, x, y, op);
        if (op == CB_AVG && last_n)
            r = r / (float)last_n;
        return fbits(r);
    }
    if (t == CB_DOUBLE) {
        double x, y, r;
        memcpy(&x, &ca, 8);
        memcpy(&y, &cb, 8);
        r = REF_FLOAT_OP(double, x, y, op);
        if (op == CB_AVG && last_n)
            r = r / (double)last_n;
        uint64_t out;
        memcpy(&out, &r, 8);
        return out;
    }
    float x = narrow_to_float(t, ca), y = narrow_to_float(t, cb);
    if (op == CB_MIN)
        return x < y ? ca : cb;
    if (op == CB_MAX)
        return x > y ? ca : cb;
    uint64_t r = float_to_narrow(t, op == CB_PROD ? x * y : x + y);
    if (op == CB_AVG && last_n)
        r = float_to_narrow(t, narrow_to_float(t, r) / (float)last_n);
    return r;
}

/* Random element bits: any for integers; for floats any value but NaN. */
static uint64_t random_element(cb_type t, uint64_t *rng)
{
    size_t size = cb_type_size(t);
    for (;;) {
        uint64_t v = rng_next(rng);
        if (size < 8)
            v &= (1ull << (8 * size)) - 1;
        if (t == CB_FLOAT || t == CB_HALF || t == CB_BFLOAT16 || t == CB_F8E4M3 || t == CB_F8E5M2) {
            /* half the time small values, so sums and products stay in range */
            if (v & 1) {
                float small = (float)((int)(rng_next(rng) % 33) - 16) / 4;
                v = t == CB_FLOAT ? fbits(small) : float_to_narrow(t, small);
            }
            float f = t == CB_FLOAT ? bitsf((uint32_t)v) : narrow_to_float(t, v);
            if (isnan(f))
                continue;
        }
        if (t == CB_DOUBLE) {
            double d;
            memcpy(&d, &v, 8);
            if (isnan(d))
                continue;
        }
        return v;
    }
}

#define GUARD 16   /* elements past count that must stay untouched */

enum call { CALL_REDUCE, CALL_LAST, CALL_FINISH };

/* cb_reduce_finish's reference: avg divides once, like the last step. */
static uint64_t ref_finish(uint64_t x, cb_type t, cb_op op, int n)
{
    if (op != CB_AVG)
        return x;
    if (!cb_type_is_float(t))
        return ref_int_divide(x, t, n);
    if (t == CB_FLOAT)
        return fbits(bitsf((uint32_t)x) / (float)n);
    if (t == CB_DOUBLE) {
        double d;
        memcpy(&d, &x, 8);
        d /= n;
        memcpy(&x, &d, 8);
        return x;
    }
    return float_to_narrow(t, narrow_to_float(t, x) / (float)n);
}

static uint64_t ref_call(enum call call, uint64_t x, uint64_t y, cb_type t, cb_op op, int n)
{
    switch (call) {
    case CALL_REDUCE: return ref_element(x, y, t, op, 0);
    case CALL_LAST: return ref_element(x, y, t, op, n);
    default: return ref_finish(x, t, op, n);
    }
}

static void *alloc_or_fail(size_t bytes)
{
    void *p = malloc(bytes);
    assert_non_null(p);
    return p;
}

/* Runs one kernel call on random data and compares it, and the guard
 * elements after it, with the reference. alias: 0 none, 1 dst == a, 2 dst == b
 * (finish works in place on a copy of a). */
static void check_kernel(cb_type t, cb_op op, size_t count, enum call call, int alias, int nranks, uint64_t *rng)
{
    size_t size = cb_type_size(t), total = (count + GUARD) * size;
    unsigned char *a = alloc_or_fail(total), *b = alloc_or_fail(total);
    unsigned char *dst = alloc_or_fail(total), *want = alloc_or_fail(total);
    for (size_t i = 0; i < count + GUARD; i++) {
        put_bits(a, i, size, random_element(t, rng));
        put_bits(b, i, size, random_element(t, rng));
    }
    memset(dst, 0xa5, total);
    memset(want, 0xa5, total);
    for (size_t i = 0; i < count; i++)
        put_bits(want, i, size, ref_call(call, get_bits(a, i, size), get_bits(b, i, size), t, op, nranks));
    const void *in_a = a, *in_b = b;
    if (alias == 1 || call == CALL_FINISH) {
        memcpy(dst, a, count * size);
        in_a = dst;
    } else if (alias == 2) {
        memcpy(dst, b, count * size);
        in_b = dst;
    }
    if (call == CALL_FINISH)
        cb_reduce_finish(dst, count, t, op, nranks);
    else if (call == CALL_LAST)
        cb_reduce_last(dst, in_a, in_b, count, t, op, nranks);
    else
        cb_reduce(dst, in_a, in_b, count, t, op);
    for (size_t i = 0; i < count + GUARD; i++) {
        uint64_t got = get_bits(dst, i, size), exp = get_bits(want, i, size);
        if (got != exp)
            fail_msg("%s %s count %zu call %d alias %d n %d: element %zu is 0x%llx, want 0x%llx",
                     cb_type_name(t), cb_op_name(op), count, (int)call, alias, nranks, i,
                     (unsigned long long)got, (unsigned long long)exp);
    }
    free(a);
    free(b);
    free(dst);
    free(want);
}

static const size_t counts[] = {0, 1, 3, 7, 31, 64, 65, 100, 1027, 4099};

static void test_reduce_all_types_ops(void **state)
{
    (void)state;
    uint64_t rng = 7;
    for (int t = 0; t < CB_NTYPES; t++)
        for (int op = 0; op < CB_NOPS; op++)
            for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++)
                for (int alias = 0; alias < 3; alias++)
                    check_kernel(t, op, counts[c], CALL_REDUCE, alias, 1, &rng);
}

static void test_reduce_last_all_types_ops(void **state)
{
    (void)state;
    static const int nranks[] = {1, 2, 3, 7, 16, 17, 1000};
    uint64_t rng = 8;
    for (int t = 0; t < CB_NTYPES; t++)
        for (int op = 0; op < CB_NOPS; op++)
            for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++)
                for (size_t n = 0; n < sizeof nranks / sizeof nranks[0]; n++)
                    check_kernel(t, op, counts[c], CALL_LAST, (int)(c % 3), nranks[n], &rng);
}

static void test_reduce_finish_all_types_ops(void **state)
{
    (void)state;
    static const int nranks[] = {1, 3, 8, 17};
    uint64_t rng = 9;
    for (int t = 0; t < CB_NTYPES; t++)
        for (int op = 0; op < CB_NOPS; op++)
            for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++)
                for (size_t n = 0; n < sizeof nranks / sizeof nranks[0]; n++)
                    check_kernel(t, op, counts[c], CALL_FINISH, 0, nranks[n], &rng);
}

/* mulsum's multiplication: odd ranks times 2 (x + x, rounded as the sum
 * kernel rounds), even ranks times 1, in place or not, nothing past count. */
static void check_premultiply(cb_type t, size_t count, int rank, int in_place, uint64_t *rng)
{
    size_t size = cb_type_size(t), total = (count + GUARD) * size;
    unsigned char *src = alloc_or_fail(total), *dst = alloc_or_fail(total), *want = alloc_or_fail(total);
    for (size_t i = 0; i < count + GUARD; i++)
        put_bits(src, i, size, random_element(t, rng));
    memset(dst, 0xa5, total);
    memset(want, 0xa5, total);
    for (size_t i = 0; i < count; i++) {
        uint64_t x = get_bits(src, i, size);
        put_bits(want, i, size, rank % 2 ? ref_element(x, x, t, CB_SUM, 0) : x);
    }
    if (in_place)
        memcpy(dst, src, count * size);
    cb_reduce_premultiply(dst, in_place ? dst : src, count, t, rank);
    for (size_t i = 0; i < count + GUARD; i++)
        if (get_bits(dst, i, size) != get_bits(want, i, size))
            fail_msg("%s count %zu rank %d in place %d: element %zu is 0x%llx, want 0x%llx", cb_type_name(t), count,
                     rank, in_place, i, (unsigned long long)get_bits(dst, i, size),
                     (unsigned long long)get_bits(want, i, size));
    free(src);
    free(dst);
    free(want);
}

static void test_premultiply_all_types(void **state)
{
    (void)state;
    uint64_t rng = 10;
    assert_int_equal(cb_mulsum_scalar(0), 1);   /* nccl-tests' verifiable.h: rank%2 == 0 ? 1 : 2 */
    assert_int_equal(cb_mulsum_scalar(1), 2);
    assert_int_equal(cb_mulsum_scalar(6), 1);
    assert_int_equal(cb_mulsum_scalar(7), 2);
    for (int t = 0; t < CB_NTYPES; t++)
        for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++)
            for (int rank = 0; rank < 4; rank++)
                check_premultiply(t, counts[c], rank, rank / 2, &rng);
    int8_t i8[2] = {100, -3};
    cb_reduce_premultiply(i8, i8, 2, CB_INT8, 3);
    assert_int_equal(i8[0], -56);   /* 200 wraps */
    assert_int_equal(i8[1], -6);
    uint8_t e4[2] = {0x76, 0x38}, e4r[2];   /* e4m3 224 -> 448, 1 -> 2 */
    cb_reduce_premultiply(e4r, e4, 2, CB_F8E4M3, 1);
    assert_int_equal(e4r[0], 0x7e);
    assert_int_equal(e4r[1], 0x40);
    cb_reduce_premultiply(e4r, e4, 2, CB_F8E4M3, 2);
    assert_memory_equal(e4r, e4, 2);
}

/* Known answers, so that the reference itself is pinned down. */
static void test_reduce_known_values(void **state)
{
    (void)state;
    int8_t i8a[3] = {127, -128, -7}, i8b[3] = {1, -1, 2}, i8r[3];
    cb_reduce(i8r, i8a, i8b, 3, CB_INT8, CB_SUM);
    assert_int_equal(i8r[0], -128);
    assert_int_equal(i8r[1], 127);
    cb_reduce_last(i8r, i8a, i8b, 3, CB_INT8, CB_AVG, 2);
    assert_int_equal(i8r[0], -64);
    assert_int_equal(i8r[2], -2);   /* -5 / 2 truncates toward zero */
    cb_reduce(i8r, i8a, i8b, 3, CB_INT8, CB_MIN);
    assert_int_equal(i8r[1], -128);
    uint32_t ua[2] = {0xffffffffu, 0x10000u}, ub[2] = {2, 0x10000u}, ur[2];
    cb_reduce(ur, ua, ub, 2, CB_UINT32, CB_PROD);
    assert_int_equal(ur[0], 0xfffffffeu);
    assert_int_equal(ur[1], 0);
    uint16_t ha[1] = {0x7bff}, hb[1] = {0x7bff}, hr[1];   /* 65504 + 65504 */
    cb_reduce(hr, ha, hb, 1, CB_HALF, CB_SUM);
    assert_int_equal(hr[0], 0x7c00);
    uint8_t ea[2] = {0x7e, 0x40}, eb[2] = {0x7e, 0x40}, er[2];   /* 448 + 448, 2 + 2 */
    cb_reduce(er, ea, eb, 2, CB_F8E4M3, CB_SUM);
    assert_int_equal(er[0], 0x7e);
    assert_int_equal(er[1], 0x48);
    uint8_t fa[1] = {0x7b}, fb[1] = {0x7b}, fr[1];
    cb_reduce(fr, fa, fb, 1, CB_F8E5M2, CB_SUM);
    assert_int_equal(fr[0], 0x7b);
    float xa[1] = {1.0f}, xb[1] = {2.0f}, xr[1];
    cb_reduce_last(xr, xa, xb, 1, CB_FLOAT, CB_AVG, 3);
    assert_true(xr[0] == 1.0f);
    uint16_t ba[1] = {0x3f80}, bb[1] = {0x4000}, br[1];   /* bf16: (1 + 2) / 7 */
    cb_reduce_last(br, ba, bb, 1, CB_BFLOAT16, CB_AVG, 7);
    assert_int_equal(br[0], cb_float_to_bf16(3.0f / 7.0f));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_matches_formula),
        cmocka_unit_test(test_every_code_round_trips),
        cmocka_unit_test(test_encode_neighbours_and_midpoints),
        cmocka_unit_test(test_encode_random_floats),
        cmocka_unit_test(test_encode_specials),
        cmocka_unit_test(test_names_and_parse),
        cmocka_unit_test(test_load_store),
        cmocka_unit_test(test_reduce_known_values),
        cmocka_unit_test(test_reduce_all_types_ops),
        cmocka_unit_test(test_reduce_last_all_types_ops),
        cmocka_unit_test(test_reduce_finish_all_types_ops),
        cmocka_unit_test(test_premultiply_all_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
