/* Rail-by-rail pairs: which rank meets which when hosts hold several ranks (pairs.h). */
#include "pairs.h"

#include <stdlib.h>
#include <string.h>

/* Local rank = place in rank order. Hosts come numbered in order of their
 * first rank (cb_boot_hosts), so a rank's host is new exactly when it is the
 * next number: one pass, however many hosts. */
static cb_status group(struct cb_pairs_rails *rl, const int *host)
{
    for (int r = 0; r < rl->nranks; r++) {
        int h = host[r];
        if (h < 0 || h > rl->nhosts) {
            cb_log_error("internal: rank %d has host index %d, but hosts are numbered in order of their "
                         "first rank: 0 to %d here", r, h, rl->nhosts);
            return CB_EINTERNAL;
        }
        if (h == rl->nhosts)
            rl->first[rl->nhosts++] = r;
        rl->host[r] = h;
        rl->local[r] = rl->count[h]++;
    }
    return CB_OK;
}

/* One host holding every rank: each rank counts as a host (loopback). */
static void one_rank_per_host(struct cb_pairs_rails *rl)
{
    rl->nhosts = rl->nranks;
    rl->per_host = 1;
    for (int r = 0; r < rl->nranks; r++) {
        rl->host[r] = rl->first[r] = rl->rank_at[r] = r;
        rl->local[r] = 0;
        rl->count[r] = 1;
    }
}

cb_status cb_pairs_rails_init(int nranks, const int *host, struct cb_pairs_rails *rl)
{
    size_t n = (size_t)nranks + 1;
    memset(rl, 0, sizeof *rl);
    rl->nranks = nranks;
    rl->host = calloc(n, sizeof *rl->host);
    rl->local = calloc(n, sizeof *rl->local);
    rl->count = calloc(n, sizeof *rl->count);
    rl->first = calloc(n, sizeof *rl->first);
    rl->rank_at = calloc(n, sizeof *rl->rank_at);
    if (!rl->host || !rl->local || !rl->count || !rl->first || !rl->rank_at)
        return CB_ENOMEM;
    cb_status st = group(rl, host);
    if (st != CB_OK)
        return st;
    if (rl->nhosts <= 1) {
        one_rank_per_host(rl);
        return CB_OK;
    }
    for (int h = 1; h < rl->nhosts; h++)
        if (rl->count[h] != rl->count[0])
            return CB_EUSAGE;
    rl->per_host = rl->count[0];
    for (int r = 0; r < nranks; r++)
        rl->rank_at[rl->host[r] * rl->per_host + rl->local[r]] = r;
    return CB_OK;
}

void cb_pairs_rails_free(struct cb_pairs_rails *rl)
{
    free(rl->host);
    free(rl->local);
    free(rl->count);
    free(rl->first);
    free(rl->rank_at);
    memset(rl, 0, sizeof *rl);
}

int cb_pairs_rails_nrounds(const struct cb_pairs_rails *rl, int quick)
{
    return rl->per_host ? cb_pairs_nrounds(rl->nhosts, quick) : 0;
}

int cb_pairs_rails_partner(const struct cb_pairs_rails *rl, int quick, int round, int rank)
{
    if (!rl->per_host || rank < 0 || rank >= rl->nranks)
        return -1;
    int h = cb_pairs_partner(rl->nhosts, quick, round, rl->host[rank]);
    return h < 0 ? -1 : rl->rank_at[h * rl->per_host + rl->local[rank]];
}
