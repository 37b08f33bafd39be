/* The command line of `collbench pairs`: its own flags, plus the flags that
 * every collbench command that moves data shares (--transport, -T, --bind
 * and the transport options' table), parsed by options.c's
 * cb_options_shared so they mean the same and fail the same way. */
#include "pairs.h"
#include "harness/options_agree.h"
#include "harness/transport_opts.h"

#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

enum pairs_long {
    OPT_QUICK = 2000, OPT_LAT_ITERS, OPT_PASSES, OPT_BW_FACTOR, OPT_LAT_FACTOR, OPT_NSIGMA,
    OPT_MAX_SPREAD, OPT_MAX_RETRANS, OPT_PASS_INTERVAL, OPT_MAX_RDMA_RETRANS,
    OPT_SHARED = 3000,   /* + index of cb_options_shared_name */
};


static const struct option own_opts[] = {
    {"size", required_argument, 0, 'b'}, {"minbytes", required_argument, 0, 'b'},
    {"iters", required_argument, 0, 'n'}, {"warmup_iters", required_argument, 0, 'w'},
    {"json", required_argument, 0, 'J'}, {"output_file", required_argument, 0, 'J'},
    {"quick", no_argument, 0, OPT_QUICK}, {"lat-iters", required_argument, 0, OPT_LAT_ITERS},
    {"passes", required_argument, 0, OPT_PASSES},
    {"bw-factor", required_argument, 0, OPT_BW_FACTOR}, {"lat-factor", required_argument, 0, OPT_LAT_FACTOR},
    {"nsigma", required_argument, 0, OPT_NSIGMA}, {"help", no_argument, 0, 'h'},
    {"max-spread", required_argument, 0, OPT_MAX_SPREAD}, {"max-retrans", required_argument, 0, OPT_MAX_RETRANS},
    {"pass-interval", required_argument, 0, OPT_PASS_INTERVAL},
    {"max-rdma-retrans", required_argument, 0, OPT_MAX_RDMA_RETRANS},
};
#define NOWN ((int)(sizeof own_opts / sizeof *own_opts))

void cb_pairs_usage(FILE *out)
{
    fputs(
"usage: mpirun -np N --map-by ppr:1:node collbench pairs [options]\n"
"Every pair of ranks (one rank per host) exchanges data both ways at once, in\n"
"rounds of disjoint pairs that run together; rank 0 prints the bandwidth and\n"
"latency matrices and names slow hosts and slow links, hosts and links whose\n"
"passes disagree (intermittent) or that retransmit (lossy: TCP for tcp, the RDMA\n"
"port's retransmission counters for verbs), flaps of each\n"
"host's network device, and the RDMA port error counters that moved. Exit\n"
"status: 0 nothing named, 1 something was named or a pair failed, 2 a usage error.\n"
"  -b, --size SIZE          bytes each way per exchange (K M G binary; default 16M)\n"
"  -n, --iters N            timed exchanges per pair (default 20)\n"
"  -w, --warmup_iters N     untimed exchanges first (default 3)\n"
"      --lat-iters N        8-byte exchanges for the latency, p50 (default 200)\n"
"      --passes N           run the whole schedule N times; each pair's figures are the\n"
"                           medians over passes, so a moment of load elsewhere does not\n"
"                           make a pair look slow (default 3)\n"
"      --pass-interval S    start each pass at least S seconds after the one before, so the\n"
"                           passes sample a fault that comes and goes (default 0)\n"
"      --quick              ring neighbours only (2-3 rounds) instead of all pairs (n-1 rounds)\n"
"  -J, --json FILE          write the matrices and verdicts as JSON\n"
"Outlier rule (docs/operators.md, \"Pairwise link check\"):\n"
"      --bw-factor F        slow below median bandwidth / F (default 2)\n"
"      --lat-factor F       slow above median latency x F (default 3)\n"
"      --nsigma K           and beyond K robust sigmas of the healthy pairs (default 4)\n"
"      --max-spread F       intermittent: a pair's bandwidth varies more than F times\n"
"                           between passes (max / min; default 2)\n"
"      --max-retrans PCT    lossy: the pair's hosts retransmitted more than PCT % of the TCP\n"
"                           segments they sent while they met (and 10 or more; default 0.25);\n"
"                           retransmissions D-SACKed as duplicates are not loss, not counted\n"
"      --max-rdma-retrans N lossy (verbs): the RDMA retransmission counters (sequence errors,\n"
"                           retries, ACK timeouts, duplicate requests) of the pair's hosts\n"
"                           moved more than N times while they met (default 20)\n"
"  -h, --help               this text\n"
"Shared with the collectives (see collbench --help): -T SECONDS", out);
    int col = 60;
    for (int i = 0; cb_options_shared_name(i); i++) {
        const char *name = cb_options_shared_name(i);
        if (col + (int)strlen(name) + 4 > 96) {
            fputs(",\n     ", out);
            col = 5;
        } else {
            fputs(", ", out);
            col += 2;
        }
        col += fprintf(out, "--%s", name);
    }
    fputc('\n', out);
}

static int factor_arg(const char *flag, const char *s, double min, double *out, int report)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= min) || v > 1e6)
        return cb_usage_error(report, "bad value '%s' for %s: give a number from %g to 1000000 (e.g. 2)", s, flag, min);
    *out = v;
    return 0;
}

static int parse_own(int ch, const char *arg, struct cb_pairs_opts *p, int report)
{
    switch (ch) {
    case 'b':
        if (cb_parse_size(arg, &p->bytes) != 0 || p->bytes < 1)
            return cb_usage_error(report, "bad size '%s' for -b: give bytes (at least 1) with an optional K, M or G "
                               "suffix, e.g. 16M", arg);
        return 0;
    case 'n': return cb_int_arg("-n", arg, 1, 100000000, &p->iters, report);
    case 'w': return cb_int_arg("-w", arg, 0, 100000000, &p->warmup, report);
    case 'J': p->json_path = arg; return 0;
    case 'h': p->show_help = 1; return 0;
    case OPT_QUICK: p->quick = 1; return 0;
    case OPT_LAT_ITERS: return cb_int_arg("--lat-iters", arg, 1, 100000000, &p->lat_iters, report);
    case OPT_PASSES: return cb_int_arg("--passes", arg, 1, 100000000, &p->passes, report);
    case OPT_BW_FACTOR: return factor_arg("--bw-factor", arg, 1.0, &p->rule.bw_factor, report);
    case OPT_LAT_FACTOR: return factor_arg("--lat-factor", arg, 1.0, &p->rule.lat_factor, report);
    case OPT_NSIGMA: return factor_arg("--nsigma", arg, 0.0, &p->rule.nsigma, report);
    case OPT_MAX_SPREAD: return factor_arg("--max-spread", arg, 1.0, &p->rule.max_spread, report);
    case OPT_MAX_RETRANS: return factor_arg("--max-retrans", arg, 0.0, &p->rule.max_retrans_pct, report);
    case OPT_PASS_INTERVAL: return factor_arg("--pass-interval", arg, 0.0, &p->pass_interval, report);
    case OPT_MAX_RDMA_RETRANS: {
        int v = 0, bad = cb_int_arg("--max-rdma-retrans", arg, 0, 1000000000, &v, report);
        p->rule.max_rdma_retrans = bad ? p->rule.max_rdma_retrans : v;
        return bad;
    }
    }
    return cb_usage_error(report, "unknown option: see collbench pairs --help");
}

static void set_defaults(struct cb_pairs_opts *p)
{
    memset(p, 0, sizeof *p);
    cb_options_defaults(&p->base);
    p->bytes = 16u << 20;
    p->iters = 20;
    p->warmup = 3;
    p->lat_iters = 200;
    p->passes = 3;
    p->base.tcfg.timeout_ms = p->base.timeout_s * 1000;   /* for the agreement, should the parse stop before -T */
    cb_pairs_rule_default(&p->rule);
}

static void build_table(struct option *all)
{
    memcpy(all, own_opts, sizeof own_opts);
    int n = cb_options_shared_longopts(all + NOWN, CB_SHARED_FLAGS_MAX, OPT_SHARED);
    memset(&all[NOWN + n], 0, sizeof *all);
}

static int bad_option(int ch, char **argv, int report)
{
    const char *opt = argv[optind - 1];
    if (ch == ':')
        return cb_usage_error(report, "option '%s' needs a value: see collbench pairs --help", opt);
    if (strcmp(opt, "-e") == 0 || strncmp(opt, "--maxbytes", 10) == 0 || strcmp(opt, "-f") == 0)
        return cb_usage_error(report, "pairs measures one size: give it with -b (no -e or -f)");
    return cb_usage_error(report, "unknown option '%s' for pairs: see collbench pairs --help", opt);
}

cb_status cb_pairs_parse(int argc, char **argv, struct cb_pairs_opts *p, int report)
{
    struct option all[NOWN + CB_SHARED_FLAGS_MAX + 1];
    int ch;
    set_defaults(p);
    build_table(all);
    optind = 0;   /* glibc: start afresh, also after a parse that stopped inside "-xyz" */
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":b:n:w:J:T:h", all, NULL)) != -1) {
        int bad;
        if (ch == '?' || ch == ':')
            bad = bad_option(ch, argv, report);
        else if (ch == 'T' || ch >= OPT_SHARED)
            bad = cb_options_shared(ch == 'T' ? "timeout" : cb_options_shared_name(ch - OPT_SHARED), optarg, &p->base, report);
        else
            bad = parse_own(ch, optarg, p, report);
        if (bad)
            return CB_EUSAGE;
    }
    if (optind < argc) {
        cb_usage_error(report, "unexpected argument '%s' for pairs: options only; see collbench pairs --help", argv[optind]);
        return CB_EUSAGE;
    }
    return cb_options_shared_done(&p->base, report) ? CB_EUSAGE : CB_OK;
}

/* What the ranks of one pairs check must share: what each exchange moves
 * and how many times, and the transport. The outlier rule, -J and -T are
 * rank 0's or local. */
static void pairs_digest(const struct cb_pairs_opts *p, struct cb_agreed *a)
{
    a->n = 0;
    cb_agreed_add(a, "-b", &p->bytes, sizeof p->bytes);
    cb_agreed_add(a, "-n", &p->iters, sizeof p->iters);
    cb_agreed_add(a, "-w", &p->warmup, sizeof p->warmup);
    cb_agreed_add(a, "--lat-iters", &p->lat_iters, sizeof p->lat_iters);
    cb_agreed_add(a, "--passes", &p->passes, sizeof p->passes);
    cb_agreed_add(a, "--pass-interval", &p->pass_interval, sizeof p->pass_interval);
    cb_agreed_add(a, "--quick", &p->quick, sizeof p->quick);
    cb_options_digest_transport(&p->base, a);
}

static void reparse_pairs(int argc, char **argv)
{
    struct cb_pairs_opts again;
    cb_pairs_parse(argc, argv, &again, 1);
}

cb_status cb_pairs_agree(struct cb_boot *b, int argc, char **argv, const struct cb_pairs_opts *p, cb_status parsed)
{
    struct cb_agreed a = {0};
    if (parsed == CB_OK)
        pairs_digest(p, &a);
    return cb_agree(b, argc, argv, parsed, &a, reparse_pairs, p->base.tcfg.timeout_ms);
}
