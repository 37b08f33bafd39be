/* `collbench model`: predicted time and busbw of every algorithm at any
 * scale, from measured (a `tune` file) or given alpha, beta and gamma.
 * `collbench tune` (under mpirun): measures those terms on this job's ranks
 * and writes the file that `model --params` and COLLBENCH_TUNE_FILE read. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "coll/model.h"
#include "core/checked.h"
#include "harness/options.h"
#include "harness/sizes.h"

#define DEF_INTRA_ALPHA_US 1.0
#define DEF_INTRA_GBS 20.0
#define DEF_NET_ALPHA_US 3.0
#define DEF_NET_GBS 24.0      /* busbw users quote for one 200 Gb/s NIC */
#define DEF_REDUCE_GBS 10.0

#define SCALE_MAX_COUNTS 16
#define SCALE_DEFAULT_RANKS "1024,4096,32768"

/* Set-up per rank as fixed + per connection end: the lines fitted by
 * scripts/bench-scale (tcp, shm: oversubscribed runs on this host) and
 * scripts/bench-connect (verbs cm and oob: one Soft-RoCE VM) to each rank's
 * time x its share of the cores, generated from their recorded data
 * (results/measured/bench-scale.json, verbs-connect.json) at build time. */
#include "measured_setup.h"
static const struct measured_setup {
    const char *name;    /* "tcp", "shm", "verbs cm", "verbs oob" */
    double fixed_us, per_conn_us;
    int points;
    const char *when;    /* date and commit of the run */
} measured_setup[] = {CB_MEASURED_SETUP};

/* --scale: what connections cost a rank at these rank counts. */
struct scale_args {
    int on;
    const char *ranks;   /* --ranks as given: one count, or a list under --scale */
    int counts[SCALE_MAX_COUNTS], ncounts;
    struct cb_scale_terms terms;
    double fixed_us, per_conn_us;   /* given; < 0: the measured figure */
    const char *ib_connect;         /* verbs: whose set-up, "cm" or "oob"; NULL: oob (auto's) */
    const struct measured_setup *from;   /* the measured line in force, NULL: given or none */
};

struct model_args {
    struct cb_machine m;
    struct scale_args scale;
    int coll;                  /* -1: the four main collectives */
    size_t min_bytes, max_bytes;
    double factor;
    cb_type type;
    int csv;
};

static void model_usage(FILE *out)
{
    fputs("Usage: collbench model --ranks N [--nodes M] [options]\n"
          "Predict each algorithm's time and busbw (docs/algorithms.md says how).\n"
          "  --ranks N              ranks (required)\n"
          "  --nodes M              nodes, ranks numbered node by node (default 1)\n"
          "  --coll NAME            all_reduce, all_gather, reduce_scatter, alltoall or all (default all_reduce)\n"
          "  -b MIN -e MAX -f F     sizes (default 8 to 1G, factor 4)\n"
          "  -d TYPE                element type, for the reduction term (default float)\n"
          "  --params FILE          terms measured by `collbench tune`, for links in a node (and\n"
          "                         between nodes unless --net-* are given)\n"
          "  --alpha-us X --bw-gbs Y        link in a node (default 1 us, 20 GB/s)\n"
          "  --net-alpha-us X --net-bw-gbs Y  link between nodes (default 3 us, 24 GB/s)\n"
          "  --reduce-gbs Z         reduction throughput (default 10 GB/s)\n"
          "  --nodes-per-leaf K     nodes under one leaf switch (default: one switch)\n"
          "  --oversub F            leaf uplink oversubscription, >= 1 (default 1)\n"
          "  --channels C           rings/trees (default 1)\n"
          "  --chunk SIZE           bytes per peer per round (default 2M: 8 slots of 512K / 2)\n"
          "  --csv                  CSV instead of the table\n"
          "  --scale                instead: per algorithm, the connections, QPs, transport buffers\n"
          "                         and set-up time of a rank at each of --ranks LIST (default\n"
          "                         " SCALE_DEFAULT_RANKS "), from:\n"
          "  --transport T          whose buffers: shm, tcp or verbs (default verbs)\n"
          "  --slots N --slot-bytes SIZE --qps N  as a run takes them (default 8, 512K, 1)\n"
          "  --ib-connect cm|oob    verbs: whose set-up, rdma_cm's or the bootstrap's (default oob)\n"
          "  --conn-us X --setup-fixed-us Y  set-up = Y + X per connection end (default: measured\n"
          "                         by scripts/bench-scale for tcp and shm, scripts/bench-connect\n"
          "                         for verbs in a Soft-RoCE VM)\n", out);
}

static int bad(const char *what, const char *val)
{
    cb_log_error("model: bad value '%s' for %s; see collbench model --help", val, what);
    return -1;
}

/* Latencies, bandwidths and ratios: finite, above 0, and at most this (a
 * microsecond of latency or a GB/s beyond it describes no machine). */
#define MODEL_MAX_TERM 1e6

static int positive(const char *what, const char *val, double *out)
{
    return cb_parse_double(val, 0, MODEL_MAX_TERM, out) || !(*out > 0) ? bad(what, val) : 0;
}

/* A count from 1 to CB_MODEL_MAX_RANKS. */
static int count(const char *what, const char *val, int *out)
{
    long v;
    if (cb_parse_long(val, 1, CB_MODEL_MAX_RANKS, &v) != 0) {
        cb_log_error("model: bad value '%s' for %s: give an integer from 1 to %d", val, what, CB_MODEL_MAX_RANKS);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static void set_defaults(struct model_args *ma)
{
    memset(ma, 0, sizeof *ma);
    ma->m.nodes = 1;
    ma->m.channels = 1;
    ma->m.oversub = 1;
    ma->m.intra.alpha_s = DEF_INTRA_ALPHA_US * 1e-6;
    ma->m.intra.beta_s = 1 / (DEF_INTRA_GBS * 1e9);
    ma->m.inter.alpha_s = DEF_NET_ALPHA_US * 1e-6;
    ma->m.inter.beta_s = 1 / (DEF_NET_GBS * 1e9);
    ma->m.intra.gamma_s[CB_FLOAT] = 1 / (DEF_REDUCE_GBS * 1e9);
    ma->min_bytes = 8;
    ma->max_bytes = 1u << 30;
    ma->factor = 4;
    ma->type = CB_FLOAT;
    struct cb_options o;
    cb_options_defaults(&o);   /* the slot geometry a run has by default */
    ma->scale.terms.cfg = o.tcfg;
    ma->scale.terms.transport = &cb_transport_verbs;
    ma->scale.fixed_us = ma->scale.per_conn_us = -1;
}

enum { M_RANKS = 1000, M_NODES, M_COLL, M_PARAMS, M_ALPHA, M_BW, M_NALPHA, M_NBW, M_REDUCE, M_LEAF, M_OVERSUB,
       M_CHANNELS, M_CHUNK, M_CSV, M_SCALE, M_TRANSPORT, M_SLOTS, M_SLOT_BYTES, M_QPS, M_CONN_US, M_FIXED_US,
       M_IB_CONNECT };

/* --scale's options; 1 when `ch` is none of them. */
static int scale_opt(int ch, const char *arg, struct scale_args *s)
{
    double v;
    long n;
    switch (ch) {
    case M_SCALE: s->on = 1; return 0;
    case M_TRANSPORT:
        return (s->terms.transport = cb_transport_find(arg)) ? 0 : bad("--transport (shm, tcp or verbs)", arg);
    case M_SLOTS:
        return cb_parse_long(arg, 1, 1 << 16, &n) ? bad("--slots (1 to 65536)", arg) : (s->terms.cfg.nslots = (int)n, 0);
    case M_SLOT_BYTES:
        return cb_parse_size(arg, &s->terms.cfg.slot_bytes) || !s->terms.cfg.slot_bytes ? bad("--slot-bytes", arg) : 0;
    case M_QPS:
        return cb_parse_long(arg, 1, 64, &n) ? bad("--qps (1 to 64)", arg) : (s->terms.cfg.qps_per_conn = (int)n, 0);
    case M_CONN_US: return cb_parse_double(arg, 0, MODEL_MAX_TERM, &v) ? bad("--conn-us", arg) : (s->per_conn_us = v, 0);
    case M_FIXED_US: return cb_parse_double(arg, 0, MODEL_MAX_TERM, &v) ? bad("--setup-fixed-us", arg) : (s->fixed_us = v, 0);
    case M_IB_CONNECT:
        return strcmp(arg, "cm") == 0 || strcmp(arg, "oob") == 0 ? (s->ib_connect = arg, 0)
                                                                 : bad("--ib-connect (cm or oob)", arg);
    }
    return 1;
}

/* --ranks under --scale: counts separated by commas. */
static int scale_counts(struct scale_args *s)
{
    char buf[256], *save = NULL;
    snprintf(buf, sizeof buf, "%s", s->ranks ? s->ranks : SCALE_DEFAULT_RANKS);
    s->ncounts = 0;
    for (char *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        if (s->ncounts == SCALE_MAX_COUNTS) {
            cb_log_error("model: --ranks takes at most %d counts under --scale", SCALE_MAX_COUNTS);
            return -1;
        }
        if (count("--ranks", w, &s->counts[s->ncounts++]))
            return -1;
    }
    return s->ncounts ? 0 : bad("--ranks", s->ranks);
}

/* The measured set-up terms of the transport, unless given. */
static int scale_setup_terms(struct scale_args *s)
{
    struct cb_scale_terms *t = &s->terms;
    int verbs = t->transport == &cb_transport_verbs;
    if (s->ib_connect && !verbs) {
        cb_log_error("model: --ib-connect is verbs' set-up; give it with --transport verbs, or leave it out");
        return -1;
    }
    char name[32];
    snprintf(name, sizeof name, "%s%s%s", t->transport->name, verbs ? " " : "",
             verbs ? (s->ib_connect ? s->ib_connect : "oob") : "");
    t->setup_fixed_s = t->setup_per_conn_s = -1;
    s->from = NULL;
    for (size_t i = 0; i < sizeof measured_setup / sizeof measured_setup[0]; i++)
        if (strcmp(measured_setup[i].name, name) == 0) {
            s->from = &measured_setup[i];
            t->setup_fixed_s = s->from->fixed_us * 1e-6;
            t->setup_per_conn_s = s->from->per_conn_us * 1e-6;
        }
    if (s->per_conn_us >= 0) {
        s->from = NULL;
        t->setup_per_conn_s = s->per_conn_us * 1e-6;
        t->setup_fixed_s = s->fixed_us >= 0 ? s->fixed_us * 1e-6 : 0;
    } else if (s->fixed_us >= 0 && t->setup_per_conn_s >= 0) {
        t->setup_fixed_s = s->fixed_us * 1e-6;
    }
    return 0;
}

/* --params: the measured terms stand for every link not given explicitly. */
static int load_params(struct model_args *ma, const char *path, int net_given)
{
    struct cb_cost c;
    if (cb_cost_load(path, &c) != CB_OK)
        return -1;
    ma->m.intra = c;
    if (!net_given)
        ma->m.inter = c;
    return 0;
}

static int model_opt(int ch, const char *arg, struct model_args *ma, const char **params, int *net_given)
{
    double v;
    int i;
    int scale = scale_opt(ch, arg, &ma->scale);
    if (scale != 1)
        return scale;
    switch (ch) {
    case M_RANKS: ma->scale.ranks = arg; return 0;
    case M_NODES: return count("--nodes", arg, &ma->m.nodes);
    case M_LEAF: return count("--nodes-per-leaf", arg, &ma->m.nodes_per_leaf);
    case M_CHANNELS:
        return count("--channels", arg, &ma->m.channels) ? -1 : (ma->scale.terms.cfg.channels = ma->m.channels, 0);
    case M_COLL:
        if (strcmp(arg, "all") == 0)
            return ma->coll = -1, 0;
        for (i = 0; i < CB_BROADCAST; i++)
            if (strcmp(arg, cb_coll_name((cb_coll)i)) == 0)
                return ma->coll = i, 0;
        return bad("--coll", arg);
    case M_PARAMS: *params = arg; return 0;
    case M_ALPHA: return positive("--alpha-us", arg, &v) ? -1 : (ma->m.intra.alpha_s = v * 1e-6, 0);
    case M_BW: return positive("--bw-gbs", arg, &v) ? -1 : (ma->m.intra.beta_s = 1 / (v * 1e9), 0);
    case M_NALPHA: *net_given = 1; return positive("--net-alpha-us", arg, &v) ? -1 : (ma->m.inter.alpha_s = v * 1e-6, 0);
    case M_NBW: *net_given = 1; return positive("--net-bw-gbs", arg, &v) ? -1 : (ma->m.inter.beta_s = 1 / (v * 1e9), 0);
    case M_REDUCE: return positive("--reduce-gbs", arg, &v) ? -1 : (ma->m.intra.gamma_s[ma->type] = 1 / (v * 1e9), 0);
    case M_OVERSUB: return positive("--oversub", arg, &v) || v < 1 ? bad("--oversub", arg) : (ma->m.oversub = v, 0);
    case M_CHUNK: return cb_parse_size(arg, &ma->m.intra.chunk_bytes) ? bad("--chunk", arg) : 0;
    case M_CSV: ma->csv = 1; return 0;
    case 'b': return cb_parse_size(arg, &ma->min_bytes) ? bad("-b", arg) : 0;
    case 'e': return cb_parse_size(arg, &ma->max_bytes) ? bad("-e", arg) : 0;
    case 'f': return positive("-f", arg, &ma->factor) || ma->factor <= 1 ? bad("-f", arg) : 0;
    case 'd': return (i = cb_type_parse(arg)) >= 0 ? (ma->type = (cb_type)i, 0) : bad("-d", arg);
    }
    return bad("an option", arg);
}

static int parse_model(int argc, char **argv, struct model_args *ma, int *help)
{
    static const struct option opts[] = {
        {"ranks", 1, 0, M_RANKS}, {"nodes", 1, 0, M_NODES}, {"coll", 1, 0, M_COLL}, {"params", 1, 0, M_PARAMS},
        {"alpha-us", 1, 0, M_ALPHA}, {"bw-gbs", 1, 0, M_BW}, {"net-alpha-us", 1, 0, M_NALPHA},
        {"net-bw-gbs", 1, 0, M_NBW}, {"reduce-gbs", 1, 0, M_REDUCE}, {"nodes-per-leaf", 1, 0, M_LEAF},
        {"oversub", 1, 0, M_OVERSUB}, {"channels", 1, 0, M_CHANNELS}, {"chunk", 1, 0, M_CHUNK},
        {"csv", 0, 0, M_CSV}, {"scale", 0, 0, M_SCALE}, {"transport", 1, 0, M_TRANSPORT}, {"slots", 1, 0, M_SLOTS},
        {"slot-bytes", 1, 0, M_SLOT_BYTES}, {"qps", 1, 0, M_QPS}, {"conn-us", 1, 0, M_CONN_US},
        {"setup-fixed-us", 1, 0, M_FIXED_US}, {"ib-connect", 1, 0, M_IB_CONNECT}, {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    const char *params = NULL;
    int ch, net_given = 0;
    set_defaults(ma);
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "b:e:f:d:h", opts, NULL)) != -1) {
        if (ch == 'h')
            return *help = 1, 0;
        if (ch == '?' || ch == ':' || model_opt(ch, optarg, ma, &params, &net_given))
            return ch == '?' || ch == ':' ? bad("the command line", argv[optind - 1]) : -1;
    }
    if (params && load_params(ma, params, net_given))
        return -1;
    if (ma->scale.on) {
        return scale_setup_terms(&ma->scale) ? -1 : scale_counts(&ma->scale);
    }
    if (ma->scale.ranks && count("--ranks", ma->scale.ranks, &ma->m.nranks))
        return -1;
    if (ma->m.nranks < 1 || ma->m.nodes > ma->m.nranks || ma->min_bytes > ma->max_bytes) {
        cb_log_error("model: give --ranks N >= --nodes M, and -b <= -e; see collbench model --help");
        return -1;
    }
    struct cb_sizes sizes = {ma->min_bytes, ma->max_bytes, 0, ma->factor};
    char why[256];
    size_t nsizes;
    if (cb_sizes_check(&sizes, &nsizes, why, sizeof why) != 0) {
        cb_log_error("model: %s", why);
        return -1;
    }
    return 0;
}

static void print_coll(const struct model_args *ma, cb_coll coll)
{
    cb_algo list[CB_NALGOS];
    int na = cb_model_algos(coll, list, CB_NALGOS), n = ma->m.nranks;
    double factor = cb_bench_for(coll)->busbw_factor(n);
    if (ma->csv)
        printf("collective,ranks,size");
    else
        printf("# %s, %d ranks: predicted time (us) and busbw (GB/s)\n#%13s", cb_coll_name(coll), n, "size");
    for (int i = 0; i < na; i++)
        printf(ma->csv ? ",%s_us,%s_busbw" : "  %12s %8s", cb_algo_name(list[i]), ma->csv ? cb_algo_name(list[i]) : "busbw");
    printf(ma->csv ? ",best\n" : "  best\n");
    const struct cb_sizes sizes = {ma->min_bytes, ma->max_bytes, 0, ma->factor};
    size_t bytes = ma->min_bytes;
    for (int more = 1; more; more = cb_sizes_next(&sizes, bytes, &bytes)) {
        if (ma->csv)
            printf("%s,%d,%zu", cb_coll_name(coll), n, bytes);
        else
            printf("%14zu", bytes);
        for (int i = 0; i < na; i++) {
            double t = cb_model_time(&ma->m, coll, list[i], bytes, ma->type);
            double busbw = t > 0 ? (double)bytes / t / 1e9 * factor : 0;
            printf(ma->csv ? ",%.4g,%.4g" : "  %12.2f %8.2f", t * 1e6, busbw);
        }
        printf(ma->csv ? ",%s\n" : "  %s\n", cb_algo_name(cb_model_best(&ma->m, coll, bytes, ma->type)));
    }
}

static void put_setup(const struct scale_args *s)
{
    const struct cb_scale_terms *t = &s->terms;
    if (t->setup_per_conn_s < 0) {
        printf("not known for %s (give --conn-us)", t->transport->name);
        return;
    }
    printf("%.4g ms + %.4g ms per connection end", t->setup_fixed_s * 1e3, t->setup_per_conn_s * 1e3);
    if (s->from)
        printf(" (%s: fitted to %d points, %s)", s->from->name, s->from->points, s->from->when);
}

static void put_scale_row(const struct model_args *ma, int n, cb_algo a, const struct cb_scale_need *need)
{
    char setup[32] = "-";
    if (need->setup_s >= 0)
        snprintf(setup, sizeof setup, "%.3f", need->setup_s);
    if (ma->csv)
        printf("%d,%s,%d,%lld,%zu,%s\n", n, cb_algo_name(a), need->conn_ends, need->qps, need->buffer_bytes,
               need->setup_s >= 0 ? setup : "");
    else
        printf("%10d  %-13s %10d %10lld %14.1f %11s\n", n, cb_algo_name(a), need->conn_ends, need->qps,
               (double)need->buffer_bytes / (1 << 20), setup);
}

/* --scale: every algorithm with connections of ours, at every count. */
static void print_scale(const struct model_args *ma)
{
    const struct cb_scale_terms *t = &ma->scale.terms;
    if (ma->csv) {
        printf("ranks,algorithm,conn_ends,qps,buffer_bytes,setup_s\n");
    } else {
        printf("# collbench model --scale: transport %s, %d slots x %zu B, %d QP(s) per connection, %d channel(s); "
               "set-up ", t->transport->name, t->cfg.nslots, t->cfg.slot_bytes, t->cfg.qps_per_conn,
               t->cfg.channels > 0 ? t->cfg.channels : 1);
        put_setup(&ma->scale);
        printf("\n# per rank, the most any rank needs; buffers: each connection end's own%s\n"
               "#    ranks  algorithm     conn.ends   QPs/rank  buffers(MiB)  set-up(s)\n",
               t->transport->shared_geometry_bytes(&t->cfg, 1)
                   ? ", and the every-pair algorithms' shared slot pool at its most in flight"
                   : "");
    }
    for (int i = 0; i < ma->scale.ncounts; i++)
        for (int a = 0; a < CB_NALGOS; a++) {
            struct cb_scale_need need;
            if (cb_model_scale(t, (cb_algo)a, ma->scale.counts[i], &need) == 0)
                put_scale_row(ma, ma->scale.counts[i], (cb_algo)a, &need);
        }
}

int cb_cmd_model(int argc, char **argv)
{
    struct model_args ma;
    int help = 0;
    if (parse_model(argc, argv, &ma, &help) != 0)
        return 2;
    if (help) {
        model_usage(stdout);
        return 0;
    }
    if (ma.scale.on) {
        print_scale(&ma);
        return 0;
    }
    const struct cb_machine *m = &ma.m;
    if (!ma.csv)
        printf("# collbench model: %d ranks on %d nodes; in a node alpha %.3g us, %.3g GB/s; between nodes "
               "alpha %.3g us, %.3g GB/s; leaf %d nodes, oversubscription %.3g; %d channel(s)\n",
               m->nranks, m->nodes, m->intra.alpha_s * 1e6, 1e-9 / m->intra.beta_s, m->inter.alpha_s * 1e6,
               1e-9 / m->inter.beta_s, m->nodes_per_leaf, m->oversub, m->channels);
    for (int c = 0; c < CB_BROADCAST; c++)
        if (ma.coll < 0 || ma.coll == c)
            print_coll(&ma, (cb_coll)c);
    return 0;
}
