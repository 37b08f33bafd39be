/* Collective dispatch: which algorithm runs, and what it needs connected. */
#include "coll.h"
#include "algo/algo.h"

typedef cb_status (*algo_fn)(struct cb_comm *, const struct cb_coll_args *);

struct algo_entry {
    cb_coll coll;
    cb_algo algo;
    algo_fn run;
    int needs_all_pairs;
};

static const struct algo_entry algos[] = {
    {CB_ALL_REDUCE, CB_ALGO_RING, cb_ring_all_reduce, 0},
    {CB_ALL_GATHER, CB_ALGO_RING, cb_ring_all_gather, 0},
    {CB_REDUCE_SCATTER, CB_ALGO_RING, cb_ring_reduce_scatter, 0},
    {CB_ALLTOALL, CB_ALGO_PAIRWISE, cb_pairwise_alltoall, 1},
    {CB_BROADCAST, CB_ALGO_RING, cb_chain_broadcast, 0},
    {CB_REDUCE, CB_ALGO_RING, cb_chain_reduce, 0},
    {CB_SENDRECV, CB_ALGO_RING, cb_ring_sendrecv, 0},
};

static const struct algo_entry *find(cb_coll coll, cb_algo algo)
{
    for (size_t i = 0; i < sizeof algos / sizeof algos[0]; i++)
        if (algos[i].coll == coll && (algos[i].algo == algo || algo == CB_ALGO_AUTO))
            return &algos[i];
    return NULL;
}

cb_algo cb_coll_choose(const struct cb_comm *c, const struct cb_coll_args *a)
{
    (void)c;
    const struct algo_entry *e = find(a->coll, a->algo);
    return e ? e->algo : CB_ALGO_AUTO;
}

cb_status cb_coll_prepare(struct cb_comm *c, cb_coll coll, cb_algo algo, size_t max_count, cb_type type)
{
    const struct algo_entry *e = find(coll, algo);
    if (!e) {
        cb_log_error("%s has no '%s' algorithm", cb_coll_name(coll), cb_algo_name(algo));
        return CB_EUSAGE;
    }
    size_t scratch = max_count * cb_type_size(type) * (coll == CB_ALLTOALL ? (size_t)c->nranks : 1);
    cb_status st = cb_comm_scratch(c, scratch);
    if (st != CB_OK)
        return st;
    return e->needs_all_pairs ? cb_comm_connect_all(c) : cb_comm_connect_ring(c);
}

cb_status cb_coll_run(struct cb_comm *c, const struct cb_coll_args *a)
{
    const struct algo_entry *e = find(a->coll, a->algo);
    if (!e)
        return CB_EINTERNAL;
    return e->run(c, a);
}
