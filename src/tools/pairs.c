/* Pairwise link check: schedule of rounds and the outlier rule (pairs.h). */
#include "pairs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAD_TO_SIGMA 1.4826

/* ---- schedule ---- */

int cb_pairs_nrounds(int n, int quick)
{
    if (n < 2)
        return 0;
    if (n == 2)
        return 1;
    if (quick)
        return n % 2 ? 3 : 2;
    return n % 2 ? n : n - 1;
}

/* Ring neighbours: even n in 2 rounds (i, i+1) for even i, then for odd i;
 * odd n the same for i <= n-2, then (n-1, 0) alone. */
static int quick_partner(int n, int round, int rank)
{
    if (round == 2)
        return rank == 0 ? n - 1 : rank == n - 1 ? 0 : -1;
    int up = rank % 2 == round;   /* this rank is the lower end of its pair */
    int p = up ? rank + 1 : rank - 1;
    if (n % 2 == 0)
        return (p + n) % n;
    return p < 0 || p >= n ? -1 : p;
}

int cb_pairs_partner(int n, int quick, int round, int rank)
{
    if (n < 2 || rank < 0 || rank >= n || round < 0 || round >= cb_pairs_nrounds(n, quick))
        return -1;
    if (n == 2)
        return 1 - rank;
    if (quick)
        return quick_partner(n, round, rank);
    int m = n % 2 ? n + 1 : n, mod = m - 1, p;
    if (rank == m - 1)
        p = round;
    else if (rank == round)
        p = m - 1;
    else
        p = ((2 * round - rank) % mod + mod) % mod;
    return p >= n ? -1 : p;
}

/* ---- statistics ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double cb_pairs_median(double *vals, int n)
{
    if (n <= 0)
        return NAN;
    qsort(vals, (size_t)n, sizeof *vals, cmp_double);
    return n % 2 ? vals[n / 2] : 0.5 * (vals[n / 2 - 1] + vals[n / 2]);
}

/* The host's own reference: its best pair (the highest bandwidth, or the
 * lowest latency). A slow host has no good pair; a slow link leaves its two
 * hosts their other pairs; noise that hits some pairs leaves each host one. */
static double host_reference(int n, const double *m, int host, int best_is_high)
{
    double best = NAN;
    for (int j = 0; j < n; j++) {
        double x = m[host * n + j];
        if (j == host || x < 0)
            continue;
        if (isnan(best) || (best_is_high ? x > best : x < best))
            best = x;
    }
    return best;
}

static double reference(int n, const double *m, int best_is_high, double *refs)
{
    int k = 0;
    for (int h = 0; h < n; h++) {
        double r = host_reference(n, m, h, best_is_high);
        if (!isnan(r))
            refs[k++] = r;
    }
    return cb_pairs_median(refs, k);
}

/* The healthy pairs (i < j) of m, on the good side of `bound`, into out. */
static int healthy_pairs(int n, const double *m, double bound, int low_is_bad, double *out)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double x = m[i * n + j];
            if (x > 0 && (low_is_bad ? x >= bound : x <= bound))
                out[k++] = x;
        }
    return k;
}

/* R, the median of the healthy pairs, and sigma, their noise as a factor:
 * 1.4826 x the median of |ln(value / R)| (noise of bandwidth and latency is
 * multiplicative, hence the logarithm). Healthy means on the good side of
 * the first reference R0 (the median of the hosts' own references) / factor. */
static void healthy_stats(int n, const double *m, double r0, double bound, int low_is_bad, double *tmp,
                          double *ref, double *sigma)
{
    int k = healthy_pairs(n, m, bound, low_is_bad, tmp);
    *ref = k ? cb_pairs_median(tmp, k) : r0;
    for (int i = 0; i < k; i++)
        tmp[i] = fabs(log(tmp[i] / *ref));
    *sigma = k ? MAD_TO_SIGMA * cb_pairs_median(tmp, k) : 0.0;
}

static void set_limits(int n, const double *bw, const double *lat, const struct cb_pairs_rule *rule,
                       struct cb_pairs_verdict *v, double *tmp, double *refs)
{
    double r0 = reference(n, bw, 1, refs);
    healthy_stats(n, bw, r0, r0 / rule->bw_factor, 1, tmp, &v->ref_bw, &v->sigma_bw);
    v->limit_bw = v->ref_bw * fmin(1.0 / rule->bw_factor, exp(-rule->nsigma * v->sigma_bw));
    r0 = reference(n, lat, 0, refs);
    healthy_stats(n, lat, r0, r0 * rule->lat_factor, 0, tmp, &v->ref_lat, &v->sigma_lat);
    v->limit_lat = v->ref_lat * fmax(rule->lat_factor, exp(rule->nsigma * v->sigma_lat));
}

static void mark_pairs(int n, const double *bw, const double *lat, struct cb_pairs_verdict *v)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            int s = 0;
            if (i == j || bw[i * n + j] < 0)
                continue;
            if (!isnan(v->limit_bw) && bw[i * n + j] < v->limit_bw)
                s |= CB_SLOW_BW;
            if (lat[i * n + j] >= 0 && !isnan(v->limit_lat) && lat[i * n + j] > v->limit_lat)
                s |= CB_SLOW_LAT;
            v->pair_slow[i * n + j] = s;
            v->host_pairs[i]++;
            v->host_nslow[i] += s != 0;
        }
}

static void mark_hosts(int n, struct cb_pairs_verdict *v)
{
    for (int h = 0; h < n; h++) {
        v->host_slow[h] = v->host_pairs[h] >= 2 && 2 * v->host_nslow[h] > v->host_pairs[h];
        v->nslow_hosts += v->host_slow[h];
    }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            v->nslow_links += cb_pairs_is_slow_link(v, i, j);
}

void cb_pairs_rule_default(struct cb_pairs_rule *rule)
{
    rule->bw_factor = 2.0;
    rule->lat_factor = 3.0;
    rule->nsigma = 4.0;
    rule->max_spread = 2.0;
    rule->max_retrans_pct = 0.25;
    rule->max_rdma_retrans = 20;
}

cb_status cb_pairs_classify(int n, const double *bw, const double *lat, const struct cb_pairs_rule *rule,
                            struct cb_pairs_verdict *v)
{
    size_t nn = (size_t)n * (size_t)n;
    memset(v, 0, sizeof *v);
    v->n = n;
    v->pair_slow = calloc(nn + 1, sizeof *v->pair_slow);
    v->host_slow = calloc((size_t)n + 1, sizeof *v->host_slow);
    v->host_pairs = calloc((size_t)n + 1, sizeof *v->host_pairs);
    v->host_nslow = calloc((size_t)n + 1, sizeof *v->host_nslow);
    double *tmp = calloc(nn + 1, sizeof *tmp), *refs = calloc((size_t)n + 1, sizeof *refs);
    cb_status st = CB_ENOMEM;
    if (v->pair_slow && v->host_slow && v->host_pairs && v->host_nslow && tmp && refs) {
        set_limits(n, bw, lat, rule, v, tmp, refs);
        mark_pairs(n, bw, lat, v);
        mark_hosts(n, v);
        st = CB_OK;
    }
    free(tmp);
    free(refs);
    if (st != CB_OK)
        cb_pairs_verdict_free(v);
    return st;
}

void cb_pairs_verdict_free(struct cb_pairs_verdict *v)
{
    free(v->pair_slow);
    free(v->host_slow);
    free(v->host_pairs);
    free(v->host_nslow);
    v->pair_slow = v->host_slow = v->host_pairs = v->host_nslow = NULL;
}

int cb_pairs_is_slow_link(const struct cb_pairs_verdict *v, int i, int j)
{
    return i != j && v->pair_slow[i * v->n + j] && !v->host_slow[i] && !v->host_slow[j];
}
