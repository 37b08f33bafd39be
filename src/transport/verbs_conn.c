/* The verbs transport: one connection's resources. Registered memory (the
 * FIFO slots and the CTS FIFO) and the CQ exist before any QP; QPs are ours,
 * created when rdma_cm has resolved the route (sender) or a request arrived
 * (receiver), and moved INIT -> RTR -> RTS with rdma_cm's attributes plus
 * ours (path MTU, timeouts, retries, traffic class, service level). */
#include "verbs_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void conn_unlink(struct vconn *c)
{
    for (struct vconn **p = &c->t->conns; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            return;
        }
}

/* The memory of a connection and the pool slots it was granted. */
static void free_arrays(struct vconn *c)
{
    for (int i = 0; c->granted && i < c->nslots; i++)
        if (c->granted[i])
            vb_pool_give(c->t, c->granted[i]);
    free(c->granted);
    free(c->cts);
    free(c->fifo);
    free(c->sizes);
    free(c->lent);
    free(c->lent_lkey);
    free(c->offers);
    free(c->ndirect);
    free(c->wqe_end);
    free(c->q);
    free(c);
}

/* Release every verbs resource of a connection, in reverse order of creation. */
void vb_conn_destroy(struct vconn *c)
{
    struct vctx *t = c->t;
    conn_unlink(c);
    vb_conn_forget_work(c);
    t->nunready -= !c->ready;
    for (int i = 0; i < c->nq; i++) {
        struct vqp *q = &c->q[i];
        if (q->id && q->state == QS_ESTABLISHED)
            rdma_disconnect(q->id);
        if (q->qp) {
            struct ibv_qp_attr a = {.qp_state = IBV_QPS_ERR};
            ibv_modify_qp(q->qp, &a, IBV_QP_STATE);
            ibv_destroy_qp(q->qp);
        }
        if (q->id)
            rdma_destroy_id(q->id);
    }
    if (c->cq)
        ibv_destroy_cq(c->cq);
    if (c->cts_mr)
        ibv_dereg_mr(c->cts_mr);
    if (c->fifo_mr)
        ibv_dereg_mr(c->fifo_mr);
    t->registered -= c->reg_bytes;
    free_arrays(c);
}

/* Bytes a connection registers of its own: its FIFO (none with shared
 * slots: they are the pool's) and its clear-to-send entries. */
static size_t own_fifo_bytes(const struct vctx *t, int pooled)
{
    return pooled ? 0 : vb_page_round((size_t)t->cfg.nslots * t->cfg.slot_bytes);
}

static cb_status alloc_arrays(struct vconn *c, size_t fifo_bytes, size_t cts_bytes)
{
    c->q = calloc((size_t)c->nq, sizeof *c->q);
    c->sizes = calloc((size_t)c->nslots, sizeof *c->sizes);
    c->lent = calloc((size_t)c->nslots, sizeof *c->lent);
    c->lent_lkey = calloc((size_t)c->nslots, sizeof *c->lent_lkey);
    c->offers = calloc((size_t)c->nslots, sizeof *c->offers);
    c->ndirect = calloc((size_t)c->nslots, sizeof *c->ndirect);
    c->granted = calloc((size_t)c->nslots, sizeof *c->granted);
    c->wqe_end = calloc((size_t)c->nq * (size_t)c->nslots, sizeof *c->wqe_end);
    if (!c->q || !c->sizes || !c->lent || !c->lent_lkey || !c->offers || !c->ndirect || !c->granted ||
        !c->wqe_end || (fifo_bytes && posix_memalign((void **)&c->fifo, 4096, fifo_bytes)) ||
        posix_memalign((void **)&c->cts, 4096, cts_bytes)) {
        cb_log_error("verbs: out of memory for the %zu-byte FIFO of the connection %s rank %d (%s)", fifo_bytes,
                     c->is_send ? "to" : "from", c->peer.rank, c->peer.host);
        return CB_ENOMEM;
    }
    if (fifo_bytes)
        memset(c->fifo, 0, fifo_bytes);
    memset(c->cts, 0, cts_bytes);
    return CB_OK;
}

/* Everything a connection needs before any QP exists: registered memory, CQ. */
cb_status vb_conn_create(struct vctx *t, int is_send, const struct cb_peer *peer, struct vconn **out)
{
    int pooled = peer->shared_slots != 0;
    size_t fifo_bytes = own_fifo_bytes(t, pooled), cts_bytes = vb_fifo_entries_bytes(t->cfg.nslots);
    cb_status st = vb_check_memlock(t, fifo_bytes + cts_bytes, is_send ? "a send connection" : "a receive connection",
                                    peer);
    if (st)
        return st;
    struct vconn *c = calloc(1, sizeof *c);
    if (!c) {
        cb_log_error("verbs: out of memory for a connection with rank %d (%s)", peer->rank, peer->host);
        return CB_ENOMEM;
    }
    c->t = t;
    c->is_send = is_send;
    c->pooled = pooled;
    c->peer = *peer;
    c->nq = t->cfg.qps_per_conn;
    c->split = cb_split_data(&t->cfg);
    c->mtu = t->mtu;   /* until agreed with the peer */
    c->nslots = t->cfg.nslots;
    c->slot_bytes = t->cfg.slot_bytes;
    c->seq_imm = c->slot_bytes < ((size_t)1 << 24);
    c->direct_imm = c->slot_bytes < (size_t)IMM_DIRECT;
    c->sig_every = c->nslots / 2 > 1 ? c->nslots / 2 : 1;
    c->ar = is_send && vb_ar(t);
    c->ar_threshold = t->cfg.ib_ar_threshold;
    c->sq_depth = is_send ? (c->ar ? 2 : 1) * c->nslots + 2 : 2 * c->nslots + 4;
    c->rq_depth = is_send ? 1 : c->nslots + 2;
    c->t_start = cb_now_ms();
    st = alloc_arrays(c, fifo_bytes, cts_bytes);
    if (st)
        goto undo_alloc;
    for (int i = 0; i < c->nq; i++) {
        c->q[i].own = OWN_QP;
        c->q[i].c = c;
        c->q[i].idx = i;
        c->q[i].tc = c->q[i].sl = c->q[i].mtu = c->q[i].sl_asked = -1;
    }
    int acc = IBV_ACCESS_LOCAL_WRITE | (is_send ? 0 : IBV_ACCESS_REMOTE_WRITE) | vb_data_access(t);
    if (fifo_bytes && !(c->fifo_mr = ibv_reg_mr(t->pd, c->fifo, fifo_bytes, acc)))
        goto reg_failed;
    c->cts_mr = ibv_reg_mr(t->pd, c->cts, cts_bytes,
                           IBV_ACCESS_LOCAL_WRITE | (is_send ? IBV_ACCESS_REMOTE_WRITE : 0));
    if (!c->cts_mr)
        goto reg_failed;
    c->reg_bytes = fifo_bytes + cts_bytes;
    t->registered += c->reg_bytes;
    int cqe = c->nq * (c->sq_depth + c->rq_depth) + 8;
    st = vb_check_queue_limits(t);
    if (st)
        goto undo_reg;
    c->cq = ibv_create_cq(t->ctx, cqe, NULL, NULL, 0);
    if (!c->cq) {
        cb_log_error("verbs: %s:%d: ibv_create_cq(%d) for the connection %s rank %d (%s) failed: %s", t->dev,
                     t->port, cqe, is_send ? "to" : "from", peer->rank, peer->host, strerror(errno));
        st = CB_EDEVICE;
        goto undo_reg;
    }
    c->next = t->conns;
    t->conns = c;
    t->nunready++;
    *out = c;
    return CB_OK;

reg_failed:
    cb_log_error("verbs: %s:%d: ibv_reg_mr of %zu bytes for the connection %s rank %d (%s) failed: %s%s", t->dev,
                 t->port, c->fifo_mr ? cts_bytes : fifo_bytes, is_send ? "to" : "from", peer->rank, peer->host,
                 strerror(errno),
                 errno == ENOMEM || errno == EPERM ? " (memlock limit? run `ulimit -l unlimited`)" : "");
    st = CB_ENOMEM;
undo_reg:
    if (c->cts_mr)
        ibv_dereg_mr(c->cts_mr);
    if (c->fifo_mr)
        ibv_dereg_mr(c->fifo_mr);
    t->registered -= c->reg_bytes;
undo_alloc:
    free_arrays(c);
    return st;
}

cb_status vb_qp_create(struct vconn *c, struct vqp *q)
{
    struct vctx *t = c->t;
    struct ibv_qp_init_attr ia = {
        .send_cq = c->cq,
        .recv_cq = c->cq,
        .qp_type = IBV_QPT_RC,
        .sq_sig_all = 0,
        .cap = {.max_send_wr = (uint32_t)c->sq_depth, .max_recv_wr = (uint32_t)c->rq_depth,
                .max_send_sge = 1, .max_recv_sge = 1,
                .max_inline_data = c->is_send ? 0 : (uint32_t)sizeof(struct cts_entry)},
    };
    q->qp = ibv_create_qp(t->pd, &ia);
    if (!q->qp && !c->is_send) {   /* no inline support: CTS from registered memory */
        ia.cap.max_inline_data = 0;
        q->qp = ibv_create_qp(t->pd, &ia);
    }
    if (!q->qp) {
        cb_log_error("verbs: %s:%d: ibv_create_qp (send %d, recv %d WRs) for the connection %s rank %d (%s) "
                     "failed: %s", t->dev, t->port, c->sq_depth, c->rq_depth, vb_dir_word(c), c->peer.rank,
                     c->peer.host, strerror(errno));
        return CB_EDEVICE;
    }
    if (!c->is_send && q->idx == 0)
        c->inline_cts = ia.cap.max_inline_data >= sizeof(struct cts_entry);
    return CB_OK;
}

/* What the QP really has after RTR, for the header: traffic class, SL, MTU. */
void vb_qp_record_path(struct vqp *q)
{
    struct ibv_qp_attr a;
    struct ibv_qp_init_attr ia;
    memset(&a, 0, sizeof a);
    if (ibv_query_qp(q->qp, &a, IBV_QP_AV | IBV_QP_PATH_MTU, &ia))
        return;   /* stays -1: shown as unknown */
    q->tc = a.ah_attr.is_global ? a.ah_attr.grh.traffic_class : -2;   /* -2: no GRH, no class */
    q->sl = a.ah_attr.sl;
    q->mtu = vb_mtu_bytes(a.path_mtu);
}

/* Move our QP to `state` with rdma_cm's attributes plus ours. */
cb_status vb_qp_modify(struct vconn *c, struct vqp *q, enum ibv_qp_state state)
{
    struct vctx *t = c->t;
    struct ibv_qp_attr a;
    int mask = 0;
    memset(&a, 0, sizeof a);
    a.qp_state = state;
    if (rdma_init_qp_attr(q->id, &a, &mask)) {
        cb_log_error("verbs: %s:%d: rdma_init_qp_attr(%s) for the connection %s rank %d (%s) failed: %s", t->dev,
                     t->port, state == IBV_QPS_INIT ? "INIT" : state == IBV_QPS_RTR ? "RTR" : "RTS", vb_dir_word(c),
                     c->peer.rank, c->peer.host, strerror(errno));
        return CB_EDEVICE;
    }
    if (state == IBV_QPS_INIT) {
        a.qp_access_flags = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE;
        mask |= IBV_QP_ACCESS_FLAGS;
    } else if (state == IBV_QPS_RTR) {
        /* both ends agreed on c->mtu; rdma_cm's may be smaller (an InfiniBand
         * path record through a switch of a smaller MTU): the smaller wins */
        if (!(mask & IBV_QP_PATH_MTU) || a.path_mtu > c->mtu)
            a.path_mtu = c->mtu;
        a.min_rnr_timer = 12;
        mask |= IBV_QP_PATH_MTU | IBV_QP_MIN_RNR_TIMER;
        /* the fabric's configuration wins: rdma_cm derived SL and traffic class
         * from the path record (InfiniBand) or default_roce_tos and the VLAN
         * egress map (RoCE); only --sl / --tc override them */
        if (t->cfg.service_level >= 0)
            a.ah_attr.sl = (uint8_t)t->cfg.service_level;
        if (a.ah_attr.is_global) {
            if (t->cfg.traffic_class >= 0)
                a.ah_attr.grh.traffic_class = (uint8_t)t->cfg.traffic_class;
            if (t->pattr.link_layer == IBV_LINK_LAYER_ETHERNET) {
                a.ah_attr.grh.hop_limit = 255;
                a.ah_attr.grh.sgid_index = (uint8_t)t->gid_index;
            }
        }
    } else {
        a.timeout = (uint8_t)t->cfg.ib_timeout;
        a.retry_cnt = (uint8_t)t->cfg.ib_retry_cnt;
        a.rnr_retry = 7;
        mask |= IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY;
    }
    if (ibv_modify_qp(q->qp, &a, mask)) {
        cb_log_error("verbs: %s:%d: moving QP 0x%x of the connection %s rank %d (%s) to %s failed: %s "
                     "(path MTU %d, GID index %d)", t->dev, t->port, q->qp->qp_num, vb_dir_word(c), c->peer.rank,
                     c->peer.host, state == IBV_QPS_INIT ? "INIT" : state == IBV_QPS_RTR ? "RTR" : "RTS",
                     strerror(errno), vb_mtu_bytes(c->mtu), t->gid_index);
        return CB_EDEVICE;
    }
    if (state == IBV_QPS_RTR) {
        q->sl_asked = a.ah_attr.sl;
        vb_qp_record_path(q);
    }
    return CB_OK;
}

cb_status vb_post_recvs(struct vconn *c, struct vqp *q, int n)
{
    for (int i = 0; i < n; i++) {
        struct ibv_recv_wr wr = {.wr_id = WR_ID(WR_RECV, 0), .num_sge = 0}, *bad;
        if (ibv_post_recv(q->qp, &wr, &bad)) {
            cb_log_error("verbs: %s:%d: ibv_post_recv on QP 0x%x of the connection from rank %d (%s) failed: %s",
                         c->t->dev, c->t->port, q->qp->qp_num, c->peer.rank, c->peer.host, strerror(errno));
            return CB_EPEER;
        }
    }
    return CB_OK;
}
