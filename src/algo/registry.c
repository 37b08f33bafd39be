/* The table of algorithms: CB_ALGO_TABLE's descriptors, by id. */
#include "algo.h"

#include <stdio.h>
#include <string.h>

static const struct cb_algo_desc *const descs[CB_NALGOS] = {
#define CB_ALGO_ENTRY_(id, name) [CB_ALGO_##id] = &cb_algo_##name,
    CB_ALGO_TABLE(CB_ALGO_ENTRY_)
#undef CB_ALGO_ENTRY_
};

const struct cb_algo_desc *cb_algo_desc(cb_algo a)
{
    return (unsigned)a < CB_NALGOS ? descs[a] : NULL;
}

const struct cb_algo_impl *cb_algo_impl(cb_algo a, cb_coll coll)
{
    const struct cb_algo_desc *d = cb_algo_desc(a);
    for (int i = 0; d && i < CB_NCOLLS && d->impl[i].run; i++)
        if (d->impl[i].coll == coll)
            return &d->impl[i];
    return NULL;
}

const char *cb_algo_name(cb_algo a)
{
    if (a == CB_ALGO_AUTO)
        return "auto";
    const struct cb_algo_desc *d = cb_algo_desc(a);
    return d ? d->name : "?";
}

int cb_algo_parse(const char *name)
{
    for (int a = 0; a < CB_NALGOS; a++)
        if (strcmp(name, cb_algo_name((cb_algo)a)) == 0)
            return a;
    return -1;
}

void cb_algo_names(char *buf, size_t size, const char *sep, const char *last_sep)
{
    size_t used = 0;
    if (size)
        buf[0] = 0;
    for (int a = 0; a < CB_NALGOS && used < size; a++) {
        const char *join = a == 0 ? "" : a == CB_NALGOS - 1 ? last_sep : sep;
        int n = snprintf(buf + used, size - used, "%s%s", join, cb_algo_name((cb_algo)a));
        used += n > 0 ? (size_t)n : 0;
    }
}

void cb_algo_print(FILE *out, int pairs)
{
    for (int a = 1; a < CB_NALGOS; a++) {
        const struct cb_algo_desc *d = cb_algo_desc((cb_algo)a);
        if (!pairs)
            fprintf(out, "  %-13s %s\n  %-13s", d->name, d->summary, "");
        for (int i = 0; i < CB_NCOLLS && d->impl[i].run; i++)
            if (pairs)
                fprintf(out, "%s %s%s\n", d->name, cb_coll_name(d->impl[i].coll), d->not_ours ? " not-ours" : "");
            else
                fprintf(out, " %s", cb_coll_name(d->impl[i].coll));
        if (!pairs)
            fputc('\n', out);
    }
}

int cb_cmd_algorithms(int argc, char **argv)
{
    int pairs = argc == 2 && strcmp(argv[1], "--pairs") == 0;
    if (argc > 2 || (argc == 2 && !pairs)) {
        fprintf(stderr, "usage: collbench algorithms [--pairs]\n"
                        "  every algorithm, what it is and the collectives it runs;\n"
                        "  --pairs: one 'ALGORITHM COLLECTIVE' line per pair, for scripts\n");
        return strcmp(argv[argc - 1], "-h") == 0 || strcmp(argv[argc - 1], "--help") == 0 ? 0 : 2;
    }
    cb_algo_print(stdout, pairs);
    return 0;
}
