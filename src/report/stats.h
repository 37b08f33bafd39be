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

/* The straggler: the rank the others waited for (the rank that waited
 * longest is its victim, not it). arrive[r*niters + i] = when rank r entered
 * iteration i, on one clock (rank 0's). An iteration counts when its last
 * rank came more than min_late after the first (smaller gaps are the
 * barrier's own jitter). Returns the rank that held the others up longest
 * over the counted iterations (the sum of how late it came when it was
 * last; ties: lowest rank), *count in how many it was last; -1 (count 0)
 * when no iteration counted, or with fewer than 2 ranks. */
int cb_last_arrival(const double *arrive, int nranks, size_t niters, double min_late, int *count);

#endif
