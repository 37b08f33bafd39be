/* The -J file: a small streaming JSON writer (no dependency) and the run's
 * document. Written to "<path>.tmp.<pid>" and renamed over <path> only when
 * complete, so readers never see a partial file. */
#include "report.h"
#include "outfile.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JSON_MAX_DEPTH 16
#define CB_JSON_FORMAT_VERSION 1

struct json_level {
    char close;      /* '}' or ']' */
    int count;       /* values (or keys) written so far */
    int multiline;   /* objects always; arrays once they hold an object */
};

struct cb_json {
    struct cb_outfile out;
    int depth;
    struct json_level level[JSON_MAX_DEPTH];
    int after_key;   /* the next value completes a "key": pair */
    int broken;      /* nesting went wrong: a bug, the file is not written */
};

/* ---- the writer ---- */

static void newline_indent(struct cb_json *j)
{
    fprintf(j->out.f, "\n%*s", 2 * j->depth, "");
}

/* Separator and layout before a value; `block` says the value is an object. */
static void before_value(struct cb_json *j, int block)
{
    if (j->after_key) {
        j->after_key = 0;
        return;
    }
    if (j->depth == 0)
        return;
    struct json_level *l = &j->level[j->depth - 1];
    if (l->close == '}') {   /* a value in an object needs a key first */
        j->broken = 1;
        return;
    }
    if (l->count++ > 0)
        fputc(',', j->out.f);
    if (block)
        l->multiline = 1;
    if (l->multiline)
        newline_indent(j);
}

static void put_escaped(FILE *f, const char *s);

static void jw_key(struct cb_json *j, const char *key)
{
    struct json_level *l = j->depth > 0 ? &j->level[j->depth - 1] : NULL;
    if (!l || l->close != '}' || j->after_key) {
        j->broken = 1;
        return;
    }
    if (l->count++ > 0)
        fputc(',', j->out.f);
    newline_indent(j);
    put_escaped(j->out.f, key);
    fputs(": ", j->out.f);
    j->after_key = 1;
}

static void jw_open(struct cb_json *j, char open)
{
    /* objects, and arrays inside arrays (per-rank samples), start on their own line */
    int in_array = j->depth > 0 && j->level[j->depth - 1].close == ']';
    before_value(j, open == '{' || in_array);
    if (j->depth == JSON_MAX_DEPTH) {
        j->broken = 1;
        return;
    }
    fputc(open, j->out.f);
    j->level[j->depth++] = (struct json_level){open == '{' ? '}' : ']', 0, open == '{'};
}

static void jw_close(struct cb_json *j)
{
    if (j->depth == 0 || j->after_key) {
        j->broken = 1;
        return;
    }
    struct json_level l = j->level[--j->depth];
    if (l.multiline && l.count > 0)
        newline_indent(j);
    fputc(l.close, j->out.f);
}

/* Length of the valid UTF-8 sequence at s, 0 if invalid (overlongs,
 * surrogates and code points past U+10FFFF are invalid). */
static size_t utf8_sequence(const unsigned char *s)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t len;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        lo = c == 0xE0 ? 0xA0 : lo;
        hi = c == 0xED ? 0x9F : hi;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        lo = c == 0xF0 ? 0x90 : lo;
        hi = c == 0xF4 ? 0x8F : hi;
    } else {
        return 0;
    }
    if (s[1] < lo || s[1] > hi)   /* also stops at the terminating NUL */
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

static void put_escaped_char(FILE *f, unsigned char c)
{
    switch (c) {
    case '"': fputs("\\\"", f); break;
    case '\\': fputs("\\\\", f); break;
    case '\b': fputs("\\b", f); break;
    case '\f': fputs("\\f", f); break;
    case '\n': fputs("\\n", f); break;
    case '\r': fputs("\\r", f); break;
    case '\t': fputs("\\t", f); break;
    default:
        if (c < 0x20 || c == 0x7F)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
}

/* Valid UTF-8 passes through; a byte that is not (argv from a Latin-1
 * shell, say) becomes U+FFFD so the file still parses. */
static void put_escaped(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    while (*p) {
        size_t len = utf8_sequence(p);
        if (len == 0) {
            fputs("\\ufffd", f);
            p++;
        } else if (len == 1) {
            put_escaped_char(f, *p++);
        } else {
            fwrite(p, 1, len, f);
            p += len;
        }
    }
    fputc('"', f);
}

static void jw_null(struct cb_json *j)
{
    before_value(j, 0);
    fputs("null", j->out.f);
}

static void jw_string(struct cb_json *j, const char *s)
{
    if (!s) {
        jw_null(j);
        return;
    }
    before_value(j, 0);
    put_escaped(j->out.f, s);
}

static void jw_int(struct cb_json *j, long long v)
{
    before_value(j, 0);
    fprintf(j->out.f, "%lld", v);
}

static void jw_size(struct cb_json *j, size_t v)
{
    before_value(j, 0);
    fprintf(j->out.f, "%zu", v);
}

static void jw_bool(struct cb_json *j, int v)
{
    before_value(j, 0);
    fputs(v ? "true" : "false", j->out.f);
}

/* The shortest of %.15g..%.17g that reads back exactly; JSON has no NaN or Inf. */
static void jw_double(struct cb_json *j, double v)
{
    if (!isfinite(v)) {
        jw_null(j);
        return;
    }
    char buf[32];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    before_value(j, 0);
    fputs(buf, j->out.f);
}

static void jw_doubles(struct cb_json *j, const double *v, size_t n)
{
    jw_open(j, '[');
    for (size_t i = 0; i < n; i++)
        jw_double(j, v[i]);
    jw_close(j);
}

/* key/value shorthands */
static void kv_string(struct cb_json *j, const char *k, const char *v) { jw_key(j, k); jw_string(j, v); }
static void kv_int(struct cb_json *j, const char *k, long long v) { jw_key(j, k); jw_int(j, v); }
static void kv_size(struct cb_json *j, const char *k, size_t v) { jw_key(j, k); jw_size(j, v); }
static void kv_double(struct cb_json *j, const char *k, double v) { jw_key(j, k); jw_double(j, v); }
static void kv_bool(struct cb_json *j, const char *k, int v) { jw_key(j, k); jw_bool(j, v); }

/* ---- the file ---- */

cb_status cb_json_open(const char *path, struct cb_json **out)
{
    *out = NULL;
    struct cb_json *j = calloc(1, sizeof *j);
    if (!j) {
        cb_log_error("out of memory opening JSON file %s", path);
        return CB_ENOMEM;
    }
    cb_status st = cb_outfile_open(path, "JSON", "-J", &j->out);
    if (st != CB_OK) {
        free(j);
        return st;
    }
    *out = j;
    return CB_OK;
}

void cb_json_abort(struct cb_json *j)
{
    if (!j)
        return;
    cb_outfile_abort(&j->out);
    free(j);
}

/* ---- the document ---- */

static void put_config(struct cb_json *j, const struct cb_run_info *info)
{
    jw_key(j, "config");
    jw_open(j, '{');
    kv_string(j, "collective", info->collective);
    kv_size(j, "min_bytes", info->min_bytes);
    kv_size(j, "max_bytes", info->max_bytes);
    kv_size(j, "step_bytes", info->step_bytes);
    kv_double(j, "step_factor", info->step_factor);
    kv_int(j, "iters", info->iters);
    kv_int(j, "warmup", info->warmup);
    kv_int(j, "agg_iters", info->agg_iters);
    kv_int(j, "check_iters", info->check_iters);
    kv_int(j, "cycles", info->cycles);
    kv_int(j, "average", info->average);
    kv_int(j, "blocking", info->blocking);   /* nccl-tests' -z mode, 0..3 */
    kv_int(j, "unalign", info->unalign);     /* elements */
    kv_int(j, "graph", info->nccl.graph);    /* -G: timed loops run this many times over (0: once) */
    kv_bool(j, "per_iter", info->per_iter);
    kv_int(j, "per_iter_skip", info->nccl.per_iter_skip);   /* -K: iterations the percentiles leave out */
    kv_int(j, "timeout_s", info->timeout_s);
    kv_size(j, "slot_bytes", info->slot_bytes);
    kv_int(j, "nslots", info->nslots);
    kv_string(j, "algo", info->algo);
    jw_close(j);
}

static void put_rank(struct cb_json *j, const struct cb_rank_info *ri)
{
    jw_open(j, '{');
    kv_int(j, "rank", ri->rank);
    kv_string(j, "host", ri->host);
    kv_int(j, "pid", ri->pid);
    jw_key(j, "props");
    jw_open(j, '{');
    for (int i = 0; i < ri->props.n && i < CB_PROPS_MAX; i++)
        kv_string(j, ri->props.kv[i].key, ri->props.kv[i].val);
    jw_close(j);
    jw_close(j);
}

void cb_json_begin(struct cb_json *j, const struct cb_run_info *info)
{
    if (!j)
        return;
    jw_open(j, '{');
    /* the layout's version (docs/collbench-run.schema.json): raised when a
     * field changes meaning or type, so readers can refuse what they do not know */
    kv_int(j, "format_version", CB_JSON_FORMAT_VERSION);
    kv_string(j, "collbench_version", info->version);
    kv_string(j, "start_time", info->start_time);
    jw_key(j, "argv");
    jw_open(j, '[');
    for (int i = 0; i < info->argc && info->argv; i++)
        jw_string(j, info->argv[i]);
    jw_close(j);
    put_config(j, info);
    kv_int(j, "nranks", info->nranks);
    kv_string(j, "transport", info->transport);
    jw_key(j, "ranks");
    jw_open(j, '[');
    for (int r = 0; r < info->nranks && info->ranks; r++)
        put_rank(j, &info->ranks[r]);
    jw_close(j);
    jw_key(j, "results");
    jw_open(j, '[');   /* closed by cb_json_finish */
}

static void put_per_rank(struct cb_json *j, const struct cb_result_half *h, int nranks)
{
    jw_key(j, "per_rank_us");
    if (!h->per_rank_us || nranks <= 0) {
        jw_null(j);
        return;
    }
    jw_open(j, '[');
    for (int r = 0; r < nranks; r++)
        jw_doubles(j, h->per_rank_us + (size_t)r * h->niters, h->niters);
    jw_close(j);
}

static void put_per_iter(struct cb_json *j, const struct cb_result_half *h, int nranks)
{
    jw_key(j, "per_iter");
    if (!h->have_iter) {
        jw_null(j);
        return;
    }
    jw_open(j, '{');
    kv_double(j, "min_us", h->iter.min);
    kv_double(j, "p50_us", h->iter.p50);
    kv_double(j, "p90_us", h->iter.p90);
    kv_double(j, "p99_us", h->iter.p99);
    kv_double(j, "p999_us", h->iter.p999);
    kv_double(j, "max_us", h->iter.max);
    kv_double(j, "mean_us", h->iter.mean);
    jw_key(j, "slowest_rank");
    if (h->slowest_rank >= 0)
        jw_int(j, h->slowest_rank);
    else
        jw_null(j);
    kv_int(j, "slowest_count", h->slowest_count);
    jw_key(j, "iter_max_us");
    if (h->iter_max_us)
        jw_doubles(j, h->iter_max_us, h->niters);
    else
        jw_null(j);
    put_per_rank(j, h, nranks);
    jw_close(j);
}

/* A placement: null when neither the throughput nor the per-iteration pass ran. */
static void put_half(struct cb_json *j, const char *key, const struct cb_result_half *h, int nranks)
{
    jw_key(j, key);
    if (!h->ran && !h->have_iter) {
        jw_null(j);
        return;
    }
    jw_open(j, '{');
    kv_double(j, "time_us", h->ran ? h->time_us : NAN);
    kv_double(j, "algbw_gbps", h->ran ? h->algbw : NAN);
    kv_double(j, "busbw_gbps", h->ran ? h->busbw : NAN);
    jw_key(j, "nwrong");
    if (h->nwrong >= 0)
        jw_int(j, h->nwrong);
    else
        jw_null(j);
    put_per_iter(j, h, nranks);
    jw_close(j);
}

/* auto's timed near-ties, us per collective by algorithm; null when the model alone chose. */
static void put_auto_trial(struct cb_json *j, const struct cb_auto_trial *t)
{
    jw_key(j, "auto_trial_us");
    if (t->ntried == 0) {
        jw_null(j);
        return;
    }
    jw_open(j, '{');
    for (int i = 0; i < t->ntried; i++)
        kv_double(j, cb_algo_name(t->algo[i]), t->us[i]);
    jw_close(j);
}

void cb_json_result(struct cb_json *j, const struct cb_result *r, int nranks)
{
    if (!j)
        return;
    jw_open(j, '{');
    kv_string(j, "collective", cb_coll_name(r->coll));
    kv_size(j, "size", r->bytes);
    kv_size(j, "count", r->count);
    kv_string(j, "type", cb_type_name(r->type));
    kv_string(j, "redop", cb_op_name(r->op));
    jw_key(j, "root");   /* null when the collective has no root */
    if (r->root >= 0)
        jw_int(j, r->root);
    else
        jw_null(j);
    kv_string(j, "algo", cb_algo_name(r->algo));
    kv_string(j, "algo_asked", cb_algo_name(r->asked));
    put_auto_trial(j, &r->trial);
    put_half(j, "out_of_place", &r->oop, nranks);
    put_half(j, "in_place", &r->ip, nranks);
    jw_close(j);
}

static void put_summary(struct cb_json *j, const struct cb_summary *s)
{
    jw_key(j, "summary");
    jw_open(j, '{');
    kv_int(j, "total_wrong", s->total_wrong);
    kv_double(j, "avg_busbw_gbps", s->avg_busbw);
    kv_double(j, "peak_busbw_gbps", s->peak_busbw);
    kv_size(j, "peak_size", s->peak_bytes);
    kv_double(j, "largest_busbw_gbps", s->largest_busbw);
    kv_size(j, "largest_size", s->largest_bytes);
    kv_bool(j, "passed", s->total_wrong == 0);
    jw_close(j);
}

static void put_wire_rank(struct cb_json *j, int rank, const struct cb_wire_moved *m)
{
    jw_open(j, '{');
    kv_int(j, "rank", rank);
    kv_string(j, "host", m->host);
    kv_int(j, "counters_read", m->nread);
    jw_key(j, "counters");
    jw_open(j, '[');
    for (int i = 0; i < m->n; i++) {
        jw_open(j, '{');
        kv_string(j, "link", m->c[i].link);
        kv_string(j, "counter", m->c[i].name);
        kv_int(j, "delta", (long long)m->c[i].value);
        kv_string(j, "kind", cb_wire_kind(m->c[i].name) == CB_WIRE_CONGESTION ? "congestion" : "error");
        jw_close(j);
    }
    jw_close(j);
    kv_bool(j, "counters_truncated", m->truncated);
    jw_key(j, "port_events");
    jw_open(j, '[');
    for (int i = 0; i < m->nevents && i < CB_WIRE_EVENTS_MAX; i++) {
        jw_open(j, '{');
        kv_string(j, "link", m->ev[i].link);
        kv_string(j, "event", m->ev[i].what);
        kv_int(j, "unix_ms", m->ev[i].unix_ms);
        jw_close(j);
    }
    jw_close(j);
    kv_int(j, "port_events_seen", m->nevents);
    kv_bool(j, "errors", cb_wire_has_errors(m));
    jw_close(j);
}

/* Per rank what moved on its links (null when nothing was read). */
static void put_wire(struct cb_json *j, const struct cb_summary *s)
{
    jw_key(j, "wire");
    if (!s->wire) {
        jw_null(j);
        return;
    }
    jw_open(j, '[');
    for (int r = 0; r < s->nwire; r++)
        put_wire_rank(j, r, &s->wire[r]);
    jw_close(j);
}

static void utc_now(char *buf, size_t cap)
{
    time_t now = time(NULL);
    struct tm tm;
    if (!gmtime_r(&now, &tm) || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        buf[0] = '\0';
}

cb_status cb_json_finish(struct cb_json *j, const struct cb_summary *s)
{
    if (!j)
        return CB_OK;
    jw_close(j);   /* results */
    put_summary(j, s);
    put_wire(j, s);
    char end[32];
    utc_now(end, sizeof end);
    kv_string(j, "end_time", end);
    jw_close(j);
    fputc('\n', j->out.f);
    if (j->broken || j->depth != 0) {
        cb_log_error("internal error: JSON nesting broken writing %s; file not written", j->out.path);
        cb_json_abort(j);
        return CB_EINTERNAL;
    }
    cb_status st = cb_outfile_commit(&j->out);
    free(j);
    return st;
}
