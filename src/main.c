/* collbench: collectives over our own transports, measured like nccl-tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/bootstrap.h"
#include "core/comm.h"
#include "harness/harness.h"
#include "core/job.h"
#include "harness/options.h"
#include "tools/pairs.h"
#include "report/report.h"
#include "topo/topo.h"

#include "version.h"   /* CB_VERSION: scripts/version at build time (Makefile) */
#define CB_EXIT_WIRE 3   /* --fail-on-wire-errors: the run passed, the wire did not */

struct outputs {
    const char *json_path, *csv_path;
    struct cb_run_info *info;
    int nranks;
};

/* Rank 0 checks up front that -J and --csv can be written, so a bad path
 * fails before the run instead of after it. */
static cb_status probe_outputs(const struct cb_options *o)
{
    struct cb_json *j;
    struct cb_csv *c;
    if (o->json_path) {
        if (cb_json_open(o->json_path, &j) != CB_OK)
            return CB_EUSAGE;
        cb_json_abort(j);
    }
    if (o->csv_path) {
        if (cb_csv_open(o->csv_path, &c) != CB_OK)
            return CB_EUSAGE;
        cb_csv_abort(c);
    }
    return CB_OK;
}

static cb_status validate_job(const struct cb_options *o, int nranks, int rank)
{
    if (o->root >= nranks) {
        if (rank == 0)
            cb_log_error("-r %d is not a rank of this job of %d ranks: give -r from 0 to %d",
                         o->root, nranks, nranks - 1);
        return CB_EUSAGE;
    }
    return rank == 0 ? probe_outputs(o) : CB_OK;
}

static void fill_run_info(const struct cb_options *o, int argc, char **argv, struct cb_comm *c,
                          struct cb_run_info *info)
{
    time_t now = time(NULL);
    memset(info, 0, sizeof *info);
    info->version = CB_VERSION;
    info->argc = argc;
    info->argv = argv;
    info->collective = cb_coll_name(o->coll);
    info->transport = cb_options_only_mpi(o) ? "mpi" : c->transport_name;
    info->nranks = c->nranks;
    info->min_bytes = o->min_bytes;
    info->max_bytes = o->max_bytes;
    info->step_bytes = o->step_bytes;
    info->step_factor = o->step_factor;
    info->iters = o->iters;
    info->warmup = o->warmup;
    info->agg_iters = o->agg_iters;
    info->check_iters = o->check_iters;
    info->cycles = o->cycles;
    info->average = o->average;
    info->blocking = o->blocking;
    info->unalign = o->unalign;
    info->per_iter = o->per_iter;
    info->timeout_s = o->timeout_s;
    info->slot_bytes = o->tcfg.slot_bytes;
    info->nslots = o->tcfg.nslots;
    info->algo = o->algo_list;
    strftime(info->start_time, sizeof info->start_time, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
}


/* The transport's properties; with a transport per peer, the network's, and
 * which peers this rank reaches over shm. */
static void describe_transports(const struct cb_comm *c, struct cb_props *props)
{
    if (!c->net_ops) {
        c->ops->properties(c->tctx, props);
        return;
    }
    c->net_ops->properties(c->net_tctx, props);
    char peers[96] = "";
    size_t used = 0;
    for (int r = 0; r < c->nranks && used < sizeof peers; r++) {
        void *tctx;
        if (r != c->rank && cb_comm_transport_of(c, r, &tctx) == c->ops)
            used += (size_t)snprintf(peers + used, sizeof peers - used, "%s%d", used ? "," : "", r);
    }
    cb_props_add(props, "shm_peers", "%s", peers[0] ? peers : "none");
}
static cb_status gather_ranks(struct cb_comm *c, const struct cb_topo_rank *place, struct cb_run_info *info)
{
    struct cb_rank_info mine;
    memset(&mine, 0, sizeof mine);
    mine.rank = c->rank;
    mine.pid = getpid();
    snprintf(mine.host, sizeof mine.host, "%s", c->peers[c->rank].host);
    describe_transports(c, &mine.props);
    cb_topo_describe(place, &mine.props);   /* after: transports start the list afresh */
    info->ranks = calloc((size_t)c->nranks, sizeof *info->ranks);
    if (!info->ranks)
        return CB_ENOMEM;
    return cb_boot_gather(c->boot, &mine, info->ranks, sizeof mine, c->cfg.timeout_ms, "collecting rank info");
}

static void write_outputs(const struct cb_sweep *s, void *arg)
{
    const struct outputs *out = arg;
    struct cb_json *j;
    struct cb_csv *c;
    if (out->json_path && cb_json_open(out->json_path, &j) == CB_OK) {
        cb_json_begin(j, out->info);
        for (int i = 0; i < s->nresults; i++)
            cb_json_result(j, &s->results[i], out->nranks);
        cb_json_finish(j, &s->summary);
    }
    if (out->csv_path && cb_csv_open(out->csv_path, &c) == CB_OK) {
        for (int i = 0; i < s->nresults; i++)
            cb_csv_result(c, &s->results[i]);
        cb_csv_finish(c);
    }
}

/* --fail-on-wire-errors: rank 0 names what moved. */
static void report_wire(const struct cb_sweep *s)
{
    char line[2048];
    cb_wire_line(s->wire, s->summary.nwire, line, sizeof line);
    cb_log_error("--fail-on-wire-errors: the wire moved during the run: %s; exit %d", line, CB_EXIT_WIRE);
}

static cb_status run(struct cb_boot *boot, struct cb_options *o, int argc, char **argv, long long *wrong,
                     int *wire_errors)
{
    struct cb_comm *comm = NULL;
    struct cb_run_info info;
    struct cb_sweep sweep;
    memset(&sweep, 0, sizeof sweep);
    struct cb_topo_rank place;
    struct cb_job_setup setup = {o->transport, o->topo_xml, o->bind};
    cb_status mine = validate_job(o, cb_boot_size(boot), cb_boot_rank(boot));
    cb_status st = cb_job_start(boot, mine, &setup, &o->tcfg, &place, &comm);
    if (st != CB_OK)
        return st;   /* after a failure a peer may be gone: the caller aborts the job instead */
    fill_run_info(o, argc, argv, comm, &info);
    if ((st = gather_ranks(comm, &place, &info)) != CB_OK)
        goto free_info;
    if (comm->rank == 0)
        cb_table_header(stdout, &info);
    fflush(stdout);
    struct outputs out = {o->json_path, o->csv_path, &info, comm->nranks};
    st = cb_harness_sweep(comm, o, stdout, &sweep, write_outputs, &out);
    if (st == CB_OK && comm->rank == 0)
        cb_table_footer(stdout, &sweep.summary);
    fflush(stdout);
    *wrong = sweep.wrong;
    *wire_errors = sweep.wire_errors;
    if (st == CB_OK && o->fail_on_wire && sweep.wire_errors && comm->rank == 0)
        report_wire(&sweep);
    cb_harness_free(&sweep);
free_info:
    free(info.ranks);
    if (st == CB_OK)
        cb_comm_destroy(comm);
    return st;
}

/* Subcommands other than the collectives: name -> entry taking argv from the name on. */
struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
};

static const struct subcommand subcommands[] = {
    {"pairs", cb_cmd_pairs},
    {"topo", cb_cmd_topo},
    {"model", cb_cmd_model},
    {"tune", cb_cmd_tune},
    {"algorithms", cb_cmd_algorithms},
    {NULL, NULL},
};

static const struct subcommand *find_subcommand(int argc, char **argv)
{
    for (const struct subcommand *s = subcommands; argc > 1 && s->name; s++)
        if (strcmp(argv[1], s->name) == 0)
            return s;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("collbench %s\n", CB_VERSION);
        return 0;
    }
    const struct subcommand *sub = find_subcommand(argc, argv);
    if (sub)
        return sub->run(argc - 1, argv + 1);
    struct cb_options o;
    struct cb_boot *boot;
    long long wrong = 0;
    int wire_errors = 0;
    int report = cb_boot_launcher_rank() <= 0;
    if (cb_options_parse(argc, argv, &o, report) != CB_OK)
        return 2;
    if (o.show_help) {
        if (report)
            cb_options_usage(stdout);
        return 0;
    }
    cb_status st = cb_boot_init(&argc, &argv, o.tcfg.timeout_ms, &boot);
    if (st != CB_OK)
        return cb_status_exit_code(st);
    st = run(boot, &o, argc, argv, &wrong, &wire_errors);
    cb_job_end(boot, st);
    if (st == CB_OK && wrong > 0) {
        if (report)
            cb_log_error("%lld wrong elements: the run FAILED (the lines above name rank, size, type and op)", wrong);
        return 1;
    }
    if (st == CB_OK && o.fail_on_wire && wire_errors)
        return CB_EXIT_WIRE;
    return cb_status_exit_code(st);
}
