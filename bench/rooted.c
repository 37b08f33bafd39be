/* broadcast, reduce and sendrecv: size = count * typesize; busbw = algbw. */
#include "bench.h"
#include "harness/data.h"

static void counts(size_t bytes, size_t ts, int nranks, struct cb_bench_counts *o)
{
    (void)nranks;
    o->count = o->send_elems = o->recv_elems = o->count_col = bytes / ts;
    o->size_bytes = o->count * ts;
}

static double factor_one(int n) { (void)n; return 1.0; }

static void fill_own(void *send, const struct cb_bench_data *d)
{
    cb_data_fill(send, d->count, 0, d->type, d->op, d->rank, d->nranks, d->seed);
}

static size_t broadcast_expected(void *exp, const struct cb_bench_data *d)
{
    cb_data_expected_rank(exp, d->count, 0, d->type, d->op, d->root, d->nranks, d->seed);
    return d->count;
}

static size_t reduce_expected(void *exp, const struct cb_bench_data *d)
{
    if (d->rank != d->root)
        return 0;
    cb_data_expected_reduce(exp, d->count, 0, d->type, d->op, d->nranks, d->seed);
    return d->count;
}

static size_t sendrecv_expected(void *exp, const struct cb_bench_data *d)
{
    int prev = (d->rank + d->nranks - 1) % d->nranks;
    cb_data_expected_rank(exp, d->count, 0, d->type, d->op, prev, d->nranks, d->seed);
    return d->count;
}

const struct cb_bench cb_bench_broadcast = {
    .coll = CB_BROADCAST, .counts = counts, .busbw_factor = factor_one,
    .send_in_recv = cb_bench_no_offset, .recv_in_send = cb_bench_no_offset,
    .fill = fill_own, .expected = broadcast_expected,
};

const struct cb_bench cb_bench_reduce = {
    .coll = CB_REDUCE, .counts = counts, .busbw_factor = factor_one,
    .send_in_recv = cb_bench_no_offset, .recv_in_send = cb_bench_no_offset,
    .fill = fill_own, .expected = reduce_expected,
};

const struct cb_bench cb_bench_sendrecv = {
    .coll = CB_SENDRECV, .counts = counts, .busbw_factor = factor_one,
    .send_in_recv = cb_bench_no_offset, .recv_in_send = cb_bench_no_offset,
    .fill = fill_own, .expected = sendrecv_expected,
};
