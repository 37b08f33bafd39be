/* Helpers every algorithm uses: chunk sizes, pieces, rounds. */
#include "algo.h"

#include <string.h>

size_t cb_algo_chunk_elems(const struct cb_comm *c, cb_type t)
{
    int half = c->cfg.nslots / 2 > 0 ? c->cfg.nslots / 2 : 1;
    size_t e = c->cfg.slot_bytes * (size_t)half / cb_type_size(t);
    return e > 0 ? e : 1;
}

void cb_algo_copy(void *dst, const void *src, size_t bytes)
{
    if (dst != src && bytes > 0)
        memcpy(dst, src, bytes);
}

int cb_algo_mod(int a, int n) { return ((a % n) + n) % n; }

struct cb_piece cb_algo_piece(size_t base, size_t len, int n, int i)
{
    size_t lo = len * (size_t)i / (size_t)n, hi = len * (size_t)(i + 1) / (size_t)n;
    return (struct cb_piece){base + lo, hi - lo};
}

cb_status cb_algo_rounds(struct cb_comm *c, const struct cb_coll_args *a, size_t per_channel, int nchannels,
                         cb_algo_round_fn round)
{
    size_t step = per_channel * (size_t)nchannels;
    for (size_t base = 0; base < a->count; base += step) {
        size_t len = a->count - base < step ? a->count - base : step;
        for (int ch = 0; ch < nchannels; ch++) {
            struct cb_piece p = cb_algo_piece(base, len, nchannels, ch);
            cb_status st = round(c, ch, a, p.off, p.len);
            if (st != CB_OK)
                return st;
        }
    }
    return CB_OK;
}

int cb_ring_conn_ends(int nranks, int rank, int channels)
{
    (void)rank;
    return nranks > 1 ? 2 * channels : 0;
}

int cb_one_peer_shared_slots(int nranks, int nslots)
{
    (void)nranks;
    return nslots + CB_SEND_STAGING_SLOTS;
}

int cb_all_conn_ends(int nranks, int rank, int channels)
{
    (void)rank, (void)channels;
    return 2 * (nranks - 1);
}
