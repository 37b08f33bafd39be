/* Rail-local ring orders (ring_order.h). */
#include "ring_order.h"

#include <stdlib.h>

static void rank_order(int nranks, int nchannels, int *order)
{
    for (int ch = 0; ch < nchannels; ch++)
        for (int r = 0; r < nranks; r++)
            order[ch * nranks + r] = r;
}

/* Ranks grouped by host, hosts in order of their first rank, ranks within a
 * host ascending: byhost[h * k + i] is host h's local rank i. 0 when the
 * hosts do not all have k ranks. */
static int group(int nranks, const int *host_of, int k, int *byhost)
{
    int nhosts = nranks / k;
    int *filled = calloc((size_t)nhosts, sizeof *filled), *first = malloc(sizeof(int) * (size_t)nhosts);
    int known = 0, ok = filled && first;
    for (int r = 0; r < nranks && ok; r++) {
        int h = 0;
        while (h < known && host_of[first[h]] != host_of[r])
            h++;
        if (h == known) {
            ok = known < nhosts;
            if (!ok)
                break;
            first[known++] = r;
        }
        ok = filled[h] < k;
        if (ok)
            byhost[h * k + filled[h]++] = r;
    }
    ok = ok && known == nhosts;
    free(filled);
    free(first);
    return ok;
}

/* Ranks per host when every host has the same number, else 0. */
static int ranks_per_host(int nranks, const int *host_of)
{
    int k = 0;
    for (int r = 0; r < nranks; r++)
        k += host_of[r] == host_of[0];
    return nranks % k == 0 ? k : 0;
}

int cb_ring_order(int nranks, int nchannels, const int *host_of, int *order)
{
    rank_order(nranks, nchannels, order);
    int k = nranks > 0 ? ranks_per_host(nranks, host_of) : 0;
    if (k < 2 || k == nranks)
        return 0;
    int *byhost = malloc(sizeof(int) * (size_t)nranks);
    if (!byhost || !group(nranks, host_of, k, byhost)) {
        free(byhost);
        return 0;
    }
    for (int ch = 0; ch < nchannels; ch++) {
        int *ring = order + ch * nranks, start = ch % k;
        for (int h = 0; h < nranks / k; h++)
            for (int j = 0; j < k; j++) {
                int i = h % 2 ? start + k - 1 - j : start + j;
                ring[h * k + j] = byhost[h * k + i % k];
            }
    }
    free(byhost);
    return 1;
}
