/* Recursive doubling all-gather and recursive halving reduce-scatter, for any
 * rank count: after the fold (struct cb_fold) the p participants exchange
 * ranges of whole rank blocks; participant v's blocks are the ranks it
 * stands for, [cb_fold_first(v), cb_fold_first(v + 1)), so the ranges stay
 * contiguous. log2 p exchanges plus two fold steps when n is not a power of
 * two: an equivalent of Bruck's algorithm for latency, correct for every n.
 * Reductions put the lower ranks' partial first: one fixed order per element. */
#include "algo.h"

/* Bytes of the blocks of participants [lo, hi), and where they start. */
struct range { size_t off, len; };
static struct range blocks(const struct cb_fold *f, int lo, int hi, size_t block)
{
    size_t a = (size_t)cb_fold_first(f, lo) * block, b = (size_t)cb_fold_first(f, hi) * block;
    return (struct range){a, b - a};
}

cb_status cb_rd_all_gather(struct cb_comm *c, const struct cb_coll_args *a)
{
    int n = c->nranks, r = c->rank;
    size_t block = a->count * cb_type_size(a->type);
    char *dst = a->recvbuf;
    struct cb_fold f;
    cb_algo_copy(dst + (size_t)r * block, a->sendbuf, block);
    if (n == 1)
        return CB_OK;
    cb_fold_init(&f, n, r);
    if (f.v < 0) {
        cb_status st = cb_prim_send(&c->send[r + 1], dst + (size_t)r * block, block);
        return st == CB_OK ? cb_prim_recv(&c->recv[r + 1], dst, (size_t)n * block) : st;
    }
    cb_status st = CB_OK;
    if (cb_fold_absorbs(&f, r))
        st = cb_prim_recv(&c->recv[r - 1], dst + (size_t)(r - 1) * block, block);
    for (int m = 1; m < f.p && st == CB_OK; m <<= 1) {
        int mine = f.v & ~(m - 1), theirs = (f.v ^ m) & ~(m - 1), peer = cb_fold_rank(&f, f.v ^ m);
        struct range s = blocks(&f, mine, mine + m, block), g = blocks(&f, theirs, theirs + m, block);
        /* the blocks sent are final: lent */
        st = cb_prim_sendrecv_lend(&c->send[peer], dst + s.off, s.len, &c->recv[peer], dst + g.off, g.len);
    }
    if (st == CB_OK && cb_fold_absorbs(&f, r))
        st = cb_prim_send_lend(&c->send[r - 1], dst, (size_t)n * block);
    return st;
}

/* The working copy of all n blocks: the input, or (left's input OP own) for
 * a participant that stands for two ranks. */
static cb_status start_work(struct cb_comm *c, const struct cb_fold *f, const struct cb_coll_args *a,
                            char *work, char *tmp)
{
    size_t total = a->count * (size_t)c->nranks * cb_type_size(a->type);
    if (!cb_fold_absorbs(f, c->rank)) {
        cb_algo_copy(work, a->sendbuf, total);
        return CB_OK;
    }
    cb_status st = cb_prim_recv(&c->recv[c->rank - 1], tmp, total);
    if (st == CB_OK)
        cb_reduce(work, tmp, a->sendbuf, a->count * (size_t)c->nranks, a->type, a->op);
    return st;
}

cb_status cb_rd_reduce_scatter(struct cb_comm *c, const struct cb_coll_args *a)
{
    int n = c->nranks, r = c->rank;
    size_t ts = cb_type_size(a->type), block = a->count * ts, total = block * (size_t)n;
    char *work = c->scratch, *tmp = work + total;
    struct cb_fold f;
    cb_fold_init(&f, n, r);
    if (f.v < 0) {
        cb_status st = cb_prim_send(&c->send[r + 1], a->sendbuf, total);
        return st == CB_OK ? cb_prim_recv(&c->recv[r + 1], a->recvbuf, block) : st;
    }
    cb_status st = start_work(c, &f, a, work, tmp);
    int lo = 0;
    for (int m = f.p / 2; m >= 1 && st == CB_OK; m >>= 1) {
        int upper = (f.v & m) != 0, peer = cb_fold_rank(&f, f.v ^ m);
        struct range keep = blocks(&f, lo + upper * m, lo + upper * m + m, block);
        struct range give = blocks(&f, lo + !upper * m, lo + !upper * m + m, block);
        st = cb_prim_sendrecv(&c->send[peer], work + give.off, give.len, &c->recv[peer], tmp + keep.off, keep.len);
        if (st != CB_OK)
            break;
        const void *first = upper ? tmp + keep.off : work + keep.off, *second = upper ? work + keep.off : tmp + keep.off;
        if (m == 1)
            cb_reduce_last(work + keep.off, first, second, keep.len / ts, a->type, a->op, n);
        else
            cb_reduce(work + keep.off, first, second, keep.len / ts, a->type, a->op);
        lo += upper * m;
    }
    if (st != CB_OK)
        return st;
    cb_algo_copy(a->recvbuf, work + (size_t)r * block, block);
    return cb_fold_absorbs(&f, r) ? cb_prim_send(&c->send[r - 1], work + (size_t)(r - 1) * block, block) : CB_OK;
}
