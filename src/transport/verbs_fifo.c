/* The verbs transport's data path: the receiver's clear-to-send FIFO, the
 * sender's RDMA writes with immediate data, completions, progress and the
 * data calls of the transport contract (see the overview in verbs.c). */
#include "verbs_internal.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

/* A completion error while the port goes down can be read before the
 * port's own event is recorded (the async thread may hold it), and even
 * while the port still reads ACTIVE (rxe fails a send as soon as its netdev
 * is going down, and marks the port down just after): up to 500 ms for the
 * event, so the error names the port event that explains it. An error with
 * the port up all along (a dead peer) spends those 500 ms once, on its way out. */
static void port_event_settle(struct vctx *t)
{
    struct ibv_port_attr pa;
    for (int waited = 0; waited < 500; waited += 10) {
        vb_async_poll(t);
        if (atomic_load_explicit(&t->nport_ev, memory_order_acquire) > 0 ||
            ibv_query_port(t->ctx, (uint8_t)t->port, &pa) != 0)
            return;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
}

static cb_status wc_error(struct vconn *c, const struct ibv_wc *wc)
{
    struct vctx *t = c->t;
    if (c->err)
        return c->err;
    int kind = WR_KIND(wc->wr_id);
    const char *what = kind == WR_DATA ? "RDMA write of data" : kind == WR_CTS ? "RDMA write of a clear-to-send"
                                                                              : "receive of data";
    struct ibv_qp_attr attr = {0};
    struct ibv_qp_init_attr init;
    for (int i = 0; i < c->nq; i++)
        if (c->q[i].qp && c->q[i].qp->qp_num == wc->qp_num)
            ibv_query_qp(c->q[i].qp, &attr, IBV_QP_DEST_QPN, &init);
    char events[512];
    port_event_settle(t);
    vb_port_events_text(t, events, sizeof events);
    cb_log_error("verbs: %s:%d on %s: %s %s rank %d (%s) failed: %s (status %d, vendor error 0x%x, QP 0x%x, "
                 "the peer's QP 0x%x); port events before it: %s. The peer died, its QP failed, or the link "
                 "dropped for longer than the QPs retry; see rank %d's log and the port counters",
                 t->dev, t->port, t->cfg.host, what, kind == WR_RECV ? "from" : vb_dir_word(c), c->peer.rank,
                 c->peer.host, ibv_wc_status_str(wc->status), wc->status, wc->vendor_err, wc->qp_num,
                 attr.dest_qp_num, events, c->peer.rank);
    c->err = CB_EPEER;
    return CB_EPEER;
}

static struct vqp *qp_by_num(struct vconn *c, uint32_t qpn)
{
    for (int i = 0; i < c->nq; i++)
        if (c->q[i].qp && c->q[i].qp->qp_num == qpn)
            return &c->q[i];
    return NULL;
}

/* How messages use the QPs (--ib-split-data). Split: message s is nq
 * pieces, piece i on QP i, so every QP carries every message. Not split
 * (NCCL's default): message s goes whole on QP s % nq. Either way a QP
 * carries its messages in order (RC), so the k-th immediate on QP i is for
 * message msg_of(c, i, k); messages on different QPs may complete out of
 * order, and a message is there when its every piece is. */
static int pieces(const struct vconn *c)
{
    return c->split ? c->nq : 1;
}

/* The QPs [*first, *last) that carry message s. */
static void qps_of(const struct vconn *c, uint64_t s, int *first, int *last)
{
    *first = c->split ? 0 : (int)(s % (uint64_t)c->nq);
    *last = c->split ? c->nq : *first + 1;
}

static uint64_t msg_of(const struct vconn *c, int qi, uint64_t k)
{
    return c->split ? k : k * (uint64_t)c->nq + (uint64_t)qi;
}

/* The first message at or after s that QP qi carries. */
static uint64_t next_on(const struct vconn *c, int qi, uint64_t s)
{
    uint64_t nq = (uint64_t)c->nq;
    return c->split ? s : s + ((uint64_t)qi + nq - s % nq) % nq;
}

/* Bytes of a message of n bytes carried by QP i. */
static void piece_of(const struct vconn *c, size_t n, int i, size_t *off, size_t *len)
{
    if (!c->split) {
        *off = 0;
        *len = n;
        return;
    }
    size_t per = (n + (size_t)c->nq - 1) / (size_t)c->nq;
    per = (per + 63) & ~(size_t)63;
    size_t o = per * (size_t)i;
    *off = o < n ? o : n;
    *len = o < n ? (n - o < per ? n - o : per) : 0;
}

/* Receiver: messages [0, recv_avail) are all there: the first one a QP still owes, over all QPs. */
static uint64_t recv_avail(const struct vconn *c)
{
    uint64_t m = UINT64_MAX;
    for (int i = 0; i < c->nq; i++) {
        uint64_t owed = msg_of(c, i, c->q[i].rcount);
        m = owed < m ? owed : m;
    }
    return m;
}

static cb_status poll_cq(struct vconn *c)
{
    struct ibv_wc wc[CQ_BATCH];
    for (;;) {
        int n = ibv_poll_cq(c->cq, CQ_BATCH, wc);
        if (n < 0) {
            cb_log_error("verbs: %s:%d: ibv_poll_cq for the connection %s rank %d (%s) failed", c->t->dev,
                         c->t->port, vb_dir_word(c), c->peer.rank, c->peer.host);
            vb_conn_fail(c, CB_EPEER);
            return CB_EPEER;
        }
        for (int i = 0; i < n; i++) {
            if (wc[i].status != IBV_WC_SUCCESS)
                return wc_error(c, &wc[i]);
            struct vqp *q = qp_by_num(c, wc[i].qp_num);
            if (!q)
                continue;
            int kind = WR_KIND(wc[i].wr_id);
            if (kind == WR_DATA) {
                q->done = WR_N(wc[i].wr_id);
                q->sq_freed = c->wqe_end[(size_t)q->idx * (size_t)c->nslots + (q->done - 1) % (uint64_t)c->nslots];
            } else if (kind == WR_CTS) {
                q->sq_freed = WR_N(wc[i].wr_id);
            } else if (kind == WR_RECV) {
                if (wc[i].opcode != IBV_WC_RECV_RDMA_WITH_IMM || !(wc[i].wc_flags & IBV_WC_WITH_IMM)) {
                    cb_log_error("verbs: %s:%d: unexpected completion opcode %d from rank %d (%s) on QP 0x%x",
                                 c->t->dev, c->t->port, wc[i].opcode, c->peer.rank, c->peer.host, wc[i].qp_num);
                    vb_conn_fail(c, CB_EINTERNAL);
                    return CB_EINTERNAL;
                }
                uint32_t imm = ntohl(wc[i].imm_data);
                uint64_t seq = msg_of(c, q->idx, q->rcount);
                uint32_t mask = c->direct_imm ? IMM_DIRECT - 1 : 0xffffffu;
                size_t nbytes = c->seq_imm ? (imm & mask) : imm, off, len;
                piece_of(c, nbytes, q->idx, &off, &len);
                /* byte_len 0: --ib-ar's form, the data came by the write before it on this QP */
                if ((c->seq_imm && (imm >> 24) != (seq & 0xff)) || nbytes > c->slot_bytes ||
                    (wc[i].byte_len != len && wc[i].byte_len != 0)) {
                    cb_log_error("verbs: %s:%d: slot %" PRIu64 " from rank %d (%s) arrived out of order or with a "
                                 "wrong size on QP %d (imm 0x%08x, %u bytes written, expected %zu): protocol "
                                 "mismatch (are both ranks the same collbench build?)", c->t->dev, c->t->port,
                                 seq, c->peer.rank, c->peer.host, q->idx, imm, wc[i].byte_len, len);
                    vb_conn_fail(c, CB_EINTERNAL);
                    return CB_EINTERNAL;
                }
                if (!c->split || q->idx == 0)   /* one piece records the size */
                    c->sizes[seq % (uint64_t)c->nslots] = (uint32_t)nbytes;
                if (c->direct_imm && (imm & IMM_DIRECT))
                    c->ndirect[seq % (uint64_t)c->nslots]++;
                q->rcount++;
                cb_status st = vb_post_recvs(c, q, 1);
                if (st) {
                    vb_conn_fail(c, st);
                    return st;
                }
            }
        }
        if (n < CQ_BATCH)
            return CB_OK;
    }
}

/* Sender: messages [0, send_completed) are known written: the first one a
 * QP has not reported (a signaled completion covers the QP's earlier writes). */
static uint64_t send_completed(const struct vconn *c)
{
    uint64_t m = UINT64_MAX;
    for (int i = 0; i < c->nq; i++) {
        uint64_t open = next_on(c, i, c->q[i].done);
        m = open < m ? open : m;
    }
    return m;
}

/* Sender: advance `completed`; with pooled slots the staging of every
 * message now written goes back to the pool. */
static void note_completed(struct vconn *c)
{
    uint64_t done = send_completed(c);
    done = done < c->posted ? done : c->posted;
    for (; c->pooled && c->completed < done; c->completed++) {
        int slot = (int)(c->completed % (uint64_t)c->nslots);
        if (c->granted[slot])
            vb_pool_give(c->t, c->granted[slot]);
        c->granted[slot] = NULL;
    }
    c->completed = done > c->completed ? done : c->completed;
}

int vb_entry_read(const struct cts_entry *e, uint32_t seq, struct cts_entry *out)
{
    if (__atomic_load_n(&e->seq, __ATOMIC_ACQUIRE) != seq)
        return 0;
    out->addr = __atomic_load_n(&e->addr, __ATOMIC_RELAXED);
    out->rkey = __atomic_load_n(&e->rkey, __ATOMIC_RELAXED);
    out->size = __atomic_load_n(&e->size, __ATOMIC_RELAXED);
    out->check = __atomic_load_n(&e->check, __ATOMIC_RELAXED);
    out->seq = seq;
    out->pad = 0;
    /* the fields first, then seq again: a write landing meanwhile shows as a changed seq or check */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__atomic_load_n(&e->seq, __ATOMIC_RELAXED) != seq)
        return 0;
    return out->check == vb_entry_check(out->addr, out->rkey, out->size, seq);
}

/* Sender: one QP's piece of message s: an RDMA write with immediate, or
 * with --ib-ar (pieces of ar_threshold bytes or more) an RDMA write then a
 * 0-byte write with immediate, so that the data may take any path and the
 * immediate still lands after it (RC executes a QP's writes in order). */
static cb_status post_piece(struct vconn *c, struct vqp *q, uint64_t s, struct ibv_sge *sge, uint64_t raddr,
                            uint32_t rkey, uint32_t imm, int signal)
{
    size_t len = sge->length;
    int split = c->ar && len >= c->ar_threshold;
    struct ibv_send_wr notify = {
        .wr_id = WR_ID(WR_DATA, s + 1),
        .sg_list = len && !split ? sge : NULL,
        .num_sge = len && !split ? 1 : 0,
        .opcode = IBV_WR_RDMA_WRITE_WITH_IMM,
        .send_flags = signal ? IBV_SEND_SIGNALED : 0,
        .imm_data = htonl(imm),
        .wr.rdma = {.remote_addr = raddr, .rkey = rkey},
    };
    struct ibv_send_wr data = {
        .wr_id = WR_ID(WR_DATA, s + 1), .sg_list = sge, .num_sge = 1, .opcode = IBV_WR_RDMA_WRITE,
        .next = &notify, .wr.rdma = {.remote_addr = raddr, .rkey = rkey},
    }, *bad;
    if (ibv_post_send(q->qp, split ? &data : &notify, &bad)) {
        cb_log_error("verbs: %s:%d: ibv_post_send (RDMA write, %zu bytes) to rank %d (%s) on QP 0x%x failed: %s",
                     c->t->dev, c->t->port, len, c->peer.rank, c->peer.host, q->qp->qp_num, strerror(errno));
        vb_conn_fail(c, CB_EPEER);
        return CB_EPEER;
    }
    q->sq_posted += split ? 2 : 1;
    q->unsig = signal ? 0 : q->unsig + 1;
    c->wqe_end[(size_t)q->idx * (size_t)c->nslots + s % (uint64_t)c->nslots] = q->sq_posted;
    return CB_OK;
}

/* Slot `slot`'s memory: the connection's own FIFO, or the pool slot it holds. */
static char *slot_mem(const struct vconn *c, int slot)
{
    return c->pooled ? c->granted[slot]->addr : c->fifo + (size_t)slot * c->slot_bytes;
}

/* Sender: whether message s's write is signaled: every sig_every-th on its
 * QP(s), and the write of the last free slot, whose completion the sender
 * needs to get a slot back. Without split that takes the last message on
 * each QP: any nq in a row cover every QP (s + nq - completed: the last nq
 * of the slots, signaled since `completed` only grows). To a pooled
 * receiver also the last posted (on each QP): send_idle waits for them. */
static int signal_write(const struct vconn *c, uint64_t s, int first)
{
    uint64_t span = c->split ? 1 : (uint64_t)c->nq;
    return c->q[first].unsig + 1 >= c->sig_every || s + span - c->completed >= (uint64_t)c->nslots ||
           (c->pooled && s + span >= c->posted);
}

/* Sender: write every posted slot whose clear-to-send has arrived. */
static cb_status send_issue(struct vconn *c)
{
    struct vctx *t = c->t;
    while (c->issued < c->posted && !vb_port_down(t)) {
        uint64_t s = c->issued;
        int slot = (int)(s % (uint64_t)c->nslots), first, last;
        struct cts_entry e, o;
        if (!vb_entry_read(&c->cts[slot], (uint32_t)(s + 1), &e))
            break;
        qps_of(c, s, &first, &last);
        for (int i = first; i < last; i++)
            if (c->q[i].sq_posted - c->q[i].sq_freed + (c->ar ? 2 : 1) > (uint64_t)c->sq_depth)
                return CB_OK;   /* send queue full: the next poll frees it */
        uint64_t raddr = e.addr;
        uint32_t rkey = e.rkey, cap = e.size;
        size_t n = c->sizes[slot];
        if (n > cap) {
            cb_log_error("verbs: rank %d (%s) offers a %u-byte slot for slot %" PRIu64 " but %zu bytes are to be "
                         "sent: slot sizes differ between ranks (same --slot-bytes everywhere?)",
                         c->peer.rank, c->peer.host, cap, s, n);
            vb_conn_fail(c, CB_EUSAGE);
            return CB_EUSAGE;
        }
        int signal = signal_write(c, s, first);
        uint32_t imm = c->seq_imm ? (uint32_t)((s & 0xff) << 24) | (uint32_t)n : (uint32_t)n;
        /* the receiver offered a destination for this message in time:
         * write there, the slot stays unused (its turn is still taken) */
        if (c->direct_imm && n && vb_entry_read(&c->cts[c->nslots + slot], (uint32_t)(s + 1), &o) && n <= o.size) {
            raddr = o.addr;
            rkey = o.rkey;
            imm |= IMM_DIRECT;
        }
        const char *from = c->lent[slot] ? c->lent[slot] : slot_mem(c, slot);
        uint32_t lkey = c->lent[slot] ? c->lent_lkey[slot] : c->pooled ? c->granted[slot]->lkey : c->fifo_mr->lkey;
        for (int i = first; i < last; i++) {
            size_t off, len;
            piece_of(c, n, i, &off, &len);
            struct ibv_sge sge = {.addr = (uintptr_t)(from + off), .length = (uint32_t)len, .lkey = lkey};
            cb_status st = post_piece(c, &c->q[i], s, &sge, raddr + off, rkey, imm, signal);
            if (st)
                return st;
        }
        c->issued++;
    }
    return CB_OK;
}

/* Receiver: whether QP 0's send queue has room for one more entry write. */
static int entry_room(const struct vconn *c)
{
    return c->q[0].sq_posted - c->q[0].sq_freed + 1 <= (uint64_t)c->sq_depth;
}

/* Receiver: RDMA-write entry `e` into entry `index` of the sender's
 * clear-to-send / offer region (inline, or from our copy of it). */
static cb_status write_entry(struct vconn *c, int index, const struct cts_entry *e, const char *what)
{
    struct vqp *q = &c->q[0];
    uint64_t used = q->sq_posted - q->sq_freed;
    struct ibv_sge sge = {.addr = (uintptr_t)e, .length = sizeof *e, .lkey = 0};
    if (!c->inline_cts) {
        c->cts[index] = *e;
        sge.addr = (uintptr_t)&c->cts[index];
        sge.lkey = c->cts_mr->lkey;
    }
    int signal = q->unsig + 1 >= c->sig_every || used + 1 >= (uint64_t)c->sq_depth / 2;
    struct ibv_send_wr wr = {
        .wr_id = WR_ID(WR_CTS, q->sq_posted + 1),
        .sg_list = &sge,
        .num_sge = 1,
        .opcode = IBV_WR_RDMA_WRITE,
        .send_flags = (signal ? IBV_SEND_SIGNALED : 0) | (c->inline_cts ? IBV_SEND_INLINE : 0),
        .wr.rdma = {.remote_addr = c->remote_cts_addr + (uint64_t)index * sizeof(struct cts_entry),
                    .rkey = c->remote_cts_rkey},
    }, *bad;
    if (ibv_post_send(q->qp, &wr, &bad)) {
        cb_log_error("verbs: %s:%d: ibv_post_send (%s) to rank %d (%s) on QP 0x%x failed: %s", c->t->dev,
                     c->t->port, what, c->peer.rank, c->peer.host, q->qp->qp_num, strerror(errno));
        vb_conn_fail(c, CB_EPEER);
        return CB_EPEER;
    }
    q->sq_posted++;
    q->unsig = signal ? 0 : q->unsig + 1;
    return CB_OK;
}

/* Receiver: the messages the sender may be cleared for: a FIFO ahead of
 * what was consumed, and with pooled slots only those expected. */
static uint64_t cts_limit(const struct vconn *c)
{
    uint64_t ahead = c->consumed + (uint64_t)c->nslots;
    return c->pooled && c->expected < ahead ? c->expected : ahead;
}

/* Receiver: where message s is to be written: its slot of the FIFO, or the
 * pool slot taken for it. */
static cb_status slot_for(struct vconn *c, int slot, uint64_t *addr, uint32_t *rkey)
{
    cb_status st = c->pooled ? vb_pool_take(c->t, &c->peer, &c->granted[slot]) : CB_OK;
    if (st) {
        vb_conn_fail(c, st);
        return st;
    }
    *addr = (uintptr_t)slot_mem(c, slot);
    *rkey = c->pooled ? c->granted[slot]->rkey : c->fifo_mr->rkey;
    return CB_OK;
}

/* Receiver: tell the sender about every free slot. */
cb_status vb_cts_issue(struct vconn *c)
{
    if (!c->ready && c->nestablished < c->nq)
        return CB_OK;
    while (c->cts_sent < cts_limit(c) && entry_room(c) && !vb_port_down(c->t)) {
        uint64_t s = c->cts_sent, addr;
        int slot = (int)(s % (uint64_t)c->nslots);
        uint32_t rkey;
        cb_status st = slot_for(c, slot, &addr, &rkey);
        if (st)
            return st;
        struct cts_entry e = vb_entry_make(addr, rkey, (uint32_t)c->slot_bytes, (uint32_t)(s + 1));
        st = write_entry(c, slot, &e, "clear-to-send");
        if (st)
            return st;
        c->cts_sent++;
    }
    return CB_OK;
}

cb_status vb_recv_expect(void *rconn, size_t nmsgs)
{
    struct vconn *c = rconn;
    if (c->err)
        return c->err;
    if (!c->pooled)
        return CB_OK;
    c->expected += nmsgs;
    cb_status st = vb_cts_issue(c);
    vb_conn_note_work(c);
    return st;
}

/* The highest message any QP has delivered (a piece of it), + 1. */
static uint64_t recv_started(const struct vconn *c)
{
    uint64_t m = 0;
    for (int i = 0; i < c->nq; i++) {
        uint64_t k = c->q[i].rcount;
        if (k && msg_of(c, i, k - 1) + 1 > m)
            m = msg_of(c, i, k - 1) + 1;
    }
    return m;
}

/* Offer `dst` (registered) for message consumed + ahead: the sender writes
 * there instead of into the slot if the offer reaches it before it writes
 * that message (the immediate says which it did). Not for small messages
 * (the offer is a write of its own), more than a FIFO ahead, or a message
 * that has started to arrive. */
cb_status vb_recv_offer(void *rconn, size_t ahead, void *dst, size_t nbytes, int *accepted)
{
    struct vconn *c = rconn;
    uint64_t s = c->consumed + ahead;
    int slot = (int)(s % (uint64_t)c->nslots);
    struct vb_offer *o = &c->offers[slot];
    *accepted = 0;
    if (c->err)
        return c->err;
    if (!c->direct_imm || !c->have_remote || nbytes < VB_DIRECT_MIN_BYTES || nbytes > c->slot_bytes ||
        ahead >= (size_t)c->nslots)
        return CB_OK;
    if (o->seq1 == s + 1) {
        *accepted = o->dst == dst && o->bytes == nbytes;
        return CB_OK;
    }
    const struct ibv_mr *mr = vb_window_mr(c->t, dst, nbytes);
    if (!mr || recv_started(c) > s || !entry_room(c) || vb_port_down(c->t))
        return CB_OK;
    struct cts_entry e = vb_entry_make((uintptr_t)dst, mr->rkey, (uint32_t)nbytes, (uint32_t)(s + 1));
    cb_status st = write_entry(c, c->nslots + slot, &e, "offer of a destination");
    if (st)
        return st;
    *o = (struct vb_offer){dst, (uint32_t)nbytes, s + 1};
    *accepted = 1;
    return CB_OK;
}

cb_status vb_conn_progress(struct vconn *c)
{
    if (c->err)
        return c->err;
    if (!c->ready && c->nestablished < c->nq)
        return CB_OK;
    cb_status st = poll_cq(c);
    if (st)
        return st;
    if (c->is_send && c->peer_gone && c->issued < c->posted) {
        cb_log_error("verbs: rank %d (%s) closed the connection while %" PRIu64 " slots were still to be sent "
                     "to it: see its log", c->peer.rank, c->peer.host, c->posted - c->issued);
        vb_conn_fail(c, CB_EPEER);
        return CB_EPEER;
    }
    st = c->is_send ? send_issue(c) : vb_cts_issue(c);
    vb_conn_note_work(c);
    return st;
}

cb_status vb_send_slot(void *sconn, size_t nbytes, void **slot)
{
    (void)nbytes;   /* no offered destinations on this side */
    struct vconn *c = sconn;
    *slot = NULL;
    cb_status st = vb_conn_progress(c);
    if (st)
        return st;
    note_completed(c);
    if (!c->slot_out) {
        /* A slot only once the receiver has cleared it: send_post then writes
         * at once and nothing waits for a later call. A sender that posts its
         * last slice and leaves for something else (an MPI barrier, the next
         * size) would otherwise strand that slice until it comes back.
         * With shared slots the clear-to-send comes only once the receiver
         * expects the message, so the slot goes out before it: the posted
         * slice is written by a later progress call, wherever this rank
         * waits (the bootstrap's waits drive it too). */
        struct cts_entry e;
        if (c->posted - c->completed >= (uint64_t)c->nslots ||
            (!c->pooled &&
             !vb_entry_read(&c->cts[c->posted % (uint64_t)c->nslots], (uint32_t)(c->posted + 1), &e)))
            return CB_OK;
    }
    int s = (int)(c->posted % (uint64_t)c->nslots);
    if (c->pooled && !c->granted[s] && (st = vb_pool_take(c->t, &c->peer, &c->granted[s])) != CB_OK) {
        vb_conn_fail(c, st);
        return st;
    }
    *slot = slot_mem(c, s);
    c->slot_out = 1;
    return CB_OK;
}

/* Hand the slot out by send_slot over, its data in the staging slot or, when
 * `lent`, in the user's registered buffer. */
static cb_status post(struct vconn *c, size_t nbytes, const char *lent, uint32_t lkey)
{
    if (c->err)
        return c->err;
    if (!c->slot_out || nbytes > c->slot_bytes) {
        cb_log_error("verbs: send_post of %zu bytes to rank %d (%s) %s", nbytes, c->peer.rank, c->peer.host,
                     !c->slot_out ? "without a slot from send_slot" : "is larger than a slot");
        return CB_EINTERNAL;
    }
    uint64_t slot = c->posted % (uint64_t)c->nslots;
    if (lent && c->pooled && c->granted[slot]) {   /* written from the user's buffer: no staging */
        vb_pool_give(c->t, c->granted[slot]);
        c->granted[slot] = NULL;
    }
    c->sizes[slot] = (uint32_t)nbytes;
    c->lent[slot] = lent;
    c->lent_lkey[slot] = lkey;
    c->posted++;
    c->slot_out = 0;
    cb_status st = send_issue(c);
    vb_conn_note_work(c);
    return st;
}

cb_status vb_send_post(void *sconn, size_t nbytes)
{
    return post(sconn, nbytes, NULL, 0);
}

/* The slot is only a turn in the FIFO: the write reads the user's buffer.
 * The receiver's release of the slot proves the write has read it. */
cb_status vb_send_lend(void *sconn, const void *src, size_t nbytes, int *posted)
{
    struct vconn *c = sconn;
    const struct ibv_mr *mr = vb_window_mr(c->t, src, nbytes);
    *posted = mr != NULL;
    return mr ? post(c, nbytes, src, mr->lkey) : CB_OK;
}

cb_status vb_recv_slot(void *rconn, const void **slot, size_t *nbytes)
{
    struct vconn *c = rconn;
    *slot = NULL;
    *nbytes = 0;
    cb_status st = vb_conn_progress(c);
    if (st)
        return st;
    if (c->consumed >= recv_avail(c)) {
        if (c->peer_gone) {
            cb_log_error("verbs: rank %d (%s) closed the connection while this rank waits for slot %" PRIu64,
                         c->peer.rank, c->peer.host, c->consumed);
            vb_conn_fail(c, CB_EPEER);
            return CB_EPEER;
        }
        return CB_OK;
    }
    int s = (int)(c->consumed % (uint64_t)c->nslots);
    const struct vb_offer *o = &c->offers[s];
    *slot = slot_mem(c, s);
    *nbytes = c->sizes[s];
    if (c->ndirect[s]) {   /* written into the destination we offered */
        if (c->ndirect[s] != pieces(c) || o->seq1 != c->consumed + 1 || *nbytes > o->bytes) {
            cb_log_error("verbs: %s:%d: message %" PRIu64 " from rank %d (%s) was written to an offered "
                         "destination in %d of its %d pieces (offer for message %" PRIu64 ", %u bytes; %zu "
                         "arrived): protocol mismatch (are both ranks the same collbench build?)", c->t->dev,
                         c->t->port, c->consumed, c->peer.rank, c->peer.host, c->ndirect[s], pieces(c),
                         o->seq1 - 1, o->bytes, *nbytes);
            vb_conn_fail(c, CB_EINTERNAL);
            return CB_EINTERNAL;
        }
        *slot = o->dst;
    }
    c->slot_out = 1;
    return CB_OK;
}

cb_status vb_recv_release(void *rconn)
{
    struct vconn *c = rconn;
    if (c->err)
        return c->err;
    if (!c->slot_out) {
        cb_log_error("verbs: recv_release from rank %d (%s) without a slot from recv_slot", c->peer.rank,
                     c->peer.host);
        return CB_EINTERNAL;
    }
    int s = (int)(c->consumed % (uint64_t)c->nslots);
    if (c->pooled) {
        vb_pool_give(c->t, c->granted[s]);
        c->granted[s] = NULL;
    }
    c->ndirect[s] = 0;
    c->offers[s].seq1 = 0;   /* used, or the sender wrote before it saw it */
    c->slot_out = 0;
    c->consumed++;
    cb_status st = vb_cts_issue(c);
    vb_conn_note_work(c);
    return st;
}

/* A sender with posted slots not yet written (waiting for a clear-to-send
 * or send queue room), a receiver owing clear-to-sends: what progress must
 * move while the caller waits elsewhere. Anything else waits for the
 * connection's own next call (its CQ holds what arrives meanwhile). */
static int has_work(const struct vconn *c)
{
    return c->is_send ? c->issued < c->posted : c->cts_sent < cts_limit(c);
}

void vb_conn_note_work(struct vconn *c)
{
    if (c->in_active || !c->ready || c->err || !has_work(c))
        return;
    c->next_active = c->t->active;
    c->t->active = c;
    c->in_active = 1;
}

void vb_conn_forget_work(struct vconn *c)
{
    struct vconn **pp = &c->t->active;
    while (c->in_active && *pp && *pp != c)
        pp = &(*pp)->next_active;
    if (c->in_active && *pp)
        *pp = c->next_active;
    c->in_active = 0;
}

void vb_conn_mark_ready(struct vconn *c)
{
    c->ready = 1;
    c->t->nunready--;
    vb_conn_note_work(c);
}

/* Reading the CM channel costs a system call: do it on every call only while
 * connections are being made, otherwise now and then (disconnects). */
static int cm_busy(const struct vctx *t)
{
    for (const struct vlisten *l = t->listens; l; l = l->next)
        if (l->rc)
            return 1;
    return t->nunready > 0;
}

cb_status vb_progress(void *tctx)
{
    struct vctx *t = tctx;
    cb_status st = CB_OK;
    if (cm_busy(t) || (++t->pump_tick & 1023) == 0)
        st = vb_cm_pump(t);
    if (st)
        return st;
    st = vb_check_async(t);
    if (st)
        return st;
    for (struct vconn **pp = &t->active; *pp;) {
        struct vconn *c = *pp;
        st = vb_conn_progress(c);
        if (st)
            return st;
        if (has_work(c)) {
            pp = &c->next_active;
        } else {
            *pp = c->next_active;
            c->in_active = 0;
        }
    }
    return CB_OK;
}

cb_status vb_send_idle(void *sconn, int *idle)
{
    struct vconn *c = sconn;
    *idle = 0;
    cb_status st = vb_conn_progress(c);
    if (st)
        return st;
    note_completed(c);
    /* everything written, and the receiver has released all of it: the
     * clear-to-send for the last slot it will ever offer has arrived (it
     * offers slot s only after consuming s - nslots). Unsignaled writes
     * never complete here; the receiver's release proves they landed. */
    uint64_t last = c->posted + (uint64_t)c->nslots - 1;
    struct cts_entry e;
    if (c->pooled)   /* no clear-to-send ahead: the last writes are signaled instead */
        *idle = c->issued == c->posted && c->completed >= c->posted;
    else
        *idle = c->issued == c->posted &&
                vb_entry_read(&c->cts[last % (uint64_t)c->nslots], (uint32_t)(last + 1), &e);
    return CB_OK;
}

cb_status vb_close_send(void *sconn)
{
    if (sconn)
        vb_conn_destroy(sconn);
    return CB_OK;
}

cb_status vb_close_recv(void *rconn)
{
    if (rconn)
        vb_conn_destroy(rconn);
    return CB_OK;
}
