/* TCP transport, connection set-up: handles and hellos, connect, listen and
 * accept with the token check. The protocol is described in tcp.c. */
#include "tcp_internal.h"
#include "core/clock.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- small helpers ---- */

/* Constant time, so the token cannot be guessed byte by byte. */
static int token_equal(const uint8_t *a, const uint8_t *b)
{
    uint8_t d = 0;
    for (int i = 0; i < CB_TOKEN_BYTES; i++)
        d |= (uint8_t)(a[i] ^ b[i]);
    return d == 0;
}

/* ---- handles and hellos ---- */

struct handle_info {
    struct sockaddr_in sa;
    uint32_t id;
    int rank;
};

static void handle_encode(const struct tcp_ctx *c, const struct tcp_listen *l, void *handle)
{
    uint8_t *h = handle;
    memset(h, 0, CB_HANDLE_BYTES);
    put32(h, HANDLE_MAGIC);
    put16(h + 4, PROTO_VERSION);
    put16(h + 6, c->port);
    memcpy(h + 8, &c->addr.s_addr, 4);   /* already network order */
    put32(h + 12, l->id);
    put32(h + 16, (uint32_t)c->rank);
}

static cb_status handle_decode(const void *handle, const struct cb_peer *peer, struct handle_info *hi)
{
    const uint8_t *h = handle;
    if (get32(h) != HANDLE_MAGIC || get16(h + 4) != PROTO_VERSION) {
        cb_log_error("tcp: the connection handle from rank %d (host %s) is not a tcp handle of this "
                     "collbench version: do all ranks run the same binary with the same transport?",
                     peer->rank, peer->host);
        return CB_EUSAGE;
    }
    memset(hi, 0, sizeof *hi);
    hi->sa.sin_family = AF_INET;
    hi->sa.sin_port = htons(get16(h + 6));
    memcpy(&hi->sa.sin_addr.s_addr, h + 8, 4);
    hi->id = get32(h + 12);
    hi->rank = (int)get32(h + 16);
    if (hi->rank != peer->rank) {
        cb_log_error("tcp: the handle given for rank %d (host %s) was made by rank %d: the bootstrap "
                     "mixed up handles", peer->rank, peer->host, hi->rank);
        return CB_EINTERNAL;
    }
    return CB_OK;
}

struct hello {
    uint32_t magic, version, listen_id, nslots;
    int rank;
    uint64_t slot_bytes;
    uint8_t token[CB_TOKEN_BYTES];
};

static void hello_encode(const struct tcp_ctx *c, uint32_t listen_id, uint8_t *b)
{
    memset(b, 0, HELLO_BYTES);
    put32(b, HELLO_MAGIC);
    put16(b + 4, PROTO_VERSION);
    memcpy(b + 8, c->token, CB_TOKEN_BYTES);
    put32(b + 24, (uint32_t)c->rank);
    put32(b + 28, listen_id);
    put32(b + 32, (uint32_t)c->nslots);
    put64(b + 40, c->slot_bytes);
}

static void hello_decode(const uint8_t *b, struct hello *h)
{
    h->magic = get32(b);
    h->version = get16(b + 4);
    memcpy(h->token, b + 8, CB_TOKEN_BYTES);
    h->rank = (int)get32(b + 24);
    h->listen_id = get32(b + 28);
    h->nslots = get32(b + 32);
    h->slot_bytes = get64(b + 40);
}

/* ---- sender: connect ---- */

void cb_tcp_send_free(struct tcp_send *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    free(s->hdr);
    free(s->slots);
    free(s);
}

/* What a flapping link or a route being rebuilt gives: worth another try
 * within -T. A refusal is not: nothing listens there any more. */
static int connect_transient(int err)
{
    return err == EHOSTUNREACH || err == ENETUNREACH || err == ETIMEDOUT || err == ENETDOWN || err == EHOSTDOWN;
}

/* Said once per connection, so a flap during set-up is seen even when the
 * next attempt gets through; the caller's -T bounds the attempts. */
static cb_status connect_retry_later(struct tcp_send *s, int err, const char *where)
{
    if (!s->retry_ms)
        cb_log_warn("tcp: cannot reach rank %d (host %s) at %s from interface %s: %s; trying again until the "
                    "set-up timeout (-T)", s->peer.rank, s->peer.host, where, s->ctx->ifname, strerror(err));
    close(s->fd);
    s->fd = -1;
    s->retry_ms = s->retry_ms ? (s->retry_ms * 2 > 1000 ? 1000 : s->retry_ms * 2) : 50;
    s->retry_at_ms = cb_now_ms() + s->retry_ms;
    s->state = TX_RETRY;
    return CB_OK;
}

static cb_status connect_error(struct tcp_send *s, int err)
{
    char where[INET_ADDRSTRLEN + 8];
    cb_tcp_addr_str(&s->dst, where, sizeof where);
    if (connect_transient(err))
        return connect_retry_later(s, err, where);
    if (err == ECONNREFUSED) {
        cb_log_error("tcp: rank %d (host %s) refused the connection to %s (did it exit, or does a "
                     "firewall reject it?)", s->peer.rank, s->peer.host, where);
        return CB_EPEER;
    }
    cb_log_error("tcp: cannot connect to rank %d (host %s) at %s from interface %s: %s; check that "
                 "this host can reach that address (routing, firewall) or choose other interfaces "
                 "with --tcp-if", s->peer.rank, s->peer.host, where, s->ctx->ifname, strerror(err));
    return CB_ESYS;
}

static cb_status connect_start(struct tcp_send *s)
{
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        cb_log_error("tcp: cannot create a socket for rank %d (host %s): %s", s->peer.rank,
                     s->peer.host, strerror(errno));
        return CB_ESYS;
    }
    cb_tcp_socket_tune(s->ctx, s->fd);
    if (connect(s->fd, (struct sockaddr *)&s->dst, sizeof s->dst) == 0) {
        s->state = TX_HELLO;
        return CB_OK;
    }
    if (errno == EINPROGRESS || errno == EINTR) {
        s->state = TX_CONNECTING;
        return CB_OK;
    }
    return connect_error(s, errno);
}

static cb_status send_create(struct tcp_ctx *c, const struct cb_peer *peer, const struct handle_info *hi,
                             struct tcp_send **out)
{
    struct tcp_send *s = calloc(1, sizeof *s);
    cb_status st = CB_ENOMEM;
    if (!s) {
        cb_log_error("tcp: out of memory connecting to rank %d (host %s)", peer->rank, peer->host);
        return CB_ENOMEM;
    }
    s->ctx = c;
    s->peer = *peer;
    s->fd = -1;
    s->dst = hi->sa;
    s->listen_id = hi->id;
    s->nslots = c->nslots;
    s->slot_bytes = c->slot_bytes;
    s->hdr = calloc((size_t)c->nslots, sizeof *s->hdr);
    if (!s->hdr) {
        cb_log_error("tcp: out of memory connecting to rank %d (host %s)", peer->rank, peer->host);
        goto free_conn;
    }
    st = cb_tcp_slots_alloc(c->nslots, c->slot_bytes, peer, &s->slots, &s->stride);
    if (st == CB_OK)
        st = connect_start(s);
    if (st != CB_OK)
        goto free_conn;
    hello_encode(c, hi->id, s->hello);
    s->next = c->sends;
    c->sends = s;
    *out = s;
    return CB_OK;
free_conn:
    cb_tcp_send_free(s);
    return st;
}

/* Non-blocking connect finished? State moves to TX_HELLO when it did. */
static cb_status connect_poll(struct tcp_send *s)
{
    struct pollfd p = {.fd = s->fd, .events = POLLOUT};
    int n = poll(&p, 1, 0);
    if (n < 0 && errno != EINTR)
        return cb_tcp_io_error(&s->peer, "connecting to", errno);
    if (n <= 0)
        return CB_OK;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err)
        return connect_error(s, err);
    s->state = TX_HELLO;
    return CB_OK;
}

static cb_status hello_send(struct tcp_send *s)
{
    ssize_t n = send(s->fd, s->hello + s->hello_sent, HELLO_BYTES - s->hello_sent,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR
                   ? CB_OK : cb_tcp_io_error(&s->peer, "greeting", errno);
    s->hello_sent += (size_t)n;
    if (s->hello_sent == HELLO_BYTES)
        s->state = TX_READY;
    return CB_OK;
}

static cb_status connect_step(struct tcp_send *s)
{
    cb_status st = CB_OK;
    if (s->state == TX_RETRY && cb_now_ms() >= s->retry_at_ms)
        st = connect_start(s);
    if (st == CB_OK && s->state == TX_CONNECTING)
        st = connect_poll(s);
    if (st == CB_OK && s->state == TX_HELLO)
        st = hello_send(s);
    return st;
}

static struct tcp_send *connect_find(struct tcp_ctx *c, const struct cb_peer *peer,
                                     const struct handle_info *hi)
{
    for (struct tcp_send *s = c->sends; s; s = s->next)
        if (s->state != TX_READY && s->peer.rank == peer->rank && s->listen_id == hi->id &&
            s->dst.sin_addr.s_addr == hi->sa.sin_addr.s_addr && s->dst.sin_port == hi->sa.sin_port)
            return s;
    return NULL;
}

cb_status tcp_connect(void *tctx, const struct cb_peer *peer, const void *handle, void **sconn)
{
    struct tcp_ctx *c = tctx;
    struct handle_info hi;
    *sconn = NULL;
    cb_status st = handle_decode(handle, peer, &hi);
    if (st != CB_OK)
        return st;
    struct tcp_send *s = connect_find(c, peer, &hi);
    if (!s) {
        st = send_create(c, peer, &hi, &s);
        if (st != CB_OK)
            return st;
    }
    st = connect_step(s);
    if (st != CB_OK) {
        LIST_REMOVE(c->sends, s);
        cb_tcp_send_free(s);
        return st;
    }
    if (s->state == TX_READY)
        *sconn = s;
    return CB_OK;
}

/* ---- receiver: listen and accept ---- */

cb_status tcp_listen(void *tctx, const struct cb_peer *peer, void *handle, void **lcomm)
{
    struct tcp_ctx *c = tctx;
    struct tcp_listen *l = calloc(1, sizeof *l);
    *lcomm = NULL;
    if (!l) {
        cb_log_error("tcp: out of memory listening for rank %d (host %s)", peer->rank, peer->host);
        return CB_ENOMEM;
    }
    l->ctx = c;
    l->peer = *peer;
    l->id = c->next_id++;
    l->next = c->listens;
    c->listens = l;
    handle_encode(c, l, handle);
    *lcomm = l;
    return CB_OK;
}

void cb_tcp_recv_free(struct tcp_recv *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    free(r->len);
    free(r->slots);
    free(r);
}

static cb_status recv_create(struct tcp_ctx *c, const struct cb_peer *peer, int fd, struct tcp_recv **out)
{
    struct tcp_recv *r = calloc(1, sizeof *r);
    cb_status st = CB_ENOMEM;
    if (!r) {
        cb_log_error("tcp: out of memory accepting rank %d (host %s)", peer->rank, peer->host);
        return CB_ENOMEM;
    }
    r->ctx = c;
    r->peer = *peer;
    r->fd = -1;
    r->nslots = c->nslots;
    r->slot_bytes = c->slot_bytes;
    r->len = calloc((size_t)c->nslots, sizeof *r->len);
    if (!r->len) {
        cb_log_error("tcp: out of memory accepting rank %d (host %s)", peer->rank, peer->host);
        goto free_conn;
    }
    st = cb_tcp_slots_alloc(c->nslots, c->slot_bytes, peer, &r->slots, &r->stride);
    if (st != CB_OK)
        goto free_conn;
    r->fd = fd;
    cb_tcp_socket_tune(c, fd);
    *out = r;
    return CB_OK;
free_conn:
    cb_tcp_recv_free(r);
    return st;
}

static struct tcp_listen *listen_find(struct tcp_ctx *c, uint32_t id)
{
    for (struct tcp_listen *l = c->listens; l; l = l->next)
        if (l->id == id)
            return l;
    return NULL;
}

void cb_tcp_pending_free(struct tcp_ctx *c, struct tcp_pending *p)
{
    if (p->fd >= 0)
        close(p->fd);
    c->npending--;
    free(p);
}

/* Verified: hand the socket to its listen. Otherwise drop it with a warning. */
static void hello_dispatch(struct tcp_ctx *c, struct tcp_pending *p)
{
    struct hello h;
    hello_decode(p->hello, &h);
    if (h.magic != HELLO_MAGIC || h.version != PROTO_VERSION || !token_equal(h.token, c->token)) {
        cb_log_warn("tcp: rejected a connection from %s: it did not present this job's token "
                    "(a stray process, a scanner or another collbench job?)", p->from);
        return;
    }
    struct tcp_listen *l = listen_find(c, h.listen_id);
    if (!l || l->accepted || l->ready || l->err != CB_OK) {
        cb_log_warn("tcp: rejected a connection from %s claiming rank %d: no open listen expects it "
                    "(listen id %u)", p->from, h.rank, (unsigned)h.listen_id);
        return;
    }
    if (h.rank != l->peer.rank) {
        cb_log_warn("tcp: rejected a connection from %s: it claims rank %d, but this listen waits "
                    "for rank %d (host %s)", p->from, h.rank, l->peer.rank, l->peer.host);
        return;
    }
    /* the same geometry on both ends, as shm and verbs require */
    if (h.slot_bytes != c->slot_bytes || h.nslots != (uint32_t)c->nslots) {
        cb_log_error("tcp: rank %d (host %s) has %u slots of %llu bytes, this rank %d of %zu: "
                     "run every rank with the same --slots and --slot-bytes", l->peer.rank, l->peer.host,
                     (unsigned)h.nslots, (unsigned long long)h.slot_bytes, c->nslots, c->slot_bytes);
        l->err = CB_EUSAGE;
        return;
    }
    l->err = recv_create(c, &l->peer, p->fd, &l->ready);
    if (l->err == CB_OK)
        p->fd = -1;
}

/* 1 when the pending socket is finished with (dispatched or dropped). */
static int pending_step(struct tcp_ctx *c, struct tcp_pending *p)
{
    ssize_t n = recv(p->fd, p->hello + p->got, HELLO_BYTES - p->got, MSG_DONTWAIT);
    if (n > 0)
        p->got += (size_t)n;
    if (p->got == HELLO_BYTES) {
        hello_dispatch(c, p);
        return 1;
    }
    if (n == 0) {
        cb_log_warn("tcp: dropped a connection from %s: it closed before its hello", p->from);
        return 1;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        cb_log_warn("tcp: dropped a connection from %s: %s", p->from, strerror(errno));
        return 1;
    }
    if (cb_now_ms() > p->deadline_ms) {
        cb_log_warn("tcp: dropped a connection from %s: no hello within %d ms", p->from, c->hello_ms);
        return 1;
    }
    return 0;
}

/* Make room for one more: drop the oldest socket still owing its hello (the
 * list is newest first). A flood of idle connections then only ever holds
 * the newest PENDING_MAX, and a real peer's hello, read as soon as it is
 * accepted, is never starved. */
static void pending_evict_oldest(struct tcp_ctx *c)
{
    struct tcp_pending **pp = &c->pending;
    while (*pp && (*pp)->next)
        pp = &(*pp)->next;
    struct tcp_pending *p = *pp;
    if (!p)
        return;
    if (c->nevicted++ == 0)
        cb_log_warn("tcp: more than %d connections owe their hello (a flood of stray connections?): "
                    "dropping the oldest, first %s", PENDING_MAX, p->from);
    *pp = NULL;
    cb_tcp_pending_free(c, p);
}

static void pending_add(struct tcp_ctx *c, int fd, const struct sockaddr_in *from)
{
    char where[INET_ADDRSTRLEN + 8];
    cb_tcp_addr_str(from, where, sizeof where);
    if (c->npending >= PENDING_MAX)
        pending_evict_oldest(c);
    struct tcp_pending *p = calloc(1, sizeof *p);
    if (!p) {
        cb_log_warn("tcp: dropped a connection from %s: out of memory", where);
        close(fd);
        return;
    }
    memcpy(p->from, where, sizeof p->from);
    p->fd = fd;
    p->deadline_ms = cb_now_ms() + c->hello_ms;
    c->npending++;
    if (pending_step(c, p)) {   /* a real peer's hello is usually there already */
        cb_tcp_pending_free(c, p);
        return;
    }
    p->next = c->pending;
    c->pending = p;
}

static cb_status accept_new(struct tcp_ctx *c)
{
    for (;;) {
        struct sockaddr_in from;
        socklen_t len = sizeof from;
        int fd = accept4(c->lfd, (struct sockaddr *)&from, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            pending_add(c, fd, &from);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return CB_OK;
        cb_log_error("tcp: accepting connections on interface %s failed: %s%s", c->ifname,
                     strerror(errno), errno == EMFILE ? "; raise the open-file limit (ulimit -n)" : "");
        return CB_ESYS;
    }
}

static cb_status accept_pump(struct tcp_ctx *c)
{
    cb_status st = accept_new(c);
    struct tcp_pending **pp = &c->pending;
    while (*pp) {
        struct tcp_pending *p = *pp;
        if (pending_step(c, p)) {
            *pp = p->next;
            cb_tcp_pending_free(c, p);
        } else {
            pp = &p->next;
        }
    }
    return st;
}

cb_status tcp_accept(void *lcomm, void **rconn)
{
    struct tcp_listen *l = lcomm;
    *rconn = NULL;
    if (l->accepted) {
        cb_log_error("tcp: accept called again for rank %d (host %s) after it returned the connection",
                     l->peer.rank, l->peer.host);
        return CB_EINTERNAL;
    }
    cb_status st = accept_pump(l->ctx);
    if (st != CB_OK)
        return st;
    if (l->err != CB_OK)
        return l->err;
    if (!l->ready)
        return CB_OK;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l->ready};
    if (epoll_ctl(l->ctx->epfd, EPOLL_CTL_ADD, l->ready->fd, &ev) != 0) {
        cb_log_error("tcp: epoll_ctl for the connection from rank %d (host %s) failed: %s", l->peer.rank,
                     l->peer.host, strerror(errno));
        return CB_ESYS;
    }
    l->ready->next = l->ctx->recvs;
    l->ctx->recvs = l->ready;
    *rconn = l->ready;
    l->ready = NULL;
    l->accepted = 1;
    return CB_OK;
}

cb_status tcp_close_listen(void *lcomm)
{
    struct tcp_listen *l = lcomm;
    if (!l)
        return CB_OK;
    LIST_REMOVE(l->ctx->listens, l);
    cb_tcp_recv_free(l->ready);
    free(l);
    return CB_OK;
}
