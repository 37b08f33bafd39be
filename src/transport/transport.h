/* The transport contract: one interface, three implementations (shm, tcp, verbs).
 *
 * Modelled on NCCL's network plugin: init, properties, listen / connect /
 * accept with opaque handles that the bootstrap carries between ranks,
 * non-blocking data calls, close. The data calls are a FIFO of registered
 * slots per connection instead of isend/irecv on user buffers:
 *   sender:   cb_send_slot() gives the next free slot (NULL while the receiver
 *             holds them all), the caller writes or reduces straight into it,
 *             cb_send_post() hands it over;
 *   receiver: cb_recv_slot() gives the next filled slot (NULL while none),
 *             the caller reads or reduces from it, cb_recv_release() frees it.
 * This lets shm write directly into the receiver's memory and lets verbs
 * RDMA-write a registered staging slot into a registered receive slot; the
 * slots are registered once, when the connection is made, never in the timed loop.
 * Slots are delivered in order. Every call returns a cb_status and logs the
 * error itself, naming the peer. Algorithms never see this header's
 * implementations, only struct cb_transport through src/core/channel.h. */
#ifndef CB_TRANSPORT_H
#define CB_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include "core/status.h"

#define CB_HANDLE_BYTES 512   /* opaque connection handle (and reply), sent by the bootstrap */
#define CB_TOKEN_BYTES 16     /* job-unique secret, same on every rank */
#define CB_PROPS_MAX 32   /* a transport's own, then the topology's */
#define CB_RAILS_NOTE 768 /* a host's NICs that carry nothing (cb_rails_unused) */

/* Who is at the other end: used in every message about a connection.
 * `channel` is the channel (0 .. --channels - 1) the connection being
 * made belongs to, the same on both ends: verbs picks a device by it when
 * a rank drives several NICs (transport/hca.h); shm and tcp ignore it. */
struct cb_peer {
    int rank;
    char host[64];
    int channel;
    /* this connection's slots come from the rank's shared pool: the
     * receiver's granted only for messages it expects (recv_expect), the
     * sender's staging only while a message it does not lend is written.
     * All-to-all style connections (both ends are told alike), so memory
     * follows what is in flight, not the number of peers. Ignored where a
     * transport has no pool. */
    int shared_slots;
};

/* A connection end, as geometry_bytes counts its buffers: an end with
 * shared slots (struct cb_peer) holds none of its own where the transport
 * has a pool. */
enum cb_conn_end { CB_END_RECV = 0, CB_END_SEND = 1, CB_END_RECV_SHARED = 2, CB_END_SEND_SHARED = 3 };

/* A setting that is on, off, or chosen by the transport (0: so a zeroed
 * config means auto). */
enum cb_switch { CB_SWITCH_AUTO = 0, CB_SWITCH_ON, CB_SWITCH_OFF };
/* "auto", "on", "off"; NULL for any other value. */
const char *cb_switch_name(int s);

/* Everything a transport may need, filled from the command line. */
struct cb_transport_config {
    int rank, nranks;
    char host[64];
    uint8_t token[CB_TOKEN_BYTES];
    size_t slot_bytes;   /* bytes per FIFO slot */
    int nslots;          /* slots per connection */
    int channels;        /* independent connection sets per peer (--channels); 0 = 1 */
    int timeout_ms;      /* every wait gives up after this, naming the peer */
    /* tcp */
    char tcp_if[64];     /* interface name or address to listen on; "" = auto */
    /* verbs */
    char hca[256];       /* "dev:port,dev:port" or "" = auto */
    int hca_checked;     /* 1: the topology checked --hca against this host's ranks (warned of shared NICs) */
    int rails_checked;   /* 1: the topology chose this host's NICs: rails_note is its word on idle ones */
    char rails_note[CB_RAILS_NOTE];   /* usable NICs no rank of the host uses, what to do; "" = none */
    char hosts_note[CB_RAILS_NOTE];   /* hosts whose NIC counts differ from most, what to do; "" = none */
    int gid_index;       /* -1 = auto (RoCE v2, IPv4-mapped, not link-local) */
    char gid_family[16]; /* "", "ipv4", "ipv6" */
    char gid_subnet[64]; /* "" or "a.b.c.d/len" */
    int roce_version;    /* 0 = prefer v2, 1 or 2 = require */
    int traffic_class, service_level;   /* -1 = keep what rdma_cm / the path record gives */
    int path_mtu;        /* 0 = port's active MTU */
    int qps_per_conn;
    int ib_timeout, ib_retry_cnt;
    int ib_relaxed_ordering;     /* enum cb_switch: data buffers' MRs (--ib-relaxed-ordering) */
    int ib_ar;                   /* enum cb_switch: bulk as an RDMA write then a 0-byte write with
                                  * immediate (--ib-ar); auto: on InfiniBand, off on RoCE (NCCL's) */
    size_t ib_ar_threshold;      /* a QP's piece of at least this many bytes takes --ib-ar's form */
    char ib_connect[8];          /* "", "auto", "cm" (rdma_cm) or "oob" (QP addresses through the bootstrap) */
    int ib_split_data;           /* enum cb_switch: each message split over the QPs (on), or whole on
                                  * one QP, QPs in turn (off); auto: off, NCCL's default (--ib-split-data) */
    int local_rank, local_size;  /* for picking the NIC of this rank */
    int oversubscribed;          /* more ranks on this machine than cores */
};

/* Whether --ib-split-data puts each message over all the QPs (1) or each
 * whole on one QP, QPs in turn (0): on with more than one QP; auto is off,
 * NCCL's default (NCCL_IB_SPLIT_DATA_ON_QPS=0). Both ends of a connection
 * must agree: the receiver counts one immediate per piece. */
int cb_split_data(const struct cb_transport_config *cfg);

/* A port state change a transport saw (verbs: the device's async events). */
struct cb_port_event {
    long long unix_ms;   /* CLOCK_REALTIME, ms */
    char link[32];       /* "rxe0:1" */
    char what[24];       /* "port error", "port active" */
};

/* Properties for the run header and the JSON: ordered key/value pairs
 * (device, port, link_layer, rate, mtu, gid_index, gid_type, ...). */
struct cb_props {
    int n;
    struct { char key[24]; char val[96]; } kv[CB_PROPS_MAX];
};

/* Append key = printf(fmt, ...) unless the list is full; a value too long
 * for its field ends in "...". */
void cb_props_add(struct cb_props *p, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* What a transport's optional paths do, fixed per transport: read instead
 * of testing operations, so that a path a transport lacks costs nothing. */
struct cb_transport_caps {
    int lends;                 /* send_lend can post from the sender's window */
    int takes_offers;          /* recv_offer can land data in the receiver's window */
    /* 1 where a send slot is memory the receiver reads (shm): a result
     * written there has been transferred. 0 where it is local staging that
     * the transport still has to move (verbs, tcp): a result that must also
     * land in a local buffer is better written there and lent. */
    int slot_is_peer_memory;
    /* 1 where the sender answers the receiver's handle (reply / take_reply):
     * the bootstrap carries a second message back, before connect / accept. */
    int replies;
};

struct cb_transport_ops {
    const char *name;
    /* Auto's quiet question before init: could this rank run it here at all
     * (verbs: an ACTIVE port)? 1 or 0, nothing logged: a host without the
     * hardware is a reason to take another transport, not an error. */
    int (*usable)(const struct cb_transport_config *cfg);
    /* Whether this transport can run here; CB_EDEVICE (logged) if not. Allocates *tctx. */
    cb_status (*init)(const struct cb_transport_config *cfg, void **tctx);
    /* What this rank uses (device, link layer, rate, MTU, GID...). */
    void (*properties)(void *tctx, struct cb_props *props);
    /* Receiver side: start listening for `peer`; fill `handle` for the bootstrap. */
    cb_status (*listen)(void *tctx, const struct cb_peer *peer, void *handle, void **lcomm);
    /* Sender side, non-blocking: call until *sconn is non-NULL. */
    cb_status (*connect)(void *tctx, const struct cb_peer *peer, const void *handle, void **sconn);
    /* Receiver side, non-blocking: call until *rconn is non-NULL. */
    cb_status (*accept)(void *lcomm, void **rconn);
    /* Where caps.replies, once per connection after the handle exchange and
     * before connect / accept: the sender fills `reply` (CB_HANDLE_BYTES)
     * from the receiver's handle, even when it fails (so the receiver learns
     * why instead of waiting); the bootstrap carries it to the receiver. */
    cb_status (*reply)(void *tctx, const struct cb_peer *peer, const void *handle, void *reply);
    cb_status (*take_reply)(void *lcomm, const void *reply);
    cb_status (*close_listen)(void *lcomm);

    /* The next free slot for a message of `nbytes` (NULL while the receiver
     * holds them all). Where the transport takes offers and the receiver
     * offered a destination for this message (recv_offer), that destination
     * instead of a slot: the caller writes straight into it. */
    cb_status (*send_slot)(void *sconn, size_t nbytes, void **slot);
    cb_status (*send_post)(void *sconn, size_t nbytes);
    cb_status (*recv_slot)(void *rconn, const void **slot, size_t *nbytes);
    cb_status (*recv_release)(void *rconn);
    /* Receiver: the next `nmsgs` messages on this connection are to be
     * received now, in order (the channel primitives say so before they
     * wait). A connection with shared slots clears the sender to send only
     * these; the others have their own slots and clear them ahead. */
    cb_status (*recv_expect)(void *rconn, size_t nmsgs);
    /* Drive the connections of the context that have work (socket I/O, CQ
     * polling). Called by every wait loop, so data posted to one peer moves
     * while we wait for another. Its cost must follow the connections with
     * data moving, not the number of peers (tcp: a backlog of senders and
     * an epoll set of receivers); each connection's own calls drive it too. */
    cb_status (*progress)(void *tctx);
    /* Sender: *idle = 1 when everything posted has left this rank's buffers
     * (safe to close) and, where the transport lends (caps.lends), has been
     * consumed by the receiver, or (verbs, to shared slots) written into
     * its memory: lent memory is free to change. */
    cb_status (*send_idle)(void *sconn, int *idle);

    /* Zero-copy, in one vocabulary:
     *   window: memory for collective buffers that the transport can move data
     *     to or from without a copy (shm: memory the peers of this machine
     *     can map; verbs: memory registered with the device; tcp: plain);
     *   lend: the sender posts a message whose data stays in its window, moved
     *     from there with no copy into a slot (send_lend);
     *   offer: the receiver names where in its window a message is to land
     *     (recv_offer), so the sender writes it there.
     * Every transport has every operation (transport/defaults.c gives the
     * ones that do nothing); caps say which ones do something. */
    void *(*alloc_shared)(void *tctx, size_t bytes);
    void (*free_shared)(void *tctx, void *p);
    /* Receiver: offer `dst` (in window memory) as where message `ahead`
     * (0: the next one to be received) of `nbytes` is to land; *accepted = 0
     * when it cannot (not window memory, too small, more than nslots ahead,
     * or that message already has another offer). A sender that sees the
     * offer writes straight there and recv_slot then returns that
     * destination; one that does not uses a slot as usual. */
    cb_status (*recv_offer)(void *rconn, size_t ahead, void *dst, size_t nbytes, int *accepted);
    /* Sender, after send_slot gave a slot: post a message of `nbytes` whose
     * data stays at `src` and is moved from there with no copy into the slot
     * (shm: the receiver reads it in place, even where it offered a
     * destination: a pull from the other core's cache beats a push into
     * it; verbs: RDMA-written from it). `src` must be window memory that
     * nobody writes until send_idle says the receiver consumed the message.
     * *posted = 0 when it cannot (src not in a window, a small message):
     * then the caller fills the slot and calls send_post. */
    cb_status (*send_lend)(void *sconn, const void *src, size_t nbytes, int *posted);
    struct cb_transport_caps caps;

    /* The port state changes seen since init, from the `from`-th on, at
     * most `max` into ev; returns how many were seen since init in all
     * (cb_transport_no_port_events where a transport sees none: shm, tcp). */
    int (*port_events)(void *tctx, int from, struct cb_port_event *ev, int max);

    /* Buffer memory one connection end holds for its FIFO (slots, control,
     * CTS entries; verbs: what it registered), for the run's memory report;
     * 0 where it maps the peer's memory and allocates none (shm's sender). */
    size_t (*send_bytes)(void *sconn);
    size_t (*recv_bytes)(void *rconn);
    /* What send_bytes or recv_bytes of a connection end made with cfg
     * reports, from the slot geometry alone: `collbench model`'s figure. */
    size_t (*geometry_bytes)(const struct cb_transport_config *cfg, enum cb_conn_end end);
    /* Buffer memory the context holds for all its connections (verbs: the
     * shared receive pool, as large as the most slots granted at once), and
     * what it holds with at most `slots` granted at once (the model's). */
    size_t (*shared_bytes)(void *tctx);
    size_t (*shared_geometry_bytes)(const struct cb_transport_config *cfg, int slots);
    /* Grow the shared pool to hold `slots` at once now (an algorithm's most
     * in flight, once its connections are made): registered outside the
     * timed runs, and what the header reports is what they use. */
    cb_status (*reserve_shared)(void *tctx, int slots);

    cb_status (*close_send)(void *sconn);
    cb_status (*close_recv)(void *rconn);
    void (*finalize)(void *tctx);
};

extern const struct cb_transport_ops cb_transport_shm;
extern const struct cb_transport_ops cb_transport_tcp;
extern const struct cb_transport_ops cb_transport_verbs;

/* Every transport, NULL-terminated (transport/registry.c), and one by name
 * (NULL if unknown). */
extern const struct cb_transport_ops *const cb_transports[];
const struct cb_transport_ops *cb_transport_find(const char *name);
/* "shm, tcp, verbs" with last_sep before the last name. */
void cb_transport_names(char *buf, size_t size, const char *last_sep);

/* Defaults for a transport without a zero-copy path (transport/defaults.c):
 * plain page-aligned memory, offers never accepted, nothing lent; and for
 * one that sees no port events. */
void *cb_transport_plain_alloc(void *tctx, size_t bytes);
void cb_transport_plain_free(void *tctx, void *p);
cb_status cb_transport_no_offer(void *rconn, size_t ahead, void *dst, size_t nbytes, int *accepted);
cb_status cb_transport_no_lend(void *sconn, const void *src, size_t nbytes, int *posted);
int cb_transport_no_port_events(void *tctx, int from, struct cb_port_event *ev, int max);
/* Runs wherever the program runs (shm, tcp). */
int cb_transport_always_usable(const struct cb_transport_config *cfg);
cb_status cb_transport_no_reply(void *tctx, const struct cb_peer *peer, const void *handle, void *reply);
cb_status cb_transport_no_take_reply(void *lcomm, const void *reply);
/* A connection end that allocates no buffer of its own (it maps the peer's). */
size_t cb_transport_no_buffers(void *conn);
/* No shared slots: every connection clears its own ahead, expecting is moot. */
cb_status cb_transport_no_expect(void *rconn, size_t nmsgs);
/* No buffer memory outside the connections. */
size_t cb_transport_no_shared_buffers(void *tctx);
size_t cb_transport_no_shared_geometry(const struct cb_transport_config *cfg, int slots);
cb_status cb_transport_no_reserve(void *tctx, int slots);

#endif
