/* `mpirun -np N collbench tune [-o FILE] [collbench options]`: measure the
 * cost model's terms on this job's ranks, transport and FIFO geometry (the
 * same measurement `--algo auto` makes at start-up) and write them to FILE,
 * for COLLBENCH_TUNE_FILE=FILE (auto without the start-up measurement) and
 * `collbench model --params FILE`. Rank 0 writes the file and prints it. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "algo/algo.h"
#include "coll/model.h"
#include "core/job.h"
#include "harness/options.h"
#include "harness/options_agree.h"
#include "report/outfile.h"

/* Split off -o FILE; the rest is parsed as collbench's own options. */
static const char *take_output(int *argc, char **argv)
{
    const char *out = "collbench-tune.txt";
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "-o") != 0 || i + 1 >= *argc)
            continue;
        out = argv[i + 1];
        memmove(&argv[i], &argv[i + 2], sizeof *argv * (size_t)(*argc - i - 2));
        *argc -= 2;
        break;
    }
    return out;
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
    struct cb_options o;
    struct cb_boot *boot;
    struct cb_comm *comm = NULL;
    const char *path = take_output(&argc, argv);
    int launched = cb_boot_launcher_rank() >= 0, report = cb_boot_launcher_rank() <= 0;
    cb_status parsed = cb_options_parse(argc, argv, &o, !launched);
    if (parsed != CB_OK && !launched)
        return 2;
    if (parsed == CB_OK && o.show_help) {
        if (report)
            printf("Usage: mpirun -np N collbench tune [-o FILE] [--transport T] [--slot-bytes S] [--slots N]\n"
                   "         [-d TYPES]\nMeasures the cost model's terms (docs/algorithms.md) into FILE "
                   "(default collbench-tune.txt).\n");
        return 0;
    }
    int argc0 = argc;
    char **argv0 = argv;
    cb_status st = cb_boot_init(&argc, &argv, o.timeout_s * 1000, &boot);
    if (st != CB_OK)
        return cb_status_exit_code(st);
    st = cb_options_agree(boot, argc0, argv0, &o, parsed);
    if (st == CB_EUSAGE) {   /* every rank knows: nothing to abort */
        cb_boot_finalize(boot);
        return 2;
    }
    if (st == CB_OK)
        st = setup(boot, &o, path, &comm);
    if (st == CB_OK)
        st = measure_and_write(comm, &o, path);
    if (st == CB_OK)
        cb_comm_destroy(comm);
    else
        cb_boot_abort(boot, cb_status_exit_code(st));
    cb_boot_finalize(boot);
    return cb_status_exit_code(st);
}
