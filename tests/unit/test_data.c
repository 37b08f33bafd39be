/* The data patterns: every reduction order gives exactly the expected bits,
 * poison never passes, and wrong data is counted. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness/data.h"

#define MAX_RANKS 17
#define COUNT 301          /* odd, and more than a few rotations of 17 */
#define FIRST_INDEX 12345  /* a piece in the middle of a larger buffer */

static const uint64_t seeds[] = {0, 1, 0xdeadbeefcafef00dull};

static void *alloc_or_fail(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    assert_non_null(p);
    return p;
}

/* Every rank's buffer, as cb_data_fill makes them. */
struct ranks {
    int n;
    size_t size;
    unsigned char *buf[MAX_RANKS];
};

static void ranks_fill(struct ranks *r, cb_type t, cb_op op, int n, uint64_t seed)
{
    r->n = n;
    r->size = cb_type_size(t);
    for (int k = 0; k < n; k++) {
        r->buf[k] = alloc_or_fail(COUNT * r->size);
        cb_data_fill(r->buf[k], COUNT, FIRST_INDEX, t, op, k, n, seed);
    }
}

/* mulsum: each rank's input times its scalar, as cb_coll_run does before
 * the sum; other ops: nothing. */
static void ranks_premultiply(struct ranks *r, cb_type t, cb_op op)
{
    for (int k = 0; op == CB_MULSUM && k < r->n; k++)
        cb_reduce_premultiply(r->buf[k], r->buf[k], COUNT, t, k);
}

static void ranks_free(struct ranks *r)
{
    for (int k = 0; k < r->n; k++)
        free(r->buf[k]);
}

/* Reduce in the order perm, accumulating into acc; the last step divides for
 * avg. acc_first: acc = acc OP next, else acc = next OP acc (a ring's order). */
static void reduce_in_order(const struct ranks *r, const int *perm, int acc_first, void *acc, cb_type t, cb_op op)
{
    memcpy(acc, r->buf[perm[0]], COUNT * r->size);
    if (r->n == 1)
        cb_reduce_finish(acc, COUNT, t, op, 1);
    for (int k = 1; k < r->n; k++) {
        const void *next = r->buf[perm[k]];
        const void *a = acc_first ? acc : next, *b = acc_first ? next : acc;
        if (k == r->n - 1)
            cb_reduce_last(acc, a, b, COUNT, t, op, r->n);
        else
            cb_reduce(acc, a, b, COUNT, t, op);
    }
}

/* Pairs, then pairs of pairs (recursive halving, a tree's order). */
static void reduce_as_tree(const struct ranks *r, void *out, cb_type t, cb_op op)
{
    size_t bytes = COUNT * r->size;
    unsigned char *part[MAX_RANKS] = {0};
    int parts = r->n;
    for (int k = 0; k < parts; k++) {
        part[k] = alloc_or_fail(bytes);
        memcpy(part[k], r->buf[k], bytes);
    }
    while (parts > 1) {
        int half = (parts + 1) / 2;
        for (int k = 0; k + half < parts; k++) {
            if (parts == 2)
                cb_reduce_last(part[k], part[k], part[k + half], COUNT, t, op, r->n);
            else
                cb_reduce(part[k], part[k], part[k + half], COUNT, t, op);
        }
        for (int k = half; k < parts; k++)
            free(part[k]);
        parts = half;
    }
    if (r->n == 1)
        cb_reduce_finish(part[0], COUNT, t, op, 1);
    memcpy(out, part[0], bytes);
    free(part[0]);
}

static void expect_equal(const void *got, const void *want, cb_type t, cb_op op, int n, const char *order)
{
    size_t first;
    size_t wrong = cb_data_count_wrong(got, want, COUNT, t, &first);
    if (wrong)
        fail_msg("%s %s nranks %d, %s: %zu wrong, first %zu: got %g, want %g", cb_type_name(t),
                 cb_op_name(op), n, order, wrong, first, cb_load(got, first, t), cb_load(want, first, t));
}

static void check_every_order(cb_type t, cb_op op, int n, uint64_t seed)
{
    struct ranks r;
    ranks_fill(&r, t, op, n, seed);
    ranks_premultiply(&r, t, op);
    unsigned char *want = alloc_or_fail(COUNT * r.size), *got = alloc_or_fail(COUNT * r.size);
    cb_data_expected_reduce(want, COUNT, FIRST_INDEX, t, op, n, seed);
    int perm[MAX_RANKS];
    for (int k = 0; k < n; k++)
        perm[k] = k;
    reduce_in_order(&r, perm, 1, got, t, op);
    expect_equal(got, want, t, op, n, "rank order");
    for (int k = 0; k < n; k++)
        perm[k] = n - 1 - k;
    reduce_in_order(&r, perm, 1, got, t, op);
    expect_equal(got, want, t, op, n, "reverse order");
    for (int start = 0; start < n; start++) {   /* a ring: each chunk starts at another rank */
        for (int k = 0; k < n; k++)
            perm[k] = (start + k) % n;
        reduce_in_order(&r, perm, 0, got, t, op);
        expect_equal(got, want, t, op, n, "ring order");
    }
    for (int k = 0; k < n; k++)                 /* evens up, then odds down */
        perm[k] = 2 * k < n ? 2 * k : 2 * (n - 1 - k) + 1;
    reduce_in_order(&r, perm, 0, got, t, op);
    expect_equal(got, want, t, op, n, "interleaved order");
    reduce_as_tree(&r, got, t, op);
    expect_equal(got, want, t, op, n, "tree order");
    free(want);
    free(got);
    ranks_free(&r);
}

static void test_every_order_gives_expected(void **state)
{
    (void)state;
    for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++)
        for (int n = 1; n <= MAX_RANKS; n++)
            for (int t = 0; t < CB_NTYPES; t++)
                for (int op = 0; op < CB_NOPS; op++)
                    check_every_order(t, op, n, seeds[s]);
}

/* The closed-form expected values against plain summation over the ranks in
 * double (floats) or uint64 (integers), mulsum's scalars applied here too:
 * the reference is right, not just consistent with the kernels. */
static void test_expected_matches_brute_force(void **state)
{
    (void)state;
    for (int n = 1; n <= MAX_RANKS; n++) {
        for (int t = 0; t < CB_NTYPES; t++) {
            for (int op = 0; op < CB_NOPS; op++) {
                if (op == CB_AVG)
                    continue;   /* its division is checked in test_average_division */
                struct ranks r;
                ranks_fill(&r, t, op, n, 99);
                unsigned char *want = alloc_or_fail(COUNT * r.size), *brute = alloc_or_fail(COUNT * r.size);
                cb_data_expected_reduce(want, COUNT, FIRST_INDEX, t, op, n, 99);
                for (size_t i = 0; i < COUNT; i++) {
                    if (cb_type_is_float(t)) {
                        double acc = cb_load(r.buf[0], i, t);
                        for (int k = 1; k < n; k++) {
                            double v = cb_load(r.buf[k], i, t) * (op == CB_MULSUM ? k % 2 + 1 : 1);
                            acc = op == CB_SUM || op == CB_MULSUM ? acc + v : op == CB_PROD ? acc * v : op == CB_MIN ? fmin(acc, v) : fmax(acc, v);
                        }
                        cb_store(brute, i, t, acc);
                    } else {
                        uint64_t acc = 0;
                        memcpy(&acc, r.buf[0] + i * r.size, r.size);
                        int is_signed = t == CB_INT8 || t == CB_INT32 || t == CB_INT64;
                        unsigned shift = 64 - 8 * (unsigned)r.size;
                        for (int k = 1; k < n; k++) {
                            uint64_t v = 0;
                            memcpy(&v, r.buf[k] + i * r.size, r.size);
                            int64_t sa = (int64_t)(acc << shift) >> shift, sv = (int64_t)(v << shift) >> shift;
                            int less = is_signed ? sv < sa : (v << shift) < (acc << shift);
                            if (op == CB_SUM)
                                acc += v;
                            else if (op == CB_MULSUM)
                                acc += v * (uint64_t)(k % 2 + 1);
                            else if (op == CB_PROD)
                                acc *= v;
                            else if ((op == CB_MIN) == less)
                                acc = v;
                        }
                        memcpy(brute + i * r.size, &acc, r.size);
                    }
                }
                expect_equal(brute, want, t, op, n, "brute force");
                free(want);
                free(brute);
                ranks_free(&r);
            }
        }
    }
}

/* avg: the reduced value divided once, as the kernels do. */
static void test_average_division(void **state)
{
    (void)state;
    for (int n = 1; n <= MAX_RANKS; n++) {
        for (int t = 0; t < CB_NTYPES; t++) {
            size_t size = cb_type_size(t);
            unsigned char *sum = alloc_or_fail(COUNT * size), *avg = alloc_or_fail(COUNT * size);
            /* avg's data differs from sum's only in integer totals; use avg's own */
            cb_data_expected_reduce(avg, COUNT, FIRST_INDEX, t, CB_AVG, n, 5);
            struct ranks r;
            ranks_fill(&r, t, CB_AVG, n, 5);
            /* the sum via cb_reduce with op sum, then one division by finish */
            memcpy(sum, r.buf[0], COUNT * size);
            for (int k = 1; k < n; k++)
                cb_reduce(sum, sum, r.buf[k], COUNT, t, CB_SUM);
            cb_reduce_finish(sum, COUNT, t, CB_AVG, n);
            expect_equal(sum, avg, t, CB_AVG, n, "sum then finish");
            for (size_t i = 0; i < COUNT && !cb_type_is_float(t); i++) {
                uint64_t v = 0;
                memcpy(&v, avg + i * size, size);
                assert_true((v & 1) == 0);   /* even: never the poison */
            }
            ranks_free(&r);
            free(sum);
            free(avg);
        }
    }
}

/* Values stay where the exactness argument needs them. */
static void test_value_ranges(void **state)
{
    (void)state;
    static const double limit[CB_NTYPES] = {
        [CB_HALF] = 2048, [CB_FLOAT] = 16777216, [CB_DOUBLE] = 9007199254740992.0,
        [CB_BFLOAT16] = 256, [CB_F8E4M3] = 16, [CB_F8E5M2] = 8,
    };
    for (int n = 1; n <= MAX_RANKS; n++) {
        for (int t = CB_HALF; t < CB_NTYPES; t++) {
            for (int op = 0; op < CB_NOPS; op++) {
                struct ranks r;
                ranks_fill(&r, t, op, n, 3);
                for (size_t i = 0; i < COUNT; i++) {
                    double positive = 0, negative = 0, product = 1;
                    for (int k = 0; k < n; k++) {
                        double v = cb_load(r.buf[k], i, t);
                        assert_true(v == floor(v));
                        v *= op == CB_MULSUM ? cb_mulsum_scalar(k) : 1;   /* what is summed */
                        if (op == CB_SUM || op == CB_AVG || op == CB_MULSUM) {
                            positive += v > 0 ? v : 0;
                            negative += v < 0 ? v : 0;
                        } else if (op == CB_PROD) {
                            assert_true(fabs(v) == 1 || fabs(v) == 2);
                            product *= v;
                        } else {
                            assert_true(fabs(v) <= 8);
                        }
                    }
                    /* any partial sum lies within [negative, positive] */
                    assert_true(positive <= limit[t] && -negative <= limit[t]);
                    if (op == CB_PROD) {
                        unsigned char one[8];
                        cb_store(one, 0, t, product);
                        assert_true(cb_load(one, 0, t) == product);
                    }
                }
                ranks_free(&r);
            }
        }
    }
}

static void test_integer_values_avoid_poison(void **state)
{
    (void)state;
    for (int t = 0; t < CB_HALF; t++) {
        for (int op = 0; op < CB_NOPS; op++) {
            struct ranks r;
            ranks_fill(&r, t, op, 5, 11);
            for (int k = 0; k < r.n; k++) {
                for (size_t i = 0; i < COUNT; i++) {
                    uint64_t v = 0;
                    memcpy(&v, r.buf[k] + i * r.size, r.size);
                    assert_true(op == CB_PROD ? (v & 3) == 1 : (v & 1) == 0);
                }
            }
            ranks_free(&r);
        }
    }
}

/* Data must catch a reduction that skips a rank or counts one twice. */
static void test_missing_or_doubled_rank_is_caught(void **state)
{
    (void)state;
    for (int n = 2; n <= MAX_RANKS; n += 5) {
        for (int t = 0; t < CB_NTYPES; t++) {
            for (int op = 0; op < CB_NOPS; op++) {
                struct ranks r;
                ranks_fill(&r, t, op, n, 21);
                ranks_premultiply(&r, t, op);
                unsigned char *want = alloc_or_fail(COUNT * r.size), *got = alloc_or_fail(COUNT * r.size);
                cb_data_expected_reduce(want, COUNT, FIRST_INDEX, t, op, n, 21);
                int perm[MAX_RANKS];
                for (int k = 0; k < n; k++)
                    perm[k] = k;
                perm[n - 1] = 0;   /* rank 0 twice, rank n-1 never */
                reduce_in_order(&r, perm, 1, got, t, op);
                size_t wrong = cb_data_count_wrong(got, want, COUNT, t, NULL);
                if (wrong == 0)
                    fail_msg("%s %s nranks %d: a doubled rank went unnoticed", cb_type_name(t), cb_op_name(op), n);
                free(want);
                free(got);
                ranks_free(&r);
            }
        }
    }
}

/* mulsum's data needs the scalars: summed as they are (a run that forgot
 * the multiplication), or with every rank times 2, most elements are wrong;
 * and the values are not all 0, even in the narrowest type. */
static void test_mulsum_needs_its_scalars(void **state)
{
    (void)state;
    for (int n = 2; n <= 7; n++) {
        for (int t = 0; t < CB_NTYPES; t++) {
            struct ranks r;
            ranks_fill(&r, t, CB_MULSUM, n, 31);
            unsigned char *want = alloc_or_fail(COUNT * r.size), *got = alloc_or_fail(COUNT * r.size);
            cb_data_expected_reduce(want, COUNT, FIRST_INDEX, t, CB_MULSUM, n, 31);
            size_t nonzero = 0;
            for (size_t i = 0; i < COUNT; i++)
                nonzero += cb_load(r.buf[1], i, t) != 0;
            if (nonzero < COUNT / 4)
                fail_msg("%s nranks %d: rank 1 holds only %zu non-zero values", cb_type_name(t), n, nonzero);
            int perm[MAX_RANKS];
            for (int k = 0; k < n; k++)
                perm[k] = k;
            reduce_in_order(&r, perm, 1, got, t, CB_SUM);
            if (cb_data_count_wrong(got, want, COUNT, t, NULL) < COUNT / 8)
                fail_msg("%s nranks %d: a sum without the scalars went unnoticed", cb_type_name(t), n);
            for (int k = 0; k < n; k++)
                cb_reduce_premultiply(r.buf[k], r.buf[k], COUNT, t, 1);
            reduce_in_order(&r, perm, 1, got, t, CB_SUM);
            if (cb_data_count_wrong(got, want, COUNT, t, NULL) < COUNT / 8)
                fail_msg("%s nranks %d: every rank times 2 went unnoticed", cb_type_name(t), n);
            free(want);
            free(got);
            ranks_free(&r);
        }
    }
}

static void test_expected_rank_and_pieces(void **state)
{
    (void)state;
    for (int t = 0; t < CB_NTYPES; t++) {
        size_t size = cb_type_size(t);
        unsigned char *whole = alloc_or_fail(COUNT * size), *piece = alloc_or_fail(COUNT * size);
        for (int op = 0; op < CB_NOPS; op++) {
            cb_data_fill(whole, COUNT, 1000, t, op, 3, 7, 77);
            cb_data_expected_rank(piece, COUNT, 1000, t, op, 3, 7, 77);
            assert_int_equal(cb_data_count_wrong(piece, whole, COUNT, t, NULL), 0);
            /* a piece starting at an offset is the same slice of the whole */
            cb_data_fill(piece, COUNT - 100, 1100, t, op, 3, 7, 77);
            assert_int_equal(cb_data_count_wrong(piece, whole + 100 * size, COUNT - 100, t, NULL), 0);
            cb_data_expected_reduce(whole, COUNT, 1000, t, op, 7, 77);
            cb_data_expected_reduce(piece, COUNT - 100, 1100, t, op, 7, 77);
            assert_int_equal(cb_data_count_wrong(piece, whole + 100 * size, COUNT - 100, t, NULL), 0);
            /* other ranks, other seeds: other data */
            cb_data_fill(whole, COUNT, 1000, t, op, 3, 7, 77);
            cb_data_fill(piece, COUNT, 1000, t, op, 4, 7, 77);
            assert_true(cb_data_count_wrong(piece, whole, COUNT, t, NULL) > COUNT / 4);
            cb_data_fill(piece, COUNT, 1000, t, op, 3, 7, 78);
            assert_true(cb_data_count_wrong(piece, whole, COUNT, t, NULL) > COUNT / 4);
        }
        free(whole);
        free(piece);
    }
}

static void test_poison_never_matches(void **state)
{
    (void)state;
    for (int t = 0; t < CB_NTYPES; t++) {
        size_t size = cb_type_size(t);
        unsigned char *poison = alloc_or_fail(COUNT * size + 8), *want = alloc_or_fail(COUNT * size);
        for (int op = 0; op < CB_NOPS; op++) {
            for (int n = 1; n <= MAX_RANKS; n++) {
                for (size_t shift = 0; shift < 8; shift += 3) {   /* any alignment */
                    cb_data_poison(poison, COUNT * size + 8, (uint64_t)n);
                    cb_data_expected_reduce(want, COUNT, FIRST_INDEX, t, op, n, 1);
                    assert_int_equal(cb_data_count_wrong(poison + shift, want, COUNT, t, NULL), COUNT);
                    cb_data_expected_rank(want, COUNT, FIRST_INDEX, t, op, n - 1, n, 1);
                    assert_int_equal(cb_data_count_wrong(poison + shift, want, COUNT, t, NULL), COUNT);
                }
            }
        }
        free(poison);
        free(want);
    }
}

static void test_count_wrong_counts(void **state)
{
    (void)state;
    for (int t = 0; t < CB_NTYPES; t++) {
        size_t size = cb_type_size(t), first = 0;
        unsigned char *a = alloc_or_fail(COUNT * size), *b = alloc_or_fail(COUNT * size);
        cb_data_expected_reduce(a, COUNT, 0, t, CB_SUM, 4, 1);
        memcpy(b, a, COUNT * size);
        assert_int_equal(cb_data_count_wrong(a, b, COUNT, t, &first), 0);
        assert_int_equal(first, COUNT);
        b[57 * size] ^= 1;              /* the lowest bit of one element */
        b[(COUNT - 1) * size + size - 1] ^= 0x80;   /* the sign bit of the last */
        assert_int_equal(cb_data_count_wrong(a, b, COUNT, t, &first), 2);
        assert_int_equal(first, 57);
        assert_int_equal(cb_data_count_wrong(a, b, 57, t, &first), 0);
        assert_int_equal(cb_data_count_wrong(a, b, 0, t, NULL), 0);
        free(a);
        free(b);
    }
    float pz = 0.0f, nz = -0.0f;   /* bit-exact: -0 is not 0 */
    assert_int_equal(cb_data_count_wrong(&pz, &nz, 1, CB_FLOAT, NULL), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_order_gives_expected),
        cmocka_unit_test(test_expected_matches_brute_force),
        cmocka_unit_test(test_average_division),
        cmocka_unit_test(test_value_ranges),
        cmocka_unit_test(test_integer_values_avoid_poison),
        cmocka_unit_test(test_missing_or_doubled_rank_is_caught),
        cmocka_unit_test(test_mulsum_needs_its_scalars),
        cmocka_unit_test(test_expected_rank_and_pieces),
        cmocka_unit_test(test_poison_never_matches),
        cmocka_unit_test(test_count_wrong_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
