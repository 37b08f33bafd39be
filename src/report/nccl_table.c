/* nccl-tests' own output, for the tools that parse it (cluster health
 * checks, CloudAI, SuperBench): its header lines, exactly its 13 columns per
 * row (21 with -I), its closing lines. The layout follows nccl-tests'
 * src/util.cu; collbench's extra columns stay in the native table. */
#include "report.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TIME_FORMAT "%Y-%m-%d %H:%M:%S"

/* nccl-tests' getFloatStr: two decimals while the integer part leaves room,
 * then one, then none, then an exponent. */
static void float_str(double v, int width, char *buf, size_t cap)
{
    int power = 0;
    for (double p = 1; v >= p && power < 40; p *= 10)
        power++;
    if (power < width - 2)
        snprintf(buf, cap, "%*.2f", width, v);
    else if (power < width - 1)
        snprintf(buf, cap, "%*.1f", width, v);
    else if (power < width + 1)
        snprintf(buf, cap, "%*.0f", width, v);
    else if (width >= 7)
        snprintf(buf, cap, "%*.1e", width, v);
    else
        snprintf(buf, cap, "%*.0e", width, v);
}

int cb_nccl_device(const struct cb_run_info *info, int r)
{
    int n = 0;
    for (int q = 0; q < r; q++)
        n += strcmp(info->ranks[q].host, info->ranks[r].host) == 0;
    return n;
}

void cb_nccl_hostname(const char *host, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", host);
    buf[strcspn(buf, ".( ")] = 0;   /* nccl-tests cuts at the first dot; ours may add "(address)" */
}

static void put_step(FILE *out, const struct cb_run_info *info)
{
    if (info->step_factor > 1 && info->step_factor == floor(info->step_factor))
        fprintf(out, "step: %.0f(factor)", info->step_factor);
    else if (info->step_factor > 1)
        fprintf(out, "step: %g(factor)", info->step_factor);
    else
        fprintf(out, "step: %zu(bytes)", info->step_bytes);
}

static void put_devices(FILE *out, const struct cb_run_info *info)
{
    fputs("# Using devices\n", out);
    for (int r = 0; r < info->nranks && info->ranks; r++) {
        const struct cb_rank_info *ri = &info->ranks[r];
        char host[64];
        cb_nccl_hostname(ri->host, host, sizeof host);
        fprintf(out, "#  Rank %2d Group %2d Pid %6d on %10s device %2d [%04x:%02x:%02x] host memory via %s\n",
                ri->rank, 0, ri->pid, host, cb_nccl_device(info, r), 0u, 0u, 0u,
                info->transport ? info->transport : "?");
    }
}

static void put_column_header(FILE *out, const struct cb_nccl_view *v)
{
    const char *ts_label = v->timestamps ? "timestamp" : "", *ts_units = v->timestamps ? TIME_FORMAT : "";
    const int ts_pad = v->timestamps ? 19 : 0;
    const char *time = v->cputime ? "cputime" : "time";
    fputs("#\n", out);
    if (v->per_iter) {
        fprintf(out, "# %10s  %12s  %8s  %6s  %6s              out-of-place (+ per-iteration)                       "
                "         in-place (+ per-iteration)\n", "", "", "", "", "");
        fprintf(out, "# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %7s  %7s  %7s  %7s  %6s  %6s  %6s  "
                "%7s  %7s  %7s  %7s %*s\n", "size", "count", "type", "redop", "root", time, "algbw", "busbw",
                "#wrong", "i_min", "i_max", "i_p99", "i_cv%", time, "algbw", "busbw", "#wrong", "i_min", "i_max",
                "i_p99", "i_cv%", ts_pad, ts_label);
        fprintf(out, "# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %7s  %7s  %7s  %7s  %6s  %6s  %6s  "
                "%7s  %7s  %7s  %7s %*s\n", "(B)", "(elements)", "", "", "", "(us)", "(GB/s)", "(GB/s)", "",
                "(us)", "(us)", "(us)", "(%)", "(us)", "(GB/s)", "(GB/s)", "", "(us)", "(us)", "(us)", "(%)",
                ts_pad, ts_units);
        return;
    }
    fprintf(out, "# %10s  %12s  %8s  %6s  %6s           out-of-place                       in-place          \n",
            "", "", "", "", "");
    fprintf(out, "# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s %*s\n", "size", "count",
            "type", "redop", "root", time, "algbw", "busbw", "#wrong", time, "algbw", "busbw", "#wrong", ts_pad,
            ts_label);
    fprintf(out, "# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s %*s\n", "(B)", "(elements)",
            "", "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)", "(GB/s)", "(GB/s)", "", ts_pad, ts_units);
}

void cb_nccl_header(FILE *out, const struct cb_run_info *info)
{
    const struct cb_nccl_view *v = &info->nccl;
    /* nccl-tests' first line names its version and NCCL's; here there is no NCCL */
    fprintf(out, "# collbench version %s (nccl-tests' output format; nccl-headers=0 nccl-library=0: no NCCL)\n",
            info->version ? info->version : "unknown");
    fprintf(out, "# Collective test starting: %s\n", v->program ? v->program : "collbench");
    fprintf(out, "# nThread %d nGpus %d minBytes %zu maxBytes %zu ", 1, 1, info->min_bytes, info->max_bytes);
    put_step(out, info);
    fprintf(out, " warmup iters: %d iters: %d agg iters: %d validation: %d graph: %d unalign: %d\n", info->warmup,
            info->iters, info->agg_iters, info->check_iters, v->graph, info->unalign);
    if (info->blocking == 1)
        fputs("# Blocking Enabled: wait for completion and barrier after each collective \n", out);
    if (info->blocking > 1)
        fputs("# Blocking Enabled: wait for completion after each collective (no barrier) \n", out);
    if (v->per_iter)
        fputs("# Per-Iteration Report: host clock timing; i_* uses max over process rows \n", out);
    fputs("#\n", out);
    put_devices(out, info);
    put_column_header(out, v);
    fflush(out);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* nccl-tests' percentile index: nearest rank, ceil(n*p/100) - 1. */
static size_t pct_index(size_t n, int p)
{
    size_t i = (n * (size_t)p + 99) / 100;
    i = i ? i - 1 : 0;
    return i < n - 1 ? i : n - 1;
}

void cb_nccl_iter_stats(const struct cb_result_half *h, struct cb_nccl_iter_stats *st)
{
    memset(st, 0, sizeof *st);
    size_t skip = h->skip < h->niters ? h->skip : 0, n = h->niters - skip;
    double *sorted = n && h->iter_max_us ? malloc(sizeof(double) * n) : NULL;
    if (!sorted)
        return;
    memcpy(sorted, h->iter_max_us + skip, sizeof(double) * n);
    qsort(sorted, n, sizeof(double), cmp_double);
    double sum = 0, var = 0;
    for (size_t i = 0; i < n; i++)
        sum += sorted[i];
    st->avg = sum / (double)n;
    for (size_t i = 0; i < n; i++)
        var += (sorted[i] - st->avg) * (sorted[i] - st->avg);
    st->min = sorted[0];
    st->max = sorted[n - 1];
    st->p50 = sorted[n / 2];
    st->p95 = sorted[pct_index(n, 95)];
    st->p99 = sorted[pct_index(n, 99)];
    st->stdev = sqrt(var / (double)n);
    st->cv_pct = st->avg > 0 ? st->stdev / st->avg * 100.0 : 0.0;
    free(sorted);
}

static void put_body(FILE *out, const struct cb_result_half *h)
{
    char t[32], a[32], b[32];
    if (!h->ran) {   /* MPI's collective without this placement: blanks, as nccl-tests' null body */
        fprintf(out, "%33s", "");
        return;
    }
    float_str(h->time_us, 7, t, sizeof t);
    float_str(h->algbw, 6, a, sizeof a);
    float_str(h->busbw, 6, b, sizeof b);
    if (h->nwrong >= 0)
        fprintf(out, "  %7s  %6s  %6s  %6g", t, a, b, (double)h->nwrong);
    else
        fprintf(out, "  %7s  %6s  %6s    N/A", t, a, b);
}

static void put_iter(FILE *out, const struct cb_result_half *h)
{
    struct cb_nccl_iter_stats st;
    char s[4][32];
    if (!h->have_iter) {
        fprintf(out, "  %7s  %7s  %7s  %7s", "-", "-", "-", "-");
        return;
    }
    cb_nccl_iter_stats(h, &st);
    float_str(st.min, 7, s[0], sizeof s[0]);
    float_str(st.max, 7, s[1], sizeof s[1]);
    float_str(st.p99, 7, s[2], sizeof s[2]);
    float_str(st.cv_pct, 7, s[3], sizeof s[3]);
    fprintf(out, "  %7s  %7s  %7s  %7s", s[0], s[1], s[2], s[3]);
}

/* nccl-tests' redop column: the op for the collectives its tests pass one
 * to (all_reduce, reduce_scatter, reduce, sendrecv), "none" for the others. */
static const char *redop_name(const struct cb_result *r)
{
    switch (r->coll) {
    case CB_ALL_GATHER: case CB_ALLTOALL: case CB_BROADCAST: return "none";
    default: return cb_op_name(r->op);
    }
}

const char *cb_nccl_redop(const struct cb_result *r)
{
    return redop_name(r);
}

void cb_nccl_row(FILE *out, const struct cb_result *r, const struct cb_nccl_view *v)
{
    fprintf(out, "%12zu  %12zu  %8s  %6s  %6d", r->bytes, r->param_count, cb_type_name(r->type), redop_name(r),
            r->root < 0 ? -1 : r->root);
    put_body(out, &r->oop);
    if (v->per_iter)
        put_iter(out, &r->oop);
    put_body(out, &r->ip);
    if (v->per_iter)
        put_iter(out, &r->ip);
    if (v->timestamps) {
        char now[64] = "";
        time_t t = time(NULL);
        struct tm tm;
        if (localtime_r(&t, &tm))
            strftime(now, sizeof now, TIME_FORMAT, &tm);
        fprintf(out, "%21s", now);
    }
    fputc('\n', out);
    fflush(out);
}

double cb_min_bw_env(void)
{
    const char *s = getenv("NCCL_TESTS_MIN_BW");
    return s && *s ? atof(s) : -1;   /* nccl-tests reads it with atof */
}

int cb_min_bw_failed(const struct cb_summary *s, double min_bw)
{
    return min_bw >= 0 && s->avg_busbw < min_bw * 0.9;
}

void cb_nccl_footer(FILE *out, const struct cb_summary *s, double min_bw, const char *program)
{
    fprintf(out, "# %-20s : %d %s\n", "Out of bounds values", s->failed_checks, s->failed_checks ? "FAILED" : "OK");
    fprintf(out, "# %-20s : %g %s\n", "Avg bus bandwidth", s->avg_busbw,
            min_bw < 0 ? "" : cb_min_bw_failed(s, min_bw) ? "FAILED" : "OK");
    fputs("#\n", out);
    fprintf(out, "# Collective test concluded: %s\n", program ? program : "collbench");
    fputs("#\n\n", out);
    fflush(out);
}
