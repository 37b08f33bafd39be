/* The nccl-tests table, with our columns at the right: users compare the two
 * outputs side by side and their scripts parse these lines. */
#include "report.h"

#include <string.h>

#define TIME_W 7   /* nccl-tests' widths */
#define BW_W 6
#define ALGO_W 17  /* "auto>rabenseifner" */
#define SLOW_W 6   /* "r1023" */
#define NPCT 6
/* A placement: "  time  algbw  busbw #wrong", as in nccl-tests' header. */
#define HALF_W (2 + TIME_W + 2 + BW_W + 2 + BW_W + 1 + 6)

/* nccl-tests' getFloatStr rule: the most decimals (2, then 1, then 0) that
 * fit in `width`, else the most precise exponent form that fits. */
static void fit_number(char *buf, size_t cap, double v, int width)
{
    for (int decimals = 2; decimals >= 0; decimals--)
        if (snprintf(buf, cap, "%.*f", decimals, v) <= width)
            return;
    for (int digits = width; digits > 0; digits--)
        if (snprintf(buf, cap, "%.*e", digits - 1, v) <= width)
            return;
    snprintf(buf, cap, "%.0e", v);
}

static void put_number(FILE *out, double v, int width)
{
    char buf[64];
    fit_number(buf, sizeof buf, v, width);
    fprintf(out, "  %*s", width, buf);
}

/* ---- header ---- */

/* Single-quote an argument unless it is plainly safe, so the line can be pasted into a shell. */
static void put_shell_word(FILE *out, const char *arg)
{
    static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=/.,:@%";
    if (*arg && strspn(arg, safe) == strlen(arg)) {
        fputs(arg, out);
        return;
    }
    fputc('\'', out);
    for (const char *c = arg; *c; c++) {
        if (*c == '\'')
            fputs("'\\''", out);   /* close, escaped quote, reopen */
        else
            fputc(*c, out);
    }
    fputc('\'', out);
}

static void put_command_line(FILE *out, const struct cb_run_info *info)
{
    fputs("#", out);
    for (int i = 0; i < info->argc && info->argv; i++) {
        fputc(' ', out);
        put_shell_word(out, info->argv[i] ? info->argv[i] : "");
    }
    fputc('\n', out);
}

static void put_options(FILE *out, const struct cb_run_info *info)
{
    fprintf(out, "# nranks %d  transport %s  collective %s  minBytes %zu  maxBytes %zu", info->nranks,
            info->transport ? info->transport : "?", info->collective ? info->collective : "?",
            info->min_bytes, info->max_bytes);
    if (info->step_factor > 0)
        fprintf(out, "  step %g(factor)", info->step_factor);
    else
        fprintf(out, "  step %zu(bytes)", info->step_bytes);
    fprintf(out, "  iters %d  warmup %d  agg %d  check %d  cycles %d  timeout %d  slot %zux%d  algo %s",
            info->iters, info->warmup, info->agg_iters, info->check_iters, info->cycles,
            info->timeout_s, info->slot_bytes, info->nslots, info->algo ? info->algo : "auto");
    fprintf(out, "  average %d  blocking %d  unalign %d  perIter %d\n", info->average,
            info->blocking, info->unalign, info->per_iter);
}

/* nccl-tests' "#  Rank  0 Group  0 Pid ... on host device ..." line, with our properties. */
static void put_rank(FILE *out, const struct cb_rank_info *ri)
{
    fprintf(out, "#  Rank %2d  Pid %6d on %s:", ri->rank, ri->pid, ri->host);
    for (int i = 0; i < ri->props.n && i < CB_PROPS_MAX; i++) {
        const char *val = ri->props.kv[i].val;
        if (!*val || strpbrk(val, " \t"))   /* keep "key=val" splittable on blanks */
            fprintf(out, " %s=\"%s\"", ri->props.kv[i].key, val);
        else
            fprintf(out, " %s=%s", ri->props.kv[i].key, val);
    }
    fputc('\n', out);
}

/* "512.0 KiB", "12.0 MiB", "1.5 GiB" */
static void put_bytes(FILE *out, size_t bytes)
{
    static const char *const units[] = {"KiB", "MiB", "GiB"};
    int u = 0;
    double v = (double)bytes / 1024;
    while (u < 2 && v >= 1024)
        v /= 1024, u++;
    fprintf(out, "%.1f %s", v, units[u]);
}

/* The ranks with the least and the most of a per-rank figure. */
struct spread {
    int lo, hi;
};

static struct spread spread_of(const struct cb_run_info *info, double (*figure)(const struct cb_rank_info *))
{
    struct spread s = {0, 0};
    for (int r = 1; r < info->nranks; r++) {
        if (figure(&info->ranks[r]) < figure(&info->ranks[s.lo]))
            s.lo = r;
        if (figure(&info->ranks[r]) > figure(&info->ranks[s.hi]))
            s.hi = r;
    }
    return s;
}

static double buffer_bytes(const struct cb_rank_info *ri) { return (double)ri->conns.buffer_bytes; }
static double connect_s(const struct cb_rank_info *ri) { return ri->conns.connect_s; }

static void put_buffers_of(FILE *out, const struct cb_rank_info *ri)
{
    put_bytes(out, ri->conns.buffer_bytes);
    fprintf(out, " over %d connections", ri->conns.connections);
}

/* "# memory: transport buffers 4.0 MiB per rank over 2 connections" (or the
 * least and the most, naming the ranks, where ranks differ) and the time
 * each rank spent connecting, before the header: what grows with the job. */
static void put_connections(FILE *out, const struct cb_run_info *info)
{
    if (!info->ranks || info->nranks < 1)
        return;
    struct spread m = spread_of(info, buffer_bytes), t = spread_of(info, connect_s);
    const struct cb_rank_info *lo = &info->ranks[m.lo], *hi = &info->ranks[m.hi];
    fputs("# memory: transport buffers ", out);
    if (lo->conns.buffer_bytes == hi->conns.buffer_bytes && lo->conns.connections == hi->conns.connections) {
        put_bytes(out, lo->conns.buffer_bytes);
        fprintf(out, " per rank over %d connections\n", lo->conns.connections);
    } else {
        fputs("per rank min ", out);
        put_buffers_of(out, lo);
        fprintf(out, " (rank %d), max ", m.lo);
        put_buffers_of(out, hi);
        fprintf(out, " (rank %d)\n", m.hi);
    }
    fprintf(out, "# set-up: connecting took per rank min %.3f s (rank %d), max %.3f s (rank %d)\n",
            info->ranks[t.lo].conns.connect_s, t.lo, info->ranks[t.hi].conns.connect_s, t.hi);
}

static void put_centered(FILE *out, const char *text, int width)
{
    int len = (int)strlen(text);
    int left = len < width ? (width - len) / 2 : 0;
    fprintf(out, "%*s%-*s", left, "", width - left, text);
}

static void put_column_header(FILE *out, int per_iter)
{
    static const char *const pct[NPCT] = {"min", "p50", "p90", "p99", "p99.9", "max"};
    const int pct_w = NPCT * (2 + TIME_W) + 2 + SLOW_W;
    /* nccl-tests' three lines, byte for byte, then our columns */
    fputs("#                                                              out-of-place"
          "                       in-place          ", out);
    if (per_iter) {
        fprintf(out, "  %*s", ALGO_W, "");
        put_centered(out, "per iteration, out-of-place, max over ranks", pct_w);
    }
    fputs("\n#       size         count      type   redop    root     time   algbw   busbw #wrong"
          "     time   algbw   busbw #wrong", out);
    fprintf(out, "  %*s", ALGO_W, "algo");
    for (int i = 0; per_iter && i < NPCT; i++)
        fprintf(out, "  %*s", TIME_W, pct[i]);
    if (per_iter)
        fprintf(out, "  %*s", SLOW_W, "slow");
    fputs("\n#        (B)    (elements)                               (us)  (GB/s)  (GB/s)       "
          "     (us)  (GB/s)  (GB/s)       ", out);
    fprintf(out, "  %*s", ALGO_W, "");
    for (int i = 0; per_iter && i < NPCT; i++)
        fprintf(out, "  %*s", TIME_W, "(us)");
    if (per_iter)
        fprintf(out, "  %*s", SLOW_W, "");
    fputc('\n', out);
}

void cb_table_header(FILE *out, const struct cb_run_info *info)
{
    fprintf(out, "# collbench %s\n", info->version ? info->version : "?");
    put_command_line(out, info);
    put_options(out, info);
    fputs("#\n# Using devices\n", out);
    for (int r = 0; r < info->nranks && info->ranks; r++)
        put_rank(out, &info->ranks[r]);
    put_connections(out, info);
    fputs("#\n", out);
    put_column_header(out, info->per_iter);
    fflush(out);
}

/* ---- rows ---- */

static void put_half(FILE *out, const struct cb_result_half *h)
{
    if (!h->ran) {   /* blanks of the same width, as nccl-tests does for sendrecv */
        fprintf(out, "%*s", HALF_W, "");
        return;
    }
    put_number(out, h->time_us, TIME_W);
    put_number(out, h->algbw, BW_W);
    put_number(out, h->busbw, BW_W);
    if (h->nwrong < 0)
        fprintf(out, " %6s", "N/A");
    else
        fprintf(out, " %6lld", h->nwrong);
}

static void put_per_iter(FILE *out, const struct cb_result_half *h)
{
    const double v[NPCT] = {h->iter.min, h->iter.p50, h->iter.p90, h->iter.p99, h->iter.p999, h->iter.max};
    for (int i = 0; i < NPCT; i++) {
        if (h->have_iter)
            put_number(out, v[i], TIME_W);
        else
            fprintf(out, "  %*s", TIME_W, "-");
    }
    char slow[16] = "-";
    if (h->have_iter && h->slowest_rank >= 0)
        snprintf(slow, sizeof slow, "r%d", h->slowest_rank);
    fprintf(out, "  %*s", SLOW_W, slow);
}

const char *cb_result_algo_label(const struct cb_result *r, char *buf, size_t len)
{
    if (!r->compared || r->asked == r->algo)
        return cb_algo_name(r->algo);
    snprintf(buf, len, "%s>%s", cb_algo_name(r->asked), cb_algo_name(r->algo));
    return buf;
}

void cb_table_row(FILE *out, const struct cb_result *r, int per_iter)
{
    char label[32];
    fprintf(out, "%12zu  %12zu  %8s  %6s  %6d", r->bytes, r->count, cb_type_name(r->type),
            cb_op_name(r->op), r->root < 0 ? -1 : r->root);
    put_half(out, &r->oop);
    put_half(out, &r->ip);
    fprintf(out, "  %*s", ALGO_W, cb_result_algo_label(r, label, sizeof label));
    if (per_iter)
        put_per_iter(out, &r->oop);
    fputc('\n', out);
    fflush(out);   /* a row is shown as soon as it is measured */
}

void cb_table_footer(FILE *out, const struct cb_summary *s, double min_bw)
{
    fprintf(out, "# %-20s : %lld %s\n", "Out of bounds values", s->total_wrong,
            s->total_wrong ? "FAILED" : "OK");
    if (min_bw < 0)
        fprintf(out, "# %-20s : %g\n", "Avg bus bandwidth", s->avg_busbw);
    else
        fprintf(out, "# %-20s : %g %s (NCCL_TESTS_MIN_BW %g)\n", "Avg bus bandwidth", s->avg_busbw,
                cb_min_bw_failed(s, min_bw) ? "FAILED" : "OK", min_bw);
    fprintf(out, "# %-20s : %g GB/s at %zu B\n", "Peak bus bandwidth", s->peak_busbw, s->peak_bytes);
    fprintf(out, "# Bus bandwidth at largest size (%zu B) : %g GB/s\n", s->largest_bytes, s->largest_busbw);
    if (s->wire) {
        char line[2048];
        cb_wire_line(s->wire, s->nwire, line, sizeof line);
        fprintf(out, "# wire: %s\n", line);
    }
    fputs("#\n", out);
    fflush(out);
}
