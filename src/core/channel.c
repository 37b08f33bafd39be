/* Slot waits with a timeout, and the data-moving primitives. */
#include "channel.h"
#include "clock.h"

#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define SPINS_BEFORE_YIELD 256   /* a rank alone on its core spins: fastest */
#define SPINS_PER_CLOCK 256      /* read the clock rarely: it costs more than a poll */
#define POLITE_NAP_AFTER 2048    /* oversubscribed: yield first, then nap */
#define POLITE_SLEEP_NS 20000    /* oversubscribed: sleep so the rank we wait for can run */

struct waiter {
    long spins;
    double deadline;
};

/* Returns 1 when the deadline passed. With more ranks than cores, a spinning
 * rank steals the time slice of the rank it waits for (sched_yield does not
 * hand it over under CFS), so such ranks sleep between polls. */
static int waiter_tick(struct waiter *w, int timeout_ms, int oversubscribed)
{
    w->spins++;
    if (oversubscribed && w->spins > POLITE_NAP_AFTER) {
        struct timespec nap = {0, POLITE_SLEEP_NS};
        nanosleep(&nap, NULL);
    } else if (oversubscribed || w->spins % SPINS_BEFORE_YIELD == 0) {
        sched_yield();
    }
    if (w->spins % SPINS_PER_CLOCK != 0)
        return 0;
    double t = cb_now_s();
    if (w->deadline == 0)
        w->deadline = t + timeout_ms / 1000.0;
    return t > w->deadline;
}

/* The next slot for a message of nbytes: the receiver's own destination
 * where the transport has a direct path and the receiver offered it. */
static cb_status send_slot(struct cb_send_chan *s, size_t nbytes, void **slot)
{
    return s->ops->send_slot(s->conn, nbytes, slot);
}

cb_status cb_chan_wait_send(struct cb_send_chan *s, size_t nbytes, void **slot)
{
    struct waiter w = {0, 0};
    for (;;) {
        cb_status st = send_slot(s, nbytes, slot);
        if (st != CB_OK || *slot)
            return st;
        st = cb_chan_progress(s->ops, s->tctx, s->other_ops, s->other_tctx);
        if (st != CB_OK)
            return st;
        if (waiter_tick(&w, s->timeout_ms, s->oversubscribed)) {
            cb_log_error("timed out after %d s waiting for rank %d (host %s) to take data we sent; "
                         "is it alive? raise -T if it is just slow",
                         s->timeout_ms / 1000, s->peer.rank, s->peer.host);
            return CB_ETIMEOUT;
        }
    }
}

cb_status cb_chan_wait_recv(struct cb_recv_chan *r, const void **slot, size_t *nbytes)
{
    struct waiter w = {0, 0};
    for (;;) {
        cb_status st = r->ops->recv_slot(r->conn, slot, nbytes);
        if (st != CB_OK || *slot)
            return st;
        st = cb_chan_progress(r->ops, r->tctx, r->other_ops, r->other_tctx);
        if (st != CB_OK)
            return st;
        if (waiter_tick(&w, r->timeout_ms, r->oversubscribed)) {
            cb_log_error("timed out after %d s waiting for data from rank %d (host %s); "
                         "is it alive? raise -T if it is just slow",
                         r->timeout_ms / 1000, r->peer.rank, r->peer.host);
            return CB_ETIMEOUT;
        }
    }
}

static size_t slice_len(size_t done, size_t bytes, size_t slot_bytes)
{
    size_t left = bytes - done;
    return left < slot_bytes ? left : slot_bytes;
}

/* Tell r's transport that the next `bytes` arrive now: that many slices. */
static cb_status expect_bytes(struct cb_recv_chan *r, size_t bytes)
{
    size_t slices = (bytes + r->slot_bytes - 1) / r->slot_bytes;
    return slices ? r->ops->recv_expect(r->conn, slices) : CB_OK;
}

/* A slot that holds less than the sender and receiver agreed is a protocol bug. */
static cb_status check_len(const struct cb_recv_chan *r, size_t got, size_t want)
{
    if (got == want)
        return CB_OK;
    cb_log_error("rank %d (host %s) sent %zu bytes where %zu were expected: the ranks disagree on "
                 "the operation (different command lines?)", r->peer.rank, r->peer.host, got, want);
    return CB_EPEER;
}

static void reduce_slice(void *dst, const void *in, const void *local, size_t bytes,
                         const struct cb_redop *op)
{
    size_t count = bytes / cb_type_size(op->type);
    if (op->last)
        cb_reduce_last(dst, in, local, count, op->type, op->op, op->nranks);
    else
        cb_reduce(dst, in, local, count, op->type, op->op);
}

/* What a primitive does with each slice. `in` is the received slot (NULL when
 * it only sends), `out` the slot to send (NULL when it only receives); `local`
 * and `dst` are user buffers at the slice's offset (NULL when unused). With a
 * reduction, the result goes to `out` and is copied home, so it is computed once. */
struct slice_work {
    const char *local;
    char *dst;
    const struct cb_redop *op;
    int dst_final;   /* dst is not written again before the receiver has read it */
};

static void do_slice(const struct slice_work *w, const void *in, void *out, size_t off, size_t n)
{
    const char *local = w->local ? w->local + off : NULL;
    char *dst = w->dst ? w->dst + off : NULL;
    if (w->op) {
        reduce_slice(out ? out : dst, in, local, n, w->op);
        if (out && dst)
            memcpy(dst, out, n);
        return;
    }
    const void *src = in ? in : local;
    if (out)
        memcpy(out, src, n);
    if (dst && dst != src)   /* a direct message is already where it goes */
        memcpy(dst, src, n);
}

/* Offer the destinations of slices [*offered, bytes) of a receive, as far
 * ahead as the transport takes them (direct path). The receive's slice at
 * byte `at` is message `first` counted from the next one to arrive. */
static void offer_ahead(struct cb_recv_chan *r, size_t first, size_t at, char *dst, size_t bytes, size_t *offered)
{
    if (*offered < at)   /* slices before `at` have arrived already */
        *offered = at;
    while (*offered < bytes) {
        size_t n = slice_len(*offered, bytes, r->slot_bytes), ahead = first + (*offered - at) / r->slot_bytes;
        int accepted = 0;
        if (r->ops->recv_offer(r->conn, ahead, dst + *offered, n, &accepted) != CB_OK || !accepted)
            return;
        *offered += n;
    }
}

void cb_prim_offer(struct cb_recv_chan *r, size_t skip, void *dst, size_t bytes)
{
    size_t offered = 0;
    if (r->ops->caps.takes_offers)
        offer_ahead(r, (skip + r->slot_bytes - 1) / r->slot_bytes, 0, dst, bytes, &offered);
}

/* Post a slice whose bytes are at src: when `lend` (nothing writes src
 * before the receiver has it) lent where the transport can (shm: the
 * receiver reads it there, a pull from this core's cache, cheaper than a push
 * into the other's; verbs: written from there), else copied into the slot `out`. */
static cb_status post_slice(struct cb_send_chan *s, void *out, const char *src, size_t n, int lend)
{
    int lent = 0;
    cb_status st = lend && s->ops->caps.lends ? s->ops->send_lend(s->conn, src, n, &lent) : CB_OK;
    if (st != CB_OK || lent) {
        s->lent |= lent;
        return st;
    }
    memcpy(out, src, n);
    return s->ops->send_post(s->conn, n);
}

static cb_status finish_slice(const struct slice_work *w, struct cb_send_chan *s, const void *in, void *out,
                              size_t off, size_t n)
{
    do_slice(w, in, out, off, n);
    return s ? s->ops->send_post(s->conn, n) : CB_OK;
}

/* The slice's final value written to dst only, then sent from there (lent). */
static cb_status finish_home_and_lend(const struct slice_work *w, struct cb_send_chan *s, const void *in, void *out,
                                      size_t off, size_t n)
{
    if (w->op)
        reduce_slice(w->dst + off, in, w->local + off, n, w->op);
    else if (w->dst + off != in)
        memcpy(w->dst + off, in, n);
    return post_slice(s, out, w->dst + off, n, 1);
}

/* The one loop behind every blocking primitive: slice by slice, wait for the
 * incoming slot (r) and the outgoing one (s), do the work, hand both back. */
static cb_status slice_loop(struct cb_recv_chan *r, struct cb_send_chan *s, size_t bytes,
                            const struct slice_work *w)
{
    size_t slot_bytes = s ? s->slot_bytes : r->slot_bytes, offered = 0;
    /* a receive that only copies out can take its data straight into dst */
    int direct = r && w->dst && !w->op && r->ops->caps.takes_offers;
    /* a final value that goes home and on: written home only, and lent from
     * there where the send slot is only local staging (no pass over it) */
    int lend_result = s && w->dst && w->dst_final && !s->ops->caps.slot_is_peer_memory && s->ops->caps.lends;
    cb_status expect_st = r ? expect_bytes(r, bytes) : CB_OK;
    if (expect_st != CB_OK)
        return expect_st;
    for (size_t done = 0; done < bytes;) {
        size_t n = slice_len(done, bytes, slot_bytes), got;
        const void *in = NULL;
        void *out = NULL;
        cb_status st = CB_OK;
        if (direct)
            offer_ahead(r, 0, done, w->dst, bytes, &offered);
        if (r && (st = cb_chan_wait_recv(r, &in, &got)) == CB_OK)
            st = check_len(r, got, n);
        if (st == CB_OK && s)
            st = cb_chan_wait_send(s, n, &out);
        if (st != CB_OK)
            return st;
        st = lend_result ? finish_home_and_lend(w, s, in, out, done, n) : finish_slice(w, s, in, out, done, n);
        if (st != CB_OK || (r && (st = r->ops->recv_release(r->conn)) != CB_OK))
            return st;
        done += n;
    }
    return CB_OK;
}

cb_status cb_prim_send(struct cb_send_chan *s, const void *src, size_t bytes)
{
    return slice_loop(NULL, s, bytes, &(struct slice_work){src, NULL, NULL, 0});
}

cb_status cb_prim_send_lend(struct cb_send_chan *s, const void *src, size_t bytes)
{
    for (size_t done = 0; done < bytes;) {
        size_t n = slice_len(done, bytes, s->slot_bytes);
        void *out;
        cb_status st = cb_chan_wait_send(s, n, &out);
        if (st == CB_OK)
            st = post_slice(s, out, (const char *)src + done, n, 1);
        if (st != CB_OK)
            return st;
        done += n;
    }
    return CB_OK;
}

static cb_status drain(struct cb_send_chan *s)
{
    struct waiter w = {0, 0};
    for (;;) {
        int idle = 0;
        cb_status st = s->ops->send_idle(s->conn, &idle);
        if (st != CB_OK || idle) {
            s->lent = 0;
            return st;
        }
        if ((st = cb_chan_progress(s->ops, s->tctx, s->other_ops, s->other_tctx)) != CB_OK)
            return st;
        if (waiter_tick(&w, s->timeout_ms, s->oversubscribed)) {
            cb_log_error("timed out after %d s waiting for rank %d (host %s) to read data it was lent; "
                         "is it alive? raise -T if it is just slow",
                         s->timeout_ms / 1000, s->peer.rank, s->peer.host);
            return CB_ETIMEOUT;
        }
    }
}

cb_status cb_chan_drain_lent(struct cb_comm *c)
{
    for (int i = 0; i < c->nchannels * c->nranks; i++) {
        cb_status st = c->send[i].conn && c->send[i].lent ? drain(&c->send[i]) : CB_OK;
        if (st != CB_OK)
            return st;
    }
    return CB_OK;
}

cb_status cb_prim_recv(struct cb_recv_chan *r, void *dst, size_t bytes)
{
    return slice_loop(r, NULL, bytes, &(struct slice_work){NULL, dst, NULL, 0});
}

cb_status cb_prim_recv_reduce_send(struct cb_recv_chan *r, struct cb_send_chan *s,
                                   const void *local, size_t bytes, const struct cb_redop *op)
{
    return slice_loop(r, s, bytes, &(struct slice_work){local, NULL, op, 0});
}

cb_status cb_prim_recv_reduce_copy(struct cb_recv_chan *r, const void *local, void *dst,
                                   size_t bytes, const struct cb_redop *op)
{
    return slice_loop(r, NULL, bytes, &(struct slice_work){local, dst, op, 0});
}

cb_status cb_prim_recv_reduce_copy_send(struct cb_recv_chan *r, struct cb_send_chan *s,
                                        const void *local, void *dst, size_t bytes,
                                        const struct cb_redop *op)
{
    return slice_loop(r, s, bytes, &(struct slice_work){local, dst, op, 1});
}

/* Small enough that the partial result of a block stays in L1/L2 while
 * every input is folded into it. */
#define REDUCE_BLOCK_BYTES (32 * 1024)

/* dst[0, n) = local OP in[0] OP in[1] .. OP in[nin - 1], block by block. */
static void reduce_blocks(char *dst, const char *local, const void *const *in, int nin, size_t n,
                          const struct cb_redop *op)
{
    struct cb_redop partial = *op;
    partial.last = 0;
    for (size_t at = 0; at < n; at += REDUCE_BLOCK_BYTES) {
        size_t len = n - at < REDUCE_BLOCK_BYTES ? n - at : REDUCE_BLOCK_BYTES;
        for (int i = 0; i < nin; i++)
            reduce_slice(dst + at, (const char *)in[i] + at, i == 0 ? local + at : dst + at, len,
                         i == nin - 1 ? op : &partial);
    }
}

/* Inputs held at once: more peers are folded in group after group (16
 * ranks in the tests take two). */
#define REDUCE_ALL_GROUP 8

/* Channel 0's connection from the rank k places after this one. */
static struct cb_recv_chan *recv_from_next(struct cb_comm *c, int k)
{
    return &c->recv[(c->rank + k) % c->nranks];
}

/* One slice from peers rank + first .. rank + first + nin - 1 folded into dst. */
static cb_status reduce_group(struct cb_comm *c, int first, int nin, const char *local, char *dst, size_t bytes,
                              const struct cb_redop *op)
{
    const void *in[REDUCE_ALL_GROUP];
    size_t got;
    for (int k = 0; k < nin; k++) {
        struct cb_recv_chan *r = recv_from_next(c, first + k);
        cb_status st = cb_chan_wait_recv(r, &in[k], &got);
        if (st == CB_OK)
            st = check_len(r, got, bytes);
        if (st != CB_OK)
            return st;
    }
    reduce_blocks(dst, local, in, nin, bytes, op);
    for (int k = 0; k < nin; k++) {
        struct cb_recv_chan *r = recv_from_next(c, first + k);
        cb_status st = r->ops->recv_release(r->conn);
        if (st != CB_OK)
            return st;
    }
    return CB_OK;
}

/* Each peer's slice number `slice` of `bytes` is to be received now. */
static cb_status expect_slice_from_all(struct cb_comm *c, size_t slice, size_t bytes)
{
    size_t slot = c->cfg.slot_bytes;
    if (slice * slot >= bytes)
        return CB_OK;
    for (int k = 1; k < c->nranks; k++) {
        struct cb_recv_chan *r = recv_from_next(c, k);
        cb_status st = r->ops->recv_expect(r->conn, 1);
        if (st != CB_OK)
            return st;
    }
    return CB_OK;
}

cb_status cb_prim_recv_reduce_all(struct cb_comm *c, const void *local, void *dst, size_t bytes,
                                  const struct cb_redop *op)
{
    struct cb_redop partial = *op;
    partial.last = 0;
    size_t slice = 0;
    for (size_t ahead = 0; ahead <= CB_REDUCE_ALL_AHEAD; ahead++) {
        cb_status st = expect_slice_from_all(c, ahead, bytes);
        if (st != CB_OK)
            return st;
    }
    for (size_t done = 0; done < bytes; slice++) {
        size_t n = slice_len(done, bytes, c->cfg.slot_bytes);
        char *out = (char *)dst + done;
        for (int first = 1; first < c->nranks; first += REDUCE_ALL_GROUP) {
            int nin = c->nranks - first < REDUCE_ALL_GROUP ? c->nranks - first : REDUCE_ALL_GROUP;
            const char *from = first == 1 ? (const char *)local + done : out;
            cb_status st = reduce_group(c, first, nin, from, out, n, first + nin < c->nranks ? &partial : op);
            if (st != CB_OK)
                return st;
        }
        done += n;
        cb_status st = expect_slice_from_all(c, slice + 1 + CB_REDUCE_ALL_AHEAD, bytes);
        if (st != CB_OK)
            return st;
    }
    return CB_OK;
}

cb_status cb_prim_recv_copy_send(struct cb_recv_chan *r, struct cb_send_chan *s, void *dst, size_t bytes)
{
    return slice_loop(r, s, bytes, &(struct slice_work){NULL, dst, NULL, 1});
}

/* One step of the send side: post a slice if a slot is free; lent when
 * the source may be lent (as by cb_prim_send_lend). */
static cb_status try_send_slice(struct cb_send_chan *s, const char *src, size_t bytes, int lend, size_t *done,
                                int *moved)
{
    void *out;
    size_t n = slice_len(*done, bytes, s->slot_bytes);
    cb_status st = send_slot(s, n, &out);
    if (st != CB_OK || !out)
        return st;
    const char *from = src + *done;
    *done += n;
    *moved = 1;
    return post_slice(s, out, from, n, lend);
}

static cb_status try_recv_slice(struct cb_recv_chan *r, void *dst, size_t bytes, size_t *done, int *moved)
{
    const void *in;
    size_t got;
    cb_status st = r->ops->recv_slot(r->conn, &in, &got);
    if (st != CB_OK || !in)
        return st;
    size_t n = slice_len(*done, bytes, r->slot_bytes);
    if ((st = check_len(r, got, n)) != CB_OK)
        return st;
    if ((char *)dst + *done != in)   /* a direct message is already where it goes */
        memcpy((char *)dst + *done, in, n);
    *done += n;
    *moved = 1;
    return r->ops->recv_release(r->conn);
}

static cb_status sendrecv(struct cb_send_chan *s, const void *src, size_t sbytes, int lend,
                          struct cb_recv_chan *r, void *dst, size_t rbytes)
{
    size_t sent = 0, received = 0, offered = 0, offered_at = SIZE_MAX;
    struct waiter w = {0, 0};
    cb_status expect_st = expect_bytes(r, rbytes);
    if (expect_st != CB_OK)
        return expect_st;
    while (sent < sbytes || received < rbytes) {
        int moved = 0;
        cb_status st = CB_OK;
        /* offers: at the start and after each arrival (the transport takes
         * them up to a FIFO ahead), not on every poll of this spin loop */
        if (r->ops->caps.takes_offers && offered < rbytes && offered_at != received) {
            offer_ahead(r, 0, received, dst, rbytes, &offered);
            offered_at = received;
        }
        if (sent < sbytes)
            st = try_send_slice(s, src, sbytes, lend, &sent, &moved);
        if (st == CB_OK && received < rbytes)
            st = try_recv_slice(r, dst, rbytes, &received, &moved);
        if (st == CB_OK && !moved)
            st = cb_chan_progress(s->ops, s->tctx, s->other_ops, s->other_tctx);   /* both ends, both transports */
        if (st != CB_OK)
            return st;
        if (moved) {
            w.spins = 0;
            w.deadline = 0;
        } else if (waiter_tick(&w, s->timeout_ms, s->oversubscribed)) {
            if (received < rbytes)
                cb_log_error("timed out after %d s waiting for data from rank %d (host %s)",
                             r->timeout_ms / 1000, r->peer.rank, r->peer.host);
            else
                cb_log_error("timed out after %d s waiting for rank %d (host %s) to take data we sent",
                             s->timeout_ms / 1000, s->peer.rank, s->peer.host);
            return CB_ETIMEOUT;
        }
    }
    return CB_OK;
}

cb_status cb_prim_sendrecv(struct cb_send_chan *s, const void *src, size_t sbytes,
                           struct cb_recv_chan *r, void *dst, size_t rbytes)
{
    return sendrecv(s, src, sbytes, 0, r, dst, rbytes);
}

cb_status cb_prim_sendrecv_lend(struct cb_send_chan *s, const void *src, size_t sbytes,
                                struct cb_recv_chan *r, void *dst, size_t rbytes)
{
    return sendrecv(s, src, sbytes, 1, r, dst, rbytes);
}
