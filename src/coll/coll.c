/* Collective dispatch: which algorithm runs, and what it needs connected. */
#include "coll.h"

#include <stdint.h>
#include <stdlib.h>
#include "algo/algo.h"
#include "model.h"

/* How `algo` runs coll; for auto, the collective's default without a cost
 * model: the first algorithm of ours in CB_ALGO_TABLE that runs it. */
static const struct cb_algo_impl *find(cb_coll coll, cb_algo algo)
{
    if (algo != CB_ALGO_AUTO)
        return cb_algo_impl(algo, coll);
    for (int a = 0; a < CB_NALGOS; a++) {
        const struct cb_algo_impl *impl = cb_algo_impl((cb_algo)a, coll);
        if (impl && !cb_algo_desc((cb_algo)a)->not_ours)
            return impl;
    }
    return NULL;
}

/* The algorithm of an implementation (the descriptor holds no id of its own). */
static cb_algo algo_of(cb_coll coll, cb_algo algo)
{
    if (algo != CB_ALGO_AUTO)
        return algo;
    const struct cb_algo_impl *impl = find(coll, algo);
    for (int a = 0; impl && a < CB_NALGOS; a++)
        if (cb_algo_impl((cb_algo)a, coll) == impl)
            return (cb_algo)a;
    return CB_ALGO_AUTO;
}

/* Its connections, and the shared slots its receives hold at once. */
static cb_status connect_for(struct cb_comm *c, cb_algo algo)
{
    const struct cb_algo_desc *d = cb_algo_desc(algo);
    cb_status st = d && d->connect ? d->connect(c) : CB_OK;
    if (st != CB_OK || !d || !d->shared_slots)
        return st;
    int slots = d->shared_slots(c->nranks, c->cfg.nslots);
    st = c->ops->reserve_shared(c->tctx, slots);
    return st == CB_OK && c->net_ops ? c->net_ops->reserve_shared(c->net_tctx, slots) : st;
}

size_t cb_coll_size_bytes(const struct cb_comm *c, const struct cb_coll_args *a)
{
    int whole = cb_coll_desc(a->coll)->size_is_whole;
    return a->count * cb_type_size(a->type) * (whole ? (size_t)c->nranks : 1);
}

cb_algo cb_coll_choose(const struct cb_comm *c, const struct cb_coll_args *a)
{
    if (a->algo == CB_ALGO_AUTO && c->cost.valid) {
        struct cb_machine m;
        cb_machine_flat(&m, c->nranks, c->nchannels, &c->cost);
        return cb_model_best(&m, a->coll, cb_coll_size_bytes(c, a), a->type);
    }
    return find(a->coll, a->algo) ? algo_of(a->coll, a->algo) : CB_ALGO_AUTO;
}

/* Rank 0 reads the file and hands it to all, so that every rank decides alike. */
cb_status cb_coll_load_cost(struct cb_comm *c, const char *path)
{
    struct cb_cost cost;
    double ok = c->rank == 0 ? cb_cost_load(path, &cost) == CB_OK : 0;
    cb_status st = cb_boot_bcast(c->boot, &ok, sizeof ok, c->cfg.timeout_ms, "sharing the cost model");
    if (st == CB_OK && !ok)
        return CB_EUSAGE;
    if (st == CB_OK)
        st = cb_boot_bcast(c->boot, &cost, sizeof cost, c->cfg.timeout_ms, "sharing the cost model");
    if (st != CB_OK)
        return st;
    if (c->rank == 0 && cost.nranks != c->nranks)
        cb_log_info("%s was measured with %d ranks, this job has %d: auto's choices may be off; "
                    "rerun `collbench tune` with -np %d", path, cost.nranks, c->nranks, c->nranks);
    c->cost = cost;
    return CB_OK;
}

/* auto: the model's terms, and every candidate connected. */
static cb_status prepare_auto(struct cb_comm *c, cb_coll coll, cb_type type)
{
    cb_status st = cb_probe_cost(c, type, CB_SUM, &c->cost);
    cb_algo list[CB_NALGOS];
    int n = cb_model_algos(coll, list, CB_NALGOS);
    for (int i = 0; i < n && st == CB_OK; i++)
        st = connect_for(c, list[i]);
    return st;
}

size_t cb_coll_scratch_bytes(cb_coll coll, int nranks, size_t max_count, cb_type type)
{
    size_t bytes, per = coll == CB_REDUCE_SCATTER ? 2 * (size_t)nranks : coll == CB_ALLTOALL ? (size_t)nranks : 1;
    if (__builtin_mul_overflow(max_count, cb_type_size(type), &bytes) || __builtin_mul_overflow(bytes, per, &bytes))
        return SIZE_MAX;
    return bytes;
}

cb_status cb_coll_prepare(struct cb_comm *c, cb_coll coll, cb_algo algo, size_t max_count, cb_type type)
{
    if (!find(coll, algo)) {
        cb_log_error("%s has no '%s' algorithm; see --help or docs/algorithms.md", cb_coll_name(coll),
                     cb_algo_name(algo));
        return CB_EUSAGE;
    }
    const struct cb_algo_desc *d = cb_algo_desc(algo);
    if (d && d->not_ours)
        return CB_OK;   /* MPI's collective: our connections and scratch are not its */
    cb_status st = cb_comm_scratch(c, cb_coll_scratch_bytes(coll, c->nranks, max_count, type));
    if (st != CB_OK)
        return st;
    return algo == CB_ALGO_AUTO ? prepare_auto(c, coll, type) : connect_for(c, algo);
}

/* Elements of a collective's send buffer: reduce_scatter sends a block per rank. */
static int send_elems(cb_coll coll, int nranks, size_t count, size_t *out)
{
    return __builtin_mul_overflow(count, coll == CB_REDUCE_SCATTER ? (size_t)nranks : 1, out);
}

size_t cb_coll_premul_bytes(cb_coll coll, int nranks, size_t max_count, cb_type type)
{
    size_t elems, bytes;
    if (!cb_coll_desc(coll)->reduces)
        return 0;
    if (send_elems(coll, nranks, max_count, &elems) || __builtin_mul_overflow(elems, cb_type_size(type), &bytes))
        return SIZE_MAX;
    return bytes;
}

cb_status cb_coll_prepare_mulsum(struct cb_comm *c, cb_coll coll, size_t max_count, cb_type type)
{
    if (cb_mulsum_scalar(c->rank) == 1)
        return CB_OK;   /* times 1: no pass, no buffer */
    return cb_comm_premul(c, cb_coll_premul_bytes(coll, c->nranks, max_count, type));
}

static int overlaps(const void *a, size_t a_bytes, const void *b, size_t b_bytes)
{
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return a && b && a_bytes && b_bytes && x < y + b_bytes && y < x + a_bytes;
}

/* mulsum: this rank's input times its scalar, then the collective is a sum.
 * NCCL fuses the multiplication into its first reduction; here it is a pass
 * of its own over the input, timed with the collective: in place into the
 * input itself (the receive buffer, which the result overwrites anyway),
 * out of place into c->premul, so the caller's send buffer stays as given. */
static cb_status premultiply(struct cb_comm *c, const struct cb_coll_args *a, struct cb_coll_args *run)
{
    *run = *a;
    if (a->op != CB_MULSUM || !cb_coll_desc(a->coll)->reduces)
        return CB_OK;
    run->op = CB_SUM;
    size_t elems, ts = cb_type_size(a->type);
    if (cb_mulsum_scalar(c->rank) == 1 || a->count == 0)
        return CB_OK;
    if (send_elems(a->coll, c->nranks, a->count, &elems))
        return CB_EINTERNAL;
    void *dst = c->premul;
    if (overlaps(a->sendbuf, elems * ts, a->recvbuf, a->count * ts))
        dst = (void *)(uintptr_t)a->sendbuf;
    else if (elems * ts > c->premul_bytes) {
        cb_log_error("mulsum's pre-multiplied input has %zu of %zu bytes: cb_coll_prepare_mulsum was not called "
                     "for this size", c->premul_bytes, elems * ts);
        return CB_EINTERNAL;
    }
    cb_reduce_premultiply(dst, a->sendbuf, elems, a->type, c->rank);
    run->sendbuf = dst;
    return CB_OK;
}

/* One rank: every collective's result is its own input, and a reduction's
 * value is only finished (avg divides by 1). Handled here once, so the
 * algorithms can assume at least two ranks. */
static cb_status single_rank(const struct cb_coll_args *a)
{
    cb_algo_copy(a->recvbuf, a->sendbuf, a->count * cb_type_size(a->type));
    if (cb_coll_desc(a->coll)->reduces)
        cb_reduce_finish(a->recvbuf, a->count, a->type, a->op, 1);
    return CB_OK;
}

cb_status cb_coll_run(struct cb_comm *c, const struct cb_coll_args *a)
{
    const struct cb_algo_desc *d = cb_algo_desc(a->algo);
    int ours = !(d && d->not_ours);
    struct cb_coll_args run = *a;   /* MPI's collective takes the op as given (it refuses mulsum) */
    cb_status st = ours ? premultiply(c, a, &run) : CB_OK;
    if (st != CB_OK)
        return st;
    if (c->nranks == 1 && ours)
        return single_rank(&run);
    const struct cb_algo_impl *impl = find(run.coll, cb_coll_choose(c, &run));
    if (!impl)
        return CB_EINTERNAL;
    st = impl->run(c, &run);
    return st == CB_OK && ours ? cb_chan_drain_lent(c) : st;
}
