/* nccl-tests' -J layout (its src/util.cu, JSON file version 2), so its
 * analysis tools read collbench's files: compact JSON, numbers as "%f",
 * booleans as the strings "true" and "false", the root as the table's
 * six-character text, as nccl-tests writes them. */
#include "report.h"
#include "outfile.h"
#include "json_writer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NCCL_JSON_VERSION 2
#define TIME_FORMAT "%Y-%m-%d %H:%M:%S"

/* nccl-tests writes booleans as the strings "true" and "false". */
static void kv_bool(struct cb_jw *w, const char *k, int v)
{
    cb_jw_kv_string(w, k, v ? "true" : "false");
}

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
static void put_env(struct cb_jw *w)
{
    cb_jw_key(w, "env");
    cb_jw_open(w, '[');
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, "NCCL_", 5) == 0 || strncmp(*e, "COLLBENCH_", 10) == 0)
            cb_jw_string(w, *e);
    cb_jw_close(w);
}

static void put_devices(struct cb_jw *w, const struct cb_run_info *info)
{
    cb_jw_key(w, "devices");
    cb_jw_open(w, '[');
    for (int r = 0; r < info->nranks && info->ranks; r++) {
        char desc[96], host[64];
        snprintf(desc, sizeof desc, "host memory via %s", info->transport ? info->transport : "?");
        cb_nccl_hostname(info->ranks[r].host, host, sizeof host);
        cb_jw_open(w, '{');
        cb_jw_kv_int(w, "rank", info->ranks[r].rank);
        cb_jw_kv_int(w, "group", 0);
        cb_jw_kv_int(w, "pid", info->ranks[r].pid);
        cb_jw_kv_string(w, "hostname", host);
        cb_jw_kv_int(w, "device", cb_nccl_device(info, r));
        cb_jw_kv_string(w, "device_hex", "0000:00:00");
        cb_jw_kv_string(w, "device_info", desc);
        cb_jw_close(w);
    }
    cb_jw_close(w);
}

static void put_config(struct cb_jw *w, const struct cb_run_info *info)
{
    const struct cb_nccl_view *v = &info->nccl;
    cb_jw_key(w, "config");
    cb_jw_open(w, '{');
    cb_jw_kv_int(w, "nthreads", 1);
    cb_jw_kv_int(w, "ngpus", 1);
    cb_jw_kv_int(w, "minimum_bytes", (long long)info->min_bytes);
    cb_jw_kv_int(w, "maximum_bytes", (long long)info->max_bytes);
    if (info->step_factor > 1 && info->step_factor == floor(info->step_factor))
        cb_jw_kv_int(w, "step_factor", (long long)info->step_factor);
    else if (info->step_factor > 1)
        cb_jw_kv_double(w, "step_factor", info->step_factor);
    else
        cb_jw_kv_int(w, "step_bytes", (long long)info->step_bytes);
    cb_jw_kv_int(w, "warmup_iters", info->warmup);
    cb_jw_kv_int(w, "iterations", info->iters);
    cb_jw_kv_int(w, "aggregated_iterations", info->agg_iters);
    cb_jw_kv_int(w, "validation", info->check_iters);
    cb_jw_kv_int(w, "graph", v->graph);
    kv_bool(w, "blocking_collectives", info->blocking);
    kv_bool(w, "per_iter_timing", v->per_iter);
    kv_bool(w, "parallel_init", v->parallel_init);
    put_devices(w, info);
    cb_jw_close(w);
}

static void put_body(struct cb_jw *w, const char *k, const struct cb_result_half *h, int cputime)
{
    cb_jw_key(w, k);
    if (!h->ran) {
        cb_jw_null(w);
        return;
    }
    cb_jw_open(w, '{');
    cb_jw_kv_double(w, cputime ? "cpu_time" : "time", h->time_us);
    cb_jw_kv_double(w, "alg_bw", h->algbw);
    cb_jw_kv_double(w, "bus_bw", h->busbw);
    cb_jw_key(w, "nwrong");
    if (h->nwrong >= 0)
        cb_jw_double(w, (double)h->nwrong);
    else
        cb_jw_null(w);
    cb_jw_close(w);
}

static void put_iter(struct cb_jw *w, const char *k, const struct cb_result_half *h, int nranks)
{
    struct cb_nccl_iter_stats st;
    cb_nccl_iter_stats(h, &st);
    cb_jw_key(w, k);
    cb_jw_open(w, '{');
    cb_jw_kv_double(w, "min_us", st.min);
    cb_jw_kv_double(w, "max_us", st.max);
    cb_jw_kv_double(w, "avg_us", st.avg);
    cb_jw_kv_double(w, "p50_us", st.p50);
    cb_jw_kv_double(w, "p95_us", st.p95);
    cb_jw_kv_double(w, "p99_us", st.p99);
    cb_jw_kv_double(w, "stdev_us", st.stdev);
    cb_jw_kv_double(w, "cv_pct", st.cv_pct);
    cb_jw_key(w, "times_us");
    cb_jw_doubles(w, h->iter_max_us, h->niters);
    if (nranks > 1 && h->per_rank_us) {
        cb_jw_key(w, "per_process_max_times_us");
        cb_jw_open(w, '[');
        for (int r = 0; r < nranks; r++)
            cb_jw_doubles(w, h->per_rank_us + (size_t)r * h->niters, h->niters);
        cb_jw_close(w);
    }
    cb_jw_close(w);
}

static void put_result(struct cb_jw *w, const struct cb_result *r, const struct cb_run_info *info)
{
    const struct cb_nccl_view *v = &info->nccl;
    char root[16];
    snprintf(root, sizeof root, "%6d", r->root < 0 ? -1 : r->root);
    cb_jw_open(w, '{');
    cb_jw_kv_int(w, "size", (long long)r->bytes);
    cb_jw_kv_int(w, "count", (long long)r->param_count);
    cb_jw_kv_string(w, "type", cb_type_name(r->type));
    cb_jw_kv_string(w, "redop", cb_nccl_redop(r));
    cb_jw_kv_string(w, "root", root);
    put_body(w, "out_of_place", &r->oop, v->cputime);
    if (v->per_iter && r->oop.have_iter)
        put_iter(w, "out_of_place_per_iter", &r->oop, info->nranks);
    put_body(w, "in_place", &r->ip, v->cputime);
    if (v->per_iter && r->ip.have_iter)
        put_iter(w, "in_place_per_iter", &r->ip, info->nranks);
    cb_jw_kv_int(w, "actual_iterations", v->iters);
    cb_jw_kv_string(w, "experiment_name", "");
    cb_jw_close(w);
}

static void put_summary(struct cb_jw *w, const struct cb_summary *s, double min_bw)
{
    cb_jw_key(w, "out_of_bounds");
    cb_jw_open(w, '{');
    cb_jw_kv_int(w, "count", s->failed_checks);
    kv_bool(w, "okay", s->failed_checks == 0);
    cb_jw_close(w);
    cb_jw_key(w, "average_bus_bandwidth");
    cb_jw_open(w, '{');
    cb_jw_kv_double(w, "bandwidth", s->avg_busbw);
    if (min_bw < 0)
        cb_jw_kv_string(w, "okay", "unchecked");
    else
        kv_bool(w, "okay", !cb_min_bw_failed(s, min_bw));
    cb_jw_close(w);
    cb_jw_key(w, "errors");
    cb_jw_open(w, '[');
    cb_jw_close(w);
}

/* 1 when the document is whole (the emitter saw no misuse). */
static int put_document(FILE *f, const struct cb_run_info *info, const struct cb_result *results, int n,
                        const struct cb_summary *s, double min_bw)
{
    char when[64];
    struct cb_jw w;
    cb_jw_init_nccl(&w, f);
    cb_jw_open(&w, '{');
    cb_jw_kv_int(&w, "version", NCCL_JSON_VERSION);
    local_time((time_t)info->start_epoch, when, sizeof when);
    cb_jw_kv_string(&w, "start_time", when);
    cb_jw_key(&w, "args");
    cb_jw_open(&w, '[');
    for (int i = 0; i < info->argc && info->argv; i++)
        cb_jw_string(&w, info->argv[i] ? info->argv[i] : "");
    cb_jw_close(&w);
    put_env(&w);
    cb_jw_kv_int(&w, "nccl_version", 0);   /* no NCCL */
    put_config(&w, info);
    cb_jw_key(&w, "results");
    cb_jw_open(&w, '[');
    for (int i = 0; i < n; i++)
        put_result(&w, &results[i], info);
    cb_jw_close(&w);
    put_summary(&w, s, min_bw);
    local_time(time(NULL), when, sizeof when);
    cb_jw_kv_string(&w, "end_time", when);
    cb_jw_close(&w);
    return cb_jw_done(&w);
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
    if (!put_document(out.f, info, results, n, s, min_bw)) {
        cb_log_error("internal error: JSON nesting broken writing %s; file not written", path);
        cb_outfile_abort(&out);
        return CB_EINTERNAL;
    }
    return cb_outfile_commit(&out);
}
