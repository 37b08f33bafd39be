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
 * One helper thread per context reads the device's asynchronous events and
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

static cb_status verbs_init(const struct cb_transport_config *cfg, void **tctx)
{
    cb_status st = CB_OK;
    *tctx = NULL;
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
    int ndev = 0;
    struct ibv_device **list = ibv_get_device_list(&ndev);
    if (!list || ndev == 0) {
        cb_log_error("verbs: no RDMA device found (ibv_get_device_list is empty): is the NIC driver loaded? "
                     "use --transport tcp");
        st = CB_EDEVICE;
        goto undo_list;
    }
    struct vctx *t = calloc(1, sizeof *t);
    if (!t) {
        st = CB_ENOMEM;
        cb_log_error("verbs: out of memory for the transport context");
        goto undo_list;
    }
    t->cfg = *cfg;
    if (t->cfg.qps_per_conn < 1)
        t->cfg.qps_per_conn = 1;
    if (t->cfg.ib_timeout <= 0)
        t->cfg.ib_timeout = 20;
    if (t->cfg.ib_retry_cnt < 0)
        t->cfg.ib_retry_cnt = 7;
    if (t->cfg.ib_ar_threshold == 0)
        t->cfg.ib_ar_threshold = 8192;   /* NCCL_IB_AR_THRESHOLD's default */
    if (t->cfg.timeout_ms <= 0)
        t->cfg.timeout_ms = 30000;
    t->wake_fd = -1;
    int di = 0;
    st = vb_choose_port(&t->cfg, list, ndev, &di, &t->port, t->port_note, sizeof t->port_note);
    if (st)
        goto undo_ctx;
    snprintf(t->dev, sizeof t->dev, "%s", ibv_get_device_name(list[di]));
    t->ctx = ibv_open_device(list[di]);
    if (!t->ctx) {
        cb_log_error("verbs: cannot open RDMA device %s: %s (permissions on /dev/infiniband?)", t->dev,
                     strerror(errno));
        st = CB_EDEVICE;
        goto undo_ctx;
    }
    if (ibv_query_device(t->ctx, &t->dattr) || ibv_query_port(t->ctx, (uint8_t)t->port, &t->pattr)) {
        cb_log_error("verbs: cannot query RDMA device %s port %d: %s", t->dev, t->port, strerror(errno));
        st = CB_EDEVICE;
        goto undo_open;
    }
    if (t->pattr.state != IBV_PORT_ACTIVE) {
        cb_log_error("verbs: %s port %d is %s, not ACTIVE: check the link (ibstat / rdma link show), the subnet "
                     "manager on InfiniBand, or choose another port with --hca",
                     t->dev, t->port, ibv_port_state_str(t->pattr.state));
        st = CB_EDEVICE;
        goto undo_open;
    }
    vb_port_rate(t);
    st = vb_choose_gid(t);
    if (st)
        goto undo_open;
    st = vb_choose_mtu(t);
    if (st)
        goto undo_open;
    vb_choose_connect_mode(t);
    if (t->connect_mode == VB_CONNECT_CM)   /* oob needs no IP address (no IPoIB on InfiniBand) */
        st = vb_choose_cm_addr(t);
    else
        vb_oob_choose_tc(t);
    if (st)
        goto undo_open;
    st = vb_check_queue_limits(t);
    if (st)
        goto undo_open;
    struct rlimit rl;
    t->memlock_limit = SIZE_MAX;
    if (!getrlimit(RLIMIT_MEMLOCK, &rl) && rl.rlim_cur != RLIM_INFINITY && !vb_have_cap_ipc_lock())
        t->memlock_limit = (size_t)rl.rlim_cur;
    /* one send and one receive connection at least, checked before any timing */
    st = vb_check_memlock(t, 2 * vb_conn_reg_bytes(&t->cfg), "one send and one receive connection", NULL);
    if (st)
        goto undo_open;
    t->pd = ibv_alloc_pd(t->ctx);
    if (!t->pd) {
        cb_log_error("verbs: ibv_alloc_pd on %s failed: %s", t->dev, strerror(errno));
        st = CB_EDEVICE;
        goto undo_open;
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
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    t->nonce_seed = (uint32_t)ts.tv_nsec ^ ((uint32_t)getpid() << 12) ^ (uint32_t)cfg->rank * 2654435761u;
    t->psn = (t->nonce_seed * 2654435761u) & 0xffffff;   /* 24 bits; a stale packet of an earlier job misses */
    ibv_free_device_list(list);
    *tctx = t;
    return CB_OK;

undo_channel:
    if (t->ch)
        rdma_destroy_event_channel(t->ch);
undo_pd:
    ibv_dealloc_pd(t->pd);
undo_open:
    ibv_close_device(t->ctx);
undo_ctx:
    free(t);
undo_list:
    if (list)
        ibv_free_device_list(list);
    return st;
}

static void verbs_finalize(void *tctx)
{
    struct vctx *t = tctx;
    if (!t)
        return;
    vb_async_stop(t);
    while (t->listens)
        vb_close_listen(t->listens);
    while (t->conns)
        vb_conn_destroy(t->conns);
    while (t->windows)   /* buffers nobody freed */
        vb_free_shared(t, t->windows->base);
    close(t->wake_fd);
    if (t->ch)
        rdma_destroy_event_channel(t->ch);
    ibv_dealloc_pd(t->pd);
    ibv_close_device(t->ctx);
    free(t);
}

/* Both ends register a FIFO of nslots slots and the CTS entries. */
static size_t verbs_geometry_bytes(const struct cb_transport_config *cfg, int is_send)
{
    (void)is_send;
    return vb_conn_reg_bytes(cfg);
}

static size_t verbs_conn_bytes(void *conn)
{
    return ((const struct vconn *)conn)->reg_bytes;
}

const struct cb_transport_ops cb_transport_verbs = {
    .name = "verbs",
    .init = verbs_init,
    .properties = vb_properties,
    .listen = vb_listen,
    .connect = vb_connect,
    .accept = vb_accept,
    .close_listen = vb_close_listen,
    .reply = vb_reply,
    .take_reply = vb_take_reply,
    .send_slot = vb_send_slot,
    .send_post = vb_send_post,
    .recv_slot = vb_recv_slot,
    .recv_release = vb_recv_release,
    .progress = vb_progress,
    .send_idle = vb_send_idle,
    .alloc_shared = vb_alloc_shared,
    .free_shared = vb_free_shared,
    .recv_offer = vb_recv_offer,
    .send_lend = vb_send_lend,
    .port_events = vb_port_events,
    .caps = {.lends = 1, .takes_offers = 1, .replies = 1},
    .send_bytes = verbs_conn_bytes,
    .recv_bytes = verbs_conn_bytes,
    .geometry_bytes = verbs_geometry_bytes,
    .close_send = vb_close_send,
    .close_recv = vb_close_recv,
    .finalize = verbs_finalize,
};
