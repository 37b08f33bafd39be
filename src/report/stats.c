#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

double cb_percentile_sorted(const double *sorted, size_t n, double p)
{
    if (n == 0)
        return 0.0;
    double rank = (double)n * p / 100.0;
    /* n*p/100 is often an integer that rounding pushed just above itself
     * (1000 * 99.9 / 100): do not let ceil() step to the next sample. */
    double k = ceil(rank - 1e-9 * fmax(1.0, rank));
    if (k < 1.0)
        return sorted[0];
    if (k >= (double)n)
        return sorted[n - 1];
    return sorted[(size_t)k - 1];
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double mean_of(const double *samples, size_t n)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += samples[i];
    return sum / (double)n;
}

void cb_pct_compute(const double *samples, size_t n, struct cb_pct *out)
{
    memset(out, 0, sizeof *out);
    if (n == 0)
        return;
    double *sorted = malloc(n * sizeof *sorted);
    if (!sorted) {
        /* a report must not kill the run: show the figures as unknown */
        cb_log_warn("no memory to sort %zu samples; percentiles left out", n);
        out->min = out->p50 = out->p90 = out->p99 = out->p999 = out->max = NAN;
        out->mean = mean_of(samples, n);
        return;
    }
    memcpy(sorted, samples, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, compare_doubles);
    out->min = sorted[0];
    out->p50 = cb_percentile_sorted(sorted, n, 50.0);
    out->p90 = cb_percentile_sorted(sorted, n, 90.0);
    out->p99 = cb_percentile_sorted(sorted, n, 99.0);
    out->p999 = cb_percentile_sorted(sorted, n, 99.9);
    out->max = sorted[n - 1];
    out->mean = mean_of(samples, n);
    free(sorted);
}

/* Fills iter_max[i] and returns the lowest rank holding that maximum. */
static int slowest_of_iteration(const double *per_rank, int nranks, size_t niters,
                                size_t i, double *iter_max)
{
    int slowest = 0;
    double worst = per_rank[i];
    for (int r = 1; r < nranks; r++) {
        double t = per_rank[(size_t)r * niters + i];
        if (t > worst) {   /* strict: a tie keeps the lower rank */
            worst = t;
            slowest = r;
        }
    }
    iter_max[i] = worst;
    return slowest;
}

static int most_frequent(const int *counts, int nranks, int *count)
{
    int best = 0;
    for (int r = 1; r < nranks; r++)
        if (counts[r] > counts[best])
            best = r;
    *count = counts[best];
    return best;
}

/* With fewer than two ranks (or no iterations) there is no straggler to
 * name: returns -1 with a count of 0, and the table prints "-". */
int cb_iter_max_over_ranks(const double *per_rank, int nranks, size_t niters,
                           double *iter_max, int *slowest_count)
{
    *slowest_count = 0;
    if (nranks <= 0)
        return -1;
    int *counts = nranks > 1 ? calloc((size_t)nranks, sizeof *counts) : NULL;
    for (size_t i = 0; i < niters; i++) {
        int r = slowest_of_iteration(per_rank, nranks, niters, i, iter_max);
        if (counts)
            counts[r]++;
    }
    if (!counts) {
        if (nranks > 1)
            cb_log_warn("no memory to count the slowest rank of %d ranks", nranks);
        return -1;
    }
    int slowest = niters > 0 ? most_frequent(counts, nranks, slowest_count) : -1;
    free(counts);
    return slowest;
}

int cb_last_arrival(const double *arrive, int nranks, size_t niters, double min_late, int *count)
{
    *count = 0;
    if (nranks < 2 || niters == 0)
        return -1;
    int *counts = calloc((size_t)nranks, sizeof *counts);
    double *held = calloc((size_t)nranks, sizeof *held);
    if (!counts || !held) {
        cb_log_warn("no memory to count the last arrivals of %d ranks", nranks);
        free(counts);
        free(held);
        return -1;
    }
    for (size_t i = 0; i < niters; i++) {
        int last = 0, first = 0;
        for (int r = 1; r < nranks; r++) {
            double t = arrive[(size_t)r * niters + i];
            last = t > arrive[(size_t)last * niters + i] ? r : last;
            first = t < arrive[(size_t)first * niters + i] ? r : first;
        }
        double late = arrive[(size_t)last * niters + i] - arrive[(size_t)first * niters + i];
        if (late > min_late) {
            counts[last]++;
            held[last] += late;
        }
    }
    int who = -1;
    for (int r = 0; r < nranks; r++)
        if (counts[r] && (who < 0 || held[r] > held[who]))
            who = r;
    *count = who >= 0 ? counts[who] : 0;
    free(counts);
    free(held);
    return who;
}
