/* Algorithms: written against channels only (src/core/channel.h), never against a transport.
 *
 * Deadlock freedom, the rule every algorithm here follows: each rank runs the
 * same sequence of phases in the same order. A phase whose data flow is
 * acyclic (a tree, a chain, one direction of a fold) completes whatever its
 * size, because a sender only waits for a receiver that needs nothing more
 * from it. A phase with a cycle (a ring step, a pairwise exchange) moves at
 * most cb_algo_chunk_elems per peer per primitive, or uses cb_prim_sendrecv,
 * which interleaves both directions.
 *
 * Every algorithm runs with at least two ranks: cb_coll_run answers a
 * one-rank job itself. */
#ifndef CB_ALGO_H
#define CB_ALGO_H

#include <stdio.h>
#include "core/channel.h"
#include "coll/coll.h"

struct cb_machine;

/* How an algorithm runs one collective. */
struct cb_algo_impl {
    cb_coll coll;
    cb_status (*run)(struct cb_comm *c, const struct cb_coll_args *a);
    /* Predicted seconds for `bytes`, the size column, on machine m, with
     * reduction cost `gamma` per byte (src/coll/model_terms.h); NULL where
     * the cost model does not rank it (auto never picks it). */
    double (*model_time)(const struct cb_machine *m, double bytes, double gamma);
};

/* One algorithm: everything the engine, the options, the cost model and
 * the tests know of it. Defined in its src/algo/ file, listed in
 * CB_ALGO_TABLE (src/coll/coll.h). */
struct cb_algo_desc {
    const char *name;      /* --algo's word */
    const char *summary;   /* a line of `collbench algorithms` */
    /* Connects what it needs (collective, outside the timed loop); NULL: nothing. */
    cb_status (*connect)(struct cb_comm *c);
    /* Connection ends (a send or a receive with one peer on one channel)
     * that connect makes for `rank` of nranks on `channels` channels, as
     * many sends as receives: what `collbench model --scale` counts. NULL
     * with connect. */
    int (*conn_ends)(int nranks, int rank, int channels);
    /* Where connect takes slots from the rank's shared pool
     * (cb_comm_connect_all): the most slots its receives hold at once with
     * nslots per connection (its sends, lent from registered buffers, one
     * while each is posted), what the pool is reserved to; NULL: own slots. */
    int (*shared_slots)(int nranks, int nslots);
    /* Whether it runs coll in place (sendbuf == recvbuf layout); NULL: always. */
    int (*in_place)(cb_coll coll);
    /* CB_OK if it handles type t and op, else CB_EUSAGE (logged when `report`);
     * NULL: every type and op. */
    cb_status (*supports)(cb_coll coll, cb_type t, cb_op op, int report);
    int not_ours;          /* MPI's collective: never auto's choice or default */
    struct cb_algo_impl impl[CB_NCOLLS];   /* ends at the first without run */
};

#define CB_ALGO_DECLARE_(id, name) extern const struct cb_algo_desc cb_algo_##name;
CB_ALGO_TABLE(CB_ALGO_DECLARE_)
#undef CB_ALGO_DECLARE_

/* The descriptor of a (NULL for auto), and how it runs coll (NULL if it does not). */
const struct cb_algo_desc *cb_algo_desc(cb_algo a);
const struct cb_algo_impl *cb_algo_impl(cb_algo a, cb_coll coll);
/* Every algorithm (not auto): name, summary and collectives; with `pairs`,
 * one "ALGORITHM COLLECTIVE" line per pair (" not-ours" after MPI's). */
void cb_algo_print(FILE *out, int pairs);

/* Elements one primitive may move per peer in one round: half the FIFO, so
 * that a ring's sends always fit and no rank waits on a rank waiting on it. */
size_t cb_algo_chunk_elems(const struct cb_comm *c, cb_type t);
/* Copy src to dst unless they are the same buffer. */
void cb_algo_copy(void *dst, const void *src, size_t bytes);
int cb_algo_mod(int a, int n);
/* Piece i of [base, base + len) cut n ways, balanced (elements). */
struct cb_piece { size_t off, len; };
struct cb_piece cb_algo_piece(size_t base, size_t len, int n, int i);
/* The round loop: a->count elements in rounds of per_channel * nchannels,
 * each round cut over the channels and `round` called for channel 0, 1, ..
 * in turn with its elements [base, base + len). What one channel posted
 * keeps moving (tcp, verbs) while the next one runs. */
typedef cb_status (*cb_algo_round_fn)(struct cb_comm *c, int ch, const struct cb_coll_args *a, size_t base,
                                      size_t len);
cb_status cb_algo_rounds(struct cb_comm *c, const struct cb_coll_args *a, size_t per_channel, int nchannels,
                         cb_algo_round_fn round);

/* Channel ch's connections with rank p (channel 0 is c->send[p]). */
static inline struct cb_send_chan *cb_send_on(struct cb_comm *c, int ch, int p)
{
    return &c->send[(size_t)ch * (size_t)c->nranks + (size_t)p];
}
static inline struct cb_recv_chan *cb_recv_on(struct cb_comm *c, int ch, int p)
{
    return &c->recv[(size_t)ch * (size_t)c->nranks + (size_t)p];
}

/* Recursive doubling/halving on any rank count. The largest power of two
 * p <= n ranks take part ("participants" v = 0..p-1); each of the first
 * rem = n - p even ranks folds into the odd rank after it, which then stands
 * for both. Participant v covers ranks [cb_fold_first(v), cb_fold_first(v+1)). */
struct cb_fold {
    int n, p, rem;
    int v;              /* this rank's participant, or -1 when it folds into rank + 1 */
};
void cb_fold_init(struct cb_fold *f, int n, int rank);
int cb_fold_rank(const struct cb_fold *f, int v);    /* the rank that is participant v */
int cb_fold_first(const struct cb_fold *f, int v);   /* first rank covered by v; v = p gives n */
/* This rank stands for rank - 1 too. */
static inline int cb_fold_absorbs(const struct cb_fold *f, int rank) { return f->v >= 0 && rank < 2 * f->rem; }

/* The binary trees of the double binary tree (NCCL's construction). A
 * vector smaller than CB_TREE_SPLIT_BYTES takes tree 0 alone. */
#define CB_TREE_SPLIT_BYTES (64 * 1024)
struct cb_tree {
    int parent;         /* -1 at the root */
    int child[2];
    int nchild;
};
/* Tree `which` (0 or 1) of the double binary tree over n ranks, seen from `rank`. */
void cb_tree_build(int n, int rank, int which, struct cb_tree *t);

/* Collective connection set-up each algorithm needs (see cb_coll_prepare),
 * and the connection ends it makes (cb_algo_desc's conn_ends). */
cb_status cb_tree_connect(struct cb_comm *c);
cb_status cb_rd_connect(struct cb_comm *c);
int cb_tree_conn_ends(int nranks, int rank, int channels);
int cb_rd_conn_ends(int nranks, int rank, int channels);
/* cb_comm_connect_ring's: next and prev on every channel. */
int cb_ring_conn_ends(int nranks, int rank, int channels);
/* cb_comm_connect_all's: every other rank, on channel 0. */
int cb_all_conn_ends(int nranks, int rank, int channels);
/* A shared slot a send holds while it is staged: a lent one only between
 * send_slot and send_lend, but a receive may hold all the others then. */
#define CB_SEND_STAGING_SLOTS 1
/* Shared slots of an algorithm that receives from one peer at a time: a
 * FIFO's worth (the slices it expects are cleared nslots ahead) and a send's. */
int cb_one_peer_shared_slots(int nranks, int nslots);

cb_status cb_ring_all_reduce(struct cb_comm *c, const struct cb_coll_args *a);
cb_status cb_ring_all_gather(struct cb_comm *c, const struct cb_coll_args *a);
cb_status cb_ring_reduce_scatter(struct cb_comm *c, const struct cb_coll_args *a);
cb_status cb_chain_broadcast(struct cb_comm *c, const struct cb_coll_args *a);
cb_status cb_chain_reduce(struct cb_comm *c, const struct cb_coll_args *a);
cb_status cb_pairwise_alltoall(struct cb_comm *c, const struct cb_coll_args *a);
cb_status cb_linear_alltoall(struct cb_comm *c, const struct cb_coll_args *a);
cb_status cb_ring_sendrecv(struct cb_comm *c, const struct cb_coll_args *a);
cb_status cb_tree_all_reduce(struct cb_comm *c, const struct cb_coll_args *a);
cb_status cb_rd_all_reduce(struct cb_comm *c, const struct cb_coll_args *a);
cb_status cb_rabenseifner_all_reduce(struct cb_comm *c, const struct cb_coll_args *a);
cb_status cb_rd_all_gather(struct cb_comm *c, const struct cb_coll_args *a);
cb_status cb_rd_reduce_scatter(struct cb_comm *c, const struct cb_coll_args *a);
cb_status cb_direct_all_reduce(struct cb_comm *c, const struct cb_coll_args *a);
cb_status cb_direct_reduce_scatter(struct cb_comm *c, const struct cb_coll_args *a);

/* Start-up measurement of the cost-model terms (collective). */
cb_status cb_probe_cost(struct cb_comm *c, cb_type t, cb_op op, struct cb_cost *out);

#endif
