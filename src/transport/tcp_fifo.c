/* TCP transport, the slot FIFO: slots, the send and receive data paths,
 * progress and close. The protocol is described in tcp.c. */
#include "tcp_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* ---- slots and errors ---- */

/* Slots are 64-byte aligned, page-aligned as a whole, and touched once now so
 * the first timed iteration takes no page faults. */
size_t cb_tcp_slot_stride(size_t slot_bytes)
{
    return (slot_bytes + SLOT_ALIGN - 1) & ~(size_t)(SLOT_ALIGN - 1);
}

cb_status cb_tcp_slots_alloc(int nslots, size_t slot_bytes, const struct cb_peer *peer,
                      uint8_t **slots, size_t *stride)
{
    *stride = cb_tcp_slot_stride(slot_bytes);
    size_t total = *stride * (size_t)nslots;
    void *p = NULL;
    if (*stride < slot_bytes || total / (size_t)nslots != *stride || posix_memalign(&p, 4096, total) != 0) {
        cb_log_error("tcp: cannot allocate %d slots of %zu bytes for the connection with rank %d "
                     "(host %s); use fewer or smaller slots", nslots, slot_bytes, peer->rank, peer->host);
        return CB_ENOMEM;
    }
    memset(p, 0, total);
    *slots = p;
    return CB_OK;
}

/* A failed socket call on an established connection, logged with the peer. */
cb_status cb_tcp_io_error(const struct cb_peer *peer, const char *what, int err)
{
    if (err == EPIPE || err == ECONNRESET || err == ECONNABORTED) {
        cb_log_error("tcp: rank %d (host %s) closed the connection (did it exit or crash?)",
                     peer->rank, peer->host);
        return CB_EPEER;
    }
    if (err == ETIMEDOUT || err == EHOSTUNREACH || err == ENETUNREACH || err == ENETDOWN) {
        cb_log_error("tcp: lost the connection with rank %d (host %s) while %s: %s (host down or "
                     "network broken?)", peer->rank, peer->host, what, strerror(err));
        return CB_EPEER;
    }
    cb_log_error("tcp: %s rank %d (host %s) failed: %s", what, peer->rank, peer->host, strerror(err));
    return CB_ESYS;
}

/* ---- sender: data ---- */

static size_t tx_len(const struct tcp_send *s, int idx)
{
    return (size_t)be64toh(s->hdr[idx]);
}

/* Header and payload iovecs of the queued messages, from where the kernel stopped. */
static int tx_iov(const struct tcp_send *s, struct iovec *iov, size_t *want)
{
    int n = 0;
    *want = 0;
    for (int i = 0; i < s->nqueued && n + 2 <= MAX_IOV; i++) {
        int idx = (s->head + i) % s->nslots;
        size_t skip = i == 0 ? s->off : 0, len = tx_len(s, idx);
        if (skip < HDR_BYTES)
            iov[n++] = (struct iovec){(uint8_t *)&s->hdr[idx] + skip, HDR_BYTES - skip};
        size_t pskip = skip > HDR_BYTES ? skip - HDR_BYTES : 0;
        if (len > pskip)
            iov[n++] = (struct iovec){s->slots + (size_t)idx * s->stride + pskip, len - pskip};
        *want += HDR_BYTES + len - skip;
    }
    return n;
}

static void tx_advance(struct tcp_send *s, size_t n)
{
    while (n > 0) {
        size_t rem = HDR_BYTES + tx_len(s, s->head) - s->off;
        if (n < rem) {
            s->off += n;
            return;
        }
        n -= rem;
        s->off = 0;
        s->head = (s->head + 1) % s->nslots;
        s->nqueued--;
    }
}

static cb_status tx_pump(struct tcp_send *s)
{
    while (s->err == CB_OK && s->nqueued > 0) {
        struct iovec iov[MAX_IOV];
        size_t want;
        struct msghdr m = {.msg_iov = iov};
        m.msg_iovlen = (size_t)tx_iov(s, iov, &want);
        ssize_t n = sendmsg(s->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return CB_OK;
        if (n < 0) {
            s->err = cb_tcp_io_error(&s->peer, "sending to", errno);
            break;
        }
        tx_advance(s, (size_t)n);
        if ((size_t)n < want)
            return CB_OK;   /* the socket buffer is full */
    }
    return s->err;
}

/* tx_pump, and what it left queued goes to the backlog progress serves. */
static cb_status tx_pump_noted(struct tcp_send *s)
{
    cb_status st = tx_pump(s);
    if (s->nqueued > 0 && !s->in_backlog) {
        s->next_backlog = s->ctx->backlog;
        s->ctx->backlog = s;
        s->in_backlog = 1;
    }
    return st;
}

static void backlog_remove(struct tcp_send *s)
{
    struct tcp_send **pp = &s->ctx->backlog;
    while (*pp && *pp != s)
        pp = &(*pp)->next_backlog;
    if (*pp)
        *pp = s->next_backlog;
    s->in_backlog = 0;
}

cb_status tcp_send_slot(void *sconn, size_t nbytes, void **slot)
{
    (void)nbytes;   /* no offered destinations on this side */
    struct tcp_send *s = sconn;
    *slot = NULL;
    if (!s->slot_out && s->nqueued == s->nslots)
        tx_pump_noted(s);
    if (s->err != CB_OK)
        return s->err;
    if (!s->slot_out && s->nqueued == s->nslots)
        return CB_OK;
    s->slot_out = 1;
    *slot = s->slots + (size_t)((s->head + s->nqueued) % s->nslots) * s->stride;
    return CB_OK;
}

cb_status tcp_send_post(void *sconn, size_t nbytes)
{
    struct tcp_send *s = sconn;
    if (s->err != CB_OK)
        return s->err;
    if (!s->slot_out || nbytes > s->slot_bytes) {
        cb_log_error("tcp: send_post of %zu bytes to rank %d (host %s) %s", nbytes, s->peer.rank,
                     s->peer.host, s->slot_out ? "exceeds the slot size" : "without a slot from send_slot");
        return CB_EINTERNAL;
    }
    int idx = (s->head + s->nqueued) % s->nslots;
    s->hdr[idx] = htobe64((uint64_t)nbytes);
    s->nqueued++;
    s->slot_out = 0;
    return tx_pump_noted(s);
}

/* Everything posted is in the kernel (which delivers it even after close);
 * TCP cannot tell when the receiver consumed it without acknowledgements. */
cb_status tcp_send_idle(void *sconn, int *idle)
{
    struct tcp_send *s = sconn;
    cb_status st = tx_pump_noted(s);
    *idle = st == CB_OK && s->nqueued == 0;
    return st;
}

cb_status tcp_close_send(void *sconn)
{
    struct tcp_send *s = sconn;
    if (!s)
        return CB_OK;
    if (tx_pump(s) == CB_OK && s->nqueued == 0) {
        uint64_t bye = MSG_BYE;   /* all ones: same in every byte order */
        if (send(s->fd, &bye, sizeof bye, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof bye)
            cb_log_warn("tcp: could not say goodbye to rank %d (host %s); it may report a crash",
                        s->peer.rank, s->peer.host);
    } else if (s->nqueued > 0) {
        cb_log_warn("tcp: closing the connection to rank %d (host %s) with %d messages unsent",
                    s->peer.rank, s->peer.host, s->nqueued);
    }
    if (s->in_backlog)
        backlog_remove(s);
    LIST_REMOVE(s->ctx->sends, s);
    cb_tcp_send_free(s);
    return CB_OK;
}

/* ---- receiver: data ---- */

static uint8_t *rx_fill_slot(const struct tcp_recv *r)
{
    return r->slots + (size_t)((r->head + r->nfull) % r->nslots) * r->stride;
}

static void rx_complete(struct tcp_recv *r)
{
    r->len[(r->head + r->nfull) % r->nslots] = r->plen;
    r->nfull++;
    r->in_payload = 0;
}

static cb_status rx_header(struct tcp_recv *r)
{
    uint64_t len = get64(r->hdr);
    r->hdr_got = 0;
    if (len == MSG_BYE) {
        r->bye = 1;
        return CB_OK;
    }
    if (len > r->slot_bytes) {
        cb_log_error("tcp: rank %d (host %s) announced a message of %llu bytes, more than the "
                     "%zu-byte slot: the stream is corrupt or the ranks run different collbench versions",
                     r->peer.rank, r->peer.host, (unsigned long long)len, r->slot_bytes);
        return r->err = CB_EPEER;
    }
    r->plen = (size_t)len;
    r->pgot = 0;
    r->in_payload = 1;
    if (len == 0)
        rx_complete(r);
    return CB_OK;
}

/* Move what the lookahead holds into headers and slots, while slots are free. */
static void rx_parse(struct tcp_recv *r)
{
    while (r->la_pos < r->la_end && !r->bye && r->err == CB_OK) {
        size_t avail = r->la_end - r->la_pos, take;
        if (!r->in_payload && r->nfull == r->nslots)
            break;
        if (r->in_payload) {
            take = avail < r->plen - r->pgot ? avail : r->plen - r->pgot;
            memcpy(rx_fill_slot(r) + r->pgot, r->la + r->la_pos, take);
            r->pgot += take;
            if (r->pgot == r->plen)
                rx_complete(r);
        } else {
            take = avail < HDR_BYTES - r->hdr_got ? avail : HDR_BYTES - r->hdr_got;
            memcpy(r->hdr + r->hdr_got, r->la + r->la_pos, take);
            r->hdr_got += take;
            if (r->hdr_got == HDR_BYTES)
                rx_header(r);
        }
        r->la_pos += take;
    }
    if (r->la_pos == r->la_end)
        r->la_pos = r->la_end = 0;
}

static cb_status rx_eof(struct tcp_recv *r)
{
    int mid = r->in_payload || r->hdr_got > 0;
    cb_log_error("tcp: rank %d (host %s) closed the connection%s (did it exit or crash?)",
                 r->peer.rank, r->peer.host, mid ? " in the middle of a message" : "");
    return CB_EPEER;
}

/* One recvmsg: the rest of the payload straight into its slot, then lookahead. */
static cb_status rx_read(struct tcp_recv *r, int *drained)
{
    struct iovec iov[2];
    size_t direct = r->in_payload ? r->plen - r->pgot : 0;
    int n_iov = 0;
    if (direct)
        iov[n_iov++] = (struct iovec){rx_fill_slot(r) + r->pgot, direct};
    iov[n_iov++] = (struct iovec){r->la, LOOKAHEAD};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n_iov};
    ssize_t n;
    do
        n = recvmsg(r->fd, &m, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    *drained = 1;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return CB_OK;
    if (n < 0)
        return r->err = cb_tcp_io_error(&r->peer, "receiving from", errno);
    if (n == 0)
        return r->err = rx_eof(r);
    size_t k = (size_t)n < direct ? (size_t)n : direct;
    r->pgot += k;
    if (direct && r->pgot == r->plen)
        rx_complete(r);
    r->la_pos = 0;
    r->la_end = (size_t)n - k;
    *drained = (size_t)n < direct + LOOKAHEAD;
    return CB_OK;
}

static cb_status rx_pump(struct tcp_recv *r)
{
    int drained = 0;
    while (r->err == CB_OK && !r->bye && !drained) {
        rx_parse(r);
        if (r->err != CB_OK || r->bye || r->la_pos < r->la_end || r->nfull == r->nslots)
            break;
        rx_read(r, &drained);
    }
    return r->err;
}

cb_status tcp_recv_slot(void *rconn, const void **slot, size_t *nbytes)
{
    struct tcp_recv *r = rconn;
    *slot = NULL;
    *nbytes = 0;
    if (r->nfull == 0)
        rx_pump(r);
    if (r->nfull > 0) {   /* what arrived before an error is still delivered */
        *slot = r->slots + (size_t)r->head * r->stride;
        *nbytes = r->len[r->head];
        return CB_OK;
    }
    if (r->bye && r->err == CB_OK) {
        cb_log_error("tcp: rank %d (host %s) closed the connection (did it exit or crash?)",
                     r->peer.rank, r->peer.host);
        r->err = CB_EPEER;
    }
    return r->err;
}

cb_status tcp_recv_release(void *rconn)
{
    struct tcp_recv *r = rconn;
    if (r->nfull == 0) {
        cb_log_error("tcp: recv_release from rank %d (host %s) without a slot from recv_slot",
                     r->peer.rank, r->peer.host);
        return CB_EINTERNAL;
    }
    r->head = (r->head + 1) % r->nslots;
    r->nfull--;
    return CB_OK;
}

cb_status tcp_close_recv(void *rconn)
{
    struct tcp_recv *r = rconn;
    if (!r)
        return CB_OK;
    epoll_ctl(r->ctx->epfd, EPOLL_CTL_DEL, r->fd, NULL);
    LIST_REMOVE(r->ctx->recvs, r);
    cb_tcp_recv_free(r);
    return CB_OK;
}

/* The senders the kernel left data to: pumped again, dropped once drained. */
static cb_status backlog_pump(struct tcp_ctx *c)
{
    for (struct tcp_send **pp = &c->backlog; *pp;) {
        struct tcp_send *s = *pp;
        c->progress_pumps++;
        if (s->state == TX_READY && tx_pump(s) != CB_OK)
            return s->err;
        if (s->nqueued == 0) {
            *pp = s->next_backlog;
            s->in_backlog = 0;
        } else {
            pp = &s->next_backlog;
        }
    }
    return CB_OK;
}

/* The receivers whose sockets are readable (or failed), at most
 * PROGRESS_EVENTS per call: epoll hands the rest out in turn next time. */
static cb_status readable_pump(struct tcp_ctx *c)
{
    struct epoll_event ev[PROGRESS_EVENTS];
    int n = epoll_wait(c->epfd, ev, PROGRESS_EVENTS, 0);
    if (n < 0 && errno != EINTR) {
        cb_log_error("tcp: epoll_wait failed: %s", strerror(errno));
        return CB_ESYS;
    }
    for (int i = 0; i < n; i++) {
        struct tcp_recv *r = ev[i].data.ptr;
        c->progress_pumps++;
        if (rx_pump(r) != CB_OK)
            return r->err;
    }
    return CB_OK;
}

cb_status tcp_progress(void *tctx)
{
    struct tcp_ctx *c = tctx;
    cb_status st = backlog_pump(c);
    return st != CB_OK ? st : readable_pump(c);
}
