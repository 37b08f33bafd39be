/* collbench pairs with several ranks per host: the rail-by-rail schedule
 * (local rank i meets only local rank i of the other hosts, every such pair
 * once, ranks of one host never), hosts with different rank counts refused,
 * and a slow rail named by host and rail in the text and JSON reports. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/groups.h"
#include "tools/pairs.h"

/* Rank r on host host[r]; each cross-host same-rail pair met `want` times
 * (1 in full mode; quick: hosts that are ring neighbours), others never. */
static void check_rails(int n, const int *host, int quick)
{
    struct cb_pairs_rails rl;
    int *met = calloc((size_t)(n * n), sizeof *met);
    assert_int_equal(cb_pairs_rails_init(n, host, &rl), CB_OK);
    int rounds = cb_pairs_rails_nrounds(&rl, quick);
    assert_int_equal(rounds, cb_pairs_nrounds(rl.nhosts, quick));
    for (int r = 0; r < rounds; r++)
        for (int x = 0; x < n; x++) {
            int p = cb_pairs_rails_partner(&rl, quick, r, x);
            if (p < 0)
                continue;
            assert_int_equal(cb_pairs_rails_partner(&rl, quick, r, p), x);   /* a matching */
            met[x * n + p]++;
        }
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) {
            int ha = rl.host[a], hb = rl.host[b], H = rl.nhosts;
            int ring = (hb == (ha + 1) % H || ha == (hb + 1) % H);
            int want = ha != hb && rl.local[a] == rl.local[b] && (!quick || ring);
            if (met[a * n + b] != want)
                fail_msg("n=%d quick=%d: ranks %d (host %d local %d) and %d (host %d local %d) met %d times, want %d",
                         n, quick, a, ha, rl.local[a], b, hb, rl.local[b], met[a * n + b], want);
        }
    free(met);
    cb_pairs_rails_free(&rl);
}

static void test_rails_schedule(void **state)
{
    (void)state;
    int host[64];
    for (int hosts = 2; hosts <= 7; hosts++)
        for (int k = 1; k <= 4; k++) {
            for (int r = 0; r < hosts * k; r++)   /* block placement: ranks 0..k-1 on the first host */
                host[r] = r / k;
            check_rails(hosts * k, host, 0);
            check_rails(hosts * k, host, 1);
            for (int r = 0; r < hosts * k; r++)   /* round robin (mpirun --map-by node) */
                host[r] = r % hosts;
            check_rails(hosts * k, host, 0);
        }
}

static void test_rails_layout(void **state)
{
    (void)state;
    struct cb_pairs_rails rl;
    int rr[] = {0, 1, 0, 1};   /* --map-by node: a b a b */
    assert_int_equal(cb_pairs_rails_init(4, rr, &rl), CB_OK);
    assert_int_equal(rl.nhosts, 2);
    assert_int_equal(rl.per_host, 2);
    assert_true(rl.host[2] == 0 && rl.local[2] == 1 && rl.host[1] == 1 && rl.local[1] == 0);
    assert_int_equal(cb_pairs_rails_nrounds(&rl, 0), 1);
    assert_int_equal(cb_pairs_rails_partner(&rl, 0, 0, 0), 1);
    assert_int_equal(cb_pairs_rails_partner(&rl, 0, 0, 2), 3);
    cb_pairs_rails_free(&rl);
    /* one host holding every rank: each rank counts as a host, all pairs meet (loopback) */
    int one[] = {0, 0, 0};
    assert_int_equal(cb_pairs_rails_init(3, one, &rl), CB_OK);
    assert_true(rl.nhosts == 3 && rl.per_host == 1);
    cb_pairs_rails_free(&rl);
    check_rails(3, one, 0);
    check_rails(4, (int[]){0, 0, 0, 0}, 0);
}

static void test_rails_uneven_hosts_refused(void **state)
{
    (void)state;
    struct cb_pairs_rails rl;
    int uneven[] = {0, 0, 1, 2, 2};
    assert_int_equal(cb_pairs_rails_init(5, uneven, &rl), CB_EUSAGE);
    assert_int_equal(rl.nhosts, 3);
    assert_true(rl.count[0] == 2 && rl.count[1] == 1 && rl.count[2] == 2);
    assert_true(rl.first[0] == 0 && rl.first[1] == 2 && rl.first[2] == 3);
    assert_int_equal(cb_pairs_rails_nrounds(&rl, 0), 0);
    assert_int_equal(cb_pairs_rails_partner(&rl, 0, 0, 0), -1);
    cb_pairs_rails_free(&rl);
}

/* 2 hosts x 2 rails, --map-by node (ranks 0, 2 on node a; 1, 3 on node b):
 * rail 0 pairs 0-1 at 200 MB/s, rail 1 pairs 2-3 at 10 MB/s. */
static void test_rails_report_names_host_and_rail(void **state)
{
    (void)state;
    struct cb_pairs_rails rl;
    struct cb_pairs_report r;
    struct cb_pairs_link links[4] = {{"eth0", "rxe0:1"}, {"eth0", "rxe0:1"}, {"eth1", "rxe1:1"}, {"eth1", "rxe1:1"}};
    struct cb_port_deltas deltas[4];
    int host[] = {0, 1, 0, 1};
    memset(deltas, 0, sizeof deltas);
    assert_int_equal(cb_pairs_rails_init(4, host, &rl), CB_OK);
    assert_int_equal(cb_pairs_report_init(&r, 4, 1), CB_OK);
    for (int i = 0; i < 16; i++)
        r.bw[i] = r.lat[i] = r.bw_pass[i] = r.lat_pass[i] = -1;
    r.bw[0 * 4 + 1] = r.bw[1 * 4 + 0] = 200e6;
    r.bw[2 * 4 + 3] = r.bw[3 * 4 + 2] = 10e6;
    r.lat[1] = r.lat[4] = r.lat[11] = r.lat[14] = 50;
    for (int i = 0; i < 16; i++)
        r.bw_pass[i] = r.bw[i], r.lat_pass[i] = r.lat[i];
    for (int i = 0; i < 4; i++)
        snprintf(r.hosts[i], sizeof r.hosts[i], "node%c(10.77.0.%d)", 'a' + i % 2, 1 + i % 2);
    r.transport = "verbs";
    r.nrounds = r.iters = r.lat_iters = 1;
    r.rails = &rl;
    r.links = links;
    r.deltas = deltas;
    cb_pairs_rule_default(&r.rule);
    assert_int_equal(cb_pairs_classify(4, r.bw, r.lat, &r.rule, &r.verdict), CB_OK);
    assert_int_equal(cb_pairs_health_check(4, 1, r.bw_pass, r.retrans, r.outsegs, r.rdma, &r.rule, &r.health), CB_OK);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    cb_pairs_print(out, &r);
    fclose(out);
    assert_non_null(strstr(text, "\nslow link: host nodea(10.77.0.1) rail rxe1:1 <-> host nodeb(10.77.0.2) rail "
                                 "rxe1:1 (ranks 2, 3): bandwidth: 10.0 MB/s vs median 200.0 MB/s"));
    assert_null(strstr(text, "rail rxe0:1 <->"));
    assert_null(strstr(text, "slow host"));
    assert_non_null(strstr(text, "#  rank    2: nodea(10.77.0.1) local rank 1 rail rxe1:1\n"));
    char path[] = "/tmp/cb-test-rails-json.XXXXXX", cmd[1024];
    close(mkstemp(path));
    assert_int_equal(cb_pairs_write_json(path, &r), CB_OK);
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))\n"
             "assert d[\"ranks_per_host\"] == 2 and d[\"nhosts\"] == 2 and d[\"slow_links\"] == 1, d\n"
             "h = d[\"hosts\"][2]\n"
             "assert (h[\"host\"], h[\"host_index\"], h[\"local_rank\"], h[\"rail\"]) == "
             "(\"nodea(10.77.0.1)\", 0, 1, \"rxe1:1\"), h\n"
             "p = [p for p in d[\"pairs\"] if p[\"verdict\"] != \"ok\"]\n"
             "assert len(p) == 1 and (p[0][\"a\"], p[0][\"b\"], p[0][\"rail_a\"], p[0][\"host_b\"]) == "
             "(2, 3, \"rxe1:1\", \"nodeb(10.77.0.2)\"), p' '%s'", path);
    assert_int_equal(system(cmd), 0);
    unlink(path);
    free(text);
    cb_pairs_report_free(&r);
    cb_pairs_rails_free(&rl);
}

/* Host indices out of first-rank order are a caller's bug, refused. */
static void test_rails_misnumbered_hosts_refused(void **state)
{
    (void)state;
    struct cb_pairs_rails rl;
    assert_int_equal(cb_pairs_rails_init(4, (int[]){0, 2, 1, 1}, &rl), CB_EINTERNAL);
    cb_pairs_rails_free(&rl);
    assert_int_equal(cb_pairs_rails_init(2, (int[]){1, 0}, &rl), CB_EINTERNAL);
    cb_pairs_rails_free(&rl);
}

/* Names to host indices (core/groups.h): equal names one host, hosts
 * numbered by their first rank whatever the names' sort order. */
static void test_groups_by_name(void **state)
{
    (void)state;
    char names[7][16] = {"zeta", "alpha", "zeta", "mid", "alpha", "zeta", "omega"};
    int group[7], n = -1;
    assert_int_equal(cb_groups_by_name(7, names[0], sizeof names[0], group, &n), CB_OK);
    assert_int_equal(n, 4);
    int want[7] = {0, 1, 0, 2, 1, 0, 3};
    for (int r = 0; r < 7; r++)
        assert_int_equal(group[r], want[r]);
    /* what pairs makes of them: 4 hosts of unequal size, refused with the counts */
    struct cb_pairs_rails rl;
    assert_int_equal(cb_pairs_rails_init(7, group, &rl), CB_EUSAGE);
    assert_true(rl.nhosts == 4 && rl.count[0] == 3 && rl.first[3] == 6);
    cb_pairs_rails_free(&rl);
    /* one name, and none */
    char same[3][8] = {"h", "h", "h"};
    assert_int_equal(cb_groups_by_name(3, same[0], sizeof same[0], group, &n), CB_OK);
    assert_true(n == 1 && group[0] == 0 && group[1] == 0 && group[2] == 0);
    assert_int_equal(cb_groups_by_name(0, same[0], sizeof same[0], group, &n), CB_OK);
    assert_int_equal(n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rails_schedule),
        cmocka_unit_test(test_rails_layout),
        cmocka_unit_test(test_rails_uneven_hosts_refused),
        cmocka_unit_test(test_rails_misnumbered_hosts_refused),
        cmocka_unit_test(test_groups_by_name),
        cmocka_unit_test(test_rails_report_names_host_and_rail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
