/* The verbs transport's connection set-up over rdma_cm: listen (bind to
 * the chosen GID's address, ephemeral port, the handle), connect (one
 * rdma_cm connection per QP; the request's private data carries the CTS
 * FIFO address and rkey, the listen nonce and the job token), accept, and
 * the pump of the non-blocking CM event channel. */
#include "verbs_internal.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void log_cm_failure(struct vconn *c, const struct rdma_cm_event *ev)
{
    struct vctx *t = c->t;
    switch (ev->event) {
    case RDMA_CM_EVENT_ADDR_ERROR:
    case RDMA_CM_EVENT_ROUTE_ERROR:
        cb_log_error("verbs: %s:%d: rdma_cm cannot resolve the %s from %s to rank %d (%s) (status %d: %s): "
                     "the peer's address is not reachable over RDMA from this port; check the IP "
                     "configuration of both ports, routes, and --gid-subnet/--hca",
                     t->dev, t->port, ev->event == RDMA_CM_EVENT_ADDR_ERROR ? "address" : "route", t->addr_str,
                     c->peer.rank, c->peer.host, ev->status, strerror(ev->status < 0 ? -ev->status : ev->status));
        vb_conn_fail(c, CB_EDEVICE);
        break;
    case RDMA_CM_EVENT_REJECTED:
        cb_log_error("verbs: %s:%d: rank %d (%s) rejected the connection (status %d): it is not listening on "
                     "that port any more, or another job answered (token or handle mismatch)",
                     t->dev, t->port, c->peer.rank, c->peer.host, ev->status);
        vb_conn_fail(c, CB_EPEER);
        break;
    case RDMA_CM_EVENT_UNREACHABLE:
        cb_log_error("verbs: %s:%d: rank %d (%s) is unreachable through rdma_cm (status %d): no answer to the "
                     "connection request; check the link between the ports and the peer's log",
                     t->dev, t->port, c->peer.rank, c->peer.host, ev->status);
        vb_conn_fail(c, CB_EPEER);
        break;
    case RDMA_CM_EVENT_CONNECT_ERROR:
        cb_log_error("verbs: %s:%d: connecting %s rank %d (%s) failed (status %d)", t->dev, t->port, vb_dir_word(c),
                     c->peer.rank, c->peer.host, ev->status);
        vb_conn_fail(c, CB_EPEER);
        break;
    case RDMA_CM_EVENT_DEVICE_REMOVAL:
        cb_log_error("verbs: %s:%d: the RDMA device was removed under the connection %s rank %d (%s)", t->dev,
                     t->port, vb_dir_word(c), c->peer.rank, c->peer.host);
        vb_conn_fail(c, CB_EDEVICE);
        break;
    default:
        break;
    }
}

/* The kernel's rdma_cm reports UNREACHABLE on a connection that is
 * already established when the neighbour entry of the peer changes (after
 * a link flap, ARP resolves it again): the QPs are ours and keep retrying,
 * so it is news, not an error; a real loss shows as a completion error. */
static void established_unreachable(struct vconn *c, const struct rdma_cm_event *ev)
{
    cb_log_warn("verbs: %s:%d: rdma_cm says rank %d (%s) is unreachable (status %d) on an established connection "
                "(its neighbour entry changed, e.g. after a link flap); the QPs keep retrying", c->t->dev,
                c->t->port, c->peer.rank, c->peer.host, ev->status);
}

/* Both sides of a CM connection ask for the same RC attributes. */
static struct rdma_conn_param conn_param(const struct vctx *t, const struct vqp *q, const void *data, size_t len)
{
    return (struct rdma_conn_param){
        .private_data = data,
        .private_data_len = (uint8_t)len,
        .responder_resources = 1,
        .initiator_depth = 1,
        .flow_control = 1,
        .retry_count = (uint8_t)t->cfg.ib_retry_cnt,
        .rnr_retry_count = 7,   /* 7 = retry forever on receiver-not-ready */
        .qp_num = q->qp->qp_num,
    };
}

static void on_route_resolved(struct vconn *c, struct vqp *q)
{
    struct vctx *t = c->t;
    cb_status st = vb_qp_create(c, q);
    if (!st)
        st = vb_qp_modify(c, q, IBV_QPS_INIT);
    if (st) {
        vb_conn_fail(c, st);
        return;
    }
    struct vreq req = {
        .magic = htobe32(VREQ_MAGIC),
        .nonce = htobe32(c->nonce),
        .rank = (int32_t)htobe32((uint32_t)t->cfg.rank),
        .qp_idx = htobe16((uint16_t)q->idx),
        .nqps = htobe16((uint16_t)c->nq),
        .cts_addr = htobe64((uintptr_t)c->cts),
        .cts_rkey = htobe32(c->cts_mr->rkey),
        .nslots = htobe32((uint32_t)c->nslots),
        .path_mtu = (uint8_t)c->mtu,
        .link_layer = (uint8_t)t->pattr.link_layer,
        .split_data = (uint8_t)c->split,
    };
    memcpy(req.token, t->cfg.token, CB_TOKEN_BYTES);
    struct rdma_conn_param p = conn_param(t, q, &req, sizeof req);
    if (rdma_connect(q->id, &p)) {
        cb_log_error("verbs: %s:%d: rdma_connect to rank %d (%s) failed: %s", t->dev, t->port, c->peer.rank,
                     c->peer.host, strerror(errno));
        vb_conn_fail(c, CB_EPEER);
        return;
    }
    q->state = QS_CONNECTING;
}

static void on_connect_response(struct vconn *c, struct vqp *q, const struct rdma_cm_event *ev)
{
    struct vctx *t = c->t;
    const struct vrep *rep = ev->param.conn.private_data;
    if (!rep || ev->param.conn.private_data_len < sizeof *rep || be32toh(rep->magic) != VREP_MAGIC ||
        (int)be32toh((uint32_t)rep->rank) != c->peer.rank) {
        cb_log_error("verbs: %s:%d: the answer to our connection request to rank %d (%s) is not from that "
                     "collbench rank (wrong private data): stale handle or another job on that port",
                     t->dev, t->port, c->peer.rank, c->peer.host);
        rdma_reject(q->id, NULL, 0);
        vb_conn_fail(c, CB_EPEER);
        return;
    }
    cb_status st = vb_qp_modify(c, q, IBV_QPS_RTR);
    if (!st)
        st = vb_qp_modify(c, q, IBV_QPS_RTS);
    if (st) {
        rdma_reject(q->id, NULL, 0);
        vb_conn_fail(c, st);
        return;
    }
    if (rdma_establish(q->id)) {
        cb_log_error("verbs: %s:%d: rdma_establish with rank %d (%s) failed: %s", t->dev, t->port, c->peer.rank,
                     c->peer.host, strerror(errno));
        vb_conn_fail(c, CB_EPEER);
        return;
    }
    q->state = QS_ESTABLISHED;
    c->nestablished++;
}

/* How a rank's messages use its QPs, for the message when two ranks differ. */
static const char *split_words(int split)
{
    return split ? "splits each message over its QPs (--ib-split-data on)"
                 : "sends each message whole on one QP (--ib-split-data off or auto)";
}

/* CB_EUSAGE (logged, naming both ranks) when the two ends use the QPs differently:
 * the receiver would count the wrong number of immediates per message. */
static cb_status check_split(const struct vctx *t, int split, int peer_split, const struct cb_peer *peer)
{
    if (split == peer_split)
        return CB_OK;
    cb_log_error("verbs: rank %d (%s) %s but rank %d (%s) %s: give every rank the same --ib-split-data",
                 peer->rank, peer->host, split_words(peer_split), t->cfg.rank, t->cfg.host, split_words(split));
    return CB_EUSAGE;
}

/* A connection request on a listen id: returns 0 when accepted, -1 to reject. */
static int on_connect_request(struct vlisten *l, struct rdma_cm_event *ev)
{
    struct vctx *t = l->t;
    struct vconn *c = l->rc;
    const struct vreq *req = ev->param.conn.private_data;
    if (!req || ev->param.conn.private_data_len < sizeof *req || be32toh(req->magic) != VREQ_MAGIC) {
        cb_log_warn("verbs: %s:%d: rejecting a connection request that is not from collbench on the port "
                    "listening for rank %d (%s)", t->dev, t->port, l->peer.rank, l->peer.host);
        return -1;
    }
    int rank = (int)be32toh((uint32_t)req->rank);
    int idx = be16toh(req->qp_idx), nq = be16toh(req->nqps);
    if (!c || be32toh(req->nonce) != c->nonce || memcmp(req->token, t->cfg.token, CB_TOKEN_BYTES) ||
        rank != l->peer.rank) {
        cb_log_warn("verbs: %s:%d: rejecting a connection request from rank %d while listening for rank %d (%s): "
                    "stale handle, another job, or a token mismatch", t->dev, t->port, rank, l->peer.rank,
                    l->peer.host);
        return -1;
    }
    if (nq != c->nq || (int)be32toh(req->nslots) != c->nslots || idx >= nq || c->q[idx].id) {
        cb_log_error("verbs: %s:%d: rank %d (%s) connects with %d QPs and %u slots, this rank expects %d QPs "
                     "and %d slots (QP %d%s): give every rank the same --qps and slot options",
                     t->dev, t->port, rank, l->peer.host, nq, be32toh(req->nslots), c->nq, c->nslots, idx,
                     idx < nq && idx < c->nq && c->q[idx].id ? " twice" : "");
        vb_conn_fail(c, CB_EUSAGE);
        return -1;
    }
    cb_status st = check_split(t, c->split, req->split_data, &l->peer);
    if (!st)
        st = vb_check_sender_path(t, &l->peer, req->link_layer, req->path_mtu);
    if (st) {
        vb_conn_fail(c, st);
        return -1;
    }
    c->mtu = (enum ibv_mtu)req->path_mtu;
    uint64_t raddr = be64toh(req->cts_addr);
    uint32_t rkey = be32toh(req->cts_rkey);
    if (c->have_remote && (raddr != c->remote_cts_addr || rkey != c->remote_cts_rkey)) {
        cb_log_error("verbs: %s:%d: the QPs of rank %d (%s) announce different CTS FIFOs", t->dev, t->port, rank,
                     l->peer.host);
        vb_conn_fail(c, CB_EINTERNAL);
        return -1;
    }
    c->remote_cts_addr = raddr;
    c->remote_cts_rkey = rkey;
    c->have_remote = 1;
    struct vqp *q = &c->q[idx];
    q->id = ev->id;
    ev->id->context = q;
    st = vb_qp_create(c, q);
    if (!st)
        st = vb_qp_modify(c, q, IBV_QPS_INIT);
    if (!st)
        st = vb_post_recvs(c, q, c->rq_depth);
    if (!st)
        st = vb_qp_modify(c, q, IBV_QPS_RTR);
    if (!st)
        st = vb_qp_modify(c, q, IBV_QPS_RTS);
    if (!st) {
        struct vrep rep = {.magic = htobe32(VREP_MAGIC), .rank = (int32_t)htobe32((uint32_t)t->cfg.rank),
                           .qp_idx = htobe16((uint16_t)idx)};
        struct rdma_conn_param p = conn_param(t, q, &rep, sizeof rep);
        if (rdma_accept(q->id, &p)) {
            cb_log_error("verbs: %s:%d: rdma_accept of rank %d (%s) failed: %s", t->dev, t->port, rank,
                         l->peer.host, strerror(errno));
            st = CB_EPEER;
        }
    }
    if (st) {
        vb_conn_fail(c, st);
        if (q->qp)
            ibv_destroy_qp(q->qp);
        q->qp = NULL;
        q->id = NULL;   /* rejected and destroyed by the caller */
        return -1;
    }
    q->state = QS_CONNECTING;
    return 0;
}

cb_status vb_cm_pump(struct vctx *t)
{
    if (!t->ch)   /* --ib-connect oob: no rdma_cm */
        return CB_OK;
    for (;;) {
        struct rdma_cm_event *ev;
        if (rdma_get_cm_event(t->ch, &ev)) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return CB_OK;
            cb_log_error("verbs: %s:%d: reading rdma_cm events failed: %s", t->dev, t->port, strerror(errno));
            return CB_ESYS;
        }
        struct rdma_cm_id *reject = NULL;
        if (ev->event == RDMA_CM_EVENT_CONNECT_REQUEST) {
            /* every id's context starts with its owner kind (struct vlisten / struct vqp) */
            void *ctx = ev->listen_id ? ev->listen_id->context : NULL;
            if (!ctx || *(int *)ctx != OWN_LISTEN || on_connect_request(ctx, ev))
                reject = ev->id;
        } else {
            void *ctx = ev->id ? ev->id->context : NULL;
            if (ctx && *(int *)ctx == OWN_QP) {
                struct vqp *q = ctx;
                struct vconn *c = q->c;
                switch (ev->event) {
                case RDMA_CM_EVENT_ADDR_RESOLVED:
                    if (rdma_resolve_route(q->id, t->cfg.timeout_ms)) {
                        cb_log_error("verbs: %s:%d: rdma_resolve_route to rank %d (%s) failed: %s", t->dev, t->port,
                                     c->peer.rank, c->peer.host, strerror(errno));
                        vb_conn_fail(c, CB_EDEVICE);
                    } else {
                        q->state = QS_ROUTE;
                    }
                    break;
                case RDMA_CM_EVENT_ROUTE_RESOLVED:
                    on_route_resolved(c, q);
                    break;
                case RDMA_CM_EVENT_CONNECT_RESPONSE:
                    on_connect_response(c, q, ev);
                    break;
                case RDMA_CM_EVENT_ESTABLISHED:
                    if (q->state != QS_ESTABLISHED) {
                        q->state = QS_ESTABLISHED;
                        c->nestablished++;
                    }
                    break;
                case RDMA_CM_EVENT_DISCONNECTED:
                    q->state = QS_GONE;
                    c->peer_gone = 1;
                    break;
                case RDMA_CM_EVENT_TIMEWAIT_EXIT:
                case RDMA_CM_EVENT_ADDR_CHANGE:
                    break;
                case RDMA_CM_EVENT_UNREACHABLE:
                    if (q->state == QS_ESTABLISHED) {   /* see established_unreachable */
                        established_unreachable(c, ev);
                        break;
                    }
                    log_cm_failure(c, ev);
                    break;
                default:
                    log_cm_failure(c, ev);
                    break;
                }
            }
        }
        rdma_ack_cm_event(ev);
        if (reject) {
            rdma_reject(reject, NULL, 0);
            rdma_destroy_id(reject);
        }
    }
}

static struct vlisten *listen_find(struct vctx *t, const struct vlisten *l)
{
    for (struct vlisten *p = t->listens; p; p = p->next)
        if (p == l)
            return p;
    return NULL;
}

/* rdma_cm: a listening id bound to this port's address, an ephemeral port; its address in `h`. */
static cb_status cm_listen(struct vlisten *l, struct vb_hinfo *h)
{
    struct vctx *t = l->t;
    cb_status st;
    if (rdma_create_id(t->ch, &l->id, l, RDMA_PS_TCP)) {
        cb_log_error("verbs: rdma_create_id failed: %s", strerror(errno));
        return CB_EDEVICE;
    }
    struct sockaddr_storage a = t->addr;
    if (rdma_bind_addr(l->id, (struct sockaddr *)&a)) {
        cb_log_error("verbs: %s:%d: rdma_cm cannot bind to %s (the address of GID %d): %s; is the address "
                     "still on the port's netdev? check `ip addr` and --gid-index/--gid-subnet",
                     t->dev, t->port, t->addr_str, t->gid_index, strerror(errno));
        st = CB_EDEVICE;
        goto undo_id;
    }
    if (rdma_listen(l->id, 2 * t->cfg.qps_per_conn + 4)) {
        cb_log_error("verbs: %s:%d: rdma_listen on %s failed: %s", t->dev, t->port, t->addr_str, strerror(errno));
        st = CB_EDEVICE;
        goto undo_id;
    }
    h->family = t->addr.ss_family;
    h->port_be = rdma_get_src_port(l->id);
    if (t->addr.ss_family == AF_INET) {
        memcpy(h->addr, &((struct sockaddr_in *)&t->addr)->sin_addr, 4);
    } else {
        memcpy(h->addr, &((struct sockaddr_in6 *)&t->addr)->sin6_addr, 16);
        h->scope_id = ((struct sockaddr_in6 *)&t->addr)->sin6_scope_id;
    }
    return CB_OK;

undo_id:
    rdma_destroy_id(l->id);
    l->id = NULL;
    return st;
}

cb_status vb_listen(void *tctx, const struct cb_peer *peer, void *handle, void **lcomm)
{
    struct vctx *t = tctx;
    cb_status st;
    *lcomm = NULL;
    struct vlisten *l = calloc(1, sizeof *l);
    if (!l) {
        cb_log_error("verbs: out of memory listening for rank %d (%s)", peer->rank, peer->host);
        return CB_ENOMEM;
    }
    l->own = OWN_LISTEN;
    l->t = t;
    l->peer = *peer;
    if (!t->setup_first_ns)
        t->setup_first_ns = cb_now_ns();
    st = vb_conn_create(t, 0, peer, &l->rc);
    if (st)
        goto undo_listen;
    l->rc->nonce = t->nonce_seed += 0x9e3779b9u;
    struct vb_hinfo h;
    memset(&h, 0, sizeof h);
    if (t->connect_mode == VB_CONNECT_OOB) {
        st = vb_oob_listen(l, &h);
        if (st)
            goto undo_conn;
    } else {
        st = cm_listen(l, &h);
        if (st)
            goto undo_conn;
    }
    h.qps.connect_mode = t->connect_mode;
    h.nonce = l->rc->nonce;
    h.rank = t->cfg.rank;
    h.qps.nqps = t->cfg.qps_per_conn;
    h.nslots = (uint32_t)t->cfg.nslots;
    h.slot_bytes = (uint64_t)t->cfg.slot_bytes;
    h.mtu = t->mtu;
    h.active_mtu = t->pattr.active_mtu;
    h.mtu_asked = t->cfg.path_mtu != 0;
    h.link_layer = t->pattr.link_layer;
    h.rate_mbps = t->rate_mbps;
    h.split_data = cb_split_data(&t->cfg);
    h.pooled = l->rc->pooled;
    snprintf(h.qps.dev, sizeof h.qps.dev, "%s", t->dev);
    snprintf(h.host, sizeof h.host, "%s", t->cfg.host);
    vb_handle_encode(&h, handle);
    l->next = t->listens;
    t->listens = l;
    *lcomm = l;
    return CB_OK;

undo_conn:
    vb_conn_destroy(l->rc);
undo_listen:
    free(l);
    return st;
}

cb_status vb_accept(void *lcomm, void **rconn)
{
    struct vlisten *l = lcomm;
    struct vctx *t = l->t;
    *rconn = NULL;
    if (!l->rc) {
        cb_log_error("verbs: accept called again on a listen for rank %d (%s) that already accepted (one "
                     "connection per listen)", l->peer.rank, l->peer.host);
        return CB_EINTERNAL;
    }
    if (!l->t_first)
        l->t_first = cb_now_ms();
    cb_status st = vb_cm_pump(t);
    if (st)
        return st;
    st = vb_check_async(t);
    if (st)
        return st;
    struct vconn *c = l->rc;
    if (c->err)
        return c->err;
    if (c->nestablished == c->nq) {
        vb_conn_mark_ready(c);
        vb_setup_mark(t);
        st = vb_cts_issue(c);
        if (st)
            return st;
        l->rc = NULL;
        *rconn = c;
        return CB_OK;
    }
    if (cb_now_ms() - l->t_first > t->cfg.timeout_ms) {
        int n = 0;
        for (int i = 0; i < c->nq; i++)
            n += c->q[i].id != NULL;
        if (l->id)
            cb_log_error("verbs: %s:%d: rank %d (%s) did not connect within %d ms (%d of %d QPs requested, %d "
                         "established) to %s port %u: is it alive, and can it reach this address over RDMA?",
                         t->dev, t->port, l->peer.rank, l->peer.host, t->cfg.timeout_ms, n, c->nq,
                         c->nestablished, t->addr_str, ntohs(rdma_get_src_port(l->id)));
        else   /* oob: the reply came (take_reply) but the QPs are not all RTS */
            cb_log_error("verbs: %s:%d: rank %d (%s) did not connect within %d ms (%d of %d QPs ready, "
                         "--ib-connect oob)", t->dev, t->port, l->peer.rank, l->peer.host, t->cfg.timeout_ms,
                         c->nestablished, c->nq);
        vb_conn_fail(c, CB_ETIMEOUT);
        return CB_ETIMEOUT;
    }
    return CB_OK;
}

cb_status vb_close_listen(void *lcomm)
{
    struct vlisten *l = lcomm;
    if (!l)
        return CB_OK;
    struct vctx *t = l->t;
    if (listen_find(t, l)) {
        for (struct vlisten **p = &t->listens; *p; p = &(*p)->next)
            if (*p == l) {
                *p = l->next;
                break;
            }
    }
    if (l->rc)
        vb_conn_destroy(l->rc);
    if (l->id)
        rdma_destroy_id(l->id);
    free(l);
    return CB_OK;
}

static struct vconn *pending_find(struct vctx *t, int rank, uint32_t nonce)
{
    for (struct vconn *c = t->conns; c; c = c->next)
        if (c->is_send && !c->ready && c->peer.rank == rank && c->nonce == nonce)
            return c;
    return NULL;
}

/* The MTU this connection uses, from the listener's handle; a rate that
 * differs from ours is reported once (stderr and the header). */
cb_status vb_agree_with_listener(struct vctx *t, const struct cb_peer *peer, const struct vb_hinfo *h,
                                 enum ibv_mtu *mtu)
{
    struct vb_end mine = {t->cfg.rank, t->cfg.host, t->dev, t->pattr.link_layer, t->mtu, t->pattr.active_mtu,
                          t->cfg.path_mtu != 0, t->rate_mbps};
    struct vb_end other = {peer->rank, peer->host, h->qps.dev, h->link_layer, h->mtu, h->active_mtu, h->mtu_asked,
                           h->rate_mbps};
    char warn[sizeof t->rate_warn];
    cb_status st = vb_agree_mtu(&mine, &other, mtu, warn, sizeof warn);
    if (!st && warn[0] && !t->rate_warn[0]) {
        snprintf(t->rate_warn, sizeof t->rate_warn, "%s", warn);
        cb_log_warn("verbs: %s:%d: port rates differ: %s (the slower port sets the pace)", t->dev, t->port, warn);
    }
    return st;
}

cb_status vb_check_sender_path(const struct vctx *t, const struct cb_peer *peer, int link_layer, int path_mtu)
{
    if (link_layer == (int)t->pattr.link_layer && path_mtu >= IBV_MTU_256 && path_mtu <= (int)t->mtu)
        return CB_OK;
    cb_log_error("verbs: %s:%d: rank %d (%s) connects from an %s port with path MTU %d; this %s port takes at most "
                 "%d: both ends must run the same collbench build and one fabric (--hca)", t->dev, t->port,
                 peer->rank, peer->host, vb_link_layer_str(link_layer), vb_mtu_bytes((enum ibv_mtu)path_mtu),
                 vb_link_layer_str(t->pattr.link_layer), vb_mtu_bytes(t->mtu));
    return CB_EDEVICE;
}

cb_status vb_check_same_shape(const struct vctx *t, const struct cb_peer *peer, const struct vb_hinfo *h)
{
    if (h->qps.nqps != t->cfg.qps_per_conn || h->nslots != (uint32_t)t->cfg.nslots ||
        h->slot_bytes != t->cfg.slot_bytes) {
        cb_log_error("verbs: rank %d (%s) uses %d QPs and %u slots of %" PRIu64 " bytes, this rank %d QPs and "
                     "%d slots of %zu bytes: give every rank the same options", peer->rank, peer->host, h->qps.nqps,
                     h->nslots, h->slot_bytes, t->cfg.qps_per_conn, t->cfg.nslots, t->cfg.slot_bytes);
        return CB_EUSAGE;
    }
    if (h->pooled != (peer->shared_slots != 0)) {
        cb_log_error("verbs: rank %d (%s) %s shared receive slots for this connection and this rank %s: "
                     "protocol mismatch (are both ranks the same collbench build?)", peer->rank, peer->host,
                     h->pooled ? "uses" : "does not use", peer->shared_slots ? "does" : "does not");
        return CB_EINTERNAL;
    }
    return check_split(t, cb_split_data(&t->cfg), h->split_data, peer);
}

/* A new send connection to the listener of handle `h`: one rdma_cm id per QP, resolving. */
static cb_status start_connect(struct vctx *t, const struct cb_peer *peer, const struct vb_hinfo *h,
                               struct vconn **out)
{
    struct vconn *c;
    enum ibv_mtu mtu;
    cb_status st = vb_check_same_shape(t, peer, h);
    if (!st)
        st = vb_agree_with_listener(t, peer, h, &mtu);
    if (st)
        return st;
    st = vb_conn_create(t, 1, peer, &c);
    if (st)
        return st;
    c->nonce = h->nonce;
    c->mtu = mtu;
    struct sockaddr_storage dst;
    memset(&dst, 0, sizeof dst);
    if (h->family == AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)&dst;
        s->sin_family = AF_INET;
        s->sin_port = h->port_be;
        memcpy(&s->sin_addr, h->addr, 4);
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&dst;
        s->sin6_family = AF_INET6;
        s->sin6_port = h->port_be;
        memcpy(&s->sin6_addr, h->addr, 16);
        if (IN6_IS_ADDR_LINKLOCAL(&s->sin6_addr) && t->addr.ss_family == AF_INET6)
            s->sin6_scope_id = ((struct sockaddr_in6 *)&t->addr)->sin6_scope_id;
    }
    char dst_str[INET6_ADDRSTRLEN];
    inet_ntop(h->family, h->addr, dst_str, sizeof dst_str);
    for (int i = 0; i < c->nq; i++) {
        struct vqp *q = &c->q[i];
        if (rdma_create_id(t->ch, &q->id, q, RDMA_PS_TCP)) {
            cb_log_error("verbs: rdma_create_id failed: %s", strerror(errno));
            st = CB_EDEVICE;
            goto undo_conn;
        }
        /* no --tc: rdma_cm takes the port's default_roce_tos (RoCE) or the path record's class */
        uint8_t tos = (uint8_t)t->cfg.traffic_class, to = (uint8_t)t->cfg.ib_timeout;
        if (t->cfg.traffic_class >= 0)
            rdma_set_option(q->id, RDMA_OPTION_ID, RDMA_OPTION_ID_TOS, &tos, sizeof tos);
        rdma_set_option(q->id, RDMA_OPTION_ID, RDMA_OPTION_ID_ACK_TIMEOUT, &to, sizeof to);
        struct sockaddr_storage src = t->addr;
        if (rdma_resolve_addr(q->id, (struct sockaddr *)&src, (struct sockaddr *)&dst, t->cfg.timeout_ms)) {
            cb_log_error("verbs: %s:%d: rdma_cm cannot resolve %s port %u (rank %d, %s, device %s) from %s: %s; "
                         "check that both ports have IP addresses in a common subnet",
                         t->dev, t->port, dst_str, ntohs(h->port_be), peer->rank, peer->host, h->qps.dev, t->addr_str,
                         strerror(errno));
            st = CB_EDEVICE;
            goto undo_conn;
        }
        q->state = QS_ADDR;
    }
    *out = c;
    return CB_OK;

undo_conn:
    vb_conn_destroy(c);
    return st;
}

cb_status vb_connect(void *tctx, const struct cb_peer *peer, const void *handle, void **sconn)
{
    struct vctx *t = tctx;
    struct vb_hinfo h;
    *sconn = NULL;
    cb_status st = vb_handle_decode(handle, peer, &h);
    if (st)
        return st;
    struct vconn *c = pending_find(t, peer->rank, h.nonce);
    if (!c && t->connect_mode == VB_CONNECT_OOB) {   /* vb_reply made it, or failed and said why */
        cb_log_error("verbs: no connection to rank %d (%s) was set up from its handle (--ib-connect oob)",
                     peer->rank, peer->host);
        return CB_EINTERNAL;
    }
    if (!c && (st = start_connect(t, peer, &h, &c)))
        return st;
    st = vb_cm_pump(t);
    if (!st)
        st = vb_check_async(t);
    if (st)
        return st;
    if (c->err) {
        st = c->err;
        goto fail;
    }
    if (c->nestablished == c->nq) {
        vb_conn_mark_ready(c);
        vb_setup_mark(t);
        *sconn = c;
        return CB_OK;
    }
    if (cb_now_ms() - c->t_start > t->cfg.timeout_ms) {
        int stage = QS_ESTABLISHED;
        for (int i = 0; i < c->nq; i++)
            if (c->q[i].state < stage)
                stage = c->q[i].state;
        char dst_str[INET6_ADDRSTRLEN];
        inet_ntop(h.family, h.addr, dst_str, sizeof dst_str);
        if (stage == QS_ADDR || stage == QS_ROUTE) {
            cb_log_error("verbs: %s:%d: rdma_cm could not resolve the %s to %s (rank %d, %s, device %s) from %s "
                         "within %d ms: the address does not resolve over this port (no neighbour/route); check "
                         "both ports' IP addresses and subnets, or pick the GID with --gid-index/--gid-subnet",
                         t->dev, t->port, stage == QS_ADDR ? "address" : "route", dst_str, peer->rank, peer->host,
                         h.qps.dev, t->addr_str, t->cfg.timeout_ms);
            st = CB_EDEVICE;
        } else {
            cb_log_error("verbs: %s:%d: rank %d (%s, %s port %u on %s) did not answer the connection request "
                         "within %d ms (%d of %d QPs established): is it alive and still listening?", t->dev,
                         t->port, peer->rank, peer->host, dst_str, ntohs(h.port_be), h.qps.dev, t->cfg.timeout_ms,
                         c->nestablished, c->nq);
            st = CB_ETIMEOUT;
        }
        goto fail;
    }
    return CB_OK;

fail:
    vb_conn_destroy(c);
    return st;
}
