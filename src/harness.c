#include "harness.h"
#include "clock.h"

#include <stdlib.h>
#include <string.h>
#include "../bench/bench.h"
#include "data.h"
#include "mpi_ref.h"

struct buffers {
    char *send, *recv, *expected;
    size_t bytes;
};

/* One placement of one size: where the buffers are for this run. */
struct placement {
    void *send, *recv;
    int in_place;
};

static size_t next_size(size_t size, const struct cb_options *o)
{
    if (o->step_factor > 1) {
        size_t n = (size_t)((double)size * o->step_factor);
        return n > size ? n : size + 1;
    }
    return size + (o->step_bytes ? o->step_bytes : 1);
}

static cb_status alloc_buffers(struct cb_comm *c, const struct cb_options *o, struct buffers *b)
{
    size_t most = 0;
    for (int t = 0; t < o->ntypes; t++) {
        struct cb_bench_counts k;
        size_t ts = cb_type_size(o->types[t]);
        cb_bench_for(o->coll)->counts(o->max_bytes, ts, c->nranks, &k);
        size_t need = (k.send_elems > k.recv_elems ? k.send_elems : k.recv_elems) * ts;
        if (need > most)
            most = need;
    }
    b->bytes = most + 64;   /* room for -u */
    b->send = cb_comm_alloc(c, b->bytes);   /* the transport's where it moves data without a copy */
    b->recv = cb_comm_alloc(c, b->bytes);
    b->expected = aligned_alloc(4096, (b->bytes + 4095) & ~(size_t)4095);
    if (!b->send || !b->recv || !b->expected) {
        cb_log_error("cannot allocate 3 buffers of %zu bytes: use a smaller -e", b->bytes);
        return CB_ENOMEM;
    }
    memset(b->send, 0, b->bytes);
    memset(b->recv, 0, b->bytes);
    return CB_OK;
}

static void free_buffers(struct cb_comm *c, struct buffers *b)
{
    cb_comm_free(c, b->send);
    cb_comm_free(c, b->recv);
    free(b->expected);
}

static struct placement place(const struct buffers *b, const struct cb_bench *bench,
                              const struct cb_bench_data *d, int in_place, int unalign)
{
    size_t ts = cb_type_size(d->type), skew = unalign ? ts : 0;
    struct placement p = {b->send + skew, b->recv + skew, in_place};
    if (in_place) {
        size_t s_in_r = bench->send_in_recv(d), r_in_s = bench->recv_in_send(d);
        p.recv = b->recv + skew;
        p.send = (char *)p.recv + s_in_r * ts;
        if (r_in_s) {
            p.send = b->recv + skew;
            p.recv = (char *)p.send + r_in_s * ts;
        }
    }
    return p;
}

/* The send data of this placement: in place, the input lives in the receive buffer. */
static void fill_input(const struct cb_bench *bench, const struct placement *p, const struct cb_bench_data *d)
{
    bench->fill(p->send, d);
}

/* Ours, or MPI's own collective for comparison. */
static cb_status run_one(struct cb_comm *c, const struct cb_options *o, const struct cb_coll_args *a)
{
    return o->mpi_reference ? cb_mpi_ref_run(c, a) : cb_coll_run(c, a);
}

static cb_status run_ops(struct cb_comm *c, const struct cb_options *o, const struct cb_coll_args *a, int n)
{
    for (int i = 0; i < n; i++) {
        cb_status st = run_one(c, o, a);
        if (st != CB_OK)
            return st;
    }
    return CB_OK;
}

/* Combine ranks' throughput times as -a says: 0 rank 0, 1 mean, 2 min, 3 max. */
static cb_status combine_time(struct cb_comm *c, int average, double *t)
{
    double *all = malloc(sizeof(double) * (size_t)c->nranks);
    if (!all)
        return CB_ENOMEM;
    cb_status st = cb_boot_allgather(c->boot, t, all, sizeof *t, c->cfg.timeout_ms, "combining times");
    if (st == CB_OK) {
        double acc = all[0];
        for (int r = 1; r < c->nranks; r++) {
            if (average == 1)
                acc += all[r];
            else if (average == 2 && all[r] < acc)
                acc = all[r];
            else if (average == 3 && all[r] > acc)
                acc = all[r];
        }
        *t = average == 1 ? acc / c->nranks : acc;
    }
    free(all);
    return st;
}

static cb_status time_throughput(struct cb_comm *c, const struct cb_options *o, const struct cb_coll_args *a,
                                 double *us)
{
    cb_status st = run_ops(c, o, a, o->warmup * o->agg_iters);
    if (st == CB_OK)
        st = cb_boot_barrier(c->boot, c->cfg.timeout_ms, "before timing");
    if (st != CB_OK)
        return st;
    double t0 = cb_now_s();
    st = run_ops(c, o, a, o->iters * o->agg_iters);
    double t = (cb_now_s() - t0) / ((double)o->iters * o->agg_iters);
    if (st == CB_OK)
        st = combine_time(c, o->average, &t);
    *us = t * 1e6;
    return st;
}

/* Each iteration starts together (untimed barrier); each rank times its own;
 * rank 0 gets every rank's samples and takes the maximum per iteration. */
static cb_status time_per_iteration(struct cb_comm *c, const struct cb_options *o,
                                    const struct cb_coll_args *a, struct cb_result_half *h)
{
    size_t n = (size_t)o->iters;
    double *mine = malloc(sizeof(double) * n);
    double *all = c->rank == 0 ? malloc(sizeof(double) * n * (size_t)c->nranks) : NULL;
    cb_status st = CB_ENOMEM;
    if (!mine || (c->rank == 0 && !all))
        goto free_samples;
    for (size_t i = 0; i < n; i++) {
        st = cb_boot_barrier(c->boot, c->cfg.timeout_ms, "per-iteration barrier");
        if (st != CB_OK)
            goto free_samples;
        double t0 = cb_now_s();
        st = run_ops(c, o, a, o->agg_iters);
        mine[i] = (cb_now_s() - t0) / o->agg_iters * 1e6;
        if (st != CB_OK)
            goto free_samples;
    }
    st = cb_boot_gather(c->boot, mine, all, sizeof(double) * n, c->cfg.timeout_ms, "collecting samples");
    if (st != CB_OK || c->rank != 0)
        goto free_samples;
    h->iter_max_us = malloc(sizeof(double) * n);
    if (!h->iter_max_us) {
        st = CB_ENOMEM;
        goto free_samples;
    }
    h->have_iter = 1;
    h->niters = n;
    h->per_rank_us = all;
    all = NULL;
    h->slowest_rank = cb_iter_max_over_ranks(h->per_rank_us, c->nranks, n, h->iter_max_us, &h->slowest_count);
    cb_pct_compute(h->iter_max_us, n, &h->iter);
free_samples:
    free(all);
    free(mine);
    return st;
}

static cb_status check_once(struct cb_comm *c, const struct cb_options *o, const struct cb_bench *bench,
                            const struct buffers *b,
                            const struct placement *p, struct cb_coll_args *a,
                            struct cb_bench_data d, long long *wrong)
{
    size_t ts = cb_type_size(d.type);
    cb_data_poison(b->recv, b->bytes, d.seed);
    fill_input(bench, p, &d);
    cb_status st = run_one(c, o, a);
    if (st != CB_OK)
        return st;
    size_t n = bench->expected(b->expected, &d), first = 0;
    size_t bad = n ? cb_data_count_wrong(a->recvbuf, b->expected, n, d.type, &first) : 0;
    if (bad) {
        cb_log_error("%s %s %s %s, %zu B: %zu wrong elements, the first at index %zu (got %g, expected %g)",
                     cb_coll_name(bench->coll), p->in_place ? "in-place" : "out-of-place",
                     cb_type_name(d.type), cb_op_name(d.op), a->count * ts, bad, first,
                     cb_load(a->recvbuf, first, d.type), cb_load(b->expected, first, d.type));
    }
    *wrong += (long long)bad;
    return CB_OK;
}

/* -c N checked iterations, each with its own seed and a poisoned receive
 * buffer so stale data cannot pass; wrong counts summed over ranks. */
static cb_status check_placement(struct cb_comm *c, const struct cb_options *o, const struct cb_bench *bench,
                                 const struct buffers *b, const struct placement *p,
                                 struct cb_coll_args *a, struct cb_bench_data d, long long *nwrong)
{
    long long wrong = 0;
    for (int k = 0; k < o->check_iters; k++) {
        d.seed = o->seed + 1000003ull * (uint64_t)(k + 1);
        cb_status st = check_once(c, o, bench, b, p, a, d, &wrong);
        if (st != CB_OK)
            return st;
    }
    double total = (double)wrong;
    cb_status st = cb_boot_allreduce_sum(c->boot, &total, 1, c->cfg.timeout_ms, "summing wrong elements");
    *nwrong = (long long)total;
    return st;
}

static cb_status measure_placement(struct cb_comm *c, const struct cb_options *o, const struct cb_bench *bench,
                                   const struct buffers *b, struct cb_coll_args *a,
                                   const struct cb_bench_data *d, int in_place, struct cb_result_half *h)
{
    struct placement p = place(b, bench, d, in_place, o->unalign);
    a->sendbuf = p.send;
    a->recvbuf = p.recv;
    fill_input(bench, &p, d);
    cb_status st = time_throughput(c, o, a, &h->time_us);
    if (st == CB_OK && o->per_iter)
        st = time_per_iteration(c, o, a, h);
    h->nwrong = -1;
    if (st == CB_OK && o->check_iters > 0)
        st = check_placement(c, o, bench, b, &p, a, *d, &h->nwrong);
    h->ran = 1;
    return st;
}

/* auto's choice, made once per size on this size's out-of-place buffers, so
 * the timed loop runs one algorithm and the table can say which. */
static cb_status pick_algo(struct cb_comm *c, const struct cb_options *o, const struct cb_bench *bench,
                           const struct buffers *b, struct cb_coll_args *a, const struct cb_bench_data *d,
                           struct cb_result *r)
{
    if (o->algo != CB_ALGO_AUTO) {   /* nothing to time; measure_placement fills the buffers */
        r->algo = a->algo;
        return CB_OK;
    }
    struct placement p = place(b, bench, d, 0, o->unalign);
    a->sendbuf = p.send;
    a->recvbuf = p.recv;
    fill_input(bench, &p, d);
    cb_status st = cb_coll_pick(c, a, &r->algo, &r->trial);
    a->algo = r->algo;
    return st;
}

static cb_status measure_size(struct cb_comm *c, const struct cb_options *o, const struct buffers *b,
                              cb_type t, cb_op op, size_t size, struct cb_result *r)
{
    const struct cb_bench *bench = cb_bench_for(o->coll);
    struct cb_bench_counts k;
    bench->counts(size, cb_type_size(t), c->nranks, &k);
    struct cb_bench_data d = {t, op, c->rank, c->nranks, o->root, o->seed, k.count};
    struct cb_coll_args a = {o->coll, NULL, NULL, k.count, t, op, o->root, o->algo};
    memset(r, 0, sizeof *r);
    r->coll = o->coll;
    r->bytes = k.size_bytes;
    r->count = k.count_col;
    r->type = t;
    r->op = op;
    r->root = bench->has_root ? o->root : -1;
    r->algo = CB_ALGO_MPI;
    cb_status st = o->mpi_reference ? CB_OK : pick_algo(c, o, bench, b, &a, &d, r);
    if (st == CB_OK)
        st = measure_placement(c, o, bench, b, &a, &d, 0, &r->oop);
    if (st == CB_OK && (!o->mpi_reference || cb_mpi_ref_in_place(o->coll)))
        st = measure_placement(c, o, bench, b, &a, &d, 1, &r->ip);
    double factor = bench->busbw_factor(c->nranks);
    struct cb_result_half *halves[2] = {&r->oop, &r->ip};
    for (int i = 0; i < 2; i++) {
        double secs = halves[i]->time_us * 1e-6;
        halves[i]->algbw = secs > 0 ? (double)r->bytes / 1e9 / secs : 0;
        halves[i]->busbw = halves[i]->algbw * factor;
    }
    return st;
}

static cb_status keep_result(struct cb_sweep *s, const struct cb_result *r)
{
    if (s->nresults == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        struct cb_result *p = realloc(s->results, sizeof *p * (size_t)cap);
        if (!p)
            return CB_ENOMEM;
        s->results = p;
        s->cap = cap;
    }
    s->results[s->nresults++] = *r;
    cb_summary_add(&s->summary, r);
    return CB_OK;
}

static void free_result(struct cb_result *r)
{
    free(r->oop.iter_max_us);
    free(r->oop.per_rank_us);
    free(r->ip.iter_max_us);
    free(r->ip.per_rank_us);
}

static cb_status sweep_sizes(struct cb_comm *c, const struct cb_options *o, const struct buffers *b,
                             cb_type t, cb_op op, FILE *table, struct cb_sweep *s)
{
    for (size_t size = o->min_bytes; size <= o->max_bytes; size = next_size(size, o)) {
        struct cb_result r;
        cb_status st = measure_size(c, o, b, t, op, size, &r);
        if (st != CB_OK) {
            free_result(&r);
            return st;
        }
        s->wrong += (r.oop.nwrong > 0 ? r.oop.nwrong : 0) + (r.ip.nwrong > 0 ? r.ip.nwrong : 0);
        if (c->rank != 0) {
            free_result(&r);
            continue;
        }
        cb_table_row(table, &r, o->per_iter);
        fflush(table);
        if ((st = keep_result(s, &r)) != CB_OK) {
            free_result(&r);
            return st;
        }
    }
    return CB_OK;
}

static cb_status prepare(struct cb_comm *c, const struct cb_options *o)
{
    for (int t = 0; t < o->ntypes && !o->mpi_reference; t++) {
        struct cb_bench_counts k;
        cb_bench_for(o->coll)->counts(o->max_bytes, cb_type_size(o->types[t]), c->nranks, &k);
        cb_status st = cb_coll_prepare(c, o->coll, o->algo, k.count, o->types[t]);
        if (st != CB_OK)
            return st;
    }
    return CB_OK;
}

cb_status cb_harness_sweep(struct cb_comm *c, const struct cb_options *o, FILE *table, struct cb_sweep *s,
                           void (*on_cycle)(const struct cb_sweep *, void *), void *arg)
{
    struct buffers b = {0};
    cb_status st = alloc_buffers(c, o, &b);
    if (st == CB_OK)
        st = prepare(c, o);
    for (int cycle = 0; st == CB_OK && (o->cycles == 0 || cycle < o->cycles); cycle++) {
        for (int t = 0; t < o->ntypes && st == CB_OK; t++)
            for (int p = 0; p < o->nops && st == CB_OK; p++)
                st = sweep_sizes(c, o, &b, o->types[t], o->ops[p], table, s);
        if (st == CB_OK && c->rank == 0 && on_cycle)
            on_cycle(s, arg);
    }
    free_buffers(c, &b);
    return st;
}

void cb_harness_free(struct cb_sweep *s)
{
    for (int i = 0; i < s->nresults; i++)
        free_result(&s->results[i]);
    free(s->results);
    memset(s, 0, sizeof *s);
}
