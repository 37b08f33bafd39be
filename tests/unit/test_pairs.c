/* collbench pairs without MPI: the schedule, the outlier rule on synthetic
 * matrices, the port counters on a fake sysfs tree, the command line, and
 * the text and JSON reports. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/wire.h"
#include "tools/netdev_counters.h"
#include "tools/pairs.h"

/* ---- schedule ---- */

static void check_schedule(int n, int quick)
{
    int *met = calloc((size_t)(n * n), sizeof *met);
    int rounds = cb_pairs_nrounds(n, quick);
    for (int r = 0; r < rounds; r++) {
        int idle = 0;
        for (int x = 0; x < n; x++) {
            int p = cb_pairs_partner(n, quick, r, x);
            if (p < 0) {
                idle++;
                continue;
            }
            assert_true(p < n && p != x);
            assert_int_equal(cb_pairs_partner(n, quick, r, p), x);   /* disjoint: a matching */
            met[x * n + p]++;
        }
        if (!quick)
            assert_int_equal(idle, n % 2);
    }
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) {
            int ring = (b == (a + 1) % n || a == (b + 1) % n) && a != b;
            int want = a == b ? 0 : quick ? ring : 1;
            if (met[a * n + b] != want)
                fail_msg("n=%d quick=%d: pair %d-%d met %d times, want %d", n, quick, a, b, met[a * n + b], want);
        }
    free(met);
}

static void test_schedule_all_pairs_once(void **state)
{
    (void)state;
    for (int n = 2; n <= 17; n++) {
        assert_int_equal(cb_pairs_nrounds(n, 0), n % 2 ? n : n - 1);
        check_schedule(n, 0);
    }
}

static void test_schedule_quick_ring_neighbours(void **state)
{
    (void)state;
    for (int n = 2; n <= 17; n++) {
        assert_true(cb_pairs_nrounds(n, 1) <= 3);
        check_schedule(n, 1);
    }
    assert_int_equal(cb_pairs_nrounds(1, 0), 0);
    assert_int_equal(cb_pairs_partner(4, 0, 3, 0), -1);   /* no such round */
}

/* ---- outlier rule ---- */

struct mats {
    int n;
    double *bw, *lat;
};

/* Deterministic noise: +-25 % on bandwidth, +-30 % on latency. */
static struct mats make(int n, int quick, unsigned seed)
{
    struct mats m = {n, calloc((size_t)(n * n), sizeof(double)), calloc((size_t)(n * n), sizeof(double))};
    for (int i = 0; i < n * n; i++)
        m.bw[i] = m.lat[i] = -1;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            if (quick && !(j == i + 1 || (i == 0 && j == n - 1)))
                continue;
            seed = seed * 1103515245u + 12345u;
            double u = (double)(seed >> 16 & 0x7fff) / 32767.0;
            m.bw[i * n + j] = m.bw[j * n + i] = 1e9 * (0.75 + 0.5 * u);
            m.lat[i * n + j] = m.lat[j * n + i] = 20.0 * (0.7 + 0.6 * (1 - u));
        }
    return m;
}

static void scale(struct mats *m, int i, int j, double bw_by, double lat_by)
{
    if (m->bw[i * m->n + j] < 0)
        return;
    m->bw[i * m->n + j] *= bw_by;
    m->bw[j * m->n + i] *= bw_by;
    m->lat[i * m->n + j] *= lat_by;
    m->lat[j * m->n + i] *= lat_by;
}

static void slow_host(struct mats *m, int h, double bw_by)
{
    for (int j = 0; j < m->n; j++)
        if (j != h)
            scale(m, h, j, bw_by, 1.0);
}

static void classify(struct mats *m, struct cb_pairs_verdict *v)
{
    struct cb_pairs_rule rule;
    cb_pairs_rule_default(&rule);
    assert_int_equal(cb_pairs_classify(m->n, m->bw, m->lat, &rule, v), CB_OK);
}

static void release(struct mats *m, struct cb_pairs_verdict *v)
{
    cb_pairs_verdict_free(v);
    free(m->bw);
    free(m->lat);
}

static void test_clean_names_nothing(void **state)
{
    (void)state;
    for (int n = 2; n <= 17; n++)
        for (unsigned seed = 1; seed <= 20; seed++)
            for (int quick = 0; quick <= 1; quick++) {
                struct mats m = make(n, quick, seed);
                struct cb_pairs_verdict v;
                classify(&m, &v);
                if (v.nslow_hosts || v.nslow_links)
                    fail_msg("clean n=%d seed=%u quick=%d: %d hosts, %d links named", n, seed, quick,
                             v.nslow_hosts, v.nslow_links);
                release(&m, &v);
            }
}

static void expect_only_link(struct cb_pairs_verdict *v, int a, int b, int why)
{
    assert_int_equal(v->nslow_hosts, 0);
    assert_int_equal(v->nslow_links, 1);
    assert_true(cb_pairs_is_slow_link(v, a, b) && cb_pairs_is_slow_link(v, b, a));
    assert_int_equal(v->pair_slow[a * v->n + b] & why, why);
}

static void test_one_slow_link(void **state)
{
    (void)state;
    for (int n = 3; n <= 17; n++)
        for (unsigned seed = 1; seed <= 5; seed++) {
            struct mats m = make(n, 0, seed);
            struct cb_pairs_verdict v;
            int a = (int)(seed % (unsigned)n), b = (a + 1 + (int)seed) % n;
            if (a == b)
                b = (a + 1) % n;
            scale(&m, a, b, 1.0 / 20, 1.0);
            classify(&m, &v);
            expect_only_link(&v, a, b, CB_SLOW_BW);
            release(&m, &v);
        }
}

static void test_one_slow_latency_link(void **state)
{
    (void)state;
    struct mats m = make(8, 0, 7);
    struct cb_pairs_verdict v;
    scale(&m, 2, 6, 1.0, 10.0);
    classify(&m, &v);
    expect_only_link(&v, 2, 6, CB_SLOW_LAT);
    assert_int_equal(v.pair_slow[2 * 8 + 6], CB_SLOW_LAT);
    release(&m, &v);
}

static void expect_only_host(struct cb_pairs_verdict *v, int h)
{
    assert_int_equal(v->nslow_hosts, 1);
    assert_int_equal(v->nslow_links, 0);
    assert_true(v->host_slow[h]);
    assert_int_equal(v->host_nslow[h], v->host_pairs[h]);
}

static void test_one_slow_host(void **state)
{
    (void)state;
    for (int n = 3; n <= 17; n++)
        for (unsigned seed = 1; seed <= 5; seed++)
            for (int quick = 0; quick <= 1; quick++) {
                struct mats m = make(n, quick, seed);
                struct cb_pairs_verdict v;
                int h = (int)(seed * 3) % n;
                slow_host(&m, h, 1.0 / 20);
                classify(&m, &v);
                expect_only_host(&v, h);
                release(&m, &v);
            }
}

static void test_failed_pair_is_a_slow_link(void **state)
{
    (void)state;
    struct mats m = make(6, 0, 3);
    struct cb_pairs_verdict v;
    m.bw[1 * 6 + 4] = m.bw[4 * 6 + 1] = 0;
    m.lat[1 * 6 + 4] = m.lat[4 * 6 + 1] = -1;
    classify(&m, &v);
    expect_only_link(&v, 1, 4, CB_SLOW_BW);
    release(&m, &v);
}

static void test_two_ranks_cannot_tell(void **state)
{
    (void)state;
    struct mats m = make(2, 0, 1);
    struct cb_pairs_verdict v;
    scale(&m, 0, 1, 1.0 / 100, 1.0);
    classify(&m, &v);
    assert_int_equal(v.nslow_hosts + v.nslow_links, 0);
    release(&m, &v);
}

/* Matrices measured on a loaded 2-core VM (netns hosts, tcp), MB/s, with the
 * test's rule (factor 8, no sigma term): a noisy clean pair must not hide
 * the fault nor be named. */
static void measured(const double up[6], double bw_factor, struct cb_pairs_verdict *v)
{
    double bw[16], lat[16];
    int k = 0;
    for (int i = 0; i < 16; i++)
        bw[i] = lat[i] = -1;
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++, k++) {
            bw[i * 4 + j] = bw[j * 4 + i] = up[k] * 1e6;
            lat[i * 4 + j] = lat[j * 4 + i] = 20;
        }
    struct cb_pairs_rule rule = {bw_factor, 50, 0, 2, 0.5, 20};
    assert_int_equal(cb_pairs_classify(4, bw, lat, &rule, v), CB_OK);
}

static void test_measured_matrices(void **state)
{
    (void)state;
    struct cb_pairs_verdict v;
    /* pairs 01 02 03 12 13 23: host 1 throttled to 1 % of a core, pair 2-3 slow by chance */
    const double cpu1[6] = {6.2, 220, 141, 7.0, 7.9, 30.3};
    measured(cpu1, 8, &v);
    expect_only_host(&v, 1);
    cb_pairs_verdict_free(&v);
    /* host 1 at 2 %, pair 0-2 slow by chance */
    const double cpu2[6] = {12.5, 89.4, 208, 15.6, 12.7, 214};
    measured(cpu2, 8, &v);
    expect_only_host(&v, 1);
    cb_pairs_verdict_free(&v);
    /* link 1-3 limited to 50 Mbit/s, pair 0-1 slow by chance */
    const double link13[6] = {55.3, 290, 336, 173, 8.1, 351};
    measured(link13, 8, &v);
    expect_only_link(&v, 1, 3, CB_SLOW_BW);
    cb_pairs_verdict_free(&v);
}

static void test_limits_and_noise(void **state)
{
    (void)state;
    /* identical pairs: no noise, the limits are the factors */
    int n = 4;
    double bw[16], lat[16];
    for (int i = 0; i < 16; i++) {
        bw[i] = i % 5 ? 1000.0 : -1;
        lat[i] = i % 5 ? 10.0 : -1;
    }
    struct cb_pairs_rule rule;
    struct cb_pairs_verdict v;
    cb_pairs_rule_default(&rule);
    assert_int_equal(cb_pairs_classify(n, bw, lat, &rule, &v), CB_OK);
    assert_true(fabs(v.ref_bw - 1000) < 1e-9 && fabs(v.limit_bw - 500) < 1e-9 && v.sigma_bw == 0);
    assert_true(fabs(v.ref_lat - 10) < 1e-9 && fabs(v.limit_lat - 30) < 1e-9);
    cb_pairs_verdict_free(&v);
    double x[4] = {4, 1, 3, 2};
    assert_true(cb_pairs_median(x, 4) == 2.5 && cb_pairs_median(x, 3) == 2);
}

/* ---- port counters ---- */

static void put(const char *dir, const char *name, unsigned long long v)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%llu\n", v);
    fclose(f);
}

static void test_port_counters_delta(void **state)
{
    (void)state;
    char root[] = "/tmp/cb-test-pairs.XXXXXX", c[256], hw[300];
    assert_non_null(mkdtemp(root));
    snprintf(c, sizeof c, "%s/mlx5_0", root);
    mkdir(c, 0755);
    snprintf(c, sizeof c, "%s/mlx5_0/ports", root);
    mkdir(c, 0755);
    snprintf(c, sizeof c, "%s/mlx5_0/ports/1", root);
    mkdir(c, 0755);
    snprintf(hw, sizeof hw, "%s/hw_counters", c);
    strcat(c, "/counters");
    mkdir(c, 0755);
    mkdir(hw, 0755);
    put(c, "symbol_error", 5);
    put(c, "link_downed", 1);
    put(c, "port_xmit_data", 1000);
    put(hw, "np_cnp_sent", 3);
    struct cb_port_counters *before = calloc(1, sizeof *before), *after = calloc(1, sizeof *after);
    struct cb_port_deltas d;
    setenv("COLLBENCH_IB_SYSFS", root, 1);
    cb_port_counters_read(before);
    assert_int_equal(before->n, 3);   /* the traffic counter is not kept */
    put(c, "symbol_error", 9);
    put(c, "port_xmit_data", 5000);
    put(hw, "np_cnp_sent", 4);
    cb_port_counters_read(after);
    cb_port_counters_delta(before, after, &d);
    assert_int_equal(d.n, 2);
    assert_string_equal(d.c[0].name, "mlx5_0/1/symbol_error");   /* counters/, then hw_counters/ */
    assert_true(d.c[0].value == 4);
    assert_string_equal(d.c[1].name, "mlx5_0/1/np_cnp_sent");
    assert_true(d.c[1].value == 1);
    setenv("COLLBENCH_IB_SYSFS", "/nonexistent/cb", 1);
    cb_port_counters_read(before);
    assert_int_equal(before->n, 0);
    unsetenv("COLLBENCH_IB_SYSFS");
    free(before);
    free(after);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

/* ---- command line ---- */

static cb_status parse(struct cb_pairs_opts *p, int argc, const char **argv)
{
    return cb_pairs_parse(argc, (char **)argv, p, 0);
}

/* ---- between passes and on the wire ---- */

static void expect_flags(const struct cb_pairs_flags *f, int host, int li, int lj)
{
    for (int h = 0; h < 4; h++)
        assert_int_equal(f->host[h], h == host);
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            assert_int_equal(cb_pairs_flags_is_link(f, 4, i, j), i == li && j == lj);
    assert_int_equal(f->nhosts, host >= 0);
    assert_int_equal(f->nlinks, li >= 0);
}

static void test_intermittent_and_lossy(void **state)
{
    (void)state;
    struct cb_pairs_rule rule;
    struct cb_pairs_health h;
    double bw[3 * 16];
    long long re[16], out[16];
    cb_pairs_rule_default(&rule);
    /* every pair x1.5 apart between passes; host 2's pairs once 20x slower (their medians fine) */
    for (int q = 0; q < 3; q++)
        for (int k = 0; k < 16; k++)
            bw[q * 16 + k] = k % 5 == 0 ? -1 : 300e6 * (q == 1 ? 1.5 : 1.0);
    for (int j = 0; j < 4; j++)
        if (j != 2)
            bw[(j % 3) * 16 + 2 * 4 + j] = bw[(j % 3) * 16 + j * 4 + 2] = 15e6;
    /* host 1 loses 2 % of its segments; pair 2-3 has too few retransmissions to judge */
    for (int k = 0; k < 16; k++) {
        re[k] = k % 5 == 0 ? -1 : 2;
        out[k] = k % 5 == 0 ? -1 : 20000;
    }
    re[1 * 4 + 0] = re[0 * 4 + 1] = re[1 * 4 + 2] = re[2 * 4 + 1] = re[1 * 4 + 3] = re[3 * 4 + 1] = 400;
    re[2 * 4 + 3] = re[3 * 4 + 2] = 9;
    out[2 * 4 + 3] = out[3 * 4 + 2] = 100;
    assert_int_equal(cb_pairs_health_check(4, 3, bw, re, out, NULL, &rule, &h), CB_OK);
    expect_flags(&h.intermittent, 2, -1, -1);
    assert_true(fabs(h.spread[2 * 4 + 0] - 30) < 1e-9 && fabs(h.spread[0 * 4 + 1] - 1.5) < 1e-9);
    expect_flags(&h.lossy, 1, -1, -1);
    assert_true(fabs(h.retrans_pct[1 * 4 + 3] - 2.0) < 1e-9 && h.retrans_pct[2 * 4 + 3] == 9.0);
    cb_pairs_health_free(&h);
    /* only link 0-3 loses 3 % */
    for (int k = 0; k < 16; k++)
        re[k] = k % 5 == 0 ? -1 : 2;
    re[0 * 4 + 3] = re[3 * 4 + 0] = 600;
    assert_int_equal(cb_pairs_health_check(4, 3, bw, re, out, NULL, &rule, &h), CB_OK);
    expect_flags(&h.lossy, -1, 0, 3);
    cb_pairs_health_free(&h);
    /* one pass: nothing to compare; unknown counters: nothing judged */
    for (int k = 0; k < 16; k++)
        re[k] = out[k] = -1;
    assert_int_equal(cb_pairs_health_check(4, 1, bw, re, out, NULL, &rule, &h), CB_OK);
    expect_flags(&h.intermittent, -1, -1, -1);
    expect_flags(&h.lossy, -1, -1, -1);
    assert_true(isnan(h.spread[1]) && isnan(h.retrans_pct[1]));
    cb_pairs_health_free(&h);
}

/* ---- RDMA retransmission counters per round ---- */

static void test_rdma_retrans_kind(void **state)
{
    (void)state;
    const char *yes[] = {"out_of_seq_request", "rcvd_seq_err", "duplicate_request", "completer_retry_err",
                         "retry_exceeded_err", "out_of_sequence", "packet_seq_err", "implied_nak_seq_err",
                         "local_ack_timeout_err", "roce_adp_retrans"};
    const char *no[] = {"rcvd_rnr_err", "send_rnr_err", "retry_rnr_exceeded_err", "rnr_nak_retry_err",
                        "sent_pkts", "rcvd_pkts", "ack_deferred", "link_downed", "symbol_error", "send_err",
                        "out_of_buffer", "np_cnp_sent", "np_ecn_marked_roce_packets", "port_xmit_wait"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        if (!cb_wire_is_retrans(yes[i]))
            fail_msg("%s is a retransmission counter", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        if (cb_wire_is_retrans(no[i]))
            fail_msg("%s is not a retransmission counter", no[i]);
}

/* A fake rxe0 port 1 (hw_counters as rxe has them) and mlx5_0 port 1, which
 * the transport does not use. */
static void fake_rdma_tree(const char *root, char *rxe_hw, size_t len, unsigned long long oos)
{
    char d[512];
    const char *dirs[] = {"rxe0", "rxe0/ports", "rxe0/ports/1", "rxe0/ports/1/hw_counters", "mlx5_0",
                          "mlx5_0/ports", "mlx5_0/ports/1", "mlx5_0/ports/1/hw_counters"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        snprintf(d, sizeof d, "%s/%s", root, dirs[i]);
        mkdir(d, 0755);
    }
    snprintf(rxe_hw, len, "%s/rxe0/ports/1/hw_counters", root);
    put(rxe_hw, "out_of_seq_request", oos);
    put(rxe_hw, "rcvd_seq_err", 3);
    put(rxe_hw, "duplicate_request", 0);
    put(rxe_hw, "rcvd_rnr_err", 1);
    put(rxe_hw, "link_downed", 0);
    put(rxe_hw, "sent_pkts", 1000);
    snprintf(d, sizeof d, "%s/mlx5_0/ports/1/hw_counters", root);
    put(d, "out_of_sequence", 7);
}

static void test_rdma_round_deltas(void **state)
{
    (void)state;
    char root[] = "/tmp/cb-test-rdma.XXXXXX", hw[512], cmd[300];
    assert_non_null(mkdtemp(root));
    fake_rdma_tree(root, hw, sizeof hw, 10);
    struct cb_props props = {0};
    cb_props_add(&props, "transport", "verbs");
    cb_props_add(&props, "device", "rxe0");
    cb_props_add(&props, "port", "1");
    cb_props_add(&props, "interface", "eth9");   /* not read here: netdev_counters.c samples it */
    struct cb_wire_scope scope;
    cb_pairs_rdma_scope(&props, &scope);
    assert_string_equal(scope.rdma_dev, "rxe0");
    assert_true(scope.rdma_port == 1 && scope.netdev[0] == 0 && !scope.tcp);
    struct cb_wire_reading *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    struct cb_pairs_rdma d;
    setenv("COLLBENCH_IB_SYSFS", root, 1);
    cb_wire_read(&scope, a);
    /* the round: gaps seen, NAKs received, an RNR (not loss), traffic; mlx5_0 moves but is not in scope */
    put(hw, "out_of_seq_request", 22);
    put(hw, "rcvd_seq_err", 8);
    put(hw, "rcvd_rnr_err", 9);
    put(hw, "sent_pkts", 5000);
    snprintf(cmd, sizeof cmd, "%s/mlx5_0/ports/1/hw_counters", root);
    put(cmd, "out_of_sequence", 700);
    cb_wire_read(&scope, b);
    cb_pairs_rdma_delta(a, b, &d);
    assert_true(d.total == 17 && d.n == 2 && !d.truncated);
    assert_string_equal(d.c[0].link, "rxe0:1");
    assert_string_equal(d.c[0].name, "out_of_seq_request");   /* hw_counters in name order */
    assert_true(d.c[0].delta == 12);
    assert_string_equal(d.c[1].name, "rcvd_seq_err");
    assert_true(d.c[1].delta == 5);
    /* a quiet round: read, nothing moved; a counter that went back (reset): not counted */
    put(hw, "rcvd_seq_err", 1);
    cb_wire_read(&scope, a);
    cb_pairs_rdma_delta(b, a, &d);
    assert_true(d.total == 0 && d.n == 0);
    /* no such device (tcp, shm or a machine without it): unknown, not zero */
    setenv("COLLBENCH_IB_SYSFS", "/nonexistent/cb", 1);
    cb_wire_read(&scope, b);
    cb_pairs_rdma_delta(a, b, &d);
    assert_true(d.total == -1 && d.n == 0);
    unsetenv("COLLBENCH_IB_SYSFS");
    free(a);
    free(b);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

static struct cb_pairs_rdma rdma_rec(long long total, const char *name)
{
    struct cb_pairs_rdma x = {total, 0, 0, {{0, "", "", 0}}};
    if (total > 0) {
        x.n = 1;
        snprintf(x.c[0].link, sizeof x.c[0].link, "rxe0:1");
        snprintf(x.c[0].name, sizeof x.c[0].name, "%s", name);
        x.c[0].delta = total;
    }
    return x;
}

/* Fake records of 4 ranks over the full schedule, 2 passes: rank 1's port
 * counts gaps in every round; rank 3 once, while idle-free ranks meet. */
static void test_rdma_records_to_pairs(void **state)
{
    (void)state;
    int n = 4, nrounds = cb_pairs_nrounds(4, 0);
    struct cb_pairs_rdma pairs[16];
    for (int i = 0; i < 16; i++)
        pairs[i] = rdma_rec(-1, "");
    for (int q = 0; q < 2; q++)
        for (int r = 0; r < nrounds; r++)
            for (int rank = 0; rank < n; rank++) {
                int partner = cb_pairs_partner(n, 0, r, rank);
                struct cb_pairs_rdma rec = rdma_rec(rank == 1 ? 15 : 0, "out_of_seq_request");
                if (rank == 3 && partner == 0 && q == 1)
                    rec = rdma_rec(4, "rcvd_seq_err");
                cb_pairs_rdma_to_pair(n, rank, partner, &rec, pairs);
            }
    /* each pair met twice (2 passes): rank 1's pairs 30, 0-3 4, the rest 0 */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            long long want = i == j ? -1 : (i == 1 || j == 1) ? 30 : (i + j == 3 && i * j == 0) ? 4 : 0;
            if (pairs[i * n + j].total != want)
                fail_msg("pair %d-%d: %lld, want %lld", i, j, pairs[i * n + j].total, want);
        }
    const struct cb_pairs_rdma *x = &pairs[1 * n + 2];
    assert_true(x->n == 1 && x->c[0].rank == 1 && x->c[0].delta == 30);   /* one counter, added up */
    x = &pairs[3 * n + 0];
    assert_true(x->n == 1 && x->c[0].rank == 3 && strcmp(x->c[0].name, "rcvd_seq_err") == 0);
    /* with the rule: rank 1 is a lossy host, 0-3 (4) within the default bound */
    struct cb_pairs_rule rule;
    struct cb_pairs_health h;
    double bw[2 * 16];
    long long re[16], out[16];
    cb_pairs_rule_default(&rule);
    for (int k = 0; k < 32; k++)
        bw[k] = k % 5 == 0 ? -1 : 300e6;
    for (int k = 0; k < 16; k++)
        re[k] = out[k] = -1;   /* verbs: no TCP counters */
    assert_int_equal(cb_pairs_health_check(4, 2, bw, re, out, pairs, &rule, &h), CB_OK);
    expect_flags(&h.lossy, 1, -1, -1);
    assert_true(h.rdma_lossy[1 * 4 + 0] && !h.rdma_lossy[0 * 4 + 3] && isnan(h.retrans_pct[1]));
    cb_pairs_health_free(&h);
    /* only link 2-3 moved beyond the bound: a lossy link, no host */
    for (int i = 0; i < 16; i++)
        pairs[i] = rdma_rec(i % 5 == 0 ? -1 : 0, "");
    pairs[2 * 4 + 3] = pairs[3 * 4 + 2] = rdma_rec(21, "out_of_seq_request");
    assert_int_equal(cb_pairs_health_check(4, 2, bw, re, out, pairs, &rule, &h), CB_OK);
    expect_flags(&h.lossy, -1, 2, 3);
    cb_pairs_health_free(&h);
    pairs[2 * 4 + 3] = pairs[3 * 4 + 2] = rdma_rec(20, "out_of_seq_request");   /* at the bound: not lossy */
    assert_int_equal(cb_pairs_health_check(4, 2, bw, re, out, pairs, &rule, &h), CB_OK);
    expect_flags(&h.lossy, -1, -1, -1);
    cb_pairs_health_free(&h);
}

static void test_netdev_counters(void **state)
{
    (void)state;
    char dir[] = "/tmp/cb-test-netdev.XXXXXX", path[512];
    struct cb_netdev_sample a, b;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/eth7", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    put(path, "carrier_changes", 2);
    snprintf(path, sizeof path, "%s/snmp", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "Ip: Forwarding DefaultTTL\nIp: 1 64\nTcp: RtoAlgorithm InSegs OutSegs RetransSegs InErrs\n"
               "Tcp: 1 100 5000 7 0\nUdp: InDatagrams\nUdp: 3\n");
    fclose(f);
    setenv("COLLBENCH_NET_SYSFS", dir, 1);
    setenv("COLLBENCH_PROC_SNMP", path, 1);
    setenv("COLLBENCH_PROC_NETSTAT", "/nonexistent/netstat", 1);
    cb_netdev_sample("eth7", &a);
    assert_true(a.carrier_changes == 2 && a.tcp_out_segs == 5000 && a.tcp_retrans_segs == 7 && a.when > 1e9);
    assert_true(a.tcp_dsack_segs == -1);
    /* needed retransmissions: all of them when the D-SACK count is unknown, else minus the duplicates */
    b = a;
    b.tcp_retrans_segs = 97;
    assert_true(cb_netdev_lost(&a, &b) == 90);
    a.tcp_dsack_segs = 10;
    b.tcp_dsack_segs = 95;
    assert_true(cb_netdev_lost(&a, &b) == 5);
    b.tcp_dsack_segs = 200;
    assert_true(cb_netdev_lost(&a, &b) == 0);
    b.tcp_retrans_segs = -1;
    assert_true(cb_netdev_lost(&a, &b) == -1);
    /* a TcpExt line longer than any fixed buffer, the field at its end */
    char netstat[512];
    snprintf(netstat, sizeof netstat, "%s/netstat", dir);
    f = fopen(netstat, "w");
    fprintf(f, "TcpExt:");
    for (int i = 0; i < 300; i++)
        fprintf(f, " SomeCounter%03d", i);
    fprintf(f, " TCPDSACKRecvSegs\nTcpExt:");
    for (int i = 0; i < 300; i++)
        fprintf(f, " %d", i);
    fprintf(f, " 1234\nIpExt: InNoRoutes\nIpExt: 0\n");
    fclose(f);
    setenv("COLLBENCH_PROC_NETSTAT", netstat, 1);
    cb_netdev_sample("eth7", &a);
    assert_true(a.tcp_dsack_segs == 1234 && a.tcp_retrans_segs == 7);
    snprintf(path, sizeof path, "%s/eth7", dir);
    put(path, "carrier_changes", 4);
    cb_netdev_sample("eth7", &b);
    assert_true(cb_netdev_delta(a.carrier_changes, b.carrier_changes) == 2);
    assert_true(cb_netdev_delta(9, 4) == 4 && cb_netdev_delta(-1, 4) == -1);
    cb_netdev_sample("nosuch0", &b);
    assert_true(b.carrier_changes == -1 && b.tcp_out_segs == 5000);
    cb_netdev_sample(NULL, &b);
    assert_true(b.carrier_changes == -1);
    unsetenv("COLLBENCH_NET_SYSFS");
    unsetenv("COLLBENCH_PROC_SNMP");
    unsetenv("COLLBENCH_PROC_NETSTAT");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_options(void **state)
{
    (void)state;
    struct cb_pairs_opts p;
    const char *ok[] = {"pairs", "-b", "1M", "-n", "5", "--quick", "-T", "7", "--transport", "tcp",
                        "--passes", "2", "--bw-factor", "4", "-J", "x.json"};
    assert_int_equal(parse(&p, 16, ok), CB_OK);
    assert_true(p.bytes == 1u << 20 && p.iters == 5 && p.quick && p.passes == 2);
    assert_true(p.base.tcfg.timeout_ms == 7000 && strcmp(p.base.transport, "tcp") == 0);
    assert_true(p.rule.bw_factor == 4 && strcmp(p.json_path, "x.json") == 0);
    const char *def[] = {"pairs"};
    assert_int_equal(parse(&p, 1, def), CB_OK);
    assert_true(p.bytes == 16u << 20 && p.passes == 3 && p.rule.bw_factor == 2 && !p.quick);
    const char *bad[][3] = {{"pairs", "-e", "4M"}, {"pairs", "--passes", "0"}, {"pairs", "--transport", "udp"},
                            {"pairs", "-b", "x"}, {"pairs", "--bw-factor", "0.5"}, {"pairs", "extra", "-q"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(parse(&p, 3, bad[i]), CB_EUSAGE);
    assert_true(p.rule.max_rdma_retrans == 20);
    const char *rdma[] = {"pairs", "--max-rdma-retrans", "5"};
    assert_int_equal(parse(&p, 3, rdma), CB_OK);
    assert_true(p.rule.max_rdma_retrans == 5);
    const char *rdma_bad[][3] = {{"pairs", "--max-rdma-retrans", "-1"}, {"pairs", "--max-rdma-retrans", "x"}};
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(parse(&p, 3, rdma_bad[i]), CB_EUSAGE);
}

/* ---- report ---- */

static void fill_report(struct cb_pairs_report *r, struct cb_port_deltas *deltas)
{
    struct mats m = make(4, 0, 9);
    slow_host(&m, 2, 1.0 / 30);
    assert_int_equal(cb_pairs_report_init(r, 4, 3), CB_OK);
    memcpy(r->bw, m.bw, 16 * sizeof(double));
    memcpy(r->lat, m.lat, 16 * sizeof(double));
    for (int q = 0; q < 3; q++) {
        memcpy(r->bw_pass + q * 16, m.bw, 16 * sizeof(double));
        memcpy(r->lat_pass + q * 16, m.lat, 16 * sizeof(double));
    }
    free(m.bw);
    free(m.lat);
    for (int i = 0; i < 4; i++)
        snprintf(r->hosts[i], sizeof r->hosts[i], "h(10.0.0.%d)", i + 2);
    r->transport = "tcp";
    r->bytes = 1 << 20;
    r->iters = r->lat_iters = r->nrounds = 3;
    cb_pairs_rule_default(&r->rule);
    r->flaps = calloc(1, sizeof *r->flaps);
    r->flaps[0] = (struct cb_pairs_flap){1, 1, 0, 3, "eth0", 2, 4, 1e9, 1e9 + 2};
    r->nflaps = 1;
    memset(deltas, 0, 4 * sizeof *deltas);
    deltas[1].n = 1;
    snprintf(deltas[1].c[0].name, sizeof deltas[1].c[0].name, "mlx5_0/1/symbol_error");
    deltas[1].c[0].value = 12;
    r->deltas = deltas;
    assert_int_equal(cb_pairs_classify(4, r->bw, r->lat, &r->rule, &r->verdict), CB_OK);
    assert_int_equal(cb_pairs_health_check(4, 3, r->bw_pass, r->retrans, r->outsegs, r->rdma, &r->rule, &r->health), CB_OK);
}

static void test_report_text_and_json(void **state)
{
    (void)state;
    struct cb_pairs_report r;
    struct cb_port_deltas *deltas = calloc(4, sizeof *deltas);
    char *text = NULL, path[] = "/tmp/cb-test-pairs-json.XXXXXX";
    size_t len = 0;
    fill_report(&r, deltas);
    FILE *out = open_memstream(&text, &len);
    cb_pairs_print(out, &r);
    fclose(out);
    assert_non_null(strstr(text, "\nslow host: rank 2 (h(10.0.0.4)): 3 of 3 pairs slow"));
    assert_null(strstr(text, "slow link"));
    assert_non_null(strstr(text, "port counter: rank 1 (h(10.0.0.3)) mlx5_0/1/symbol_error +12 (error)"));
    assert_non_null(strstr(text, "\nlink flap: rank 1 (h(10.0.0.3)) eth0 carrier_changes 2 -> 4 (+2) in pass 2 "
                                 "round 1 (with rank 3), between 01:46:40 and 01:46:42 UTC\n"));
    assert_null(strstr(text, "lossy"));
    assert_null(strstr(text, "intermittent"));
    int fd = mkstemp(path);
    close(fd);
    assert_int_equal(cb_pairs_write_json(path, &r), CB_OK);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))\n"
             "assert d[\"slow_hosts\"] == 1 and d[\"verdict\"] == \"outliers\", d\n"
             "h = d[\"hosts\"][2]\n"
             "assert h[\"host\"] == \"h(10.0.0.4)\" and h[\"slow\"] is True, h\n"
             "c = d[\"port_counters\"]\n"
             "assert c == [{\"rank\": 1, \"counter\": \"mlx5_0/1/symbol_error\", \"delta\": 12, \"kind\": \"error\"}], c\n"
             "f = d[\"flaps\"][0]\n"
             "assert (f[\"interface\"], f[\"carrier_changes_before\"], f[\"carrier_changes_after\"], f[\"pass\"], "
             "f[\"round\"], f[\"partner\"]) == (\"eth0\", 2, 4, 2, 1, 3), f\n"
             "p = d[\"pairs\"][0]\n"
             "assert isinstance(p[\"bw_passes_MBps\"], list) and p[\"spread\"] == 1, p\n"
             "assert p[\"intermittent\"] is False and p[\"retrans_segs\"] is None, p' '%s'", path);
    assert_int_equal(system(cmd), 0);
    unlink(path);
    free(text);
    free(deltas);
    cb_pairs_report_free(&r);
}

/* 2 verbs ranks, every pass measured, TCP counters unknown; pair 0-1's RDMA
 * retransmission counters: rank 0's rcvd_seq_err and rank 1's out_of_seq_request. */
static void verbs_report(struct cb_pairs_report *r, struct cb_port_deltas *deltas, long long oos, long long seq)
{
    assert_int_equal(cb_pairs_report_init(r, 2, 2), CB_OK);
    for (int k = 0; k < 4; k++)
        r->bw[k] = r->lat[k] = k % 3 == 0 ? -1 : (k ? 40e6 : -1);
    r->lat[1] = r->lat[2] = 500;
    for (int q = 0; q < 2; q++)
        for (int k = 0; k < 4; k++)
            r->bw_pass[q * 4 + k] = r->bw[k], r->lat_pass[q * 4 + k] = r->lat[k];
    for (int i = 0; i < 2; i++)
        snprintf(r->hosts[i], sizeof r->hosts[i], "node%c(10.77.0.%d)", 'a' + i, i + 1);
    r->transport = "verbs";
    r->bytes = 256 << 10;
    r->iters = r->lat_iters = r->nrounds = 1;
    r->passes = 2;
    cb_pairs_rule_default(&r->rule);
    struct cb_pairs_rdma a = rdma_rec(seq, "rcvd_seq_err"), b = rdma_rec(oos, "out_of_seq_request");
    cb_pairs_rdma_to_pair(2, 0, 1, &a, r->rdma);
    cb_pairs_rdma_to_pair(2, 1, 0, &b, r->rdma);
    memset(deltas, 0, 2 * sizeof *deltas);
    r->deltas = deltas;
    assert_int_equal(cb_pairs_classify(2, r->bw, r->lat, &r->rule, &r->verdict), CB_OK);
    assert_int_equal(cb_pairs_health_check(2, 2, r->bw_pass, r->retrans, r->outsegs, r->rdma, &r->rule, &r->health),
                     CB_OK);
}

static char *print_to_string(const struct cb_pairs_report *r)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    cb_pairs_print(out, r);
    fclose(out);
    return text;
}

static void test_report_verbs_lossy(void **state)
{
    (void)state;
    struct cb_pairs_report r;
    struct cb_port_deltas deltas[2];
    char path[] = "/tmp/cb-test-pairs-json.XXXXXX", cmd[2048];
    verbs_report(&r, deltas, 29, 31);
    char *text = print_to_string(&r);
    assert_non_null(strstr(text, "\nlossy link: rank 0 (nodea(10.77.0.1)) <-> rank 1 (nodeb(10.77.0.2)): RDMA "
                                 "retransmission counters +60 (bound 20): rank 0 rxe0:1 rcvd_seq_err +31, rank 1 "
                                 "rxe0:1 out_of_seq_request +29\n"));
    assert_null(strstr(text, "no outliers"));
    assert_null(strstr(text, "TCP"));
    assert_true(cb_pairs_report_named(&r));
    int fd = mkstemp(path);
    close(fd);
    assert_int_equal(cb_pairs_write_json(path, &r), CB_OK);
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))\n"
             "assert d[\"rule\"][\"max_rdma_retrans\"] == 20 and d[\"lossy_links\"] == 1, d\n"
             "p = d[\"pairs\"][0]\n"
             "assert p[\"verdict\"] == \"lossy link\" and p[\"lossy\"] is True and p[\"rdma_retrans\"] == 60, p\n"
             "assert p[\"retrans_segs\"] is None and p[\"retrans_pct\"] is None, p\n"
             "assert p[\"rdma_counters\"] == [{\"rank\": 0, \"link\": \"rxe0:1\", \"counter\": \"rcvd_seq_err\", "
             "\"delta\": 31}, {\"rank\": 1, \"link\": \"rxe0:1\", \"counter\": \"out_of_seq_request\", \"delta\": 29}], p' "
             "'%s'", path);
    assert_int_equal(system(cmd), 0);
    unlink(path);
    free(text);
    cb_pairs_report_free(&r);
    /* within the bound: shown as a comment, nothing named */
    verbs_report(&r, deltas, 2, 1);
    text = print_to_string(&r);
    assert_non_null(strstr(text, "\nno outliers\n# rdma retransmissions within the bound (20): rank 0 <-> rank 1 +3: "
                                 "rank 0 rxe0:1 rcvd_seq_err +1, rank 1 rxe0:1 out_of_seq_request +2\n"));
    assert_false(cb_pairs_report_named(&r));
    free(text);
    cb_pairs_report_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule_all_pairs_once),
        cmocka_unit_test(test_schedule_quick_ring_neighbours),
        cmocka_unit_test(test_clean_names_nothing),
        cmocka_unit_test(test_one_slow_link),
        cmocka_unit_test(test_one_slow_latency_link),
        cmocka_unit_test(test_one_slow_host),
        cmocka_unit_test(test_failed_pair_is_a_slow_link),
        cmocka_unit_test(test_two_ranks_cannot_tell),
        cmocka_unit_test(test_measured_matrices),
        cmocka_unit_test(test_limits_and_noise),
        cmocka_unit_test(test_port_counters_delta),
        cmocka_unit_test(test_intermittent_and_lossy),
        cmocka_unit_test(test_rdma_retrans_kind),
        cmocka_unit_test(test_rdma_round_deltas),
        cmocka_unit_test(test_rdma_records_to_pairs),
        cmocka_unit_test(test_netdev_counters),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_report_text_and_json),
        cmocka_unit_test(test_report_verbs_lossy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
