#include "options_agree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cb_agreed_add(struct cb_agreed *a, const char *name, const void *p, size_t len)
{
    if (a->n >= CB_AGREED_MAX)
        return;   /* a programming error the options' test catches (CB_AGREED_MAX) */
    uint64_t h = 0xcbf29ce484222325ull;
    const unsigned char *b = p;
    for (size_t i = 0; i < sizeof len; i++)
        h = (h ^ ((len >> (8 * i)) & 0xff)) * 0x100000001b3ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    a->names[a->n] = name;
    a->digests[a->n++] = h;
}

/* Every option that changes what the ranks exchange or how many times.
 * Not here: what is only local (-T, -u, -a, --bind, the NIC and interface
 * choices, -J and --csv, which rank 0 alone writes). */
void cb_options_digest(const struct cb_options *o, struct cb_agreed *a)
{
    a->n = 0;
    cb_agreed_add(a, "the collective", &o->coll, sizeof o->coll);
    cb_agreed_add(a, "-b", &o->min_bytes, sizeof o->min_bytes);
    cb_agreed_add(a, "-e", &o->max_bytes, sizeof o->max_bytes);
    cb_agreed_add(a, "-i", &o->step_bytes, sizeof o->step_bytes);
    cb_agreed_add(a, "-f", &o->step_factor, sizeof o->step_factor);
    cb_agreed_add(a, "-n", &o->iters, sizeof o->iters);
    cb_agreed_add(a, "-w", &o->warmup, sizeof o->warmup);
    cb_agreed_add(a, "-m", &o->agg_iters, sizeof o->agg_iters);
    cb_agreed_add(a, "-N", &o->cycles, sizeof o->cycles);
    cb_agreed_add(a, "-c", &o->check_iters, sizeof o->check_iters);
    cb_agreed_add(a, "-I", &o->per_iter, sizeof o->per_iter);
    cb_agreed_add(a, "-r", &o->root, sizeof o->root);
    cb_agreed_add(a, "-d", o->types, sizeof o->types[0] * (size_t)o->ntypes);
    cb_agreed_add(a, "-o", o->ops, sizeof o->ops[0] * (size_t)o->nops);
    cb_agreed_add(a, "--algo (or --mpi-reference)", o->algos, sizeof o->algos[0] * (size_t)o->nalgos);
    cb_agreed_add(a, "--seed", &o->seed, sizeof o->seed);
    cb_options_digest_transport(o, a);
}

void cb_options_digest_transport(const struct cb_options *o, struct cb_agreed *a)
{
    const struct cb_transport_config *t = &o->tcfg;
    cb_agreed_add(a, "--transport", o->transport, strlen(o->transport));
    cb_agreed_add(a, "--channels", &t->channels, sizeof t->channels);
    cb_agreed_add(a, "--slot-bytes", &t->slot_bytes, sizeof t->slot_bytes);
    cb_agreed_add(a, "--slots", &t->nslots, sizeof t->nslots);
    cb_agreed_add(a, "--qps", &t->qps_per_conn, sizeof t->qps_per_conn);
    int split = cb_split_data(t);   /* what is in force: auto and off are the same */
    cb_agreed_add(a, "--ib-split-data", &split, sizeof split);
}

/* What each rank sends: its parse status, then its digests. */
struct record {
    int64_t parsed;
    uint64_t digests[CB_AGREED_MAX];
};

/* "1, 2, 5" of the ranks whose field f differs from rank 0's (the first 8, then "and N more"). */
static void list_ranks(const struct record *all, int nranks, int f, char *buf, size_t len)
{
    size_t used = 0;
    int shown = 0, more = 0;
    buf[0] = 0;
    for (int r = 1; r < nranks; r++) {
        if (all[r].digests[f] == all[0].digests[f])
            continue;
        if (shown == 8) {
            more++;
            continue;
        }
        int w = snprintf(buf + used, len - used, "%s%d", shown ? ", " : "", r);
        used += w > 0 && (size_t)w < len - used ? (size_t)w : 0;
        shown++;
    }
    if (more)
        snprintf(buf + used, len - used, " and %d more", more);
}

/* The lowest rank whose command line did not parse, or -1. */
static int first_refused(const struct record *all, int nranks, int *count)
{
    int first = -1;
    *count = 0;
    for (int r = 0; r < nranks; r++)
        if (all[r].parsed != CB_OK) {
            first = first < 0 ? r : first;
            ++*count;
        }
    return first;
}

/* The first option (in agreed_fields' order) on which some rank differs from rank 0, or -1. */
static int first_difference(const struct record *all, int nranks, int nfields)
{
    for (int f = 0; f < nfields; f++)
        for (int r = 1; r < nranks; r++)
            if (all[r].digests[f] != all[0].digests[f])
                return f;
    return -1;
}

static cb_status judge(struct cb_boot *b, int argc, char **argv, const struct cb_agreed *mine, cb_reparse_fn *reparse,
                       const struct record *all)
{
    int nranks = cb_boot_size(b), me = cb_boot_rank(b), refused;
    int first = first_refused(all, nranks, &refused);
    if (first >= 0) {
        if (me == first) {
            reparse(argc, argv);
            if (refused > 1)
                cb_log_error("%d of the %d ranks refused their command line; the first is shown", refused, nranks);
        }
        return CB_EUSAGE;
    }
    int f = first_difference(all, nranks, mine->n);
    if (f < 0)
        return CB_OK;
    if (me == 0) {
        char ranks[160];
        list_ranks(all, nranks, f, ranks, sizeof ranks);
        cb_log_error("the ranks disagree on %s: rank(s) %s were started with another %s than rank 0; give every "
                     "rank the same options (with mpirun's `-np 1 A : -np 1 B`, check each part)",
                     mine->names[f], ranks, mine->names[f]);
    }
    return CB_EUSAGE;
}

cb_status cb_agree(struct cb_boot *b, int argc, char **argv, cb_status parsed, const struct cb_agreed *a,
                   cb_reparse_fn *reparse, int timeout_ms)
{
    int nranks = cb_boot_size(b);
    struct record mine;
    memset(&mine, 0, sizeof mine);
    mine.parsed = parsed;
    if (parsed == CB_OK)
        memcpy(mine.digests, a->digests, sizeof a->digests[0] * (size_t)a->n);
    struct record *all = calloc((size_t)nranks, sizeof *all);
    if (!all)
        return CB_ENOMEM;
    cb_status st = cb_boot_allgather(b, &mine, all, sizeof mine, timeout_ms, "comparing command lines");
    if (st == CB_OK && (st = judge(b, argc, argv, a, reparse, all)) != CB_OK)
        /* no rank leaves before the one that reports has written its line:
         * a launcher that sees one rank exit kills the others at once */
        cb_boot_barrier(b, timeout_ms, "reporting a bad command line");
    free(all);
    return st;
}

static void reparse_collective(int argc, char **argv)
{
    struct cb_options again;
    cb_options_parse(argc, argv, &again, 1);
}

cb_status cb_options_agree(struct cb_boot *b, int argc, char **argv, const struct cb_options *o, cb_status parsed)
{
    struct cb_agreed a = {0};
    if (parsed == CB_OK)
        cb_options_digest(o, &a);
    return cb_agree(b, argc, argv, parsed, &a, reparse_collective, o->timeout_s * 1000);
}
