/* Statistics over per-iteration times. */
#ifndef CB_STATS_H
#define CB_STATS_H

#include <stddef.h>

struct cb_pct {
    double min, p50, p90, p99, p999, max, mean;
};

/* Nearest-rank percentile of sorted[0..n): sorted[ceil(n*p/100)-1], clamped to [0, n-1]. */
double cb_percentile_sorted(const double *sorted, size_t n, double p);
/* Percentiles of samples[0..n) (not modified). n == 0 gives all zeros. */
void cb_pct_compute(const double *samples, size_t n, struct cb_pct *out);

/* per_rank[r*niters + i] = rank r's time of iteration i. Fills iter_max[i]
 * with the maximum over ranks, and returns the rank that was slowest most
 * often (ties: lowest rank); *slowest_count says how often. */
int cb_iter_max_over_ranks(const double *per_rank, int nranks, size_t niters,
                           double *iter_max, int *slowest_count);

#endif
