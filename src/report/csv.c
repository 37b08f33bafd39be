/* The --csv file: one row per (result, placement), for spreadsheets. Written
 * to "<path>.tmp.<pid>" and renamed over <path> only when complete. Unknown
 * figures (not checked, no per-iteration pass) are empty cells. */
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct cb_csv {
    FILE *f;
    char *path, *tmp_path;
};

static const char csv_header[] =
    "collective,size,count,type,redop,root,algo,placement,time_us,algbw_gbps,busbw_gbps,nwrong,"
    "min_us,p50_us,p90_us,p99_us,p999_us,max_us,slowest_rank\n";

static void cannot_write(const char *path, int err)
{
    cb_log_error("cannot write CSV file %s: %s; pick a writable path with --csv", path, strerror(err));
}

static void free_csv(struct cb_csv *c)
{
    free(c->path);
    free(c->tmp_path);
    free(c);
}

static char *tmp_name_for(const char *path)
{
    size_t cap = strlen(path) + 32;
    char *name = malloc(cap);
    if (name)
        snprintf(name, cap, "%s.tmp.%ld", path, (long)getpid());
    return name;
}

static cb_status create_tmp(struct cb_csv *c)
{
    struct stat st;
    if (stat(c->path, &st) == 0 && S_ISDIR(st.st_mode)) {   /* rename would fail only at the end */
        cannot_write(c->path, EISDIR);
        return CB_EUSAGE;
    }
    int fd = open(c->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        cannot_write(c->path, errno);
        return CB_EUSAGE;
    }
    c->f = fdopen(fd, "w");
    if (!c->f) {
        cannot_write(c->path, errno);
        close(fd);
        unlink(c->tmp_path);
        return CB_ESYS;
    }
    return CB_OK;
}

cb_status cb_csv_open(const char *path, struct cb_csv **out)
{
    *out = NULL;
    struct cb_csv *c = calloc(1, sizeof *c);
    if (c) {
        c->path = strdup(path);
        c->tmp_path = tmp_name_for(path);
    }
    if (!c || !c->path || !c->tmp_path) {
        cb_log_error("out of memory opening CSV file %s", path);
        if (c)
            free_csv(c);
        return CB_ENOMEM;
    }
    cb_status st = create_tmp(c);
    if (st != CB_OK) {
        free_csv(c);
        return st;
    }
    fputs(csv_header, c->f);
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
                    const struct cb_result_half *h)
{
    fprintf(f, "%s,%zu,%zu,%s,%s,%d,%s,%s", cb_coll_name(r->coll), r->bytes, r->count,
            cb_type_name(r->type), cb_op_name(r->op), r->root < 0 ? -1 : r->root,
            cb_algo_name(r->algo), placement);
    put_double(f, h->time_us, h->ran);
    put_double(f, h->algbw, h->ran);
    put_double(f, h->busbw, h->ran);
    fputc(',', f);
    if (h->nwrong >= 0)
        fprintf(f, "%lld", h->nwrong);
    const double pct[] = {h->iter.min, h->iter.p50, h->iter.p90, h->iter.p99, h->iter.p999, h->iter.max};
    for (size_t i = 0; i < sizeof pct / sizeof pct[0]; i++)
        put_double(f, pct[i], h->have_iter);
    fputc(',', f);
    if (h->have_iter && h->slowest_rank >= 0)
        fprintf(f, "%d", h->slowest_rank);
    fputc('\n', f);
}

void cb_csv_result(struct cb_csv *c, const struct cb_result *r)
{
    if (!c)
        return;
    if (r->oop.ran || r->oop.have_iter)
        put_row(c->f, r, "out_of_place", &r->oop);
    if (r->ip.ran || r->ip.have_iter)
        put_row(c->f, r, "in_place", &r->ip);
}

void cb_csv_abort(struct cb_csv *c)
{
    if (!c)
        return;
    fclose(c->f);
    unlink(c->tmp_path);
    free_csv(c);
}

/* Flush to disk, then rename: the file appears complete or not at all. */
cb_status cb_csv_finish(struct cb_csv *c)
{
    if (!c)
        return CB_OK;
    errno = 0;
    int failed = fflush(c->f) != 0 || ferror(c->f) || fsync(fileno(c->f)) != 0;
    int err = errno ? errno : EIO;   /* an earlier failed write may have left no errno */
    if (fclose(c->f) != 0 && !failed) {
        failed = 1;
        err = errno;
    }
    if (!failed && rename(c->tmp_path, c->path) != 0) {
        failed = 1;
        err = errno;
    }
    if (failed) {
        cannot_write(c->path, err);
        unlink(c->tmp_path);
    }
    free_csv(c);
    return failed ? CB_ESYS : CB_OK;
}
