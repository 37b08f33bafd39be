/* Pairwise exchange: alltoall in n-1 rounds, and the ring neighbour sendrecv.
 * Linear alltoall for small messages: every block is sent at once, then every
 * block received, so the n-1 latencies overlap instead of adding up. */
#include "algo.h"
#include "coll/model_terms.h"

static int mod(int a, int n) { return ((a % n) + n) % n; }

/* In place, a block we still have to send could be overwritten by one we
 * receive: send from a copy in the scratch space (sized by cb_coll_prepare).
 * Either way nothing writes the source during the collective: it is lent. */
static const char *lendable_source(struct cb_comm *c, const struct cb_coll_args *a, size_t bytes)
{
    if (a->sendbuf != a->recvbuf)
        return a->sendbuf;
    cb_algo_copy(c->scratch, a->sendbuf, bytes);
    return c->scratch;
}

cb_status cb_pairwise_alltoall(struct cb_comm *c, const struct cb_coll_args *a)
{
    int n = c->nranks, r = c->rank;
    size_t block = a->count * cb_type_size(a->type);
    const char *src = lendable_source(c, a, block * (size_t)n);
    char *dst = a->recvbuf;
    cb_algo_copy(dst + (size_t)r * block, src + (size_t)r * block, block);
    for (int k = 1; k < n; k++) {
        int to = mod(r + k, n), from = mod(r - k, n);
        cb_status st = cb_prim_sendrecv_lend(&c->send[to], src + (size_t)to * block, block,
                                             &c->recv[from], dst + (size_t)from * block, block);
        if (st != CB_OK)
            return st;
    }
    return CB_OK;
}

/* nccl-tests' sendrecv: rank r to r + 1, whatever order the rings have
 * (rail-local rings need not join them: connected on the first call; every
 * rank runs the same collective, so that connect is collective too). */
cb_status cb_ring_sendrecv(struct cb_comm *c, const struct cb_coll_args *a)
{
    int n = c->nranks, r = c->rank, next = mod(r + 1, n), prev = mod(r - 1, n);
    size_t bytes = a->count * cb_type_size(a->type);
    const char *src = lendable_source(c, a, bytes);
    if (n == 1) {
        cb_algo_copy(a->recvbuf, src, bytes);
        return CB_OK;
    }
    cb_status st = cb_comm_connect_successors(c);
    if (st != CB_OK)
        return st;
    return cb_prim_sendrecv_lend(&c->send[next], src, bytes, &c->recv[prev], a->recvbuf, bytes);
}

/* Rounds of at most one chunk per peer: a round's sends fit in the FIFOs
 * (half of each) even when the peer is still a round behind, and a rank
 * cannot get two rounds ahead of anyone, since it waits for everyone's data. */
cb_status cb_linear_alltoall(struct cb_comm *c, const struct cb_coll_args *a)
{
    int n = c->nranks, r = c->rank;
    size_t ts = cb_type_size(a->type), block = a->count * ts, chunk = cb_algo_chunk_elems(c, a->type) * ts;
    const char *src = lendable_source(c, a, block * (size_t)n);
    char *dst = a->recvbuf;
    cb_algo_copy(dst + (size_t)r * block, src + (size_t)r * block, block);
    for (size_t base = 0; base < block; base += chunk) {
        size_t len = block - base < chunk ? block - base : chunk;
        cb_status st = CB_OK;
        for (int k = 1; k < n && st == CB_OK; k++) {
            int to = mod(r + k, n);
            st = cb_prim_send_lend(&c->send[to], src + (size_t)to * block + base, len);
        }
        for (int k = 1; k < n && st == CB_OK; k++) {
            int from = mod(r - k, n);
            st = cb_prim_recv(&c->recv[from], dst + (size_t)from * block + base, len);
        }
        if (st != CB_OK)
            return st;
    }
    return CB_OK;
}

/* Cost model: every rank's traffic crosses the top of the network at once.
 * Pairwise waits for each of its n - 1 exchanges; linear posts them all,
 * each post costing a share of alpha. */
static double alltoall_time(const struct cb_machine *m, double s, int linear)
{
    int n = m->nranks;
    double block = s / n, r = cb_model_rounds(block, cb_model_chunk(m));
    struct cb_link l = cb_model_top_link(m);
    if (linear)
        return cb_model_posted_rounds(l, n, r) + (n - 1) * block * l.b;
    return (n - 1) * (r * l.a + block * l.b);
}

static double pairwise_time(const struct cb_machine *m, double s, double g)
{
    (void)g;
    return alltoall_time(m, s, 0);
}

static double linear_time(const struct cb_machine *m, double s, double g)
{
    (void)g;
    return alltoall_time(m, s, 1);
}

const struct cb_algo_desc cb_algo_pairwise = {
    .name = "pairwise",
    .summary = "alltoall in n-1 rounds, one peer each way per round",
    .connect = cb_comm_connect_all,
    .conn_ends = cb_all_conn_ends,
    .shared_slots = cb_one_peer_shared_slots,
    .impl = {{CB_ALLTOALL, cb_pairwise_alltoall, pairwise_time}},
};

const struct cb_algo_desc cb_algo_linear = {
    .name = "linear",
    .summary = "alltoall with every block posted at once (small messages)",
    .connect = cb_comm_connect_all,
    .conn_ends = cb_all_conn_ends,
    .shared_slots = cb_one_peer_shared_slots,
    .impl = {{CB_ALLTOALL, cb_linear_alltoall, linear_time}},
};
