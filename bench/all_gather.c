/* all_gather: size = the whole gathered output; busbw = algbw * (n-1)/n.
 * Rank r's block holds elements r*count.. of the pattern, so blocks differ. */
#include "bench.h"
#include "harness/data.h"

static void counts(size_t bytes, size_t ts, int nranks, struct cb_bench_counts *o)
{
    o->count = o->send_elems = cb_bench_piece_count(bytes, ts, nranks);
    o->recv_elems = o->count_col = o->count * (size_t)nranks;
    o->size_bytes = o->recv_elems * ts;
}

static double factor(int n) { return (double)(n - 1) / n; }

static size_t send_in_recv(const struct cb_bench_data *d) { return (size_t)d->rank * d->count; }

static void fill(void *send, const struct cb_bench_data *d)
{
    cb_data_fill(send, d->count, (size_t)d->rank * d->count, d->type, d->op, d->rank, d->nranks, d->seed);
}

static size_t expected(void *exp, const struct cb_bench_data *d)
{
    size_t ts = cb_type_size(d->type);
    for (int r = 0; r < d->nranks; r++)
        cb_data_expected_rank((char *)exp + (size_t)r * d->count * ts, d->count, (size_t)r * d->count,
                              d->type, d->op, r, d->nranks, d->seed);
    return d->count * (size_t)d->nranks;
}

const struct cb_bench cb_bench_all_gather = {
    .coll = CB_ALL_GATHER, .counts = counts, .busbw_factor = factor,
    .send_in_recv = send_in_recv, .recv_in_send = cb_bench_no_offset,
    .fill = fill, .expected = expected,
};
