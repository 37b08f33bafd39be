/* `collbench pairs`: every pair of ranks (or ring neighbours with --quick)
 * measures bidirectional bandwidth and latency, in rounds of disjoint pairs
 * that run at the same time; rank 0 prints the matrices and names the slow
 * hosts and links (pairs.h has the rule), and the port counters that moved. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/bootstrap.h"
#include "core/clock.h"
#include "core/channel.h"
#include "core/comm.h"
#include "core/job.h"
#include "pairs.h"
#include "topo/topo.h"

#define LAT_BYTES 8

struct pair_rec {
    int partner;      /* -1: idle this round */
    int status;       /* cb_status of the measurement */
    double bw;        /* bytes/s sent + received by this rank */
    double lat_us;    /* p50 of LAT_BYTES exchanges */
};

struct buffers {
    char *src, *dst;
    double *samples;
};

/* ---- start-up ---- */

static cb_status validate_job(const struct cb_pairs_opts *p, struct cb_boot *b)
{
    if (cb_boot_rank(b) != 0)
        return CB_OK;
    if (cb_boot_size(b) < 2) {
        cb_log_error("pairs needs at least 2 ranks, one per host: run it as "
                     "`mpirun -np N --map-by ppr:1:node collbench pairs ...`");
        return CB_EUSAGE;
    }
    if (p->json_path && access(p->json_path, F_OK) != 0) {
        FILE *f = fopen(p->json_path, "w");
        if (!f) {
            cb_log_error("cannot write -J %s: give a path in a folder that exists and is writable", p->json_path);
            return CB_EUSAGE;
        }
        fclose(f);
        unlink(p->json_path);
    } else if (p->json_path && access(p->json_path, W_OK) != 0) {
        cb_log_error("cannot write -J %s: the file is not writable", p->json_path);
        return CB_EUSAGE;
    }
    return CB_OK;
}

static cb_status start_comm(struct cb_boot *boot, struct cb_pairs_opts *p, struct cb_comm **comm)
{
    struct cb_topo_rank place;   /* the NIC nearest this rank's cores, and binding, as the collectives do */
    struct cb_job_setup setup = {p->base.transport, NULL, p->base.bind};
    return cb_job_start(boot, validate_job(p, boot), &setup, &p->base.tcfg, &place, comm);
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

/* One round: connect the pairs (collective), measure, and close. The closing
 * barrier waits longer than one timeout: a failed pair may have spent two. */
static cb_status run_round(struct cb_comm *c, const struct cb_pairs_opts *p, int round, struct buffers *b,
                           struct pair_rec *rec)
{
    int peer = cb_pairs_partner(c->nranks, p->quick, round, c->rank);
    rec->partner = peer;
    rec->status = CB_OK;
    rec->bw = rec->lat_us = -1;
    cb_status st = cb_comm_connect(c, &peer, peer >= 0, &peer, peer >= 0);
    if (st != CB_OK)
        return st;
    if (peer >= 0) {
        measure_pair(c, peer, p, b, rec);
        cb_comm_close_peer(c, peer, rec->status == CB_OK);   /* a failed pair is closed as it is */
    }
    return cb_boot_barrier(c->boot, 3 * c->cfg.timeout_ms, "ending a round of pairs");
}

/* ---- port counters (one rank per machine reads them) ---- */

static struct cb_port_counters *counters_now(struct cb_comm *c)
{
    if (cb_boot_local_rank(c->boot) != 0)
        return NULL;
    struct cb_port_counters *pc = calloc(1, sizeof *pc);
    if (pc)
        cb_port_counters_read(cb_port_counters_root(), pc);
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

/* All rounds, --passes times over: rec[nrounds] gets this rank's medians,
 * deltas its host's port counters. */
static cb_status run_rounds(struct cb_comm *c, const struct cb_pairs_opts *p, struct pair_rec *rec,
                            struct cb_port_deltas *deltas)
{
    struct buffers b;
    int nrounds = cb_pairs_nrounds(c->nranks, p->quick);
    struct pair_rec *passes = calloc((size_t)(nrounds * p->passes) + 1, sizeof *passes);
    double *tmp = calloc((size_t)p->passes + 1, sizeof *tmp);
    cb_status st = alloc_buffers(p, &b);
    if (st == CB_OK && (!passes || !tmp))
        st = CB_ENOMEM;
    st = cb_job_agree(c->boot, st, c->cfg.timeout_ms, "allocating buffers");
    struct cb_port_counters *before = st == CB_OK ? counters_now(c) : NULL;
    for (int q = 0; q < p->passes && st == CB_OK; q++)
        for (int r = 0; r < nrounds && st == CB_OK; r++)
            st = run_round(c, p, r, &b, &passes[q * nrounds + r]);
    if (st == CB_OK) {
        combine_passes(nrounds, p->passes, passes, tmp, rec);
        counters_delta(before, c, deltas);
    }
    free(before);
    free(passes);
    free(tmp);
    free_buffers(&b);
    return st;
}

/* Rank 0: every rank's records into the matrices (the slower rank of each pair). */
static void fill_matrices(int n, int nrounds, const struct pair_rec *all, struct cb_pairs_report *r)
{
    for (int i = 0; i < n * n; i++)
        r->bw[i] = r->lat[i] = -1;
    for (int rank = 0; rank < n; rank++)
        for (int k = 0; k < nrounds; k++) {
            const struct pair_rec *x = &all[rank * nrounds + k];
            int j = x->partner;
            if (j < 0)
                continue;
            double *bw = &r->bw[rank * n + j], *bwt = &r->bw[j * n + rank];
            double *lat = &r->lat[rank * n + j], *latt = &r->lat[j * n + rank];
            double xb = x->status == CB_OK ? x->bw : 0.0;
            double xl = x->status == CB_OK ? x->lat_us : -1;
            *bw = *bwt = (*bw < 0 || xb < *bw) ? xb : *bw;
            *lat = *latt = xl > *lat ? xl : *lat;
            if (x->status != CB_OK)
                r->failed[rank * n + j] = r->failed[j * n + rank] = x->status;
        }
}

static cb_status report_at_root(struct cb_comm *c, const struct cb_pairs_opts *p, const struct pair_rec *all,
                                const struct cb_port_deltas *deltas, int *outliers)
{
    int n = c->nranks, nrounds = cb_pairs_nrounds(n, p->quick);
    struct cb_pairs_report r;
    cb_status st = cb_pairs_report_init(&r, n);
    if (st != CB_OK)
        return st;
    r.quick = p->quick;
    r.nrounds = nrounds;
    r.transport = c->transport_name;
    r.bytes = p->bytes;
    r.iters = p->iters;
    r.warmup = p->warmup;
    r.lat_iters = p->lat_iters;
    r.passes = p->passes;
    r.rule = p->rule;
    r.deltas = deltas;
    for (int i = 0; i < n; i++)
        snprintf(r.hosts[i], sizeof r.hosts[i], "%s", c->peers[i].host);
    fill_matrices(n, nrounds, all, &r);
    st = cb_pairs_classify(n, r.bw, r.lat, &p->rule, &r.verdict);
    if (st == CB_OK) {
        cb_pairs_print(stdout, &r);
        fflush(stdout);
        if (p->json_path)
            st = cb_pairs_write_json(p->json_path, &r);
        *outliers = r.verdict.nslow_hosts + r.verdict.nslow_links > 0;
    }
    cb_pairs_report_free(&r);
    return st;
}

static cb_status gather_and_report(struct cb_comm *c, const struct cb_pairs_opts *p, const struct pair_rec *rec,
                                   const struct cb_port_deltas *deltas, int *outliers)
{
    int n = c->nranks, nrounds = cb_pairs_nrounds(n, p->quick);
    size_t rec_bytes = sizeof *rec * (size_t)nrounds;
    struct pair_rec *all = calloc((size_t)n, rec_bytes);
    struct cb_port_deltas *alld = calloc((size_t)n, sizeof *alld);
    cb_status st = all && alld ? CB_OK : CB_ENOMEM;
    if (st == CB_OK)
        st = cb_boot_gather(c->boot, rec, all, rec_bytes, c->cfg.timeout_ms, "collecting pair results");
    if (st == CB_OK)
        st = cb_boot_gather(c->boot, deltas, alld, sizeof *deltas, c->cfg.timeout_ms, "collecting port counters");
    if (st == CB_OK && c->rank == 0)
        st = report_at_root(c, p, all, alld, outliers);
    double o = *outliers;
    if (st == CB_OK)   /* every rank exits the same way */
        st = cb_boot_allreduce_max(c->boot, &o, 1, c->cfg.timeout_ms, "sharing the verdict");
    *outliers = o > 0;
    free(all);
    free(alld);
    return st;
}

static cb_status run_check(struct cb_boot *boot, struct cb_pairs_opts *p, int *outliers)
{
    struct cb_comm *comm = NULL;
    cb_status st = start_comm(boot, p, &comm);
    if (st != CB_OK)
        return st;
    int nrounds = cb_pairs_nrounds(comm->nranks, p->quick);
    struct pair_rec *rec = calloc((size_t)nrounds + 1, sizeof *rec);
    struct cb_port_deltas *deltas = calloc(1, sizeof *deltas);
    st = rec && deltas ? CB_OK : CB_ENOMEM;
    if (st == CB_OK)
        st = run_rounds(comm, p, rec, deltas);
    if (st == CB_OK)
        st = gather_and_report(comm, p, rec, deltas, outliers);
    free(rec);
    free(deltas);
    if (st == CB_OK)   /* after a failure a peer may be gone: the caller aborts */
        cb_comm_destroy(comm);
    return st;
}

int cb_cmd_pairs(int argc, char **argv)
{
    struct cb_pairs_opts p;
    struct cb_boot *boot;
    int report = cb_boot_launcher_rank() <= 0, outliers = 0;
    if (cb_pairs_parse(argc, argv, &p, report) != CB_OK)
        return 2;
    if (p.show_help) {
        if (report)
            cb_pairs_usage(stdout);
        return 0;
    }
    cb_status st = cb_boot_init(&argc, &argv, p.base.tcfg.timeout_ms, &boot);
    if (st != CB_OK)
        return cb_status_exit_code(st);
    st = run_check(boot, &p, &outliers);
    cb_job_end(boot, st);
    if (st != CB_OK)
        return cb_status_exit_code(st);
    return outliers ? 1 : 0;
}
