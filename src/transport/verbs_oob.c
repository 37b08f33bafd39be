/* --ib-connect oob: connection set-up without rdma_cm, as NCCL does it.
 * The receiver creates its QPs when it listens and puts their numbers, its
 * LID, GID (and index), first PSN, MTUs and link layer in the handle; the
 * sender creates its QPs from that, moves them INIT -> RTR -> RTS and
 * answers with its half (QP numbers, LID, GID, PSN, the path MTU it chose,
 * its CTS FIFO address and rkey) in a reply the bootstrap carries back; the
 * receiver then moves its QPs to RTR and RTS. No IP address, no ARP, no
 * listening port, no CM MADs. The fabric's configuration still wins where
 * it can be read: on RoCE the traffic class is the port's default_roce_tos
 * (rdma_cm's configfs, the value rdma_cm would use) and the SL what rdma_cm
 * derives from it (the VLAN egress map, verbs_qos.c); on InfiniBand the SL
 * is 0 (there is no path record without the SA); --tc / --sl override. */
#include "verbs_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* auto on RoCE: oob, as NCCL. It sets up faster (results/measured/verbs-connect.json), passes the
 * two-VM suite as the default and takes the fabric's traffic class and SL as rdma_cm would
 * (default_roce_tos, the VLAN egress map: verbs_qos.c) (docs/verbs.md, "Which mode auto picks") */
#define VB_AUTO_ROCE VB_CONNECT_OOB

void vb_choose_connect_mode(struct vctx *t)
{
    const char *want = t->cfg.ib_connect;
    int ib = t->pattr.link_layer == IBV_LINK_LAYER_INFINIBAND;
    if (!strcmp(want, "cm") || !strcmp(want, "oob")) {
        t->connect_mode = !strcmp(want, "oob") ? VB_CONNECT_OOB : VB_CONNECT_CM;
        snprintf(t->connect_why, sizeof t->connect_why, "--ib-connect %s", want);
    } else {
        t->connect_mode = ib ? VB_CONNECT_OOB : VB_AUTO_ROCE;
        snprintf(t->connect_why, sizeof t->connect_why, "auto: %s", ib ? "InfiniBand" : "RoCE");
    }
}

void vb_oob_choose_tc(struct vctx *t)
{
    char path[256], buf[16];
    t->oob_tc = 0;
    snprintf(t->oob_tc_from, sizeof t->oob_tc_from, "GID default");
    if (t->pattr.link_layer != IBV_LINK_LAYER_ETHERNET)
        return;
    snprintf(path, sizeof path, "/sys/kernel/config/rdma_cm/%s/ports/%d/default_roce_tos", t->dev, t->port);
    FILE *f = fopen(path, "r");
    if (!f)
        return;   /* no configfs directory for this device: rdma_cm would use 0 too */
    char *end;
    long v = fgets(buf, sizeof buf, f) ? strtol(buf, &end, 0) : -1;
    fclose(f);
    if (v >= 0 && v <= 255) {
        t->oob_tc = (int)v;
        snprintf(t->oob_tc_from, sizeof t->oob_tc_from, "default_roce_tos");
    }
}

void vb_setup_mark(struct vctx *t)
{
    t->setup_last_ns = cb_now_ns();
}

static const char *state_name(enum ibv_qp_state s)
{
    return s == IBV_QPS_INIT ? "INIT" : s == IBV_QPS_RTR ? "RTR" : "RTS";
}

/* The address vector of the far end: LID on InfiniBand, GRH on RoCE. */
static struct ibv_ah_attr remote_ah(const struct vctx *t, const struct vb_qps *r)
{
    struct ibv_ah_attr ah = {
        .dlid = r->lid,
        .sl = (uint8_t)(t->cfg.service_level >= 0 ? t->cfg.service_level : t->oob_sl),
        .port_num = (uint8_t)t->port,
    };
    if (t->pattr.link_layer == IBV_LINK_LAYER_ETHERNET) {
        ah.is_global = 1;
        memcpy(ah.grh.dgid.raw, r->gid, sizeof ah.grh.dgid.raw);
        ah.grh.sgid_index = (uint8_t)t->gid_index;
        ah.grh.hop_limit = 255;
        ah.grh.traffic_class = (uint8_t)(t->cfg.traffic_class >= 0 ? t->cfg.traffic_class : t->oob_tc);
    }
    return ah;
}

static cb_status oob_modify(struct vconn *c, struct vqp *q, enum ibv_qp_state state, const struct vb_qps *r)
{
    struct vctx *t = c->t;
    struct ibv_qp_attr a;
    int mask = IBV_QP_STATE;
    memset(&a, 0, sizeof a);
    a.qp_state = state;
    if (state == IBV_QPS_INIT) {
        a.port_num = (uint8_t)t->port;
        a.qp_access_flags = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE;
        mask |= IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS;
    } else if (state == IBV_QPS_RTR) {
        a.path_mtu = c->mtu;
        a.dest_qp_num = r->qpn[q->idx];
        a.rq_psn = r->psn;
        a.max_dest_rd_atomic = 1;
        a.min_rnr_timer = 12;
        a.ah_attr = remote_ah(t, r);
        mask |= IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
                IBV_QP_MIN_RNR_TIMER;
    } else {
        a.timeout = (uint8_t)t->cfg.ib_timeout;
        a.retry_cnt = (uint8_t)t->cfg.ib_retry_cnt;
        a.rnr_retry = 7;
        a.sq_psn = t->psn;
        a.max_rd_atomic = 1;
        mask |= IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC;
    }
    if (ibv_modify_qp(q->qp, &a, mask)) {
        int err = errno;
        cb_log_error("verbs: --ib-connect oob: moving QP 0x%x of the connection %s rank %d to %s failed: %s "
                     "(errno %d); this end %s:%s:%d, the other %s:%s QP 0x%x (path MTU %d, GID index %d)",
                     q->qp->qp_num, vb_dir_word(c), c->peer.rank, state_name(state), strerror(err), err,
                     t->cfg.host, t->dev, t->port, c->peer.host, r ? r->dev : "?", r ? r->qpn[q->idx] : 0,
                     vb_mtu_bytes(c->mtu), t->gid_index);
        return CB_EDEVICE;
    }
    if (state == IBV_QPS_RTR) {
        q->sl_asked = a.ah_attr.sl;
        vb_qp_record_path(q);
    }
    return CB_OK;
}

/* Every QP of `c` to RTR then RTS, facing the far end's QPs `r`. */
static cb_status oob_ready(struct vconn *c, const struct vb_qps *r)
{
    for (int i = 0; i < c->nq; i++) {
        cb_status st = oob_modify(c, &c->q[i], IBV_QPS_RTR, r);
        if (!st)
            st = oob_modify(c, &c->q[i], IBV_QPS_RTS, r);
        if (st)
            return st;
    }
    c->nestablished = c->nq;
    return CB_OK;
}

/* Every QP of `c` created and in INIT (receive work requests posted on a receiver). */
static cb_status oob_qps_init(struct vconn *c)
{
    for (int i = 0; i < c->nq; i++) {
        struct vqp *q = &c->q[i];
        cb_status st = vb_qp_create(c, q);
        if (!st)
            st = oob_modify(c, q, IBV_QPS_INIT, NULL);
        if (!st && !c->is_send)
            st = vb_post_recvs(c, q, c->rq_depth);
        if (st)
            return st;
    }
    return CB_OK;
}

/* What the far end needs of c's QPs (after oob_qps_init). */
static void local_qps(const struct vconn *c, struct vb_qps *q)
{
    const struct vctx *t = c->t;
    q->nqps = c->nq;
    q->lid = t->pattr.lid;
    memcpy(q->gid, t->gid.raw, sizeof q->gid);
    q->gid_index = t->gid_index;
    q->psn = t->psn;
    for (int i = 0; i < c->nq; i++)
        q->qpn[i] = c->q[i].qp->qp_num;
}

cb_status vb_oob_listen(struct vlisten *l, struct vb_hinfo *h)
{
    struct vctx *t = l->t;
    struct vconn *c = l->rc;
    cb_status st = oob_qps_init(c);
    if (st)
        return st;
    h->family = t->addr.ss_family ? t->addr.ss_family : AF_INET;   /* no address is used */
    local_qps(c, &h->qps);
    return CB_OK;
}

static cb_status mode_mismatch(const struct vctx *t, int peer_rank, const char *peer_host, int peer_mode)
{
    cb_log_error("verbs: rank %d (%s) connects with --ib-connect %s (%s) and rank %d (%s) with %s: give every "
                 "rank the same --ib-connect", t->cfg.rank, t->cfg.host, vb_connect_mode_str(t->connect_mode),
                 t->connect_why, peer_rank, peer_host, vb_connect_mode_str(peer_mode));
    return CB_EUSAGE;
}

/* Sender, oob: a connection to the listener of `h`, its QPs RTS; its half in `r`. */
static cb_status oob_connect(struct vctx *t, const struct cb_peer *peer, const struct vb_hinfo *h,
                             struct vb_rinfo *r)
{
    enum ibv_mtu mtu;
    struct vconn *c;
    cb_status st = vb_check_same_shape(t, peer, h);
    if (!st)
        st = vb_agree_with_listener(t, peer, h, &mtu);
    if (!st)
        st = vb_conn_create(t, 1, peer, &c);
    if (st)
        return st;
    c->nonce = h->nonce;
    c->mtu = mtu;
    st = oob_qps_init(c);
    if (!st)
        st = oob_ready(c, &h->qps);
    if (st) {
        vb_conn_destroy(c);
        return st;
    }
    local_qps(c, &r->qps);
    r->path_mtu = mtu;
    r->link_layer = t->pattr.link_layer;
    r->cts_addr = (uintptr_t)c->cts;
    r->cts_rkey = c->cts_mr->rkey;
    return CB_OK;
}

cb_status vb_reply(void *tctx, const struct cb_peer *peer, const void *handle, void *reply)
{
    struct vctx *t = tctx;
    struct vb_hinfo h;
    struct vb_rinfo r;
    memset(&r, 0, sizeof r);
    if (!t->setup_first_ns)
        t->setup_first_ns = cb_now_ns();
    r.qps.connect_mode = t->connect_mode;
    r.rank = t->cfg.rank;
    memcpy(r.token, t->cfg.token, sizeof r.token);
    snprintf(r.qps.dev, sizeof r.qps.dev, "%s", t->dev);
    cb_status st = vb_handle_decode(handle, peer, &h);
    if (!st) {
        r.nonce = h.nonce;
        if (h.qps.connect_mode != t->connect_mode)
            st = mode_mismatch(t, peer->rank, peer->host, h.qps.connect_mode);
        else if (t->connect_mode == VB_CONNECT_OOB)
            st = oob_connect(t, peer, &h, &r);
    }
    r.ok = st == CB_OK;
    vb_reply_encode(&r, reply);
    return st;
}

/* The reply belongs to this listen and fits this port. */
static cb_status check_reply(const struct vlisten *l, const struct vb_rinfo *r)
{
    const struct vctx *t = l->t;
    const struct vconn *c = l->rc;
    if (r->rank != l->peer.rank || r->nonce != c->nonce || memcmp(r->token, t->cfg.token, CB_TOKEN_BYTES)) {
        cb_log_error("verbs: %s:%d: the reply of rank %d (%s) is for another listen or job (rank %d, nonce, "
                     "token): stale handle or another job", t->dev, t->port, l->peer.rank, l->peer.host, r->rank);
        return CB_EPEER;
    }
    if (r->qps.nqps != c->nq) {
        cb_log_error("verbs: rank %d (%s) connects with %d QPs, this rank expects %d: give every rank the same "
                     "--qps", l->peer.rank, l->peer.host, r->qps.nqps, c->nq);
        return CB_EUSAGE;
    }
    return vb_check_sender_path(t, &l->peer, r->link_layer, r->path_mtu);
}

cb_status vb_take_reply(void *lcomm, const void *reply)
{
    struct vlisten *l = lcomm;
    struct vctx *t = l->t;
    struct vconn *c = l->rc;
    struct vb_rinfo r;
    cb_status st = vb_reply_decode(reply, &l->peer, &r);
    if (st)
        goto fail;
    if (r.qps.connect_mode != t->connect_mode) {
        st = mode_mismatch(t, l->peer.rank, l->peer.host, r.qps.connect_mode);
        goto fail;
    }
    if (!r.ok) {
        cb_log_error("verbs: rank %d (%s) could not set up its end of the connection to rank %d (its log says "
                     "why)", l->peer.rank, l->peer.host, t->cfg.rank);
        st = CB_EPEER;
        goto fail;
    }
    if (t->connect_mode == VB_CONNECT_CM)
        return CB_OK;
    st = check_reply(l, &r);
    if (st)
        goto fail;
    c->mtu = r.path_mtu;
    c->remote_cts_addr = r.cts_addr;
    c->remote_cts_rkey = r.cts_rkey;
    c->have_remote = 1;
    st = oob_ready(c, &r.qps);
    if (st)
        goto fail;
    return CB_OK;

fail:
    vb_conn_fail(c, st);
    return st;
}
