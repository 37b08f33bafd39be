/* auto's choice per size: the cost model ranks the algorithms, and where it
 * cannot tell them apart (predictions within TIE_FACTOR, the model's error
 * measured in docs/algorithms.md) the close candidates are timed on the
 * run's own buffers and the fastest is kept. */
#include "coll.h"
#include "core/clock.h"

#include "model.h"

#define TIE_FACTOR 2.0
#define BATCHES 5              /* the best batch counts: bursts of other jobs only slow one */
#define BATCH_BUDGET_S 1e-3    /* collectives per batch: about this long, as predicted */
#define BATCH_MAX_ITERS 200

/* The algorithms the model predicts within TIE_FACTOR of its best, best first. */
static int near_ties(const struct cb_comm *c, const struct cb_coll_args *a, cb_algo *out, double *best_s)
{
    struct cb_machine m;
    cb_algo list[CB_AUTO_MAX_TRIED];
    double t[CB_AUTO_MAX_TRIED] = {0};
    size_t bytes = cb_coll_size_bytes(c, a);
    int n = cb_model_algos(a->coll, list, CB_AUTO_MAX_TRIED), best = -1, k = 0;
    cb_machine_flat(&m, c->nranks, c->nchannels, &c->cost);
    for (int i = 0; i < n; i++) {
        t[i] = cb_model_time(&m, a->coll, list[i], bytes, a->type);
        if (t[i] >= 0 && (best < 0 || t[i] < t[best]))
            best = i;
    }
    if (best < 0)
        return 0;
    out[k++] = list[best];
    for (int i = 0; i < n; i++)
        if (i != best && t[i] >= 0 && t[i] <= t[best] * TIE_FACTOR)
            out[k++] = list[i];
    *best_s = t[best];
    return k;
}

/* Seconds per collective of one batch of `algo`, started after a barrier. */
static cb_status time_batch(struct cb_comm *c, const struct cb_coll_args *a, cb_algo algo, int iters,
                            double *secs)
{
    struct cb_coll_args run = *a;
    run.algo = algo;
    cb_status st = cb_boot_barrier(c->boot, c->cfg.timeout_ms, "timing auto's candidates");
    double t0 = cb_now_s();
    for (int i = 0; i < iters && st == CB_OK; i++)
        st = cb_coll_run(c, &run);
    *secs = (cb_now_s() - t0) / iters;
    return st;
}

/* Each candidate's best batch in seconds per collective (us[] is filled in
 * seconds). The candidates take turns batch by batch, after one warm-up
 * each, so that a burst of noise costs every candidate alike, not the one
 * that happened to be timed then. */
static cb_status time_candidates(struct cb_comm *c, const struct cb_coll_args *a, const cb_algo *cand, int n,
                                 int iters, double *us)
{
    cb_status st = CB_OK;
    for (int i = 0; i < n && st == CB_OK; i++)
        st = time_batch(c, a, cand[i], 1, &us[i]);   /* warm-up: its time is overwritten */
    for (int b = 0; b < BATCHES && st == CB_OK; b++)
        for (int i = 0; i < n && st == CB_OK; i++) {
            double t;
            st = time_batch(c, a, cand[i], iters, &t);
            if (b == 0 || t < us[i])
                us[i] = t;
        }
    return st;
}

cb_status cb_coll_pick(struct cb_comm *c, const struct cb_coll_args *a, cb_algo *algo,
                       struct cb_auto_trial *trial)
{
    trial->ntried = 0;
    *algo = cb_coll_choose(c, a);
    if (a->algo != CB_ALGO_AUTO || !c->cost.valid || c->nranks < 2)
        return CB_OK;
    double best_s;
    cb_algo cand[CB_AUTO_MAX_TRIED];
    int n = near_ties(c, a, cand, &best_s);
    if (n < 2)
        return CB_OK;
    double iters_d = best_s > 0 ? BATCH_BUDGET_S / best_s : BATCH_MAX_ITERS;
    int iters = iters_d < 1 ? 1 : iters_d > BATCH_MAX_ITERS ? BATCH_MAX_ITERS : (int)iters_d;
    cb_status st = time_candidates(c, a, cand, n, iters, trial->us);
    /* the slowest rank's time per candidate, so that every rank keeps the same one */
    if (st == CB_OK)
        st = cb_boot_allreduce_max(c->boot, trial->us, n, c->cfg.timeout_ms, "agreeing on auto's choice");
    if (st != CB_OK)
        return st;
    int best = 0;
    for (int i = 0; i < n; i++) {
        trial->algo[i] = cand[i];
        trial->us[i] *= 1e6;
        if (trial->us[i] < trial->us[best])
            best = i;
    }
    trial->ntried = n;
    *algo = cand[best];
    return CB_OK;
}
