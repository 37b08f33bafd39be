/* A communicator: the ranks, the transport they talk through, and the
 * connections (channels) made so far. Algorithms use only this and channel.h. */
#ifndef CB_COMM_H
#define CB_COMM_H

#include "bootstrap.h"
#include "coll/cost.h"
#include "transport/transport.h"

struct cb_send_chan {
    const struct cb_transport_ops *ops;
    void *tctx;
    /* a job with a transport per peer: the other one, driven by every wait
     * too (data to a peer on it moves while we wait here); NULL otherwise */
    const struct cb_transport_ops *other_ops;
    void *other_tctx;
    void *conn;
    struct cb_peer peer;
    size_t slot_bytes;
    int timeout_ms;
    int oversubscribed;   /* more ranks than cores here: wait by sleeping, not spinning */
    int lent;             /* the receiver reads our memory (cb_prim_send_lend): drain before it changes */
};

struct cb_recv_chan {
    const struct cb_transport_ops *ops;
    void *tctx;
    /* a job with a transport per peer: the other one, driven by every wait
     * too (data to a peer on it moves while we wait here); NULL otherwise */
    const struct cb_transport_ops *other_ops;
    void *other_tctx;
    void *conn;
    struct cb_peer peer;
    size_t slot_bytes;
    int timeout_ms;
    int oversubscribed;   /* more ranks than cores here: wait by sleeping, not spinning */
};

struct cb_comm {
    int rank, nranks;
    struct cb_boot *boot;
    /* the transport of peers that share memory with this rank, or of
     * every peer when one transport serves all; its windows hold the
     * collective buffers */
    const struct cb_transport_ops *ops;
    void *tctx;
    /* --transport auto with some peers apart (other hosts, containers):
     * the network for those; NULL when `ops` serves every peer */
    const struct cb_transport_ops *net_ops;
    void *net_tctx;
    char transport_name[16];        /* "shm", "tcp", "verbs", or "shm+verbs" / "shm+tcp" */
    struct cb_transport_config cfg;
    struct cb_peer *peers;          /* [nranks] */
    int nchannels;                  /* independent sets of connections (--channels) */
    /* [nchannels * nranks], conn NULL until connected: channel ch's connection
     * with rank p is at ch * nranks + p, so channel 0 is send[p] / recv[p]. */
    struct cb_send_chan *send;
    struct cb_recv_chan *recv;
    /* [nchannels * nranks]: channel ch's ring, the rank at each position
     * (core/ring_order.h), and the position of each rank */
    int *ring_order, *ring_pos;
    int ring_rail_local;            /* 1: the rings are rail-local, not rank order */
    int successors_connected;       /* channel 0 joins every r to r + 1 (cb_comm_connect_successors) */
    void *scratch;                  /* algorithms' scratch space */
    size_t scratch_bytes;
    /* mulsum on an odd rank: its input times 2, when out of place (cb_coll_run) */
    void *premul;
    size_t premul_bytes;
    struct cb_cost cost;            /* cost-model terms for --algo auto (src/coll/model.h) */
    double connect_s;               /* spent in cb_comm_connect* so far: listen to the closing barrier */
    /* cb_comm_connect_all's step: peers listened for (and connected to) at
     * once, so that the listeners and handles in flight stay bounded */
    int connect_batch;
    /* connections being made take their receive slots from the rank's
     * shared pool (struct cb_peer): set by cb_comm_connect_all */
    int shared_slots;
};

/* What this rank's connections hold, for the run header and the JSON. */
struct cb_conn_use {
    int connections;      /* connection ends: a send and a receive per peer and channel */
    size_t buffer_bytes;  /* their FIFO buffers (verbs: registered), transport's send_bytes / recv_bytes,
                           * and the transports' shared pools (shared_bytes) */
    double connect_s;     /* time spent connecting (cb_comm's connect_s) */
};

/* Pick the transport by name ("shm", "tcp", "verbs", "auto") and init it.
 * auto: shm between ranks that share memory, the network (verbs where every
 * rank has an active RDMA port, else tcp) between the others. */
cb_status cb_comm_init(struct cb_boot *boot, const char *transport,
                       const struct cb_transport_config *cfg, struct cb_comm **out);
/* Channel ch's ring: the rank at position pos (any integer, taken mod
 * nranks), this rank's position, and any rank's. */
int cb_ring_at(const struct cb_comm *c, int ch, int pos);
int cb_ring_pos(const struct cb_comm *c, int ch);
int cb_ring_pos_of(const struct cb_comm *c, int ch, int rank);
/* Use `order` (nchannels * nranks ranks, each channel a permutation) for
 * the rings: the layout's rail-local order at init; tests set others.
 * Before any ring is connected. */
void cb_comm_set_ring_order(struct cb_comm *c, const int *order);

/* Collective, once: channel 0 joins rank r to r + 1 for every r (sendrecv's
 * pattern; a rail-local ring need not), then returns at once. */
cb_status cb_comm_connect_successors(struct cb_comm *c);

/* Collective: make sure this rank can send to every rank in to[] and
 * receive from every rank in from[] (already connected ones are skipped).
 * Every rank must call it with matching lists. */
cb_status cb_comm_connect(struct cb_comm *c, const int *to, int nto, const int *from, int nfrom);
/* The same on channel `ch` (its own connections, FIFOs and QPs). */
cb_status cb_comm_connect_on(struct cb_comm *c, int ch, const int *to, int nto, const int *from, int nfrom);
/* As cb_comm_connect, for checks that go on past a broken pair: a
 * connection that cannot be made (refused, timed out: logged) is dropped
 * and its status put in *peer_st; the return value is a failure of the job
 * itself (the bootstrap) only. */
cb_status cb_comm_connect_or_skip(struct cb_comm *c, const int *to, int nto, const int *from, int nfrom,
                                  cb_status *peer_st);
/* Collective: connections for a ring (prev, next) on every channel, and for
 * all pairs on channel 0, the latter in steps of connect_batch peers each
 * way (step k: to rank + d, from rank - d, for the k-th connect_batch
 * distances d), so no rank holds more listeners than that at once. */
cb_status cb_comm_connect_ring(struct cb_comm *c);
cb_status cb_comm_connect_all(struct cb_comm *c);
/* Page-aligned memory for collective buffers, from the transport where it
 * can move data to and from it without a copy (shm: mappable by the peers;
 * verbs: registered), plain memory otherwise. NULL when out of memory. */
void *cb_comm_alloc(struct cb_comm *c, size_t bytes);
void cb_comm_free(struct cb_comm *c, void *p);
/* Grow the scratch buffer to at least `bytes` (outside the timed loop). */
cb_status cb_comm_scratch(struct cb_comm *c, size_t bytes);
/* Grow the pre-multiplied input buffer of mulsum to at least `bytes` (outside the timed loop). */
cb_status cb_comm_premul(struct cb_comm *c, size_t bytes);
/* Close this rank's connections with `peer` (every channel), first waiting
 * (bounded by the timeout) until it consumed what we sent when `drain`. */
void cb_comm_close_peer(struct cb_comm *c, int peer, int drain);
/* This rank's connection ends on every channel and the buffer memory they hold. */
void cb_comm_buffer_use(const struct cb_comm *c, struct cb_conn_use *use);
/* The transport a connection with `peer` uses. */
const struct cb_transport_ops *cb_comm_transport_of(const struct cb_comm *c, int peer, void **tctx);
/* Drive every transport of the connection's job. */
static inline cb_status cb_chan_progress(const struct cb_transport_ops *ops, void *tctx,
                                         const struct cb_transport_ops *other_ops, void *other_tctx)
{
    cb_status st = ops->progress(tctx);
    return st == CB_OK && other_ops ? other_ops->progress(other_tctx) : st;
}
/* Collective: wait until every send has been consumed, then close everything. */
void cb_comm_destroy(struct cb_comm *c);

#endif
