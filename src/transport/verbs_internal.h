/* Private to the verbs transport (src/transport/verbs*.c): its wire
 * formats, its state, and the functions its files share. The overview of
 * the design is at the top of verbs.c.
 *   verbs.c         ops table, init, finalize: one context per device
 *   verbs_rank.c    a rank's devices: channel to device, merged properties and events
 *   verbs_device.c  GID, MTU and address choice; port rate; limits; properties
 *   verbs_port.c    which device and port (--hca, the automatic choice)
 *   verbs_handle.c  the connection handle, the MTU both ends agree on
 *   verbs_conn.c    one connection's resources: memory, CQ, QPs and their states
 *   verbs_cm.c      rdma_cm: listen, connect, accept, the CM event pump
 *   verbs_oob.c     --ib-connect oob: QP addresses through the bootstrap, QPs moved by hand
 *   verbs_fifo.c    the data path: CTS FIFO, RDMA writes, completions, progress
 *   verbs_async.c   the async-event thread */
#ifndef CB_VERBS_INTERNAL_H
#define CB_VERBS_INTERNAL_H

#include "transport.h"
#include "transport/hca.h"
#include "core/clock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include <netinet/in.h>
#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#define VH_MAGIC 0x43425648u    /* "CBVH": handle */
#define VREQ_MAGIC 0x43425652u  /* "CBVR": CM request private data */
#define VREP_MAGIC 0x43425641u  /* "CBVA": CM reply private data */
#define VRPL_MAGIC 0x43425650u  /* "CBVP": the sender's reply through the bootstrap */
#define VH_VERSION 7   /* 3: the port's MTU, link layer, rate; 4: --ib-connect, QP addresses; 5: split_data;
                          * 6: QP addresses in one block (struct vqps); 7: pooled */
#define VB_MAX_QPS 64  /* --qps bound: every QP number fits in a handle */
#define CQ_BATCH 32
#define VB_PORT_EVENTS_MAX 32

enum { WR_DATA = 1, WR_CTS = 2, WR_RECV = 3 };
#define WR_ID(kind, n) (((uint64_t)(kind) << 56) | (n))
#define WR_KIND(id) ((int)((id) >> 56))
#define WR_N(id) ((id) & ((UINT64_C(1) << 56) - 1))

enum { OWN_LISTEN = 1, OWN_QP = 2 };
enum vb_connect_mode { VB_CONNECT_CM = 1, VB_CONNECT_OOB = 2 };
enum { QS_NONE, QS_ADDR, QS_ROUTE, QS_CONNECTING, QS_ESTABLISHED, QS_GONE };

/* One end's QPs as the other end needs them to connect without rdma_cm
 * (--ib-connect oob), with the mode this end uses: the same block in the
 * handle (the receiver's) and the reply (the sender's); big-endian fields. */
struct vqps {
    uint8_t connect_mode;     /* enum vb_connect_mode */
    uint8_t gid_index;
    uint16_t nqps;
    uint16_t lid;
    uint16_t pad;
    uint8_t gid[16];
    uint32_t psn;             /* the first PSN of every QP of this end */
    uint32_t qpn[VB_MAX_QPS]; /* oob: the QP numbers, nqps of them */
    char dev[64];             /* for messages only */
};

/* What the handle says; CB_HANDLE_BYTES bounds it. */
struct vhandle {
    uint32_t magic;
    uint16_t version;
    uint16_t family;          /* AF_INET or AF_INET6 */
    uint32_t nonce;           /* identifies this listen */
    int32_t rank;             /* the listening (receiving) rank */
    uint16_t port;            /* rdma_cm port, network byte order */
    uint8_t pooled;           /* 1: the listener's slots are from its shared pool */
    uint8_t pad;
    uint32_t nslots;
    uint64_t slot_bytes;
    uint8_t addr[16];         /* IPv4 (first 4 bytes) or IPv6 address */
    uint32_t scope_id;
    uint8_t mtu;              /* enum ibv_mtu this end may use: active MTU, or --mtu */
    uint8_t active_mtu;       /* enum ibv_mtu */
    uint8_t link_layer;       /* IBV_LINK_LAYER_* */
    uint8_t mtu_asked;        /* 1 when mtu came from --mtu */
    uint32_t rate_mbps;       /* the port's rate, 0 = unknown */
    uint8_t split_data;       /* cb_split_data() of the listening (receiving) rank */
    char host[64];
    struct vqps qps;          /* the listener's */
};
_Static_assert(sizeof(struct vhandle) <= CB_HANDLE_BYTES, "verbs handle too large");

/* The sender's answer to a handle (the bootstrap carries it back), big-endian
 * fields. With cm it only says the mode (so a mismatch is caught at both
 * ends); with oob it is the sender's half of every QP. */
struct vreply {
    uint32_t magic;
    uint16_t version;
    uint8_t ok;               /* 0: the sender failed to set up its end (its log says why) */
    uint8_t path_mtu;         /* enum ibv_mtu the sender chose from the handle (min of both ends) */
    int32_t rank;             /* the sender */
    uint32_t nonce;           /* the listen's, from the handle */
    uint8_t token[CB_TOKEN_BYTES];
    uint8_t link_layer;
    uint8_t pad[3];
    uint32_t cts_rkey;
    uint64_t cts_addr;
    struct vqps qps;          /* the sender's */
};
_Static_assert(sizeof(struct vreply) <= CB_HANDLE_BYTES, "verbs reply too large");

/* One end of a connection as the MTU agreement sees it (host byte order). */
struct vb_end {
    int rank;
    const char *host, *dev;
    int link_layer;           /* IBV_LINK_LAYER_* */
    enum ibv_mtu mtu;         /* what this end may use: active MTU, or --mtu */
    enum ibv_mtu active_mtu;
    int mtu_asked;
    uint32_t rate_mbps;       /* 0 = unknown */
};

/* struct vqps in host byte order. */
struct vb_qps {
    int connect_mode;         /* enum vb_connect_mode */
    int nqps;
    int gid_index;
    uint16_t lid;
    uint8_t gid[16];
    uint32_t psn;
    uint32_t qpn[VB_MAX_QPS];
    char dev[64];
};

/* The handle in host byte order (verbs_handle.c). */
struct vb_hinfo {
    int family;               /* AF_INET or AF_INET6 */
    uint32_t nonce;
    int rank;
    uint16_t port_be;         /* rdma_cm port, network byte order */
    uint32_t nslots;
    uint64_t slot_bytes;
    uint8_t addr[16];
    uint32_t scope_id;
    int link_layer, mtu_asked;
    enum ibv_mtu mtu, active_mtu;
    uint32_t rate_mbps;
    int split_data;
    int pooled;
    char host[64];
    struct vb_qps qps;
};

/* The reply in host byte order (verbs_handle.c). */
struct vb_rinfo {
    int ok;
    int rank;
    uint32_t nonce;
    uint8_t token[CB_TOKEN_BYTES];
    enum ibv_mtu path_mtu;
    int link_layer;
    uint32_t cts_rkey;
    uint64_t cts_addr;
    struct vb_qps qps;
};

/* CM REQ private data (at most 56 bytes on IB/RoCE); big-endian fields. */
struct vreq {
    uint32_t magic;
    uint32_t nonce;
    int32_t rank;             /* the sender */
    uint16_t qp_idx, nqps;
    uint64_t cts_addr;
    uint32_t cts_rkey;
    uint32_t nslots;
    uint8_t token[CB_TOKEN_BYTES];
    uint8_t path_mtu;         /* enum ibv_mtu both ends agreed on (the sender chose it from the handle) */
    uint8_t link_layer;       /* the sender's IBV_LINK_LAYER_* */
    uint8_t split_data;       /* the sender's cb_split_data() */
    uint8_t pad;
};
_Static_assert(sizeof(struct vreq) <= 56, "CM request private data too large");

struct vrep {
    uint32_t magic;
    int32_t rank;             /* the receiver */
    uint16_t qp_idx, pad;
};

/* One clear-to-send entry. The sender's region holds 2 * nslots of them:
 * [0, nslots) the clear-to-sends of the receive slots, [nslots, 2 * nslots)
 * the receiver's offers of a destination in its own registered buffer for a
 * message (recv_offer). The receiver writes a whole entry with one RDMA
 * write; the sender polls it. An entry is 32 bytes at a 32-byte boundary, so
 * it never spans a cache line (nor a 32-byte boundary): the NIC's write of it
 * is one PCIe write into one line. Even so neither PCIe (relaxed ordering,
 * a NIC that splits writes) nor the verbs specification promises in which
 * order the bytes of one RDMA write become visible to the CPU, so `check`
 * ties the fields to the sequence number: a reader that sees the new seq
 * with an old address, rkey or size (or an old check) finds a mismatch and
 * reads again at its next poll (vb_entry_read). */
struct cts_entry {
    _Alignas(32) uint64_t addr;
    uint32_t rkey;
    uint32_t size;
    uint32_t seq;             /* sequence + 1; 0 = never written */
    uint32_t check;           /* vb_entry_check(addr, rkey, size, seq) */
    uint64_t pad;
};
_Static_assert(sizeof(struct cts_entry) == 32, "a FIFO entry is 32 bytes");
_Static_assert(_Alignof(struct cts_entry) == 32, "FIFO entries sit at 32-byte boundaries");
_Static_assert(64 % sizeof(struct cts_entry) == 0, "no FIFO entry spans a cache line");

/* A 32-bit mix of all fields: any field from an older write changes it. */
static inline uint32_t vb_entry_check(uint64_t addr, uint32_t rkey, uint32_t size, uint32_t seq)
{
    uint64_t h = addr * UINT64_C(0x9e3779b97f4a7c15);
    h ^= (((uint64_t)rkey << 32) | size) * UINT64_C(0xc2b2ae3d27d4eb4f);
    h ^= seq * UINT64_C(0x165667b19e3779f9);
    h ^= h >> 31;
    h *= UINT64_C(0xbf58476d1ce4e5b9);
    h ^= h >> 29;
    return (uint32_t)h ^ (uint32_t)(h >> 32);
}

static inline struct cts_entry vb_entry_make(uint64_t addr, uint32_t rkey, uint32_t size, uint32_t seq)
{
    return (struct cts_entry){.addr = addr, .rkey = rkey, .size = size, .seq = seq,
                              .check = vb_entry_check(addr, rkey, size, seq)};
}

/* Copy entry `e` to *out when it holds sequence seq (+1) completely: 1, else 0 (not yet, or
 * only partly landed: poll again). */
int vb_entry_read(const struct cts_entry *e, uint32_t seq, struct cts_entry *out);

/* Immediate data: (seq & 0xff) << 24 | IMM_DIRECT? | bytes, when slots are
 * under 8 MiB (direct_imm); IMM_DIRECT marks a write into the offered
 * destination instead of the slot. */
#define IMM_DIRECT (UINT32_C(1) << 23)
/* Offers below this cost more than the copy they save: an offer is one more
 * small RDMA write per message (measured in docs/verbs.md). */
#define VB_DIRECT_MIN_BYTES ((size_t)64 << 10)

/* Receiver: a destination offered for message seq1 - 1 (0: none). */
struct vb_offer {
    char *dst;
    uint32_t bytes;
    uint64_t seq1;
};

struct vctx;
struct vconn;

struct vqp {
    int own;                  /* OWN_QP: what an rdma_cm id's context points to */
    struct vconn *c;
    int idx;
    struct rdma_cm_id *id;
    struct ibv_qp *qp;
    int state;
    uint64_t sq_posted, sq_freed;   /* work requests posted / known completed */
    int unsig;                /* posted unsignaled since the last signaled */
    uint64_t done;            /* sender: writes completed (message + 1 of the last signaled one) */
    uint64_t rcount;          /* receiver: imms received (pieces, in this QP's order of messages) */
    int tc, sl, mtu;          /* what the QP has after RTR (ibv_query_qp), -1 = unknown */
    int sl_asked;             /* the SL given to ibv_modify_qp for RTR (rxe keeps none), -1 = not yet */
};

struct vconn {
    struct vctx *t;
    struct vconn *next;
    struct vconn *next_active;   /* in t->active */
    int in_active;
    int is_send;
    struct cb_peer peer;
    int nq;
    struct vqp *q;
    int split;                /* each message in nq pieces, one per QP; else whole on QP s % nq */
    enum ibv_mtu mtu;         /* agreed with the peer: min of both ends */
    int nslots;
    size_t slot_bytes;
    int sq_depth, rq_depth, sig_every;
    struct ibv_cq *cq;
    char *fifo;               /* sender: staging slots; receiver: receive slots */
    struct ibv_mr *fifo_mr;
    struct cts_entry *cts;    /* sender: CTS and offer FIFOs (written by the peer); receiver: their sources */
    struct ibv_mr *cts_mr;
    uint32_t *sizes;          /* bytes per slot */
    const char **lent;        /* sender: per slot, the user's buffer it is written from, NULL = staging */
    uint32_t *lent_lkey;
    size_t reg_bytes;         /* counted against the memlock limit */
    cb_status err;            /* sticky, logged when first seen */
    int ready;                /* handed to the caller */
    int nestablished;
    int64_t t_start;
    uint32_t nonce;
    int seq_imm;              /* imm carries seq & 0xff in its top byte */
    int direct_imm;           /* ... and has room for IMM_DIRECT */
    int inline_cts;
    int peer_gone;
    int slot_out;             /* a slot was handed out and not posted / released */
    /* sender */
    uint64_t posted, issued, completed;
    /* receiver */
    uint64_t consumed, cts_sent;
    int pooled;               /* slots from t's shared pool (struct cb_peer's shared_slots, both
                               * ends alike): a sender is handed a staging slot without its
                               * clear-to-send (that comes only once the receiver expects the
                               * message), and is idle once every write completed */
    uint64_t expected;        /* messages the receiver has said it takes (recv_expect): with
                               * pooled slots the sender is cleared for these only */
    struct vslot **granted;   /* pooled: per slot, the pool slot in use (receiver: the one its
                               * clear-to-send named; sender: the staging of an unlent message) */

    struct vb_offer *offers;  /* per slot */
    uint8_t *ndirect;         /* per slot: pieces written to the offered destination */
    int ar;                   /* sender: --ib-ar's form for pieces of ar_threshold bytes or more */
    size_t ar_threshold;
    uint64_t *wqe_end;        /* sender: [nq * nslots] a QP's sq_posted after a slot's writes, so a
                               * completion frees what that slot took (one or two work requests) */
    uint64_t remote_cts_addr;
    uint32_t remote_cts_rkey;
    int have_remote;
};

struct vlisten {
    int own;                  /* OWN_LISTEN */
    struct vctx *t;
    struct vlisten *next;
    struct rdma_cm_id *id;
    struct vconn *rc;         /* owned until accept() hands it over */
    struct cb_peer peer;
    int64_t t_first;
};

/* One slot of the shared receive pool (verbs_pool.c). */
struct vslot {
    char *addr;
    uint32_t lkey, rkey;
    struct vslot *next_free;
};
struct vpool_chunk;

/* A collective buffer registered with the device (verbs_window.c). */
struct vwindow {
    void *base;
    size_t bytes;
    int owns_memory;          /* mapped here (vb_alloc_shared), not by another device's context */
    struct ibv_mr *mr;        /* NULL when it could not be registered */
    struct vwindow *next;
};

struct vctx {
    struct cb_transport_config cfg;
    char dev[64];
    int port;
    struct ibv_context *ctx;
    struct ibv_pd *pd;
    struct ibv_port_attr pattr;
    struct ibv_device_attr dattr;
    enum ibv_mtu mtu;
    int gid_index;
    int gid_type;             /* 0 IB, 1 RoCE v1, 2 RoCE v2 */
    union ibv_gid gid;
    struct sockaddr_storage addr;   /* rdma_cm address of this rank (port 0) */
    char addr_str[INET6_ADDRSTRLEN];
    struct rdma_event_channel *ch;
    size_t memlock_limit;     /* SIZE_MAX = unlimited */
    size_t registered;
    uint32_t nonce_seed;
    unsigned pump_tick;
    int connect_mode;         /* enum vb_connect_mode in force (--ib-connect, auto resolved) */
    char connect_why[48];     /* "--ib-connect oob", "auto: InfiniBand", ... */
    int oob_tc;               /* oob without --tc: default_roce_tos (configfs) or 0 */
    char oob_tc_from[32];     /* "default_roce_tos", "GID default" */
    int oob_sl;               /* oob without --sl: rdma_cm's derivation (verbs_qos.c) or 0 */
    char oob_sl_from[64];     /* "VLAN eth0.100 egress map, prio 4", "no VLAN on eth0", ... */
    uint32_t psn;             /* the first PSN of this rank's oob QPs */
    int64_t setup_first_ns;   /* the first listen / connect (0 = none yet) */
    int64_t setup_last_ns;    /* the last connection ready (all its QPs RTS) */
    struct vconn *conns;
    /* What progress serves, so that its cost follows the connections with
     * work, not all of them: senders with posted slots not yet written,
     * receivers owing clear-to-sends (verbs_fifo.c, vb_conn_note_work) */
    struct vconn *active;
    int nunready;             /* connections not yet handed to the caller: rdma_cm is pumped */
    struct vlisten *listens;
    struct vwindow *windows;  /* alloc_shared buffers */
    struct vpool_chunk *pool; /* shared receive slots (verbs_pool.c) */
    struct vslot *pool_free;
    size_t pool_bytes;
    int pool_slots, pool_reserved;
    int window_warned;        /* one warning for buffers left unregistered */
    uint32_t rate_mbps;       /* this port's rate, 0 = unknown */
    char rate_str[64];        /* "200 Gb/s (4X HDR)" */
    char rate_warn[96];       /* the first peer whose port rate differs from ours */
    char port_note[192];      /* ports the automatic choice skipped, for the header */
    /* async-event thread */
    pthread_t async_thr;
    int async_started;
    int wake_fd;
    atomic_int async_claimed;
    atomic_int async_type;    /* event type + 1, 0 = none */
    atomic_uint async_qpn;
    atomic_int async_stop;
    int async_reported;
    /* port state changes: the async thread appends to port_ev and then
     * publishes the count; the data path reads port_down_ms */
    atomic_llong port_down_ms;   /* CLOCK_MONOTONIC ms of the PORT_ERR, 0 = the port is active */
    atomic_int nport_ev;         /* events seen; the first VB_PORT_EVENTS_MAX are in port_ev */
    pthread_mutex_t port_lock;   /* appends: the thread and vb_async_poll may both read events */
    struct cb_port_event port_ev[VB_PORT_EVENTS_MAX];
    int port_down_reported;
};

/* The transport's context: the devices a rank drives (transport/hca.h's
 * rule), dev[cb_hca_channel_device(channel, ndev)] carrying a channel. */
struct vrank {
    int ndev;
    int stripe;
    struct vctx *dev[CB_HCA_MAX];
};

/* ------------------------------------------------------------------ helpers */

static inline int vb_mtu_bytes(enum ibv_mtu m)
{
    return m >= IBV_MTU_256 && m <= IBV_MTU_4096 ? 128 << m : 0;
}

static inline size_t vb_page_round(size_t n)
{
    return (n + 4095) & ~(size_t)4095;
}

/* Whether `more` bytes can still be registered under the memlock limit. */
static inline int vb_memlock_room(const struct vctx *t, size_t more)
{
    return t->memlock_limit == SIZE_MAX || t->registered + more <= t->memlock_limit;
}

static inline void vb_conn_fail(struct vconn *c, cb_status st)
{
    if (!c->err)
        c->err = st;
}

static inline const char *vb_dir_word(const struct vconn *c)
{
    return c->is_send ? "to" : "from";
}

/* ---------------------------------------------------- verbs_handle.c */
void vb_handle_encode(const struct vb_hinfo *h, void *handle);
/* CB_EUSAGE (logged, naming `peer`) for a handle that is not a verbs handle of this version. */
cb_status vb_handle_decode(const void *handle, const struct cb_peer *peer, struct vb_hinfo *h);
/* The path MTU two ends use: min of both; CB_EDEVICE (logged) for an
 * InfiniBand port facing an Ethernet one, CB_EUSAGE (logged) when an --mtu
 * one end was given is above what the other end can take. A rate that
 * differs is no error: `warn` (may be NULL) gets a line for the header. */
void vb_reply_encode(const struct vb_rinfo *r, void *reply);
/* CB_EUSAGE (logged, naming `peer`) for a reply that is not a verbs reply of this version. */
cb_status vb_reply_decode(const void *reply, const struct cb_peer *peer, struct vb_rinfo *r);
const char *vb_connect_mode_str(int mode);
cb_status vb_agree_mtu(const struct vb_end *mine, const struct vb_end *peer, enum ibv_mtu *out, char *warn,
                       size_t wlen);
const char *vb_link_layer_str(int ll);

/* ---------------------------------------------------- verbs_device.c */
int vb_have_cap_ipc_lock(void);
size_t vb_conn_reg_bytes(const struct cb_transport_config *cfg);
/* The whole of a small file (sysfs, /proc) in buf, NUL-terminated; -1 when
 * it cannot be read. */
int vb_read_file(const char *path, char *buf, size_t len);
/* The shared receive pool (verbs_pool.c): a free slot, grown by a FIFO's
 * worth when empty (CB_EDEVICE / CB_ENOMEM, logged, naming `peer`). */
cb_status vb_pool_take(struct vctx *t, const struct cb_peer *peer, struct vslot **out);
void vb_pool_give(struct vctx *t, struct vslot *s);
void vb_pool_destroy(struct vctx *t);
/* Grow the pool to at least `slots` now; growing past the most reserved
 * later (inside a run) is said once per chunk. */
cb_status vb_pool_reserve(struct vctx *t, int slots);
size_t vb_fifo_entries_bytes(int nslots);
cb_status vb_check_memlock(struct vctx *t, size_t more, const char *what, const struct cb_peer *peer);
cb_status vb_check_queue_limits(const struct vctx *t);
uint32_t vb_speed_code(const struct ibv_port_attr *pa);
uint32_t vb_rate_mbps(uint32_t speed, int width, char *desc, size_t len);
cb_status vb_choose_gid(struct vctx *t);
cb_status vb_choose_mtu(struct vctx *t);
cb_status vb_choose_cm_addr(struct vctx *t);
void vb_properties(void *tctx, struct cb_props *props);
void vb_port_rate(struct vctx *t);

/* ----------------------------------------------------- verbs_async.c */
cb_status vb_async_start(struct vctx *t);
void vb_async_stop(struct vctx *t);
/* A fatal async event, or the port down for longer than the QPs' retry
 * budget allows: the error, logged once. */
cb_status vb_check_async(struct vctx *t);
/* The port went down and has not come back: post nothing (a write posted
 * now fails at once on some devices); the QPs retry what is in flight. */
static inline int vb_port_down(struct vctx *t)
{
    return atomic_load_explicit(&t->port_down_ms, memory_order_relaxed) != 0;
}
/* --ib-relaxed-ordering: the access flag of the data buffers' registrations
 * (an optional flag: rdma-core passes it on, a device without it ignores it).
 * The clear-to-send FIFOs never take it: their entries rely on ordering. */
static inline int vb_data_access(const struct vctx *t)
{
    return t->cfg.ib_relaxed_ordering == CB_SWITCH_OFF ? 0 : IBV_ACCESS_RELAXED_ORDERING;
}
/* --ib-ar: auto is on for InfiniBand (whose switches may route adaptively),
 * off for RoCE, as NCCL_IB_ADAPTIVE_ROUTING. */
static inline int vb_ar(const struct vctx *t)
{
    return t->cfg.ib_ar == CB_SWITCH_ON ||
           (t->cfg.ib_ar == CB_SWITCH_AUTO && t->pattr.link_layer == IBV_LINK_LAYER_INFINIBAND);
}
/* Read the async events already queued, without waiting (the thread may
 * not have run yet): before a message that lists them. */
void vb_async_poll(struct vctx *t);
/* "port error 01:02:03.456Z, port active ..." or "none", for messages. */
void vb_port_events_text(struct vctx *t, char *buf, size_t len);
int vb_port_events(void *tctx, int from, struct cb_port_event *ev, int max);

/* ------------------------------------------------------ verbs_port.c */
/* The ports a rank drives: one, or with stripe every --hca candidate. */
struct vb_ports_used {
    int n;
    int stripe;               /* channel c on entry cb_hca_channel_device(c, n) */
    int dev[CB_HCA_MAX];      /* index into ibv_get_device_list's list */
    int port[CB_HCA_MAX];
};
/* Which devices and ports this rank uses (--hca, else the automatic choice);
 * `note` gets the ports the automatic choice skipped ("" if none). */
cb_status vb_choose_port(const struct cb_transport_config *cfg, struct ibv_device **list, int n,
                         struct vb_ports_used *use, char *note, size_t note_len);
/* The transport's `usable`: an ACTIVE port on some device here, or --hca set
 * (then init says what is wrong with the ports it names). Logs nothing. */
int vb_active_port_here(const struct cb_transport_config *cfg);

/* ------------------------------------------------------ verbs_conn.c */
cb_status vb_conn_create(struct vctx *t, int is_send, const struct cb_peer *peer, struct vconn **out);
void vb_conn_destroy(struct vconn *c);
cb_status vb_qp_create(struct vconn *c, struct vqp *q);
cb_status vb_qp_modify(struct vconn *c, struct vqp *q, enum ibv_qp_state state);
cb_status vb_post_recvs(struct vconn *c, struct vqp *q, int n);
/* What the QP really has after RTR (ibv_query_qp), for the header: traffic class, SL, MTU. */
void vb_qp_record_path(struct vqp *q);

/* -------------------------------------------------------- verbs_oob.c */
/* Which connect mode --ib-connect puts in force on this port, and why. */
void vb_choose_connect_mode(struct vctx *t);
/* The traffic class of oob QPs without --tc: the port's default_roce_tos
 * (rdma_cm's configfs, when an admin created it) or 0. */
void vb_oob_choose_tc(struct vctx *t);

/* -------------------------------------------------------- verbs_qos.c */
/* The SL of oob QPs without --sl for traffic class `tc`, as rdma_cm derives
 * it on RoCE (VLAN egress map); 0 elsewhere, with a warning where it cannot
 * be read. Sets t->oob_sl and t->oob_sl_from. */
void vb_oob_choose_sl(struct vctx *t, int tc);
/* rt_tos2priority(): the Linux priority of an IP TOS byte. */
int vb_tos_to_prio(int tos);
/* The PCP the "EGRESS priority mappings:" line of a /proc/net/vlan/<netdev>
 * text gives priority `prio` (0 when unmapped); CB_EDEVICE without the line. */
cb_status vb_vlan_egress_pcp(const char *text, int prio, int *pcp);
/* The "Device:" (the real netdev) of a /proc/net/vlan/<netdev> text. */
cb_status vb_vlan_real_dev(const char *text, char *dev, size_t len);
cb_status vb_oob_listen(struct vlisten *l, struct vb_hinfo *h);
cb_status vb_reply(void *tctx, const struct cb_peer *peer, const void *handle, void *reply);
cb_status vb_take_reply(void *lcomm, const void *reply);
/* A connection whose QPs are all RTS: the set-up clock's last mark. */
void vb_setup_mark(struct vctx *t);

/* -------------------------------------------------------- verbs_cm.c */
cb_status vb_agree_with_listener(struct vctx *t, const struct cb_peer *peer, const struct vb_hinfo *h,
                                 enum ibv_mtu *mtu);
/* Receiver: the sender's port (link layer) and the path MTU it chose fit
 * this port; else CB_EDEVICE, logged naming both ends (cm and oob). */
cb_status vb_check_sender_path(const struct vctx *t, const struct cb_peer *peer, int link_layer, int path_mtu);
cb_status vb_check_same_shape(const struct vctx *t, const struct cb_peer *peer, const struct vb_hinfo *h);
cb_status vb_cm_pump(struct vctx *t);
cb_status vb_listen(void *tctx, const struct cb_peer *peer, void *handle, void **lcomm);
cb_status vb_accept(void *lcomm, void **rconn);
cb_status vb_close_listen(void *lcomm);
cb_status vb_connect(void *tctx, const struct cb_peer *peer, const void *handle, void **sconn);

/* ------------------------------------------------------ verbs_rank.c */
void vr_properties(void *tctx, struct cb_props *props);
cb_status vr_listen(void *tctx, const struct cb_peer *peer, void *handle, void **lcomm);
cb_status vr_connect(void *tctx, const struct cb_peer *peer, const void *handle, void **sconn);
cb_status vr_reply(void *tctx, const struct cb_peer *peer, const void *handle, void *reply);
cb_status vr_progress(void *tctx);
void *vr_alloc_shared(void *tctx, size_t bytes);
void vr_free_shared(void *tctx, void *p);
int vr_port_events(void *tctx, int from, struct cb_port_event *ev, int max);

/* ------------------------------------------------------ verbs_fifo.c */
cb_status vb_cts_issue(struct vconn *c);
cb_status vb_conn_progress(struct vconn *c);
/* All QPs of c established: hand it to the caller; progress serves it from
 * now on while it has work. */
void vb_conn_mark_ready(struct vconn *c);
/* Progress serves c while it has work; called after each operation on it. */
void vb_conn_note_work(struct vconn *c);
void vb_conn_forget_work(struct vconn *c);
cb_status vb_send_slot(void *sconn, size_t nbytes, void **slot);
cb_status vb_send_post(void *sconn, size_t nbytes);
cb_status vb_send_lend(void *sconn, const void *src, size_t nbytes, int *posted);
void *vb_alloc_shared(void *tctx, size_t bytes);
void vb_free_shared(void *tctx, void *p);
/* The registration that holds [p, p + n), or NULL. */
const struct ibv_mr *vb_window_mr(const struct vctx *t, const void *p, size_t n);
/* Register memory another device's context allocated (vb_alloc_shared) with
 * this device too; vb_free_shared then forgets it without unmapping it. */
void vb_window_register(struct vctx *t, void *base, size_t bytes);
cb_status vb_recv_slot(void *rconn, const void **slot, size_t *nbytes);
cb_status vb_recv_release(void *rconn);
cb_status vb_recv_offer(void *rconn, size_t ahead, void *dst, size_t nbytes, int *accepted);
cb_status vb_progress(void *tctx);
cb_status vb_send_idle(void *sconn, int *idle);
cb_status vb_recv_expect(void *rconn, size_t nmsgs);
cb_status vb_close_send(void *sconn);
cb_status vb_close_recv(void *rconn);

#endif
