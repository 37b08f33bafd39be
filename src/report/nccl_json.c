/* nccl-tests' -J layout (its src/util.cu, JSON file version 2), so its
 * analysis tools read collbench's files: compact JSON, numbers as "%f",
 * booleans as the strings "true" and "false", the root as the table's
 * six-character text, as nccl-tests writes them. */
#include "report.h"
#include "outfile.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NCCL_JSON_VERSION 2
#define TIME_FORMAT "%Y-%m-%d %H:%M:%S"

/* Separators: each writer call knows whether it is the first in its container. */
struct writer {
    FILE *f;
    int first;
};

static void put_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\' || *p == '/')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < 0x20 || *p >= 0x7f)   /* nccl-tests writes ASCII only */
            fprintf(f, "\\u%04x", *p < 0x80 ? *p : 0xfffd);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void key(struct writer *w, const char *k)
{
    if (!w->first)
        fputc(',', w->f);
    w->first = 0;
    put_string(w->f, k);
    fputc(':', w->f);
}

static void kv_str(struct writer *w, const char *k, const char *v) { key(w, k); put_string(w->f, v); }
static void kv_int(struct writer *w, const char *k, long long v) { key(w, k); fprintf(w->f, "%lld", v); }
static void kv_bool(struct writer *w, const char *k, int v) { kv_str(w, k, v ? "true" : "false"); }

static void put_double(FILE *f, double v)
{
    if (isnan(v))
        fputs("\"nan\"", f);
    else if (!isfinite(v))
        fputs("null", f);
    else
        fprintf(f, "%f", v);
}

static void kv_double(struct writer *w, const char *k, double v) { key(w, k); put_double(w->f, v); }

static void local_time(time_t t, char *buf, size_t cap)
{
    struct tm tm;
    buf[0] = 0;
    if (localtime_r(&t, &tm))
        strftime(buf, cap, TIME_FORMAT, &tm);
}

/* nccl-tests writes the whole environment; collbench writes only the
 * variables that shape a run (NCCL_*, COLLBENCH_*), not whatever secrets the
 * rest of an environment may hold. */
static void put_env(struct writer *w)
{
    key(w, "env");
    fputc('[', w->f);
    int first = 1;
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "NCCL_", 5) && strncmp(*e, "COLLBENCH_", 10))
            continue;
        if (!first)
            fputc(',', w->f);
        first = 0;
        put_string(w->f, *e);
    }
    fputc(']', w->f);
}

static void put_devices(struct writer *w, const struct cb_run_info *info)
{
    key(w, "devices");
    fputc('[', w->f);
    for (int r = 0; r < info->nranks && info->ranks; r++) {
        char desc[96], host[64];
        snprintf(desc, sizeof desc, "host memory via %s", info->transport ? info->transport : "?");
        cb_nccl_hostname(info->ranks[r].host, host, sizeof host);
        struct writer d = {w->f, 1};
        fputs(r ? ",{" : "{", w->f);
        kv_int(&d, "rank", info->ranks[r].rank);
        kv_int(&d, "group", 0);
        kv_int(&d, "pid", info->ranks[r].pid);
        kv_str(&d, "hostname", host);
        kv_int(&d, "device", cb_nccl_device(info, r));
        kv_str(&d, "device_hex", "0000:00:00");
        kv_str(&d, "device_info", desc);
        fputc('}', w->f);
    }
    fputc(']', w->f);
}

static void put_config(struct writer *top, const struct cb_run_info *info)
{
    const struct cb_nccl_view *v = &info->nccl;
    key(top, "config");
    fputc('{', top->f);
    struct writer w = {top->f, 1};
    kv_int(&w, "nthreads", 1);
    kv_int(&w, "ngpus", 1);
    kv_int(&w, "minimum_bytes", (long long)info->min_bytes);
    kv_int(&w, "maximum_bytes", (long long)info->max_bytes);
    if (info->step_factor > 1 && info->step_factor == floor(info->step_factor))
        kv_int(&w, "step_factor", (long long)info->step_factor);
    else if (info->step_factor > 1)
        kv_double(&w, "step_factor", info->step_factor);
    else
        kv_int(&w, "step_bytes", (long long)info->step_bytes);
    kv_int(&w, "warmup_iters", info->warmup);
    kv_int(&w, "iterations", info->iters);
    kv_int(&w, "aggregated_iterations", info->agg_iters);
    kv_int(&w, "validation", info->check_iters);
    kv_int(&w, "graph", v->graph);
    kv_bool(&w, "blocking_collectives", info->blocking);
    kv_bool(&w, "per_iter_timing", v->per_iter);
    kv_bool(&w, "parallel_init", v->parallel_init);
    put_devices(&w, info);
    fputc('}', top->f);
}

static void put_body(struct writer *w, const char *k, const struct cb_result_half *h, int cputime)
{
    key(w, k);
    if (!h->ran) {
        fputs("null", w->f);
        return;
    }
    fputc('{', w->f);
    struct writer b = {w->f, 1};
    kv_double(&b, cputime ? "cpu_time" : "time", h->time_us);
    kv_double(&b, "alg_bw", h->algbw);
    kv_double(&b, "bus_bw", h->busbw);
    key(&b, "nwrong");
    if (h->nwrong >= 0)
        put_double(w->f, (double)h->nwrong);
    else
        fputs("null", w->f);
    fputc('}', w->f);
}

static void put_doubles(FILE *f, const double *v, size_t n)
{
    fputc('[', f);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc(',', f);
        put_double(f, v[i]);
    }
    fputc(']', f);
}

static void put_iter(struct writer *w, const char *k, const struct cb_result_half *h, int nranks)
{
    struct cb_nccl_iter_stats st;
    cb_nccl_iter_stats(h, &st);
    key(w, k);
    fputc('{', w->f);
    struct writer p = {w->f, 1};
    kv_double(&p, "min_us", st.min);
    kv_double(&p, "max_us", st.max);
    kv_double(&p, "avg_us", st.avg);
    kv_double(&p, "p50_us", st.p50);
    kv_double(&p, "p95_us", st.p95);
    kv_double(&p, "p99_us", st.p99);
    kv_double(&p, "stdev_us", st.stdev);
    kv_double(&p, "cv_pct", st.cv_pct);
    key(&p, "times_us");
    put_doubles(w->f, h->iter_max_us, h->niters);
    if (nranks > 1 && h->per_rank_us) {
        key(&p, "per_process_max_times_us");
        fputc('[', w->f);
        for (int r = 0; r < nranks; r++) {
            if (r)
                fputc(',', w->f);
            put_doubles(w->f, h->per_rank_us + (size_t)r * h->niters, h->niters);
        }
        fputc(']', w->f);
    }
    fputc('}', w->f);
}

static void put_result(FILE *f, const struct cb_result *r, const struct cb_run_info *info)
{
    const struct cb_nccl_view *v = &info->nccl;
    char root[16];
    snprintf(root, sizeof root, "%6d", r->root < 0 ? -1 : r->root);
    fputc('{', f);
    struct writer w = {f, 1};
    kv_int(&w, "size", (long long)r->bytes);
    kv_int(&w, "count", (long long)r->param_count);
    kv_str(&w, "type", cb_type_name(r->type));
    kv_str(&w, "redop", cb_nccl_redop(r));
    kv_str(&w, "root", root);
    put_body(&w, "out_of_place", &r->oop, v->cputime);
    if (v->per_iter && r->oop.have_iter)
        put_iter(&w, "out_of_place_per_iter", &r->oop, info->nranks);
    put_body(&w, "in_place", &r->ip, v->cputime);
    if (v->per_iter && r->ip.have_iter)
        put_iter(&w, "in_place_per_iter", &r->ip, info->nranks);
    kv_int(&w, "actual_iterations", v->iters);
    kv_str(&w, "experiment_name", "");
    fputc('}', f);
}

static void put_summary(struct writer *w, const struct cb_summary *s, double min_bw)
{
    key(w, "out_of_bounds");
    fputc('{', w->f);
    struct writer o = {w->f, 1};
    kv_int(&o, "count", s->failed_checks);
    kv_bool(&o, "okay", s->failed_checks == 0);
    fputc('}', w->f);
    key(w, "average_bus_bandwidth");
    fputc('{', w->f);
    struct writer b = {w->f, 1};
    kv_double(&b, "bandwidth", s->avg_busbw);
    if (min_bw < 0)
        kv_str(&b, "okay", "unchecked");
    else
        kv_bool(&b, "okay", !cb_min_bw_failed(s, min_bw));
    fputc('}', w->f);
    key(w, "errors");
    fputs("[]", w->f);
}

static void put_document(FILE *f, const struct cb_run_info *info, const struct cb_result *results, int n,
                         const struct cb_summary *s, double min_bw)
{
    char when[64];
    struct writer w = {f, 1};
    fputc('{', f);
    kv_int(&w, "version", NCCL_JSON_VERSION);
    local_time((time_t)info->start_epoch, when, sizeof when);
    kv_str(&w, "start_time", when);
    key(&w, "args");
    fputc('[', f);
    for (int i = 0; i < info->argc && info->argv; i++) {
        if (i)
            fputc(',', f);
        put_string(f, info->argv[i]);
    }
    fputc(']', f);
    put_env(&w);
    kv_int(&w, "nccl_version", 0);   /* no NCCL */
    put_config(&w, info);
    key(&w, "results");
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        if (i)
            fputc(',', f);
        put_result(f, &results[i], info);
    }
    fputc(']', f);
    put_summary(&w, s, min_bw);
    local_time(time(NULL), when, sizeof when);
    kv_str(&w, "end_time", when);
    fputs("}\n", f);
}

char *cb_nccl_json_pick(const char *path)
{
    size_t cap = strlen(path) + 24;
    char *name = malloc(cap);
    struct stat st;
    if (!name)
        return NULL;
    snprintf(name, cap, "%s", path);
    for (int i = 0; stat(name, &st) == 0 && i < 1000000; i++)
        snprintf(name, cap, "%s.%d", path, i);
    return name;
}

cb_status cb_nccl_json_write(const char *path, const struct cb_run_info *info, const struct cb_result *results,
                             int n, const struct cb_summary *s, double min_bw)
{
    struct cb_outfile out;
    cb_status st = cb_outfile_open(path, "JSON", "-J", &out);
    if (st != CB_OK)
        return st;
    put_document(out.f, info, results, n, s, min_bw);
    return cb_outfile_commit(&out);
}
