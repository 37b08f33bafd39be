/* The double binary tree's shape, the fold of recursive doubling, the cost
 * model's rankings and the tune file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "algo/algo.h"
#include "coll/model.h"

/* Parent and children agree, one root, every rank reached, depth ~log2 n. */
static void check_tree(int n, int which, int *inner)
{
    int roots = 0, edges = 0;
    for (int r = 0; r < n; r++) {
        struct cb_tree t;
        cb_tree_build(n, r, which, &t);
        assert_true(t.nchild >= 0 && t.nchild <= 2);
        if (t.nchild > 0)
            inner[r]++;
        if (t.parent < 0) {
            roots++;
            continue;
        }
        struct cb_tree p;
        cb_tree_build(n, t.parent, which, &p);
        int found = 0;
        for (int i = 0; i < p.nchild; i++)
            found += p.child[i] == r;
        assert_int_equal(found, 1);
        edges++;
        int depth = 0;
        for (int x = r; x >= 0 && depth <= n; depth++) {
            struct cb_tree u;
            cb_tree_build(n, x, which, &u);
            x = u.parent;
        }
        assert_true(depth <= 2 + 2 * (int)(sizeof(int) * 8 - __builtin_clz((unsigned)n)));
    }
    assert_int_equal(roots, 1);
    assert_int_equal(edges, n - 1);
}

static void test_double_tree_shapes(void **state)
{
    (void)state;
    for (int n = 1; n <= 300; n++) {
        int inner[300] = {0};
        check_tree(n, 0, inner);
        check_tree(n, 1, inner);
        int both = 0;
        for (int r = 0; r < n; r++)
            both += inner[r] == 2;
        /* NCCL's property: each rank forwards in at most one tree (odd n: rank 0
         * is the root of tree 0 with one child and inner in tree 1) */
        assert_true(both <= (n % 2 ? 1 : 0));
    }
}

static void test_tree_matches_nccl_small(void **state)
{
    (void)state;
    struct cb_tree t;
    cb_tree_build(8, 0, 0, &t);
    assert_true(t.parent == -1 && t.nchild == 1 && t.child[0] == 4);
    cb_tree_build(8, 4, 0, &t);
    assert_true(t.parent == 0 && t.nchild == 2 && t.child[0] == 2 && t.child[1] == 6);
    cb_tree_build(8, 6, 0, &t);
    assert_true(t.parent == 4 && t.nchild == 2 && t.child[0] == 5 && t.child[1] == 7);
    cb_tree_build(8, 7, 1, &t);   /* mirror: 7 is tree 1's root */
    assert_true(t.parent == -1 && t.nchild == 1 && t.child[0] == 3);
    cb_tree_build(5, 1, 1, &t);   /* shift: 1 is tree 1's root */
    assert_true(t.parent == -1 && t.nchild == 1 && t.child[0] == 0);
}

static void test_fold_covers_every_rank_once(void **state)
{
    (void)state;
    for (int n = 1; n <= 70; n++) {
        struct cb_fold f;
        cb_fold_init(&f, n, 0);
        assert_true(f.p <= n && 2 * f.p > n && f.rem == n - f.p);
        assert_int_equal(cb_fold_first(&f, 0), 0);
        assert_int_equal(cb_fold_first(&f, f.p), n);
        for (int v = 0; v < f.p; v++) {
            int r = cb_fold_rank(&f, v);
            struct cb_fold g;
            cb_fold_init(&g, n, r);
            assert_int_equal(g.v, v);
            assert_true(cb_fold_first(&f, v) <= r && r < cb_fold_first(&f, v + 1));
        }
        for (int r = 0; r < n; r++) {
            struct cb_fold g;
            cb_fold_init(&g, n, r);
            assert_true(g.v >= 0 || (r % 2 == 0 && r + 1 < 2 * g.rem + 1));
        }
    }
}

static void flat(struct cb_machine *m, int n)
{
    struct cb_cost c;
    memset(&c, 0, sizeof c);
    c.valid = 1;
    c.alpha_s = 1e-6;
    c.beta_s = 1e-10;
    c.gamma_s[CB_FLOAT] = 5e-11;
    c.chunk_bytes = 1 << 20;
    cb_machine_flat(m, n, 1, &c);
}

static void test_model_picks_latency_then_bandwidth(void **state)
{
    (void)state;
    struct cb_machine m;
    flat(&m, 8);
    cb_algo small = cb_model_best(&m, CB_ALL_REDUCE, 8, CB_FLOAT);
    assert_true(small == CB_ALGO_RD);
    /* bandwidth-optimal at 256 MiB: not recursive doubling, which sends S log2 n */
    assert_true(cb_model_best(&m, CB_ALL_REDUCE, 256u << 20, CB_FLOAT) != CB_ALGO_RD);
    /* ring: 2(n-1) steps of alpha at 8 B */
    double ring = cb_model_time(&m, CB_ALL_REDUCE, CB_ALGO_RING, 8, CB_FLOAT);
    assert_true(ring > 14e-6 && ring < 14.1e-6);
    assert_true(cb_model_time(&m, CB_ALL_REDUCE, CB_ALGO_RD, 8, CB_FLOAT) < ring / 4);
    assert_true(cb_model_time(&m, CB_ALL_GATHER, CB_ALGO_PAIRWISE, 8, CB_FLOAT) < 0);
    assert_true(cb_model_best(&m, CB_ALLTOALL, 64, CB_FLOAT) == CB_ALGO_LINEAR);
    assert_true(cb_model_best(&m, CB_ALL_GATHER, 64, CB_FLOAT) == CB_ALGO_RD);
    assert_true(cb_model_best(&m, CB_REDUCE_SCATTER, 1u << 30, CB_FLOAT) != CB_ALGO_AUTO);
}

static void test_model_oversubscription_hurts_rd_not_ring(void **state)
{
    (void)state;
    struct cb_machine m;
    flat(&m, 4096);
    m.nodes = 512;
    m.nodes_per_leaf = 16;
    m.inter = m.intra;
    double rd1 = cb_model_time(&m, CB_ALL_REDUCE, CB_ALGO_RABENSEIFNER, 64u << 20, CB_FLOAT);
    double ring1 = cb_model_time(&m, CB_ALL_REDUCE, CB_ALGO_RING, 64u << 20, CB_FLOAT);
    m.oversub = 4;
    assert_true(cb_model_time(&m, CB_ALL_REDUCE, CB_ALGO_RABENSEIFNER, 64u << 20, CB_FLOAT) > rd1 * 1.2);
    assert_true(cb_model_time(&m, CB_ALL_REDUCE, CB_ALGO_RING, 64u << 20, CB_FLOAT) == ring1);
}

/* direct: on one machine its few steps win at large sizes; at thousands of
 * ranks its n - 1 posted sends per round lose to every tree and ring. */
static void test_model_direct_for_a_machine_not_at_scale(void **state)
{
    (void)state;
    struct cb_machine m;
    flat(&m, 8);
    double direct = cb_model_time(&m, CB_ALL_REDUCE, CB_ALGO_DIRECT, 16u << 20, CB_FLOAT);
    assert_true(direct > 0 && direct < cb_model_time(&m, CB_ALL_REDUCE, CB_ALGO_RING, 16u << 20, CB_FLOAT));
    assert_true(cb_model_best(&m, CB_ALL_REDUCE, 16u << 20, CB_FLOAT) == CB_ALGO_DIRECT);
    assert_true(cb_model_time(&m, CB_REDUCE_SCATTER, CB_ALGO_DIRECT, 16u << 20, CB_FLOAT) < direct);
    flat(&m, 32768);
    m.nodes = 4096;
    for (size_t bytes = 8; bytes <= (1u << 30); bytes *= 32)
        assert_true(cb_model_best(&m, CB_ALL_REDUCE, bytes, CB_FLOAT) != CB_ALGO_DIRECT);
}

/* The algorithm table: every entry complete, names unique and parsed back,
 * auto's candidates in table order, and each collective's default (no cost
 * model) the first algorithm of ours that runs it. */
static void test_algorithm_table(void **state)
{
    (void)state;
    for (int a = 1; a < CB_NALGOS; a++) {
        const struct cb_algo_desc *d = cb_algo_desc((cb_algo)a);
        assert_non_null(d);
        assert_non_null(d->name);
        assert_non_null(d->summary);
        assert_int_equal(cb_algo_parse(d->name), a);
        assert_true(d->not_ours || d->connect != NULL);
        assert_non_null(d->impl[0].run);
        for (int i = 0; i < CB_NCOLLS && d->impl[i].run; i++) {
            assert_ptr_equal(cb_algo_impl((cb_algo)a, d->impl[i].coll), &d->impl[i]);
            assert_true(d->not_ours == (d->impl[i].model_time == NULL));
        }
    }
    assert_int_equal(cb_algo_parse("auto"), CB_ALGO_AUTO);
    assert_int_equal(cb_algo_parse("nccl"), -1);
    assert_null(cb_algo_impl(CB_ALGO_TREE, CB_ALLTOALL));

    cb_algo list[CB_NALGOS];
    static const cb_algo ar[] = {CB_ALGO_RING, CB_ALGO_TREE, CB_ALGO_RD, CB_ALGO_RABENSEIFNER, CB_ALGO_DIRECT};
    assert_int_equal(cb_model_algos(CB_ALL_REDUCE, list, CB_NALGOS), 5);
    assert_memory_equal(list, ar, sizeof ar);
    assert_int_equal(cb_model_algos(CB_ALLTOALL, list, CB_NALGOS), 2);
    assert_int_equal(list[0], CB_ALGO_PAIRWISE);
    assert_int_equal(list[1], CB_ALGO_LINEAR);
    for (int coll = 0; coll < CB_NCOLLS; coll++)
        assert_true(cb_model_algos((cb_coll)coll, list, CB_NALGOS) <= CB_AUTO_MAX_TRIED);

    char names[256], want[32];
    cb_algo_names(names, sizeof names, ", ", " or ");
    assert_memory_equal(names, "auto, ring, ", 12);
    assert_string_equal(names + strlen(names) - 7, " or mpi");
    for (int a = 1; a < CB_NALGOS - 1; a++) {
        snprintf(want, sizeof want, " %s", cb_algo_name((cb_algo)a));
        assert_non_null(strstr(names, want));
    }
}

static void test_tune_file_round_trip(void **state)
{
    (void)state;
    char path[] = "/tmp/collbench-tune-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    struct cb_cost c, back;
    memset(&c, 0, sizeof c);
    c.alpha_s = 1.5e-6;
    c.beta_s = 2.5e-10;
    c.gamma_s[CB_HALF] = 3e-10;
    c.chunk_bytes = 8192;
    c.nranks = 4;
    assert_int_equal(cb_cost_save(f, &c, "shm"), CB_OK);
    fclose(f);
    assert_int_equal(cb_cost_load(path, &back), CB_OK);
    assert_true(back.valid && back.nranks == 4 && back.chunk_bytes == 8192);
    assert_true(back.alpha_s > 1.49e-6 && back.alpha_s < 1.51e-6);
    assert_true(back.gamma_s[CB_HALF] > 2.9e-10 && back.gamma_s[CB_FLOAT] == 0);
    f = fopen(path, "w");
    fputs("alpha_us 1\nbogus 2\n", f);
    fclose(f);
    assert_int_equal(cb_cost_load(path, &back), CB_EUSAGE);
    unlink(path);
    assert_int_equal(cb_cost_load(path, &back), CB_EUSAGE);
}

/* Rank counts near INT_MAX: the model's step counting must not overflow
 * (issue 18: `collbench model --ranks 2147483647` never finished). */
static void test_model_huge_rank_counts_finish(void **state)
{
    (void)state;
    struct cb_machine m;
    flat(&m, 2147483647);
    for (int c = 0; c < CB_BROADCAST; c++)
        assert_true((int)cb_model_best(&m, (cb_coll)c, 1 << 20, CB_FLOAT) >= 0);
    flat(&m, CB_MODEL_MAX_RANKS);
    assert_true(cb_model_time(&m, CB_ALL_REDUCE, CB_ALGO_TREE, 1 << 20, CB_FLOAT) > 0);
}

/* inf, nan, 1e30 and a rank count beyond an int are refused with the line
 * number, and the message shows the line's bytes escaped (issue 18: they
 * were accepted, and a refusal echoed terminal escapes raw). */
static void test_tune_file_refuses_absurd_values(void **state)
{
    (void)state;
#define LINE(text) {text, sizeof text - 1}   /* sizeof: the embedded NUL counts */
    static const struct {
        const char *text;
        size_t len;
    } bad[] = {
        LINE("alpha_us inf\n"), LINE("alpha_us nan\n"), LINE("alpha_us 1e30\n"), LINE("beta_ns_per_byte -1\n"),
        LINE("nranks 1e14\n"), LINE("nranks 99999999999\n"), LINE("nranks 4.5\n"), LINE("chunk_bytes 1e300\n"),
        LINE("gamma_ns_per_byte.float 1e30\n"), LINE("alpha_us 1 2\n"), LINE("alpha_us\n"),
        LINE("gamma_ns_per_byte.float7 1\n"), LINE("alpha_us 1\0\n"),
    };
#undef LINE
    struct cb_cost c;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[96];
        size_t head = (size_t)snprintf(text, sizeof text, "# comment\nbeta_ns_per_byte 0.1\n");
        memcpy(text + head, bad[i].text, bad[i].len);
        assert_int_equal(cb_cost_parse(text, head + bad[i].len, "t", &c, 0), CB_EUSAGE);
    }
    const char ok[] = "# collbench tune\n\ntransport shm\nnranks 16777216\nalpha_us 0.5\r\n  beta_ns_per_byte\t0.1  \n";
    assert_int_equal(cb_cost_parse(ok, sizeof ok - 1, "t", &c, 0), CB_OK);
    assert_int_equal(c.nranks, 16777216);

    /* the refusal, as the terminal would get it */
    char log[] = "/tmp/collbench-tune-log-XXXXXX";
    int fd = mkstemp(log), saved = dup(2);
    assert_true(fd >= 0 && saved >= 0);
    dup2(fd, 2);
    const char evil[] = "alpha_us \x1b]0;owned\x07\x1b[2J\n";
    assert_int_equal(cb_cost_parse(evil, sizeof evil - 1, "file\x1b[31m", &c, 1), CB_EUSAGE);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char got[512] = "";
    FILE *f = fdopen(fd, "r");
    rewind(f);
    size_t n = fread(got, 1, sizeof got - 1, f);
    got[n] = 0;
    fclose(f);
    unlink(log);
    assert_null(memchr(got, 0x1b, n));
    assert_null(memchr(got, 0x07, n));
    assert_non_null(strstr(got, ":1: "));
    assert_non_null(strstr(got, "\\x1b]0;owned\\x07"));
}

/* --scale: the connection ends each algorithm makes, and tcp's buffers
 * (a send and a receive FIFO per peer) multiplied out. */
static void test_scale_counts_connections_and_buffers(void **state)
{
    (void)state;
    struct cb_scale_terms t = {&cb_transport_tcp, {0}, 0.001, 0.0001};
    t.cfg.nslots = 4;
    t.cfg.slot_bytes = 65536;
    t.cfg.qps_per_conn = 2;
    t.cfg.channels = 2;
    struct cb_scale_need need;
    assert_int_equal(cb_model_scale(&t, CB_ALGO_RING, 1024, &need), 0);
    assert_int_equal(need.conn_ends, 4);   /* next and prev on 2 channels */
    assert_int_equal(need.qps, 8);
    assert_int_equal(need.buffer_bytes, 4 * 4 * 65536);
    assert_true(need.setup_s > 0.0013999 && need.setup_s < 0.0014001);
    assert_int_equal(cb_model_scale(&t, CB_ALGO_DIRECT, 1024, &need), 0);
    assert_int_equal(need.conn_ends, 2 * 1023);   /* channel 0 only */
    assert_int_equal(need.buffer_bytes, (size_t)2 * 1023 * 4 * 65536);
    assert_int_equal(cb_model_scale(&t, CB_ALGO_RD, 1024, &need), 0);
    assert_int_equal(need.conn_ends, 2 * 10);
    assert_int_equal(cb_model_scale(&t, CB_ALGO_TREE, 1024, &need), 0);
    assert_int_equal(need.conn_ends, 2 * 4 * 2);   /* inner in one tree (3 peers), leaf in the other */
    assert_int_equal(cb_model_scale(&t, CB_ALGO_MPI, 1024, &need), -1);
    t.setup_per_conn_s = -1;
    assert_int_equal(cb_model_scale(&t, CB_ALGO_RING, 2, &need), 0);
    assert_true(need.setup_s < 0);
}

/* --scale over verbs: every-pair algorithms take their slots from the
 * rank's shared pool, so a rank pins its connections' clear-to-send
 * entries and the pool at its most slots in flight, not a FIFO per peer. */
static void test_scale_shared_slots(void **state)
{
    (void)state;
    struct cb_scale_terms t = {&cb_transport_verbs, {0}, 0.001, 0.0001};
    t.cfg.nslots = 8;
    t.cfg.slot_bytes = 512 << 10;
    t.cfg.qps_per_conn = 1;
    t.cfg.channels = 1;
    const size_t entries = 4096, slot = 512 << 10, fifo = 8 * slot;   /* 2 x 8 entries of 32 B page-rounded */
    struct cb_scale_need need;
    /* one peer at a time: its FIFO's slots, and one a send holds while it is posted */
    assert_int_equal(cb_model_scale(&t, CB_ALGO_PAIRWISE, 4096, &need), 0);
    assert_int_equal(need.buffer_bytes, 2 * 4095 * entries + 9 * slot);
    assert_int_equal(cb_model_scale(&t, CB_ALGO_LINEAR, 4096, &need), 0);
    assert_int_equal(need.buffer_bytes, 2 * 4095 * entries + 9 * slot);
    /* two slices from each of 4095 peers at once, and a send's */
    assert_int_equal(cb_model_scale(&t, CB_ALGO_DIRECT, 4096, &need), 0);
    assert_int_equal(need.buffer_bytes, 2 * 4095 * entries + 8191 * slot);
    assert_int_equal(cb_model_scale(&t, CB_ALGO_RING, 4096, &need), 0);
    assert_int_equal(need.buffer_bytes, 2 * (fifo + entries));   /* own FIFOs, cleared ahead */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scale_shared_slots),
        cmocka_unit_test(test_double_tree_shapes),
        cmocka_unit_test(test_tree_matches_nccl_small),
        cmocka_unit_test(test_fold_covers_every_rank_once),
        cmocka_unit_test(test_model_picks_latency_then_bandwidth),
        cmocka_unit_test(test_model_oversubscription_hurts_rd_not_ring),
        cmocka_unit_test(test_model_direct_for_a_machine_not_at_scale),
        cmocka_unit_test(test_algorithm_table),
        cmocka_unit_test(test_tune_file_round_trip),
        cmocka_unit_test(test_model_huge_rank_counts_finish),
        cmocka_unit_test(test_tune_file_refuses_absurd_values),
        cmocka_unit_test(test_scale_counts_connections_and_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
