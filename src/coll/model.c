/* The alpha-beta-gamma cost model. Each algorithm is its sequence of steps
 * as the code in src/algo/ runs it; a step costs alpha + bytes * beta of the
 * link it crosses, plus bytes * gamma when it reduces. Links: within a node,
 * or between nodes (beta times the oversubscription when every rank's
 * traffic crosses the leaf switches' uplinks at once). */
#include "model_terms.h"
#include "algo/algo.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CHUNK (2.0 * 1024 * 1024)
#define LINEAR_POST_SHARE 0.25   /* a posted send costs this share of alpha */

static int per_node(const struct cb_machine *m)
{
    int p = m->nodes > 1 ? m->nranks / m->nodes : m->nranks;
    return p > 0 ? p : 1;
}

static int spans_leaves(const struct cb_machine *m, int d)
{
    return m->nodes_per_leaf > 0 && m->nodes > m->nodes_per_leaf && d >= per_node(m) * m->nodes_per_leaf;
}

struct cb_link cb_model_link(const struct cb_machine *m, int d, int aligned, int all_cross)
{
    int p = per_node(m);
    int inside = m->nodes <= 1 || (aligned && d < p && p % (2 * d) == 0);
    const struct cb_cost *c = inside ? &m->intra : &m->inter;
    struct cb_link l = {c->alpha_s, c->beta_s};
    if (!inside && all_cross && spans_leaves(m, d))
        l.b *= m->oversub > 1 ? m->oversub : 1;
    return l;
}

struct cb_link cb_model_top_link(const struct cb_machine *m)
{
    return cb_model_link(m, m->nranks / 2 > 0 ? m->nranks / 2 : 1, 0, 1);
}

static double gamma_of(const struct cb_machine *m, cb_type t)
{
    return m->intra.gamma_s[t] > 0 ? m->intra.gamma_s[t] : m->intra.gamma_s[CB_FLOAT];
}

double cb_model_chunk(const struct cb_machine *m)
{
    return m->intra.chunk_bytes ? (double)m->intra.chunk_bytes : DEFAULT_CHUNK;
}

double cb_model_rounds(double bytes, double per_round)
{
    double r = bytes > 0 ? (double)(size_t)((bytes + per_round - 1) / per_round) : 1;
    return r > 0 ? r : 1;
}

static int pow2_floor(int n)
{
    int p = 1;
    while (p <= n / 2)   /* not p * 2 <= n: that overflows near INT_MAX */
        p *= 2;
    return p;
}

double cb_model_fold(const struct cb_machine *m, double in_bytes, double out_bytes, double reduce_bytes, double g)
{
    if (pow2_floor(m->nranks) == m->nranks)
        return 0;
    struct cb_link l = cb_model_link(m, 1, 1, 0);
    return 2 * l.a + (in_bytes + out_bytes) * l.b + reduce_bytes * g;
}

/* Fused steps save half the transfer term because beta counts a copy in and
 * a copy out, and the copy out of the FIFO is then the reduction's read.
 * Exchanges through scratch (rd, rabenseifner) pay it all. */
double cb_model_ring_steps(const struct cb_machine *m, int steps, double piece, double g, int fused)
{
    struct cb_link l = cb_model_link(m, 1, 0, 0);
    double r = cb_model_rounds(piece, cb_model_chunk(m) * (m->channels > 0 ? m->channels : 1));
    return steps * (r * l.a + piece * ((fused ? l.b / 2 : l.b) + g));
}

double cb_model_xor_steps(const struct cb_machine *m, double bytes, int share, double g)
{
    int p = pow2_floor(m->nranks);
    double t = 0, spread = (double)m->nranks / p;
    for (int d = 1; d < p; d *= 2) {
        struct cb_link l = cb_model_link(m, (int)(d * spread), 1, 1);
        double moved = share ? bytes * d / p : bytes;
        t += l.a + moved * (l.b + g);
    }
    return t;
}

double cb_model_posted_rounds(struct cb_link l, int n, double r)
{
    return r * (l.a + (n - 1) * l.a * LINEAR_POST_SHARE);
}

double cb_model_time(const struct cb_machine *m, cb_coll coll, cb_algo algo, size_t bytes, cb_type t)
{
    const struct cb_algo_impl *impl = cb_algo_impl(algo, coll);
    if (!impl || !impl->model_time)
        return -1;
    double s = (double)bytes, g = gamma_of(m, t);
    if (m->nranks <= 1)   /* one rank copies; an all_reduce also finishes the values */
        return coll == CB_ALL_REDUCE && algo == CB_ALGO_RING ? s * g : 0;
    return impl->model_time(m, s, g);
}

int cb_model_algos(cb_coll coll, cb_algo *out, int max)
{
    int n = 0;
    for (int a = 0; a < CB_NALGOS && n < max; a++) {
        const struct cb_algo_impl *impl = cb_algo_impl((cb_algo)a, coll);
        if (impl && impl->model_time)
            out[n++] = (cb_algo)a;
    }
    return n;
}

cb_algo cb_model_best(const struct cb_machine *m, cb_coll coll, size_t bytes, cb_type t)
{
    cb_algo list[CB_NALGOS], best = CB_ALGO_AUTO;
    int n = cb_model_algos(coll, list, CB_NALGOS);
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
