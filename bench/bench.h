/* What is measured, one file per collective, the way nccl-tests does it:
 * how a size maps to counts, the busbw factor, where in-place buffers sit,
 * how buffers are filled and what the right answer is. Whether it reduces
 * or has a root is the engine's to know (struct cb_coll_desc). */
#ifndef CB_BENCH_H
#define CB_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include "coll/coll.h"

struct cb_bench_counts {
    size_t count;        /* the engine's count argument (per rank) */
    size_t send_elems;   /* elements in the send buffer */
    size_t recv_elems;   /* elements in the receive buffer */
    size_t size_bytes;   /* the size column, also the bytes of algbw */
    size_t count_col;    /* the count column */
};

/* Everything needed to fill or check one rank's buffers. */
struct cb_bench_data {
    cb_type type;
    cb_op op;
    int rank, nranks, root;
    uint64_t seed;
    size_t count;        /* the engine's count argument */
};

struct cb_bench {
    cb_coll coll;
    void (*counts)(size_t bytes, size_t type_size, int nranks, struct cb_bench_counts *out);
    double (*busbw_factor)(int nranks);
    /* In place: the send buffer is this many elements into the receive buffer
     * (all_gather), or the receive buffer is this many into the send buffer
     * (reduce_scatter); 0 for the others. */
    size_t (*send_in_recv)(const struct cb_bench_data *d);
    size_t (*recv_in_send)(const struct cb_bench_data *d);
    void (*fill)(void *send, const struct cb_bench_data *d);
    /* Write the right contents of this rank's receive buffer into `expected`;
     * returns how many elements must be compared (0: nothing to check here). */
    size_t (*expected)(void *expected, const struct cb_bench_data *d);
};

const struct cb_bench *cb_bench_for(cb_coll coll);

extern const struct cb_bench cb_bench_all_reduce, cb_bench_all_gather, cb_bench_reduce_scatter,
    cb_bench_alltoall, cb_bench_broadcast, cb_bench_reduce, cb_bench_sendrecv;

/* Per-rank count of a collective whose size is the total: each rank's piece
 * rounded down to a multiple of 16 bytes. */
size_t cb_bench_piece_count(size_t bytes, size_t type_size, int nranks);
size_t cb_bench_no_offset(const struct cb_bench_data *d);

#endif
