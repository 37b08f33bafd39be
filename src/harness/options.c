#include "options.h"
#include "algo/algo.h"
#include "sizes.h"
#include "core/checked.h"
#include "topo/topo.h"
#include "transport/hca.h"
#include "transport_opts.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SLOT_BYTES (512 * 1024)
#define DEFAULT_NSLOTS 8

enum long_only {
    OPT_TRANSPORT = 1000, OPT_ALGO, OPT_CSV, OPT_SEED, OPT_MPI_REFERENCE, OPT_BIND, OPT_TOPO_XML, OPT_FAIL_ON_WIRE,
    OPT_TRANSPORT_TABLE = 1100,   /* + index into the transport options' table (transport_opts.c) */
};

static const struct option long_opts[] = {
    {"minbytes", required_argument, 0, 'b'}, {"maxbytes", required_argument, 0, 'e'},
    {"stepbytes", required_argument, 0, 'i'}, {"stepfactor", required_argument, 0, 'f'},
    {"iters", required_argument, 0, 'n'}, {"warmup_iters", required_argument, 0, 'w'},
    {"agg_iters", required_argument, 0, 'm'}, {"run_cycles", required_argument, 0, 'N'},
    {"check", required_argument, 0, 'c'}, {"op", required_argument, 0, 'o'},
    {"datatype", required_argument, 0, 'd'}, {"root", required_argument, 0, 'r'},
    {"blocking", required_argument, 0, 'z'}, {"average", required_argument, 0, 'a'},
    {"timeout", required_argument, 0, 'T'}, {"output_file", required_argument, 0, 'J'},
    {"json", required_argument, 0, 'J'}, {"per_iter", required_argument, 0, 'I'},
    {"unalign", required_argument, 0, 'u'}, {"help", no_argument, 0, 'h'},
    {"csv", required_argument, 0, OPT_CSV}, {"transport", required_argument, 0, OPT_TRANSPORT},
    {"algo", required_argument, 0, OPT_ALGO}, {"seed", required_argument, 0, OPT_SEED},
    {"mpi-reference", no_argument, 0, OPT_MPI_REFERENCE},
    {"fail-on-wire-errors", no_argument, 0, OPT_FAIL_ON_WIRE},
    {"bind", required_argument, 0, OPT_BIND}, {"topo-xml", required_argument, 0, OPT_TOPO_XML},
    CB_NCCL_LONG_OPTIONS,
};
#define NOWN ((int)(sizeof long_opts / sizeof long_opts[0]))
#define MAX_TOPTS 64

/* getopt's table: ours, then the transport options' (transport_opts.c). */
static void build_long_opts(struct option *all)
{
    int n;
    const struct cb_topt *t = cb_topts(&n);
    memcpy(all, long_opts, sizeof long_opts);
    for (int i = 0; i < n && i < MAX_TOPTS; i++)
        all[NOWN + i] = (struct option){t[i].name, required_argument, 0, OPT_TRANSPORT_TABLE + i};
    memset(&all[NOWN + (n < MAX_TOPTS ? n : MAX_TOPTS)], 0, sizeof *all);
}

void cb_options_usage(FILE *out)
{
    fputs(
"usage: mpirun -np N collbench COLLECTIVE [options]\n"
"       mpirun -np N all_reduce_perf [options]     (nccl-tests' binary names work too)\n"
"COLLECTIVE: all_reduce all_gather reduce_scatter alltoall broadcast reduce sendrecv\n"
"Sizes (suffixes K M G are binary; for all_gather, reduce_scatter, alltoall the size is the total buffer):\n"
"  -b, --minbytes SIZE      smallest size (default 32M)\n"
"  -e, --maxbytes SIZE      largest size (default 32M)\n"
"  -f, --stepfactor F       multiply the size by F (geometric sweep)\n"
"  -i, --stepbytes SIZE     add SIZE (linear sweep, default 1M; ignored with -f)\n"
"Timing:\n"
"  -n, --iters N            timed iterations (default 20)\n"
"  -w, --warmup_iters N     untimed warm-up iterations (default 1)\n"
"  -m, --agg_iters N        operations per iteration (default 1)\n"
"  -N, --run_cycles N       repeat the whole sweep N times, 0 = until interrupted (default 1)\n"
"  -a, --average N          combine ranks' times: 0 rank 0, 1 mean, 2 min, 3 max (default 1)\n"
"  -I, --per_iter 0/1       per-iteration pass with percentiles (default 1; 0 in nccl-tests' format)\n"
"  -z, --blocking 0..3      accepted for nccl-tests compatibility: calls are always blocking\n"
"  -T, --timeout SECONDS    give up on a peer after this long, naming it (default 60; 0 = default)\n"
"Data:\n"
"  -d, --datatype TYPE      int8 uint8 int32 uint32 int64 uint64 half float double bfloat16\n"
"                           f8e4m3 f8e5m2, or all (default float)\n"
"  -o, --op OP              sum prod min max avg mulsum, or all (default sum); mulsum: odd ranks'\n"
"                           input times 2, then a sum, as nccl-tests' mulsum\n"
"  -r, --root N             root of broadcast and reduce (default 0)\n"
"  -c, --check N            checked iterations per size, 0 = none (default 1)\n"
"  -u, --unalign N          offset buffers by N elements from page alignment (default 0)\n"
"      --seed N             seed of the data pattern (default 1)\n"
"Output:\n"
"  -J, --json FILE          write every figure as JSON (also --output_file)\n"
"      --csv FILE           write CSV\n"
"      --fail-on-wire-errors  exit 3 when an error counter of a link in use moved or a port\n"
"                           went down during the run (the footer's \"# wire:\" line names it)\n"
"Engine:\n"
"      --transport T        shm, tcp, verbs or auto (default auto: shm between ranks that share\n"
"                           memory, else verbs when every rank has an active RDMA port, else\n"
"                           tcp), or INTRA+INTER to choose each side: shm+verbs, tcp+tcp, ...\n"
"      --algo A[,B..]       auto (default: the cost model picks per size), or those\n"
"                           below (docs/algorithms.md);\n"
"                           several are timed in turn, size by size, rows one after another\n"
"      --mpi-reference      run MPI's own collective (MPI_Allreduce, ...) in the same harness,\n"
"                           for comparison (with --algo: besides those); types and ops MPI has\n"
"                           only\n", out);
    cb_topts_usage(out, CB_TOPT_ENGINE);
    cb_topts_usage(out, CB_TOPT_TCP);
    fputs(
"Placement (docs/topology.md):\n"
"      --bind MODE          none, core or numa: bind each rank near its NIC (default: core; none\n"
"                           when ranks outnumber cpus or the launcher bound them)\n"
"      --topo-xml FILE      place ranks on this hwloc XML topology instead of the machine's\n"
"Verbs (IB, RoCE):\n", out);
    cb_topts_usage(out, CB_TOPT_VERBS);
    fputs(
"Output format:\n"
"      --format F           nccl-tests (its 13 columns, closing lines, -J layout and exit codes;\n"
"                           the default under the *_perf names) or native (collbench's columns)\n"
"nccl-tests' GPU flags (docs/manual.md): -t/--nthreads 1, -g/--ngpus 1, -p/--parallel_init 0/1,\n"
"  -y/--stream_null 0/1, -G/--cudagraph N (each timed loop runs N times), -C/--report_cputime 0/1,\n"
"  -S/--report_timestamps 0/1, -R/--local_register 0/1/2, -x/--cta_policy 0, -D/--device_implementation 0,\n"
"  -V/--device_cta_count N, -M/--memory 0/1, -K/--per_iter_skip N, --per_iter_timing (= -I)\n"
"      --version            collbench's version\n"
"  -h, --help               this text\n"
"Algorithms (--algo; also `collbench algorithms`):\n", out);
    cb_algo_print(out, 0);
}

int cb_usage_error(int report, const char *fmt, ...)
{
    if (report) {
        char line[512], shown[768];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        cb_escape(shown, sizeof shown, line);   /* an argument's bytes are shown, not sent to the terminal */
        cb_log_error("%s", shown);
    }
    return -1;
}

int cb_parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    unsigned shift = 0;
    switch (toupper((unsigned char)*end)) {
    case 'K': shift = 10; end++; break;
    case 'M': shift = 20; end++; break;
    case 'G': shift = 30; end++; break;
    default: break;
    }
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end != 0 || (shift && v > (~0ULL >> shift)))
        return -1;
    *out = (size_t)(v << shift);
    return 0;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static int coll_by_name(const char *name)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", name);
    size_t n = strlen(buf);
    if (n > 9 && strcmp(buf + n - 9, "_perf_mpi") == 0)
        buf[n - 9] = 0;
    else if (n > 5 && strcmp(buf + n - 5, "_perf") == 0)
        buf[n - 5] = 0;
    for (int c = 0; c < CB_NCOLLS; c++)
        if (strcmp(buf, cb_coll_name((cb_coll)c)) == 0)
            return c;
    return -1;
}

void cb_options_defaults(struct cb_options *o)
{
    memset(o, 0, sizeof *o);
    o->min_bytes = o->max_bytes = 32u << 20;
    o->step_bytes = 1u << 20;
    o->iters = 20;
    o->warmup = 1;
    o->agg_iters = 1;
    o->cycles = 1;
    o->check_iters = 1;
    o->average = 1;
    o->per_iter = 1;
    o->timeout_s = CB_DEFAULT_TIMEOUT_S;
    o->types[0] = CB_FLOAT;
    o->ntypes = 1;
    o->ops[0] = CB_SUM;
    o->nops = 1;
    snprintf(o->transport, sizeof o->transport, "auto");
    o->algos[0] = CB_ALGO_AUTO;
    o->nalgos = 1;
    o->seed = 1;
    o->tune_file = getenv("COLLBENCH_TUNE_FILE");
    if (o->tune_file && !*o->tune_file)
        o->tune_file = NULL;
    cb_nccl_flags_defaults(&o->nccl);
    o->tcfg.slot_bytes = DEFAULT_SLOT_BYTES;
    o->tcfg.nslots = DEFAULT_NSLOTS;
    o->tcfg.gid_index = -1;
    o->tcfg.traffic_class = -1;   /* the fabric's */
    o->tcfg.service_level = -1;
    o->tcfg.qps_per_conn = 1;
    o->tcfg.channels = 1;
    o->tcfg.ib_timeout = 20;
    o->tcfg.ib_retry_cnt = 7;
    o->tcfg.ib_ar_threshold = 8192;   /* NCCL_IB_AR_THRESHOLD's default */
    const char *hca = getenv("COLLBENCH_HCA");
    if (hca)
        snprintf(o->tcfg.hca, sizeof o->tcfg.hca, "%s", hca);
}

/* -d and -o take one name, "all", or a comma-separated list. */
int cb_options_types(const char *s, struct cb_options *o, int report)
{
    char buf[256], *save = NULL;
    if (strcmp(s, "all") == 0) {
        for (int t = 0; t < CB_NTYPES; t++)
            o->types[t] = (cb_type)t;
        o->ntypes = CB_NTYPES;
        return 0;
    }
    snprintf(buf, sizeof buf, "%s", s);
    o->ntypes = 0;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int t = cb_type_parse(tok);
        if (t < 0 || o->ntypes == CB_NTYPES)
            return cb_usage_error(report, "unknown type '%s' for -d: use int8 uint8 int32 uint32 int64 uint64 half "
                               "float double bfloat16 f8e4m3 f8e5m2, a comma list of them, or all", tok);
        o->types[o->ntypes++] = (cb_type)t;
    }
    return o->ntypes ? 0 : cb_usage_error(report, "-d needs a type: see --help");
}

static int parse_ops(const char *s, struct cb_options *o, int report)
{
    char buf[256], *save = NULL;
    o->op_given = 1;
    if (strcmp(s, "all") == 0) {
        for (int p = 0; p < CB_NOPS; p++)
            o->ops[p] = (cb_op)p;
        o->nops = CB_NOPS;
        return 0;
    }
    snprintf(buf, sizeof buf, "%s", s);
    o->nops = 0;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int p = cb_op_parse(tok);
        if (p < 0 || o->nops == CB_NOPS)
            return cb_usage_error(report, "unknown op '%s' for -o: use sum prod min max avg mulsum, a comma list, or all", tok);
        o->ops[o->nops++] = (cb_op)p;
    }
    return o->nops ? 0 : cb_usage_error(report, "-o needs an op: see --help");
}

static int size_arg(const char *flag, const char *s, size_t *out, int report)
{
    if (cb_parse_size(s, out) != 0 && cb_nccl_parse_size(s, out) != 0)
        return cb_usage_error(report, "bad size '%s' for %s: give bytes with an optional K, M or G suffix, e.g. 8, 64K, 256M", s, flag);
    return 0;
}

int cb_int_arg(const char *flag, const char *s, int lo, int hi, int *out, int report)
{
    if (parse_int(s, lo, hi, out) != 0)
        return cb_usage_error(report, "bad value '%s' for %s: give an integer from %d to %d", s, flag, lo, hi);
    return 0;
}

static int copy_arg(const char *flag, const char *s, char *dst, size_t len, int report)
{
    if (strlen(s) >= len)
        return cb_usage_error(report, "value of %s is too long (at most %zu characters)", flag, len - 1);
    memcpy(dst, s, strlen(s) + 1);
    return 0;
}

/* The nccl-tests flags. */
static int parse_short(int ch, const char *arg, struct cb_options *o, int report)
{
    char flag[3] = {'-', (char)ch, 0};
    switch (ch) {
    case 'b': return size_arg(flag, arg, &o->min_bytes, report);
    case 'e': return size_arg(flag, arg, &o->max_bytes, report);
    case 'i': return size_arg(flag, arg, &o->step_bytes, report);
    case 'f': {
        char *end;
        o->step_factor = strtod(arg, &end);
        if (*end || end == arg || !(o->step_factor >= 0) || !isfinite(o->step_factor))
            return cb_usage_error(report, "bad factor '%s' for -f: give a number greater than 1, e.g. -f 2 "
                                  "(0 or 1: steps of -i, as in nccl-tests)", arg);
        if (o->step_factor <= 1.0)
            o->step_factor = 0;   /* nccl-tests: a factor of 1 or less means steps of -i */
        return 0;
    }
    case 'n': return cb_int_arg(flag, arg, 1, 100000000, &o->iters, report);
    case 'w': return cb_int_arg(flag, arg, 0, 100000000, &o->warmup, report);
    case 'm': return cb_int_arg(flag, arg, 1, 1000000, &o->agg_iters, report);
    case 'N': return cb_int_arg(flag, arg, 0, 1000000000, &o->cycles, report);
    case 'c': return cb_int_arg(flag, arg, 0, 1000000, &o->check_iters, report);
    case 'o': return parse_ops(arg, o, report);
    case 'd': return cb_options_types(arg, o, report);
    case 'r':
        if (strcmp(arg, "all") == 0) {   /* nccl-tests' every-root sweep (also -1) */
            o->root = CB_EVERY_ROOT;
            return 0;
        }
        return cb_int_arg(flag, arg, CB_EVERY_ROOT, 1 << 30, &o->root, report);
    case 'z': return cb_int_arg(flag, arg, 0, 3, &o->blocking, report);   /* nccl-tests' modes 0..3 */
    case 'a': return cb_int_arg(flag, arg, 0, 3, &o->average, report);
    case 'I':
        o->nccl.per_iter_given = 1;
        return cb_int_arg(flag, arg, 0, 1, &o->per_iter, report);
    case 'u': return cb_int_arg(flag, arg, 0, CB_MAX_UNALIGN, &o->unalign, report);
    case 'T': return cb_options_shared("timeout", arg, o, report);
    case 'J': o->json_path = arg; return 0;
    case 'h': o->show_help = 1; return 0;
    }
    return cb_usage_error(report, "unknown option; see --help");
}

static int unknown_algo(int report, const char *name)
{
    char names[256];
    cb_algo_names(names, sizeof names, ", ", " or ");
    return cb_usage_error(report, "unknown algorithm '%s': use %s, or several separated by commas", name, names);
}

/* --algo A[,B..]: the names, each known, at most CB_MAX_COMPARED. */
static int parse_algo_list(const char *arg, struct cb_options *o, int report)
{
    char name[32];
    o->nalgos = 0;
    o->algo_given = 1;
    for (const char *p = arg;; p++) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof name)
            return cb_usage_error(report, "bad --algo '%s': give names separated by commas, e.g. ring,tree,auto", arg);
        memcpy(name, p, len);
        name[len] = 0;
        int a = cb_algo_parse(name);
        if (a < 0)
            return unknown_algo(report, name);
        if (o->nalgos == CB_MAX_COMPARED)
            return cb_usage_error(report, "--algo '%s' names more than %d algorithms: compare fewer at a time", arg,
                                  CB_MAX_COMPARED);
        o->algos[o->nalgos++] = (cb_algo)a;
        p += len;
        if (!*p)
            return 0;
    }
}

/* Whether MPI's own collective is among the algorithms that run. */
int cb_options_runs_mpi(const struct cb_options *o)
{
    for (int i = 0; i < o->nalgos; i++)
        if (o->algos[i] == CB_ALGO_MPI)
            return 1;
    return 0;
}

/* Whether only MPI's own collective runs (no transport of ours moves data). */
int cb_options_only_mpi(const struct cb_options *o)
{
    for (int i = 0; i < o->nalgos; i++)
        if (o->algos[i] != CB_ALGO_MPI)
            return 0;
    return 1;
}

/* --mpi-reference alone runs MPI's collective instead of ours; with --algo,
 * besides the algorithms named. Then the list's names go to the header. */
int cb_options_has_op(const struct cb_options *o, cb_op op)
{
    for (int p = 0; p < o->nops; p++)
        if (o->ops[p] == op)
            return 1;
    return 0;
}

static int settle_algos(struct cb_options *o, int report)
{
    if (o->mpi_reference && !o->algo_given)
        o->algos[0] = CB_ALGO_MPI;
    else if (o->mpi_reference && !cb_options_runs_mpi(o)) {
        if (o->nalgos == CB_MAX_COMPARED)
            return cb_usage_error(report, "--algo with --mpi-reference makes more than %d algorithms: name fewer",
                                  CB_MAX_COMPARED);
        o->algos[o->nalgos++] = CB_ALGO_MPI;
    }
    size_t used = 0;
    o->algo_list[0] = 0;
    for (int i = 0; i < o->nalgos; i++)
        used += (size_t)snprintf(o->algo_list + used, sizeof o->algo_list - used, "%s%s", i ? "," : "",
                                 cb_algo_name(o->algos[i]));
    return 0;
}

/* shm, tcp, verbs, auto, or INTRA+INTER with INTER a network. */
static int transport_name_ok(const char *s)
{
    static const char *const one[] = {"shm", "tcp", "verbs", "auto"};
    static const char *const pairs[] = {"shm+tcp", "shm+verbs", "tcp+tcp", "tcp+verbs", "verbs+tcp", "verbs+verbs"};
    for (size_t i = 0; i < sizeof one / sizeof one[0]; i++)
        if (strcmp(s, one[i]) == 0)
            return 1;
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        if (strcmp(s, pairs[i]) == 0)
            return 1;
    return 0;
}

/* The shared flags that are not transport options. */
static const char *const engine_shared[] = {"transport", "timeout", "bind"};
#define NENGINE ((int)(sizeof engine_shared / sizeof *engine_shared))

const char *cb_options_shared_name(int i)
{
    int n;
    const struct cb_topt *t = cb_topts(&n);
    return i < 0 ? NULL : i < NENGINE ? engine_shared[i] : i - NENGINE < n ? t[i - NENGINE].name : NULL;
}

int cb_options_shared_longopts(struct option *out, int max, int base_val)
{
    int n = 0;
    for (const char *name; n < max && (name = cb_options_shared_name(n)); n++)
        out[n] = (struct option){name, required_argument, 0, base_val + n};
    return n;
}

int cb_options_shared(const char *name, const char *arg, struct cb_options *o, int report)
{
    if (strcmp(name, "transport") == 0) {
        if (!transport_name_ok(arg))
            return cb_usage_error(report, "unknown transport '%s': use shm, tcp, verbs, auto, or INTRA+INTER "
                                  "(e.g. shm+verbs: INTRA between ranks that share memory, INTER tcp or verbs)",
                                  arg);
        return copy_arg("--transport", arg, o->transport, sizeof o->transport, report);
    }
    if (strcmp(name, "timeout") == 0) {
        if (parse_int(arg, 0, 86400 * 7, &o->timeout_s) != 0)
            return cb_usage_error(report, "bad timeout '%s' for -T: give seconds from 1 to 604800, or 0 for "
                                  "the default", arg);
        if (o->timeout_s == 0)   /* nccl-tests' "no timeout": collbench never waits without a limit */
            o->timeout_s = CB_DEFAULT_TIMEOUT_S;
        return 0;
    }
    if (strcmp(name, "bind") == 0) {
        if ((o->bind = cb_bind_parse(arg)) < 0)
            return cb_usage_error(report, "unknown --bind '%s': use none, core, numa or auto", arg);
        return 0;
    }
    int n;
    const struct cb_topt *t = cb_topts(&n);
    for (int i = 0; i < n; i++)
        if (strcmp(name, t[i].name) == 0)
            return cb_topt_parse(&t[i], arg, &o->tcfg, report);
    return 1;
}

int cb_options_shared_done(struct cb_options *o, int report)
{
    struct cb_hca_spec hca;
    char why[512];
    if (cb_hca_parse(o->tcfg.hca, &hca, why, sizeof why))   /* --hca, or COLLBENCH_HCA */
        return cb_usage_error(report, "%s%s", why,
                              getenv("COLLBENCH_HCA") && !strcmp(getenv("COLLBENCH_HCA"), o->tcfg.hca)
                                  ? " (from COLLBENCH_HCA)" : "");
    o->tcfg.timeout_ms = o->timeout_s * 1000;
    return 0;
}

static int parse_long(int ch, const char *arg, struct cb_options *o, int report)
{
    if (ch >= OPT_TRANSPORT_TABLE) {
        int n;
        const struct cb_topt *t = cb_topts(&n);
        return ch - OPT_TRANSPORT_TABLE < n ? cb_topt_parse(&t[ch - OPT_TRANSPORT_TABLE], arg, &o->tcfg, report) : -1;
    }
    switch (ch) {
    case OPT_CSV: o->csv_path = arg; return 0;
    case OPT_MPI_REFERENCE: o->mpi_reference = 1; return 0;
    case OPT_FAIL_ON_WIRE: o->fail_on_wire = 1; return 0;
    case OPT_TRANSPORT: return cb_options_shared("transport", arg, o, report);
    case OPT_ALGO: return parse_algo_list(arg, o, report);
    case OPT_SEED:
        return cb_parse_u64(arg, &o->seed) ? cb_usage_error(report, "bad seed '%s': give an integer from 0 to "
                                                            "18446744073709551615", arg) : 0;
    case OPT_BIND: return cb_options_shared("bind", arg, o, report);
    case OPT_TOPO_XML: o->topo_xml = arg; return 0;
    }
    return cb_usage_error(report, "unknown option; see --help");
}

static int pick_collective(int argc, char **argv, struct cb_options *o, int report, int *first_arg)
{
    char prog[256];
    snprintf(prog, sizeof prog, "%s", argv[0]);
    int c = coll_by_name(basename(prog));
    *first_arg = 1;
    if (c < 0 && argc > 1 && argv[1][0] != '-') {
        c = coll_by_name(argv[1]);
        if (c < 0)
            return cb_usage_error(report, "unknown collective '%s': use all_reduce, all_gather, reduce_scatter, "
                               "alltoall, broadcast, reduce or sendrecv", argv[1]);
        *first_arg = 2;
    }
    o->coll = c < 0 ? CB_ALL_REDUCE : (cb_coll)c;
    return 0;
}

/* An algorithm that handles only some types and ops (MPI's) refuses the rest. */
static int algo_refuses(const struct cb_options *o, const struct cb_algo_desc *d, int report)
{
    for (int t = 0; d && d->supports && t < o->ntypes; t++)
        for (int p = 0; p < o->nops; p++)
            if (d->supports(o->coll, o->types[t], o->ops[p], report) != CB_OK)
                return 1;
    return 0;
}

static int check_consistency(struct cb_options *o, int report)
{
    char why[512];
    if (cb_options_shared_done(o, report))
        return -1;
    struct cb_sizes sizes = {o->min_bytes, o->max_bytes, o->step_bytes, o->step_factor};
    size_t nsizes;
    if (cb_sizes_check(&sizes, &nsizes, why, sizeof why) != 0)
        return cb_usage_error(report, "%s", why);
    int reduces = cb_coll_desc(o->coll)->reduces;
    if (!reduces && o->op_given && !(o->nops == CB_NOPS || (o->nops == 1 && o->ops[0] == CB_SUM)))
        return cb_usage_error(report, "-o %s makes no sense for %s, which does not reduce: drop -o",
                   cb_op_name(o->ops[0]), cb_coll_name(o->coll));
    if (!reduces) {
        o->ops[0] = CB_SUM;
        o->nops = 1;
    }
    if (settle_algos(o, report))
        return -1;
    if (cb_nccl_flags_settle(&o->nccl, o->argv0, o->iters, &o->per_iter, report))
        return -1;
    for (int i = 0; i < o->nalgos; i++)
        if (algo_refuses(o, cb_algo_desc(o->algos[i]), report))
            return -1;
    return 0;
}

cb_status cb_options_parse(int argc, char **argv, struct cb_options *o, int report)
{
    int first, ch;
    cb_options_defaults(o);
    if (pick_collective(argc, argv, o, report, &first) != 0)
        return CB_EUSAGE;
    /* optind = 0 makes glibc's getopt start afresh: a parse that stopped
     * inside "-xyz" leaves its place in that argument behind, and the next
     * parse would go on from there (found by tests/fuzz/fuzz_options) */
    argc -= first - 1;
    argv += first - 1;
    optind = 0;
    opterr = 0;
    o->argv0 = argv[0];
    struct option all[NOWN + MAX_TOPTS + 1];
    build_long_opts(all);
    while ((ch = getopt_long(argc, argv, ":b:e:i:f:n:w:m:N:c:o:d:r:z:a:T:J:I:u:h" CB_NCCL_SHORT_OPTIONS, all,
                             NULL)) != -1) {
        int bad;
        if (ch == '?') {
            cb_usage_error(report, "unknown option '%s': see --help", argv[optind - 1]);
            return CB_EUSAGE;
        }
        if (ch == ':') {
            cb_usage_error(report, "option '%s' needs a value: see --help", argv[optind - 1]);
            return CB_EUSAGE;
        }
        if (cb_nccl_flag_owned(ch))
            bad = cb_nccl_flag_parse(ch, optarg, &o->nccl, report);
        else
            bad = ch >= OPT_TRANSPORT ? parse_long(ch, optarg, o, report) : parse_short(ch, optarg, o, report);
        if (bad)
            return CB_EUSAGE;
    }
    if (optind < argc) {
        cb_usage_error(report, "unexpected argument '%s': the collective comes first, then options; see --help", argv[optind]);
        return CB_EUSAGE;
    }
    return check_consistency(o, report) ? CB_EUSAGE : CB_OK;
}
