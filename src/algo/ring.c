/* Ring algorithms (all-reduce, all-gather, reduce-scatter) and chains
 * (broadcast, reduce). The buffer is cut into rounds; in each round every
 * rank's piece is at most cb_algo_chunk_elems, moved slice by slice, so the
 * copy or reduction of one slice overlaps the transfer of the next.
 * With --channels C, each round is split over C rings, each on its own
 * connections, run one after the other in the same order on every rank:
 * what one ring posted keeps moving (tcp, verbs) while the next one runs.
 * A ring's order need not be rank order (rail-local rings,
 * core/ring_order.h): steps go by position, blocks that belong to a rank
 * (all-gather's, reduce-scatter's) by the rank at that position.
 *
 * The first send of each ring or chain comes from the user's buffer and goes
 * out with cb_prim_send_lend (the receiver may read it in place): in place
 * or not, nothing writes that piece before its receiver has read it. The
 * only write to it, if any, is the piece's final value in an in-place
 * all_reduce, and that value exists only after every rank down the ring,
 * the first receiver included, has reduced the piece. */
#include "algo.h"
#include "coll/model_terms.h"

#define mod cb_algo_mod

/* This rank's place on channel ch's ring. */
struct ring {
    int n, pos;
    struct cb_send_chan *next;
    struct cb_recv_chan *prev;
};

static struct ring ring_of(struct cb_comm *c, int ch)
{
    int pos = cb_ring_pos(c, ch);
    return (struct ring){c->nranks, pos, cb_send_on(c, ch, cb_ring_at(c, ch, pos + 1)),
                         cb_recv_on(c, ch, cb_ring_at(c, ch, pos - 1))};
}

/* Pieces are cut by ring position: any order reduces every piece once. */
static cb_status all_reduce_round(struct cb_comm *c, int ch, const struct cb_coll_args *a, size_t base, size_t len)
{
    struct ring g = ring_of(c, ch);
    int n = g.n, r = g.pos;
    size_t ts = cb_type_size(a->type);
    const char *src = a->sendbuf;
    char *dst = a->recvbuf;
    struct cb_send_chan *next = g.next;
    struct cb_recv_chan *prev = g.prev;
    struct cb_redop partial = {a->type, a->op, n, 0}, last = {a->type, a->op, n, 1};
    struct cb_piece p = cb_algo_piece(base, len, n, r);
    cb_status st = cb_prim_send_lend(next, src + p.off * ts, p.len * ts);
    for (int s = 1; s < n - 1 && st == CB_OK; s++) {
        p = cb_algo_piece(base, len, n, mod(r - s, n));
        st = cb_prim_recv_reduce_send(prev, next, src + p.off * ts, p.len * ts, &partial);
    }
    if (st != CB_OK)
        return st;
    /* the all-gather's receives are pieces r, r-1, .., r+2: each is offered
     * (direct path) while the step before it runs */
    p = cb_algo_piece(base, len, n, mod(r + 1, n));
    struct cb_piece q = cb_algo_piece(base, len, n, r);
    cb_prim_offer(prev, p.len * ts, dst + q.off * ts, q.len * ts);
    st = cb_prim_recv_reduce_copy_send(prev, next, src + p.off * ts, dst + p.off * ts, p.len * ts, &last);
    for (int s = 1; s < n - 1 && st == CB_OK; s++) {
        p = q;
        q = cb_algo_piece(base, len, n, mod(r - s, n));
        cb_prim_offer(prev, p.len * ts, dst + q.off * ts, q.len * ts);
        st = cb_prim_recv_copy_send(prev, next, dst + p.off * ts, p.len * ts);
    }
    if (st != CB_OK)
        return st;
    return cb_prim_recv(prev, dst + q.off * ts, q.len * ts);
}

cb_status cb_ring_all_reduce(struct cb_comm *c, const struct cb_coll_args *a)
{
    size_t per_channel = cb_algo_chunk_elems(c, a->type) * (size_t)c->nranks;
    return cb_algo_rounds(c, a, per_channel, c->nchannels, all_reduce_round);
}

static cb_status all_gather_round(struct cb_comm *c, int ch, const struct cb_coll_args *a, size_t base, size_t len)
{
    struct ring g = ring_of(c, ch);
    int n = g.n, pos = g.pos;
    size_t ts = cb_type_size(a->type), block = a->count * ts;
    char *dst = (char *)a->recvbuf + base * ts;
    /* step s receives the block of the rank s + 1 places up the ring; each
     * receive is offered (direct path) while the step before it runs */
    cb_prim_offer(g.prev, 0, dst + (size_t)cb_ring_at(c, ch, pos - 1) * block, len * ts);
    cb_status st = cb_prim_send_lend(g.next, (const char *)a->sendbuf + base * ts, len * ts);
    for (int s = 1; s < n - 1 && st == CB_OK; s++) {
        cb_prim_offer(g.prev, len * ts, dst + (size_t)cb_ring_at(c, ch, pos - s - 1) * block, len * ts);
        st = cb_prim_recv_copy_send(g.prev, g.next, dst + (size_t)cb_ring_at(c, ch, pos - s) * block, len * ts);
    }
    if (st != CB_OK)
        return st;
    return cb_prim_recv(g.prev, dst + (size_t)cb_ring_at(c, ch, pos + 1) * block, len * ts);
}

cb_status cb_ring_all_gather(struct cb_comm *c, const struct cb_coll_args *a)
{
    size_t ts = cb_type_size(a->type);
    cb_algo_copy((char *)a->recvbuf + (size_t)c->rank * a->count * ts, a->sendbuf, a->count * ts);
    return cb_algo_rounds(c, a, cb_algo_chunk_elems(c, a->type), c->nchannels, all_gather_round);
}

static cb_status reduce_scatter_round(struct cb_comm *c, int ch, const struct cb_coll_args *a, size_t base,
                                      size_t len)
{
    struct ring g = ring_of(c, ch);
    int n = g.n, pos = g.pos;
    size_t ts = cb_type_size(a->type), block = a->count * ts;
    const char *src = (const char *)a->sendbuf + base * ts;
    struct cb_redop partial = {a->type, a->op, n, 0}, last = {a->type, a->op, n, 1};
    /* the partial sum of the block of the rank s + 1 places down the ring */
    cb_status st = cb_prim_send_lend(g.next, src + (size_t)cb_ring_at(c, ch, pos - 1) * block, len * ts);
    for (int s = 1; s < n - 1 && st == CB_OK; s++)
        st = cb_prim_recv_reduce_send(g.prev, g.next, src + (size_t)cb_ring_at(c, ch, pos - 1 - s) * block,
                                      len * ts, &partial);
    if (st != CB_OK)
        return st;
    return cb_prim_recv_reduce_copy(g.prev, src + (size_t)c->rank * block, (char *)a->recvbuf + base * ts,
                                    len * ts, &last);
}

cb_status cb_ring_reduce_scatter(struct cb_comm *c, const struct cb_coll_args *a)
{
    return cb_algo_rounds(c, a, cb_algo_chunk_elems(c, a->type), c->nchannels, reduce_scatter_round);
}

/* A chain has no cycle, so a whole buffer can stream through it in one go.
 * Chains follow channel 0's ring from the root. */
cb_status cb_chain_broadcast(struct cb_comm *c, const struct cb_coll_args *a)
{
    struct ring g = ring_of(c, 0);
    int n = c->nranks, pos = mod(g.pos - cb_ring_pos_of(c, 0, a->root), n);
    size_t bytes = a->count * cb_type_size(a->type);
    if (pos == 0)
        cb_algo_copy(a->recvbuf, a->sendbuf, bytes);
    if (n == 1)
        return CB_OK;
    if (pos == 0)
        return cb_prim_send(g.next, a->recvbuf, bytes);
    if (pos < n - 1)
        return cb_prim_recv_copy_send(g.prev, g.next, a->recvbuf, bytes);
    return cb_prim_recv(g.prev, a->recvbuf, bytes);
}

/* The chain starts after the root and ends at it. */
cb_status cb_chain_reduce(struct cb_comm *c, const struct cb_coll_args *a)
{
    struct ring g = ring_of(c, 0);
    int n = c->nranks, pos = mod(g.pos - cb_ring_pos_of(c, 0, a->root) - 1, n);
    size_t bytes = a->count * cb_type_size(a->type);
    struct cb_redop partial = {a->type, a->op, n, 0}, last = {a->type, a->op, n, 1};
    if (pos == 0)
        return cb_prim_send_lend(g.next, a->sendbuf, bytes);
    if (pos < n - 1)
        return cb_prim_recv_reduce_send(g.prev, g.next, a->sendbuf, bytes, &partial);
    return cb_prim_recv_reduce_copy(g.prev, a->sendbuf, a->recvbuf, bytes, &last);
}

/* Cost model (src/coll/model_terms.h). */
static double ring_all_reduce_time(const struct cb_machine *m, double s, double g)
{
    int n = m->nranks;
    return cb_model_ring_steps(m, n - 1, s / n, g, 1) + cb_model_ring_steps(m, n - 1, s / n, 0, 0);
}

static double ring_all_gather_time(const struct cb_machine *m, double s, double g)
{
    (void)g;
    return cb_model_ring_steps(m, m->nranks - 1, s / m->nranks, 0, 0);
}

static double ring_reduce_scatter_time(const struct cb_machine *m, double s, double g)
{
    return cb_model_ring_steps(m, m->nranks - 1, s / m->nranks, g, 1);
}

static double chain_broadcast_time(const struct cb_machine *m, double s, double g)
{
    struct cb_link l = cb_model_link(m, 1, 0, 0);
    (void)g;
    return (m->nranks - 1) * l.a + s * l.b;
}

static double chain_reduce_time(const struct cb_machine *m, double s, double g)
{
    struct cb_link l = cb_model_link(m, 1, 0, 0);
    return (m->nranks - 1) * l.a + s * (l.b + g);
}

static double ring_sendrecv_time(const struct cb_machine *m, double s, double g)
{
    struct cb_link l = cb_model_link(m, 1, 0, 0);
    (void)g;
    return l.a + s * l.b;
}

const struct cb_algo_desc cb_algo_ring = {
    .name = "ring",
    .summary = "rings (all_reduce: reduce-scatter, then all-gather); chains for the rooted ones",
    .connect = cb_comm_connect_ring,
    .conn_ends = cb_ring_conn_ends,
    .impl = {
        {CB_ALL_REDUCE, cb_ring_all_reduce, ring_all_reduce_time},
        {CB_ALL_GATHER, cb_ring_all_gather, ring_all_gather_time},
        {CB_REDUCE_SCATTER, cb_ring_reduce_scatter, ring_reduce_scatter_time},
        {CB_BROADCAST, cb_chain_broadcast, chain_broadcast_time},
        {CB_REDUCE, cb_chain_reduce, chain_reduce_time},
        {CB_SENDRECV, cb_ring_sendrecv, ring_sendrecv_time},
    },
};
