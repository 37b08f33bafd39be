/* Communicator set-up: transport choice, connections, teardown. */
#include "comm.h"
#include "ring_order.h"
#include "clock.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cb_comm_connect_all's default step: 64 listeners (rdma_cm ports, tcp
 * listen entries) and handles per rank at once, however many ranks. */
#define CB_CONNECT_BATCH 64

/* The first rank that cannot share memory with rank 0, or 0 when all can. */
static int first_apart(struct cb_boot *boot)
{
    for (int r = 1; r < cb_boot_size(boot); r++)
        if (!cb_boot_shares_memory(boot, 0, r))
            return r;
    return 0;
}

/* Whether some two ranks share memory (fewer hosts than ranks): then shm
 * serves them under auto. Hosts numbered by sorting (cb_boot_hosts), not
 * every pair compared: one rank per host at 32k ranks is 5e8 compares. */
static cb_status some_share(struct cb_boot *boot, int *share)
{
    int n = cb_boot_size(boot), nhosts = n;
    int *host = malloc(sizeof *host * (size_t)n);
    if (!host) {
        cb_log_error("out of memory for the host of each of %d ranks", n);
        return CB_ENOMEM;
    }
    cb_status st = cb_boot_hosts(boot, host, &nhosts);
    free(host);
    *share = nhosts < n;
    return st;
}

/* The lowest rank for which `failed` holds, or -1: the combined answer. */
static cb_status first_rank_failing(struct cb_boot *boot, int failed, int timeout_ms, int *rank)
{
    int n = cb_boot_size(boot);
    double lowest = failed ? n - cb_boot_rank(boot) : 0;   /* the max is the lowest rank */
    cb_status st = cb_boot_allreduce_max(boot, &lowest, 1, timeout_ms, "choosing the transport");
    *rank = lowest > 0 ? n - (int)lowest : -1;
    return st;
}

/* The network: verbs when an RDMA port is usable on every rank, else tcp.
 * All ranks must agree. A rank without an ACTIVE port is asked quietly
 * first (it is why auto exists); a verbs start that fails where ports
 * are up has logged why, and auto falls back all the same. */
static cb_status choose_network(struct cb_boot *boot, const struct cb_transport_config *cfg,
                                const struct cb_transport_ops **ops, void **tctx)
{
    int without = -1, failed = -1;
    cb_status st = first_rank_failing(boot, !cb_transport_verbs.usable(cfg), cfg->timeout_ms, &without);
    if (st != CB_OK)
        return st;
    if (without < 0) {
        st = first_rank_failing(boot, cb_transport_verbs.init(cfg, tctx) != CB_OK, cfg->timeout_ms, &failed);
        if (st == CB_OK && failed < 0) {
            *ops = &cb_transport_verbs;
            return CB_OK;
        }
        cb_transport_verbs.finalize(*tctx);
        *tctx = NULL;
        if (st != CB_OK)
            return st;
    }
    if (cb_boot_rank(boot) == 0 && without >= 0)
        cb_log_info("auto: rank %d on %s has no ACTIVE RDMA port: using tcp (--transport verbs says what it finds)",
                    without, cb_boot_host(boot, without));
    else if (cb_boot_rank(boot) == 0)
        cb_log_info("auto: verbs did not start on rank %d on %s (its error is above): using tcp", failed,
                    cb_boot_host(boot, failed));
    *ops = &cb_transport_tcp;
    return cb_transport_tcp.init(cfg, tctx);
}

/* The network side: the one named, or auto's verbs-else-tcp. */
static cb_status init_network(struct cb_comm *c, const struct cb_transport_ops *inter,
                              const struct cb_transport_ops **ops, void **tctx)
{
    if (!inter)
        return choose_network(c->boot, &c->cfg, ops, tctx);
    *ops = inter;
    return inter->init(&c->cfg, tctx);
}

/* One transport between ranks that share memory (intra: shm under auto),
 * another between the others (inter: NULL = auto's verbs else tcp); one
 * transport when that serves every pair. */
static cb_status choose_per_peer(struct cb_comm *c, const struct cb_transport_ops *intra,
                                 const struct cb_transport_ops *inter)
{
    if (!first_apart(c->boot)) {
        c->ops = intra;
        return intra->init(&c->cfg, &c->tctx);
    }
    int share;
    cb_status st = some_share(c->boot, &share);
    if (st != CB_OK)
        return st;
    if (!share || intra == inter)
        return init_network(c, inter, &c->ops, &c->tctx);
    st = init_network(c, inter, &c->net_ops, &c->net_tctx);
    if (st != CB_OK)
        return st;
    c->ops = intra;
    st = intra->init(&c->cfg, &c->tctx);
    if (st != CB_OK) {
        c->net_ops->finalize(c->net_tctx);
        c->net_ops = NULL;
    }
    return st;
}

/* "INTRA+INTER" (shm+verbs, tcp+tcp, ...): each side by name. */
static cb_status choose_pair(struct cb_comm *c, const char *transport)
{
    char intra_name[32];
    const char *plus = strchr(transport, '+');
    snprintf(intra_name, sizeof intra_name, "%.*s", (int)(plus - transport), transport);
    const struct cb_transport_ops *intra = cb_transport_find(intra_name), *inter = cb_transport_find(plus + 1);
    if (!intra || !inter || inter == &cb_transport_shm) {
        cb_log_error("bad --transport '%s': give INTRA+INTER, INTRA one of shm, tcp, verbs (between ranks that "
                     "share memory) and INTER tcp or verbs (between the others)", transport);
        return CB_EUSAGE;
    }
    return choose_per_peer(c, intra, inter);
}

const struct cb_transport_ops *cb_comm_transport_of(const struct cb_comm *c, int peer, void **tctx)
{
    int net = c->net_ops && !cb_boot_shares_memory(c->boot, c->rank, peer);
    *tctx = net ? c->net_tctx : c->tctx;
    return net ? c->net_ops : c->ops;
}

static cb_status alloc_arrays(struct cb_comm *c)
{
    int n = c->nranks;
    size_t nconn = (size_t)n * (size_t)c->nchannels;
    c->peers = calloc((size_t)n, sizeof *c->peers);
    c->send = calloc(nconn, sizeof *c->send);
    c->recv = calloc(nconn, sizeof *c->recv);
    c->ring_order = calloc(nconn, sizeof *c->ring_order);
    c->ring_pos = calloc(nconn, sizeof *c->ring_pos);
    if (!c->peers || !c->send || !c->recv || !c->ring_order || !c->ring_pos)
        return CB_ENOMEM;
    for (int r = 0; r < n; r++) {
        c->peers[r].rank = r;
        strncpy(c->peers[r].host, cb_boot_host(c->boot, r), sizeof c->peers[r].host - 1);
    }
    return CB_OK;
}

int cb_ring_at(const struct cb_comm *c, int ch, int pos)
{
    int n = c->nranks;
    return c->ring_order[ch * n + ((pos % n) + n) % n];
}

int cb_ring_pos_of(const struct cb_comm *c, int ch, int rank)
{
    return c->ring_pos[ch * c->nranks + rank];
}

int cb_ring_pos(const struct cb_comm *c, int ch)
{
    return cb_ring_pos_of(c, ch, c->rank);
}

void cb_comm_set_ring_order(struct cb_comm *c, const int *order)
{
    int n = c->nranks;
    for (int ch = 0; ch < c->nchannels; ch++)
        for (int pos = 0; pos < n; pos++) {
            c->ring_order[ch * n + pos] = order[ch * n + pos];
            c->ring_pos[ch * n + order[ch * n + pos]] = pos;
        }
}

/* Rail-local rings when every host (memory domain) has the same number of
 * ranks, more than one (core/ring_order.h). */
static cb_status order_rings(struct cb_comm *c)
{
    int n = c->nranks, *host_of = malloc(sizeof(int) * (size_t)n);
    int *order = malloc(sizeof(int) * (size_t)n * (size_t)c->nchannels);
    if (!host_of || !order) {
        free(host_of);
        free(order);
        return CB_ENOMEM;
    }
    int nhosts;
    cb_status st = cb_boot_hosts(c->boot, host_of, &nhosts);
    if (st == CB_OK) {
        c->ring_rail_local = cb_ring_order(n, c->nchannels, host_of, order);
        cb_comm_set_ring_order(c, order);
    }
    free(host_of);
    free(order);
    return st;
}

/* The bootstrap's waits watch our data path (bootstrap.h). */
static cb_status watch_data_path(void *ctx)
{
    struct cb_comm *c = ctx;
    return cb_chan_progress(c->ops, c->tctx, c->net_ops, c->net_tctx);
}

cb_status cb_comm_init(struct cb_boot *boot, const char *transport,
                       const struct cb_transport_config *cfg, struct cb_comm **out)
{
    struct cb_comm *c = calloc(1, sizeof *c);
    cb_status st = CB_ENOMEM;
    if (!c)
        return CB_ENOMEM;
    c->boot = boot;
    c->rank = cb_boot_rank(boot);
    c->nranks = cb_boot_size(boot);
    c->cfg = *cfg;
    c->nchannels = cfg->channels > 0 ? cfg->channels : 1;
    c->connect_batch = CB_CONNECT_BATCH;
    st = alloc_arrays(c);
    if (st == CB_OK)
        st = order_rings(c);
    if (st != CB_OK)
        goto free_comm;
    if (strcmp(transport, "auto") == 0) {
        st = choose_per_peer(c, &cb_transport_shm, NULL);
    } else if (strchr(transport, '+')) {
        st = choose_pair(c, transport);
    } else {
        c->ops = cb_transport_find(transport);
        if (!c->ops) {
            char names[64];
            cb_transport_names(names, sizeof names, ", ");
            cb_log_error("unknown transport '%s': use %s or auto", transport, names);
            st = CB_EUSAGE;
            goto free_comm;
        }
        int apart = c->ops == &cb_transport_shm ? first_apart(boot) : 0;
        if (apart) {
            cb_log_error("--transport shm needs ranks that can share memory, but rank 0 (host %s) and "
                         "rank %d (host %s) are %s: use tcp, verbs or auto", cb_boot_host(boot, 0), apart,
                         cb_boot_host(boot, apart),
                         cb_boot_same_machine(boot, 0, apart)
                             ? "in different namespaces (containers or netns hosts) of one machine"
                             : "on different machines");
            st = CB_EUSAGE;
            goto free_comm;
        }
        st = c->ops->init(&c->cfg, &c->tctx);
    }
    if (st != CB_OK)
        goto free_comm;
    snprintf(c->transport_name, sizeof c->transport_name, "%s%s%s", c->ops->name, c->net_ops ? "+" : "",
             c->net_ops ? c->net_ops->name : "");
    cb_boot_watch(boot, watch_data_path, c);
    *out = c;
    return CB_OK;
free_comm:
    free(c->peers);
    free(c->send);
    free(c->recv);
    free(c->ring_order);
    free(c->ring_pos);
    free(c);
    return st;
}

/* The transport of `peer`, and in a job with two, the other one. */
static void pick_transports(const struct cb_comm *c, int peer, const struct cb_transport_ops **ops, void **tctx,
                            const struct cb_transport_ops **other, void **other_tctx)
{
    *ops = cb_comm_transport_of(c, peer, tctx);
    *other = !c->net_ops ? NULL : *ops == c->ops ? c->net_ops : c->ops;
    *other_tctx = *other == c->ops ? c->tctx : c->net_tctx;
}

#define INIT_CHAN(ch, c, peer_rank)                                                                \
    do {                                                                                           \
        pick_transports((c), (peer_rank), &(ch)->ops, &(ch)->tctx, &(ch)->other_ops, &(ch)->other_tctx); \
        (ch)->peer = (c)->peers[peer_rank];                                                        \
        (ch)->slot_bytes = (c)->cfg.slot_bytes;                                                    \
        (ch)->timeout_ms = (c)->cfg.timeout_ms;                                                    \
        (ch)->oversubscribed = (c)->cfg.oversubscribed;                                            \
    } while (0)

/* Rank `rank` as the peer of a connection on channel `ch`. */
static struct cb_peer peer_on(const struct cb_comm *c, int rank, int ch)
{
    struct cb_peer p = c->peers[rank];
    p.channel = ch;
    p.shared_slots = c->shared_slots;
    return p;
}

/* Drive connects and accepts together until all are done: a rank may be
 * connecting to its next while its previous is connecting to it. */
static cb_status finish_connections(struct cb_comm *c, int ch, const int *to, int nto, char *handles_in,
                                    const int *from, int nfrom, void **lcomms)
{
    struct cb_send_chan *send = c->send + (size_t)ch * (size_t)c->nranks;
    struct cb_recv_chan *recv = c->recv + (size_t)ch * (size_t)c->nranks;
    double deadline = cb_now_s() + c->cfg.timeout_ms / 1000.0;
    int pending = 1;
    while (pending) {
        pending = 0;
        for (int i = 0; i < nto; i++) {
            struct cb_send_chan *s = &send[to[i]];
            if (s->conn)
                continue;
            void *tx;
            const struct cb_transport_ops *o = cb_comm_transport_of(c, to[i], &tx);
            struct cb_peer peer = peer_on(c, to[i], ch);
            cb_status st = o->connect(tx, &peer, handles_in + (size_t)i * CB_HANDLE_BYTES, &s->conn);
            if (st != CB_OK)
                return st;
            if (!s->conn)
                pending = 1;
            else
                INIT_CHAN(s, c, to[i]);
        }
        for (int j = 0; j < nfrom; j++) {
            struct cb_recv_chan *r = &recv[from[j]];
            if (r->conn)
                continue;
            void *tx;
            const struct cb_transport_ops *o = cb_comm_transport_of(c, from[j], &tx);
            cb_status st = o->accept(lcomms[j], &r->conn);
            if (st != CB_OK)
                return st;
            if (!r->conn) {
                pending = 1;
                continue;
            }
            INIT_CHAN(r, c, from[j]);
            o->close_listen(lcomms[j]);
            lcomms[j] = NULL;
        }
        cb_status st = cb_chan_progress(c->ops, c->tctx, c->net_ops, c->net_tctx);
        if (st != CB_OK)
            return st;
        if (pending && cb_now_s() > deadline) {
            for (int j = 0; j < nfrom; j++)
                if (!recv[from[j]].conn)
                    cb_log_error("timed out after %d s waiting for rank %d (host %s) to connect",
                                 c->cfg.timeout_ms / 1000, from[j], c->peers[from[j]].host);
            for (int i = 0; i < nto; i++)
                if (!send[to[i]].conn)
                    cb_log_error("timed out after %d s connecting to rank %d (host %s)",
                                 c->cfg.timeout_ms / 1000, to[i], c->peers[to[i]].host);
            return CB_ETIMEOUT;
        }
        if (pending)
            sched_yield();
    }
    return CB_OK;
}

/* Only the peers not yet connected. */
static int missing_peers(const int *in, int n, int *out, int is_send, struct cb_comm *c, int ch)
{
    int m = 0;
    size_t at = (size_t)ch * (size_t)c->nranks;
    for (int i = 0; i < n; i++) {
        void *conn = is_send ? c->send[at + in[i]].conn : c->recv[at + in[i]].conn;
        int dup = 0;
        for (int k = 0; k < m; k++)
            dup |= out[k] == in[i];
        if (!conn && !dup)
            out[m++] = in[i];
    }
    return m;
}

cb_status cb_comm_connect(struct cb_comm *c, const int *to, int nto, const int *from, int nfrom)
{
    return cb_comm_connect_on(c, 0, to, nto, from, nfrom);
}

/* Forget what a failed set-up made with these peers: the check goes on without them. */
static void drop_peers(struct cb_comm *c, int ch, const int *to, int nto, const int *from, int nfrom)
{
    size_t at = (size_t)ch * (size_t)c->nranks;
    for (int i = 0; i < nto; i++) {
        if (c->send[at + to[i]].conn)
            c->send[at + to[i]].ops->close_send(c->send[at + to[i]].conn);
        c->send[at + to[i]].conn = NULL;
    }
    for (int j = 0; j < nfrom; j++) {
        if (c->recv[at + from[j]].conn)
            c->recv[at + from[j]].ops->close_recv(c->recv[at + from[j]].conn);
        c->recv[at + from[j]].conn = NULL;
    }
}

/* Where the transport answers handles (caps.replies): each sender's reply
 * to its receiver, through the bootstrap, before connect / accept. Every
 * reply is sent even when making one failed, so no receiver waits for it.
 * Returns a bootstrap failure; a failure of the transport goes to *conn_st. */
static cb_status exchange_replies(struct cb_comm *c, int ch, const int *to, int nto, const char *handles_in,
                                  const int *from, int nfrom, void **lcomms, cb_status *conn_st)
{
    int *rto = calloc((size_t)nto + 1, sizeof *rto), *rfrom = calloc((size_t)nfrom + 1, sizeof *rfrom);
    int *lidx = calloc((size_t)nfrom + 1, sizeof *lidx);
    char *out = calloc((size_t)nto + 1, CB_HANDLE_BYTES), *in = calloc((size_t)nfrom + 1, CB_HANDLE_BYTES);
    cb_status st = CB_ENOMEM, first = CB_OK;
    if (!rto || !rfrom || !lidx || !out || !in)
        goto free_arrays;
    int nrto = 0, nrfrom = 0;
    for (int i = 0; i < nto; i++) {
        void *tx;
        const struct cb_transport_ops *o = cb_comm_transport_of(c, to[i], &tx);
        if (!o->caps.replies)
            continue;
        struct cb_peer peer = peer_on(c, to[i], ch);
        st = o->reply(tx, &peer, handles_in + (size_t)i * CB_HANDLE_BYTES,
                      out + (size_t)nrto * CB_HANDLE_BYTES);
        first = first ? first : st;
        rto[nrto++] = to[i];
    }
    for (int j = 0; j < nfrom; j++) {
        void *tx;
        if (cb_comm_transport_of(c, from[j], &tx)->caps.replies) {
            lidx[nrfrom] = j;
            rfrom[nrfrom++] = from[j];
        }
    }
    st = CB_OK;
    if (nrto || nrfrom)
        st = cb_boot_exchange(c->boot, rto, out, nrto, rfrom, in, nrfrom, CB_HANDLE_BYTES, c->cfg.timeout_ms,
                              "exchanging connection replies");
    for (int k = 0; k < nrfrom && !st; k++) {
        void *tx;
        const struct cb_transport_ops *o = cb_comm_transport_of(c, rfrom[k], &tx);
        cb_status rst = o->take_reply(lcomms[lidx[k]], in + (size_t)k * CB_HANDLE_BYTES);
        first = first ? first : rst;
    }
    *conn_st = first;
free_arrays:
    free(in);
    free(out);
    free(lidx);
    free(rfrom);
    free(rto);
    return st;
}

/* peer_st NULL: any failure is returned. Else a failure to connect is put
 * in *peer_st and the peers dropped; only a bootstrap failure is returned,
 * and the closing barrier waits two timeouts (a failed connection spends one). */
static cb_status connect_on(struct cb_comm *c, int ch, const int *to_all, int nto_all, const int *from_all,
                            int nfrom_all, cb_status *peer_st)
{
    int *to = calloc((size_t)nto_all + 1, sizeof *to);
    int *from = calloc((size_t)nfrom_all + 1, sizeof *from);
    char *handles_out = calloc((size_t)nfrom_all + 1, CB_HANDLE_BYTES);
    char *handles_in = calloc((size_t)nto_all + 1, CB_HANDLE_BYTES);
    void **lcomms = calloc((size_t)nfrom_all + 1, sizeof *lcomms);
    cb_status st = CB_ENOMEM;
    if (!to || !from || !handles_out || !handles_in || !lcomms)
        goto free_arrays;
    int nto = missing_peers(to_all, nto_all, to, 1, c, ch);
    int nfrom = missing_peers(from_all, nfrom_all, from, 0, c, ch);
    st = CB_OK;
    for (int j = 0; j < nfrom && st == CB_OK; j++) {
        void *tx;
        const struct cb_transport_ops *o = cb_comm_transport_of(c, from[j], &tx);
        struct cb_peer peer = peer_on(c, from[j], ch);
        st = o->listen(tx, &peer, handles_out + (size_t)j * CB_HANDLE_BYTES, &lcomms[j]);
    }
    if (st != CB_OK)
        goto close_listens;
    /* the receiver sends its handle to the sender */
    st = cb_boot_exchange(c->boot, from, handles_out, nfrom, to, handles_in, nto, CB_HANDLE_BYTES,
                          c->cfg.timeout_ms, "exchanging connection handles");
    if (st != CB_OK)
        goto close_listens;
    cb_status conn_st = CB_OK;
    st = exchange_replies(c, ch, to, nto, handles_in, from, nfrom, lcomms, &conn_st);
    if (st != CB_OK)
        goto close_listens;
    st = conn_st ? conn_st : finish_connections(c, ch, to, nto, handles_in, from, nfrom, lcomms);
    if (st != CB_OK && peer_st) {
        *peer_st = st;
        drop_peers(c, ch, to, nto, from, nfrom);
        st = CB_OK;
    }
    if (st == CB_OK)
        st = cb_boot_barrier(c->boot, (peer_st ? 2 : 1) * c->cfg.timeout_ms, "after connecting");
close_listens:
    for (int j = 0; j < nfrom; j++) {
        void *tx;
        if (lcomms[j])
            cb_comm_transport_of(c, from[j], &tx)->close_listen(lcomms[j]);
    }
free_arrays:
    free(lcomms);
    free(handles_in);
    free(handles_out);
    free(from);
    free(to);
    return st;
}

/* connect_on, its time (listen to the closing barrier) added to c->connect_s. */
static cb_status connect_timed(struct cb_comm *c, int ch, const int *to, int nto, const int *from, int nfrom,
                               cb_status *peer_st)
{
    double start = cb_now_s();
    cb_status st = connect_on(c, ch, to, nto, from, nfrom, peer_st);
    c->connect_s += cb_now_s() - start;
    return st;
}

cb_status cb_comm_connect_on(struct cb_comm *c, int ch, const int *to, int nto, const int *from, int nfrom)
{
    return connect_timed(c, ch, to, nto, from, nfrom, NULL);
}

cb_status cb_comm_connect_or_skip(struct cb_comm *c, const int *to, int nto, const int *from, int nfrom,
                                  cb_status *peer_st)
{
    *peer_st = CB_OK;
    return connect_timed(c, 0, to, nto, from, nfrom, peer_st);
}

void cb_comm_buffer_use(const struct cb_comm *c, struct cb_conn_use *use)
{
    memset(use, 0, sizeof *use);
    use->connect_s = c->connect_s;
    for (int i = 0; i < c->nchannels * c->nranks; i++) {
        const struct cb_send_chan *s = &c->send[i];
        const struct cb_recv_chan *r = &c->recv[i];
        if (s->conn) {
            use->connections++;
            use->buffer_bytes += s->ops->send_bytes(s->conn);
        }
        if (r->conn) {
            use->connections++;
            use->buffer_bytes += r->ops->recv_bytes(r->conn);
        }
    }
    use->buffer_bytes += c->ops->shared_bytes(c->tctx) + (c->net_ops ? c->net_ops->shared_bytes(c->net_tctx) : 0);
}

cb_status cb_comm_connect_ring(struct cb_comm *c)
{
    if (c->nranks == 1)
        return CB_OK;
    cb_status st = CB_OK;
    for (int ch = 0; ch < c->nchannels && st == CB_OK; ch++) {
        int pos = cb_ring_pos(c, ch), next = cb_ring_at(c, ch, pos + 1), prev = cb_ring_at(c, ch, pos - 1);
        st = cb_comm_connect_on(c, ch, &next, 1, &prev, 1);
    }
    return st;
}

cb_status cb_comm_connect_successors(struct cb_comm *c)
{
    if (c->successors_connected || c->nranks == 1)
        return CB_OK;
    int next = (c->rank + 1) % c->nranks, prev = (c->rank + c->nranks - 1) % c->nranks;
    cb_status st = cb_comm_connect_on(c, 0, &next, 1, &prev, 1);
    c->successors_connected = st == CB_OK;
    return st;
}

cb_status cb_comm_connect_all(struct cb_comm *c)
{
    int n = c->nranks - 1, batch = c->connect_batch > 0 ? c->connect_batch : n;
    int *to = calloc((size_t)batch + 1, sizeof *to), *from = calloc((size_t)batch + 1, sizeof *from);
    cb_status st = to && from ? CB_OK : CB_ENOMEM;
    c->shared_slots = 1;
    for (int d0 = 1; d0 <= n && st == CB_OK; d0 += batch) {
        int k = 0;
        for (int d = d0; d <= n && d < d0 + batch; d++, k++) {
            to[k] = (c->rank + d) % c->nranks;
            from[k] = (c->rank + c->nranks - d) % c->nranks;
        }
        st = cb_comm_connect(c, to, k, from, k);
    }
    c->shared_slots = 0;
    free(from);
    free(to);
    return st;
}

void *cb_comm_alloc(struct cb_comm *c, size_t bytes)
{
    size_t rounded = (bytes + 4095) & ~(size_t)4095;
    return c->ops->alloc_shared(c->tctx, rounded ? rounded : 4096);
}

void cb_comm_free(struct cb_comm *c, void *p)
{
    if (p)
        c->ops->free_shared(c->tctx, p);
}

/* Grow a buffer of the comm's (outside the timed loop): its contents are not kept. */
static cb_status grow(struct cb_comm *c, void **buf, size_t *have, size_t bytes, const char *what)
{
    if (bytes <= *have)
        return CB_OK;
    void *p = cb_comm_alloc(c, bytes);
    if (!p) {
        cb_log_error("cannot allocate %zu bytes of %s; use a smaller -e", bytes, what);
        return CB_ENOMEM;
    }
    cb_comm_free(c, *buf);
    *buf = p;
    *have = bytes;
    return CB_OK;
}

cb_status cb_comm_scratch(struct cb_comm *c, size_t bytes)
{
    return grow(c, &c->scratch, &c->scratch_bytes, bytes, "scratch space");
}

cb_status cb_comm_premul(struct cb_comm *c, size_t bytes)
{
    return grow(c, &c->premul, &c->premul_bytes, bytes, "mulsum's pre-multiplied input");
}

/* Wait (bounded by the deadline) until the peer consumed what we sent:
 * closing a verbs QP while the peer still writes into it can hang the device. */
static void drain_send(const struct cb_send_chan *s, double deadline)
{
    int idle = 0;
    while (s->conn && !idle && cb_now_s() < deadline) {
        if (s->ops->send_idle(s->conn, &idle) != CB_OK ||
            cb_chan_progress(s->ops, s->tctx, s->other_ops, s->other_tctx) != CB_OK)
            break;
        if (!idle)
            sched_yield();
    }
}

static void close_slot(struct cb_comm *c, int at)
{
    if (c->send[at].conn)
        c->send[at].ops->close_send(c->send[at].conn);
    if (c->recv[at].conn)
        c->recv[at].ops->close_recv(c->recv[at].conn);
    c->send[at].conn = NULL;
    c->recv[at].conn = NULL;
}

void cb_comm_close_peer(struct cb_comm *c, int peer, int drain)
{
    double deadline = cb_now_s() + c->cfg.timeout_ms / 1000.0;
    for (int ch = 0; ch < c->nchannels; ch++) {
        if (drain)
            drain_send(&c->send[ch * c->nranks + peer], deadline);
        close_slot(c, ch * c->nranks + peer);
    }
}

void cb_comm_destroy(struct cb_comm *c)
{
    if (!c)
        return;
    /* the run is over: closing has deadlines of its own */
    cb_boot_unwatch(c->boot, c);
    double deadline = cb_now_s() + c->cfg.timeout_ms / 1000.0;
    for (int at = 0; at < c->nranks * c->nchannels; at++)
        drain_send(&c->send[at], deadline);
    cb_boot_barrier(c->boot, c->cfg.timeout_ms, "before closing connections");
    for (int at = 0; at < c->nranks * c->nchannels; at++)
        close_slot(c, at);
    cb_comm_free(c, c->scratch);
    cb_comm_free(c, c->premul);
    c->ops->finalize(c->tctx);
    if (c->net_ops)
        c->net_ops->finalize(c->net_tctx);
    free(c->peers);
    free(c->ring_order);
    free(c->ring_pos);
    free(c->send);
    free(c->recv);
    free(c);
}
