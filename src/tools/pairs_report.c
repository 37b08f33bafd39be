/* `collbench pairs` output: the matrices and verdicts as text (stdout) and JSON. */
#include "pairs.h"
#include "tools/netdev_counters.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
    if (r->hosts && r->bw && r->lat && r->failed && r->bw_pass && r->lat_pass && r->retrans && r->outsegs) {
        for (size_t i = 0; i < np; i++)
            r->bw_pass[i] = r->lat_pass[i] = -1;
        for (size_t i = 0; i < nn; i++)
            r->retrans[i] = r->outsegs[i] = -1;
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
    for (int i = 0; i < r->n; i++)
        fprintf(out, "#  rank %4d: %s\n", i, r->hosts[i]);
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
        if (v->host_slow[h])
            fprintf(out, "slow host: rank %d (%s): %d of %d pairs slow, median %.1f MB/s vs median %.1f MB/s, "
                         "%.1f us vs %.1f us\n",
                    h, r->hosts[h], v->host_nslow[h], v->host_pairs[h], host_median(r, r->bw, h) / MB,
                    v->ref_bw / MB, host_median(r, r->lat, h), v->ref_lat);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            if (!cb_pairs_is_slow_link(v, i, j))
                continue;
            fprintf(out, "slow link: rank %d (%s) <-> rank %d (%s): ", i, r->hosts[i], j, r->hosts[j]);
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
        fprintf(out, "intermittent host: rank %d (%s): %d of %d pairs vary more than x%g between passes; "
                     "worst with rank %d: x%.1f, passes ", h, r->hosts[h], f->host_nflagged[h], f->host_pairs[h],
                r->rule.max_spread, j, sp[h * n + j]);
        print_passes(out, r, h, j);
        fprintf(out, " MB/s\n");
    }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (cb_pairs_flags_is_link(f, n, i, j)) {
                fprintf(out, "intermittent link: rank %d (%s) <-> rank %d (%s): x%.1f between passes (bound x%g), "
                             "passes ", i, r->hosts[i], j, r->hosts[j], sp[i * n + j], r->rule.max_spread);
                print_passes(out, r, i, j);
                fprintf(out, " MB/s\n");
            }
}

static void print_lossy(FILE *out, const struct cb_pairs_report *r)
{
    const struct cb_pairs_flags *f = &r->health.lossy;
    const double *pct = r->health.retrans_pct;
    int n = r->n;
    for (int h = 0; h < n; h++) {
        int j = f->host[h] ? worst_partner(r, pct, h) : -1;
        if (j >= 0)
            fprintf(out, "lossy host: rank %d (%s): %d of %d pairs retransmitted more than %g%% of their TCP "
                         "segments; worst with rank %d: %.2f%% (%lld of %lld)\n", h, r->hosts[h],
                    f->host_nflagged[h], f->host_pairs[h], r->rule.max_retrans_pct, j, pct[h * n + j],
                    r->retrans[h * n + j], r->outsegs[h * n + j]);
    }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (cb_pairs_flags_is_link(f, n, i, j))
                fprintf(out, "lossy link: rank %d (%s) <-> rank %d (%s): %.2f%% of TCP segments retransmitted "
                             "(%lld of %lld, bound %g%%)\n", i, r->hosts[i], j, r->hosts[j], pct[i * n + j],
                        r->retrans[i * n + j], r->outsegs[i * n + j], r->rule.max_retrans_pct);
}

static void print_flaps(FILE *out, const struct cb_pairs_report *r)
{
    for (int k = 0; k < r->nflaps; k++) {
        const struct cb_pairs_flap *x = &r->flaps[k];
        char from[16], to[16];
        cb_netdev_clock(x->from, from, sizeof from);
        cb_netdev_clock(x->to, to, sizeof to);
        fprintf(out, "link flap: rank %d (%s) %s carrier_changes %lld -> %lld (+%lld) in pass %d round %d",
                x->rank, r->hosts[x->rank], x->ifname, x->before, x->after, x->after - x->before, x->pass + 1,
                x->round + 1);
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
}

static const char *kind_name(const char *counter)
{
    const char *base = strrchr(counter, '/');
    return cb_port_counter_kind(base ? base + 1 : counter) == CB_COUNTER_CONGESTION ? "congestion" : "error";
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

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, double x)
{
    if (isfinite(x) && x >= 0)
        fprintf(f, "%.6g", x);
    else
        fputs("null", f);
}

static void json_header(FILE *f, const struct cb_pairs_report *r)
{
    char stamp[32];
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    fprintf(f, "{\n  \"collbench_pairs\": 1,\n  \"time\": \"%s\",\n  \"transport\": ", stamp);
    json_string(f, r->transport);
    fprintf(f, ",\n  \"nranks\": %d,\n  \"size_bytes\": %zu,\n  \"iters\": %d,\n  \"warmup\": %d,\n"
               "  \"lat_iters\": %d,\n  \"passes\": %d,\n  \"quick\": %s,\n  \"rounds\": %d,\n",
            r->n, r->bytes, r->iters, r->warmup, r->lat_iters, r->passes, r->quick ? "true" : "false", r->nrounds);
    fprintf(f, "  \"rule\": {\"bw_factor\": %g, \"lat_factor\": %g, \"nsigma\": %g, \"max_spread\": %g, "
               "\"max_retrans_pct\": %g, \"min_retrans\": %d},\n",
            r->rule.bw_factor, r->rule.lat_factor, r->rule.nsigma, r->rule.max_spread, r->rule.max_retrans_pct,
            CB_MIN_RETRANS);
    const struct cb_pairs_verdict *v = &r->verdict;
    fprintf(f, "  \"median\": {\"bw_MBps\": ");
    json_num(f, v->ref_bw / MB);
    fprintf(f, ", \"bw_sigma_log\": ");
    json_num(f, v->sigma_bw);
    fprintf(f, ", \"bw_limit_MBps\": ");
    json_num(f, v->limit_bw / MB);
    fprintf(f, ", \"lat_us\": ");
    json_num(f, v->ref_lat);
    fprintf(f, ", \"lat_sigma_log\": ");
    json_num(f, v->sigma_lat);
    fprintf(f, ", \"lat_limit_us\": ");
    json_num(f, v->limit_lat);
    fprintf(f, "},\n  \"hosts\": [");
    for (int i = 0; i < r->n; i++) {
        fprintf(f, "%s\n    {\"rank\": %d, \"host\": ", i ? "," : "", i);
        json_string(f, r->hosts[i]);
        fprintf(f, ", \"slow\": %s, \"pairs\": %d, \"slow_pairs\": %d, \"median_bw_MBps\": ",
                v->host_slow[i] ? "true" : "false", v->host_pairs[i], v->host_nslow[i]);
        json_num(f, host_median(r, r->bw, i) / MB);
        fprintf(f, ", \"median_lat_us\": ");
        json_num(f, host_median(r, r->lat, i));
        fprintf(f, ", \"intermittent\": %s, \"lossy\": %s}", r->health.intermittent.host[i] ? "true" : "false",
                r->health.lossy.host[i] ? "true" : "false");
    }
    fprintf(f, "\n  ],\n");
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

static void json_list(FILE *f, const char *key, const double *m, size_t stride, int at, int count, double scale)
{
    fprintf(f, ", \"%s\": [", key);
    for (int q = 0; q < count; q++) {
        double x = m[(size_t)q * stride + (size_t)at];
        fputs(q ? ", " : "", f);
        json_num(f, x < 0 ? -1 : x / scale);
    }
    fputc(']', f);
}

/* Every pass's figures, their spread, and the pair's TCP retransmissions. */
static void json_pair_health(FILE *f, const struct cb_pairs_report *r, int i, int j)
{
    const struct cb_pairs_health *h = &r->health;
    int n = r->n, at = i * n + j;
    size_t nn = (size_t)n * (size_t)n;
    json_list(f, "bw_passes_MBps", r->bw_pass, nn, at, r->passes, MB);
    json_list(f, "lat_passes_us", r->lat_pass, nn, at, r->passes, 1.0);
    fprintf(f, ", \"spread\": ");
    json_num(f, h->spread[at]);
    fprintf(f, ", \"intermittent\": %s, \"retrans_segs\": ", h->intermittent.pair[at] ? "true" : "false");
    if (r->retrans[at] >= 0)
        fprintf(f, "%lld, \"out_segs\": %lld, \"retrans_pct\": ", r->retrans[at], r->outsegs[at]);
    else
        fputs("null, \"out_segs\": null, \"retrans_pct\": ", f);
    json_num(f, h->retrans_pct[at]);
    fprintf(f, ", \"lossy\": %s", h->lossy.pair[at] ? "true" : "false");
}

static void json_flaps(FILE *f, const struct cb_pairs_report *r)
{
    fprintf(f, "  \"flaps\": [");
    for (int k = 0; k < r->nflaps; k++) {
        const struct cb_pairs_flap *x = &r->flaps[k];
        fprintf(f, "%s\n    {\"rank\": %d, \"host\": ", k ? "," : "", x->rank);
        json_string(f, r->hosts[x->rank]);
        fprintf(f, ", \"interface\": ");
        json_string(f, x->ifname);
        fprintf(f, ", \"carrier_changes_before\": %lld, \"carrier_changes_after\": %lld, \"pass\": %d, "
                   "\"round\": %d, \"partner\": %d, \"from\": %.3f, \"to\": %.3f}",
                x->before, x->after, x->pass + 1, x->round + 1, x->partner, x->from, x->to);
    }
    fprintf(f, "\n  ],\n");
}

static void json_pairs(FILE *f, const struct cb_pairs_report *r)
{
    int first = 1, n = r->n;
    fprintf(f, "  \"pairs\": [");
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            if (r->bw[i * n + j] < 0 && !r->failed[i * n + j])
                continue;
            int s = r->verdict.pair_slow[i * n + j];
            fprintf(f, "%s\n    {\"a\": %d, \"b\": %d, \"bw_MBps\": ", first ? "" : ",", i, j);
            json_num(f, r->failed[i * n + j] ? -1 : r->bw[i * n + j] / MB);
            fprintf(f, ", \"lat_us\": ");
            json_num(f, r->lat[i * n + j]);
            fprintf(f, ", \"slow_bw\": %s, \"slow_lat\": %s, \"failed\": ", s & CB_SLOW_BW ? "true" : "false",
                    s & CB_SLOW_LAT ? "true" : "false");
            if (r->failed[i * n + j])
                json_string(f, cb_status_str((cb_status)r->failed[i * n + j]));
            else
                fputs("null", f);
            json_pair_health(f, r, i, j);
            fprintf(f, ", \"verdict\": \"%s\"}", pair_verdict(r, i, j));
            first = 0;
        }
    fprintf(f, "\n  ],\n");
}

static void json_tail(FILE *f, const struct cb_pairs_report *r)
{
    int first = 1;
    fprintf(f, "  \"port_counters\": [");
    for (int h = 0; h < r->n; h++)
        for (int k = 0; k < r->deltas[h].n; k++, first = 0) {
            fprintf(f, "%s\n    {\"rank\": %d, \"counter\": ", first ? "" : ",", h);
            json_string(f, r->deltas[h].c[k].name);
            fprintf(f, ", \"delta\": %llu, \"kind\": \"%s\"}", r->deltas[h].c[k].value,
                    kind_name(r->deltas[h].c[k].name));
        }
    fprintf(f, "\n  ],\n");
    json_flaps(f, r);
    const struct cb_pairs_health *h = &r->health;
    fprintf(f, "  \"slow_hosts\": %d,\n  \"slow_links\": %d,\n  \"lossy_hosts\": %d,\n  \"lossy_links\": %d,\n"
               "  \"intermittent_hosts\": %d,\n  \"intermittent_links\": %d,\n  \"verdict\": \"%s\"\n}\n",
            r->verdict.nslow_hosts, r->verdict.nslow_links, h->lossy.nhosts, h->lossy.nlinks, h->intermittent.nhosts,
            h->intermittent.nlinks, cb_pairs_report_named(r) ? "outliers" : "no outliers");
}

cb_status cb_pairs_write_json(const char *path, const struct cb_pairs_report *r)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        cb_log_error("cannot write -J %s: %s; give a writable path", tmp, strerror(errno));
        return CB_ESYS;
    }
    json_header(f, r);
    json_pairs(f, r);
    json_tail(f, r);
    int failed = fflush(f) != 0 || ferror(f);
    failed |= fclose(f) != 0;
    if (failed || rename(tmp, path) != 0) {
        cb_log_error("cannot write -J %s: %s; check the disk and the folder", path, strerror(errno));
        unlink(tmp);
        return CB_ESYS;
    }
    return CB_OK;
}
