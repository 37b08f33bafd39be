/* alltoall: size = the whole exchange of one rank (count * n elements);
 * busbw = algbw * (n-1)/n. Rank p's block for rank q holds pattern elements
 * q*count.. of rank p, so every block is distinct. */
#include "bench.h"
#include "harness/data.h"

static void counts(size_t bytes, size_t ts, int nranks, struct cb_bench_counts *o)
{
    o->count = cb_bench_piece_count(bytes, ts, nranks);
    o->send_elems = o->recv_elems = o->count_col = o->count * (size_t)nranks;
    o->size_bytes = o->send_elems * ts;
}

static double factor(int n) { return (double)(n - 1) / n; }

static void fill(void *send, const struct cb_bench_data *d)
{
    cb_data_fill(send, d->count * (size_t)d->nranks, 0, d->type, d->op, d->rank, d->nranks, d->seed);
}

static size_t expected(void *exp, const struct cb_bench_data *d)
{
    size_t ts = cb_type_size(d->type);
    for (int p = 0; p < d->nranks; p++)
        cb_data_expected_rank((char *)exp + (size_t)p * d->count * ts, d->count, (size_t)d->rank * d->count,
                              d->type, d->op, p, d->nranks, d->seed);
    return d->count * (size_t)d->nranks;
}

const struct cb_bench cb_bench_alltoall = {
    .coll = CB_ALLTOALL, .counts = counts, .busbw_factor = factor,
    .send_in_recv = cb_bench_no_offset, .recv_in_send = cb_bench_no_offset,
    .fill = fill, .expected = expected,
};
