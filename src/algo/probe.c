/* Start-up measurement of the cost-model terms, on the job's own ranks and
 * connections, so that oversubscription, the transport and the memory system
 * are all in the numbers: every rank exchanges with its ring neighbours at
 * once, the way an algorithm's steps do. Collective; outside any timed loop. */
#include "algo.h"
#include "core/clock.h"

#include <stdlib.h>

#define SMALL_BYTES 8
#define SMALL_REPS 20
#define LARGE_BYTES (256 * 1024)
#define LARGE_REPS 4
#define TRIALS 15
#define REDUCE_BYTES (64 * 1024)
#define REDUCE_REPS 21

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Seconds per hop of a token passed around the ring: each hop waits for the
 * previous one, so this includes what a dependent step really pays (a rank
 * sharing a core must be scheduled first). */
static cb_status ring_lap(struct cb_comm *c, char *buf, int laps, double *secs)
{
    int n = c->nranks, pos = cb_ring_pos(c, 0), next = cb_ring_at(c, 0, pos + 1), prev = cb_ring_at(c, 0, pos - 1);
    cb_status st = CB_OK;
    double t0 = cb_now_s();
    for (int i = 0; i < laps && st == CB_OK; i++) {
        if (pos == 0)
            st = cb_prim_send(&c->send[next], buf, SMALL_BYTES);
        if (st == CB_OK)
            st = cb_prim_recv(&c->recv[prev], buf + SMALL_BYTES, SMALL_BYTES);
        if (st == CB_OK && pos != 0)
            st = cb_prim_send(&c->send[next], buf, SMALL_BYTES);
    }
    *secs = (cb_now_s() - t0) / laps / n;
    return st;
}

/* Seconds per ring exchange of `bytes` (everyone sends to next and receives
 * from prev at once, as ring steps do), averaged over `reps`. */
static cb_status ring_exchange(struct cb_comm *c, char *buf, size_t bytes, int reps, double *secs)
{
    int pos = cb_ring_pos(c, 0), next = cb_ring_at(c, 0, pos + 1), prev = cb_ring_at(c, 0, pos - 1);
    cb_status st = CB_OK;
    double t0 = cb_now_s();
    for (int i = 0; i < reps && st == CB_OK; i++)
        st = cb_prim_sendrecv(&c->send[next], buf, bytes, &c->recv[prev], buf + bytes, bytes);
    *secs = (cb_now_s() - t0) / reps;
    return st;
}

/* TRIALS trials (after one for warm-up), robust against bursts of other
 * jobs on the machine: latency is the median (it keeps the scheduling a
 * dependent step pays), bandwidth a low quantile (a capacity: other jobs
 * only ever take some away). */
static cb_status quantile_of_trials(struct cb_comm *c, char *buf, size_t bytes, double *secs)
{
    double t[TRIALS + 1];
    cb_status st = cb_boot_barrier(c->boot, c->cfg.timeout_ms, "measuring the cost model");
    for (int i = 0; i <= TRIALS && st == CB_OK; i++)
        st = bytes ? ring_exchange(c, buf, bytes, LARGE_REPS, &t[i]) : ring_lap(c, buf, SMALL_REPS, &t[i]);
    qsort(t + 1, TRIALS, sizeof *t, cmp_double);
    *secs = t[1 + (bytes ? TRIALS / 8 : TRIALS / 2)];
    return st;
}

static double reduce_secs_per_byte(char *buf, cb_type t, cb_op op)
{
    size_t count = REDUCE_BYTES / cb_type_size(t);
    double s[REDUCE_REPS];
    cb_reduce(buf, buf, buf + REDUCE_BYTES, count, t, op);   /* warm-up */
    for (int i = 0; i < REDUCE_REPS; i++) {
        double t0 = cb_now_s();
        cb_reduce(buf, buf, buf + REDUCE_BYTES, count, t, op);
        s[i] = cb_now_s() - t0;
    }
    qsort(s, REDUCE_REPS, sizeof *s, cmp_double);
    return s[REDUCE_REPS / 2] / REDUCE_BYTES;
}

/* Link terms once (unless loaded from a file), the reduction term per type. */
cb_status cb_probe_cost(struct cb_comm *c, cb_type t, cb_op op, struct cb_cost *out)
{
    if (out->valid && out->gamma_s[t] > 0)
        return CB_OK;
    char *buf = calloc(2, LARGE_BYTES);
    if (!buf)
        return CB_ENOMEM;
    int links = !out->valid && c->nranks > 1;
    double small = out->alpha_s, large = out->alpha_s + out->beta_s * LARGE_BYTES;
    cb_status st = links ? cb_comm_connect_ring(c) : CB_OK;
    if (st == CB_OK && links)
        st = quantile_of_trials(c, buf, 0, &small);
    if (st == CB_OK && links)
        st = quantile_of_trials(c, buf, LARGE_BYTES, &large);
    /* the slowest rank's figures, so that every rank picks the same algorithm */
    double v[3] = {small, large, reduce_secs_per_byte(buf, t, op)};
    free(buf);
    if (st == CB_OK)
        st = cb_boot_allreduce_max(c->boot, v, 3, c->cfg.timeout_ms, "agreeing on the cost model");
    if (st != CB_OK)
        return st;
    out->valid = 1;
    out->alpha_s = v[0];
    out->beta_s = v[1] > v[0] ? (v[1] - v[0]) / LARGE_BYTES : 0;
    out->gamma_s[t] = v[2];
    if (links || out->chunk_bytes == 0) {
        out->chunk_bytes = cb_algo_chunk_elems(c, CB_UINT8);
        out->nranks = c->nranks;
    }
    return CB_OK;
}
