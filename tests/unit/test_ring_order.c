/* Rail-local ring orders (src/core/ring_order.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/ring_order.h"

#define MAXR 64

/* Each channel's ring is a permutation of the ranks. */
static void assert_permutations(int n, int nch, const int *order)
{
    for (int ch = 0; ch < nch; ch++) {
        int seen[MAXR] = {0};
        for (int pos = 0; pos < n; pos++) {
            int r = order[ch * n + pos];
            assert_true(r >= 0 && r < n);
            assert_int_equal(seen[r]++, 0);
        }
    }
}

/* Local rank of r: its index among its host's ranks, ascending. */
static int local_rank(int n, const int *host_of, int r)
{
    int i = 0;
    for (int q = 0; q < r; q++)
        i += host_of[q] == host_of[r];
    (void)n;
    return i;
}

/* Hops between hosts that join different local ranks (different rails). */
static int cross_rail_hops(int n, const int *host_of, const int *ring)
{
    int cross = 0;
    for (int pos = 0; pos < n; pos++) {
        int a = ring[pos], b = ring[(pos + 1) % n];
        if (host_of[a] != host_of[b] && local_rank(n, host_of, a) != local_rank(n, host_of, b))
            cross++;
    }
    return cross;
}

static void test_two_hosts_of_four(void **state)
{
    (void)state;
    int host_of[8] = {0, 0, 0, 0, 1, 1, 1, 1}, order[16];
    assert_int_equal(cb_ring_order(8, 2, host_of, order), 1);
    const int ch0[8] = {0, 1, 2, 3, 7, 6, 5, 4}, ch1[8] = {1, 2, 3, 0, 4, 7, 6, 5};
    assert_memory_equal(order, ch0, sizeof ch0);
    assert_memory_equal(order + 8, ch1, sizeof ch1);
    assert_int_equal(cross_rail_hops(8, host_of, order), 0);
    assert_int_equal(cross_rail_hops(8, host_of, order + 8), 0);
}

/* Eight ranks (eight rails) on each of 4 hosts, ranks dealt round-robin
 * over the hosts: every channel rail-local, the channels' crossings spread
 * over every rail. */
static void test_eight_rails_round_robin(void **state)
{
    (void)state;
    enum { N = 32, K = 8, CH = 8 };
    int host_of[N], order[CH * N], rails_used[K] = {0};
    for (int r = 0; r < N; r++)
        host_of[r] = r % 4;
    assert_int_equal(cb_ring_order(N, CH, host_of, order), 1);
    assert_permutations(N, CH, order);
    for (int ch = 0; ch < CH; ch++) {
        assert_int_equal(cross_rail_hops(N, host_of, order + ch * N), 0);
        for (int pos = 0; pos < N; pos++) {
            int a = order[ch * N + pos], b = order[ch * N + (pos + 1) % N];
            if (host_of[a] != host_of[b])
                rails_used[local_rank(N, host_of, a)]++;
        }
    }
    for (int i = 0; i < K; i++)
        assert_int_equal(rails_used[i], 4);   /* 4 crossings per channel, 8 channels, 8 rails */
}

/* An odd number of hosts: only the crossing back to the first host changes rail. */
static void test_three_hosts(void **state)
{
    (void)state;
    int host_of[6] = {5, 5, 9, 9, 7, 7}, order[6];
    assert_int_equal(cb_ring_order(6, 1, host_of, order), 1);
    assert_permutations(6, 1, order);
    assert_int_equal(cross_rail_hops(6, host_of, order), 1);
}

/* One host, one rank per host, hosts of different sizes: rank order. */
static void test_rank_order_otherwise(void **state)
{
    (void)state;
    int one_host[4] = {0, 0, 0, 0}, one_each[4] = {0, 1, 2, 3}, uneven[5] = {0, 0, 1, 1, 1}, order[10];
    const int identity[5] = {0, 1, 2, 3, 4};
    assert_int_equal(cb_ring_order(4, 2, one_host, order), 0);
    assert_memory_equal(order + 4, identity, 4 * sizeof(int));
    assert_int_equal(cb_ring_order(4, 1, one_each, order), 0);
    assert_memory_equal(order, identity, 4 * sizeof(int));
    assert_int_equal(cb_ring_order(5, 2, uneven, order), 0);
    assert_memory_equal(order + 5, identity, 5 * sizeof(int));
    int three_two_one[6] = {0, 0, 0, 1, 1, 2};   /* 6 ranks, first host of 3: 6 % 3 == 0, still uneven */
    assert_int_equal(cb_ring_order(6, 1, three_two_one, order), 0);
    assert_memory_equal(order, identity, 5 * sizeof(int));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_hosts_of_four),
        cmocka_unit_test(test_eight_rails_round_robin),
        cmocka_unit_test(test_three_hosts),
        cmocka_unit_test(test_rank_order_otherwise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
