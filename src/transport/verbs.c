/* The raw-verbs transport: RC QPs on libibverbs, connected with librdmacm.
 *
 * Data path (receiver-driven, one-sided, like NCCL's net plugin):
 *  - the receiver registers its FIFO (nslots x slot_bytes) once; whenever a
 *    slot is free it RDMA-writes a clear-to-send entry {addr, rkey, size, seq}
 *    into the sender's registered CTS FIFO (inline when the QP allows it);
 *  - the sender gets a registered staging slot only once the CTS for its
 *    sequence number has arrived (so a posted slot is written at once and
 *    never waits for a later call); it fills it and RDMA-writes it straight
 *    into the receive slot with WRITE_WITH_IMM (imm = seq & 0xff << 24 |
 *    size): whole on one of the connection's QPs, QPs in turn (NCCL's
 *    default), or with --ib-split-data on in one piece per QP;
 *  - a receive that only copies its data out may offer its destination (a
 *    registered user buffer) for a message up to a FIFO ahead, in a second
 *    FIFO of entries beside the CTS; a sender that finds the offer when it
 *    writes that message writes there instead (IMM_DIRECT in the imm), so
 *    the receiver has nothing to copy; an offer that comes late is unused;
 *  - the receiver completes a slot when every piece has delivered its
 *    IBV_WC_RECV_RDMA_WITH_IMM (receive WRs stay posted), and hands slots
 *    out in order though messages on different QPs may land out of order.
 *  Most work requests are unsignaled; every Nth (N = nslots / 2), and a
 *  write that fills the sender's last free slot, is signaled so the send
 *  queues drain and staging slots come back.
 *
 * Connection set-up (--ib-connect cm; oob: see verbs_oob.c): the listener binds an rdma_cm id to the IP address of
 * the chosen GID with an ephemeral port; the handle carries that address and
 * port. The sender makes one rdma_cm connection per QP; the private data of
 * the CM request carries its CTS FIFO address and rkey, the listen nonce and
 * the job token. QPs are ours (ibv_create_qp), moved INIT -> RTR -> RTS with
 * the attributes from rdma_init_qp_attr plus our path MTU, timeouts, retry
 * counts, traffic class and service level. Everything is non-blocking: the
 * CM event channel fd is O_NONBLOCK and polled by connect, accept and
 * progress.
 *
 * A rank drives one device, or with a striping --hca several: one context
 * (struct vctx) per device, each with its own verbs context, PD, CQs,
 * rdma_cm channel and async thread; the transport's context (struct vrank,
 * verbs_rank.c) holds them and sends channel c's connections to device
 * c mod count (transport/hca.h).
 *
 * One helper thread per device context reads the device's asynchronous events and
 * records fatal ones (atomics); the next progress() reports them. A port
 * that goes down and comes back is recorded, not fatal (verbs_async.c).
 *
 * Files: see verbs_internal.h. */
#include "verbs_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static cb_status check_config(const struct cb_transport_config *cfg)
{
    if (cfg->nslots < 1 || cfg->slot_bytes < 1 || cfg->slot_bytes > (size_t)1 << 30) {
        cb_log_error("verbs: %d slots of %zu bytes: need at least 1 slot of 1 byte to 1 GiB", cfg->nslots,
                     cfg->slot_bytes);
        return CB_EUSAGE;
    }
    if (cfg->qps_per_conn > 64 || cfg->traffic_class < -1 || cfg->traffic_class > 255 ||
        cfg->service_level < -1 || cfg->service_level > 15 || cfg->ib_timeout > 31 || cfg->ib_retry_cnt > 7) {
        cb_log_error("verbs: out of range: qps per connection %d (1..64), traffic class %d (0..255, -1 = the "
                     "fabric's), service level %d (0..15, -1 = the fabric's), IB timeout %d (1..31), retry count %d (0..7)",
                     cfg->qps_per_conn, cfg->traffic_class, cfg->service_level, cfg->ib_timeout, cfg->ib_retry_cnt);
        return CB_EUSAGE;
    }
    return CB_OK;
}

static void apply_defaults(struct cb_transport_config *cfg)
{
    if (cfg->qps_per_conn < 1)
        cfg->qps_per_conn = 1;
    if (cfg->ib_timeout <= 0)
        cfg->ib_timeout = 20;
    if (cfg->ib_retry_cnt < 0)
        cfg->ib_retry_cnt = 7;
    if (cfg->ib_ar_threshold == 0)
        cfg->ib_ar_threshold = 8192;   /* NCCL_IB_AR_THRESHOLD's default */
    if (cfg->timeout_ms <= 0)
        cfg->timeout_ms = 30000;
}

/* Port attributes, GID, MTU, connect mode and address, and the limits. */
static cb_status describe_port(struct vctx *t)
{
    if (ibv_query_device(t->ctx, &t->dattr) || ibv_query_port(t->ctx, (uint8_t)t->port, &t->pattr)) {
        cb_log_error("verbs: cannot query RDMA device %s port %d: %s", t->dev, t->port, strerror(errno));
        return CB_EDEVICE;
    }
    if (t->pattr.state != IBV_PORT_ACTIVE) {
        cb_log_error("verbs: %s port %d is %s, not ACTIVE: check the link (ibstat / rdma link show), the subnet "
                     "manager on InfiniBand, or choose another port with --hca",
                     t->dev, t->port, ibv_port_state_str(t->pattr.state));
        return CB_EDEVICE;
    }
    vb_port_rate(t);
    cb_status st = vb_choose_gid(t);
    if (!st)
        st = vb_choose_mtu(t);
    if (st)
        return st;
    vb_choose_connect_mode(t);
    if (t->connect_mode == VB_CONNECT_CM)   /* oob needs no IP address (no IPoIB on InfiniBand) */
        st = vb_choose_cm_addr(t);
    else {
        vb_oob_choose_tc(t);
        vb_oob_choose_sl(t, t->cfg.traffic_class >= 0 ? t->cfg.traffic_class : t->oob_tc);
    }
    if (!st)
        st = vb_check_queue_limits(t);
    if (st)
        return st;
    struct rlimit rl;
    t->memlock_limit = SIZE_MAX;
    if (!getrlimit(RLIMIT_MEMLOCK, &rl) && rl.rlim_cur != RLIM_INFINITY && !vb_have_cap_ipc_lock())
        t->memlock_limit = (size_t)rl.rlim_cur;
    /* one send and one receive connection at least, checked before any timing */
    return vb_check_memlock(t, 2 * vb_conn_reg_bytes(&t->cfg), "one send and one receive connection", NULL);
}

/* The protection domain, the rdma_cm event channel, non-blocking fds and the async thread. */
static cb_status start_device(struct vctx *t)
{
    cb_status st = CB_OK;
    t->pd = ibv_alloc_pd(t->ctx);
    if (!t->pd) {
        cb_log_error("verbs: ibv_alloc_pd on %s failed: %s", t->dev, strerror(errno));
        return CB_EDEVICE;
    }
    if (t->connect_mode == VB_CONNECT_CM)
        t->ch = rdma_create_event_channel();
    if (t->connect_mode == VB_CONNECT_CM && !t->ch) {
        cb_log_error("verbs: rdma_create_event_channel failed: %s (is rdma_ucm loaded? /dev/infiniband/rdma_cm?)",
                     strerror(errno));
        st = CB_EDEVICE;
        goto undo_pd;
    }
    if ((t->ch && fcntl(t->ch->fd, F_SETFL, fcntl(t->ch->fd, F_GETFL) | O_NONBLOCK)) ||
        fcntl(t->ctx->async_fd, F_SETFL, fcntl(t->ctx->async_fd, F_GETFL) | O_NONBLOCK)) {
        cb_log_error("verbs: cannot make the rdma_cm / async event fds non-blocking: %s", strerror(errno));
        st = CB_ESYS;
        goto undo_channel;
    }
    st = vb_async_start(t);
    if (st)
        goto undo_channel;
    return CB_OK;

undo_channel:
    if (t->ch)
        rdma_destroy_event_channel(t->ch);
    t->ch = NULL;
undo_pd:
    ibv_dealloc_pd(t->pd);
    return st;
}

/* One device's context: its own verbs context, PD, event channel, async
 * thread, port events and connections. `k` tells a rank's devices apart. */
static cb_status open_device(const struct cb_transport_config *cfg, struct ibv_device *dev, int port, int k,
                             const char *note, struct vctx **out)
{
    struct vctx *t = calloc(1, sizeof *t);
    if (!t) {
        cb_log_error("verbs: out of memory for the transport context");
        return CB_ENOMEM;
    }
    t->cfg = *cfg;
    t->wake_fd = -1;
    t->port = port;
    snprintf(t->dev, sizeof t->dev, "%s", ibv_get_device_name(dev));
    snprintf(t->port_note, sizeof t->port_note, "%s", note);
    cb_status st = CB_EDEVICE;
    t->ctx = ibv_open_device(dev);
    if (!t->ctx) {
        cb_log_error("verbs: cannot open RDMA device %s: %s (permissions on /dev/infiniband?)", t->dev,
                     strerror(errno));
        goto undo_ctx;
    }
    st = describe_port(t);
    if (!st)
        st = start_device(t);
    if (st)
        goto undo_open;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    t->nonce_seed = (uint32_t)ts.tv_nsec ^ ((uint32_t)getpid() << 12) ^ (uint32_t)cfg->rank * 2654435761u ^
                    (uint32_t)k << 24;
    t->psn = (t->nonce_seed * 2654435761u) & 0xffffff;   /* 24 bits; a stale packet of an earlier job misses */
    *out = t;
    return CB_OK;

undo_open:
    ibv_close_device(t->ctx);
undo_ctx:
    free(t);
    return st;
}

static void close_device(struct vctx *t)
{
    vb_async_stop(t);
    while (t->listens)
        vb_close_listen(t->listens);
    while (t->conns)
        vb_conn_destroy(t->conns);
    while (t->windows)   /* buffers nobody freed */
        vb_free_shared(t, t->windows->base);
    vb_pool_destroy(t);
    close(t->wake_fd);
    if (t->ch)
        rdma_destroy_event_channel(t->ch);
    ibv_dealloc_pd(t->pd);
    ibv_close_device(t->ctx);
    free(t);
}

static void verbs_finalize(void *tctx)
{
    struct vrank *r = tctx;
    if (!r)
        return;
    for (int k = 0; k < r->ndev; k++)
        close_device(r->dev[k]);
    free(r);
}

/* Opens every device the rank drives (one, or with a striping --hca each listed). */
static cb_status open_devices(const struct cb_transport_config *cfg, struct ibv_device **list, int ndev,
                              struct vrank *r)
{
    struct vb_ports_used use;
    char note[192];
    cb_status st = vb_choose_port(cfg, list, ndev, &use, note, sizeof note);
    r->stripe = use.stripe;
    for (int k = 0; k < use.n && !st; k++) {
        st = open_device(cfg, list[use.dev[k]], use.port[k], k, note, &r->dev[k]);
        r->ndev += st == CB_OK;
    }
    return st;
}

static cb_status verbs_init(const struct cb_transport_config *cfg, void **tctx)
{
    *tctx = NULL;
    struct cb_transport_config c = *cfg;
    cb_status st = check_config(&c);
    if (st)
        return st;
    apply_defaults(&c);
    int ndev = 0;
    struct ibv_device **list = ibv_get_device_list(&ndev);
    struct vrank *r = NULL;
    if (!list || ndev == 0) {
        cb_log_error("verbs: no RDMA device found (ibv_get_device_list is empty): is the NIC driver loaded? "
                     "use --transport tcp");
        st = CB_EDEVICE;
        goto undo_list;
    }
    r = calloc(1, sizeof *r);
    if (!r) {
        cb_log_error("verbs: out of memory for the transport context");
        st = CB_ENOMEM;
        goto undo_list;
    }
    st = open_devices(&c, list, ndev, r);
    if (st) {
        verbs_finalize(r);
        goto undo_list;
    }
    *tctx = r;
undo_list:
    if (list)
        ibv_free_device_list(list);
    return st;
}

/* Both ends register a FIFO of nslots slots and the CTS entries; an end
 * with shared slots only the entries (its slots are the pool's). */
static size_t verbs_geometry_bytes(const struct cb_transport_config *cfg, enum cb_conn_end end)
{
    int shared = end == CB_END_RECV_SHARED || end == CB_END_SEND_SHARED;
    return shared ? vb_fifo_entries_bytes(cfg->nslots) : vb_conn_reg_bytes(cfg);
}

/* A reservation is one chunk of exactly that many slots (verbs_pool.c). */
static size_t verbs_pool_geometry_bytes(const struct cb_transport_config *cfg, int slots)
{
    return vb_page_round((size_t)slots * cfg->slot_bytes);
}

static size_t verbs_pool_bytes(void *tctx)
{
    const struct vrank *r = tctx;
    size_t bytes = 0;
    for (int k = 0; k < r->ndev; k++)
        bytes += r->dev[k]->pool_bytes;
    return bytes;
}

static cb_status verbs_pool_reserve(void *tctx, int slots)
{
    const struct vrank *r = tctx;
    cb_status st = CB_OK;
    for (int k = 0; k < r->ndev && st == CB_OK; k++)
        st = vb_pool_reserve(r->dev[k], slots);
    return st;
}

static size_t verbs_conn_bytes(void *conn)
{
    return ((const struct vconn *)conn)->reg_bytes;
}

const struct cb_transport_ops cb_transport_verbs = {
    .name = "verbs",
    .usable = vb_active_port_here,
    .init = verbs_init,
    .properties = vr_properties,
    .listen = vr_listen,
    .connect = vr_connect,
    .accept = vb_accept,
    .close_listen = vb_close_listen,
    .reply = vr_reply,
    .take_reply = vb_take_reply,
    .send_slot = vb_send_slot,
    .send_post = vb_send_post,
    .recv_slot = vb_recv_slot,
    .recv_release = vb_recv_release,
    .recv_expect = vb_recv_expect,
    .progress = vr_progress,
    .send_idle = vb_send_idle,
    .alloc_shared = vr_alloc_shared,
    .free_shared = vr_free_shared,
    .recv_offer = vb_recv_offer,
    .send_lend = vb_send_lend,
    .port_events = vr_port_events,
    .caps = {.lends = 1, .takes_offers = 1, .replies = 1},
    .send_bytes = verbs_conn_bytes,
    .recv_bytes = verbs_conn_bytes,
    .geometry_bytes = verbs_geometry_bytes,
    .shared_bytes = verbs_pool_bytes,
    .shared_geometry_bytes = verbs_pool_geometry_bytes,
    .reserve_shared = verbs_pool_reserve,
    .close_send = vb_close_send,
    .close_recv = vb_close_recv,
    .finalize = verbs_finalize,
};
