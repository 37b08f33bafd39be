#include "harness.h"
#include "core/clock.h"
#include "core/clock_sync.h"
#include "core/job.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "bench/bench.h"
#include "core/job.h"
#include "data.h"
#include "algo/algo.h"
#include "sizes.h"
#include "core/checked.h"

struct buffers {
    char *send, *recv, *expected;
    size_t bytes;
};

/* One placement of one size: where the buffers are for this run. */
struct placement {
    void *send, *recv;
    int in_place;
};

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
    /* room for -u N elements of up to 16 bytes (N <= 64, options.c) */
    if (cb_size_add(most, 64 + (size_t)o->unalign * 16, &b->bytes) != 0 || b->bytes > SIZE_MAX - 4095) {
        cb_log_error("buffers of -e %zu B cannot be sized: give a smaller -e", o->max_bytes);
        return CB_EUSAGE;
    }
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
    size_t ts = cb_type_size(d->type), skew = (size_t)unalign * ts;
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

/* A signal asked to stop: checked only between whole operations and sizes,
 * the points where this rank can leave without a half-sent message. */
static int stopping(const struct cb_options *o)
{
    return o->stop && *o->stop;
}

static cb_status run_ops(struct cb_comm *c, const struct cb_options *o, const struct cb_coll_args *a, long n)
{
    for (long i = 0; i < n; i++) {
        if (stopping(o))
            return CB_ESTOPPED;
        cb_status st = cb_coll_run(c, a);
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

/* With several algorithms, each one's timed operations are cut into this
 * many batches, taken in turn: a slow spell of the machine (other jobs, the
 * scheduler) then falls on all of them alike. */
#define COMPARE_BATCHES 10

/* With several runs taken in turn, one untimed operation of the run about to
 * be timed: otherwise its caches hold what the run before it left, and at
 * cache-resident sizes that, not the algorithm, decides its time. */
static cb_status settle(struct cb_comm *c, const struct cb_coll_args *a, int n)
{
    return n > 1 ? cb_coll_run(c, a) : CB_OK;
}

/* The mean time of one operation of each of the n runs `a`, in us. */
static cb_status time_throughput(struct cb_comm *c, const struct cb_options *o, struct cb_coll_args *const *a,
                                 int n, double *us)
{
    /* -G N: nccl-tests captures the -n x -m operations in a CUDA graph and
     * launches it N times; here they simply run N times over */
    long total = (long)o->iters * o->agg_iters * (o->nccl.graph > 0 ? o->nccl.graph : 1);
    int batches = n > 1 ? (int)(total < COMPARE_BATCHES ? total : COMPARE_BATCHES) : 1;
    double secs[CB_MAX_COMPARED] = {0};
    cb_status st = CB_OK;
    for (int k = 0; k < n && st == CB_OK; k++)
        st = run_ops(c, o, a[k], (long)o->warmup * o->agg_iters);
    for (int b = 0; b < batches && st == CB_OK; b++) {
        for (int k = 0; k < n && st == CB_OK; k++) {
            long ops = total * (b + 1) / batches - total * b / batches;
            if ((st = settle(c, a[k], n)) != CB_OK ||
                (st = cb_boot_barrier(c->boot, c->cfg.timeout_ms, "before timing")) != CB_OK)
                break;
            double t0 = cb_now_s();
            st = run_ops(c, o, a[k], ops);
            secs[k] += cb_now_s() - t0;
        }
    }
    for (int k = 0; k < n && st == CB_OK; k++) {
        double t = secs[k] / (double)total;
        st = combine_time(c, o->average, &t);
        us[k] = t * 1e6;
    }
    return st;
}

/* Rank 0 gets every rank's n samples and arrival times, keeps the maximum
 * time per iteration, and names the rank that arrived last most often. */
static cb_status keep_samples(struct cb_comm *c, const double *mine, const double *arrive, size_t n,
                              size_t skip, struct cb_result_half *h)
{
    size_t bytes = sizeof(double) * n * (size_t)c->nranks;
    double *all = c->rank == 0 ? malloc(bytes) : NULL, *all_arrive = c->rank == 0 ? malloc(bytes) : NULL;
    cb_status st = c->rank != 0 || (all && all_arrive) ? CB_OK : CB_ENOMEM;
    if (st == CB_OK)
        st = cb_boot_gather(c->boot, mine, all, sizeof(double) * n, c->cfg.timeout_ms, "collecting samples");
    if (st == CB_OK)
        st = cb_boot_gather(c->boot, arrive, all_arrive, sizeof(double) * n, c->cfg.timeout_ms,
                            "collecting arrival times");
    if (st != CB_OK || c->rank != 0)
        goto free_all;
    h->iter_max_us = malloc(sizeof(double) * n);
    if (!h->iter_max_us) {
        st = CB_ENOMEM;
        goto free_all;
    }
    h->have_iter = 1;
    h->niters = n;
    h->per_rank_us = all;
    all = NULL;
    cb_iter_max_over_ranks(h->per_rank_us, c->nranks, n, h->iter_max_us, &h->slowest_count);
    h->skip = skip;   /* -K: the statistics leave out the first iterations; the samples keep them */
    cb_pct_compute(h->iter_max_us + skip, n - skip, &h->iter);
    /* later than a typical iteration lasts: it held the others up */
    h->slowest_rank = cb_last_arrival(all_arrive, c->nranks, n, h->iter.p50 * 1e-6, &h->slowest_count);
free_all:
    free(all);
    free(all_arrive);
    return st;
}

/* Each iteration starts together (untimed barrier); each rank times its
 * own, and notes when it entered on rank 0's clock: the straggler is the
 * rank that arrives last (a rank descheduled or busy after the barrier
 * enters late, finishes quickly, and makes the others wait). With several
 * runs, iteration i of each follows iteration i of the one before and an
 * untimed one of its own (settle). */
static cb_status time_per_iteration(struct cb_comm *c, const struct cb_options *o, struct cb_coll_args *const *a,
                                    int n, struct cb_result_half *const *h)
{
    size_t iters = (size_t)o->iters;
    double *mine = malloc(sizeof(double) * iters * (size_t)n), offset = 0;
    double *arrive = malloc(sizeof(double) * iters * (size_t)n);
    cb_status st = mine && arrive ? CB_OK : CB_ENOMEM;
    st = cb_job_agree(c->boot, st, c->cfg.timeout_ms, "allocating per-iteration samples");
    if (st == CB_OK)
        st = cb_clock_offset(c->boot, c->cfg.timeout_ms, &offset);
    for (size_t i = 0; i < iters && st == CB_OK; i++) {
        for (int k = 0; k < n && st == CB_OK; k++) {
            if ((st = settle(c, a[k], n)) != CB_OK ||
                (st = cb_boot_barrier(c->boot, c->cfg.timeout_ms, "per-iteration barrier")) != CB_OK)
                break;
            double t0 = cb_now_s();
            st = run_ops(c, o, a[k], o->agg_iters);
            mine[(size_t)k * iters + i] = (cb_now_s() - t0) / o->agg_iters * 1e6;
            arrive[(size_t)k * iters + i] = t0 - offset;
        }
    }
    for (int k = 0; k < n && st == CB_OK; k++)
        st = keep_samples(c, mine + (size_t)k * iters, arrive + (size_t)k * iters, iters,
                          (size_t)o->nccl.per_iter_skip, h[k]);
    free(mine);
    free(arrive);
    return st;
}

static cb_status check_once(struct cb_comm *c, const struct cb_bench *bench, const struct buffers *b,
                            const struct placement *p, struct cb_coll_args *a,
                            struct cb_bench_data d, long long *wrong)
{
    size_t ts = cb_type_size(d.type);
    cb_data_poison(b->recv, b->bytes, d.seed);
    fill_input(bench, p, &d);
    cb_status st = cb_coll_run(c, a);
    if (st != CB_OK)
        return st;
    size_t n = bench->expected(b->expected, &d), first = 0;
    size_t bad = n ? cb_data_count_wrong(a->recvbuf, b->expected, n, d.type, &first) : 0;
    if (bad) {
        cb_log_error("%s %s %s %s %s, %zu B: %zu wrong elements, the first at index %zu (got %g, expected %g)",
                     cb_coll_name(bench->coll), cb_algo_name(a->algo), p->in_place ? "in-place" : "out-of-place",
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
        cb_status st = check_once(c, bench, b, p, a, d, &wrong);
        if (st != CB_OK)
            return st;
    }
    double total = (double)wrong;
    cb_status st = cb_boot_allreduce_sum(c->boot, &total, 1, c->cfg.timeout_ms, "summing wrong elements");
    *nwrong = (long long)total;
    return st;
}

/* One --algo entry at one size: its arguments and its result. */
struct entry {
    struct cb_coll_args a;
    struct cb_result *r;
};

/* Time and check every entry that has this placement (an algorithm may
 * lack in-place for some collectives: MPI's reduce_scatter), timed in turn. */
static cb_status measure_placement(struct cb_comm *c, const struct cb_options *o, const struct cb_bench *bench,
                                   const struct buffers *b, struct entry *e, int n,
                                   const struct cb_bench_data *d, int in_place)
{
    struct placement p = place(b, bench, d, in_place, o->unalign);
    struct cb_coll_args *run[CB_MAX_COMPARED];
    struct cb_result_half *h[CB_MAX_COMPARED];
    double us[CB_MAX_COMPARED];
    int m = 0;
    for (int k = 0; k < n; k++) {
        const struct cb_algo_desc *desc = cb_algo_desc(e[k].a.algo);
        if (in_place && desc && desc->in_place && !desc->in_place(o->coll))
            continue;
        e[k].a.sendbuf = p.send;
        e[k].a.recvbuf = p.recv;
        run[m] = &e[k].a;
        h[m++] = in_place ? &e[k].r->ip : &e[k].r->oop;
    }
    if (m == 0)
        return CB_OK;
    fill_input(bench, &p, d);
    cb_status st = time_throughput(c, o, run, m, us);
    if (st == CB_OK && o->per_iter)
        st = time_per_iteration(c, o, run, m, h);
    for (int k = 0; k < m; k++) {
        h[k]->time_us = us[k];
        h[k]->nwrong = -1;
        if (st == CB_OK && o->check_iters > 0)
            st = check_placement(c, o, bench, b, &p, run[k], *d, &h[k]->nwrong);
        h[k]->ran = 1;
    }
    return st;
}

/* auto's choice, made once per size on this size's out-of-place buffers, so
 * the timed loop runs one algorithm and the table can say which. */
static cb_status pick_algo(struct cb_comm *c, const struct cb_options *o, const struct cb_bench *bench,
                           const struct buffers *b, const struct cb_bench_data *d, struct entry *e)
{
    struct placement p = place(b, bench, d, 0, o->unalign);
    e->a.sendbuf = p.send;
    e->a.recvbuf = p.recv;
    fill_input(bench, &p, d);
    cb_status st = cb_coll_pick(c, &e->a, &e->r->algo, &e->r->trial);
    e->a.algo = e->r->algo;
    return st;
}

/* One size: a result per --algo entry, r[0 .. o->nalgos). */
static cb_status measure_size(struct cb_comm *c, const struct cb_options *o, const struct buffers *b,
                              cb_type t, cb_op op, int root, size_t size, struct cb_result *r)
{
    const struct cb_bench *bench = cb_bench_for(o->coll);
    struct cb_bench_counts k;
    bench->counts(size, cb_type_size(t), c->nranks, &k);
    struct cb_bench_data d = {t, op, c->rank, c->nranks, root, o->seed, k.count};
    struct entry e[CB_MAX_COMPARED];
    cb_status st = CB_OK;
    for (int i = 0; i < o->nalgos; i++) {
        r[i] = (struct cb_result){.coll = o->coll, .bytes = k.size_bytes, .count = k.count_col,
                                  .param_count = k.count, .type = t, .op = op,
                                  .root = cb_coll_desc(o->coll)->rooted ? root : -1, .algo = o->algos[i],
                                  .asked = o->algos[i], .compared = o->nalgos > 1};
        e[i] = (struct entry){{o->coll, NULL, NULL, k.count, t, op, root, o->algos[i]}, &r[i]};
        if (st == CB_OK && o->algos[i] == CB_ALGO_AUTO)
            st = pick_algo(c, o, bench, b, &d, &e[i]);
    }
    if (st == CB_OK)
        st = measure_placement(c, o, bench, b, e, o->nalgos, &d, 0);
    if (st == CB_OK)
        st = measure_placement(c, o, bench, b, e, o->nalgos, &d, 1);
    double factor = bench->busbw_factor(c->nranks);
    for (int i = 0; i < o->nalgos; i++) {
        struct cb_result_half *halves[2] = {&r[i].oop, &r[i].ip};
        for (int j = 0; j < 2; j++) {
            double secs = halves[j]->time_us * 1e-6;
            halves[j]->algbw = secs > 0 ? (double)r[i].bytes / 1e9 / secs : 0;
            halves[j]->busbw = halves[j]->algbw * factor;
        }
    }
    return st;
}

/* Room for `more` results in a list of *cap. */
static cb_status reserve(struct cb_result **list, int *cap, int n, int more)
{
    if (n + more <= *cap)
        return CB_OK;
    int want = *cap ? *cap : 64;
    while (want < n + more && want <= INT_MAX / 2)
        want *= 2;
    struct cb_result *p = want >= n + more ? realloc(*list, sizeof *p * (size_t)want) : NULL;
    if (!p) {
        cb_log_error("out of memory keeping %d results: use fewer sizes or -N 0", n + more);
        return CB_ENOMEM;
    }
    *list = p;
    *cap = want;
    return CB_OK;
}

static cb_status keep_result(struct cb_sweep *s, const struct cb_result *r)
{
    cb_status st = reserve(&s->pending, &s->pending_cap, s->npending, 1);
    if (st == CB_OK)
        s->pending[s->npending++] = *r;
    return st;
}

static void free_result(struct cb_result *r)
{
    free(r->oop.iter_max_us);
    free(r->oop.per_rank_us);
    free(r->ip.iter_max_us);
    free(r->ip.per_rank_us);
}

static void free_results(struct cb_result *r, int n)
{
    for (int i = 0; i < n; i++)
        free_result(&r[i]);
}

/* Rank 0, a cycle complete: fold it into the summaries, and into the
 * results the files hold: appended, or with -N 0 in place of the last cycle's. */
static cb_status end_cycle(struct cb_sweep *s, const struct cb_options *o)
{
    struct cb_summary cycle;
    memset(&cycle, 0, sizeof cycle);
    for (int i = 0; i < s->npending; i++) {
        cb_summary_add(&s->summary, &s->pending[i]);
        cb_summary_add(&cycle, &s->pending[i]);
    }
    cb_cycles_add(&s->cycles, &cycle);
    if (o->cycles == 0) {
        struct cb_result *old = s->results;
        int old_cap = s->cap;
        free_results(old, s->nresults);
        s->results = s->pending;
        s->cap = s->pending_cap;
        s->nresults = s->npending;
        s->pending = old;
        s->pending_cap = old_cap;
        s->npending = 0;
        return CB_OK;
    }
    cb_status st = reserve(&s->results, &s->cap, s->nresults, s->npending);
    if (st != CB_OK)
        return st;
    memcpy(s->results + s->nresults, s->pending, sizeof *s->pending * (size_t)s->npending);
    s->nresults += s->npending;
    s->npending = 0;
    return CB_OK;
}

static cb_status sweep_sizes(struct cb_comm *c, const struct cb_options *o, const struct buffers *b,
                             cb_type t, cb_op op, int root, FILE *table, struct cb_sweep *s)
{
    const struct cb_nccl_view view = cb_options_nccl_view(o);
    const struct cb_sizes sizes = {o->min_bytes, o->max_bytes, o->step_bytes, o->step_factor};
    size_t size = o->min_bytes;
    for (int more = size <= o->max_bytes; more; more = cb_sizes_next(&sizes, size, &size)) {
        struct cb_result r[CB_MAX_COMPARED];
        if (stopping(o))
            return CB_ESTOPPED;
        cb_status st = measure_size(c, o, b, t, op, root, size, r);
        int stored = 0;   /* rank 0 keeps r[0 .. stored) in s; the rest are freed here */
        for (int i = 0; st == CB_OK && i < o->nalgos; i++) {
            s->wrong += (r[i].oop.nwrong > 0 ? r[i].oop.nwrong : 0) + (r[i].ip.nwrong > 0 ? r[i].ip.nwrong : 0);
            if (c->rank != 0)
                continue;
            if (o->nccl.format == CB_FORMAT_NCCL)
                cb_nccl_row(table, &r[i], &view);
            else
                cb_table_row(table, &r[i], o->per_iter);
            fflush(table);
            if ((st = keep_result(s, &r[i])) == CB_OK)
                stored = i + 1;
        }
        free_results(r + stored, o->nalgos - stored);
        if (st != CB_OK)
            return st;
    }
    return CB_OK;
}

/* -r all (or -1): every rank in turn is the root, as nccl-tests sweeps them;
 * collectives without a root run once. */
static cb_status sweep_roots(struct cb_comm *c, const struct cb_options *o, const struct buffers *b,
                             cb_type t, cb_op op, FILE *table, struct cb_sweep *s)
{
    int every = o->root == CB_EVERY_ROOT && cb_coll_desc(o->coll)->rooted;
    int first = o->root == CB_EVERY_ROOT ? 0 : o->root, last = every ? c->nranks - 1 : first;
    cb_status st = CB_OK;
    for (int root = first; root <= last && st == CB_OK; root++)
        st = sweep_sizes(c, o, b, t, op, root, table, s);
    return st;
}

cb_status cb_harness_prepare(struct cb_comm *c, const struct cb_options *o)
{
    int runs_auto = 0;
    for (int i = 0; i < o->nalgos; i++)
        runs_auto |= o->algos[i] == CB_ALGO_AUTO;
    if (runs_auto && o->tune_file && !c->cost.valid) {
        cb_status st = cb_coll_load_cost(c, o->tune_file);
        if (st != CB_OK)
            return st;
    }
    for (int t = 0; t < o->ntypes; t++) {
        struct cb_bench_counts k;
        cb_bench_for(o->coll)->counts(o->max_bytes, cb_type_size(o->types[t]), c->nranks, &k);
        for (int i = 0; i < o->nalgos; i++) {
            cb_status st = cb_coll_prepare(c, o->coll, o->algos[i], k.count, o->types[t]);
            if (st != CB_OK)
                return st;
        }
        cb_status st = cb_options_has_op(o, CB_MULSUM) ? cb_coll_prepare_mulsum(c, o->coll, k.count, o->types[t])
                                                       : CB_OK;
        if (st != CB_OK)
            return st;
    }
    return CB_OK;
}

/* Every rank's wire counters and port events since the watch started, at
 * rank 0; whether any rank saw an error, at every rank. */
static cb_status gather_wire(struct cb_comm *c, struct cb_wire_watch *w, struct cb_sweep *s)
{
    struct cb_wire_moved *mine = calloc(1, sizeof *mine);
    if (!mine || (c->rank == 0 && !s->wire && !(s->wire = calloc((size_t)c->nranks, sizeof *s->wire)))) {
        free(mine);
        return CB_ENOMEM;
    }
    cb_wire_watch_moved(w, c, mine);
    double errors = cb_wire_has_errors(mine);
    cb_status st = cb_boot_gather(c->boot, mine, s->wire, sizeof *mine, c->cfg.timeout_ms, "collecting wire counters");
    if (st == CB_OK)
        st = cb_boot_allreduce_max(c->boot, &errors, 1, c->cfg.timeout_ms, "sharing wire errors");
    s->wire_errors = errors > 0;
    s->summary.wire = s->wire;
    s->summary.nwire = c->rank == 0 ? c->nranks : 0;
    free(mine);
    return st;
}

/* After a cycle (st: how it went), rank 0 keeps it and reports. A stopped
 * rank reports what complete cycles it has and goes; otherwise every rank
 * learns whether rank 0 managed, so all go on or stop together. */
static cb_status after_cycle(struct cb_comm *c, const struct cb_options *o, struct cb_sweep *s, cb_status st,
                             int last, cb_sweep_report_fn on_cycle, void *arg)
{
    cb_status mine = CB_OK;
    if (c->rank == 0 && st == CB_OK)
        mine = end_cycle(s, o);
    if (c->rank == 0 && on_cycle && mine == CB_OK && (st == CB_OK || st == CB_ESTOPPED))
        mine = on_cycle(s, last || st != CB_OK, arg);
    if (st != CB_OK)   /* a peer may be gone: no agreeing */
        return st;
    return cb_job_agree(c->boot, mine, c->cfg.timeout_ms, "after the cycle's report");
}

cb_status cb_harness_sweep(struct cb_comm *c, const struct cb_options *o, FILE *table, struct cb_sweep *s,
                           cb_sweep_report_fn on_cycle, void *arg)
{
    struct buffers b = {0};
    struct cb_wire_watch *watch = cb_wire_watch_start(c, 0);
    cb_status st = watch ? alloc_buffers(c, o, &b) : CB_ENOMEM;
    for (long long cycle = 0; st == CB_OK && (o->cycles == 0 || cycle < o->cycles); cycle++) {   /* -N 0: for days */
        for (int t = 0; t < o->ntypes && st == CB_OK; t++)
            for (int p = 0; p < o->nops && st == CB_OK; p++)
                st = sweep_roots(c, o, &b, o->types[t], o->ops[p], table, s);
        if (st == CB_OK)
            st = gather_wire(c, watch, s);
        st = after_cycle(c, o, s, st, o->cycles != 0 && cycle + 1 == o->cycles, on_cycle, arg);
    }
    free_buffers(c, &b);
    cb_wire_watch_free(watch);
    return st;
}

void cb_harness_free(struct cb_sweep *s)
{
    free_results(s->results, s->nresults);
    free_results(s->pending, s->npending);
    free(s->results);
    free(s->wire);
    free(s->pending);
    memset(s, 0, sizeof *s);
}
