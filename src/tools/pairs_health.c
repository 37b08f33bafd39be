/* Pairwise link check: pairs whose passes disagree (intermittent) and pairs
 * whose hosts retransmit (lossy: TCP or RDMA), and the hosts and links they
 * name (pairs.h). */
#include "tools/pairs.h"

#include <math.h>
#include <stdlib.h>

static cb_status flags_init(struct cb_pairs_flags *f, int n)
{
    size_t nn = (size_t)n * (size_t)n + 1;
    f->pair = calloc(nn, sizeof *f->pair);
    f->host = calloc((size_t)n + 1, sizeof *f->host);
    f->host_pairs = calloc((size_t)n + 1, sizeof *f->host_pairs);
    f->host_nflagged = calloc((size_t)n + 1, sizeof *f->host_nflagged);
    f->nhosts = f->nlinks = 0;
    return f->pair && f->host && f->host_pairs && f->host_nflagged ? CB_OK : CB_ENOMEM;
}

static void flags_free(struct cb_pairs_flags *f)
{
    free(f->pair);
    free(f->host);
    free(f->host_pairs);
    free(f->host_nflagged);
    f->pair = f->host = f->host_pairs = f->host_nflagged = NULL;
}

int cb_pairs_flags_is_link(const struct cb_pairs_flags *f, int n, int i, int j)
{
    return i != j && f->pair && f->pair[i * n + j] && !f->host[i] && !f->host[j];
}

/* As for slow pairs: more than half of a host's measured pairs (at least 2). */
static void name_hosts(struct cb_pairs_flags *f, int n, const double *judged)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (i != j && !isnan(judged[i * n + j])) {
                f->host_pairs[i]++;
                f->host_nflagged[i] += f->pair[i * n + j];
            }
    for (int h = 0; h < n; h++) {
        f->host[h] = f->host_pairs[h] >= 2 && 2 * f->host_nflagged[h] > f->host_pairs[h];
        f->nhosts += f->host[h];
    }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            f->nlinks += cb_pairs_flags_is_link(f, n, i, j);
}

static double pair_spread(int n, int npasses, const double *bw_pass, int at)
{
    double lo = INFINITY, hi = 0;
    int k = 0;
    for (int q = 0; q < npasses; q++) {
        double x = bw_pass[(size_t)q * (size_t)n * (size_t)n + (size_t)at];
        if (x < 0)
            continue;
        lo = fmin(lo, x);
        hi = fmax(hi, x);
        k++;
    }
    if (k < 2)
        return NAN;
    return lo > 0 ? hi / lo : INFINITY;
}

static double pair_retrans_pct(long long retrans, long long outsegs)
{
    if (retrans < 0 || outsegs <= 0)
        return NAN;
    return 100.0 * (double)retrans / (double)outsegs;
}

/* A pair judged for loss: by its TCP share, or else by its RDMA count (NAN: neither known). */
static double loss_judged(const struct cb_pairs_health *h, const struct cb_pairs_rdma *rdma, int at)
{
    if (!isnan(h->retrans_pct[at]) || !rdma || rdma[at].total < 0)
        return h->retrans_pct[at];
    return (double)rdma[at].total;
}

cb_status cb_pairs_health_check(int n, int npasses, const double *bw_pass, const long long *retrans,
                                const long long *outsegs, const struct cb_pairs_rdma *rdma,
                                const struct cb_pairs_rule *rule, struct cb_pairs_health *h)
{
    size_t nn = (size_t)n * (size_t)n + 1;
    h->spread = calloc(nn, sizeof *h->spread);
    h->retrans_pct = calloc(nn, sizeof *h->retrans_pct);
    h->rdma_lossy = calloc(nn, sizeof *h->rdma_lossy);
    double *judged = calloc(nn, sizeof *judged);
    cb_status st = flags_init(&h->intermittent, n);
    if (st == CB_OK)
        st = flags_init(&h->lossy, n);
    if (st != CB_OK || !h->spread || !h->retrans_pct || !h->rdma_lossy || !judged) {
        free(judged);
        cb_pairs_health_free(h);
        return CB_ENOMEM;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            int at = i * n + j;
            h->spread[at] = i == j ? NAN : pair_spread(n, npasses, bw_pass, at);
            h->retrans_pct[at] = i == j ? NAN : pair_retrans_pct(retrans[at], outsegs[at]);
            h->rdma_lossy[at] = i != j && rdma && rdma[at].total > rule->max_rdma_retrans;
            judged[at] = i == j ? NAN : loss_judged(h, rdma, at);
            h->intermittent.pair[at] = !isnan(h->spread[at]) && h->spread[at] > rule->max_spread;
            h->lossy.pair[at] = h->rdma_lossy[at] || (!isnan(h->retrans_pct[at]) && retrans[at] >= CB_MIN_RETRANS &&
                                                      h->retrans_pct[at] > rule->max_retrans_pct);
        }
    name_hosts(&h->intermittent, n, h->spread);
    name_hosts(&h->lossy, n, judged);
    free(judged);
    return CB_OK;
}

void cb_pairs_health_free(struct cb_pairs_health *h)
{
    free(h->spread);
    free(h->retrans_pct);
    free(h->rdma_lossy);
    h->spread = h->retrans_pct = NULL;
    h->rdma_lossy = NULL;
    flags_free(&h->intermittent);
    flags_free(&h->lossy);
}
