/* The verbs transport's async-event thread: one per context, it reads the
 * device's asynchronous events and records the first fatal one (QP and CQ
 * errors, device fatal) in atomics; the next progress(), accept() or
 * connect() reports it, naming the connection when the QP is known.
 * A port that goes down (PORT_ERR) and comes back (PORT_ACTIVE) is not
 * fatal: RC QPs retry what was lost for (retry + 1) local ACK timeouts, as
 * perftest's do. The events are recorded for the report (port_events) and
 * the data path posts nothing while the port is down; only a port down for
 * longer than that retry budget (or -T) fails the run, naming the link. */
#include "verbs_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static int async_is_fatal(enum ibv_event_type e)
{
    switch (e) {
    case IBV_EVENT_CQ_ERR:
    case IBV_EVENT_QP_FATAL:
    case IBV_EVENT_QP_REQ_ERR:
    case IBV_EVENT_QP_ACCESS_ERR:
    case IBV_EVENT_PATH_MIG_ERR:
    case IBV_EVENT_DEVICE_FATAL:
    case IBV_EVENT_SRQ_ERR:
        return 1;
    default:
        return 0;
    }
}

static int64_t realtime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How long the QPs keep retrying a lost packet: (retry + 1) local ACK
 * timeouts of 4.096 us x 2^timeout; capped by -T. */
static double retry_budget_ms(const struct vctx *t)
{
    double ms = 4.096e-3 * (double)(UINT64_C(1) << t->cfg.ib_timeout) * (t->cfg.ib_retry_cnt + 1);
    return ms < t->cfg.timeout_ms ? ms : t->cfg.timeout_ms;
}

/* PORT_ERR / PORT_ACTIVE of our port: appended, then published. */
static void record_port_event(struct vctx *t, enum ibv_event_type e)
{
    pthread_mutex_lock(&t->port_lock);
    int n = atomic_load(&t->nport_ev);
    if (n < VB_PORT_EVENTS_MAX) {
        struct cb_port_event *p = &t->port_ev[n];
        p->unix_ms = realtime_ms();
        snprintf(p->link, sizeof p->link, "%.20s:%d", t->dev, t->port);
        snprintf(p->what, sizeof p->what, "%s", ibv_event_type_str(e));
    }
    atomic_store_explicit(&t->nport_ev, n + 1, memory_order_release);
    int64_t now = cb_now_ms(), down = atomic_load(&t->port_down_ms);
    if (e == IBV_EVENT_PORT_ERR && !down)
        atomic_store(&t->port_down_ms, now > 0 ? now : 1);
    else if (e != IBV_EVENT_PORT_ERR)
        atomic_store(&t->port_down_ms, 0);
    pthread_mutex_unlock(&t->port_lock);
    if (e == IBV_EVENT_PORT_ERR) {
        cb_log_warn("verbs: %s:%d on %s: the port went down; nothing is posted until it is active again, "
                    "the QPs retry for up to %.1f s (--ib-timeout %d, --ib-retry %d)", t->dev, t->port,
                    t->cfg.host, retry_budget_ms(t) / 1000, t->cfg.ib_timeout, t->cfg.ib_retry_cnt);
    } else {
        cb_log_warn("verbs: %s:%d on %s: the port is active again%s%.1f s", t->dev, t->port, t->cfg.host,
                    down ? " after " : "", down ? (double)(now - down) / 1000 : 0.0);
    }
}

/* One event: a port event of our port is recorded, a fatal one claimed. */
static void handle_event(struct vctx *t, struct ibv_async_event *ev)
{
    if ((ev->event_type == IBV_EVENT_PORT_ERR || ev->event_type == IBV_EVENT_PORT_ACTIVE) &&
        ev->element.port_num == t->port)
        record_port_event(t, ev->event_type);
    if (async_is_fatal(ev->event_type)) {
        int zero = 0;
        if (atomic_compare_exchange_strong(&t->async_claimed, &zero, 1)) {
            unsigned qpn = 0;
            if (ev->event_type == IBV_EVENT_QP_FATAL || ev->event_type == IBV_EVENT_QP_REQ_ERR ||
                ev->event_type == IBV_EVENT_QP_ACCESS_ERR || ev->event_type == IBV_EVENT_PATH_MIG_ERR)
                qpn = ev->element.qp ? ev->element.qp->qp_num : 0;
            atomic_store(&t->async_qpn, qpn);
            atomic_store(&t->async_type, (int)ev->event_type + 1);
        }
    }
    ibv_ack_async_event(ev);
}

void vb_async_poll(struct vctx *t)
{
    struct ibv_async_event ev;
    while (t->async_started && ibv_get_async_event(t->ctx, &ev) == 0)   /* the fd is non-blocking */
        handle_event(t, &ev);
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
        if (ibv_get_async_event(t->ctx, &ev) == 0)   /* vb_async_poll may have taken it */
            handle_event(t, &ev);
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

void vb_port_events_text(struct vctx *t, char *buf, size_t len)
{
    int n = atomic_load_explicit(&t->nport_ev, memory_order_acquire);
    size_t used = 0;
    snprintf(buf, len, "none");
    for (int i = 0; i < n && i < VB_PORT_EVENTS_MAX && used < len; i++) {
        time_t s = (time_t)(t->port_ev[i].unix_ms / 1000);
        struct tm tm;
        char hms[16] = "?";
        if (gmtime_r(&s, &tm))
            strftime(hms, sizeof hms, "%H:%M:%S", &tm);
        int k = snprintf(buf + used, len - used, "%s%s %s.%03lldZ", i ? ", " : "", t->port_ev[i].what, hms,
                         t->port_ev[i].unix_ms % 1000);
        used += k > 0 ? (size_t)k : 0;
    }
    if (n > VB_PORT_EVENTS_MAX && used < len)
        snprintf(buf + used, len - used, ", %d more", n - VB_PORT_EVENTS_MAX);
}

int vb_port_events(void *tctx, int from, struct cb_port_event *ev, int max)
{
    struct vctx *t = tctx;
    int n = atomic_load_explicit(&t->nport_ev, memory_order_acquire);
    for (int i = from, k = 0; i >= 0 && i < n && i < VB_PORT_EVENTS_MAX && k < max; i++, k++)
        ev[k] = t->port_ev[i];
    return n;
}

/* The port has been down for longer than the QPs retry: what was in
 * flight is lost and nothing can be sent; the link is named. */
static cb_status check_port(struct vctx *t)
{
    int64_t down = atomic_load(&t->port_down_ms);
    if (t->port_down_reported)
        return CB_ETIMEOUT;
    if (!down || (double)(cb_now_ms() - down) <= retry_budget_ms(t))
        return CB_OK;
    char events[512];
    vb_port_events_text(t, events, sizeof events);
    cb_log_error("verbs: %s:%d on %s: the port has been down for %.1f s, longer than the QPs retry (%.1f s: "
                 "--ib-timeout %d, --ib-retry %d, at most -T): the link is down; check the cable and the switch "
                 "port (ibstat, rdma link show, ip link), or raise --ib-timeout to ride out longer flaps; "
                 "port events: %s", t->dev, t->port, t->cfg.host, (double)(cb_now_ms() - down) / 1000,
                 retry_budget_ms(t) / 1000, t->cfg.ib_timeout, t->cfg.ib_retry_cnt, events);
    t->port_down_reported = 1;
    return CB_ETIMEOUT;
}

cb_status vb_check_async(struct vctx *t)
{
    int type = atomic_load(&t->async_type);
    if (!type)
        return check_port(t);
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
    cb_log_error("verbs: %s:%d: asynchronous event '%s': check the port (ibstat / rdma link) and the cabling",
                 t->dev, t->port, ibv_event_type_str(e));
    return e == IBV_EVENT_DEVICE_FATAL ? CB_EDEVICE : CB_EPEER;
}

/* The thread, and the eventfd that wakes it for the stop. */
cb_status vb_async_start(struct vctx *t)
{
    t->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (t->wake_fd < 0) {
        cb_log_error("verbs: eventfd failed: %s", strerror(errno));
        return CB_ESYS;
    }
    pthread_mutex_init(&t->port_lock, NULL);
    int e = pthread_create(&t->async_thr, NULL, async_main, t);
    if (e) {
        cb_log_error("verbs: cannot start the async-event thread: %s", strerror(e));
        pthread_mutex_destroy(&t->port_lock);
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
    pthread_mutex_destroy(&t->port_lock);
}
