/* Direct reduce-scatter and all-reduce (a "two-shot" all-reduce): each rank
 * sends piece j of its data to rank j, which reduces its piece from all n
 * sources at once (cb_prim_recv_reduce_all); all_reduce then sends each
 * finished piece to every rank. Two steps instead of the ring's 2 (n - 1),
 * and no rank waits on a chain of others: what counts with more ranks than
 * cores. Where the transport lends (shm), every source is read once where
 * it lies: per rank (n + 1) S / n bytes read or written to reduce, against
 * the ring's 3 (n - 1) S / n. Every rank talks to every other, so it is
 * for few ranks or a machine's own ranks; the cost model weighs that.
 *
 * Rounds of at most one chunk per piece, as in the linear alltoall: a
 * round's sends fit in the FIFOs (half of each) even when the peer is a
 * phase behind, and no rank gets a round ahead of anyone. A source is
 * lent (cb_prim_send_lend): the pieces sent in the reduce-scatter are not
 * written until their receiver has reduced them, and it has before it sends
 * the finished piece that overwrites them in place. */
#include "algo.h"
#include "coll/model_terms.h"

/* Piece j of a round [base, base + len): all_reduce splits the round n
 * ways; reduce_scatter takes the same range of each rank's block. */
static struct cb_piece piece_of(const struct cb_coll_args *a, int n, int j, size_t base, size_t len)
{
    if (a->coll == CB_REDUCE_SCATTER)
        return (struct cb_piece){(size_t)j * a->count + base, len};
    return cb_algo_piece(base, len, n, j);
}

static cb_status reduce_scatter_round(struct cb_comm *c, const struct cb_coll_args *a, char *dst, size_t base,
                                      size_t len)
{
    int n = c->nranks, r = c->rank;
    size_t ts = cb_type_size(a->type);
    const char *src = a->sendbuf;
    struct cb_redop op = {a->type, a->op, n, 1};
    for (int k = 1; k < n; k++) {
        int to = cb_algo_mod(r + k, n);
        struct cb_piece p = piece_of(a, n, to, base, len);
        cb_status st = cb_prim_send_lend(&c->send[to], src + p.off * ts, p.len * ts);
        if (st != CB_OK)
            return st;
    }
    struct cb_piece own = piece_of(a, n, r, base, len);
    return cb_prim_recv_reduce_all(c, src + own.off * ts, dst, own.len * ts, &op);
}

/* The finished piece r goes to everyone; the others' land where they belong. */
static cb_status all_gather_round(struct cb_comm *c, const struct cb_coll_args *a, size_t base, size_t len)
{
    int n = c->nranks, r = c->rank;
    size_t ts = cb_type_size(a->type);
    char *dst = a->recvbuf;
    for (int k = 1; k < n; k++) {
        int from = cb_algo_mod(r - k, n);
        struct cb_piece p = piece_of(a, n, from, base, len);
        cb_prim_offer(&c->recv[from], 0, dst + p.off * ts, p.len * ts);
    }
    struct cb_piece own = piece_of(a, n, r, base, len);
    for (int k = 1; k < n; k++) {
        cb_status st = cb_prim_send_lend(&c->send[cb_algo_mod(r + k, n)], dst + own.off * ts, own.len * ts);
        if (st != CB_OK)
            return st;
    }
    for (int k = 1; k < n; k++) {
        int from = cb_algo_mod(r - k, n);
        struct cb_piece p = piece_of(a, n, from, base, len);
        cb_status st = cb_prim_recv(&c->recv[from], dst + p.off * ts, p.len * ts);
        if (st != CB_OK)
            return st;
    }
    return CB_OK;
}

static cb_status all_reduce_round(struct cb_comm *c, int ch, const struct cb_coll_args *a, size_t base, size_t len)
{
    (void)ch;
    size_t ts = cb_type_size(a->type);
    struct cb_piece own = piece_of(a, c->nranks, c->rank, base, len);
    cb_status st = reduce_scatter_round(c, a, (char *)a->recvbuf + own.off * ts, base, len);
    return st == CB_OK ? all_gather_round(c, a, base, len) : st;
}

static cb_status reduce_scatter_only_round(struct cb_comm *c, int ch, const struct cb_coll_args *a, size_t base,
                                           size_t len)
{
    (void)ch;
    return reduce_scatter_round(c, a, (char *)a->recvbuf + base * cb_type_size(a->type), base, len);
}

/* One channel: every rank already talks to all. */
cb_status cb_direct_all_reduce(struct cb_comm *c, const struct cb_coll_args *a)
{
    return cb_algo_rounds(c, a, cb_algo_chunk_elems(c, a->type) * (size_t)c->nranks, 1, all_reduce_round);
}

cb_status cb_direct_reduce_scatter(struct cb_comm *c, const struct cb_coll_args *a)
{
    return cb_algo_rounds(c, a, cb_algo_chunk_elems(c, a->type), 1, reduce_scatter_only_round);
}

/* Cost model: every rank sends a piece to each of the n - 1 others at once
 * (posted sends cost a share of alpha, as in the linear alltoall) and
 * reduces its own piece from all of them straight from where they land,
 * fused like the ring's steps; all_reduce then sends it to everyone. All
 * ranks' traffic crosses the top of the network at once. */
static double direct_steps(const struct cb_machine *m, double piece, double g, int gather)
{
    int n = m->nranks;
    struct cb_link l = cb_model_top_link(m);
    double posts = cb_model_posted_rounds(l, n, cb_model_rounds(piece, cb_model_chunk(m)));
    double t = posts + (n - 1) * piece * (l.b / 2 + g);
    return gather ? t + posts + (n - 1) * piece * l.b : t;
}

static double direct_all_reduce_time(const struct cb_machine *m, double s, double g)
{
    return direct_steps(m, s / m->nranks, g, 1);
}

static double direct_reduce_scatter_time(const struct cb_machine *m, double s, double g)
{
    return direct_steps(m, s / m->nranks, g, 0);
}

/* Shared slots: the reduce-scatter's slices from every peer at once
 * (cb_prim_recv_reduce_all), or the all-gather's FIFO from one peer. */
static int direct_shared_slots(int nranks, int nslots)
{
    int all = (CB_REDUCE_ALL_AHEAD + 1) * (nranks - 1);
    return (all > nslots ? all : nslots) + CB_SEND_STAGING_SLOTS;
}

const struct cb_algo_desc cb_algo_direct = {
    .name = "direct",
    .summary = "every rank reduces its own piece from all n sources at once, then sends it to all",
    .connect = cb_comm_connect_all,
    .conn_ends = cb_all_conn_ends,
    .shared_slots = direct_shared_slots,
    .impl = {
        {CB_ALL_REDUCE, cb_direct_all_reduce, direct_all_reduce_time},
        {CB_REDUCE_SCATTER, cb_direct_reduce_scatter, direct_reduce_scatter_time},
    },
};
