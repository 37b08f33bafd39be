/* `mpirun -np N collbench tune [-o FILE] [collbench options]`: measure the
 * cost model's terms on this job's ranks, transport and FIFO geometry (the
 * same measurement `--algo auto` makes at start-up) and write them to FILE,
 * for COLLBENCH_TUNE_FILE=FILE (auto without the start-up measurement) and
 * `collbench model --params FILE`. Rank 0 writes the file and prints it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "algo/algo.h"
#include "coll/model.h"
#include "core/job.h"
#include "harness/options.h"
#include "harness/options_agree.h"
#include "report/outfile.h"

enum { OPT_SHARED = 3000 };   /* + index of cb_options_shared_name */

struct tune_opts {
    const char *path;          /* -o */
    struct cb_options base;    /* -d, and the flags every command shares */
    int show_help;
};

static void usage(void)
{
    printf("Usage: mpirun -np N collbench tune [-o FILE] [-d TYPES] [-T SECONDS] [shared flags]\n"
           "Measures the cost model's terms (docs/algorithms.md) on this job's ranks, transport and FIFO\n"
           "geometry into FILE (default collbench-tune.txt). The shared flags are those of\n"
           "`collbench pairs --help`: --transport, --bind and the transport options.\n");
}

/* -o FILE, -d TYPES, -h, and the shared flags: options.c's parsers, no argv rewriting. */
static cb_status tune_parse(int argc, char **argv, struct tune_opts *t, int report)
{
    static const struct option own[] = {
        {"output", required_argument, 0, 'o'}, {"datatype", required_argument, 0, 'd'},
        {"timeout", required_argument, 0, 'T'}, {"help", no_argument, 0, 'h'},
    };
    const int nown = (int)(sizeof own / sizeof own[0]);
    struct option all[sizeof own / sizeof own[0] + CB_SHARED_FLAGS_MAX + 1];
    memset(t, 0, sizeof *t);
    t->path = "collbench-tune.txt";
    cb_options_defaults(&t->base);
    memcpy(all, own, sizeof own);
    int n = cb_options_shared_longopts(all + nown, CB_SHARED_FLAGS_MAX, OPT_SHARED);
    memset(&all[nown + n], 0, sizeof *all);
    optind = 0;   /* glibc: start afresh */
    opterr = 0;
    for (int ch; (ch = getopt_long(argc, argv, ":o:d:T:h", all, NULL)) != -1;) {
        int bad = 0;
        if (ch == '?' || ch == ':')
            bad = cb_usage_error(report, "%s '%s' for tune: see collbench tune --help",
                                 ch == ':' ? "missing value of" : "unknown option", argv[optind - 1]);
        else if (ch == 'o')
            t->path = optarg;
        else if (ch == 'd')
            bad = cb_options_types(optarg, &t->base, report);
        else if (ch == 'h')
            t->show_help = 1;
        else
            bad = cb_options_shared(ch == 'T' ? "timeout" : cb_options_shared_name(ch - OPT_SHARED), optarg,
                                    &t->base, report);
        if (bad)
            return CB_EUSAGE;
    }
    if (optind < argc) {
        cb_usage_error(report, "unexpected argument '%s' for tune: options only; see collbench tune --help",
                       argv[optind]);
        return CB_EUSAGE;
    }
    return cb_options_shared_done(&t->base, report) ? CB_EUSAGE : CB_OK;
}

/* What every rank must share: the types measured and the transport's settings. */
static void reparse_tune(int argc, char **argv)
{
    struct tune_opts again;
    tune_parse(argc, argv, &again, 1);
}

static cb_status tune_agree(struct cb_boot *b, int argc, char **argv, const struct tune_opts *t, cb_status parsed)
{
    struct cb_agreed a = {0};
    if (parsed == CB_OK) {
        cb_agreed_add(&a, "-d", t->base.types, sizeof t->base.types[0] * (size_t)t->base.ntypes);
        cb_options_digest_transport(&t->base, &a);
    }
    return cb_agree(b, argc, argv, parsed, &a, reparse_tune, t->base.timeout_s * 1000);
}

/* Placed, bound and connected like a benchmark run, so the terms are the
 * ones it will see; rank 0 checks first that it can write the file. */
static cb_status setup(struct cb_boot *boot, struct cb_options *o, const char *path, struct cb_comm **comm)
{
    struct cb_topo_rank place;
    struct cb_job_setup s = {o->transport, o->topo_xml, o->bind};
    cb_status checked = cb_boot_rank(boot) == 0 ? cb_outfile_check(path, "tune", "-o") : CB_OK;
    return cb_job_start(boot, checked, &s, &o->tcfg, &place, comm);
}

static cb_status measure_and_write(struct cb_comm *c, const struct cb_options *o, const char *path)
{
    struct cb_cost cost;
    memset(&cost, 0, sizeof cost);
    cb_status st = CB_OK;
    for (int i = 0; i < o->ntypes && st == CB_OK; i++)
        st = cb_probe_cost(c, o->types[i], CB_SUM, &cost);
    if (st != CB_OK || c->rank != 0)
        return st;
    struct cb_outfile out;
    if ((st = cb_outfile_open(path, "tune", "-o", &out)) != CB_OK)
        return st;
    cb_cost_save(out.f, &cost, c->transport_name);   /* a failed write shows at commit, which says why */
    if ((st = cb_outfile_commit(&out)) != CB_OK)
        return st;
    printf("# collbench tune: %d ranks over %s: alpha %.3f us, beta %.4f ns/B (%.2f GB/s) -> %s\n", c->nranks,
           c->transport_name, cost.alpha_s * 1e6, cost.beta_s * 1e9, cost.beta_s > 0 ? 1e-9 / cost.beta_s : 0, path);
    return CB_OK;
}

int cb_cmd_tune(int argc, char **argv)
{
    struct tune_opts t;
    struct cb_boot *boot;
    struct cb_comm *comm = NULL;
    int launched = cb_boot_launcher_rank() >= 0, report = cb_boot_launcher_rank() <= 0;
    cb_status parsed = tune_parse(argc, argv, &t, !launched);
    if (parsed != CB_OK && !launched)
        return 2;
    if (parsed == CB_OK && t.show_help) {
        if (report)
            usage();
        return 0;
    }
    int argc0 = argc;
    char **argv0 = argv;
    cb_status st = cb_boot_init(&argc, &argv, t.base.timeout_s * 1000, &boot);
    if (st != CB_OK)
        return cb_status_exit_code(st);
    st = tune_agree(boot, argc0, argv0, &t, parsed);
    if (st == CB_EUSAGE) {   /* every rank knows: nothing to abort */
        cb_boot_finalize(boot);
        return 2;
    }
    if (st == CB_OK)
        st = setup(boot, &t.base, t.path, &comm);
    if (st == CB_OK)
        st = measure_and_write(comm, &t.base, t.path);
    if (st == CB_OK)
        cb_comm_destroy(comm);
    else
        cb_boot_abort(boot, cb_status_exit_code(st));
    cb_boot_finalize(boot);
    return cb_status_exit_code(st);
}
