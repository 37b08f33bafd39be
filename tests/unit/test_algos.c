/* Every algorithm of ours on every collective it runs, 2 to 5 ranks, as
 * threads of this process (the in-process bootstrap, core/boot_local.h) over
 * shm: no mpirun, so the channels and algorithms run under the sanitizers'
 * leak check too. The data and the exact expected results are bench/'s, as
 * in a run of the benchmark, out of place and in place. The matrix is the
 * algorithm table's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algo/algo.h"
#include "bench/bench.h"
#include "core/boot_local.h"
#include "core/clock.h"
#include "core/comm.h"
#include "core/ring_order.h"

#define TIMEOUT_MS 60000
#define MAX_RANKS 5

struct rank_job {
    struct cb_boot_world *world;
    int rank;
    int wrong;   /* checks that failed on this rank */
    cb_status st;
    int reordered;   /* two channels whose rings are not in rank order */
    int connect_batch;   /* > 0: all-pairs set-up in steps of this many peers, listens counted */
};

/* Listens open at once over all ranks (threads), and the most seen: the
 * steps of cb_comm_connect_all must bound them. Set before the ranks start. */
static struct cb_transport_ops counting_shm;
static _Atomic int open_listens, most_open_listens;

static cb_status counting_listen(void *tctx, const struct cb_peer *peer, void *handle, void **lcomm)
{
    cb_status st = cb_transport_shm.listen(tctx, peer, handle, lcomm);
    int now = ++open_listens, most = most_open_listens;
    while (now > most && !atomic_compare_exchange_weak(&most_open_listens, &most, now))
        ;
    return st;
}

static cb_status counting_close_listen(void *lcomm)
{
    open_listens--;
    return cb_transport_shm.close_listen(lcomm);
}

static const size_t sizes[] = {0, 1000, 48000};
/* mulsum (odd ranks' input times 2, then a sum) on the reducing collectives
 * only: for the others the op changes nothing. */
static const struct { cb_type type; cb_op op; } datas[] = {
    {CB_FLOAT, CB_SUM}, {CB_INT32, CB_MAX}, {CB_HALF, CB_MULSUM}, {CB_INT64, CB_MULSUM}, {CB_F8E5M2, CB_MULSUM},
};

/* Where the buffers are, as the harness places them: in place, one buffer
 * holds both (the send buffer inside the receive buffer, or the reverse). */
static void place(const struct cb_bench *bench, const struct cb_bench_data *d, char *send, char *recv, int in_place,
                  char **s, char **r)
{
    size_t ts = cb_type_size(d->type), s_in_r = bench->send_in_recv(d), r_in_s = bench->recv_in_send(d);
    *s = send;
    *r = recv;
    if (in_place) {
        *r = recv;
        *s = recv + s_in_r * ts;
        if (r_in_s) {
            *s = recv;
            *r = recv + r_in_s * ts;
        }
    }
}

/* One checked run of `algo` on `coll`; returns 1 when the result is wrong. */
static int check_one(struct cb_comm *c, cb_algo algo, cb_coll coll, size_t bytes, cb_type type, cb_op op,
                     int in_place, cb_status *st)
{
    const struct cb_bench *bench = cb_bench_for(coll);
    size_t ts = cb_type_size(type);
    struct cb_bench_counts k;
    bench->counts(bytes, ts, c->nranks, &k);
    struct cb_bench_data d = {type, op, c->rank, c->nranks, cb_coll_desc(coll)->rooted ? c->nranks - 1 : -1,
                              1, k.count};
    size_t most = (k.send_elems > k.recv_elems ? k.send_elems : k.recv_elems) * ts + 64;
    char *send = cb_comm_alloc(c, most), *recv = cb_comm_alloc(c, most), *s, *r;
    char *expected = malloc(k.recv_elems * ts + 64);
    int wrong = 0;
    if (!send || !recv || !expected) {
        *st = CB_ENOMEM;
        goto free_buffers;
    }
    memset(recv, 0xab, most);
    place(bench, &d, send, recv, in_place, &s, &r);
    bench->fill(s, &d);
    struct cb_coll_args a = {coll, s, r, k.count, type, op, d.root, algo};
    *st = cb_coll_prepare(c, coll, algo, k.count, type);
    if (*st == CB_OK && op == CB_MULSUM)
        *st = cb_coll_prepare_mulsum(c, coll, k.count, type);
    if (*st == CB_OK)
        *st = cb_coll_run(c, &a);
    if (*st == CB_OK) {
        size_t n = bench->expected(expected, &d);
        wrong = memcmp(r, expected, n * ts) != 0;
        if (wrong)
            print_error("rank %d: %s %s, %d ranks, %zu bytes, %s %s, %s: wrong result\n", c->rank, cb_algo_name(algo),
                        cb_coll_name(coll), c->nranks, bytes, cb_type_name(type), cb_op_name(op),
                        in_place ? "in place" : "out of place");
    }
free_buffers:
    free(expected);
    cb_comm_free(c, recv);
    cb_comm_free(c, send);
    return wrong;
}

/* Every size, data and placement of one algorithm on one collective. */
static void run_coll(struct cb_comm *c, struct rank_job *job, cb_algo algo, cb_coll coll)
{
    const struct cb_algo_desc *desc = cb_algo_desc(algo);
    int reduces = cb_coll_desc(coll)->reduces;
    for (int in_place = 0; in_place < 2 && job->st == CB_OK; in_place++) {
        if (in_place && desc->in_place && !desc->in_place(coll))
            continue;
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes && job->st == CB_OK; s++)
            for (size_t t = 0; t < sizeof datas / sizeof *datas && job->st == CB_OK; t++)
                if (reduces || datas[t].op != CB_MULSUM)
                    job->wrong += check_one(c, algo, coll, sizes[s], datas[t].type, datas[t].op, in_place,
                                            &job->st);
    }
}

static void run_matrix(struct cb_comm *c, struct rank_job *job)
{
    for (int a = 1; a < CB_NALGOS && job->st == CB_OK; a++) {
        const struct cb_algo_desc *desc = cb_algo_desc((cb_algo)a);
        for (int i = 0; !desc->not_ours && i < CB_NCOLLS && desc->impl[i].run && job->st == CB_OK; i++)
            run_coll(c, job, (cb_algo)a, desc->impl[i].coll);
    }
}

/* Channel 0: the rail-local order of hosts of two ranks each (the odd
 * rank out, with five, on a host of its own: rank order); channel 1: the
 * ranks backwards (four), or by a stride of 2 (five). */
static void reorder_rings(struct cb_comm *c)
{
    int n = c->nranks, host_of[MAX_RANKS], order[2 * MAX_RANKS];
    for (int r = 0; r < n; r++)
        host_of[r] = r / 2;
    cb_ring_order(n, 1, host_of, order);
    for (int pos = 0; pos < n; pos++)
        order[n + pos] = n % 2 ? pos * 2 % n : n - 1 - pos;
    cb_comm_set_ring_order(c, order);
}

static void *rank_main(void *arg)
{
    struct rank_job *job = arg;
    struct cb_boot *boot = NULL;
    struct cb_comm *c = NULL;
    struct cb_transport_config cfg;
    job->st = cb_boot_local_join(job->world, job->rank, TIMEOUT_MS, &boot);
    if (job->st != CB_OK)
        return NULL;
    memset(&cfg, 0, sizeof cfg);
    cfg.rank = job->rank;
    cfg.nranks = cb_boot_size(boot);
    snprintf(cfg.host, sizeof cfg.host, "%s", cb_boot_host(boot, job->rank));
    memset(cfg.token, 5, sizeof cfg.token);
    cfg.slot_bytes = 16 * 1024;   /* small: many rounds and slices, lent and offered paths */
    cfg.nslots = 4;
    cfg.channels = job->reordered ? 2 : 1;
    cfg.timeout_ms = TIMEOUT_MS;
    cfg.oversubscribed = 1;       /* more threads than cores: wait by sleeping */
    job->st = cb_comm_init(boot, "shm", &cfg, &c);
    if (job->st == CB_OK) {
        if (job->reordered)
            reorder_rings(c);
        if (job->connect_batch) {
            c->connect_batch = job->connect_batch;
            c->ops = &counting_shm;
            job->st = cb_comm_connect_all(c);   /* first: no ring has connected a neighbour yet */
        }
        if (job->st == CB_OK)
            run_matrix(c, job);
        cb_comm_destroy(c);
    }
    cb_boot_finalize(boot);
    return NULL;
}

static void run_ranks_batched(int n, int reordered, int connect_batch)
{
    struct cb_boot_world *world = NULL;
    struct rank_job jobs[MAX_RANKS];
    pthread_t threads[MAX_RANKS];
    assert_int_equal(cb_boot_world_create(n, &world), CB_OK);
    for (int r = 0; r < n; r++) {
        jobs[r] = (struct rank_job){world, r, 0, CB_OK, reordered, connect_batch};
        assert_int_equal(pthread_create(&threads[r], NULL, rank_main, &jobs[r]), 0);
    }
    for (int r = 0; r < n; r++)
        assert_int_equal(pthread_join(threads[r], NULL), 0);
    cb_boot_world_destroy(world);
    for (int r = 0; r < n; r++) {
        if (jobs[r].st != CB_OK)
            fail_msg("%d ranks: rank %d stopped with status %d", n, r, jobs[r].st);
        if (jobs[r].wrong)
            fail_msg("%d ranks: rank %d had %d wrong results", n, r, jobs[r].wrong);
    }
}

static void run_ranks_ordered(int n, int reordered) { run_ranks_batched(n, reordered, 0); }
static void run_ranks(int n) { run_ranks_ordered(n, 0); }

static void test_two_ranks(void **state) { (void)state; run_ranks(2); }
static void test_three_ranks(void **state) { (void)state; run_ranks(3); }
static void test_four_ranks(void **state) { (void)state; run_ranks(4); }
static void test_five_ranks(void **state) { (void)state; run_ranks(5); }
/* Rings in other orders than rank order (rail-local, and any other):
 * every algorithm still bit-exact */
static void test_four_ranks_reordered(void **state) { (void)state; run_ranks_ordered(4, 1); }
static void test_five_ranks_reordered(void **state) { (void)state; run_ranks_ordered(5, 1); }

/* All-pairs set-up (direct, pairwise) in steps of 2 peers: every result
 * still exact, and never more than 2 listens per rank open at once (one
 * step for all 4 peers holds 4 per rank, 20 in all, at the closing barrier). */
static void test_five_ranks_connect_in_steps(void **state)
{
    (void)state;
    counting_shm = cb_transport_shm;
    counting_shm.listen = counting_listen;
    counting_shm.close_listen = counting_close_listen;
    open_listens = most_open_listens = 0;
    run_ranks_batched(5, 0, 2);
    assert_int_equal(open_listens, 0);
    assert_in_range(most_open_listens, 1, 5 * 2);
}

/* A rank that never comes is named within the timeout, not waited for. */
static void test_missing_rank_times_out(void **state)
{
    (void)state;
    struct cb_boot_world *world = NULL;
    struct cb_boot *boot = NULL;
    assert_int_equal(cb_boot_world_create(2, &world), CB_OK);
    assert_int_equal(cb_boot_local_join(world, 0, 200, &boot), CB_ETIMEOUT);
    assert_null(boot);
    cb_boot_world_destroy(world);
}

/* A link that is down: progress fails, as verbs' does once its port has been
 * down past the QPs' retry budget. */
static cb_status link_down_progress(void *tctx)
{
    (void)tctx;
    return CB_EDEVICE;
}

struct watched_rank {
    struct cb_boot_world *world;
    int rank;
    cb_status init_st, barrier_st;
    double barrier_s;
    _Atomic int *rank0_done;
};

/* Rank 0 waits out-of-band (a barrier rank 1 comes to only afterwards)
 * while its data path fails: the wait ends with the data path's error. */
static void *watched_rank_main(void *arg)
{
    struct watched_rank *job = arg;
    struct cb_boot *boot = NULL;
    struct cb_comm *c = NULL;
    struct cb_transport_config cfg = {.rank = job->rank, .nranks = 2, .slot_bytes = 4096, .nslots = 2,
                                      .timeout_ms = TIMEOUT_MS, .oversubscribed = 1};
    job->init_st = cb_boot_local_join(job->world, job->rank, TIMEOUT_MS, &boot);
    if (job->init_st != CB_OK)
        return NULL;
    snprintf(cfg.host, sizeof cfg.host, "%s", cb_boot_host(boot, job->rank));
    job->init_st = cb_comm_init(boot, "shm", &cfg, &c);
    if (job->init_st == CB_OK && job->rank == 0) {
        struct cb_transport_ops link_down = *c->ops;
        const struct cb_transport_ops *ops = c->ops;
        link_down.progress = link_down_progress;
        c->ops = &link_down;
        double t0 = cb_now_s();
        job->barrier_st = cb_boot_barrier(boot, TIMEOUT_MS, "watched barrier");
        job->barrier_s = cb_now_s() - t0;
        c->ops = ops;
        *job->rank0_done = 1;
    }
    while (job->rank == 1 && !*job->rank0_done)
        sched_yield();
    if (job->init_st == CB_OK)
        cb_comm_destroy(c);
    cb_boot_finalize(boot);
    return NULL;
}

static void test_boot_wait_sees_data_path_fail(void **state)
{
    (void)state;
    struct cb_boot_world *world = NULL;
    struct watched_rank jobs[2];
    pthread_t threads[2];
    _Atomic int rank0_done = 0;
    assert_int_equal(cb_boot_world_create(2, &world), CB_OK);
    for (int r = 0; r < 2; r++) {
        jobs[r] = (struct watched_rank){world, r, CB_OK, CB_OK, 0, &rank0_done};
        assert_int_equal(pthread_create(&threads[r], NULL, watched_rank_main, &jobs[r]), 0);
    }
    for (int r = 0; r < 2; r++)
        assert_int_equal(pthread_join(threads[r], NULL), 0);
    cb_boot_world_destroy(world);
    assert_int_equal(jobs[0].init_st, CB_OK);
    assert_int_equal(jobs[1].init_st, CB_OK);
    assert_int_equal(jobs[0].barrier_st, CB_EDEVICE);
    assert_true(jobs[0].barrier_s < 5.0);   /* not the 60 s timeout */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_ranks),   cmocka_unit_test(test_three_ranks),
        cmocka_unit_test(test_four_ranks),  cmocka_unit_test(test_five_ranks),
        cmocka_unit_test(test_four_ranks_reordered), cmocka_unit_test(test_five_ranks_reordered),
        cmocka_unit_test(test_five_ranks_connect_in_steps), cmocka_unit_test(test_missing_rank_times_out),
        cmocka_unit_test(test_boot_wait_sees_data_path_fail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
