/* reduce_scatter: size = the whole input; busbw = algbw * (n-1)/n. */
#include "bench.h"
#include "harness/data.h"

static void counts(size_t bytes, size_t ts, int nranks, struct cb_bench_counts *o)
{
    o->count = o->recv_elems = cb_bench_piece_count(bytes, ts, nranks);
    o->send_elems = o->count_col = o->count * (size_t)nranks;
    o->size_bytes = o->send_elems * ts;
}

static double factor(int n) { return (double)(n - 1) / n; }

static size_t recv_in_send(const struct cb_bench_data *d) { return (size_t)d->rank * d->count; }

static void fill(void *send, const struct cb_bench_data *d)
{
    cb_data_fill(send, d->count * (size_t)d->nranks, 0, d->type, d->op, d->rank, d->nranks, d->seed);
}

static size_t expected(void *exp, const struct cb_bench_data *d)
{
    cb_data_expected_reduce(exp, d->count, (size_t)d->rank * d->count, d->type, d->op, d->nranks, d->seed);
    return d->count;
}

const struct cb_bench cb_bench_reduce_scatter = {
    .coll = CB_REDUCE_SCATTER, .counts = counts, .busbw_factor = factor,
    .send_in_recv = cb_bench_no_offset, .recv_in_send = recv_in_send,
    .fill = fill, .expected = expected,
};
