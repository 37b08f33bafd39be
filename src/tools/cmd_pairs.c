/* `collbench pairs`: every pair of hosts (or ring neighbours with --quick)
 * measures bidirectional bandwidth and latency, rail by rail when hosts hold
 * several ranks (pairs.h, "rails"), in rounds of disjoint pairs that run at
 * the same time; rank 0 prints the matrices and names the slow hosts and
 * links (pairs.h has the rule), and the port counters that moved. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/bootstrap.h"
#include "core/clock.h"
#include "core/channel.h"
#include "core/comm.h"
#include "core/job.h"
#include "pairs.h"
#include "tools/netdev_counters.h"
#include "topo/topo.h"

#define LAT_BYTES 8

struct pair_rec {
    int partner;      /* -1: idle this round */
    int status;       /* cb_status of the measurement */
    double bw;        /* bytes/s sent + received by this rank */
    double lat_us;    /* p50 of LAT_BYTES exchanges */
    /* this rank's host from the round's start to the next one's (netdev_counters.h) */
    long long carrier_before, carrier_after, retrans, outsegs;   /* -1: unknown */
    double from, to;  /* wall clock */
    struct cb_pairs_rdma rdma;   /* this rank's RDMA port meanwhile (pairs_counters.c) */
};

struct buffers {
    char *src, *dst;
    double *samples;
};

/* ---- start-up ---- */

/* "nodea(10.0.0.1) 2 ranks, nodeb(10.0.0.2) 1 rank": each host's count, the first few. */
static void describe_hosts(struct cb_boot *b, const struct cb_pairs_rails *rl, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = 0;
    for (int h = 0; h < rl->nhosts && at < len; h++) {
        if (h == 8) {
            snprintf(buf + at, len - at, ", and %d hosts more", rl->nhosts - h);
            return;
        }
        int k = snprintf(buf + at, len - at, "%s%s %d rank%s", h ? ", " : "", cb_boot_host(b, rl->first[h]),
                         rl->count[h], rl->count[h] == 1 ? "" : "s");
        at += k > 0 ? (size_t)k : 0;
    }
}

static cb_status validate_job(const struct cb_pairs_opts *p, struct cb_boot *b, cb_status rails_st,
                              const struct cb_pairs_rails *rl)
{
    if (cb_boot_rank(b) != 0)
        return rails_st;
    if (cb_boot_size(b) < 2) {
        cb_log_error("pairs needs at least 2 ranks, one per host: run it as "
                     "`mpirun -np N --map-by ppr:1:node collbench pairs ...`");
        return CB_EUSAGE;
    }
    if (rails_st == CB_EUSAGE) {
        char hosts[1024];
        describe_hosts(b, rl, hosts, sizeof hosts);
        cb_log_error("pairs measures rail by rail (local rank i of each host against local rank i of the "
                     "others), so every host needs the same number of ranks; here: %s. Start as many on each "
                     "(`mpirun --map-by ppr:K:node`)", hosts);
    }
    if (rails_st != CB_OK)
        return rails_st;
    if (p->json_path)
        return cb_pairs_check_json(p->json_path);
    return CB_OK;
}

/* Which rank meets which: hosts are memory domains (cb_boot_hosts). */
static cb_status find_rails(struct cb_boot *b, struct cb_pairs_rails *rl)
{
    int n = cb_boot_size(b), nhosts;
    int *host = calloc((size_t)n + 1, sizeof *host);
    cb_status st = CB_ENOMEM;
    memset(rl, 0, sizeof *rl);
    if (!host)
        cb_log_error("out of memory for the host of each of %d ranks", n);
    else if ((st = cb_boot_hosts(b, host, &nhosts)) == CB_OK &&   /* which logs its own failure */
             (st = cb_pairs_rails_init(n, host, rl)) == CB_ENOMEM)
        cb_log_error("out of memory for the map of %d ranks to hosts", n);
    free(host);
    return st;
}

static cb_status start_comm(struct cb_boot *boot, struct cb_pairs_opts *p, struct cb_pairs_rails *rl,
                            struct cb_comm **comm)
{
    struct cb_topo_rank place;   /* the NIC nearest this rank's cores, and binding, as the collectives do */
    struct cb_job_setup setup = {p->base.transport, NULL, p->base.bind};
    cb_status rails_st = find_rails(boot, rl);
    return cb_job_start(boot, validate_job(p, boot, rails_st, rl), &setup, &p->base.tcfg, &place, comm);
}

/* ---- one pair ---- */

static cb_status exchange(struct cb_comm *c, int peer, struct buffers *b, size_t bytes)
{
    return cb_prim_sendrecv(&c->send[peer], b->src, bytes, &c->recv[peer], b->dst, bytes);
}

static cb_status measure_bw(struct cb_comm *c, int peer, const struct cb_pairs_opts *p, struct buffers *b,
                            struct pair_rec *rec)
{
    cb_status st = CB_OK;
    for (int i = 0; i < p->warmup && st == CB_OK; i++)
        st = exchange(c, peer, b, p->bytes);
    double t0 = cb_now_s();
    for (int i = 0; i < p->iters && st == CB_OK; i++)
        st = exchange(c, peer, b, p->bytes);
    double t = cb_now_s() - t0;
    if (st == CB_OK)
        rec->bw = t > 0 ? 2.0 * (double)p->bytes * p->iters / t : INFINITY;
    return st;
}

static cb_status measure_lat(struct cb_comm *c, int peer, const struct cb_pairs_opts *p, struct buffers *b,
                             struct pair_rec *rec)
{
    cb_status st = CB_OK;
    for (int i = 0; i < p->lat_iters && st == CB_OK; i++) {
        double t0 = cb_now_s();
        st = exchange(c, peer, b, LAT_BYTES);
        b->samples[i] = cb_now_s() - t0;
    }
    if (st == CB_OK)
        rec->lat_us = cb_pairs_median(b->samples, p->lat_iters) * 1e6;
    return st;
}

static void measure_pair(struct cb_comm *c, int peer, const struct cb_pairs_opts *p, struct buffers *b,
                         struct pair_rec *rec)
{
    cb_status st = measure_bw(c, peer, p, b, rec);
    if (st == CB_OK)
        st = measure_lat(c, peer, p, b, rec);
    rec->status = st;
    if (st != CB_OK)
        cb_log_error("pair with rank %d (host %s) failed (%s): it is reported as a slow link with no data",
                     peer, c->peers[peer].host, cb_status_str(st));
}

/* Both ends learn whether the other connected: a pair measures only when both did. */
static cb_status agree_with_partner(struct cb_comm *c, int peer, cb_status mine, cb_status *pair_st)
{
    int me = (int)mine, theirs = CB_OK;
    cb_status st = cb_boot_exchange(c->boot, &peer, &me, peer >= 0, &peer, &theirs, peer >= 0, sizeof me,
                                    c->cfg.timeout_ms, "telling the partner how connecting went");
    *pair_st = mine != CB_OK ? mine : theirs != CB_OK ? CB_EPEER : CB_OK;
    return st;
}

/* One round: connect the pairs (collective), measure, and close. A pair
 * that cannot connect is recorded as failed and the check goes on. The
 * closing barrier waits longer than one timeout: a failed pair may have
 * spent two. */
static cb_status run_round(struct cb_comm *c, const struct cb_pairs_opts *p, const struct cb_pairs_rails *rl,
                           int round, struct buffers *b, struct pair_rec *rec)
{
    int peer = cb_pairs_rails_partner(rl, p->quick, round, c->rank);
    cb_status conn_st, pair_st;
    rec->partner = peer;
    rec->status = CB_OK;
    rec->bw = rec->lat_us = -1;
    cb_status st = cb_comm_connect_or_skip(c, &peer, peer >= 0, &peer, peer >= 0, &conn_st);
    if (st == CB_OK)
        st = agree_with_partner(c, peer, conn_st, &pair_st);
    if (st != CB_OK)
        return st;
    if (peer >= 0 && pair_st != CB_OK) {
        rec->status = pair_st;
        cb_comm_close_peer(c, peer, 0);
        cb_log_error("pair with rank %d (host %s) could not connect (%s): it is reported as failed and the "
                     "check goes on", peer, c->peers[peer].host, cb_status_str(pair_st));
    } else if (peer >= 0) {
        measure_pair(c, peer, p, b, rec);
        cb_comm_close_peer(c, peer, rec->status == CB_OK);   /* a failed pair is closed as it is */
    }
    return cb_boot_barrier(c->boot, 3 * c->cfg.timeout_ms, "ending a round of pairs");
}

/* ---- the host's link: carrier changes, TCP retransmissions (tcp) and the
 * RDMA port's retransmission counters (verbs), every rank ---- */

/* What a rank samples before the first round and after each. */
struct round_sampler {
    struct cb_pairs_link link;    /* ifname: the network device watched for carrier changes, "" none */
    int tcp;                      /* the transport is tcp: its retransmissions are judged */
    struct cb_wire_scope rdma;    /* the transport's RDMA port; rdma_dev "" none */
    struct cb_netdev_sample prev, now;
    struct cb_wire_reading *rprev, *rnow;   /* NULL: no RDMA port */
};

static void transport_props(struct cb_comm *c, struct cb_props *props)
{
    if (c->net_ops)   /* shm to ranks on this machine, the network to the others */
        c->net_ops->properties(c->net_tctx, props);
    else
        c->ops->properties(c->tctx, props);
}

/* The network device the transport uses: tcp's interface, or the netdev of
 * a RoCE port's GID; "" when there is none (InfiniBand, shm). */
static void link_device(const struct cb_props *props, char *ifname, size_t len)
{
    const char *dev = NULL, *port = NULL, *gid = NULL;
    ifname[0] = 0;
    for (int i = 0; i < props->n; i++) {
        if (strcmp(props->kv[i].key, "interface") == 0)
            snprintf(ifname, len, "%s", props->kv[i].val);
        dev = strcmp(props->kv[i].key, "device") == 0 ? props->kv[i].val : dev;
        port = strcmp(props->kv[i].key, "port") == 0 ? props->kv[i].val : port;
        gid = strcmp(props->kv[i].key, "gid_index") == 0 ? props->kv[i].val : gid;
    }
    if (!ifname[0] && dev && port && gid) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s/ports/%s/gid_attrs/ndevs/%s", cb_port_counters_root(), dev, port, gid);
        FILE *f = fopen(path, "r");
        if (f && fscanf(f, "%15s", ifname) != 1)
            ifname[0] = 0;
        if (f)
            fclose(f);
    }
}

/* The rail: "rxe1:1" (the RDMA device and port), else tcp's interface, else "-". */
static void rail_name(const struct cb_props *props, char *rail, size_t len)
{
    const char *dev = NULL, *port = NULL, *ifname = NULL;
    for (int i = 0; i < props->n; i++) {
        dev = strcmp(props->kv[i].key, "device") == 0 ? props->kv[i].val : dev;
        port = strcmp(props->kv[i].key, "port") == 0 ? props->kv[i].val : port;
        ifname = strcmp(props->kv[i].key, "interface") == 0 ? props->kv[i].val : ifname;
    }
    if (dev && port)
        snprintf(rail, len, "%s:%s", dev, port);
    else
        snprintf(rail, len, "%s", ifname && ifname[0] ? ifname : "-");
}

static int props_has(const struct cb_props *props, const char *key)
{
    for (int i = 0; i < props->n; i++)
        if (strcmp(props->kv[i].key, key) == 0)
            return 1;
    return 0;
}

/* CB_ENOMEM when the RDMA readings cannot be allocated. */
static cb_status sampler_start(struct cb_comm *c, struct round_sampler *s)
{
    struct cb_props props;
    memset(s, 0, sizeof *s);
    transport_props(c, &props);
    link_device(&props, s->link.ifname, sizeof s->link.ifname);
    rail_name(&props, s->link.rail, sizeof s->link.rail);
    cb_pairs_rdma_scope(&props, &s->rdma);
    s->tcp = s->rdma.rdma_dev[0] == 0 && props_has(&props, "interface");
    cb_netdev_sample(s->link.ifname, &s->prev);
    if (!s->rdma.rdma_dev[0])
        return CB_OK;
    s->rprev = malloc(sizeof *s->rprev);
    s->rnow = malloc(sizeof *s->rnow);
    if (!s->rprev || !s->rnow)
        return CB_ENOMEM;
    cb_wire_read(&s->rdma, s->rprev);
    return CB_OK;
}

static void sampler_free(struct round_sampler *s)
{
    free(s->rprev);
    free(s->rnow);
}

/* The counters since the last sample into rec: the TCP ones only for tcp
 * (other traffic of the host, e.g. the launcher's, is not the pair's). */
static void sampler_round(struct round_sampler *s, struct pair_rec *rec)
{
    const struct cb_netdev_sample *a = &s->prev, *b = &s->now;
    cb_netdev_sample(s->link.ifname, &s->now);
    rec->carrier_before = a->carrier_changes;
    rec->carrier_after = b->carrier_changes;
    rec->retrans = s->tcp ? cb_netdev_lost(a, b) : -1;
    rec->outsegs = s->tcp ? cb_netdev_delta(a->tcp_out_segs, b->tcp_out_segs) : -1;
    rec->from = a->when;
    rec->to = b->when;
    s->prev = s->now;
    memset(&rec->rdma, 0, sizeof rec->rdma);
    rec->rdma.total = -1;
    if (s->rprev) {
        struct cb_wire_reading *t = s->rprev;
        cb_wire_read(&s->rdma, s->rnow);
        cb_pairs_rdma_delta(s->rprev, s->rnow, &rec->rdma);
        s->rprev = s->rnow;
        s->rnow = t;
    }
}

/* --pass-interval: a pass starts no sooner than this after the one before. */
static void wait_for_pass(double start, double interval)
{
    double left = start + interval - cb_now_s();
    if (left > 0) {
        struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/* ---- port counters (one rank per machine reads them) ---- */

static struct cb_port_counters *counters_now(struct cb_comm *c)
{
    if (cb_boot_local_rank(c->boot) != 0)
        return NULL;
    struct cb_port_counters *pc = calloc(1, sizeof *pc);
    if (pc)
        cb_port_counters_read(pc);
    return pc;
}

static void counters_delta(struct cb_port_counters *before, struct cb_comm *c, struct cb_port_deltas *d)
{
    memset(d, 0, sizeof *d);
    struct cb_port_counters *after = before ? counters_now(c) : NULL;
    if (before && after)
        cb_port_counters_delta(before, after, d);
    free(after);
}

/* ---- the whole check ---- */

static cb_status alloc_buffers(const struct cb_pairs_opts *p, struct buffers *b)
{
    size_t bytes = p->bytes > LAT_BYTES ? p->bytes : LAT_BYTES;
    memset(b, 0, sizeof *b);
    if (posix_memalign((void **)&b->src, 4096, bytes) || posix_memalign((void **)&b->dst, 4096, bytes) ||
        !(b->samples = calloc((size_t)p->lat_iters, sizeof *b->samples))) {
        cb_log_error("cannot allocate 2 x %zu bytes for -b: give a smaller size", bytes);
        return CB_ENOMEM;
    }
    for (size_t i = 0; i < bytes; i++)
        b->src[i] = (char)(i * 131 + 7);
    memset(b->dst, 0, bytes);
    return CB_OK;
}

static void free_buffers(struct buffers *b)
{
    free(b->src);
    free(b->dst);
    free(b->samples);
}

/* Per round, the median over passes (a pass that failed makes the pair failed). */
static void combine_passes(int nrounds, int npasses, const struct pair_rec *passes, double *tmp,
                           struct pair_rec *rec)
{
    for (int r = 0; r < nrounds; r++) {
        int k = 0;
        rec[r] = passes[r];
        for (int q = 0; q < npasses; q++) {
            const struct pair_rec *x = &passes[q * nrounds + r];
            if (x->status != CB_OK)
                rec[r].status = x->status;
            else if (x->partner >= 0)
                tmp[k++] = x->bw;
        }
        rec[r].bw = k ? cb_pairs_median(tmp, k) : -1;
        k = 0;
        for (int q = 0; q < npasses; q++)
            if (passes[q * nrounds + r].status == CB_OK && passes[q * nrounds + r].partner >= 0)
                tmp[k++] = passes[q * nrounds + r].lat_us;
        rec[r].lat_us = k ? cb_pairs_median(tmp, k) : -1;
    }
}

/* All rounds, --passes times over, into passes[pass * nrounds + round];
 * deltas gets its host's port counters, link the device watched and the rail. */
static cb_status run_rounds(struct cb_comm *c, const struct cb_pairs_opts *p, const struct cb_pairs_rails *rl,
                            struct pair_rec *passes, struct cb_port_deltas *deltas, struct cb_pairs_link *link)
{
    struct buffers b;
    struct round_sampler smp;
    int nrounds = cb_pairs_rails_nrounds(rl, p->quick);
    cb_status st = alloc_buffers(p, &b);
    if (st == CB_OK && (!passes || !deltas))
        st = CB_ENOMEM;
    struct cb_port_counters *before = st == CB_OK ? counters_now(c) : NULL;
    if (sampler_start(c, &smp) != CB_OK && st == CB_OK) {
        cb_log_error("out of memory for the RDMA port's counters");
        st = CB_ENOMEM;
    }
    st = cb_job_agree(c->boot, st, c->cfg.timeout_ms, "allocating buffers");
    *link = smp.link;
    for (int q = 0; q < p->passes && st == CB_OK; q++) {
        double start = cb_now_s();
        for (int k = 0; k < nrounds && st == CB_OK; k++) {
            /* each pass starts one round later: a fault that comes and goes
             * with the period of a pass does not fall on the same pairs */
            int r = (k + q) % nrounds;
            struct pair_rec *rec = &passes[q * nrounds + r];
            st = run_round(c, p, rl, r, &b, rec);
            sampler_round(&smp, rec);
        }
        if (q + 1 < p->passes && st == CB_OK)
            wait_for_pass(start, p->pass_interval);
    }
    if (st == CB_OK)
        counters_delta(before, c, deltas);
    free(before);
    sampler_free(&smp);
    free_buffers(&b);
    return st;
}

/* Rank 0: every rank's records (rank-major, `stride` apart) into bw, lat and
 * failed (the slower rank of each pair). */
static void fill_matrices(int n, int nrounds, size_t stride, const struct pair_rec *all, double *bwm,
                          double *latm, int *failed)
{
    for (int i = 0; i < n * n; i++)
        bwm[i] = latm[i] = -1;
    for (int rank = 0; rank < n; rank++)
        for (int k = 0; k < nrounds; k++) {
            const struct pair_rec *x = &all[(size_t)rank * stride + (size_t)k];
            int j = x->partner;
            if (j < 0)
                continue;
            double *bw = &bwm[rank * n + j], *bwt = &bwm[j * n + rank];
            double *lat = &latm[rank * n + j], *latt = &latm[j * n + rank];
            double xb = x->status == CB_OK ? x->bw : 0.0;
            double xl = x->status == CB_OK ? x->lat_us : -1;
            *bw = *bwt = (*bw < 0 || xb < *bw) ? xb : *bw;
            *lat = *latt = xl > *lat ? xl : *lat;
            if (x->status != CB_OK && failed)
                failed[rank * n + j] = failed[j * n + rank] = x->status;
        }
}

/* Each pass's matrices; a failed pass of a pair is "not measured" there. */
static void fill_passes(int n, int nrounds, int npasses, const struct pair_rec *all, struct cb_pairs_report *r)
{
    size_t nn = (size_t)n * (size_t)n, per_rank = (size_t)nrounds * (size_t)npasses;
    for (int q = 0; q < npasses; q++) {
        double *bw = r->bw_pass + (size_t)q * nn, *lat = r->lat_pass + (size_t)q * nn;
        fill_matrices(n, nrounds, per_rank, all + (size_t)q * (size_t)nrounds, bw, lat, NULL);
        for (size_t i = 0; i < nn; i++)
            if (bw[i] <= 0)
                bw[i] = lat[i] = -1;
    }
}

/* Both hosts' retransmissions and sent segments in the rounds where they met. */
static void fill_retrans(int n, size_t nrecs, const struct pair_rec *all, struct cb_pairs_report *r)
{
    for (int rank = 0; rank < n; rank++)
        for (size_t k = 0; k < nrecs; k++) {
            const struct pair_rec *x = &all[(size_t)rank * nrecs + k];
            if (x->partner < 0 || x->retrans < 0 || x->outsegs < 0)
                continue;
            for (int e = 0; e < 2; e++) {
                int at = e ? x->partner * n + rank : rank * n + x->partner;
                r->retrans[at] = (r->retrans[at] < 0 ? 0 : r->retrans[at]) + x->retrans;
                r->outsegs[at] = (r->outsegs[at] < 0 ? 0 : r->outsegs[at]) + x->outsegs;
            }
        }
}

/* Both hosts' RDMA retransmission counters in the rounds where they met. */
static void fill_rdma(int n, size_t nrecs, const struct pair_rec *all, struct cb_pairs_report *r)
{
    for (int rank = 0; rank < n; rank++)
        for (size_t k = 0; k < nrecs; k++) {
            const struct pair_rec *x = &all[(size_t)rank * nrecs + k];
            cb_pairs_rdma_to_pair(n, rank, x->partner, &x->rdma, r->rdma);
        }
}

static cb_status fill_flaps(int n, int nrounds, size_t nrecs, const struct pair_rec *all,
                            const struct cb_pairs_link *links, struct cb_pairs_report *r)
{
    r->flaps = calloc((size_t)n * nrecs + 1, sizeof *r->flaps);
    if (!r->flaps)
        return CB_ENOMEM;
    for (int rank = 0; rank < n; rank++)
        for (size_t k = 0; k < nrecs; k++) {
            const struct pair_rec *x = &all[(size_t)rank * nrecs + k];
            if (x->carrier_before < 0 || x->carrier_after <= x->carrier_before)
                continue;
            struct cb_pairs_flap *f = &r->flaps[r->nflaps++];
            *f = (struct cb_pairs_flap){rank, (int)k / nrounds, (int)k % nrounds, x->partner, "",
                                        x->carrier_before, x->carrier_after, x->from, x->to};
            snprintf(f->ifname, sizeof f->ifname, "%s", links[rank].ifname);
        }
    return CB_OK;
}

/* Rank 0: all records (rank-major, passes x rounds each) into the report. */
static cb_status assemble(struct cb_comm *c, const struct cb_pairs_opts *p, const struct pair_rec *all,
                          const struct cb_pairs_link *links, struct cb_pairs_report *r)
{
    int n = c->nranks, nrounds = r->nrounds;
    size_t nrecs = (size_t)nrounds * (size_t)p->passes;
    struct pair_rec *med = calloc((size_t)n * (size_t)nrounds + 1, sizeof *med);
    double *tmp = calloc((size_t)p->passes + 1, sizeof *tmp);
    cb_status st = med && tmp ? CB_OK : CB_ENOMEM;
    if (st == CB_OK) {
        for (int rank = 0; rank < n; rank++)
            combine_passes(nrounds, p->passes, all + (size_t)rank * nrecs, tmp, med + (size_t)rank * (size_t)nrounds);
        fill_matrices(n, nrounds, (size_t)nrounds, med, r->bw, r->lat, r->failed);
        fill_passes(n, nrounds, p->passes, all, r);
        fill_retrans(n, nrecs, all, r);
        fill_rdma(n, nrecs, all, r);
        st = fill_flaps(n, nrounds, nrecs, all, links, r);
    }
    if (st == CB_OK)
        st = cb_pairs_classify(n, r->bw, r->lat, &p->rule, &r->verdict);
    if (st == CB_OK)
        st = cb_pairs_health_check(n, p->passes, r->bw_pass, r->retrans, r->outsegs, r->rdma, &p->rule,
                                   &r->health);
    free(med);
    free(tmp);
    return st;
}

static cb_status report_at_root(struct cb_comm *c, const struct cb_pairs_opts *p, const struct cb_pairs_rails *rl,
                                const struct pair_rec *all, const struct cb_port_deltas *deltas,
                                const struct cb_pairs_link *links, int *outliers)
{
    int n = c->nranks;
    struct cb_pairs_report r;
    cb_status st = cb_pairs_report_init(&r, n, p->passes);
    if (st != CB_OK)
        return st;
    r.quick = p->quick;
    r.nrounds = cb_pairs_rails_nrounds(rl, p->quick);
    r.rails = rl;
    r.links = links;
    r.transport = c->transport_name;
    r.bytes = p->bytes;
    r.iters = p->iters;
    r.warmup = p->warmup;
    r.lat_iters = p->lat_iters;
    r.rule = p->rule;
    r.deltas = deltas;
    for (int i = 0; i < n; i++)
        snprintf(r.hosts[i], sizeof r.hosts[i], "%s", c->peers[i].host);
    st = assemble(c, p, all, links, &r);
    if (st == CB_OK) {
        cb_pairs_print(stdout, &r);
        fflush(stdout);
        if (p->json_path)
            st = cb_pairs_write_json(p->json_path, &r);
        *outliers = cb_pairs_report_named(&r);
    }
    cb_pairs_report_free(&r);
    return st;
}

static cb_status gather_and_report(struct cb_comm *c, const struct cb_pairs_opts *p, const struct cb_pairs_rails *rl,
                                   const struct pair_rec *passes, const struct cb_port_deltas *deltas,
                                   const struct cb_pairs_link *link, int *outliers)
{
    int n = c->nranks, nrounds = cb_pairs_rails_nrounds(rl, p->quick);
    size_t rec_bytes = sizeof *passes * (size_t)nrounds * (size_t)p->passes;
    struct pair_rec *all = calloc((size_t)n, rec_bytes);
    struct cb_port_deltas *alld = calloc((size_t)n, sizeof *alld);
    struct cb_pairs_link *links = calloc((size_t)n, sizeof *links);
    cb_status st = all && alld && links ? CB_OK : CB_ENOMEM;
    if (st == CB_OK)
        st = cb_boot_gather(c->boot, passes, all, rec_bytes, c->cfg.timeout_ms, "collecting pair results");
    if (st == CB_OK)
        st = cb_boot_gather(c->boot, deltas, alld, sizeof *deltas, c->cfg.timeout_ms, "collecting port counters");
    if (st == CB_OK)
        st = cb_boot_gather(c->boot, link, links, sizeof *links, c->cfg.timeout_ms, "collecting devices");
    if (st == CB_OK && c->rank == 0)
        st = report_at_root(c, p, rl, all, alld, links, outliers);
    double o = *outliers;
    if (st == CB_OK)   /* every rank exits the same way */
        st = cb_boot_allreduce_max(c->boot, &o, 1, c->cfg.timeout_ms, "sharing the verdict");
    *outliers = o > 0;
    free(all);
    free(alld);
    free(links);
    return st;
}

static cb_status run_check(struct cb_boot *boot, struct cb_pairs_opts *p, int *outliers)
{
    struct cb_comm *comm = NULL;
    struct cb_pairs_link link;
    struct cb_pairs_rails rails;
    cb_status st = start_comm(boot, p, &rails, &comm);
    if (st != CB_OK) {
        cb_pairs_rails_free(&rails);
        return st;
    }
    int nrounds = cb_pairs_rails_nrounds(&rails, p->quick);
    struct pair_rec *passes = calloc((size_t)nrounds * (size_t)p->passes + 1, sizeof *passes);
    struct cb_port_deltas *deltas = calloc(1, sizeof *deltas);
    memset(&link, 0, sizeof link);
    st = run_rounds(comm, p, &rails, passes, deltas, &link);   /* all ranks agree on allocation */
    if (st == CB_OK)
        st = gather_and_report(comm, p, &rails, passes, deltas, &link, outliers);
    free(passes);
    free(deltas);
    cb_pairs_rails_free(&rails);
    if (st == CB_OK)   /* after a failure a peer may be gone: the caller aborts */
        cb_comm_destroy(comm);
    return st;
}

int cb_cmd_pairs(int argc, char **argv)
{
    struct cb_pairs_opts p;
    struct cb_boot *boot;
    int launched = cb_boot_launcher_rank() >= 0, report = cb_boot_launcher_rank() <= 0, outliers = 0;
    int argc0 = argc;
    char **argv0 = argv;
    /* under a launcher the ranks compare their parse first (cb_pairs_agree) */
    cb_status parsed = cb_pairs_parse(argc, argv, &p, !launched);
    if (parsed == CB_OK && p.show_help) {
        if (report)
            cb_pairs_usage(stdout);
        return 0;
    }
    if (parsed != CB_OK && !launched)
        return 2;
    cb_status st = cb_boot_init(&argc, &argv, p.base.tcfg.timeout_ms, &boot);
    if (st != CB_OK)
        return cb_status_exit_code(st);
    st = cb_pairs_agree(boot, argc0, argv0, &p, parsed);
    if (st == CB_OK)
        st = run_check(boot, &p, &outliers);
    cb_job_end(boot, st);
    if (st != CB_OK)
        return cb_status_exit_code(st);
    return outliers ? 1 : 0;
}
