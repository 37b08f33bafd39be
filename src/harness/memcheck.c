#include "memcheck.h"
#include "sizes.h"
#include "bench/bench.h"
#include "core/checked.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE 4096
#define UNALIGN_ROOM 64       /* -u: the harness's buffers are this much larger */

static int page_round(size_t bytes, size_t *out)
{
    if (cb_size_add(bytes, PAGE - 1, out) != 0)
        return -1;
    *out &= ~(size_t)(PAGE - 1);
    return 0;
}

/* mulsum's pre-multiplied input (cb_coll_prepare_mulsum), grown to the
 * largest of the types into *most. Only odd ranks allocate it; counting it
 * for every rank keeps the estimate simple and on the safe side. */
static int premul_need(const struct cb_options *o, int nranks, size_t count, cb_type type, size_t *most)
{
    size_t bytes = 0;
    if (!cb_options_has_op(o, CB_MULSUM) || nranks < 2)
        return 0;
    if (page_round(cb_coll_premul_bytes(o->coll, nranks, count, type), &bytes))
        return -1;
    *most = bytes > *most ? bytes : *most;
    return 0;
}

/* The harness's three buffers, the scratch and mulsum's buffer, at the largest size, over -d's types. */
static int buffers_and_scratch(const struct cb_options *o, int nranks, struct cb_mem_need *n)
{
    const struct cb_bench *bench = cb_bench_for(o->coll);
    for (int t = 0; t < o->ntypes; t++) {
        struct cb_bench_counts k;
        size_t ts = cb_type_size(o->types[t]), elems, bytes, three, scratch = 0;
        bench->counts(o->max_bytes, ts, nranks, &k);
        elems = k.send_elems > k.recv_elems ? k.send_elems : k.recv_elems;
        if (cb_size_mul(elems, ts, &bytes) || cb_size_add(bytes, UNALIGN_ROOM, &bytes) ||
            page_round(bytes, &bytes) || cb_size_mul(bytes, 3, &three))
            return -1;
        if (!cb_options_only_mpi(o) && page_round(cb_coll_scratch_bytes(o->coll, nranks, k.count, o->types[t]),
                                                  &scratch))
            return -1;
        n->buffers = three > n->buffers ? three : n->buffers;
        n->scratch = scratch > n->scratch ? scratch : n->scratch;
        if (premul_need(o, nranks, k.count, o->types[t], &n->premul))
            return -1;
    }
    return 0;
}

static int fifos(const struct cb_options *o, int nranks, size_t *out)
{
    const struct cb_transport_config *t = &o->tcfg;
    size_t fifo;
    *out = 0;
    if (cb_options_only_mpi(o) || nranks < 2)
        return 0;
    return cb_size_mul(t->slot_bytes, (size_t)t->nslots, &fifo) ||
           cb_size_mul(fifo, (size_t)t->channels * (size_t)(nranks - 1), out) ? -1 : 0;
}

/* Rank 0 keeps, per row, every rank's time of every iteration and their maximum, for both placements. */
static int samples(const struct cb_options *o, int nranks, size_t *out)
{
    const struct cb_sizes s = {o->min_bytes, o->max_bytes, o->step_bytes, o->step_factor};
    size_t nsizes, rows, per_row;
    char why[256];
    *out = 0;
    if (!o->per_iter)
        return 0;
    if (cb_sizes_check(&s, &nsizes, why, sizeof why) != 0)
        return -1;
    size_t cycles = o->cycles > 0 ? (size_t)o->cycles : 1;
    return cb_size_mul(nsizes, (size_t)o->ntypes * (size_t)o->nops * (size_t)o->nalgos, &rows) ||
           cb_size_mul(rows, cycles, &rows) ||
           cb_size_mul((size_t)o->iters, ((size_t)nranks + 1) * 2 * sizeof(double), &per_row) ||
           cb_size_mul(rows, per_row, out) ? -1 : 0;
}

int cb_mem_need(const struct cb_options *o, int nranks, struct cb_mem_need *n)
{
    memset(n, 0, sizeof *n);
    if (buffers_and_scratch(o, nranks, n) || fifos(o, nranks, &n->fifos) || samples(o, nranks, &n->samples))
        return -1;
    return cb_size_add(n->buffers, n->scratch, &n->per_rank) || cb_size_add(n->per_rank, n->premul, &n->per_rank) ||
                   cb_size_add(n->per_rank, n->fifos, &n->per_rank)
               ? -1 : 0;
}

size_t cb_mem_host_need(const struct cb_options *o, int nranks, int local, int rank0_here)
{
    struct cb_mem_need n;
    size_t host;
    if (cb_mem_need(o, nranks, &n) || cb_size_mul(n.per_rank, (size_t)local, &host) ||
        (rank0_here && cb_size_add(host, n.samples, &host)))
        return SIZE_MAX;
    return host;
}

/* "KEY: N kB" of a /proc text, in bytes: 0, or -1 when absent. */
static int kb_field(const char *text, const char *key, size_t *bytes)
{
    const char *p = strstr(text, key);
    unsigned long long kb;
    if (!p || sscanf(p + strlen(key), "%llu kB", &kb) != 1 || kb > SIZE_MAX / 1024)
        return -1;
    *bytes = (size_t)kb * 1024;
    return 0;
}

int cb_meminfo_available(const char *text, size_t *bytes)
{
    return kb_field(text, "MemAvailable:", bytes);
}

/* A small file's text, or "" */
static void read_file(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, len - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
}

void cb_self_memory(size_t *rss, size_t *pinned)
{
    char text[4096];
    read_file("/proc/self/status", text, sizeof text);
    if (kb_field(text, "VmRSS:", rss) != 0)
        *rss = 0;
    if (kb_field(text, "VmPin:", pinned) != 0)
        *pinned = 0;
}

/* The first line of a small file, or "" */
static void read_line(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    buf[0] = 0;
    if (f && !fgets(buf, (int)len, f))
        buf[0] = 0;
    if (f)
        fclose(f);
    buf[strcspn(buf, "\n")] = 0;
}

/* limit - usage of the cgroup at dir; SIZE_MAX when unlimited ("max", or
 * v1's page-rounded 2^63) or unknown. */
static size_t cgroup_room(const char *dir, const char *limit_file, const char *usage_file)
{
    char path[4224], max[64], cur[64];
    uint64_t limit, used;
    snprintf(path, sizeof path, "%s/%s", dir, limit_file);
    read_line(path, max, sizeof max);
    snprintf(path, sizeof path, "%s/%s", dir, usage_file);
    read_line(path, cur, sizeof cur);
    if (cb_parse_u64(max, &limit) != 0 || limit >= (uint64_t)1 << 62 || limit >= SIZE_MAX)
        return SIZE_MAX;
    if (cb_parse_u64(cur, &used) != 0)
        used = 0;
    return used >= limit ? 0 : (size_t)(limit - used);
}

/* The least room from the cgroup at base + path up to base. */
static size_t least_room(const char *base, const char *path, const char *limit_file, const char *usage_file)
{
    char dir[4200];
    size_t least = SIZE_MAX, baselen = strlen(base);
    snprintf(dir, sizeof dir, "%s%s", base, strcmp(path, "/") == 0 ? "" : path);
    for (;;) {
        size_t room = cgroup_room(dir, limit_file, usage_file);
        least = room < least ? room : least;
        char *slash = strrchr(dir, '/');
        if (!slash || (size_t)(slash - dir) < baselen)
            return least;
        *slash = 0;
    }
}

size_t cb_cgroup_room(const char *self, const char *root)
{
    char base[4096], probe[4200];
    size_t least = SIZE_MAX;
    for (const char *line = self; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        char ctl[256], path[4096];
        size_t room = SIZE_MAX;
        if (sscanf(line, "%*[^:]:%255[^:]:%4095[^\n]", ctl, path) == 2) {   /* v1: "4:memory:/a/b" */
            if (strstr(ctl, "memory") && snprintf(base, sizeof base, "%s/memory", root) < (int)sizeof base)
                room = least_room(base, path, "memory.limit_in_bytes", "memory.usage_in_bytes");
        } else if (strncmp(line, "0::", 3) == 0 && sscanf(line + 3, "%4095[^\n]", path) == 1) {   /* v2 */
            snprintf(probe, sizeof probe, "%s/cgroup.controllers", root);   /* else hybrid: v2 under unified/ */
            snprintf(base, sizeof base, access(probe, F_OK) == 0 ? "%s" : "%s/unified", root);
            room = least_room(base, path, "memory.max", "memory.current");
        }
        least = room < least ? room : least;
    }
    return least;
}

size_t cb_mem_available(char *what, size_t len)
{
    char text[8192];
    size_t avail = SIZE_MAX, cg;
    read_file("/proc/self/cgroup", text, sizeof text);
    cg = cb_cgroup_room(text, "/sys/fs/cgroup");
    read_file("/proc/meminfo", text, sizeof text);
    if (cb_meminfo_available(text, &avail) == 0)
        snprintf(what, len, "MemAvailable");
    else
        snprintf(what, len, "unknown");
    if (cg < avail) {
        avail = cg;
        snprintf(what, len, "the room under the cgroup's memory limit");
    }
    return avail;
}

/* "3G", "512M", "64K" or bytes: the largest round figure not above `bytes`, as -e takes it. */
static void size_arg(size_t bytes, char *buf, size_t len)
{
    static const char units[] = "GMK";
    for (int i = 0; i < 3; i++) {
        size_t unit = (size_t)1 << (30 - 10 * i);
        if (bytes >= unit) {
            snprintf(buf, len, "%zu%c", bytes / unit, units[i]);
            return;
        }
    }
    snprintf(buf, len, "%zu", bytes);
}

static void human(size_t bytes, char *buf, size_t len)
{
    if (bytes >= (size_t)1 << 30)
        snprintf(buf, len, "%.1f GiB", (double)bytes / (1 << 30));
    else
        snprintf(buf, len, "%.1f MiB", (double)bytes / (1 << 20));
}

/* The largest -e (not below -b) whose run fits `avail`; 0 when none does. */
static size_t largest_fitting(const struct cb_options *o, int nranks, int local, int rank0_here, size_t avail)
{
    struct cb_options t = *o;
    size_t lo = o->min_bytes, hi = o->max_bytes;
    t.max_bytes = lo;
    if (cb_mem_host_need(&t, nranks, local, rank0_here) > avail)
        return 0;
    while (lo < hi) {   /* the need grows with -e: lo always fits */
        size_t mid = lo + (hi - lo + 1) / 2;
        t.max_bytes = mid;
        if (cb_mem_host_need(&t, nranks, local, rank0_here) <= avail)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* "96.0 GiB (per rank: buffers .., scratch .., [mulsum's input ..,] FIFOs ..; rank 0's samples ..)" */
static void describe_need(const struct cb_options *o, int nranks, int rank0_here, size_t host, char *buf, size_t len)
{
    struct cb_mem_need n;
    char total[32], b[32], s[32], f[32], smp[32], pm[64] = "";
    if (host == SIZE_MAX || cb_mem_need(o, nranks, &n) != 0) {
        snprintf(buf, len, "more than a byte count can hold");
        return;
    }
    human(host, total, sizeof total);
    human(n.buffers, b, sizeof b);
    human(n.scratch, s, sizeof s);
    human(n.fifos, f, sizeof f);
    human(n.samples, smp, sizeof smp);
    if (n.premul) {
        char p[32];
        human(n.premul, p, sizeof p);
        snprintf(pm, sizeof pm, ", mulsum's input %s", p);
    }
    snprintf(buf, len, "%s (per rank: buffers %s, scratch %s%s, FIFOs %s%s%s)", total, b, s, pm, f,
             rank0_here && n.samples ? "; rank 0's per-iteration samples " : "", rank0_here && n.samples ? smp : "");
}

static void refuse(const struct cb_options *o, int nranks, int local, int rank0_here, size_t host, size_t avail,
                   const char *what)
{
    char need[256], avail_s[32], fit_s[32], advice[160];
    size_t fit = largest_fitting(o, nranks, local, rank0_here, avail);
    describe_need(o, nranks, rank0_here, host, need, sizeof need);
    human(avail, avail_s, sizeof avail_s);
    size_arg(fit, fit_s, sizeof fit_s);
    if (fit)
        snprintf(advice, sizeof advice, "give -e %s or less, or run fewer ranks on this host", fit_s);
    else
        snprintf(advice, sizeof advice, "not even -b %zu alone fits: give a smaller -b, run fewer ranks on this "
                 "host, or give smaller --slots or --slot-bytes", o->min_bytes);
    cb_log_error("this host cannot hold the run: %d rank(s) here at -e %zu need %s, and %s is %s: %s", local,
                 o->max_bytes, need, what, avail_s, advice);
}

cb_status cb_mem_check(const struct cb_options *o, int nranks, int local, int rank0_here, int report)
{
    char what[64];
    size_t host = cb_mem_host_need(o, nranks, local, rank0_here), avail = cb_mem_available(what, sizeof what);
    if (host != SIZE_MAX && host <= avail)
        return CB_OK;
    if (report)
        refuse(o, nranks, local, rank0_here, host, avail, what);
    return CB_EUSAGE;
}
