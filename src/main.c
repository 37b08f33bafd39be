/* collbench: collectives over our own transports, measured like nccl-tests. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/bootstrap.h"
#include "core/clock.h"
#include "core/comm.h"
#include "harness/harness.h"
#include "harness/memcheck.h"
#include "core/job.h"
#include "harness/options.h"
#include "harness/options_agree.h"
#include "tools/pairs.h"
#include "report/report.h"
#include "topo/topo.h"

#include "version.h"   /* CB_VERSION: scripts/version at build time (Makefile) */
#define CB_EXIT_WIRE 3   /* --fail-on-wire-errors: the run passed, the wire did not */

/* nccl-tests' exit status when a check failed or the average bus bandwidth
 * is below NCCL_TESTS_MIN_BW (its testNumResults). */
#define NCCL_TESTS_FAILED_EXIT 7

/* -N runs rewrite -J and --csv after a cycle at most this often; the last
 * cycle, and a stop on a signal, always write what complete cycles hold. */
#define REWRITE_EVERY_S 10.0

struct outputs {
    const char *json_path, *csv_path;
    struct cb_run_info *info;
    int nranks;
    int nccl;                /* nccl-tests' format: its JSON layout */
    double min_bw;           /* NCCL_TESTS_MIN_BW, -1 when not set */
    double last_write_s;        /* when the files were last written (or the run began) */
    long long cycles_written;   /* complete cycles the files hold */
};

/* How a run ended beyond its status: what the exit code is made of. */
struct verdict {
    long long wrong;         /* wrong elements, every rank knows */
    int below_min_bw;        /* rank 0: the average bus bandwidth failed NCCL_TESTS_MIN_BW */
    int wire_errors;         /* the wire moved during the run (--fail-on-wire-errors) */
};

/* The signal that asked the run to stop, 0 while none did. Only the handler
 * writes it; main hands its address down (cb_options.stop) and the harness
 * polls it between operations and sizes. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    stop_signal = sig;
}

/* SA_RESETHAND: a second SIGINT or SIGTERM ends the rank at once, should it
 * be stuck in a wait. */
static void catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_RESETHAND;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

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

/* The command line against this job: -r among its ranks, the outputs
 * writable, the memory of the largest size on each host (reported once per host). */
static cb_status validate_job(const struct cb_options *o, struct cb_boot *boot)
{
    int nranks = cb_boot_size(boot), rank = cb_boot_rank(boot);
    if (o->root >= nranks) {
        if (rank == 0)
            cb_log_error("-r %d is not a rank of this job of %d ranks: give -r from 0 to %d",
                         o->root, nranks, nranks - 1);
        return CB_EUSAGE;
    }
    cb_status st = cb_mem_check(o, nranks, cb_boot_local_size(boot), cb_boot_same_machine(boot, rank, 0),
                                cb_boot_local_rank(boot) == 0);
    if (st != CB_OK)
        return st;
    return rank == 0 ? probe_outputs(o) : CB_OK;
}

static void fill_run_info(const struct cb_options *o, int argc, char **argv, struct cb_comm *c,
                          struct cb_run_info *info)
{
    time_t now = time(NULL);
    memset(info, 0, sizeof *info);
    info->version = CB_VERSION;
    info->start_epoch = (long long)now;
    info->nccl = cb_options_nccl_view(o);
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
/* Rail-local rings (core/ring_order.h): where each channel's ring goes from this rank. */
static void describe_rings(const struct cb_comm *c, struct cb_props *props)
{
    char next[96] = "";
    size_t used = 0;
    if (!c->ring_rail_local)
        return;
    for (int ch = 0; ch < c->nchannels && used < sizeof next; ch++)
        used += (size_t)snprintf(next + used, sizeof next - used, "%s%d", ch ? "," : "",
                                 cb_ring_at(c, ch, cb_ring_pos(c, ch) + 1));
    cb_props_add(props, "ring_next", "%s", next);
}

static cb_status gather_ranks(struct cb_comm *c, const struct cb_topo_rank *place, struct cb_run_info *info)
{
    struct cb_rank_info mine;
    memset(&mine, 0, sizeof mine);
    mine.rank = c->rank;
    mine.pid = getpid();
    snprintf(mine.host, sizeof mine.host, "%s", c->peers[c->rank].host);
    describe_transports(c, &mine.props);
    describe_rings(c, &mine.props);
    cb_topo_describe(place, &mine.props);   /* after: transports start the list afresh */
    cb_comm_buffer_use(c, &mine.conns);
    cb_self_memory(&mine.rss_bytes, &mine.pinned_bytes);
    info->ranks = calloc((size_t)c->nranks, sizeof *info->ranks);
    if (!info->ranks)
        return CB_ENOMEM;
    return cb_boot_gather(c->boot, &mine, info->ranks, sizeof mine, c->cfg.timeout_ms, "collecting rank info");
}

static cb_status write_json(const struct outputs *out, const struct cb_sweep *s)
{
    struct cb_json *j;
    cb_status st = cb_json_open(out->json_path, &j);
    if (st != CB_OK)
        return st;
    cb_json_begin(j, out->info);
    for (int i = 0; i < s->nresults; i++)
        cb_json_result(j, &s->results[i], out->nranks);
    return cb_json_finish(j, &s->summary, &s->cycles);
}

static cb_status write_csv(const struct outputs *out, const struct cb_sweep *s)
{
    struct cb_csv *c;
    cb_status st = cb_csv_open(out->csv_path, &c);
    if (st != CB_OK)
        return st;
    cb_csv_begin(c, out->info);
    for (int i = 0; i < s->nresults; i++)
        cb_csv_result(c, &s->results[i]);
    return cb_csv_finish(c);
}

/* Rank 0 after a cycle: a failure (logged) stops the run with a non-zero exit. */
static cb_status write_outputs(const struct cb_sweep *s, int last, void *arg)
{
    struct outputs *out = arg;
    double now = cb_now_s();
    if (s->cycles.done == out->cycles_written || (!last && now - out->last_write_s < REWRITE_EVERY_S))
        return CB_OK;
    out->last_write_s = now;
    out->cycles_written = s->cycles.done;
    cb_status st = CB_OK;
    if (out->json_path && out->nccl)
        st = cb_nccl_json_write(out->json_path, out->info, s->results, s->nresults, &s->summary, out->min_bw);
    else if (out->json_path)
        st = write_json(out, s);
    if (st == CB_OK && out->csv_path)
        st = write_csv(out, s);
    return st;
}

/* --fail-on-wire-errors: rank 0 names what moved. */
static void report_wire(const struct cb_sweep *s)
{
    char line[2048];
    cb_wire_line(s->wire, s->summary.nwire, line, sizeof line);
    cb_log_error("--fail-on-wire-errors: the wire moved during the run: %s; exit %d", line, CB_EXIT_WIRE);
}

/* nccl-tests keeps an existing -J file and writes to FILE.0, FILE.1, ...
 * instead, saying where (rank 0 only). */
static cb_status pick_nccl_json(const struct cb_options *o, int rank, char **chosen)
{
    *chosen = NULL;
    if (!o->json_path || o->nccl.format != CB_FORMAT_NCCL || rank != 0)
        return CB_OK;
    if (!(*chosen = cb_nccl_json_pick(o->json_path))) {
        cb_log_error("out of memory choosing the JSON file name for %s", o->json_path);
        return CB_ENOMEM;
    }
    printf("# Writing JSON output to %s\n", *chosen);
    return CB_OK;
}

static void put_header(const struct cb_options *o, const struct cb_run_info *info)
{
    if (o->nccl.format == CB_FORMAT_NCCL)
        cb_nccl_header(stdout, info);
    else
        cb_table_header(stdout, info);
}

static void put_footer(const struct cb_options *o, const struct cb_run_info *info, const struct cb_summary *s,
                       double min_bw)
{
    if (o->nccl.format == CB_FORMAT_NCCL)
        cb_nccl_footer(stdout, s, min_bw, info->nccl.program);
    else
        cb_table_footer(stdout, s, min_bw);
}

static cb_status run(struct cb_boot *boot, struct cb_options *o, int argc, char **argv, struct verdict *v)
{
    struct cb_comm *comm = NULL;
    struct cb_run_info info;
    struct cb_sweep sweep;
    memset(&sweep, 0, sizeof sweep);
    struct cb_topo_rank place;
    struct cb_job_setup setup = {o->transport, o->topo_xml, o->bind};
    cb_status mine = validate_job(o, boot);
    cb_status st = cb_job_start(boot, mine, &setup, &o->tcfg, &place, &comm);
    if (st != CB_OK)
        return st;   /* after a failure a peer may be gone: the caller aborts the job instead */
    fill_run_info(o, argc, argv, comm, &info);
    info.ranks = NULL;
    char *nccl_json = NULL;
    /* the algorithms' connections (cb_harness_prepare) come before the
     * header, so that it shows what this rank's QPs really have (the path
     * MTU both ends agreed, traffic class, SL) and the memory they hold */
    if ((st = cb_harness_prepare(comm, o)) != CB_OK || (st = gather_ranks(comm, &place, &info)) != CB_OK ||
        (st = pick_nccl_json(o, comm->rank, &nccl_json)))
        goto free_info;
    if (comm->rank == 0)
        put_header(o, &info);
    fflush(stdout);
    struct outputs out = {nccl_json ? nccl_json : o->json_path, o->csv_path, &info, comm->nranks,
                          o->nccl.format == CB_FORMAT_NCCL, cb_min_bw_env(), cb_now_s(), 0};
    st = cb_harness_sweep(comm, o, stdout, &sweep, write_outputs, &out);
    if (st == CB_OK && comm->rank == 0) {
        put_footer(o, &info, &sweep.summary, out.min_bw);
        v->below_min_bw = cb_min_bw_failed(&sweep.summary, out.min_bw);
    }
    fflush(stdout);
    v->wrong = sweep.wrong;
    v->wire_errors = sweep.wire_errors;
    if (st == CB_OK && o->fail_on_wire && sweep.wire_errors && comm->rank == 0)
        report_wire(&sweep);
    cb_harness_free(&sweep);
free_info:
    free(nccl_json);
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

/* The exit status: nccl-tests' (7) for a failed check or NCCL_TESTS_MIN_BW
 * in its format; 1 in ours. */
static int exit_code(const struct cb_options *o, const struct verdict *v, int report)
{
    int nccl = o->nccl.format == CB_FORMAT_NCCL;
    if (v->wrong > 0 && report)
        cb_log_error("%lld wrong elements: the run FAILED (the lines above name rank, size, type and op)", v->wrong);
    if (v->below_min_bw)
        cb_log_error("the average bus bandwidth is below 0.9 x NCCL_TESTS_MIN_BW (%s GB/s): the run FAILED",
                     getenv("NCCL_TESTS_MIN_BW"));
    if (v->wrong > 0 || v->below_min_bw)
        return nccl ? NCCL_TESTS_FAILED_EXIT : 1;
    if (o->fail_on_wire && v->wire_errors)
        return CB_EXIT_WIRE;
    return 0;
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
    struct verdict verdict = {0, 0, 0};
    int launched = cb_boot_launcher_rank() >= 0, report = cb_boot_launcher_rank() <= 0;
    int argc0 = argc;
    char **argv0 = argv;
    /* under a launcher the ranks compare their parse first, so that a bad
     * command line on any rank is reported once and every rank exits 2 */
    cb_status parsed = cb_options_parse(argc, argv, &o, !launched);
    if (parsed == CB_OK && o.show_help) {
        if (report)
            cb_options_usage(stdout);
        return 0;
    }
    if (parsed != CB_OK && !launched)
        return 2;
    cb_status st = cb_boot_init(&argc, &argv, o.timeout_s * 1000, &boot);
    if (st != CB_OK)
        return cb_status_exit_code(st);
    catch_stop_signals();   /* after MPI_Init, which may install its own */
    o.stop = &stop_signal;
    st = cb_options_agree(boot, argc0, argv0, &o, parsed);
    if (st == CB_OK)
        st = run(boot, &o, argc, argv, &verdict);
    if (stop_signal && st != CB_OK) {
        /* No MPI_Finalize: it would wait for ranks still measuring; they
         * find this one gone and stop too (or mpirun ends them). */
        cb_log_warn("stopped by %s%s; exit status %d", stop_signal == SIGINT ? "SIGINT" : "SIGTERM",
                    st == CB_ESTOPPED ? " between operations" : "", 128 + stop_signal);
        fflush(stdout);
        return 128 + stop_signal;
    }
    cb_job_end(boot, st);
    if (st == CB_OK)
        return exit_code(&o, &verdict, report);
    return cb_status_exit_code(st);
}
