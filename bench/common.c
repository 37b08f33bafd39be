#include "bench.h"

size_t cb_bench_piece_count(size_t bytes, size_t type_size, int nranks)
{
    size_t per_rank = bytes / (size_t)nranks / type_size;
    size_t align = type_size < 16 ? 16 / type_size : 1;
    return per_rank / align * align;
}

size_t cb_bench_no_offset(const struct cb_bench_data *d)
{
    (void)d;
    return 0;
}

const struct cb_bench *cb_bench_for(cb_coll coll)
{
    static const struct cb_bench *const all[CB_NCOLLS] = {
        &cb_bench_all_reduce, &cb_bench_all_gather, &cb_bench_reduce_scatter, &cb_bench_alltoall,
        &cb_bench_broadcast, &cb_bench_reduce, &cb_bench_sendrecv};
    return (unsigned)coll < CB_NCOLLS ? all[coll] : NULL;
}
