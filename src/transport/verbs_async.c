/* The verbs transport's async-event thread: one per context, it reads the
 * device's asynchronous events (QP and CQ errors, port down, device fatal)
 * and records the first fatal one in atomics; the next progress(), accept()
 * or connect() reports it, naming the connection when the QP is known. */
#include "verbs_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static int async_is_fatal(enum ibv_event_type e)
{
    switch (e) {
    case IBV_EVENT_CQ_ERR:
    case IBV_EVENT_QP_FATAL:
    case IBV_EVENT_QP_REQ_ERR:
    case IBV_EVENT_QP_ACCESS_ERR:
    case IBV_EVENT_PATH_MIG_ERR:
    case IBV_EVENT_PORT_ERR:
    case IBV_EVENT_DEVICE_FATAL:
    case IBV_EVENT_SRQ_ERR:
        return 1;
    default:
        return 0;
    }
}

static void *async_main(void *arg)
{
    struct vctx *t = arg;
    struct pollfd p[2] = {{.fd = t->ctx->async_fd, .events = POLLIN}, {.fd = t->wake_fd, .events = POLLIN}};
    while (!atomic_load(&t->async_stop)) {
        if (poll(p, 2, 1000) <= 0)
            continue;
        if (p[1].revents)
            break;
        struct ibv_async_event ev;
        if (ibv_get_async_event(t->ctx, &ev))
            continue;
        int fatal = async_is_fatal(ev.event_type) &&
                    (ev.event_type != IBV_EVENT_PORT_ERR || ev.element.port_num == t->port);
        if (fatal) {
            int zero = 0;
            if (atomic_compare_exchange_strong(&t->async_claimed, &zero, 1)) {
                unsigned qpn = 0;
                if (ev.event_type == IBV_EVENT_QP_FATAL || ev.event_type == IBV_EVENT_QP_REQ_ERR ||
                    ev.event_type == IBV_EVENT_QP_ACCESS_ERR || ev.event_type == IBV_EVENT_PATH_MIG_ERR)
                    qpn = ev.element.qp ? ev.element.qp->qp_num : 0;
                atomic_store(&t->async_qpn, qpn);
                atomic_store(&t->async_type, (int)ev.event_type + 1);
            }
        }
        ibv_ack_async_event(&ev);
    }
    return NULL;
}

static struct vconn *conn_by_qpn(struct vctx *t, unsigned qpn)
{
    for (struct vconn *c = t->conns; c; c = c->next)
        for (int i = 0; i < c->nq; i++)
            if (c->q[i].qp && c->q[i].qp->qp_num == qpn)
                return c;
    for (struct vlisten *l = t->listens; l; l = l->next)
        if (l->rc)
            for (int i = 0; i < l->rc->nq; i++)
                if (l->rc->q[i].qp && l->rc->q[i].qp->qp_num == qpn)
                    return l->rc;
    return NULL;
}

cb_status vb_check_async(struct vctx *t)
{
    int type = atomic_load(&t->async_type);
    if (!type)
        return CB_OK;
    if (t->async_reported)
        return CB_EPEER;
    t->async_reported = 1;
    enum ibv_event_type e = (enum ibv_event_type)(type - 1);
    unsigned qpn = atomic_load(&t->async_qpn);
    struct vconn *c = qpn ? conn_by_qpn(t, qpn) : NULL;
    if (c) {
        cb_log_error("verbs: %s:%d: asynchronous event '%s' on QP 0x%x of the connection %s rank %d (%s): "
                     "the QP is in error; check the link and the peer's log",
                     t->dev, t->port, ibv_event_type_str(e), qpn, c->is_send ? "to" : "from", c->peer.rank,
                     c->peer.host);
        if (!c->err)
            c->err = CB_EPEER;
        return CB_EPEER;
    }
    cb_log_error("verbs: %s:%d: asynchronous event '%s'%s: check the port (ibstat / rdma link) and the cabling",
                 t->dev, t->port, ibv_event_type_str(e),
                 e == IBV_EVENT_PORT_ERR ? " (the port went down)" : "");
    return e == IBV_EVENT_PORT_ERR || e == IBV_EVENT_DEVICE_FATAL ? CB_EDEVICE : CB_EPEER;
}

/* The thread, and the eventfd that wakes it for the stop. */
cb_status vb_async_start(struct vctx *t)
{
    t->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (t->wake_fd < 0) {
        cb_log_error("verbs: eventfd failed: %s", strerror(errno));
        return CB_ESYS;
    }
    int e = pthread_create(&t->async_thr, NULL, async_main, t);
    if (e) {
        cb_log_error("verbs: cannot start the async-event thread: %s", strerror(e));
        close(t->wake_fd);
        t->wake_fd = -1;
        return CB_ESYS;
    }
    t->async_started = 1;
    return CB_OK;
}

void vb_async_stop(struct vctx *t)
{
    if (!t->async_started)
        return;
    uint64_t one = 1;
    atomic_store(&t->async_stop, 1);
    if (write(t->wake_fd, &one, sizeof one) < 0) {
        /* the thread still sees async_stop within its poll timeout */
    }
    pthread_join(t->async_thr, NULL);
    t->async_started = 0;
}
