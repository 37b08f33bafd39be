/* TCP transport: sockets between any two hosts, the baseline and the fallback.
 *
 * Each context listens on one socket bound to the chosen interface's IPv4
 * address; listen() only names a listen id, and accepted connections are
 * demultiplexed by the id and rank their hello presents. Every socket is
 * non-blocking: no call waits in the kernel.
 *
 * Handle (CB_HANDLE_BYTES, integers big-endian, the rest zero):
 *   0 u32 magic "CBTL" | 4 u16 version | 6 u16 port | 8 u32 IPv4 address |
 *   12 u32 listen id | 16 u32 rank of the listener
 * Hello, the first bytes a connector sends (HELLO_BYTES):
 *   0 u32 magic "CBTH" | 4 u16 version | 6 u16 0 | 8 token[16] | 24 u32 rank |
 *   28 u32 listen id | 32 u32 nslots | 36 u32 0 | 40 u64 slot_bytes
 * Then per message an 8-byte big-endian length and the payload. A length of
 * UINT64_MAX is the goodbye close_send() writes after a clean finish: EOF
 * after it is an orderly close, EOF without it a crash.
 *
 * Sender: payloads go from the slot straight into the socket (sendmsg with
 * header and payload iovecs, several messages per call). Receiver: a payload
 * whose header is known is read straight into its slot, together with up to
 * LOOKAHEAD bytes past it, so the next header (and whole small messages)
 * come in the same call; only those lookahead bytes are copied.
 *
 * How the contract maps onto TCP: a send slot is free again once its bytes
 * are in the kernel (TCP's window is the flow control), so send_slot()
 * returns NULL only while every slot is posted and unwritten; send_idle() is
 * 1 when nothing posted waits in user space (the kernel delivers it even
 * after close). The state of an unfinished connect() lives in the context,
 * found again by the handle, which is const. */
#include "transport.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define HANDLE_MAGIC 0x4342544cu   /* "CBTL" */
#define HELLO_MAGIC 0x43425448u    /* "CBTH" */
#define PROTO_VERSION 1
#define HANDLE_USED 20
#define HELLO_BYTES 48
#define HDR_BYTES 8
#define MSG_BYE UINT64_MAX
#define LOOKAHEAD 4096             /* read past a payload: next header, small messages */
#define SOCKBUF_BYTES (4 << 20)
#define MAX_IOV 64
#define PENDING_MAX 256            /* accepted sockets still owing their hello */
#define HELLO_WAIT_MS 10000        /* when the config gives no timeout */
#define SLOT_ALIGN 64

_Static_assert(HANDLE_USED <= CB_HANDLE_BYTES, "tcp handle does not fit");

#define LIST_REMOVE(head, item)                                  \
    do {                                                         \
        __typeof__(item) *pp_ = &(head);                         \
        while (*pp_ && *pp_ != (item))                           \
            pp_ = &(*pp_)->next;                                 \
        if (*pp_)                                                \
            *pp_ = (item)->next;                                 \
    } while (0)

struct tcp_ctx;

enum tx_state { TX_CONNECTING, TX_HELLO, TX_READY };

struct tcp_send {
    struct tcp_send *next;
    struct tcp_ctx *ctx;
    struct cb_peer peer;
    int fd;
    enum tx_state state;
    struct sockaddr_in dst;
    uint32_t listen_id;
    uint8_t hello[HELLO_BYTES];
    size_t hello_sent;
    uint8_t *slots;            /* nslots * stride */
    uint64_t *hdr;             /* big-endian length of each queued slot */
    size_t stride, slot_bytes;
    int nslots, head, nqueued, slot_out;
    size_t off;                /* bytes of the head message already in the kernel */
    cb_status err;             /* sticky, logged when first seen */
};

struct tcp_recv {
    struct tcp_recv *next;
    struct tcp_ctx *ctx;
    struct cb_peer peer;
    int fd;
    uint8_t *slots;
    size_t *len;
    size_t stride, slot_bytes;
    int nslots, head, nfull;   /* nfull complete slots from head */
    uint8_t hdr[HDR_BYTES];
    size_t hdr_got;
    int in_payload;            /* header known; the slot after the full ones is being filled */
    size_t plen, pgot;
    size_t la_pos, la_end;
    int bye;
    cb_status err;
    uint8_t la[LOOKAHEAD];
};

struct tcp_listen {
    struct tcp_listen *next;
    struct tcp_ctx *ctx;
    struct cb_peer peer;
    uint32_t id;
    struct tcp_recv *ready;    /* verified, not yet returned by accept() */
    cb_status err;
    int accepted;
};

struct tcp_pending {
    struct tcp_pending *next;
    int fd;
    char from[INET_ADDRSTRLEN + 8];
    uint8_t hello[HELLO_BYTES];
    size_t got;
    long long deadline_ms;
};

struct tcp_ctx {
    int rank, nslots, timeout_ms;
    size_t slot_bytes;
    uint8_t token[CB_TOKEN_BYTES];
    char ifname[IF_NAMESIZE];
    struct in_addr addr;
    int sockbuf;               /* SO_SNDBUF/SO_RCVBUF, 0 = kernel autotuning */
    int lfd;
    uint16_t port;
    uint32_t next_id;
    int npending;
    struct tcp_listen *listens;
    struct tcp_pending *pending;
    struct tcp_send *sends;    /* connecting and connected */
    struct tcp_recv *recvs;    /* returned by accept() */
};

/* ---- small helpers ---- */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put32(uint8_t *p, uint32_t v)
{
    v = htobe32(v);
    memcpy(p, &v, 4);
}

static void put16(uint8_t *p, uint16_t v)
{
    v = htobe16(v);
    memcpy(p, &v, 2);
}

static void put64(uint8_t *p, uint64_t v)
{
    v = htobe64(v);
    memcpy(p, &v, 8);
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return be32toh(v);
}

static uint16_t get16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return be16toh(v);
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return be64toh(v);
}

/* Constant time, so the token cannot be guessed byte by byte. */
static int token_equal(const uint8_t *a, const uint8_t *b)
{
    uint8_t d = 0;
    for (int i = 0; i < CB_TOKEN_BYTES; i++)
        d |= (uint8_t)(a[i] ^ b[i]);
    return d == 0;
}

static void addr_str(const struct sockaddr_in *sa, char *out, size_t cap)
{
    char ip[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof ip);
    snprintf(out, cap, "%s:%u", ip, (unsigned)ntohs(sa->sin_port));
}

/* Slots are 64-byte aligned, page-aligned as a whole, and touched once now so
 * the first timed iteration takes no page faults. */
static cb_status slots_alloc(int nslots, size_t slot_bytes, const struct cb_peer *peer,
                             uint8_t **slots, size_t *stride)
{
    *stride = (slot_bytes + SLOT_ALIGN - 1) & ~(size_t)(SLOT_ALIGN - 1);
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
static cb_status io_error(const struct cb_peer *peer, const char *what, int err)
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

/* Large fixed buffers only where the system allows them in full: setting
 * SO_RCVBUF turns off autotuning, so a capped size would be worse than none. */
static long read_long_file(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = -1;
    if (!f)
        return -1;
    if (fscanf(f, "%ld", &v) != 1)
        v = -1;
    fclose(f);
    return v;
}

static int sockbuf_allowed(void)
{
    long r = read_long_file("/proc/sys/net/core/rmem_max");
    long w = read_long_file("/proc/sys/net/core/wmem_max");
    return r >= SOCKBUF_BYTES && w >= SOCKBUF_BYTES ? SOCKBUF_BYTES : 0;
}

/* Best effort: a refused option costs speed, not correctness. */
static void socket_tune(const struct tcp_ctx *c, int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (c->sockbuf > 0) {
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &c->sockbuf, sizeof c->sockbuf);
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &c->sockbuf, sizeof c->sockbuf);
    }
}

/* ---- interface choice ---- */

static int ifa_ipv4(const struct ifaddrs *ifa)
{
    return ifa->ifa_addr && ifa->ifa_addr->sa_family == AF_INET;
}

static struct in_addr ifa_in(const struct ifaddrs *ifa)
{
    struct sockaddr_in sa;
    memcpy(&sa, ifa->ifa_addr, sizeof sa);
    return sa.sin_addr;
}

/* "eth0 192.0.2.2 (up), lo 127.0.0.1 (up)" for error messages. */
static void iface_list(const struct ifaddrs *all, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (const struct ifaddrs *ifa = all; ifa && n < cap; ifa = ifa->ifa_next) {
        if (!ifa_ipv4(ifa))
            continue;
        char ip[INET_ADDRSTRLEN];
        struct in_addr a = ifa_in(ifa);
        inet_ntop(AF_INET, &a, ip, sizeof ip);
        int k = snprintf(out + n, cap - n, "%s%s %s (%s)", n ? ", " : "", ifa->ifa_name, ip,
                         (ifa->ifa_flags & IFF_UP) ? "up" : "down");
        if (k < 0)
            break;
        n += (size_t)k;
    }
    if (!out[0])
        snprintf(out, cap, "none");
}

static void iface_take(struct tcp_ctx *c, const struct ifaddrs *ifa)
{
    snprintf(c->ifname, sizeof c->ifname, "%s", ifa->ifa_name);
    c->addr = ifa_in(ifa);
}

static cb_status iface_named(struct tcp_ctx *c, const struct ifaddrs *all, const char *want)
{
    struct in_addr a;
    int is_addr = inet_pton(AF_INET, want, &a) == 1;
    char list[512];
    for (const struct ifaddrs *ifa = all; ifa; ifa = ifa->ifa_next) {
        if (!ifa_ipv4(ifa))
            continue;
        if (is_addr ? ifa_in(ifa).s_addr != a.s_addr : strcmp(ifa->ifa_name, want) != 0)
            continue;
        if (!(ifa->ifa_flags & IFF_UP)) {
            cb_log_error("tcp: interface %s (--tcp-if %s) is down: bring it up or choose another",
                         ifa->ifa_name, want);
            return CB_EDEVICE;
        }
        iface_take(c, ifa);
        return CB_OK;
    }
    iface_list(all, list, sizeof list);
    cb_log_error("tcp: no IPv4 interface %s '%s' on this host; give --tcp-if an interface name or address "
                 "from: %s", is_addr ? "with address" : "named", want, list);
    return CB_EDEVICE;
}

static cb_status iface_auto(struct tcp_ctx *c, const struct ifaddrs *all)
{
    for (const struct ifaddrs *ifa = all; ifa; ifa = ifa->ifa_next) {
        if (ifa_ipv4(ifa) && (ifa->ifa_flags & IFF_UP) && !(ifa->ifa_flags & IFF_LOOPBACK)) {
            iface_take(c, ifa);
            return CB_OK;
        }
    }
    for (const struct ifaddrs *ifa = all; ifa; ifa = ifa->ifa_next) {
        if (ifa_ipv4(ifa) && (ifa->ifa_flags & IFF_LOOPBACK) &&
            ifa_in(ifa).s_addr == htonl(INADDR_LOOPBACK)) {
            iface_take(c, ifa);
            break;
        }
    }
    if (!c->ifname[0]) {
        snprintf(c->ifname, sizeof c->ifname, "lo");
        c->addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    cb_log_warn("tcp: no non-loopback IPv4 interface is up; listening on 127.0.0.1, which reaches "
                "only ranks on this host");
    return CB_OK;
}

static cb_status iface_pick(struct tcp_ctx *c, const char *want)
{
    struct ifaddrs *all = NULL;
    if (getifaddrs(&all) != 0) {
        cb_log_error("tcp: cannot list network interfaces (getifaddrs): %s", strerror(errno));
        return CB_ESYS;
    }
    cb_status st = want[0] ? iface_named(c, all, want) : iface_auto(c, all);
    freeifaddrs(all);
    return st;
}

/* ---- init, properties, finalize ---- */

static cb_status listener_open(struct tcp_ctx *c)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = c->addr};
    socklen_t len = sizeof sa;
    char where[INET_ADDRSTRLEN + 8];
    addr_str(&sa, where, sizeof where);
    c->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->lfd < 0) {
        cb_log_error("tcp: cannot create a socket: %s", strerror(errno));
        return CB_ESYS;
    }
    socket_tune(c, c->lfd);   /* before listen: accepted sockets inherit the window scale */
    if (bind(c->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(c->lfd, SOMAXCONN) != 0 ||
        getsockname(c->lfd, (struct sockaddr *)&sa, &len) != 0) {
        cb_log_error("tcp: cannot listen on %s (interface %s): %s; choose another interface with --tcp-if",
                     where, c->ifname, strerror(errno));
        goto close_socket;
    }
    c->port = ntohs(sa.sin_port);
    return CB_OK;
close_socket:
    close(c->lfd);
    c->lfd = -1;
    return CB_EDEVICE;
}

static cb_status config_check(const struct cb_transport_config *cfg)
{
    if (cfg->nslots < 1 || cfg->slot_bytes == 0 || cfg->slot_bytes > ((size_t)1 << 40)) {
        cb_log_error("tcp: need at least 1 slot of 1 byte or more (got %d slots of %zu bytes)",
                     cfg->nslots, cfg->slot_bytes);
        return CB_EUSAGE;
    }
    return CB_OK;
}

static cb_status tcp_init(const struct cb_transport_config *cfg, void **tctx)
{
    *tctx = NULL;
    cb_status st = config_check(cfg);
    if (st != CB_OK)
        return st;
    struct tcp_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        cb_log_error("tcp: out of memory creating the transport context");
        return CB_ENOMEM;
    }
    c->rank = cfg->rank;
    c->nslots = cfg->nslots;
    c->slot_bytes = cfg->slot_bytes;
    c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : HELLO_WAIT_MS;
    c->next_id = 1;
    c->lfd = -1;
    memcpy(c->token, cfg->token, CB_TOKEN_BYTES);
    st = iface_pick(c, cfg->tcp_if);
    if (st != CB_OK)
        goto free_ctx;
    c->sockbuf = sockbuf_allowed();
    st = listener_open(c);
    if (st != CB_OK)
        goto free_ctx;
    *tctx = c;
    return CB_OK;
free_ctx:
    free(c);
    return st;
}

__attribute__((format(printf, 3, 4)))
static void props_add(struct cb_props *p, const char *key, const char *fmt, ...)
{
    if (p->n >= CB_PROPS_MAX)
        return;
    va_list ap;
    snprintf(p->kv[p->n].key, sizeof p->kv[p->n].key, "%s", key);
    va_start(ap, fmt);
    vsnprintf(p->kv[p->n].val, sizeof p->kv[p->n].val, fmt, ap);
    va_end(ap);
    p->n++;
}

static long sysfs_net_long(const char *ifname, const char *attr)
{
    char path[128];
    snprintf(path, sizeof path, "/sys/class/net/%s/%s", ifname, attr);
    return read_long_file(path);
}

static void tcp_properties(void *tctx, struct cb_props *props)
{
    const struct tcp_ctx *c = tctx;
    char ip[INET_ADDRSTRLEN] = "?";
    long mtu = sysfs_net_long(c->ifname, "mtu");
    long speed = sysfs_net_long(c->ifname, "speed");   /* Mb/s; -1 or unreadable if unknown */
    inet_ntop(AF_INET, &c->addr, ip, sizeof ip);
    props->n = 0;
    props_add(props, "transport", "tcp");
    props_add(props, "interface", "%s", c->ifname);
    props_add(props, "address", "%s", ip);
    if (mtu > 0)
        props_add(props, "mtu", "%ld", mtu);
    if (speed > 0 && speed % 1000 == 0)
        props_add(props, "rate", "%ld Gb/s", speed / 1000);
    else if (speed > 0)
        props_add(props, "rate", "%ld Mb/s", speed);
    if (c->sockbuf > 0)
        props_add(props, "socket_buffers", "%d MiB", c->sockbuf >> 20);
    else
        props_add(props, "socket_buffers", "autotuned");
}

static void send_free(struct tcp_send *s);
static void recv_free(struct tcp_recv *r);

static void pending_free(struct tcp_ctx *c, struct tcp_pending *p)
{
    if (p->fd >= 0)
        close(p->fd);
    c->npending--;
    free(p);
}

static void free_conns(struct tcp_ctx *c)
{
    while (c->sends) {
        struct tcp_send *s = c->sends;
        c->sends = s->next;
        send_free(s);
    }
    while (c->recvs) {
        struct tcp_recv *r = c->recvs;
        c->recvs = r->next;
        recv_free(r);
    }
}

static void free_listens(struct tcp_ctx *c)
{
    while (c->listens) {
        struct tcp_listen *l = c->listens;
        c->listens = l->next;
        recv_free(l->ready);
        free(l);
    }
    while (c->pending) {
        struct tcp_pending *p = c->pending;
        c->pending = p->next;
        pending_free(c, p);
    }
}

/* Connections still open are closed without the goodbye: peers see a crash. */
static void tcp_finalize(void *tctx)
{
    struct tcp_ctx *c = tctx;
    if (!c)
        return;
    free_conns(c);
    free_listens(c);
    if (c->lfd >= 0)
        close(c->lfd);
    free(c);
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

static void send_free(struct tcp_send *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    free(s->hdr);
    free(s->slots);
    free(s);
}

static cb_status connect_error(struct tcp_send *s, int err)
{
    char where[INET_ADDRSTRLEN + 8];
    addr_str(&s->dst, where, sizeof where);
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
    socket_tune(s->ctx, s->fd);
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
    st = slots_alloc(c->nslots, c->slot_bytes, peer, &s->slots, &s->stride);
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
    send_free(s);
    return st;
}

/* Non-blocking connect finished? State moves to TX_HELLO when it did. */
static cb_status connect_poll(struct tcp_send *s)
{
    struct pollfd p = {.fd = s->fd, .events = POLLOUT};
    int n = poll(&p, 1, 0);
    if (n < 0 && errno != EINTR)
        return io_error(&s->peer, "connecting to", errno);
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
                   ? CB_OK : io_error(&s->peer, "greeting", errno);
    s->hello_sent += (size_t)n;
    if (s->hello_sent == HELLO_BYTES)
        s->state = TX_READY;
    return CB_OK;
}

static cb_status connect_step(struct tcp_send *s)
{
    cb_status st = CB_OK;
    if (s->state == TX_CONNECTING)
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

static cb_status tcp_connect(void *tctx, const struct cb_peer *peer, const void *handle, void **sconn)
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
        send_free(s);
        return st;
    }
    if (s->state == TX_READY)
        *sconn = s;
    return CB_OK;
}

/* ---- receiver: listen and accept ---- */

static cb_status tcp_listen(void *tctx, const struct cb_peer *peer, void *handle, void **lcomm)
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

static void recv_free(struct tcp_recv *r)
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
    st = slots_alloc(c->nslots, c->slot_bytes, peer, &r->slots, &r->stride);
    if (st != CB_OK)
        goto free_conn;
    r->fd = fd;
    socket_tune(c, fd);
    *out = r;
    return CB_OK;
free_conn:
    recv_free(r);
    return st;
}

static struct tcp_listen *listen_find(struct tcp_ctx *c, uint32_t id)
{
    for (struct tcp_listen *l = c->listens; l; l = l->next)
        if (l->id == id)
            return l;
    return NULL;
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
    if (h.slot_bytes > c->slot_bytes) {
        cb_log_error("tcp: rank %d (host %s) sends slots of %llu bytes, more than this rank's %zu: "
                     "run every rank with the same slot size", l->peer.rank, l->peer.host,
                     (unsigned long long)h.slot_bytes, c->slot_bytes);
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
    if (now_ms() > p->deadline_ms) {
        cb_log_warn("tcp: dropped a connection from %s: no hello within %d ms", p->from, c->timeout_ms);
        return 1;
    }
    return 0;
}

static void pending_add(struct tcp_ctx *c, int fd, const struct sockaddr_in *from)
{
    char where[INET_ADDRSTRLEN + 8];
    addr_str(from, where, sizeof where);
    struct tcp_pending *p = c->npending < PENDING_MAX ? calloc(1, sizeof *p) : NULL;
    if (!p) {
        cb_log_warn("tcp: dropped a connection from %s: %s", where,
                    c->npending >= PENDING_MAX ? "too many connections owe their hello" : "out of memory");
        close(fd);
        return;
    }
    memcpy(p->from, where, sizeof p->from);
    p->fd = fd;
    p->deadline_ms = now_ms() + c->timeout_ms;
    p->next = c->pending;
    c->pending = p;
    c->npending++;
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
            pending_free(c, p);
        } else {
            pp = &p->next;
        }
    }
    return st;
}

static cb_status tcp_accept(void *lcomm, void **rconn)
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
    l->ready->next = l->ctx->recvs;
    l->ctx->recvs = l->ready;
    *rconn = l->ready;
    l->ready = NULL;
    l->accepted = 1;
    return CB_OK;
}

static cb_status tcp_close_listen(void *lcomm)
{
    struct tcp_listen *l = lcomm;
    if (!l)
        return CB_OK;
    LIST_REMOVE(l->ctx->listens, l);
    recv_free(l->ready);
    free(l);
    return CB_OK;
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
            s->err = io_error(&s->peer, "sending to", errno);
            break;
        }
        tx_advance(s, (size_t)n);
        if ((size_t)n < want)
            return CB_OK;   /* the socket buffer is full */
    }
    return s->err;
}

static cb_status tcp_send_slot(void *sconn, void **slot)
{
    struct tcp_send *s = sconn;
    *slot = NULL;
    if (!s->slot_out && s->nqueued == s->nslots)
        tx_pump(s);
    if (s->err != CB_OK)
        return s->err;
    if (!s->slot_out && s->nqueued == s->nslots)
        return CB_OK;
    s->slot_out = 1;
    *slot = s->slots + (size_t)((s->head + s->nqueued) % s->nslots) * s->stride;
    return CB_OK;
}

static cb_status tcp_send_post(void *sconn, size_t nbytes)
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
    return tx_pump(s);
}

/* Everything posted is in the kernel (which delivers it even after close);
 * TCP cannot tell when the receiver consumed it without acknowledgements. */
static cb_status tcp_send_idle(void *sconn, int *idle)
{
    struct tcp_send *s = sconn;
    cb_status st = tx_pump(s);
    *idle = st == CB_OK && s->nqueued == 0;
    return st;
}

static cb_status tcp_close_send(void *sconn)
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
    LIST_REMOVE(s->ctx->sends, s);
    send_free(s);
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
        return r->err = io_error(&r->peer, "receiving from", errno);
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

static cb_status tcp_recv_slot(void *rconn, const void **slot, size_t *nbytes)
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

static cb_status tcp_recv_release(void *rconn)
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

static cb_status tcp_close_recv(void *rconn)
{
    struct tcp_recv *r = rconn;
    if (!r)
        return CB_OK;
    LIST_REMOVE(r->ctx->recvs, r);
    recv_free(r);
    return CB_OK;
}

static cb_status tcp_progress(void *tctx)
{
    struct tcp_ctx *c = tctx;
    for (struct tcp_send *s = c->sends; s; s = s->next) {
        if (s->state == TX_READY && tx_pump(s) != CB_OK)
            return s->err;
    }
    for (struct tcp_recv *r = c->recvs; r; r = r->next) {
        if (rx_pump(r) != CB_OK)
            return r->err;
    }
    return CB_OK;
}

const struct cb_transport_ops cb_transport_tcp = {
    .name = "tcp",
    .init = tcp_init,
    .properties = tcp_properties,
    .listen = tcp_listen,
    .connect = tcp_connect,
    .accept = tcp_accept,
    .close_listen = tcp_close_listen,
    .send_slot = tcp_send_slot,
    .send_post = tcp_send_post,
    .recv_slot = tcp_recv_slot,
    .recv_release = tcp_recv_release,
    .progress = tcp_progress,
    .send_idle = tcp_send_idle,
    .close_send = tcp_close_send,
    .close_recv = tcp_close_recv,
    .finalize = tcp_finalize,
};
