/* The collectives. Buffers are host memory; sendbuf == recvbuf means in place.
 * Counts are per rank, as in NCCL: all_gather sends `count` and receives
 * count*nranks; reduce_scatter sends count*nranks and receives `count`;
 * alltoall sends and receives count*nranks, `count` to and from each rank. */
#ifndef CB_COLL_H
#define CB_COLL_H

#include <stddef.h>
#include "core/comm.h"
#include "core/types.h"

typedef enum cb_coll {
    CB_ALL_REDUCE, CB_ALL_GATHER, CB_REDUCE_SCATTER, CB_ALLTOALL,
    CB_BROADCAST, CB_REDUCE, CB_SENDRECV, CB_NCOLLS
} cb_coll;

/* ring: rings (all_reduce = reduce-scatter + all-gather), chains for the rooted ones.
 * tree: double binary tree (all_reduce). rd: recursive doubling (all_reduce),
 * doubling/halving (all_gather, reduce_scatter). rabenseifner: recursive
 * halving + doubling (all_reduce). pairwise / linear: alltoall in n-1 rounds /
 * all at once. direct: every rank reduces its own piece from everyone's
 * data at once (all_reduce, reduce_scatter), then sends it to everyone.
 * auto: the cost model's choice per size (docs/algorithms.md). */
typedef enum cb_algo {
    CB_ALGO_AUTO, CB_ALGO_RING, CB_ALGO_TREE, CB_ALGO_RD, CB_ALGO_PAIRWISE,
    CB_ALGO_RABENSEIFNER, CB_ALGO_LINEAR, CB_ALGO_DIRECT,
    CB_ALGO_MPI,   /* not ours: MPI's own collective, for comparison (--mpi-reference) */
    CB_NALGOS
} cb_algo;

const char *cb_coll_name(cb_coll c);
const char *cb_algo_name(cb_algo a);
int cb_algo_parse(const char *name);   /* -1 if unknown */

struct cb_coll_args {
    cb_coll coll;
    const void *sendbuf;
    void *recvbuf;
    size_t count;
    cb_type type;
    cb_op op;
    int root;
    cb_algo algo;
};

/* Connect what the algorithm needs and size the scratch space for `max_count`
 * elements; collective, outside the timed loop. For auto, also measures the
 * cost model's terms (or loads them from $COLLBENCH_TUNE_FILE, written by
 * `collbench tune`), the same on every rank, and connects every candidate. */
cb_status cb_coll_prepare(struct cb_comm *c, cb_coll coll, cb_algo algo, size_t max_count, cb_type type);
/* The size column of `a` (docs/measurement.md): all_gather, reduce_scatter
 * and alltoall count the whole buffer, the others one rank's vector. */
size_t cb_coll_size_bytes(const struct cb_comm *c, const struct cb_coll_args *a);
/* The algorithm `auto` would run (or `algo` itself when not auto); the same
 * on every rank. */
cb_algo cb_coll_choose(const struct cb_comm *c, const struct cb_coll_args *a);
#define CB_AUTO_MAX_TRIED 5
/* What auto timed to choose (ntried 0: the model alone chose). */
struct cb_auto_trial {
    int ntried;
    cb_algo algo[CB_AUTO_MAX_TRIED];   /* the model's choice first */
    double us[CB_AUTO_MAX_TRIED];      /* us per collective: best batch, slowest rank */
};
/* The algorithm to run `a` with: a->algo unless it is auto; for auto the
 * model's choice, except that when other algorithms are predicted within a
 * factor of 2 of it (the model's accuracy) each of them is timed on a's
 * buffers and the fastest is kept (`trial` says what was timed). The same on
 * every rank. Collective; outside the timed loop (src/coll/coll_auto.c). */
cb_status cb_coll_pick(struct cb_comm *c, const struct cb_coll_args *a, cb_algo *algo,
                       struct cb_auto_trial *trial);
/* Run one collective on every rank; returns when this rank's part is done. */
cb_status cb_coll_run(struct cb_comm *c, const struct cb_coll_args *a);

/* The `model` and `tune` subcommands (src/tools/cmd_model.c), for main's table;
 * argv[0] is the subcommand's name. */
int cb_cmd_model(int argc, char **argv);
int cb_cmd_tune(int argc, char **argv);

#endif
