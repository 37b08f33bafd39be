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

/* What the engine knows of a collective (src/coll/colls.c); what is measured
 * of it (counts, busbw, data, check) is in its bench/ file. */
struct cb_coll_desc {
    const char *name;
    int reduces;          /* takes an op (-o) */
    int rooted;           /* takes a root (-r) */
    int size_is_whole;    /* the size column counts every rank's block, not one vector */
};
const struct cb_coll_desc *cb_coll_desc(cb_coll c);   /* NULL if out of range */
const char *cb_coll_name(cb_coll c);

/* Every algorithm, X(ID, name): its descriptor cb_algo_<name> (struct
 * cb_algo_desc, src/algo/algo.h) is defined in src/algo/. Adding one is its
 * file and a line here; names, --help, auto's candidates and the test matrix
 * (`collbench algorithms`) come from the descriptors. The order is auto's on
 * ties, and a collective's default without a cost model is the first
 * algorithm of ours that implements it. `mpi` is not ours: MPI's own
 * collective, run in the same harness for comparison (--mpi-reference). */
#define CB_ALGO_TABLE(X) \
    X(RING, ring) X(TREE, tree) X(RD, rd) X(PAIRWISE, pairwise) X(RABENSEIFNER, rabenseifner) \
    X(LINEAR, linear) X(DIRECT, direct) X(MPI, mpi)

/* auto: the cost model's choice per size (docs/algorithms.md). */
typedef enum cb_algo {
    CB_ALGO_AUTO,
#define CB_ALGO_ENUM_(id, name) CB_ALGO_##id,
    CB_ALGO_TABLE(CB_ALGO_ENUM_)
#undef CB_ALGO_ENUM_
    CB_NALGOS
} cb_algo;

const char *cb_algo_name(cb_algo a);
int cb_algo_parse(const char *name);   /* -1 if unknown */
/* The names --algo takes, "auto" first, joined by sep (and last_sep before
 * the last: "auto, ring, ... or mpi"); truncated to fit. */
void cb_algo_names(char *buf, size_t size, const char *sep, const char *last_sep);

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
 * cost model's terms unless cb_coll_load_cost loaded them, the same on every
 * rank, and connects every candidate. */
/* auto's cost-model terms from a file written by `collbench tune` (rank 0
 * reads it, every rank gets the same); CB_EUSAGE, logged, if unreadable.
 * Collective. */
cb_status cb_coll_load_cost(struct cb_comm *c, const char *path);
/* Bytes of scratch an algorithm of coll may use for max_count elements;
 * SIZE_MAX when that does not fit a size_t. */
size_t cb_coll_scratch_bytes(cb_coll coll, int nranks, size_t max_count, cb_type type);
cb_status cb_coll_prepare(struct cb_comm *c, cb_coll coll, cb_algo algo, size_t max_count, cb_type type);
/* mulsum (CB_MULSUM): an odd rank multiplies its input by 2 before the sum,
 * out of place into a buffer of the comm's of this many bytes for max_count
 * elements (0 for collectives that do not reduce; SIZE_MAX when it does not
 * fit a size_t); cb_coll_prepare_mulsum sizes it on the ranks that need it.
 * Outside the timed loop, before any mulsum cb_coll_run of up to max_count;
 * not collective. */
size_t cb_coll_premul_bytes(cb_coll coll, int nranks, size_t max_count, cb_type type);
cb_status cb_coll_prepare_mulsum(struct cb_comm *c, cb_coll coll, size_t max_count, cb_type type);
/* The size column of `a` (docs/measurement.md): all_gather, reduce_scatter
 * and alltoall count the whole buffer, the others one rank's vector. */
size_t cb_coll_size_bytes(const struct cb_comm *c, const struct cb_coll_args *a);
/* The algorithm `auto` would run (or `algo` itself when not auto); the same
 * on every rank. */
cb_algo cb_coll_choose(const struct cb_comm *c, const struct cb_coll_args *a);
/* At most every algorithm: a candidate list is never cut. */
#define CB_AUTO_MAX_TRIED CB_NALGOS
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
/* `collbench algorithms` (src/algo/registry.c). */
int cb_cmd_algorithms(int argc, char **argv);

#endif
