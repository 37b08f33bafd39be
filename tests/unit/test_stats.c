/* Percentiles (nearest rank) and the per-iteration maximum over ranks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "report/stats.h"

static void test_empty_gives_zeros(void **state)
{
    (void)state;
    struct cb_pct p;
    memset(&p, 0xff, sizeof p);
    cb_pct_compute(NULL, 0, &p);
    assert_true(p.min == 0 && p.p50 == 0 && p.p90 == 0 && p.p99 == 0);
    assert_true(p.p999 == 0 && p.max == 0 && p.mean == 0);
    assert_true(cb_percentile_sorted(NULL, 0, 50) == 0);
}

static void test_one_sample(void **state)
{
    (void)state;
    const double x = 7.25;
    struct cb_pct p;
    cb_pct_compute(&x, 1, &p);
    assert_true(p.min == x && p.p50 == x && p.p90 == x && p.p99 == x);
    assert_true(p.p999 == x && p.max == x && p.mean == x);
}

static void test_ten_samples_unsorted_input_untouched(void **state)
{
    (void)state;
    double v[10] = {7, 3, 10, 1, 9, 2, 8, 5, 4, 6};
    double copy[10];
    memcpy(copy, v, sizeof v);
    struct cb_pct p;
    cb_pct_compute(v, 10, &p);
    assert_memory_equal(v, copy, sizeof v);
    assert_true(p.min == 1);
    assert_true(p.p50 == 5);    /* ceil(10*0.5)-1 = 4 -> 5, not the upper median */
    assert_true(p.p90 == 9);    /* ceil(9)-1 = 8 */
    assert_true(p.p99 == 10);   /* ceil(9.9)-1 = 9 */
    assert_true(p.p999 == 10);
    assert_true(p.max == 10);
    assert_true(p.mean == 5.5);
}

static void test_thousand_samples(void **state)
{
    (void)state;
    double v[1000];
    for (int i = 0; i < 1000; i++)   /* 1..1000 in a scrambled order */
        v[i] = (double)((i * 389) % 1000 + 1);
    struct cb_pct p;
    cb_pct_compute(v, 1000, &p);
    assert_true(p.min == 1);
    assert_true(p.p50 == 500);
    assert_true(p.p90 == 900);
    assert_true(p.p99 == 990);
    assert_true(p.p999 == 999);   /* 1000*99.9/100 is 999 exactly: no step to 1000 */
    assert_true(p.max == 1000);
    assert_true(fabs(p.mean - 500.5) < 1e-9);
}

/* sorted[ceil(n*p/100)-1] for every n up to 2000 and every p in tenths,
 * computed in integers: plain floating point gets e.g. n=375, p=8.8 wrong. */
static void test_nearest_rank_definition(void **state)
{
    (void)state;
    static double sorted[2000];
    for (int i = 0; i < 2000; i++)
        sorted[i] = i;
    for (size_t n = 1; n <= 2000; n++) {
        for (size_t tenths = 0; tenths <= 1000; tenths++) {
            size_t rank = (n * tenths + 999) / 1000;   /* ceil(n*p/100) */
            size_t idx = rank > 0 ? rank - 1 : 0;
            double got = cb_percentile_sorted(sorted, n, (double)tenths / 10.0);
            if (got != sorted[idx])
                fail_msg("n=%zu p=%.1f: got index %g, want %zu", n, (double)tenths / 10.0, got, idx);
        }
    }
}

static void test_percentile_clamps(void **state)
{
    (void)state;
    const double s[3] = {1, 2, 3};
    assert_true(cb_percentile_sorted(s, 3, -5) == 1);
    assert_true(cb_percentile_sorted(s, 3, 0) == 1);
    assert_true(cb_percentile_sorted(s, 3, 100) == 3);
    assert_true(cb_percentile_sorted(s, 3, 150) == 3);
}

static void test_max_over_ranks_names_straggler(void **state)
{
    (void)state;
    /* 3 ranks x 5 iterations; rank 2 is slowest in iterations 1, 3 and 4 */
    const double t[3 * 5] = {
        5, 1, 1, 1, 1,   /* rank 0 */
        1, 2, 6, 1, 1,   /* rank 1 */
        1, 3, 1, 4, 9,   /* rank 2 */
    };
    double iter_max[5];
    int count = -1;
    int slowest = cb_iter_max_over_ranks(t, 3, 5, iter_max, &count);
    const double want[5] = {5, 3, 6, 4, 9};
    assert_memory_equal(iter_max, want, sizeof want);
    assert_int_equal(slowest, 2);
    assert_int_equal(count, 3);
}

static void test_max_over_ranks_ties_go_to_lowest_rank(void **state)
{
    (void)state;
    /* iterations 0 and 3: ranks 1 and 2 tie, rank 1 counts; 1: rank 2; 2: rank 1 */
    const double t[3 * 4] = {
        0, 0, 0, 0,   /* rank 0 */
        4, 1, 4, 1,   /* rank 1 */
        4, 5, 1, 1,   /* rank 2 */
    };
    double iter_max[4];
    int count;
    assert_int_equal(cb_iter_max_over_ranks(t, 3, 4, iter_max, &count), 1);
    assert_int_equal(count, 3);

    /* equal counts: rank 0 slowest twice, rank 1 slowest twice -> rank 0 */
    const double u[2 * 4] = {3, 1, 3, 1, 1, 3, 1, 3};
    assert_int_equal(cb_iter_max_over_ranks(u, 2, 4, iter_max, &count), 0);
    assert_int_equal(count, 2);
    const double want[4] = {3, 3, 3, 3};
    assert_memory_equal(iter_max, want, sizeof want);
}

static void test_max_over_ranks_single_rank_has_no_straggler(void **state)
{
    (void)state;
    const double t[3] = {2, 7, 4};
    double iter_max[3];
    int count = 99;
    assert_int_equal(cb_iter_max_over_ranks(t, 1, 3, iter_max, &count), -1);
    assert_int_equal(count, 0);
    assert_memory_equal(iter_max, t, sizeof t);   /* the maxima are still filled */

    assert_int_equal(cb_iter_max_over_ranks(t, 3, 0, iter_max, &count), -1);
    assert_int_equal(count, 0);
}

/* The straggler enters late and finishes early; the others wait for it, so
 * their times are the longest. The last arrival names it, the maximum time
 * a victim. Gaps below min_late are jitter and name nobody. */
static void test_last_arrival_names_the_straggler(void **state)
{
    (void)state;
    /* 3 ranks x 4 iterations: rank 1 enters 5 ms late in iterations 0, 2 and 3 */
    const double arrive[] = {
        10.000, 20.000, 30.000, 40.000,
        10.005, 20.00001, 30.005, 40.005,
        10.00002, 20.00002, 30.00001, 40.00001,
    };
    const double took[] = {
        5.2, 0.3, 5.1, 5.3,   /* rank 0 waited */
        0.2, 0.3, 0.2, 0.2,   /* rank 1 came last and was done at once */
        5.1, 0.3, 5.2, 5.2,
    };
    double iter_max[4];
    int count = 0;
    assert_int_equal(cb_iter_max_over_ranks(took, 3, 4, iter_max, &count), 0);   /* a victim */
    assert_int_equal(cb_last_arrival(arrive, 3, 4, 1e-3, &count), 1);
    assert_int_equal(count, 3);
    /* rank 2 last twice, 1 ms late; rank 1 once, 20 ms late: rank 1 held them up longest */
    const double arrive2[] = {
        1.000, 2.000, 3.000, 4.000,
        1.020, 2.000, 3.000, 4.000,
        1.000, 2.001, 3.001, 4.000,
    };
    assert_int_equal(cb_last_arrival(arrive2, 3, 4, 1e-4, &count), 1);
    assert_int_equal(count, 1);
    /* only jitter: nobody */
    assert_int_equal(cb_last_arrival(arrive, 3, 4, 0.01, &count), -1);
    assert_int_equal(count, 0);
    assert_int_equal(cb_last_arrival(arrive, 1, 4, 0, &count), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_gives_zeros),
        cmocka_unit_test(test_one_sample),
        cmocka_unit_test(test_ten_samples_unsorted_input_untouched),
        cmocka_unit_test(test_thousand_samples),
        cmocka_unit_test(test_nearest_rank_definition),
        cmocka_unit_test(test_percentile_clamps),
        cmocka_unit_test(test_max_over_ranks_names_straggler),
        cmocka_unit_test(test_max_over_ranks_ties_go_to_lowest_rank),
        cmocka_unit_test(test_max_over_ranks_single_rank_has_no_straggler),
        cmocka_unit_test(test_last_arrival_names_the_straggler),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
