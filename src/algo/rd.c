/* Recursive doubling all-reduce (latency: log2 n exchanges of the whole
 * vector) and Rabenseifner's all-reduce (recursive halving reduce-scatter,
 * then recursive doubling all-gather: 2 log2 n steps, ~2 S bytes per rank).
 * Rank counts that are not powers of two fold first (see struct cb_fold).
 *
 * Every reduction puts the lower ranks' partial first, so every element is
 * reduced in one fixed order, the same on every rank, whatever the timing:
 * for 4 ranks ((r0 r1) (r2 r3)). Each exchange is cb_prim_sendrecv, which
 * interleaves both directions, so any size is deadlock-free. */
#include "algo.h"
#include "coll/model_terms.h"

void cb_fold_init(struct cb_fold *f, int n, int rank)
{
    f->n = n;
    for (f->p = 1; f->p <= n / 2; f->p *= 2)   /* not p * 2 <= n: that overflows near INT_MAX */
        ;
    f->rem = n - f->p;
    if (rank < 2 * f->rem)
        f->v = rank % 2 ? rank / 2 : -1;
    else
        f->v = rank - f->rem;
}

int cb_fold_rank(const struct cb_fold *f, int v) { return v < f->rem ? 2 * v + 1 : v + f->rem; }
int cb_fold_first(const struct cb_fold *f, int v) { return v < f->rem ? 2 * v : v + f->rem; }

/* Every peer any recursive doubling/halving here talks to (distinct), on
 * channel 0; returns how many (at most 64: log2 of an int's range, plus one). */
static int rd_peers(int nranks, int rank, int peers[64])
{
    struct cb_fold f;
    int np = 0;
    cb_fold_init(&f, nranks, rank);
    if (f.v < 0)
        peers[np++] = rank + 1;
    else if (cb_fold_absorbs(&f, rank))
        peers[np++] = rank - 1;
    for (int m = 1; f.v >= 0 && m < f.p; m <<= 1)
        peers[np++] = cb_fold_rank(&f, f.v ^ m);
    return np;
}

cb_status cb_rd_connect(struct cb_comm *c)
{
    int peers[64], np = rd_peers(c->nranks, c->rank, peers);
    return cb_comm_connect(c, peers, np, peers, np);
}

int cb_rd_conn_ends(int nranks, int rank, int channels)
{
    int peers[64];
    (void)channels;
    return 2 * rd_peers(nranks, rank, peers);
}

/* dst = (lower's partial) OP (upper's), the last reduction divides for avg. */
static void reduce_ordered(void *dst, const void *mine, const void *theirs, int i_am_lower, size_t count,
                           const struct cb_coll_args *a, int n, int last)
{
    const void *lo = i_am_lower ? mine : theirs, *hi = i_am_lower ? theirs : mine;
    if (last)
        cb_reduce_last(dst, lo, hi, count, a->type, a->op, n);
    else
        cb_reduce(dst, lo, hi, count, a->type, a->op);
}

/* Fold in: the folding rank hands its input over; its partner starts from
 * (left OP own). Returns with dst holding this participant's partial. */
static cb_status fold_in(struct cb_comm *c, const struct cb_fold *f, const struct cb_coll_args *a, size_t count)
{
    size_t bytes = count * cb_type_size(a->type);
    if (!cb_fold_absorbs(f, c->rank)) {
        cb_algo_copy(a->recvbuf, a->sendbuf, bytes);
        return CB_OK;
    }
    cb_status st = cb_prim_recv(&c->recv[c->rank - 1], c->scratch, bytes);
    if (st == CB_OK)
        cb_reduce(a->recvbuf, c->scratch, a->sendbuf, count, a->type, a->op);
    return st;
}

/* A folding rank: give the input, get the result. */
static cb_status folded_rank(struct cb_comm *c, const void *src, size_t sbytes, void *dst, size_t rbytes)
{
    cb_status st = cb_prim_send(&c->send[c->rank + 1], src, sbytes);
    return st == CB_OK ? cb_prim_recv(&c->recv[c->rank + 1], dst, rbytes) : st;
}

static cb_status fold_out(struct cb_comm *c, const struct cb_fold *f, const void *src, size_t bytes)
{
    return cb_fold_absorbs(f, c->rank) ? cb_prim_send(&c->send[c->rank - 1], src, bytes) : CB_OK;
}

cb_status cb_rd_all_reduce(struct cb_comm *c, const struct cb_coll_args *a)
{
    struct cb_fold f;
    size_t bytes = a->count * cb_type_size(a->type);
    cb_fold_init(&f, c->nranks, c->rank);
    if (f.v < 0)
        return folded_rank(c, a->sendbuf, bytes, a->recvbuf, bytes);
    cb_status st = fold_in(c, &f, a, a->count);
    for (int m = 1; m < f.p && st == CB_OK; m <<= 1) {
        int peer = cb_fold_rank(&f, f.v ^ m);
        st = cb_prim_sendrecv(&c->send[peer], a->recvbuf, bytes, &c->recv[peer], c->scratch, bytes);
        if (st == CB_OK)
            reduce_ordered(a->recvbuf, a->recvbuf, c->scratch, !(f.v & m), a->count, a, c->nranks, 2 * m == f.p);
    }
    return st == CB_OK ? fold_out(c, &f, a->recvbuf, bytes) : st;
}

/* Elements of participants' pieces [lo, hi) when count is split over p. */
struct span { size_t off, len; };
static struct span span_of(size_t count, int p, int lo, int hi)
{
    size_t a = count * (size_t)lo / (size_t)p, b = count * (size_t)hi / (size_t)p;
    return (struct span){a, b - a};
}

/* Recursive halving: at distance m, keep the half of the current range of
 * pieces that holds this participant's own piece, send the other half. */
static cb_status halving(struct cb_comm *c, const struct cb_fold *f, const struct cb_coll_args *a)
{
    size_t ts = cb_type_size(a->type);
    char *dst = a->recvbuf, *tmp = c->scratch;
    int lo = 0;
    for (int m = f->p / 2; m >= 1; m >>= 1) {
        int upper = (f->v & m) != 0, peer = cb_fold_rank(f, f->v ^ m);
        struct span keep = span_of(a->count, f->p, lo + upper * m, lo + upper * m + m);
        struct span give = span_of(a->count, f->p, lo + !upper * m, lo + !upper * m + m);
        cb_status st = cb_prim_sendrecv(&c->send[peer], dst + give.off * ts, give.len * ts, &c->recv[peer],
                                        tmp + keep.off * ts, keep.len * ts);
        if (st != CB_OK)
            return st;
        reduce_ordered(dst + keep.off * ts, dst + keep.off * ts, tmp + keep.off * ts, !upper, keep.len, a,
                       c->nranks, m == 1);
        lo += upper * m;
    }
    return CB_OK;
}

/* Recursive doubling all-gather of the pieces, in place in dst. */
static cb_status doubling(struct cb_comm *c, const struct cb_fold *f, const struct cb_coll_args *a)
{
    size_t ts = cb_type_size(a->type);
    char *dst = a->recvbuf;
    for (int m = 1; m < f->p; m <<= 1) {
        int mine = f->v & ~(m - 1), theirs = (f->v ^ m) & ~(m - 1), peer = cb_fold_rank(f, f->v ^ m);
        struct span s = span_of(a->count, f->p, mine, mine + m), r = span_of(a->count, f->p, theirs, theirs + m);
        cb_status st = cb_prim_sendrecv(&c->send[peer], dst + s.off * ts, s.len * ts, &c->recv[peer],
                                        dst + r.off * ts, r.len * ts);
        if (st != CB_OK)
            return st;
    }
    return CB_OK;
}

cb_status cb_rabenseifner_all_reduce(struct cb_comm *c, const struct cb_coll_args *a)
{
    struct cb_fold f;
    size_t bytes = a->count * cb_type_size(a->type);
    cb_fold_init(&f, c->nranks, c->rank);
    if (f.v < 0)
        return folded_rank(c, a->sendbuf, bytes, a->recvbuf, bytes);
    cb_status st = fold_in(c, &f, a, a->count);
    if (st == CB_OK)
        st = halving(c, &f, a);
    if (st == CB_OK)
        st = doubling(c, &f, a);
    return st == CB_OK ? fold_out(c, &f, a->recvbuf, bytes) : st;
}

/* Cost model: log2 p exchanges (of everything, or of a halving share), and
 * the fold there and back when n is not a power of two. */
static double rd_all_reduce_time(const struct cb_machine *m, double s, double g)
{
    return cb_model_xor_steps(m, s, 0, g) + cb_model_fold(m, s, s, s, g);
}

static double rd_all_gather_time(const struct cb_machine *m, double s, double g)
{
    return cb_model_xor_steps(m, s, 1, 0) + cb_model_fold(m, s / m->nranks, s, 0, g);
}

static double rd_reduce_scatter_time(const struct cb_machine *m, double s, double g)
{
    return cb_model_xor_steps(m, s, 1, g) + cb_model_fold(m, s, s / m->nranks, s, g);
}

static double rabenseifner_time(const struct cb_machine *m, double s, double g)
{
    return cb_model_xor_steps(m, s, 1, g) + cb_model_xor_steps(m, s, 1, 0) + cb_model_fold(m, s, s, s, g);
}

const struct cb_algo_desc cb_algo_rd = {
    .name = "rd",
    .summary = "recursive doubling (all_reduce, all_gather), recursive halving (reduce_scatter)",
    .connect = cb_rd_connect,
    .conn_ends = cb_rd_conn_ends,
    .impl = {
        {CB_ALL_REDUCE, cb_rd_all_reduce, rd_all_reduce_time},
        {CB_ALL_GATHER, cb_rd_all_gather, rd_all_gather_time},
        {CB_REDUCE_SCATTER, cb_rd_reduce_scatter, rd_reduce_scatter_time},
    },
};

const struct cb_algo_desc cb_algo_rabenseifner = {
    .name = "rabenseifner",
    .summary = "recursive halving reduce-scatter, then recursive doubling all-gather",
    .connect = cb_rd_connect,
    .conn_ends = cb_rd_conn_ends,
    .impl = {{CB_ALL_REDUCE, cb_rabenseifner_all_reduce, rabenseifner_time}},
};
