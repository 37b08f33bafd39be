/* Algorithms: written against channels only (src/channel.h), never against a transport. */
#ifndef CB_ALGO_H
#define CB_ALGO_H

#include "../channel.h"
#include "../coll.h"

/* Elements one primitive may move per peer in one round: half the FIFO, so
 * that a ring's sends always fit and no rank waits on a rank waiting on it. */
size_t cb_algo_chunk_elems(const struct cb_comm *c, cb_type t);
/* Copy src to dst unless they are the same buffer. */
void cb_algo_copy(void *dst, const void *src, size_t bytes);

cb_status cb_ring_all_reduce(struct cb_comm *c, const struct cb_coll_args *a);
cb_status cb_ring_all_gather(struct cb_comm *c, const struct cb_coll_args *a);
cb_status cb_ring_reduce_scatter(struct cb_comm *c, const struct cb_coll_args *a);
cb_status cb_chain_broadcast(struct cb_comm *c, const struct cb_coll_args *a);
cb_status cb_chain_reduce(struct cb_comm *c, const struct cb_coll_args *a);
cb_status cb_pairwise_alltoall(struct cb_comm *c, const struct cb_coll_args *a);
cb_status cb_ring_sendrecv(struct cb_comm *c, const struct cb_coll_args *a);

#endif
