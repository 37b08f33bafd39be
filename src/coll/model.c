/* The alpha-beta-gamma cost model. Each algorithm is its sequence of steps
 * as the code in src/algo/ runs it; a step costs alpha + bytes * beta of the
 * link it crosses, plus bytes * gamma when it reduces. Links: within a node,
 * or between nodes (beta times the oversubscription when every rank's
 * traffic crosses the leaf switches' uplinks at once). */
#include "model.h"
#include "algo/algo.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CHUNK (2.0 * 1024 * 1024)
#define LINEAR_POST_SHARE 0.25   /* linear alltoall: a posted send costs this share of alpha */

struct link {
    double a, b;
};

static int per_node(const struct cb_machine *m)
{
    int p = m->nodes > 1 ? m->nranks / m->nodes : m->nranks;
    return p > 0 ? p : 1;
}

static int spans_leaves(const struct cb_machine *m, int d)
{
    return m->nodes_per_leaf > 0 && m->nodes > m->nodes_per_leaf && d >= per_node(m) * m->nodes_per_leaf;
}

/* Every rank talks to a peer `d` ranks away. `aligned`: partners pair up
 * inside blocks of 2d ranks (XOR partners), so d < ranks per node stays in
 * the node; otherwise (rings, trees) some pair crosses nodes whenever there
 * are several. `all_cross`: all ranks' traffic goes through the leaf uplinks. */
static struct link link_at(const struct cb_machine *m, int d, int aligned, int all_cross)
{
    int p = per_node(m);
    int inside = m->nodes <= 1 || (aligned && d < p && p % (2 * d) == 0);
    const struct cb_cost *c = inside ? &m->intra : &m->inter;
    struct link l = {c->alpha_s, c->beta_s};
    if (!inside && all_cross && spans_leaves(m, d))
        l.b *= m->oversub > 1 ? m->oversub : 1;
    return l;
}

static double gamma_of(const struct cb_machine *m, cb_type t)
{
    return m->intra.gamma_s[t] > 0 ? m->intra.gamma_s[t] : m->intra.gamma_s[CB_FLOAT];
}

static double chunk_of(const struct cb_machine *m)
{
    return m->intra.chunk_bytes ? (double)m->intra.chunk_bytes : DEFAULT_CHUNK;
}

static double rounds(double bytes, double per_round)
{
    double r = bytes > 0 ? (double)(size_t)((bytes + per_round - 1) / per_round) : 1;
    return r > 0 ? r : 1;
}

static int pow2_floor(int n)
{
    int p = 1;
    while (p * 2 <= n)
        p *= 2;
    return p;
}

/* The fold of a rank count that is not a power of two: a step there and one back. */
static double fold(const struct cb_machine *m, double in_bytes, double out_bytes, double reduce_bytes, double g)
{
    if (pow2_floor(m->nranks) == m->nranks)
        return 0;
    struct link l = link_at(m, 1, 1, 0);
    return 2 * l.a + (in_bytes + out_bytes) * l.b + reduce_bytes * g;
}

/* `fused`: each step reduces straight from the received slot into the slot
 * it sends (recv_reduce_send), so the copy out of the FIFO is the
 * reduction's read: half the transfer term (beta counts a copy in and a copy
 * out) is saved. Exchanges through scratch (rd, rabenseifner) pay it all. */
static double ring_steps(const struct cb_machine *m, int steps, double piece, double g, int fused)
{
    struct link l = link_at(m, 1, 0, 0);
    double r = rounds(piece, chunk_of(m) * (m->channels > 0 ? m->channels : 1));
    return steps * (r * l.a + piece * ((fused ? l.b / 2 : l.b) + g));
}

/* Recursive doubling (dir 1: distances 1, 2, ..) or halving (dir -1), moving
 * bytes * d / p at distance d (share) or all bytes (!share). */
static double xor_steps(const struct cb_machine *m, double bytes, int share, double g)
{
    int p = pow2_floor(m->nranks);
    double t = 0, spread = (double)m->nranks / p;
    for (int d = 1; d < p; d *= 2) {
        struct link l = link_at(m, (int)(d * spread), 1, 1);
        double moved = share ? bytes * d / p : bytes;
        t += l.a + moved * (l.b + g);
    }
    return t;
}

static int tree_depth(int n)
{
    int d = 0;
    while ((1 << d) < n)
        d++;
    return d;
}

/* Pipelined trees: 2 hops per level for the first chunk of each tree (the
 * trees' phases run one after the other), then a chunk per alpha. Two trees
 * (CB_TREE_SPLIT_BYTES and up): the busiest rank, inner in one tree and leaf
 * in the other, sends 2 S in all and reduces S (2 ranks: S, and S / 2). One
 * tree: an inner rank sends S up and 2 S down and reduces 2 S (2 ranks: the
 * root receives and reduces S, and sends S back). */
static double tree_all_reduce(const struct cb_machine *m, double s, double g)
{
    double hops = 0;
    for (int lvl = 0; lvl < tree_depth(m->nranks); lvl++)
        hops += link_at(m, 1 << lvl, 1, 0).a;
    struct link worst = link_at(m, 1, 0, 0);
    int trees = s < CB_TREE_SPLIT_BYTES ? 1 : 2, pair = m->nranks == 2;
    double chunks = rounds(s, trees * chunk_of(m) * (m->channels > 0 ? m->channels : 1));
    double sent = trees == 2 ? (pair ? 1 : 2) : (pair ? 1 : 3), reduced = trees == 2 ? (pair ? 0.5 : 1) : (pair ? 1 : 2);
    return 2 * trees * hops + (chunks - 1) * worst.a + sent * s * worst.b + reduced * s * g;
}

/* The link every rank's traffic crosses at once when each talks to all. */
static struct link top_link(const struct cb_machine *m)
{
    return link_at(m, m->nranks / 2 > 0 ? m->nranks / 2 : 1, 0, 1);
}

/* r rounds of posting a send to each of the other n - 1 ranks at once. */
static double posted_rounds(struct link l, int n, double r)
{
    return r * (l.a + (n - 1) * l.a * LINEAR_POST_SHARE);
}

static double alltoall(const struct cb_machine *m, double s, int linear)
{
    int n = m->nranks;
    double block = s / n, r = rounds(block, chunk_of(m));
    struct link l = top_link(m);
    if (linear)
        return posted_rounds(l, n, r) + (n - 1) * block * l.b;
    return (n - 1) * (r * l.a + block * l.b);
}

/* Direct: every rank sends a piece to each of the n - 1 others at once
 * (posted sends cost a share of alpha, as in the linear alltoall) and
 * reduces its own piece from all of them straight from where they land,
 * fused like the ring's steps; all_reduce then sends it to everyone.
 * All ranks' traffic crosses the top of the network at once. */
static double direct_steps(const struct cb_machine *m, double piece, double g, int gather)
{
    int n = m->nranks;
    struct link l = top_link(m);
    double posts = posted_rounds(l, n, rounds(piece, chunk_of(m)));
    double t = posts + (n - 1) * piece * (l.b / 2 + g);
    return gather ? t + posts + (n - 1) * piece * l.b : t;
}

double cb_model_time(const struct cb_machine *m, cb_coll coll, cb_algo algo, size_t bytes, cb_type t)
{
    int n = m->nranks;
    double s = (double)bytes, g = gamma_of(m, t), piece = s / n;
    if (n <= 1)
        return coll == CB_ALL_REDUCE && algo == CB_ALGO_RING ? s * g : 0;
    switch (coll * 16 + algo) {
    case CB_ALL_REDUCE * 16 + CB_ALGO_RING:
        return ring_steps(m, n - 1, piece, g, 1) + ring_steps(m, n - 1, piece, 0, 0);
    case CB_ALL_REDUCE * 16 + CB_ALGO_TREE: return tree_all_reduce(m, s, g);
    case CB_ALL_REDUCE * 16 + CB_ALGO_RD: return xor_steps(m, s, 0, g) + fold(m, s, s, s, g);
    case CB_ALL_REDUCE * 16 + CB_ALGO_RABENSEIFNER:
        return xor_steps(m, s, 1, g) + xor_steps(m, s, 1, 0) + fold(m, s, s, s, g);
    case CB_ALL_REDUCE * 16 + CB_ALGO_DIRECT: return direct_steps(m, piece, g, 1);
    case CB_ALL_GATHER * 16 + CB_ALGO_RING: return ring_steps(m, n - 1, piece, 0, 0);
    case CB_ALL_GATHER * 16 + CB_ALGO_RD: return xor_steps(m, s, 1, 0) + fold(m, piece, s, 0, g);
    case CB_REDUCE_SCATTER * 16 + CB_ALGO_RING: return ring_steps(m, n - 1, piece, g, 1);
    case CB_REDUCE_SCATTER * 16 + CB_ALGO_RD: return xor_steps(m, s, 1, g) + fold(m, s, piece, s, g);
    case CB_REDUCE_SCATTER * 16 + CB_ALGO_DIRECT: return direct_steps(m, piece, g, 0);
    case CB_ALLTOALL * 16 + CB_ALGO_PAIRWISE: return alltoall(m, s, 0);
    case CB_ALLTOALL * 16 + CB_ALGO_LINEAR: return alltoall(m, s, 1);
    case CB_BROADCAST * 16 + CB_ALGO_RING: return (n - 1) * link_at(m, 1, 0, 0).a + s * link_at(m, 1, 0, 0).b;
    case CB_REDUCE * 16 + CB_ALGO_RING: return (n - 1) * link_at(m, 1, 0, 0).a + s * (link_at(m, 1, 0, 0).b + g);
    case CB_SENDRECV * 16 + CB_ALGO_RING: return link_at(m, 1, 0, 0).a + s * link_at(m, 1, 0, 0).b;
    default: return -1;
    }
}

int cb_model_algos(cb_coll coll, cb_algo *out, int max)
{
    static const cb_algo ar[] = {CB_ALGO_RING, CB_ALGO_TREE, CB_ALGO_RD, CB_ALGO_RABENSEIFNER, CB_ALGO_DIRECT};
    static const cb_algo ag[] = {CB_ALGO_RING, CB_ALGO_RD};
    static const cb_algo rs[] = {CB_ALGO_RING, CB_ALGO_RD, CB_ALGO_DIRECT};
    static const cb_algo aa[] = {CB_ALGO_PAIRWISE, CB_ALGO_LINEAR};
    static const cb_algo one[] = {CB_ALGO_RING};
#define LIST(x) {(x), (int)(sizeof(x) / sizeof((x)[0]))}
    static const struct { const cb_algo *algo; int n; } by_coll[CB_NCOLLS] = {
        [CB_ALL_REDUCE] = LIST(ar), [CB_ALL_GATHER] = LIST(ag), [CB_REDUCE_SCATTER] = LIST(rs),
        [CB_ALLTOALL] = LIST(aa), [CB_BROADCAST] = LIST(one), [CB_REDUCE] = LIST(one), [CB_SENDRECV] = LIST(one),
    };
#undef LIST
    /* auto times up to CB_AUTO_MAX_TRIED candidates: a longer list would be cut */
    _Static_assert(sizeof ar / sizeof ar[0] <= CB_AUTO_MAX_TRIED, "raise CB_AUTO_MAX_TRIED");
    int n = by_coll[coll].n < max ? by_coll[coll].n : max;
    memcpy(out, by_coll[coll].algo, sizeof *out * (size_t)n);
    return n;
}

cb_algo cb_model_best(const struct cb_machine *m, cb_coll coll, size_t bytes, cb_type t)
{
    cb_algo list[8], best = CB_ALGO_AUTO;
    int n = cb_model_algos(coll, list, 8);
    double best_t = 0;
    for (int i = 0; i < n; i++) {
        double x = cb_model_time(m, coll, list[i], bytes, t);
        if (x >= 0 && (best == CB_ALGO_AUTO || x < best_t)) {
            best = list[i];
            best_t = x;
        }
    }
    return best;
}

double cb_model_busbw_factor(cb_coll coll, int n)
{
    if (coll == CB_ALL_REDUCE)
        return 2.0 * (n - 1) / n;
    if (coll == CB_ALL_GATHER || coll == CB_REDUCE_SCATTER || coll == CB_ALLTOALL)
        return (double)(n - 1) / n;
    return 1;
}

void cb_machine_flat(struct cb_machine *m, int nranks, int channels, const struct cb_cost *c)
{
    memset(m, 0, sizeof *m);
    m->nranks = nranks;
    m->nodes = 1;
    m->channels = channels;
    m->oversub = 1;
    m->intra = *c;
    m->inter = *c;
}
