/* What is measured: size -> counts and busbw factors, as measurement.md says
 * (nccl-tests' definitions). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "bench/bench.h"

static void busbw_factors(void **state)
{
    (void)state;
    for (int n = 1; n <= 64; n++) {
        assert_true(fabs(cb_bench_all_reduce.busbw_factor(n) - 2.0 * (n - 1) / n) < 1e-12);
        assert_true(fabs(cb_bench_all_gather.busbw_factor(n) - (double)(n - 1) / n) < 1e-12);
        assert_true(fabs(cb_bench_reduce_scatter.busbw_factor(n) - (double)(n - 1) / n) < 1e-12);
        assert_true(fabs(cb_bench_alltoall.busbw_factor(n) - (double)(n - 1) / n) < 1e-12);
        assert_true(cb_bench_broadcast.busbw_factor(n) == 1.0);
        assert_true(cb_bench_reduce.busbw_factor(n) == 1.0);
        assert_true(cb_bench_sendrecv.busbw_factor(n) == 1.0);
    }
    assert_true(cb_bench_all_reduce.busbw_factor(8) == 1.75);
}

static void all_reduce_counts(void **state)
{
    (void)state;
    struct cb_bench_counts k;
    cb_bench_all_reduce.counts(1001, 4, 3, &k);   /* not a multiple of the type size */
    assert_int_equal(k.count, 250);
    assert_int_equal(k.send_elems, 250);
    assert_int_equal(k.recv_elems, 250);
    assert_int_equal(k.size_bytes, 1000);
    assert_int_equal(k.count_col, 250);
}

/* The size is the total buffer; each rank's piece is rounded down to 16 bytes. */
static void total_size_collectives(void **state)
{
    (void)state;
    struct cb_bench_counts k;
    cb_bench_all_gather.counts(1 << 20, 4, 3, &k);     /* 349525.3 B per rank -> 87380 floats (16 B multiple) */
    assert_int_equal(k.count, 87380);
    assert_int_equal(k.count * 4 % 16, 0);
    assert_int_equal(k.recv_elems, 87380 * 3);
    assert_int_equal(k.send_elems, 87380);
    assert_int_equal(k.size_bytes, 87380 * 3 * 4);
    cb_bench_reduce_scatter.counts(1000, 1, 7, &k);    /* 142 B per rank -> 128 int8 */
    assert_int_equal(k.count, 128);
    assert_int_equal(k.send_elems, 128 * 7);
    assert_int_equal(k.recv_elems, 128);
    cb_bench_alltoall.counts(4096, 8, 4, &k);          /* 1024 B per rank -> 128 doubles */
    assert_int_equal(k.count, 128);
    assert_int_equal(k.send_elems, 512);
    assert_int_equal(k.recv_elems, 512);
    assert_int_equal(k.size_bytes, 4096);
    cb_bench_all_gather.counts(8, 4, 2, &k);           /* too small for 16 B per rank */
    assert_int_equal(k.count, 0);
    assert_int_equal(k.size_bytes, 0);
}

static void in_place_offsets(void **state)
{
    (void)state;
    struct cb_bench_data d = {CB_FLOAT, CB_SUM, 2, 4, 0, 1, 100};
    assert_int_equal(cb_bench_all_gather.send_in_recv(&d), 200);
    assert_int_equal(cb_bench_reduce_scatter.recv_in_send(&d), 200);
    assert_int_equal(cb_bench_all_reduce.send_in_recv(&d), 0);
    assert_int_equal(cb_bench_alltoall.recv_in_send(&d), 0);
}

static void reduce_checks_only_the_root(void **state)
{
    (void)state;
    float exp[16];
    struct cb_bench_data d = {CB_FLOAT, CB_SUM, 1, 3, 0, 1, 16};
    assert_int_equal(cb_bench_reduce.expected(exp, &d), 0);
    d.rank = 0;
    assert_int_equal(cb_bench_reduce.expected(exp, &d), 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(busbw_factors),
        cmocka_unit_test(all_reduce_counts),
        cmocka_unit_test(total_size_collectives),
        cmocka_unit_test(in_place_offsets),
        cmocka_unit_test(reduce_checks_only_the_root),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
