/* The --csv file: one row per (result, placement), for spreadsheets,
 * written whole or not at all through outfile. Every row ends with the
 * run's metadata (version, start time, ranks, transport). Types stay the
 * same whatever was measured, so a reader's column types do not depend on
 * the run: an integer column has -1 where there is no figure (nwrong not
 * checked, no slowest rank), a figure column an empty cell (a float either
 * way). */
#include "report.h"
#include "outfile.h"

#include <math.h>
#include <stdlib.h>

struct cb_csv {
    struct cb_outfile out;
    const struct cb_run_info *info;   /* the metadata columns; NULL: empty */
};

static const char csv_header[] =
    "collective,size,count,type,redop,root,algo,placement,time_us,algbw_gbps,busbw_gbps,nwrong,"
    "min_us,p50_us,p90_us,p99_us,p999_us,max_us,slowest_rank,collbench_version,start_time,nranks,transport\n";

void cb_csv_begin(struct cb_csv *c, const struct cb_run_info *info)
{
    if (c)
        c->info = info;
}

/* Metadata cells: collbench's own strings (no commas or quotes in them). */
static void put_meta(FILE *f, const struct cb_run_info *info)
{
    if (!info) {
        fputs(",,,-1,", f);
        return;
    }
    fprintf(f, ",%s,%s,%d,%s", info->version ? info->version : "", info->start_time, info->nranks,
            info->transport ? info->transport : "");
}

cb_status cb_csv_open(const char *path, struct cb_csv **out)
{
    *out = NULL;
    struct cb_csv *c = calloc(1, sizeof *c);
    if (!c) {
        cb_log_error("out of memory opening CSV file %s", path);
        return CB_ENOMEM;
    }
    cb_status st = cb_outfile_open(path, "CSV", "--csv", &c->out);
    if (st != CB_OK) {
        free(c);
        return st;
    }
    fputs(csv_header, c->out.f);
    *out = c;
    return CB_OK;
}

/* ",value" with the shortest exact form; an empty cell when unknown. */
static void put_double(FILE *f, double v, int known)
{
    fputc(',', f);
    if (!known || !isfinite(v))
        return;
    char buf[32];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    fputs(buf, f);
}

static void put_row(FILE *f, const struct cb_result *r, const char *placement,
                    const struct cb_result_half *h, const struct cb_run_info *info)
{
    char label[32];
    fprintf(f, "%s,%zu,%zu,%s,%s,%d,%s,%s", cb_coll_name(r->coll), r->bytes, r->count,
            cb_type_name(r->type), cb_op_name(r->op), r->root < 0 ? -1 : r->root,
            cb_result_algo_label(r, label, sizeof label), placement);
    put_double(f, h->time_us, h->ran);
    put_double(f, h->algbw, h->ran);
    put_double(f, h->busbw, h->ran);
    fprintf(f, ",%lld", h->nwrong >= 0 ? h->nwrong : -1);   /* -1: not checked */
    const double pct[] = {h->iter.min, h->iter.p50, h->iter.p90, h->iter.p99, h->iter.p999, h->iter.max};
    for (size_t i = 0; i < sizeof pct / sizeof pct[0]; i++)
        put_double(f, pct[i], h->have_iter);
    fprintf(f, ",%d", h->have_iter && h->slowest_rank >= 0 ? h->slowest_rank : -1);
    put_meta(f, info);
    fputc('\n', f);
}

void cb_csv_result(struct cb_csv *c, const struct cb_result *r)
{
    if (!c)
        return;
    if (r->oop.ran || r->oop.have_iter)
        put_row(c->out.f, r, "out_of_place", &r->oop, c->info);
    if (r->ip.ran || r->ip.have_iter)
        put_row(c->out.f, r, "in_place", &r->ip, c->info);
}

void cb_csv_abort(struct cb_csv *c)
{
    if (!c)
        return;
    cb_outfile_abort(&c->out);
    free(c);
}

cb_status cb_csv_finish(struct cb_csv *c)
{
    if (!c)
        return CB_OK;
    cb_status st = cb_outfile_commit(&c->out);
    free(c);
    return st;
}
