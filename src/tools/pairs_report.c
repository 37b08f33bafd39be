/* `collbench pairs` output: the matrices and verdicts as text (stdout) and JSON. */
#include "pairs.h"
#include "core/wire.h"
#include "report/json_writer.h"
#include "report/outfile.h"
#include "tools/netdev_counters.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MB 1e6

cb_status cb_pairs_report_init(struct cb_pairs_report *r, int n, int passes)
{
    size_t nn = (size_t)n * (size_t)n + 1, np = (size_t)n * (size_t)n * (size_t)passes + 1;
    memset(r, 0, sizeof *r);
    r->n = n;
    r->passes = passes;
    r->hosts = calloc((size_t)n + 1, sizeof *r->hosts);
    r->bw = calloc(nn, sizeof *r->bw);
    r->lat = calloc(nn, sizeof *r->lat);
    r->failed = calloc(nn, sizeof *r->failed);
    r->bw_pass = malloc(np * sizeof *r->bw_pass);
    r->lat_pass = malloc(np * sizeof *r->lat_pass);
    r->retrans = malloc(nn * sizeof *r->retrans);
    r->outsegs = malloc(nn * sizeof *r->outsegs);
    r->rdma = calloc(nn, sizeof *r->rdma);
    if (r->hosts && r->bw && r->lat && r->failed && r->bw_pass && r->lat_pass && r->retrans && r->outsegs &&
        r->rdma) {
        for (size_t i = 0; i < np; i++)
            r->bw_pass[i] = r->lat_pass[i] = -1;
        for (size_t i = 0; i < nn; i++) {
            r->retrans[i] = r->outsegs[i] = -1;
            r->rdma[i].total = -1;
        }
        return CB_OK;
    }
    cb_log_error("out of memory for the %d x %d pair matrices", n, n);
    cb_pairs_report_free(r);
    return CB_ENOMEM;
}

void cb_pairs_report_free(struct cb_pairs_report *r)
{
    free(r->hosts);
    free(r->bw);
    free(r->lat);
    free(r->failed);
    free(r->bw_pass);
    free(r->lat_pass);
    free(r->retrans);
    free(r->outsegs);
    free(r->flaps);
    free(r->rdma);
    r->rdma = NULL;
    cb_pairs_verdict_free(&r->verdict);
    cb_pairs_health_free(&r->health);
    r->hosts = NULL;
    r->bw = r->lat = r->bw_pass = r->lat_pass = NULL;
    r->failed = NULL;
    r->retrans = r->outsegs = NULL;
    r->flaps = NULL;
}

static int nfailed_pairs(const struct cb_pairs_report *r)
{
    int k = 0;
    for (int i = 0; i < r->n; i++)
        for (int j = i + 1; j < r->n; j++)
            k += r->failed[i * r->n + j] != 0;
    return k;
}

int cb_pairs_report_named(const struct cb_pairs_report *r)
{
    const struct cb_pairs_health *h = &r->health;
    return r->verdict.nslow_hosts + r->verdict.nslow_links + h->intermittent.nhosts + h->intermittent.nlinks +
           h->lossy.nhosts + h->lossy.nlinks + r->nflaps + nfailed_pairs(r) > 0;
}

/* Median of a host's measured pairs in matrix m (bandwidth or latency). */
static double host_median(const struct cb_pairs_report *r, const double *m, int h)
{
    double *v = calloc((size_t)r->n + 1, sizeof *v);
    int k = 0;
    if (!v)
        return NAN;
    for (int j = 0; j < r->n; j++)
        if (j != h && m[h * r->n + j] >= 0)
            v[k++] = m[h * r->n + j];
    double med = cb_pairs_median(v, k);
    free(v);
    return med;
}

/* ---- naming a rank: one host's end of one rail ---- */

/* Several ranks per host: each rank is its host's end of one rail, and the
 * verdicts name host and rail; one rank per host keeps naming ranks. */
static int by_rail(const struct cb_pairs_report *r)
{
    return r->rails && r->rails->per_host > 1;
}

static const char *rail_of(const struct cb_pairs_report *r, int i)
{
    return r->links && r->links[i].rail[0] ? r->links[i].rail : "-";
}

/* "rank 3 (nodeb(10.0.0.2))", by rail "host nodeb(10.0.0.2) rail rxe1:1 (rank 3)". */
static void print_end(FILE *out, const struct cb_pairs_report *r, int i)
{
    if (by_rail(r))
        fprintf(out, "host %s rail %s (rank %d)", r->hosts[i], rail_of(r, i), i);
    else
        fprintf(out, "rank %d (%s)", i, r->hosts[i]);
}

/* "rank 0 (A) <-> rank 3 (B)", by rail "host A rail rxe1:1 <-> host B rail rxe1:1 (ranks 1, 3)". */
static void print_ends(FILE *out, const struct cb_pairs_report *r, int i, int j)
{
    if (by_rail(r))
        fprintf(out, "host %s rail %s <-> host %s rail %s (ranks %d, %d)", r->hosts[i], rail_of(r, i), r->hosts[j],
                rail_of(r, j), i, j);
    else
        fprintf(out, "rank %d (%s) <-> rank %d (%s)", i, r->hosts[i], j, r->hosts[j]);
}

/* ---- text ---- */

static void print_matrix(FILE *out, const struct cb_pairs_report *r, const double *m, double scale,
                         int slow_bit, const char *title)
{
    fprintf(out, "# %s (* = slow)\n#%6s", title, "rank");
    for (int j = 0; j < r->n; j++)
        fprintf(out, " %9d", j);
    fputc('\n', out);
    for (int i = 0; i < r->n; i++) {
        fprintf(out, "#%6d", i);
        for (int j = 0; j < r->n; j++) {
            double x = m[i * r->n + j];
            if (i == j || x < 0)
                fprintf(out, " %9s", r->failed[i * r->n + j] ? "failed" : "-");
            else
                fprintf(out, " %8.*f%c", x / scale < 100 ? 1 : 0, x / scale,
                        r->verdict.pair_slow[i * r->n + j] & slow_bit ? '*' : ' ');
        }
        fputc('\n', out);
    }
}

static void print_header(FILE *out, const struct cb_pairs_report *r)
{
    fprintf(out, "# collbench pairs: %d ranks, transport %s, %zu bytes each way x %d exchanges (+%d warm-up), "
                 "latency p50 of %d 8-byte exchanges, %s in %d rounds, medians of %d passes\n",
            r->n, r->transport, r->bytes, r->iters, r->warmup, r->lat_iters,
            r->quick ? "ring neighbours" : "all pairs", r->nrounds, r->passes);
    if (by_rail(r))
        fprintf(out, "# %d hosts x %d ranks: rail by rail, local rank i of each host against local rank i of "
                     "the others\n", r->rails->nhosts, r->rails->per_host);
    for (int i = 0; i < r->n; i++) {
        fprintf(out, "#  rank %4d: %s", i, r->hosts[i]);
        if (by_rail(r))
            fprintf(out, " local rank %d rail %s", r->rails->local[i], rail_of(r, i));
        fputc('\n', out);
    }
}

static void print_reference(FILE *out, const struct cb_pairs_report *r)
{
    const struct cb_pairs_verdict *v = &r->verdict;
    fprintf(out, "# median: bandwidth %.1f MB/s (noise x%.2f, slow below %.1f), latency %.1f us "
                 "(noise x%.2f, slow above %.1f)\n",
            v->ref_bw / MB, exp(v->sigma_bw), v->limit_bw / MB, v->ref_lat, exp(v->sigma_lat), v->limit_lat);
}

static const char *why(int slow)
{
    return slow == (CB_SLOW_BW | CB_SLOW_LAT) ? "bandwidth and latency" : slow == CB_SLOW_BW ? "bandwidth" : "latency";
}

static void print_verdicts(FILE *out, const struct cb_pairs_report *r)
{
    const struct cb_pairs_verdict *v = &r->verdict;
    int n = r->n;
    for (int h = 0; h < n; h++)
        if (v->host_slow[h]) {
            fprintf(out, "slow host: ");
            print_end(out, r, h);
            fprintf(out, ": %d of %d pairs slow, median %.1f MB/s vs median %.1f MB/s, %.1f us vs %.1f us\n",
                    v->host_nslow[h], v->host_pairs[h], host_median(r, r->bw, h) / MB, v->ref_bw / MB,
                    host_median(r, r->lat, h), v->ref_lat);
        }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            if (!cb_pairs_is_slow_link(v, i, j))
                continue;
            fprintf(out, "slow link: ");
            print_ends(out, r, i, j);
            fprintf(out, ": ");
            if (r->failed[i * n + j])
                fprintf(out, "no data (%s) vs median %.1f MB/s\n", cb_status_str((cb_status)r->failed[i * n + j]),
                        v->ref_bw / MB);
            else
                fprintf(out, "%s: %.1f MB/s vs median %.1f MB/s, %.1f us vs median %.1f us\n",
                        why(v->pair_slow[i * n + j]), r->bw[i * n + j] / MB, v->ref_bw / MB, r->lat[i * n + j],
                        v->ref_lat);
        }
}

/* "210.3 15.2 198.7" MB/s: a pair's passes. */
static void print_passes(FILE *out, const struct cb_pairs_report *r, int i, int j)
{
    size_t nn = (size_t)r->n * (size_t)r->n;
    for (int q = 0; q < r->passes; q++) {
        double x = r->bw_pass[q * nn + (size_t)(i * r->n + j)];
        if (x < 0)
            fprintf(out, "%s-", q ? " " : "");
        else
            fprintf(out, "%s%.1f", q ? " " : "", x / MB);
    }
}

/* The pair of host h with the largest value of m (its worst). */
static int worst_partner(const struct cb_pairs_report *r, const double *m, int h)
{
    int best = -1;
    for (int j = 0; j < r->n; j++)
        if (j != h && !isnan(m[h * r->n + j]) && (best < 0 || m[h * r->n + j] > m[h * r->n + best]))
            best = j;
    return best;
}

static void print_intermittent(FILE *out, const struct cb_pairs_report *r)
{
    const struct cb_pairs_flags *f = &r->health.intermittent;
    const double *sp = r->health.spread;
    int n = r->n;
    for (int h = 0; h < n; h++) {
        int j = f->host[h] ? worst_partner(r, sp, h) : -1;
        if (j < 0)
            continue;
        fprintf(out, "intermittent host: ");
        print_end(out, r, h);
        fprintf(out, ": %d of %d pairs vary more than x%g between passes; worst with rank %d: x%.1f, passes ",
                f->host_nflagged[h], f->host_pairs[h], r->rule.max_spread, j, sp[h * n + j]);
        print_passes(out, r, h, j);
        fprintf(out, " MB/s\n");
    }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (cb_pairs_flags_is_link(f, n, i, j)) {
                fprintf(out, "intermittent link: ");
                print_ends(out, r, i, j);
                fprintf(out, ": x%.1f between passes (bound x%g), passes ", sp[i * n + j], r->rule.max_spread);
                print_passes(out, r, i, j);
                fprintf(out, " MB/s\n");
            }
}

/* "rank 0 rxe0:1 rcvd_seq_err +31, rank 1 rxe0:1 out_of_seq_request +29": which counters moved. */
static void print_rdma_counters(FILE *out, const struct cb_pairs_rdma *x)
{
    for (int k = 0; k < x->n; k++)
        fprintf(out, "%srank %d %s %s +%lld", k ? ", " : "", x->c[k].rank, x->c[k].link, x->c[k].name,
                x->c[k].delta);
    if (x->truncated)
        fprintf(out, ", more not shown");
}

/* The pair of host h with the most RDMA retransmissions. */
static int worst_rdma_partner(const struct cb_pairs_report *r, int h)
{
    int best = -1;
    for (int j = 0; j < r->n; j++)
        if (j != h && r->rdma[h * r->n + j].total >= 0 &&
            (best < 0 || r->rdma[h * r->n + j].total > r->rdma[h * r->n + best].total))
            best = j;
    return best;
}

static void print_lossy_host(FILE *out, const struct cb_pairs_report *r, int h)
{
    const struct cb_pairs_flags *f = &r->health.lossy;
    const double *pct = r->health.retrans_pct;
    int n = r->n, j = worst_partner(r, pct, h);
    if (j >= 0) {
        fprintf(out, "lossy host: ");
        print_end(out, r, h);
        fprintf(out, ": %d of %d pairs retransmitted more than %g%% of their TCP segments; worst with rank %d: "
                     "%.2f%% (%lld of %lld)\n", f->host_nflagged[h], f->host_pairs[h], r->rule.max_retrans_pct, j,
                pct[h * n + j], r->retrans[h * n + j], r->outsegs[h * n + j]);
        return;
    }
    if ((j = worst_rdma_partner(r, h)) < 0)
        return;
    fprintf(out, "lossy host: ");
    print_end(out, r, h);
    fprintf(out, ": %d of %d pairs moved the RDMA retransmission counters more than %lld times; worst with "
                 "rank %d: +%lld: ", f->host_nflagged[h], f->host_pairs[h], r->rule.max_rdma_retrans, j,
            r->rdma[h * n + j].total);
    print_rdma_counters(out, &r->rdma[h * n + j]);
    fputc('\n', out);
}

static void print_lossy_link(FILE *out, const struct cb_pairs_report *r, int i, int j)
{
    int n = r->n, at = i * n + j;
    const double *pct = r->health.retrans_pct;
    fprintf(out, "lossy link: ");
    print_ends(out, r, i, j);
    fprintf(out, ": ");
    if (!r->health.rdma_lossy[at]) {
        fprintf(out, "%.2f%% of TCP segments retransmitted (%lld of %lld, bound %g%%)\n", pct[at], r->retrans[at],
                r->outsegs[at], r->rule.max_retrans_pct);
        return;
    }
    fprintf(out, "RDMA retransmission counters +%lld (bound %lld): ", r->rdma[at].total, r->rule.max_rdma_retrans);
    print_rdma_counters(out, &r->rdma[at]);
    fputc('\n', out);
}

static void print_lossy(FILE *out, const struct cb_pairs_report *r)
{
    const struct cb_pairs_flags *f = &r->health.lossy;
    int n = r->n;
    for (int h = 0; h < n; h++)
        if (f->host[h])
            print_lossy_host(out, r, h);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (cb_pairs_flags_is_link(f, n, i, j))
                print_lossy_link(out, r, i, j);
}

/* Pairs whose RDMA retransmission counters moved, within the bound: shown, not named. */
static void print_rdma_below(FILE *out, const struct cb_pairs_report *r)
{
    int n = r->n;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            const struct cb_pairs_rdma *x = &r->rdma[i * n + j];
            if (x->total <= 0 || r->health.lossy.pair[i * n + j])
                continue;
            fprintf(out, "# rdma retransmissions within the bound (%lld): rank %d <-> rank %d +%lld: ",
                    r->rule.max_rdma_retrans, i, j, x->total);
            print_rdma_counters(out, x);
            fputc('\n', out);
        }
}

static void print_flaps(FILE *out, const struct cb_pairs_report *r)
{
    for (int k = 0; k < r->nflaps; k++) {
        const struct cb_pairs_flap *x = &r->flaps[k];
        char from[16], to[16];
        cb_netdev_clock(x->from, from, sizeof from);
        cb_netdev_clock(x->to, to, sizeof to);
        fprintf(out, "link flap: ");
        print_end(out, r, x->rank);
        fprintf(out, " %s carrier_changes %lld -> %lld (+%lld) in pass %d round %d", x->ifname, x->before, x->after,
                x->after - x->before, x->pass + 1, x->round + 1);
        if (x->partner >= 0)
            fprintf(out, " (with rank %d)", x->partner);
        fprintf(out, ", between %s and %s UTC\n", from, to);
    }
}

static void print_health(FILE *out, const struct cb_pairs_report *r)
{
    print_flaps(out, r);
    print_lossy(out, r);
    print_intermittent(out, r);
    if (!cb_pairs_report_named(r))
        fprintf(out, "no outliers\n");
    print_rdma_below(out, r);
}

static const char *kind_name(const char *counter)
{
    const char *base = strrchr(counter, '/');
    return cb_wire_kind(base ? base + 1 : counter) == CB_WIRE_CONGESTION ? "congestion" : "error";
}

static void print_counters(FILE *out, const struct cb_pairs_report *r)
{
    int any = 0;
    for (int h = 0; h < r->n; h++) {
        const struct cb_port_deltas *d = &r->deltas[h];
        for (int k = 0; k < d->n; k++, any++)
            fprintf(out, "port counter: rank %d (%s) %s +%llu (%s)\n", h, r->hosts[h], d->c[k].name,
                    d->c[k].value, kind_name(d->c[k].name));
        if (d->truncated)
            fprintf(out, "port counter: rank %d (%s): more counters changed than shown\n", h, r->hosts[h]);
    }
    if (!any)
        fprintf(out, "# port counters: no error or congestion counter changed\n");
}

void cb_pairs_print(FILE *out, const struct cb_pairs_report *r)
{
    print_header(out, r);
    print_matrix(out, r, r->bw, MB, CB_SLOW_BW,
                 "bidirectional bandwidth, MB/s (sent + received by one rank; the slower rank of the pair)");
    print_matrix(out, r, r->lat, 1.0, CB_SLOW_LAT, "latency, us (p50 of 8-byte exchanges; the slower rank)");
    print_reference(out, r);
    print_verdicts(out, r);
    print_health(out, r);
    print_counters(out, r);
}

/* ---- JSON ---- */

/* A figure that was measured, or null (negative = not measured). */
static void kv_measure(struct cb_jw *w, const char *key, double x)
{
    cb_jw_key(w, key);
    if (isfinite(x) && x >= 0)
        cb_jw_double(w, x);
    else
        cb_jw_null(w);
}

static void json_header(struct cb_jw *w, const struct cb_pairs_report *r)
{
    char stamp[32];
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    cb_jw_kv_int(w, "collbench_pairs", 1);
    cb_jw_kv_string(w, "time", stamp);
    cb_jw_kv_string(w, "transport", r->transport);
    cb_jw_kv_int(w, "nranks", r->n);
    cb_jw_kv_size(w, "size_bytes", r->bytes);
    cb_jw_kv_int(w, "iters", r->iters);
    cb_jw_kv_int(w, "warmup", r->warmup);
    cb_jw_kv_int(w, "lat_iters", r->lat_iters);
    cb_jw_kv_int(w, "passes", r->passes);
    cb_jw_kv_bool(w, "quick", r->quick);
    cb_jw_kv_int(w, "rounds", r->nrounds);
    cb_jw_kv_int(w, "nhosts", r->rails ? r->rails->nhosts : r->n);
    cb_jw_kv_int(w, "ranks_per_host", r->rails ? r->rails->per_host : 1);
    cb_jw_key(w, "rule");
    cb_jw_open(w, '{');
    cb_jw_kv_double(w, "bw_factor", r->rule.bw_factor);
    cb_jw_kv_double(w, "lat_factor", r->rule.lat_factor);
    cb_jw_kv_double(w, "nsigma", r->rule.nsigma);
    cb_jw_kv_double(w, "max_spread", r->rule.max_spread);
    cb_jw_kv_double(w, "max_retrans_pct", r->rule.max_retrans_pct);
    cb_jw_kv_int(w, "min_retrans", CB_MIN_RETRANS);
    cb_jw_kv_int(w, "max_rdma_retrans", r->rule.max_rdma_retrans);
    cb_jw_close(w);
}

static void json_hosts(struct cb_jw *w, const struct cb_pairs_report *r)
{
    const struct cb_pairs_verdict *v = &r->verdict;
    cb_jw_key(w, "median");
    cb_jw_open(w, '{');
    kv_measure(w, "bw_MBps", v->ref_bw / MB);
    kv_measure(w, "bw_sigma_log", v->sigma_bw);
    kv_measure(w, "bw_limit_MBps", v->limit_bw / MB);
    kv_measure(w, "lat_us", v->ref_lat);
    kv_measure(w, "lat_sigma_log", v->sigma_lat);
    kv_measure(w, "lat_limit_us", v->limit_lat);
    cb_jw_close(w);
    cb_jw_key(w, "hosts");
    cb_jw_open(w, '[');
    for (int i = 0; i < r->n; i++) {
        cb_jw_open(w, '{');
        cb_jw_kv_int(w, "rank", i);
        cb_jw_kv_string(w, "host", r->hosts[i]);
        cb_jw_kv_int(w, "host_index", r->rails ? r->rails->host[i] : i);
        cb_jw_kv_int(w, "local_rank", r->rails ? r->rails->local[i] : 0);
        cb_jw_kv_string(w, "rail", rail_of(r, i));
        cb_jw_kv_bool(w, "slow", v->host_slow[i]);
        cb_jw_kv_int(w, "pairs", v->host_pairs[i]);
        cb_jw_kv_int(w, "slow_pairs", v->host_nslow[i]);
        kv_measure(w, "median_bw_MBps", host_median(r, r->bw, i) / MB);
        kv_measure(w, "median_lat_us", host_median(r, r->lat, i));
        cb_jw_kv_bool(w, "intermittent", r->health.intermittent.host[i]);
        cb_jw_kv_bool(w, "lossy", r->health.lossy.host[i]);
        cb_jw_close(w);
    }
    cb_jw_close(w);
}

static const char *pair_verdict(const struct cb_pairs_report *r, int i, int j)
{
    const struct cb_pairs_verdict *v = &r->verdict;
    const struct cb_pairs_health *h = &r->health;
    if (cb_pairs_is_slow_link(v, i, j))
        return "slow link";
    if (v->host_slow[i] || v->host_slow[j])
        return "slow host";
    if (cb_pairs_flags_is_link(&h->lossy, r->n, i, j))
        return "lossy link";
    if (h->lossy.host[i] || h->lossy.host[j])
        return "lossy host";
    if (cb_pairs_flags_is_link(&h->intermittent, r->n, i, j))
        return "intermittent link";
    if (h->intermittent.host[i] || h->intermittent.host[j])
        return "intermittent host";
    return "ok";
}

static void json_list(struct cb_jw *w, const char *key, const double *m, size_t stride, int at, int count,
                      double scale)
{
    cb_jw_key(w, key);
    cb_jw_open(w, '[');
    for (int q = 0; q < count; q++) {
        double x = m[(size_t)q * stride + (size_t)at];
        if (x < 0)
            cb_jw_null(w);
        else
            cb_jw_double(w, x / scale);
    }
    cb_jw_close(w);
}

/* The pair's RDMA retransmission counters: the sum (null: no RDMA port)
 * and each counter that moved, with the rank of its host. */
static void json_pair_rdma(struct cb_jw *w, const struct cb_pairs_rdma *x)
{
    cb_jw_key(w, "rdma_retrans");
    if (x->total >= 0)
        cb_jw_int(w, x->total);
    else
        cb_jw_null(w);
    cb_jw_key(w, "rdma_counters");
    cb_jw_open(w, '[');
    for (int k = 0; k < x->n; k++) {
        cb_jw_open(w, '{');
        cb_jw_kv_int(w, "rank", x->c[k].rank);
        cb_jw_kv_string(w, "link", x->c[k].link);
        cb_jw_kv_string(w, "counter", x->c[k].name);
        cb_jw_kv_int(w, "delta", x->c[k].delta);
        cb_jw_close(w);
    }
    cb_jw_close(w);
    cb_jw_kv_bool(w, "rdma_counters_truncated", x->truncated);
}

/* Every pass's figures, their spread, and the pair's TCP and RDMA retransmissions. */
static void json_pair_health(struct cb_jw *w, const struct cb_pairs_report *r, int i, int j)
{
    const struct cb_pairs_health *h = &r->health;
    int n = r->n, at = i * n + j;
    size_t nn = (size_t)n * (size_t)n;
    json_list(w, "bw_passes_MBps", r->bw_pass, nn, at, r->passes, MB);
    json_list(w, "lat_passes_us", r->lat_pass, nn, at, r->passes, 1.0);
    kv_measure(w, "spread", h->spread[at]);
    cb_jw_kv_bool(w, "intermittent", h->intermittent.pair[at]);
    cb_jw_key(w, "retrans_segs");
    if (r->retrans[at] >= 0)
        cb_jw_int(w, r->retrans[at]);
    else
        cb_jw_null(w);
    cb_jw_key(w, "out_segs");
    if (r->retrans[at] >= 0)
        cb_jw_int(w, r->outsegs[at]);
    else
        cb_jw_null(w);
    kv_measure(w, "retrans_pct", h->retrans_pct[at]);
    json_pair_rdma(w, &r->rdma[at]);
    cb_jw_kv_bool(w, "lossy", h->lossy.pair[at]);
}

static void json_flaps(struct cb_jw *w, const struct cb_pairs_report *r)
{
    cb_jw_key(w, "flaps");
    cb_jw_open(w, '[');
    for (int k = 0; k < r->nflaps; k++) {
        const struct cb_pairs_flap *x = &r->flaps[k];
        cb_jw_open(w, '{');
        cb_jw_kv_int(w, "rank", x->rank);
        cb_jw_kv_string(w, "host", r->hosts[x->rank]);
        cb_jw_kv_string(w, "interface", x->ifname);
        cb_jw_kv_int(w, "carrier_changes_before", x->before);
        cb_jw_kv_int(w, "carrier_changes_after", x->after);
        cb_jw_kv_int(w, "pass", x->pass + 1);
        cb_jw_kv_int(w, "round", x->round + 1);
        cb_jw_kv_int(w, "partner", x->partner);
        cb_jw_kv_double(w, "from", x->from);
        cb_jw_kv_double(w, "to", x->to);
        cb_jw_close(w);
    }
    cb_jw_close(w);
}

static void json_pair(struct cb_jw *w, const struct cb_pairs_report *r, int i, int j)
{
    int n = r->n, s = r->verdict.pair_slow[i * n + j];
    cb_jw_open(w, '{');
    cb_jw_kv_int(w, "a", i);
    cb_jw_kv_int(w, "b", j);
    cb_jw_kv_string(w, "host_a", r->hosts[i]);
    cb_jw_kv_string(w, "rail_a", rail_of(r, i));
    cb_jw_kv_string(w, "host_b", r->hosts[j]);
    cb_jw_kv_string(w, "rail_b", rail_of(r, j));
    kv_measure(w, "bw_MBps", r->failed[i * n + j] ? -1 : r->bw[i * n + j] / MB);
    kv_measure(w, "lat_us", r->lat[i * n + j]);
    cb_jw_kv_bool(w, "slow_bw", s & CB_SLOW_BW);
    cb_jw_kv_bool(w, "slow_lat", s & CB_SLOW_LAT);
    cb_jw_kv_string(w, "failed", r->failed[i * n + j] ? cb_status_str((cb_status)r->failed[i * n + j]) : NULL);
    json_pair_health(w, r, i, j);
    cb_jw_kv_string(w, "verdict", pair_verdict(r, i, j));
    cb_jw_close(w);
}

static void json_pairs(struct cb_jw *w, const struct cb_pairs_report *r)
{
    int n = r->n;
    cb_jw_key(w, "pairs");
    cb_jw_open(w, '[');
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (r->bw[i * n + j] >= 0 || r->failed[i * n + j])
                json_pair(w, r, i, j);
    cb_jw_close(w);
}

static void json_tail(struct cb_jw *w, const struct cb_pairs_report *r)
{
    cb_jw_key(w, "port_counters");
    cb_jw_open(w, '[');
    for (int h = 0; h < r->n; h++)
        for (int k = 0; k < r->deltas[h].n; k++) {
            cb_jw_open(w, '{');
            cb_jw_kv_int(w, "rank", h);
            cb_jw_kv_string(w, "counter", r->deltas[h].c[k].name);
            cb_jw_kv_size(w, "delta", (size_t)r->deltas[h].c[k].value);
            cb_jw_kv_string(w, "kind", kind_name(r->deltas[h].c[k].name));
            cb_jw_close(w);
        }
    cb_jw_close(w);
    json_flaps(w, r);
    const struct cb_pairs_health *h = &r->health;
    cb_jw_kv_int(w, "slow_hosts", r->verdict.nslow_hosts);
    cb_jw_kv_int(w, "slow_links", r->verdict.nslow_links);
    cb_jw_kv_int(w, "lossy_hosts", h->lossy.nhosts);
    cb_jw_kv_int(w, "lossy_links", h->lossy.nlinks);
    cb_jw_kv_int(w, "intermittent_hosts", h->intermittent.nhosts);
    cb_jw_kv_int(w, "intermittent_links", h->intermittent.nlinks);
    cb_jw_kv_string(w, "verdict", cb_pairs_report_named(r) ? "outliers" : "no outliers");
}

cb_status cb_pairs_check_json(const char *path)
{
    return cb_outfile_check(path, "JSON", "-J");
}

cb_status cb_pairs_write_json(const char *path, const struct cb_pairs_report *r)
{
    struct cb_outfile out;
    struct cb_jw w;
    cb_status st = cb_outfile_open(path, "JSON", "-J", &out);
    if (st != CB_OK)
        return st;
    cb_jw_init(&w, out.f);
    cb_jw_open(&w, '{');
    json_header(&w, r);
    json_hosts(&w, r);
    json_pairs(&w, r);
    json_tail(&w, r);
    cb_jw_close(&w);
    if (!cb_jw_done(&w)) {
        cb_log_error("internal error: JSON nesting broken writing %s; file not written", path);
        cb_outfile_abort(&out);
        return CB_EINTERNAL;
    }
    return cb_outfile_commit(&out);
}
