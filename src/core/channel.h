/* Waiting on one connection, with the timeout that names the peer, and the
 * data-moving primitives every algorithm is written with. Each primitive
 * moves `bytes` through the FIFO slice by slice (a slice is at most one slot),
 * so the wire, the copy and the reduction of consecutive slices overlap. */
#ifndef CB_CHANNEL_H
#define CB_CHANNEL_H

#include "comm.h"
#include "types.h"

/* Blocking slot waits: progress the transport, yield the CPU when spinning
 * long, give up after the channel's timeout with a message naming the peer.
 * The send slot is for a message of `nbytes`: where the transport has a
 * direct path it may be the receiver's own destination. */
cb_status cb_chan_wait_send(struct cb_send_chan *s, size_t nbytes, void **slot);
cb_status cb_chan_wait_recv(struct cb_recv_chan *r, const void **slot, size_t *nbytes);

/* What the reduction does in a primitive that reduces. */
struct cb_redop {
    cb_type type;
    cb_op op;
    int nranks;   /* divisor for avg when `last` */
    int last;     /* this reduction makes the final value */
};

cb_status cb_prim_send(struct cb_send_chan *s, const void *src, size_t bytes);
/* cb_prim_send of a source that nobody writes before the receiver has read
 * it (the algorithm's guarantee): where the transport can, the receiver reads
 * it in place (shm) or it is written from there (verbs), and the sender
 * copies nothing. cb_coll_run waits until such sends are consumed before it
 * returns, so the caller's buffer is free again when the collective is. */
cb_status cb_prim_send_lend(struct cb_send_chan *s, const void *src, size_t bytes);
/* Wait (bounded by the timeout, naming the peer) until every receiver has
 * consumed what cb_prim_send_lend lent it, on every channel of c. */
cb_status cb_chan_drain_lent(struct cb_comm *c);
cb_status cb_prim_recv(struct cb_recv_chan *r, void *dst, size_t bytes);
/* out-slot = in-slot OP local */
cb_status cb_prim_recv_reduce_send(struct cb_recv_chan *r, struct cb_send_chan *s,
                                   const void *local, size_t bytes, const struct cb_redop *op);
/* dst = in-slot OP local */
cb_status cb_prim_recv_reduce_copy(struct cb_recv_chan *r, const void *local, void *dst,
                                   size_t bytes, const struct cb_redop *op);
/* dst = in-slot OP local; out-slot = dst. dst is final: nothing writes it
 * before the receiver has read it, so where the send slot is local staging
 * (verbs) the result goes to dst only and is lent from there. */
cb_status cb_prim_recv_reduce_copy_send(struct cb_recv_chan *r, struct cb_send_chan *s,
                                        const void *local, void *dst, size_t bytes,
                                        const struct cb_redop *op);
/* dst = local OP in(rank + 1) OP in(rank + 2) .. OP in(rank - 1), over
 * channel 0's connections from every other rank of c, in that order. Each
 * slice is reduced a cache-sized block at a time with the result kept in
 * cache, so every input is read from memory once and dst written once. */
cb_status cb_prim_recv_reduce_all(struct cb_comm *c, const void *local, void *dst, size_t bytes,
                                  const struct cb_redop *op);
/* Slices every peer is cleared to send for cb_prim_recv_reduce_all ahead
 * of the one being reduced: the next arrives while this one is folded in,
 * and shared receive slots (transport.h) hold two per peer, not a FIFO. */
#define CB_REDUCE_ALL_AHEAD 1
/* dst = in-slot; out-slot = in-slot. dst is final, as for
 * cb_prim_recv_reduce_copy_send: lent where the send slot is local staging. */
cb_status cb_prim_recv_copy_send(struct cb_recv_chan *r, struct cb_send_chan *s, void *dst, size_t bytes);
/* A hint for transports with a direct path (shm): the `bytes` to be received
 * from r after the next `skip` bytes are to land in dst, so the sender may
 * write them there before this rank gets to that receive. Nothing elsewhere. */
void cb_prim_offer(struct cb_recv_chan *r, size_t skip, void *dst, size_t bytes);
/* Send src to s while receiving into dst from r, interleaved so that neither
 * side's FIFO can fill up and deadlock (pairwise exchange). */
cb_status cb_prim_sendrecv(struct cb_send_chan *s, const void *src, size_t sbytes,
                           struct cb_recv_chan *r, void *dst, size_t rbytes);
/* The same with a source nobody writes before the receiver has read it:
 * lent, as by cb_prim_send_lend. */
cb_status cb_prim_sendrecv_lend(struct cb_send_chan *s, const void *src, size_t sbytes,
                                struct cb_recv_chan *r, void *dst, size_t rbytes);

#endif
