/* all_reduce: size = count * typesize; busbw = algbw * 2(n-1)/n. */
#include "bench.h"
#include "harness/data.h"

static void counts(size_t bytes, size_t ts, int nranks, struct cb_bench_counts *o)
{
    (void)nranks;
    o->count = o->send_elems = o->recv_elems = o->count_col = bytes / ts;
    o->size_bytes = o->count * ts;
}

static double factor(int n) { return 2.0 * (n - 1) / n; }

static void fill(void *send, const struct cb_bench_data *d)
{
    cb_data_fill(send, d->count, 0, d->type, d->op, d->rank, d->nranks, d->seed);
}

static size_t expected(void *exp, const struct cb_bench_data *d)
{
    cb_data_expected_reduce(exp, d->count, 0, d->type, d->op, d->nranks, d->seed);
    return d->count;
}

const struct cb_bench cb_bench_all_reduce = {
    .coll = CB_ALL_REDUCE, .counts = counts, .busbw_factor = factor,
    .send_in_recv = cb_bench_no_offset, .recv_in_send = cb_bench_no_offset,
    .fill = fill, .expected = expected,
};
