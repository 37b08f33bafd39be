/* Double binary tree all-reduce (NCCL's construction). Tree 0 is a binary
 * tree over ranks: rank r with lowest set bit b has children r - b/2 and
 * r + b/2 (the latter moved closer when past the end); rank 0 is the root
 * with one child. Tree 1 mirrors it (n even) or shifts it by one (n odd), so
 * leaves of one tree (odd ranks) are the inner nodes of the other and each
 * rank forwards for at most one tree. Each tree carries half of the data:
 * reduce up to the root, broadcast down, in chunks, 2 log2 n steps deep.
 * With --channels C the data is split over C such pairs of trees, each on
 * its own connections. Below CB_TREE_SPLIT_BYTES only tree 0 (of each
 * channel) runs: there latency decides, and the two trees' phases run one
 * after the other, so splitting would double the steps to save bytes that
 * cost nothing.
 *
 * A chunk's phases, on every rank in the same order: reduce up chunk k+1 of
 * every tree, then broadcast down chunk k of every tree, so reductions near
 * the leaves overlap broadcasts near the root. Every phase is one tree (no
 * cycle), so it cannot deadlock whatever the chunk (see algo.h). Reduction
 * order per element: (first child's partial OP own) OP second child's,
 * fixed by the tree; the root's result is broadcast, so all ranks agree. */
#include "algo.h"
#include "coll/model_terms.h"

static void btree(int n, int r, struct cb_tree *t)
{
    int b = 1;
    t->nchild = 0;
    if (r == 0) {
        t->parent = -1;
        while (b < n)
            b <<= 1;
        if (n > 1)
            t->child[t->nchild++] = b >> 1;
        return;
    }
    b = r & -r;
    t->parent = (r ^ b) | (b << 1);
    if (t->parent >= n)
        t->parent = r ^ b;
    int lb = b >> 1;
    if (lb == 0)
        return;
    t->child[t->nchild++] = r - lb;
    while (lb > 0 && r + lb >= n)
        lb >>= 1;
    if (lb > 0)
        t->child[t->nchild++] = r + lb;
}

void cb_tree_build(int n, int rank, int which, struct cb_tree *t)
{
    if (which == 0) {
        btree(n, rank, t);
        return;
    }
    int odd = n % 2;
    btree(n, odd ? cb_algo_mod(rank - 1, n) : n - 1 - rank, t);
    if (t->parent >= 0)
        t->parent = odd ? (t->parent + 1) % n : n - 1 - t->parent;
    for (int i = 0; i < t->nchild; i++)
        t->child[i] = odd ? (t->child[i] + 1) % n : n - 1 - t->child[i];
}

/* Parent and children of both trees; returns how many. A peer may come
 * twice (parent in one tree, child in the other): connected once. */
static int tree_peers(int nranks, int rank, int peers[6])
{
    int np = 0;
    for (int w = 0; w < 2; w++) {
        struct cb_tree t;
        cb_tree_build(nranks, rank, w, &t);
        if (t.parent >= 0)
            peers[np++] = t.parent;
        for (int i = 0; i < t.nchild; i++)
            peers[np++] = t.child[i];
    }
    return np;
}

int cb_tree_conn_ends(int nranks, int rank, int channels)
{
    int peers[6], np = tree_peers(nranks, rank, peers), distinct = 0;
    for (int i = 0; i < np; i++) {
        int seen = 0;
        for (int k = 0; k < i; k++)
            seen |= peers[k] == peers[i];
        distinct += !seen;
    }
    return 2 * distinct * channels;
}

/* Parent and children of both trees, on every channel. */
cb_status cb_tree_connect(struct cb_comm *c)
{
    int peers[6], np = tree_peers(c->nranks, c->rank, peers);
    cb_status st = CB_OK;
    for (int ch = 0; ch < c->nchannels && st == CB_OK; ch++)
        st = cb_comm_connect_on(c, ch, peers, np, peers, np);
    return st;
}

/* One tree's part of a chunk: elements [off, off + len) on channel ch. */
struct part {
    struct cb_tree t;
    int ch;
    size_t off, len;
};

static cb_status reduce_up(struct cb_comm *c, const struct cb_coll_args *a, const struct part *p)
{
    size_t ts = cb_type_size(a->type), at = p->off * ts, bytes = p->len * ts;
    const char *own = (const char *)a->sendbuf + at;
    char *dst = (char *)a->recvbuf + at, *tmp = (char *)c->scratch + at;
    struct cb_redop partial = {a->type, a->op, c->nranks, 0}, last = {a->type, a->op, c->nranks, 1};
    const struct cb_tree *t = &p->t;
    struct cb_send_chan *up = t->parent >= 0 ? cb_send_on(c, p->ch, t->parent) : NULL;
    if (t->nchild == 0)   /* lent: its only overwrite, in place, is the final value, made after the parent read it */
        return cb_prim_send_lend(up, own, bytes);
    struct cb_recv_chan *c0 = cb_recv_on(c, p->ch, t->child[0]);
    if (t->nchild == 1)
        return up ? cb_prim_recv_reduce_send(c0, up, own, bytes, &partial)
                  : cb_prim_recv_reduce_copy(c0, own, dst, bytes, &last);
    cb_status st = cb_prim_recv_reduce_copy(c0, own, tmp, bytes, &partial);
    if (st != CB_OK)
        return st;
    struct cb_recv_chan *c1 = cb_recv_on(c, p->ch, t->child[1]);
    return up ? cb_prim_recv_reduce_send(c1, up, tmp, bytes, &partial)
              : cb_prim_recv_reduce_copy(c1, tmp, dst, bytes, &last);
}

static cb_status broadcast_down(struct cb_comm *c, const struct cb_coll_args *a, const struct part *p)
{
    size_t ts = cb_type_size(a->type), bytes = p->len * ts;
    char *dst = (char *)a->recvbuf + p->off * ts;
    const struct cb_tree *t = &p->t;
    cb_status st = CB_OK;
    int i = 0;
    if (t->parent >= 0) {
        struct cb_recv_chan *up = cb_recv_on(c, p->ch, t->parent);
        if (t->nchild == 0)
            return cb_prim_recv(up, dst, bytes);
        st = cb_prim_recv_copy_send(up, cb_send_on(c, p->ch, t->child[0]), dst, bytes);
        i = 1;
    }
    for (; i < t->nchild && st == CB_OK; i++)
        st = cb_prim_send_lend(cb_send_on(c, p->ch, t->child[i]), dst, bytes);   /* final: lent */
    return st;
}

/* How many trees (1 or 2) per channel carry this vector. */
static int trees_for(const struct cb_coll_args *a)
{
    return a->count * cb_type_size(a->type) < CB_TREE_SPLIT_BYTES ? 1 : 2;
}

/* Tree k of ntrees * C: channel k / ntrees, shape k % ntrees, the k-th share
 * of the data, and within it chunk `chunk` of `chunk_elems`. */
static struct part part_of(const struct cb_comm *c, const struct cb_coll_args *a, int k, int ntrees,
                           size_t chunk, size_t chunk_elems)
{
    size_t nparts = (size_t)ntrees * (size_t)c->nchannels;
    struct part p;
    cb_tree_build(c->nranks, c->rank, k % ntrees, &p.t);
    p.ch = k / ntrees;
    size_t lo = a->count * (size_t)k / nparts, hi = a->count * (size_t)(k + 1) / nparts;
    size_t first = lo + chunk * chunk_elems;
    p.off = first < hi ? first : hi;
    p.len = hi - p.off < chunk_elems ? hi - p.off : chunk_elems;
    return p;
}

typedef cb_status (*phase_fn)(struct cb_comm *, const struct cb_coll_args *, const struct part *);

static cb_status phase(struct cb_comm *c, const struct cb_coll_args *a, size_t chunk, size_t ce, phase_fn fn)
{
    int ntrees = trees_for(a);
    for (int k = 0; k < ntrees * c->nchannels; k++) {
        struct part p = part_of(c, a, k, ntrees, chunk, ce);
        cb_status st = p.len > 0 ? fn(c, a, &p) : CB_OK;
        if (st != CB_OK)
            return st;
    }
    return CB_OK;
}

cb_status cb_tree_all_reduce(struct cb_comm *c, const struct cb_coll_args *a)
{
    size_t ce = cb_algo_chunk_elems(c, a->type);
    size_t nparts = (size_t)trees_for(a) * (size_t)c->nchannels;
    size_t per_tree = (a->count + nparts - 1) / nparts;
    size_t nchunks = (per_tree + ce - 1) / ce;
    cb_status st = nchunks > 0 ? phase(c, a, 0, ce, reduce_up) : CB_OK;
    for (size_t k = 0; k < nchunks && st == CB_OK; k++) {
        if (k + 1 < nchunks)
            st = phase(c, a, k + 1, ce, reduce_up);
        if (st == CB_OK)
            st = phase(c, a, k, ce, broadcast_down);
    }
    return st;
}

/* Cost model: pipelined trees, 2 hops per level for the first chunk of each
 * tree (the trees' phases run one after the other), then a chunk per alpha.
 * Two trees (CB_TREE_SPLIT_BYTES and up): the busiest rank, inner in one
 * tree and leaf in the other, sends 2 S in all and reduces S (2 ranks: S,
 * and S / 2). One tree: an inner rank sends S up and 2 S down and reduces
 * 2 S (2 ranks: the root receives and reduces S, and sends S back). */
static int tree_depth(int n)
{
    int d = 0;
    while (d < 31 && (1 << d) < n)   /* 1 << 31 overflows an int */
        d++;
    return d;
}

static double tree_all_reduce_time(const struct cb_machine *m, double s, double g)
{
    double hops = 0;
    for (int lvl = 0; lvl < tree_depth(m->nranks); lvl++)
        hops += cb_model_link(m, 1 << lvl, 1, 0).a;
    struct cb_link worst = cb_model_link(m, 1, 0, 0);
    int trees = s < CB_TREE_SPLIT_BYTES ? 1 : 2, pair = m->nranks == 2;
    double chunks = cb_model_rounds(s, trees * cb_model_chunk(m) * (m->channels > 0 ? m->channels : 1));
    double sent = trees == 2 ? (pair ? 1 : 2) : (pair ? 1 : 3), reduced = trees == 2 ? (pair ? 0.5 : 1) : (pair ? 1 : 2);
    return 2 * trees * hops + (chunks - 1) * worst.a + sent * s * worst.b + reduced * s * g;
}

const struct cb_algo_desc cb_algo_tree = {
    .name = "tree",
    .summary = "double binary tree: reduce up, broadcast down, pipelined (NCCL's construction)",
    .connect = cb_tree_connect,
    .conn_ends = cb_tree_conn_ends,
    .impl = {{CB_ALL_REDUCE, cb_tree_all_reduce, tree_all_reduce_time}},
};
