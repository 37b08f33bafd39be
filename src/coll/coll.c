/* Collective dispatch: which algorithm runs, and what it needs connected. */
#include "coll.h"

#include <stdlib.h>
#include "algo/algo.h"
#include "model.h"

typedef cb_status (*algo_fn)(struct cb_comm *, const struct cb_coll_args *);
typedef cb_status (*connect_fn)(struct cb_comm *);

struct algo_entry {
    cb_coll coll;
    cb_algo algo;
    algo_fn run;
    connect_fn connect;
};

/* The first entry of a collective is its default when no cost model is known. */
static const struct algo_entry algos[] = {
    {CB_ALL_REDUCE, CB_ALGO_RING, cb_ring_all_reduce, cb_comm_connect_ring},
    {CB_ALL_REDUCE, CB_ALGO_TREE, cb_tree_all_reduce, cb_tree_connect},
    {CB_ALL_REDUCE, CB_ALGO_RD, cb_rd_all_reduce, cb_rd_connect},
    {CB_ALL_REDUCE, CB_ALGO_RABENSEIFNER, cb_rabenseifner_all_reduce, cb_rd_connect},
    {CB_ALL_REDUCE, CB_ALGO_DIRECT, cb_direct_all_reduce, cb_comm_connect_all},
    {CB_ALL_GATHER, CB_ALGO_RING, cb_ring_all_gather, cb_comm_connect_ring},
    {CB_ALL_GATHER, CB_ALGO_RD, cb_rd_all_gather, cb_rd_connect},
    {CB_REDUCE_SCATTER, CB_ALGO_RING, cb_ring_reduce_scatter, cb_comm_connect_ring},
    {CB_REDUCE_SCATTER, CB_ALGO_RD, cb_rd_reduce_scatter, cb_rd_connect},
    {CB_REDUCE_SCATTER, CB_ALGO_DIRECT, cb_direct_reduce_scatter, cb_comm_connect_all},
    {CB_ALLTOALL, CB_ALGO_PAIRWISE, cb_pairwise_alltoall, cb_comm_connect_all},
    {CB_ALLTOALL, CB_ALGO_LINEAR, cb_linear_alltoall, cb_comm_connect_all},
    {CB_BROADCAST, CB_ALGO_RING, cb_chain_broadcast, cb_comm_connect_ring},
    {CB_REDUCE, CB_ALGO_RING, cb_chain_reduce, cb_comm_connect_ring},
    {CB_SENDRECV, CB_ALGO_RING, cb_ring_sendrecv, cb_comm_connect_ring},
};
#define NALGOS (sizeof algos / sizeof algos[0])

static const struct algo_entry *find(cb_coll coll, cb_algo algo)
{
    for (size_t i = 0; i < NALGOS; i++)
        if (algos[i].coll == coll && (algos[i].algo == algo || algo == CB_ALGO_AUTO))
            return &algos[i];
    return NULL;
}

size_t cb_coll_size_bytes(const struct cb_comm *c, const struct cb_coll_args *a)
{
    int whole = a->coll == CB_ALL_GATHER || a->coll == CB_REDUCE_SCATTER || a->coll == CB_ALLTOALL;
    return a->count * cb_type_size(a->type) * (whole ? (size_t)c->nranks : 1);
}

cb_algo cb_coll_choose(const struct cb_comm *c, const struct cb_coll_args *a)
{
    if (a->algo == CB_ALGO_AUTO && c->cost.valid) {
        struct cb_machine m;
        cb_machine_flat(&m, c->nranks, c->nchannels, &c->cost);
        return cb_model_best(&m, a->coll, cb_coll_size_bytes(c, a), a->type);
    }
    const struct algo_entry *e = find(a->coll, a->algo);
    return e ? e->algo : CB_ALGO_AUTO;
}

/* Rank 0 reads the file and hands it to all, so that every rank decides alike. */
static cb_status load_tuned(struct cb_comm *c, const char *path)
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
    const char *tuned = getenv("COLLBENCH_TUNE_FILE");
    cb_status st = CB_OK;
    if (!c->cost.valid && tuned && *tuned)
        st = load_tuned(c, tuned);
    if (st == CB_OK)
        st = cb_probe_cost(c, type, CB_SUM, &c->cost);
    for (size_t i = 0; i < NALGOS && st == CB_OK; i++)
        if (algos[i].coll == coll)
            st = algos[i].connect(c);
    return st;
}

/* Bytes of scratch an algorithm of coll may use for max_count elements. */
static size_t scratch_bytes(const struct cb_comm *c, cb_coll coll, size_t max_count, cb_type type)
{
    size_t bytes = max_count * cb_type_size(type);
    if (coll == CB_REDUCE_SCATTER)
        return 2 * bytes * (size_t)c->nranks;
    return coll == CB_ALLTOALL ? bytes * (size_t)c->nranks : bytes;
}

cb_status cb_coll_prepare(struct cb_comm *c, cb_coll coll, cb_algo algo, size_t max_count, cb_type type)
{
    const struct algo_entry *e = find(coll, algo);
    if (!e) {
        cb_log_error("%s has no '%s' algorithm; see --help or docs/algorithms.md", cb_coll_name(coll),
                     cb_algo_name(algo));
        return CB_EUSAGE;
    }
    cb_status st = cb_comm_scratch(c, scratch_bytes(c, coll, max_count, type));
    if (st != CB_OK)
        return st;
    return algo == CB_ALGO_AUTO ? prepare_auto(c, coll, type) : e->connect(c);
}

/* One rank: every collective's result is its own input, and a reduction's
 * value is only finished (avg divides by 1). Handled here once, so the
 * algorithms can assume at least two ranks. */
static cb_status single_rank(const struct cb_coll_args *a)
{
    cb_algo_copy(a->recvbuf, a->sendbuf, a->count * cb_type_size(a->type));
    if (a->coll == CB_ALL_REDUCE || a->coll == CB_REDUCE_SCATTER || a->coll == CB_REDUCE)
        cb_reduce_finish(a->recvbuf, a->count, a->type, a->op, 1);
    return CB_OK;
}

cb_status cb_coll_run(struct cb_comm *c, const struct cb_coll_args *a)
{
    if (c->nranks == 1)
        return single_rank(a);
    const struct algo_entry *e = find(a->coll, cb_coll_choose(c, a));
    if (!e)
        return CB_EINTERNAL;
    cb_status st = e->run(c, a);
    return st == CB_OK ? cb_chan_drain_lent(c) : st;
}
