/* Shared-memory transport for ranks on one machine.
 *
 * The receiver owns each connection's FIFO: a memfd holding a small control
 * block and nslots slots. The sender maps the receiver's memfd through
 * /proc/PID/fd/N, so it writes (or reduces) straight into the receiver's
 * slots: one pass over the data per hop. A memfd has no name in /dev/shm and
 * is freed when the last mapping goes, so nothing is left behind on any exit
 * path, even when a peer is killed.
 *
 * Each slot starts with its own header (sequence number and size) in the
 * cache line that also holds the first 48 bytes of data, and the receiver
 * polls that sequence number: a small message reaches the peer in one
 * cache-line transfer, with no separate counter or size word to fetch. The
 * sender reads the receiver's release counter only when its cached copy says
 * the FIFO is full.
 *
 * Direct path: a receiver that will only copy a message out (recv_offer)
 * offers its destination, when that is shared memory (alloc_shared, see
 * shm_window.h), in its control block; a sender that finds the offer for the
 * message it is about to write writes into the destination itself and marks
 * the slot SLOT_OFFERED, so each byte is copied once instead of twice. An
 * offer the sender did not see in time costs nothing: it uses the slot.
 *
 * Read path: a sender whose source stays unchanged until the receiver has
 * consumed it (send_lend) puts where it is in the slot instead of
 * the data (SLOT_SOURCE); the receiver maps that window and reads, or
 * reduces from, the sender's buffer itself, so the sender's copy into the
 * slot is saved. It is used even where the receiver offered a destination:
 * the receiver then pulls from the sender's cache, which is cheaper than
 * the sender pushing into the receiver's. */
#include "transport.h"
#include "core/clock.h"
#include "shm_window.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CACHELINE 64
#define LIVENESS_PERIOD_NS 200000000LL   /* check that peers still exist every 0.2 s */

/* The receiver's offer of where message n is to land, at [n % nslots]. */
struct shm_offer {
    _Atomic uint64_t seq;   /* 1 + n: written last */
    int32_t fd;             /* the receiver's window */
    uint32_t pad;
    uint64_t serial, window_bytes, offset, nbytes;
};

struct shm_ctrl {
    _Alignas(CACHELINE) _Atomic uint64_t tail;   /* slots released by the receiver */
    _Alignas(CACHELINE) _Atomic int sender_attached;
    int sender_pid;
    uint8_t token[CB_TOKEN_BYTES];
    uint64_t nslots, slot_bytes;
    _Alignas(CACHELINE) struct shm_offer offers[];   /* [nslots] */
};

/* At the start of every slot; the data follows in the same cache line. */
struct shm_slot_hdr {
    _Atomic uint64_t seq;   /* 1 + the message's number: written last, polled by the receiver */
    uint32_t nbytes;
    uint32_t where;         /* SLOT_DATA, SLOT_OFFERED or SLOT_SOURCE */
};
enum {
    SLOT_DATA,      /* the data follows the header */
    SLOT_OFFERED,   /* the data went to the receiver's offered destination */
    SLOT_SOURCE,    /* a struct shm_source follows: the data is in the sender's window */
};
/* Where the data of a SLOT_SOURCE message is, in the sender's process. */
struct shm_source {
    int32_t fd;
    uint32_t pad;
    uint64_t serial, window_bytes, offset;
};
#define SLOT_DATA_OFFSET sizeof(struct shm_slot_hdr)
/* Below this a message stays on the slot path: reading the offer would cost
 * a cache-line transfer in the latency path, and saves no copy worth it. */
#define DIRECT_MIN_BYTES 8192

struct shm_handle {
    int pid, fd;
    uint64_t map_bytes;
};

struct shm_conn {
    struct shm_ctx *ctx;
    struct cb_peer peer;
    int peer_pid;
    int fd;                  /* receiver: until the sender attached */
    struct shm_ctrl *ctrl;
    size_t map_bytes;
    char *slots;
    uint64_t nslots, slot_bytes, slot_stride;
    size_t ctrl_bytes;
    uint64_t head;           /* sender: messages posted */
    uint64_t tail;           /* receiver: messages released; sender: the receiver's, as last read */
    /* direct path */
    void **offer_dst;        /* receiver: [nslots], the destination offered for message n */
    int direct_out;          /* sender: the slot handed out is the receiver's destination */
    int direct_broken;       /* sender: a window of the receiver could not be mapped: slots only */
    struct shm_peer_maps peer_maps;   /* the other end's windows mapped here */
    struct shm_conn *next_live;
};

struct shm_ctx {
    struct cb_transport_config cfg;
    struct shm_conn *conns;  /* every open connection, for liveness checks */
    long long next_check_ns;
    unsigned polls;          /* progress calls: the clock is read every POLLS_PER_CLOCK */
    struct shm_window *windows;   /* this rank's shared buffers (alloc_shared) */
    uint64_t window_serial;
};
#define POLLS_PER_CLOCK 64

static struct shm_slot_hdr *slot_hdr(const struct shm_conn *c, uint64_t n)
{
    return (struct shm_slot_hdr *)(c->slots + (n % c->nslots) * c->slot_stride);
}

/* Both ends derive the geometry from the same configuration. */
static void set_geometry(struct shm_conn *c, const struct cb_transport_config *cfg)
{
    c->nslots = (uint64_t)cfg->nslots;
    c->slot_bytes = cfg->slot_bytes;
    c->slot_stride = (SLOT_DATA_OFFSET + c->slot_bytes + CACHELINE - 1) & ~(uint64_t)(CACHELINE - 1);
    c->ctrl_bytes = (sizeof(struct shm_ctrl) + c->nslots * sizeof(struct shm_offer) + 4095) & ~(size_t)4095;
}

/* The receiver's memfd holds the FIFO; the sender maps it and allocates none. */
static size_t shm_geometry_bytes(const struct cb_transport_config *cfg, enum cb_conn_end end)
{
    struct shm_conn c;
    set_geometry(&c, cfg);
    return end == CB_END_SEND || end == CB_END_SEND_SHARED ? 0 : c.ctrl_bytes + (size_t)(c.nslots * c.slot_stride);
}

static size_t shm_recv_bytes(void *rconn)
{
    return ((const struct shm_conn *)rconn)->map_bytes;
}

static cb_status shm_init(const struct cb_transport_config *cfg, void **tctx)
{
    if (cfg->slot_bytes % CACHELINE != 0 || cfg->nslots < 2) {
        cb_log_error("shm: slot size must be a multiple of %d bytes and there must be at least 2 slots",
                     CACHELINE);
        return CB_EUSAGE;
    }
    struct shm_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return CB_ENOMEM;
    ctx->cfg = *cfg;
    *tctx = ctx;
    return CB_OK;
}

static void shm_properties(void *tctx, struct cb_props *props)
{
    struct shm_ctx *ctx = tctx;
    props->n = 0;
    cb_props_add(props, "transport", "shm");
    cb_props_add(props, "fifo", "%d x %zu B", ctx->cfg.nslots, ctx->cfg.slot_bytes);
}

static void track(struct shm_ctx *ctx, struct shm_conn *c)
{
    c->next_live = ctx->conns;
    ctx->conns = c;
}

static void untrack(struct shm_ctx *ctx, struct shm_conn *c)
{
    for (struct shm_conn **p = &ctx->conns; *p; p = &(*p)->next_live)
        if (*p == c) {
            *p = c->next_live;
            return;
        }
}

static cb_status map_fifo(struct shm_conn *c, int fd, int create)
{
    c->map_bytes = c->ctrl_bytes + (size_t)(c->nslots * c->slot_stride);
    if (create && ftruncate(fd, (off_t)c->map_bytes) != 0) {
        cb_log_error("shm: cannot size a %zu-byte FIFO for rank %d (host %s): %s; is /dev/shm or memory full?",
                     c->map_bytes, c->peer.rank, c->peer.host, strerror(errno));
        return CB_ENOMEM;
    }
    void *p = mmap(NULL, c->map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        cb_log_error("shm: cannot map the FIFO shared with rank %d (host %s): %s",
                     c->peer.rank, c->peer.host, strerror(errno));
        return CB_ENOMEM;
    }
    c->ctrl = p;
    c->slots = (char *)p + c->ctrl_bytes;
    return CB_OK;
}

static cb_status shm_listen(void *tctx, const struct cb_peer *peer, void *handle, void **lcomm)
{
    struct shm_ctx *ctx = tctx;
    struct shm_conn *c = calloc(1, sizeof *c);
    char name[64];
    cb_status st = CB_ENOMEM;
    if (!c)
        return CB_ENOMEM;
    c->ctx = ctx;
    c->peer = *peer;
    set_geometry(c, &ctx->cfg);
    c->offer_dst = calloc(c->nslots, sizeof *c->offer_dst);
    if (!c->offer_dst)
        goto free_conn;
    snprintf(name, sizeof name, "collbench-%d-from-%d", ctx->cfg.rank, peer->rank);
    c->fd = memfd_create(name, MFD_CLOEXEC);
    if (c->fd < 0) {
        cb_log_error("shm: memfd_create failed: %s; use --transport tcp", strerror(errno));
        st = CB_ESYS;
        goto free_conn;
    }
    fchmod(c->fd, 0600);
    st = map_fifo(c, c->fd, 1);
    if (st != CB_OK)
        goto close_fd;
    memcpy(c->ctrl->token, ctx->cfg.token, CB_TOKEN_BYTES);
    c->ctrl->nslots = c->nslots;
    c->ctrl->slot_bytes = c->slot_bytes;
    struct shm_handle h = {.pid = getpid(), .fd = c->fd, .map_bytes = c->map_bytes};
    memset(handle, 0, CB_HANDLE_BYTES);
    memcpy(handle, &h, sizeof h);
    *lcomm = c;
    return CB_OK;
close_fd:
    close(c->fd);
free_conn:
    free(c->offer_dst);
    free(c);
    return st;
}

static cb_status shm_connect(void *tctx, const struct cb_peer *peer, const void *handle, void **sconn)
{
    struct shm_ctx *ctx = tctx;
    struct shm_handle h;
    char path[64];
    cb_status st = CB_ENOMEM;
    memcpy(&h, handle, sizeof h);
    struct shm_conn *c = calloc(1, sizeof *c);
    if (!c)
        return CB_ENOMEM;
    c->ctx = ctx;
    c->peer = *peer;
    c->peer_pid = h.pid;
    set_geometry(c, &ctx->cfg);
    snprintf(path, sizeof path, "/proc/%d/fd/%d", h.pid, h.fd);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        cb_log_error("shm: cannot open rank %d's shared memory (%s): %s; are both ranks on one "
                     "machine and the same user? use --transport tcp otherwise",
                     peer->rank, path, strerror(errno));
        st = CB_EDEVICE;
        goto free_conn;
    }
    st = map_fifo(c, fd, 0);
    close(fd);
    if (st != CB_OK)
        goto free_conn;
    if (memcmp(c->ctrl->token, ctx->cfg.token, CB_TOKEN_BYTES) != 0 ||
        c->ctrl->nslots != c->nslots || c->ctrl->slot_bytes != c->slot_bytes) {
        cb_log_error("shm: the memory offered by rank %d (host %s) belongs to another job or "
                     "another FIFO geometry", peer->rank, peer->host);
        st = CB_EPEER;
        goto unmap;
    }
    c->ctrl->sender_pid = getpid();
    atomic_store_explicit(&c->ctrl->sender_attached, 1, memory_order_release);
    track(ctx, c);
    *sconn = c;
    return CB_OK;
unmap:
    munmap(c->ctrl, c->map_bytes);
free_conn:
    free(c);
    return st;
}

/* Done once the sender has mapped the FIFO: then our fd can go. */
static cb_status shm_accept(void *lcomm, void **rconn)
{
    struct shm_conn *c = lcomm;
    *rconn = NULL;
    if (!atomic_load_explicit(&c->ctrl->sender_attached, memory_order_acquire))
        return CB_OK;
    c->peer_pid = c->ctrl->sender_pid;
    close(c->fd);
    c->fd = -1;
    track(c->ctx, c);
    *rconn = c;
    return CB_OK;
}

/* A listen that never got its sender; an accepted one is closed by close_recv. */
static cb_status shm_close_listen(void *lcomm)
{
    struct shm_conn *c = lcomm;
    if (c->fd < 0)
        return CB_OK;
    close(c->fd);
    munmap(c->ctrl, c->map_bytes);
    free(c->offer_dst);
    free(c);
    return CB_OK;
}

static cb_status shm_send_slot(void *sconn, void **slot)
{
    struct shm_conn *c = sconn;
    if (c->head - c->tail >= c->nslots)
        c->tail = atomic_load_explicit(&c->ctrl->tail, memory_order_acquire);
    *slot = c->head - c->tail < c->nslots ? (char *)slot_hdr(c, c->head) + SLOT_DATA_OFFSET : NULL;
    c->direct_out = 0;
    return CB_OK;
}

/* The receiver's destination for the next message when it offered one of
 * exactly `nbytes`; NULL otherwise (then the slot is used). */
static char *offered_dst(struct shm_conn *c, size_t nbytes)
{
    const struct shm_offer *o = &c->ctrl->offers[c->head % c->nslots];
    if (nbytes < DIRECT_MIN_BYTES || c->direct_broken ||
        atomic_load_explicit(&o->seq, memory_order_acquire) != c->head + 1 || o->nbytes != nbytes)
        return NULL;
    char why[160];
    char *base = cb_shm_peer_window(&c->peer_maps, c->peer_pid, o->fd, o->serial, o->window_bytes, &c->peer,
                                 why, sizeof why);
    if (!base)
        cb_log_warn("shm: cannot map the buffer %s; data to it goes through the FIFO instead "
                    "(two copies, slower)", why);
    c->direct_broken = !base;
    return base ? base + o->offset : NULL;
}

static cb_status shm_send_slot_for(void *sconn, size_t nbytes, void **slot)
{
    struct shm_conn *c = sconn;
    cb_status st = shm_send_slot(sconn, slot);
    char *dst = *slot ? offered_dst(c, nbytes) : NULL;
    if (dst) {
        *slot = dst;
        c->direct_out = 1;
    }
    return st;
}

/* The slot header of the next message, its sequence number written last. */
static void publish(struct shm_conn *c, size_t nbytes, uint32_t where)
{
    struct shm_slot_hdr *h = slot_hdr(c, c->head);
    h->nbytes = (uint32_t)nbytes;
    h->where = where;
    c->head++;
    atomic_store_explicit(&h->seq, c->head, memory_order_release);
}

static cb_status shm_send_post(void *sconn, size_t nbytes)
{
    struct shm_conn *c = sconn;
    publish(c, nbytes, c->direct_out ? SLOT_OFFERED : SLOT_DATA);
    return CB_OK;
}

static cb_status shm_send_lend(void *sconn, const void *src, size_t nbytes, int *posted)
{
    struct shm_conn *c = sconn;
    const struct shm_window *w = NULL;
    *posted = 0;
    if (nbytes < DIRECT_MIN_BYTES || !(w = cb_shm_window_find(c->ctx->windows, src, nbytes)))
        return CB_OK;
    struct shm_source where = {.fd = w->fd, .serial = w->serial, .window_bytes = w->bytes,
                               .offset = (uint64_t)((const char *)src - (const char *)w->base)};
    memcpy((char *)slot_hdr(c, c->head) + SLOT_DATA_OFFSET, &where, sizeof where);
    publish(c, nbytes, SLOT_SOURCE);
    *posted = 1;
    return CB_OK;
}

/* At most nslots ahead of the last release, so an offer's entry is never one
 * the sender may still read for an earlier message. An offer once made is
 * never changed (the sender may be writing there already): a different one
 * for the same message is refused, and the data lands where the first said. */
static cb_status shm_recv_offer(void *rconn, size_t ahead, void *dst, size_t nbytes, int *accepted)
{
    struct shm_conn *c = rconn;
    uint64_t n = c->tail + ahead;
    struct shm_offer *o = &c->ctrl->offers[n % c->nslots];
    *accepted = 0;
    if (nbytes < DIRECT_MIN_BYTES || ahead >= c->nslots)
        return CB_OK;
    if (atomic_load_explicit(&o->seq, memory_order_relaxed) == n + 1) {
        *accepted = c->offer_dst[n % c->nslots] == dst && o->nbytes == nbytes;
        return CB_OK;
    }
    const struct shm_window *w = cb_shm_window_find(c->ctx->windows, dst, nbytes);
    if (!w)
        return CB_OK;
    *accepted = 1;
    o->fd = w->fd;
    o->serial = w->serial;
    o->window_bytes = w->bytes;
    o->offset = (uint64_t)((const char *)dst - (const char *)w->base);
    o->nbytes = nbytes;
    c->offer_dst[n % c->nslots] = dst;
    atomic_store_explicit(&o->seq, n + 1, memory_order_release);
    return CB_OK;
}

/* The sender's buffer that a SLOT_SOURCE message points at, mapped here. */
static cb_status source_data(struct shm_conn *c, const struct shm_slot_hdr *h, const void **slot)
{
    struct shm_source where;
    memcpy(&where, (const char *)h + SLOT_DATA_OFFSET, sizeof where);
    if (where.offset > where.window_bytes || h->nbytes > where.window_bytes - where.offset) {
        cb_log_error("shm: rank %d (host %s) pointed past the end of its buffer: a protocol bug",
                     c->peer.rank, c->peer.host);
        return CB_EPEER;
    }
    char why[160];
    char *base = cb_shm_peer_window(&c->peer_maps, c->peer_pid, where.fd, where.serial, where.window_bytes,
                                 &c->peer, why, sizeof why);
    if (!base) {
        cb_log_error("shm: cannot map the buffer a message is in: %s; use --transport tcp if this persists",
                     why);
        return CB_ESYS;
    }
    *slot = base + where.offset;
    return CB_OK;
}

static cb_status shm_recv_slot(void *rconn, const void **slot, size_t *nbytes)
{
    struct shm_conn *c = rconn;
    struct shm_slot_hdr *h = slot_hdr(c, c->tail);
    if (atomic_load_explicit(&h->seq, memory_order_acquire) != c->tail + 1) {
        *slot = NULL;
        return CB_OK;
    }
    *nbytes = h->nbytes;
    if (h->where == SLOT_SOURCE)
        return source_data(c, h, slot);
    *slot = h->where == SLOT_OFFERED ? c->offer_dst[c->tail % c->nslots] : (char *)h + SLOT_DATA_OFFSET;
    return CB_OK;
}

static cb_status shm_recv_release(void *rconn)
{
    struct shm_conn *c = rconn;
    c->tail++;
    atomic_store_explicit(&c->ctrl->tail, c->tail, memory_order_release);
    return CB_OK;
}

/* Nothing moves by itself in shared memory; progress only notices dead peers. */
static cb_status shm_progress(void *tctx)
{
    struct shm_ctx *ctx = tctx;
    if (++ctx->polls % POLLS_PER_CLOCK != 0)
        return CB_OK;
    long long now = cb_now_ns();
    if (now < ctx->next_check_ns)
        return CB_OK;
    ctx->next_check_ns = now + LIVENESS_PERIOD_NS;
    for (struct shm_conn *c = ctx->conns; c; c = c->next_live) {
        if (c->peer_pid > 0 && kill(c->peer_pid, 0) != 0 && errno == ESRCH) {
            cb_log_error("shm: rank %d (host %s, pid %d) has exited; it probably crashed or was killed",
                         c->peer.rank, c->peer.host, c->peer_pid);
            return CB_EPEER;
        }
    }
    return CB_OK;
}

static cb_status shm_send_idle(void *sconn, int *idle)
{
    struct shm_conn *c = sconn;
    *idle = atomic_load_explicit(&c->ctrl->tail, memory_order_acquire) == c->head;
    return CB_OK;
}

static cb_status close_conn(void *conn)
{
    struct shm_conn *c = conn;
    if (!c)
        return CB_OK;
    untrack(c->ctx, c);
    cb_shm_peer_unmap_all(&c->peer_maps);
    munmap(c->ctrl, c->map_bytes);
    free(c->offer_dst);
    free(c);
    return CB_OK;
}

static void *shm_alloc_shared(void *tctx, size_t bytes)
{
    struct shm_ctx *ctx = tctx;
    return cb_shm_window_alloc(&ctx->windows, &ctx->window_serial, bytes);
}

static void shm_free_shared(void *tctx, void *p)
{
    struct shm_ctx *ctx = tctx;
    cb_shm_window_free(&ctx->windows, p);
}

static void shm_finalize(void *tctx)
{
    struct shm_ctx *ctx = tctx;
    while (ctx->windows)   /* buffers nobody freed */
        cb_shm_window_free(&ctx->windows, ctx->windows->base);
    free(ctx);
}

const struct cb_transport_ops cb_transport_shm = {
    .name = "shm",
    .usable = cb_transport_always_usable,
    .init = shm_init,
    .properties = shm_properties,
    .listen = shm_listen,
    .connect = shm_connect,
    .accept = shm_accept,
    .close_listen = shm_close_listen,
    .send_slot = shm_send_slot_for,
    .send_post = shm_send_post,
    .recv_slot = shm_recv_slot,
    .recv_release = shm_recv_release,
    .recv_expect = cb_transport_no_expect,
    .progress = shm_progress,
    .send_idle = shm_send_idle,
    .alloc_shared = shm_alloc_shared,
    .free_shared = shm_free_shared,
    .recv_offer = shm_recv_offer,
    .send_lend = shm_send_lend,
    .port_events = cb_transport_no_port_events,
    .reply = cb_transport_no_reply,
    .take_reply = cb_transport_no_take_reply,
    .caps = {.lends = 1, .takes_offers = 1, .slot_is_peer_memory = 1},
    .send_bytes = cb_transport_no_buffers,
    .recv_bytes = shm_recv_bytes,
    .geometry_bytes = shm_geometry_bytes,
    .shared_bytes = cb_transport_no_shared_buffers,
    .shared_geometry_bytes = cb_transport_no_shared_geometry,
    .reserve_shared = cb_transport_no_reserve,
    .close_send = close_conn,
    .close_recv = close_conn,
    .finalize = shm_finalize,
};
