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

struct model_args {
    struct cb_machine m;
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
          "  --csv                  CSV instead of the table\n", out);
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
}

enum { M_RANKS = 1000, M_NODES, M_COLL, M_PARAMS, M_ALPHA, M_BW, M_NALPHA, M_NBW, M_REDUCE, M_LEAF, M_OVERSUB,
       M_CHANNELS, M_CHUNK, M_CSV };

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
    switch (ch) {
    case M_RANKS: return count("--ranks", arg, &ma->m.nranks);
    case M_NODES: return count("--nodes", arg, &ma->m.nodes);
    case M_LEAF: return count("--nodes-per-leaf", arg, &ma->m.nodes_per_leaf);
    case M_CHANNELS: return count("--channels", arg, &ma->m.channels);
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
        {"csv", 0, 0, M_CSV}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
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
