/* The -J file: the run's document, written with json_writer through
 * outfile (whole or not at all, see outfile.h). */
#include "report.h"
#include "json_writer.h"
#include "outfile.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CB_JSON_FORMAT_VERSION 1

struct cb_json {
    struct cb_outfile out;
    struct cb_jw w;
    int cycles_asked;   /* -N: 0 keeps only the last cycle's results */
};

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
    cb_jw_init(&j->w, j->out.f);
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

static void put_config(struct cb_jw *w, const struct cb_run_info *info)
{
    cb_jw_key(w, "config");
    cb_jw_open(w, '{');
    cb_jw_kv_string(w, "collective", info->collective);
    cb_jw_kv_size(w, "min_bytes", info->min_bytes);
    cb_jw_kv_size(w, "max_bytes", info->max_bytes);
    cb_jw_kv_size(w, "step_bytes", info->step_bytes);
    cb_jw_kv_double(w, "step_factor", info->step_factor);
    cb_jw_kv_int(w, "iters", info->iters);
    cb_jw_kv_int(w, "warmup", info->warmup);
    cb_jw_kv_int(w, "agg_iters", info->agg_iters);
    cb_jw_kv_int(w, "check_iters", info->check_iters);
    cb_jw_kv_int(w, "cycles", info->cycles);
    cb_jw_kv_int(w, "average", info->average);
    cb_jw_kv_int(w, "blocking", info->blocking);   /* nccl-tests' -z mode, 0..3 */
    cb_jw_kv_int(w, "unalign", info->unalign);     /* elements */
    cb_jw_kv_int(w, "graph", info->nccl.graph);    /* -G: timed loops run this many times over (0: once) */
    cb_jw_kv_bool(w, "per_iter", info->per_iter);
    cb_jw_kv_int(w, "per_iter_skip", info->nccl.per_iter_skip);   /* -K: iterations the percentiles leave out */
    cb_jw_kv_int(w, "timeout_s", info->timeout_s);
    cb_jw_kv_size(w, "slot_bytes", info->slot_bytes);
    cb_jw_kv_int(w, "nslots", info->nslots);
    cb_jw_kv_string(w, "algo", info->algo);
    cb_jw_close(w);
}

static void put_rank(struct cb_jw *w, const struct cb_rank_info *ri)
{
    cb_jw_open(w, '{');
    cb_jw_kv_int(w, "rank", ri->rank);
    cb_jw_kv_string(w, "host", ri->host);
    cb_jw_kv_int(w, "pid", ri->pid);
    cb_jw_key(w, "props");
    cb_jw_open(w, '{');
    for (int i = 0; i < ri->props.n && i < CB_PROPS_MAX; i++)
        cb_jw_kv_string(w, ri->props.kv[i].key, ri->props.kv[i].val);
    cb_jw_close(w);
    cb_jw_key(w, "connections");
    cb_jw_open(w, '{');
    cb_jw_kv_int(w, "count", ri->conns.connections);
    cb_jw_kv_size(w, "buffer_bytes", ri->conns.buffer_bytes);
    cb_jw_kv_double(w, "setup_s", ri->conns.connect_s);
    cb_jw_kv_size(w, "rss_bytes", ri->rss_bytes);
    cb_jw_kv_size(w, "pinned_bytes", ri->pinned_bytes);
    cb_jw_close(w);
    cb_jw_close(w);
}

void cb_json_begin(struct cb_json *j, const struct cb_run_info *info)
{
    if (!j)
        return;
    struct cb_jw *w = &j->w;
    j->cycles_asked = info->cycles;
    cb_jw_open(w, '{');
    /* the layout's version (docs/collbench-run.schema.json): raised when a
     * field changes meaning or type, so readers can refuse what they do not know */
    cb_jw_kv_int(w, "format_version", CB_JSON_FORMAT_VERSION);
    cb_jw_kv_string(w, "collbench_version", info->version);
    cb_jw_kv_string(w, "start_time", info->start_time);
    cb_jw_key(w, "argv");
    cb_jw_open(w, '[');
    for (int i = 0; i < info->argc && info->argv; i++)
        cb_jw_string(w, info->argv[i]);
    cb_jw_close(w);
    put_config(w, info);
    cb_jw_kv_int(w, "nranks", info->nranks);
    cb_jw_kv_string(w, "transport", info->transport);
    cb_jw_key(w, "ranks");
    cb_jw_open(w, '[');
    for (int r = 0; r < info->nranks && info->ranks; r++)
        put_rank(w, &info->ranks[r]);
    cb_jw_close(w);
    cb_jw_key(w, "results");
    cb_jw_open(w, '[');   /* closed by cb_json_finish */
}

static void put_per_rank(struct cb_jw *w, const struct cb_result_half *h, int nranks)
{
    cb_jw_key(w, "per_rank_us");
    if (!h->per_rank_us || nranks <= 0) {
        cb_jw_null(w);
        return;
    }
    cb_jw_open(w, '[');
    for (int r = 0; r < nranks; r++)
        cb_jw_doubles(w, h->per_rank_us + (size_t)r * h->niters, h->niters);
    cb_jw_close(w);
}

static void put_per_iter(struct cb_jw *w, const struct cb_result_half *h, int nranks)
{
    cb_jw_key(w, "per_iter");
    if (!h->have_iter) {
        cb_jw_null(w);
        return;
    }
    cb_jw_open(w, '{');
    cb_jw_kv_double(w, "min_us", h->iter.min);
    cb_jw_kv_double(w, "p50_us", h->iter.p50);
    cb_jw_kv_double(w, "p90_us", h->iter.p90);
    cb_jw_kv_double(w, "p99_us", h->iter.p99);
    cb_jw_kv_double(w, "p999_us", h->iter.p999);
    cb_jw_kv_double(w, "max_us", h->iter.max);
    cb_jw_kv_double(w, "mean_us", h->iter.mean);
    cb_jw_key(w, "slowest_rank");
    if (h->slowest_rank >= 0)
        cb_jw_int(w, h->slowest_rank);
    else
        cb_jw_null(w);
    cb_jw_kv_int(w, "slowest_count", h->slowest_count);
    cb_jw_key(w, "iter_max_us");
    if (h->iter_max_us)
        cb_jw_doubles(w, h->iter_max_us, h->niters);
    else
        cb_jw_null(w);
    put_per_rank(w, h, nranks);
    cb_jw_close(w);
}

/* A placement: null when neither the throughput nor the per-iteration pass ran. */
static void put_half(struct cb_jw *w, const char *key, const struct cb_result_half *h, int nranks)
{
    cb_jw_key(w, key);
    if (!h->ran && !h->have_iter) {
        cb_jw_null(w);
        return;
    }
    cb_jw_open(w, '{');
    cb_jw_kv_double(w, "time_us", h->ran ? h->time_us : NAN);
    cb_jw_kv_double(w, "algbw_gbps", h->ran ? h->algbw : NAN);
    cb_jw_kv_double(w, "busbw_gbps", h->ran ? h->busbw : NAN);
    cb_jw_key(w, "nwrong");
    if (h->nwrong >= 0)
        cb_jw_int(w, h->nwrong);
    else
        cb_jw_null(w);
    put_per_iter(w, h, nranks);
    cb_jw_close(w);
}

/* auto's timed near-ties, us per collective by algorithm; null when the model alone chose. */
static void put_auto_trial(struct cb_jw *w, const struct cb_auto_trial *t)
{
    cb_jw_key(w, "auto_trial_us");
    if (t->ntried == 0) {
        cb_jw_null(w);
        return;
    }
    cb_jw_open(w, '{');
    for (int i = 0; i < t->ntried; i++)
        cb_jw_kv_double(w, cb_algo_name(t->algo[i]), t->us[i]);
    cb_jw_close(w);
}

void cb_json_result(struct cb_json *j, const struct cb_result *r, int nranks)
{
    if (!j)
        return;
    struct cb_jw *w = &j->w;
    cb_jw_open(w, '{');
    cb_jw_kv_string(w, "collective", cb_coll_name(r->coll));
    cb_jw_kv_size(w, "size", r->bytes);
    cb_jw_kv_size(w, "count", r->count);
    cb_jw_kv_string(w, "type", cb_type_name(r->type));
    cb_jw_kv_string(w, "redop", cb_op_name(r->op));
    cb_jw_key(w, "root");   /* null when the collective has no root */
    if (r->root >= 0)
        cb_jw_int(w, r->root);
    else
        cb_jw_null(w);
    cb_jw_kv_string(w, "algo", cb_algo_name(r->algo));
    cb_jw_kv_string(w, "algo_asked", cb_algo_name(r->asked));
    put_auto_trial(w, &r->trial);
    put_half(w, "out_of_place", &r->oop, nranks);
    put_half(w, "in_place", &r->ip, nranks);
    cb_jw_close(w);
}

static void put_summary(struct cb_jw *w, const struct cb_summary *s)
{
    cb_jw_key(w, "summary");
    cb_jw_open(w, '{');
    cb_jw_kv_int(w, "total_wrong", s->total_wrong);
    cb_jw_kv_double(w, "avg_busbw_gbps", s->avg_busbw);
    cb_jw_kv_double(w, "peak_busbw_gbps", s->peak_busbw);
    cb_jw_kv_size(w, "peak_size", s->peak_bytes);
    cb_jw_kv_double(w, "largest_busbw_gbps", s->largest_busbw);
    cb_jw_kv_size(w, "largest_size", s->largest_bytes);
    cb_jw_kv_bool(w, "passed", s->total_wrong == 0);
    cb_jw_close(w);
}

static void put_wire_rank(struct cb_jw *w, int rank, const struct cb_wire_moved *m)
{
    cb_jw_open(w, '{');
    cb_jw_kv_int(w, "rank", rank);
    cb_jw_kv_string(w, "host", m->host);
    cb_jw_kv_int(w, "counters_read", m->nread);
    cb_jw_kv_string(w, "links", m->links);
    cb_jw_key(w, "counters");
    cb_jw_open(w, '[');
    for (int i = 0; i < m->n; i++) {
        cb_jw_open(w, '{');
        cb_jw_kv_string(w, "link", m->c[i].link);
        cb_jw_kv_string(w, "counter", m->c[i].name);
        cb_jw_kv_int(w, "delta", (long long)m->c[i].value);
        cb_jw_kv_string(w, "kind", cb_wire_kind(m->c[i].name) == CB_WIRE_CONGESTION ? "congestion" : "error");
        cb_jw_close(w);
    }
    cb_jw_close(w);
    cb_jw_kv_bool(w, "counters_truncated", m->truncated);
    cb_jw_key(w, "port_events");
    cb_jw_open(w, '[');
    for (int i = 0; i < m->nevents && i < CB_WIRE_EVENTS_MAX; i++) {
        cb_jw_open(w, '{');
        cb_jw_kv_string(w, "link", m->ev[i].link);
        cb_jw_kv_string(w, "event", m->ev[i].what);
        cb_jw_kv_int(w, "unix_ms", m->ev[i].unix_ms);
        cb_jw_close(w);
    }
    cb_jw_close(w);
    cb_jw_kv_int(w, "port_events_seen", m->nevents);
    cb_jw_kv_bool(w, "errors", cb_wire_has_errors(m));
    cb_jw_close(w);
}

/* Per rank what moved on its links (null when nothing was read). */
static void put_wire(struct cb_jw *w, const struct cb_summary *s)
{
    cb_jw_key(w, "wire");
    if (!s->wire) {
        cb_jw_null(w);
        return;
    }
    cb_jw_open(w, '[');
    for (int r = 0; r < s->nwire; r++)
        put_wire_rank(w, r, &s->wire[r]);
    cb_jw_close(w);
}

/* How many cycles ran and the recent ones' summaries (see cb_cycles). */
static void put_cycles(struct cb_jw *w, const struct cb_cycles *c, int cycles_asked)
{
    cb_jw_key(w, "cycles");
    cb_jw_open(w, '{');
    cb_jw_kv_int(w, "done", c->done);
    cb_jw_kv_string(w, "results_hold", cycles_asked == 0 ? "last cycle" : "every cycle");
    cb_jw_kv_int(w, "window", CB_CYCLE_WINDOW);
    cb_jw_key(w, "recent");
    cb_jw_open(w, '[');
    for (int i = 0; i < c->n; i++) {
        const struct cb_cycle *e = cb_cycles_at(c, i);
        cb_jw_open(w, '{');
        cb_jw_kv_int(w, "cycle", e->index);
        cb_jw_kv_string(w, "end_time", e->end_time);
        cb_jw_kv_int(w, "total_wrong", e->s.total_wrong);
        cb_jw_kv_double(w, "avg_busbw_gbps", e->s.avg_busbw);
        cb_jw_kv_double(w, "peak_busbw_gbps", e->s.peak_busbw);
        cb_jw_kv_double(w, "largest_busbw_gbps", e->s.largest_busbw);
        cb_jw_close(w);
    }
    cb_jw_close(w);
    cb_jw_close(w);
}

cb_status cb_json_finish(struct cb_json *j, const struct cb_summary *s, const struct cb_cycles *cycles)
{
    if (!j)
        return CB_OK;
    struct cb_jw *w = &j->w;
    cb_jw_close(w);   /* results */
    put_summary(w, s);
    put_wire(w, s);
    if (cycles)
        put_cycles(w, cycles, j->cycles_asked);
    char end[32];
    cb_utc_now(end, sizeof end);
    cb_jw_kv_string(w, "end_time", end);
    cb_jw_close(w);
    if (!cb_jw_done(w)) {
        cb_log_error("internal error: JSON nesting broken writing %s; file not written", j->out.path);
        cb_json_abort(j);
        return CB_EINTERNAL;
    }
    cb_status st = cb_outfile_commit(&j->out);
    free(j);
    return st;
}
