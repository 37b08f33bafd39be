/* Deterministic data and exact expected results; data.h says why they are exact. */
#include "data.h"

#include <assert.h>
#include <string.h>

/* What every element of one (type, op, nranks, seed) shares. */
struct pattern {
    cb_type type;
    cb_op op;
    uint64_t nranks;
    uint64_t key;          /* the seed, hashed */
    uint64_t rotation;     /* seed mod nranks: which rank takes which position */
    size_t size;
    /* integers */
    unsigned bits;
    int is_signed;
    /* floats */
    uint64_t contributors; /* sum, avg, mulsum: positions holding a non-zero value */
    uint64_t g_bound;      /* sum, avg, mulsum: |g| <= g_bound */
    uint64_t max_twos;     /* prod: factors of 2 per element */
};

/* Hash slots for per-element draws; positions, the other slots, are < 2^31. */
#define SLOT_ELEMENT (1ull << 40)
#define SLOT_ELEMENT2 (SLOT_ELEMENT + 1)

#define FLOAT_VALUE_CAP 100  /* keeps sum/avg values small and readable */
#define MINMAX_RANGE 8       /* float min/max values lie in [-8, 8] */

static uint64_t mix64(uint64_t z)   /* splitmix64's finalizer */
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t hash(const struct pattern *pt, uint64_t index, uint64_t slot)
{
    return mix64(pt->key + index * 0x9e3779b97f4a7c15ull + slot * 0xd1b54a32d192ed03ull);
}

/* A number in [0, bound) from a hash (multiply-high: no division). */
static uint64_t below(uint64_t h, uint64_t bound)
{
    return (uint64_t)(((unsigned __int128)h * bound) >> 64);
}

/* Largest L such that the float type holds every integer in [-L, L]. */
static uint64_t exact_integer_limit(cb_type t)
{
    switch (t) {
    case CB_F8E5M2: return 8;
    case CB_F8E4M3: return 16;
    case CB_BFLOAT16: return 256;
    case CB_HALF: return 2048;
    case CB_FLOAT: return 1ull << 24;
    default: return 1ull << 53;
    }
}

/* Most factors of 2 whose product the float type holds exactly. */
static uint64_t max_power_of_two(cb_type t)
{
    switch (t) {
    case CB_F8E4M3: return 8;    /* 256 <= 448 */
    case CB_F8E5M2: case CB_HALF: return 15;
    default: return 60;
    }
}

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

static void pattern_init(struct pattern *pt, cb_type t, cb_op op, int nranks, uint64_t seed)
{
    assert((unsigned)t < CB_NTYPES && (unsigned)op < CB_NOPS && nranks >= 1);
    memset(pt, 0, sizeof *pt);
    pt->type = t;
    pt->op = op;
    pt->nranks = (uint64_t)nranks;
    pt->key = mix64(seed);
    pt->rotation = seed % pt->nranks;
    pt->size = cb_type_size(t);
    pt->bits = (unsigned)pt->size * 8;
    pt->is_signed = t == CB_INT8 || t == CB_INT32 || t == CB_INT64;
    uint64_t limit = exact_integer_limit(t);
    /* mulsum's g are even: fewer contributors leave room for more than 0 */
    pt->contributors = min_u64(pt->nranks, op == CB_MULSUM ? limit / 2 : limit);
    pt->g_bound = min_u64(limit / pt->contributors, FLOAT_VALUE_CAP);   /* >= 1: k <= L */
    pt->max_twos = min_u64(max_power_of_two(t), pt->nranks);
}

/* The position rank takes for element index: a rotation, so that which ranks
 * contribute, or hold the extreme, changes from element to element. */
static uint64_t position_of(const struct pattern *pt, int rank, uint64_t index)
{
    return ((uint64_t)rank % pt->nranks + index % pt->nranks + pt->rotation) % pt->nranks;
}

/* ---- integers: w-bit patterns in a uint64, truncated when stored ----------- */

static uint64_t width_mask(const struct pattern *pt)
{
    return pt->bits == 64 ? UINT64_MAX : (1ull << pt->bits) - 1;
}

/* Inverse modulo 2^64 of an odd number, by Newton's iteration. */
static uint64_t inverse_odd(uint64_t x)
{
    uint64_t y = (3 * x) ^ 2;        /* right in the low 5 bits */
    for (int k = 0; k < 4; k++)
        y *= 2 - x * y;              /* each step doubles the right bits */
    return y;
}

/* avg's total: 2qn +- r with 0 <= r < n and r even, within the type, so the
 * truncated quotient is exactly 2q: even, never the poison. */
static uint64_t int_average_total(const struct pattern *pt, uint64_t index)
{
    uint64_t n = pt->nranks;
    uint64_t max = pt->is_signed ? width_mask(pt) >> 1 : width_mask(pt);
    uint64_t rem_cap = min_u64(n - 1, max);
    uint64_t h = hash(pt, index, SLOT_ELEMENT);
    uint64_t rem = below(h, rem_cap + 1) & ~1ull;
    uint64_t q_cap = (max - rem_cap) / (2 * n);
    uint64_t h2 = hash(pt, index, SLOT_ELEMENT2);
    if (!pt->is_signed)
        return 2 * below(h2, q_cap + 1) * n + rem;
    int64_t q = (int64_t)below(h2, 2 * q_cap + 1) - (int64_t)q_cap;
    int negative = q < 0 || (q == 0 && (h & 1));
    int64_t total = 2 * q * (int64_t)n + (negative ? -(int64_t)rem : (int64_t)rem);
    return (uint64_t)total;
}

/* sum, avg: g(0) = 0, g(n) = the total, even values between; mulsum:
 * multiples of 4, so that half a difference is still even. */
static uint64_t int_sum_g(const struct pattern *pt, uint64_t index, uint64_t pos)
{
    if (pos == 0)
        return 0;
    if (pos == pt->nranks && pt->op == CB_AVG)
        return int_average_total(pt, index);
    return hash(pt, index, pos) & (pt->op == CB_MULSUM ? ~3ull : ~1ull);
}

/* prod: P(0) = 1, P(n) = the product, all 1 mod 4 (a group under *). */
static uint64_t int_prod_p(const struct pattern *pt, uint64_t index, uint64_t pos)
{
    return pos == 0 ? 1 : (hash(pt, index, pos) << 2) | 1;
}

/* min, max: keys order like the values (the sign bit flipped for signed types);
 * position 0 holds the extreme, the others lie up to 2^(bits-1) beyond it. */
static uint64_t key_to_value(const struct pattern *pt, uint64_t key)
{
    return pt->is_signed ? key ^ (1ull << (pt->bits - 1)) : key;
}

static uint64_t half_range_even(const struct pattern *pt, uint64_t h)
{
    return (h >> (65 - pt->bits)) & ~1ull;
}

static uint64_t int_extreme_key(const struct pattern *pt, uint64_t index)
{
    uint64_t offset = half_range_even(pt, hash(pt, index, SLOT_ELEMENT));
    return pt->op == CB_MIN ? offset : width_mask(pt) - 1 - offset;
}

static uint64_t int_value(const struct pattern *pt, uint64_t index, uint64_t pos)
{
    switch (pt->op) {
    case CB_SUM:
    case CB_AVG:
    case CB_MULSUM:
        return int_sum_g(pt, index, pos + 1) - int_sum_g(pt, index, pos);
    case CB_PROD:
        return int_prod_p(pt, index, pos + 1) * inverse_odd(int_prod_p(pt, index, pos));
    default: {
        uint64_t extreme = int_extreme_key(pt, index);
        uint64_t spread = pos ? half_range_even(pt, hash(pt, index, pos)) : 0;
        return key_to_value(pt, pt->op == CB_MIN ? extreme + spread : extreme - spread);
    }
    }
}

static uint64_t sign_extend(const struct pattern *pt, uint64_t v)
{
    uint64_t sign = 1ull << (pt->bits - 1);
    v &= width_mask(pt);
    return (v ^ sign) - sign;
}

static uint64_t int_expected(const struct pattern *pt, uint64_t index)
{
    uint64_t n = pt->nranks;
    switch (pt->op) {
    case CB_SUM:
    case CB_MULSUM:
        return int_sum_g(pt, index, n);
    case CB_AVG: {
        uint64_t total = int_sum_g(pt, index, n);
        if (!pt->is_signed)
            return (total & width_mask(pt)) / n;
        return (uint64_t)((int64_t)sign_extend(pt, total) / (int64_t)n);
    }
    case CB_PROD:
        return int_prod_p(pt, index, n);
    default:
        return key_to_value(pt, int_extreme_key(pt, index));
    }
}

static void store_int(void *buf, size_t j, size_t size, uint64_t v)
{
    switch (size) {
    case 1: ((uint8_t *)buf)[j] = (uint8_t)v; break;
    case 4: ((uint32_t *)buf)[j] = (uint32_t)v; break;
    default: ((uint64_t *)buf)[j] = v; break;
    }
}

/* ---- floats: small integers, exact in double and in the type --------------- */

/* sum, avg: g(0) = 0, g(1..k) in [-bound, bound]; mulsum: even ones, so
 * that half a difference is an integer too. */
static int64_t float_sum_g(const struct pattern *pt, uint64_t index, uint64_t pos)
{
    if (pos == 0)
        return 0;
    int64_t step = pt->op == CB_MULSUM ? 2 : 1, steps = (int64_t)pt->g_bound / step;
    return step * ((int64_t)below(hash(pt, index, pos), 2 * (uint64_t)steps + 1) - steps);
}

static uint64_t float_twos(const struct pattern *pt, uint64_t index)
{
    return below(hash(pt, index, SLOT_ELEMENT), pt->max_twos + 1);
}

/* prod: the sign of position p is s(p) xor s(p+1), s(0) = 0, so the product's
 * sign is s(n). */
static int float_sign_bit(const struct pattern *pt, uint64_t index, uint64_t pos)
{
    return pos ? (int)(hash(pt, index, pos) & 1) : 0;
}

static int64_t float_extreme(const struct pattern *pt, uint64_t index)
{
    int64_t e = (int64_t)below(hash(pt, index, SLOT_ELEMENT), MINMAX_RANGE + 1);
    return pt->op == CB_MIN ? -e : e;
}

static double float_value(const struct pattern *pt, uint64_t index, uint64_t pos)
{
    switch (pt->op) {
    case CB_SUM:
    case CB_AVG:
    case CB_MULSUM:
        if (pos >= pt->contributors)
            return 0;
        return (double)(float_sum_g(pt, index, pos + 1) - float_sum_g(pt, index, pos));
    case CB_PROD: {
        int magnitude = 1 + (pos < float_twos(pt, index));
        int negative = float_sign_bit(pt, index, pos) ^ float_sign_bit(pt, index, pos + 1);
        return (double)((1 - 2 * negative) * magnitude);
    }
    default: {
        int64_t extreme = float_extreme(pt, index);
        if (pos == 0)
            return (double)extreme;
        /* the others lie between the extreme and the far end of [-8, 8] */
        uint64_t room = (uint64_t)(MINMAX_RANGE + (pt->op == CB_MIN ? -extreme : extreme));
        int64_t spread = (int64_t)below(hash(pt, index, pos), room + 1);
        return (double)(pt->op == CB_MIN ? extreme + spread : extreme - spread);
    }
    }
}

/* The reduction before avg's division. */
static double float_reduced(const struct pattern *pt, uint64_t index)
{
    switch (pt->op) {
    case CB_SUM:
    case CB_AVG:
    case CB_MULSUM:
        return (double)float_sum_g(pt, index, pt->contributors);
    case CB_PROD: {
        double magnitude = (double)(1ull << float_twos(pt, index));
        return (1 - 2 * float_sign_bit(pt, index, pt->nranks)) * magnitude;
    }
    default:
        return (double)float_extreme(pt, index);
    }
}

/* avg divides once, in the precision the kernels use: double for double,
 * float for the others (the narrow floats' one rounding happens in cb_store). */
static double float_expected(const struct pattern *pt, uint64_t index)
{
    double reduced = float_reduced(pt, index);
    if (pt->op != CB_AVG)
        return reduced;
    if (pt->type == CB_DOUBLE)
        return reduced / (double)pt->nranks;
    return (double)((float)reduced / (float)pt->nranks);
}

/* ---- the API ----------------------------------------------------------------- */

void cb_data_fill(void *buf, size_t count, size_t first_index, cb_type t, cb_op op,
                  int rank, int nranks, uint64_t seed)
{
    struct pattern pt;
    pattern_init(&pt, t, op, nranks, seed);
    assert(rank >= 0 && rank < nranks);
    uint64_t pos = position_of(&pt, rank, first_index);
    int is_float = cb_type_is_float(t);
    /* mulsum: what the position contributes, divided by the rank's scalar
     * (exact: the contributions are even integers, or multiples of 4
     * modulo 2^bits whose half is even) */
    unsigned halve = op == CB_MULSUM && cb_mulsum_scalar(rank) == 2;
    for (size_t j = 0; j < count; j++) {
        uint64_t index = (uint64_t)first_index + j;
        if (is_float)
            cb_store(buf, j, t, float_value(&pt, index, pos) / (halve ? 2 : 1));
        else
            store_int(buf, j, pt.size, int_value(&pt, index, pos) >> halve);
        if (++pos == pt.nranks)
            pos = 0;
    }
}

void cb_data_expected_rank(void *buf, size_t count, size_t first_index, cb_type t, cb_op op,
                           int src_rank, int nranks, uint64_t seed)
{
    cb_data_fill(buf, count, first_index, t, op, src_rank, nranks, seed);
}

void cb_data_expected_reduce(void *buf, size_t count, size_t first_index, cb_type t, cb_op op,
                             int nranks, uint64_t seed)
{
    struct pattern pt;
    pattern_init(&pt, t, op, nranks, seed);
    int is_float = cb_type_is_float(t);
    for (size_t j = 0; j < count; j++) {
        uint64_t index = (uint64_t)first_index + j;
        if (is_float)
            cb_store(buf, j, t, float_expected(&pt, index));
        else
            store_int(buf, j, pt.size, int_expected(&pt, index));
    }
}

/* Counts without a branch per element, which would mispredict on every
 * element of a badly wrong buffer. memcpy: buffers at any alignment. */
#define DEFINE_COUNT_WRONG(NAME, T)                                         \
    static size_t NAME(const unsigned char *got, const unsigned char *exp,  \
                       size_t count)                                        \
    {                                                                       \
        size_t wrong = 0;                                                   \
        for (size_t j = 0; j < count; j++) {                                \
            T g, e;                                                         \
            memcpy(&g, got + j * sizeof(T), sizeof(T));                     \
            memcpy(&e, exp + j * sizeof(T), sizeof(T));                     \
            wrong += g != e;                                                \
        }                                                                   \
        return wrong;                                                       \
    }

DEFINE_COUNT_WRONG(count_wrong_1, uint8_t)
DEFINE_COUNT_WRONG(count_wrong_2, uint16_t)
DEFINE_COUNT_WRONG(count_wrong_4, uint32_t)
DEFINE_COUNT_WRONG(count_wrong_8, uint64_t)

static size_t count_wrong_of_size(const void *got, const void *expected, size_t count, size_t size)
{
    switch (size) {
    case 1: return count_wrong_1(got, expected, count);
    case 2: return count_wrong_2(got, expected, count);
    case 4: return count_wrong_4(got, expected, count);
    default: return count_wrong_8(got, expected, count);
    }
}

size_t cb_data_count_wrong(const void *got, const void *expected, size_t count, cb_type t,
                           size_t *first_wrong)
{
    size_t size = cb_type_size(t);
    size_t wrong = count_wrong_of_size(got, expected, count, size), first = count;
    if (wrong && first_wrong) {   /* only a failed check pays for finding the first */
        const unsigned char *g = got, *e = expected;
        for (first = 0; memcmp(g + first * size, e + first * size, size) == 0; first++)
            ;
    }
    if (first_wrong)
        *first_wrong = first;
    return wrong;
}

void cb_data_poison(void *buf, size_t bytes, uint64_t seed)
{
    (void)seed;   /* all bits set is the only pattern safe for every type and alignment */
    memset(buf, 0xff, bytes);
}
