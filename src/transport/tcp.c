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
 * found again by the handle, which is const.
 *
 * Files: this one (interface choice, init, properties, finalize, the ops
 * table), tcp_conn.c (handles, hellos, connect, listen, accept and the token
 * check), tcp_fifo.c (slots, the send and receive data paths, progress,
 * close); tcp_internal.h holds what they share. */
#include "tcp_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- small helpers ---- */

void cb_tcp_addr_str(const struct sockaddr_in *sa, char *out, size_t cap)
{
    char ip[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof ip);
    snprintf(out, cap, "%s:%u", ip, (unsigned)ntohs(sa->sin_port));
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
void cb_tcp_socket_tune(const struct tcp_ctx *c, int fd)
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
    cb_tcp_addr_str(&sa, where, sizeof where);
    c->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->lfd < 0) {
        cb_log_error("tcp: cannot create a socket: %s", strerror(errno));
        return CB_ESYS;
    }
    cb_tcp_socket_tune(c, c->lfd);   /* before listen: accepted sockets inherit the window scale */
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
    c->hello_ms = cfg->timeout_ms > 0 && cfg->timeout_ms < HELLO_WAIT_MS ? cfg->timeout_ms : HELLO_WAIT_MS;
    c->next_id = 1;
    c->lfd = -1;
    memcpy(c->token, cfg->token, CB_TOKEN_BYTES);
    st = iface_pick(c, cfg->tcp_if);
    if (st != CB_OK)
        goto free_ctx;
    c->sockbuf = sockbuf_allowed();
    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (c->epfd < 0) {
        cb_log_error("tcp: epoll_create1 failed: %s", strerror(errno));
        st = CB_ESYS;
        goto free_ctx;
    }
    st = listener_open(c);
    if (st != CB_OK)
        goto close_epoll;
    *tctx = c;
    return CB_OK;
close_epoll:
    close(c->epfd);
free_ctx:
    free(c);
    return st;
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
    cb_props_add(props, "transport", "tcp");
    cb_props_add(props, "interface", "%s", c->ifname);
    cb_props_add(props, "address", "%s", ip);
    if (mtu > 0)
        cb_props_add(props, "mtu", "%ld", mtu);
    if (speed > 0 && speed % 1000 == 0)
        cb_props_add(props, "rate", "%ld Gb/s", speed / 1000);
    else if (speed > 0)
        cb_props_add(props, "rate", "%ld Mb/s", speed);
    if (c->sockbuf > 0)
        cb_props_add(props, "socket_buffers", "%d MiB", c->sockbuf >> 20);
    else
        cb_props_add(props, "socket_buffers", "autotuned");
}

static void free_conns(struct tcp_ctx *c)
{
    while (c->sends) {
        struct tcp_send *s = c->sends;
        c->sends = s->next;
        cb_tcp_send_free(s);
    }
    while (c->recvs) {
        struct tcp_recv *r = c->recvs;
        c->recvs = r->next;
        cb_tcp_recv_free(r);
    }
}

static void free_listens(struct tcp_ctx *c)
{
    while (c->listens) {
        struct tcp_listen *l = c->listens;
        c->listens = l->next;
        cb_tcp_recv_free(l->ready);
        free(l);
    }
    while (c->pending) {
        struct tcp_pending *p = c->pending;
        c->pending = p->next;
        cb_tcp_pending_free(c, p);
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
    close(c->epfd);
    free(c);
}

/* Each end has its own slots: the sender fills them, the receiver reads into them. */
static size_t tcp_geometry_bytes(const struct cb_transport_config *cfg, enum cb_conn_end end)
{
    (void)end;
    return cb_tcp_slot_stride(cfg->slot_bytes) * (size_t)cfg->nslots;
}

static size_t tcp_send_bytes(void *sconn)
{
    const struct tcp_send *s = sconn;
    return s->stride * (size_t)s->nslots;
}

static size_t tcp_recv_bytes(void *rconn)
{
    const struct tcp_recv *r = rconn;
    return r->stride * (size_t)r->nslots;
}

const struct cb_transport_ops cb_transport_tcp = {
    .name = "tcp",
    .usable = cb_transport_always_usable,
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
    .recv_expect = cb_transport_no_expect,
    .progress = tcp_progress,
    .send_idle = tcp_send_idle,
    .alloc_shared = cb_transport_plain_alloc,
    .free_shared = cb_transport_plain_free,
    .recv_offer = cb_transport_no_offer,
    .send_lend = cb_transport_no_lend,
    .port_events = cb_transport_no_port_events,
    .reply = cb_transport_no_reply,
    .take_reply = cb_transport_no_take_reply,
    .caps = {0},
    .send_bytes = tcp_send_bytes,
    .recv_bytes = tcp_recv_bytes,
    .geometry_bytes = tcp_geometry_bytes,
    .shared_bytes = cb_transport_no_shared_buffers,
    .shared_geometry_bytes = cb_transport_no_shared_geometry,
    .reserve_shared = cb_transport_no_reserve,
    .close_send = tcp_close_send,
    .close_recv = tcp_close_recv,
    .finalize = tcp_finalize,
};
