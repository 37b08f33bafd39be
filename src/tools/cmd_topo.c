/* `collbench topo`: the machine's map and where N local ranks would go, without MPI. */
#include "topo/topo.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LOCAL 4096
#define MAX_CHANNELS 64

struct topo_args {
    const char *xml, *hca, *cpus;
    int local_size;           /* 0 = one per RDMA NIC */
    int channels;             /* 0 = 1 */
    int bind;
    int help;
};

static void usage(FILE *out)
{
    fputs("usage: collbench topo [--topo-xml FILE] [--local-size N] [--bind auto|none|core|numa]\n"
          "                      [--hca [^][=]DEV[:PORT][,..]] [--cpus LIST[/LIST..]] [--channels N]\n"
          "The machine as hwloc sees it (NUMA nodes, cores, RDMA and Ethernet NICs, GPUs) and the\n"
          "placement of N local ranks: cpus, NUMA node, NIC and how far it is. Warnings go to stderr.\n"
          "      --topo-xml FILE    an hwloc XML topology (lstopo --of xml) instead of this machine\n"
          "      --local-size N     ranks on the machine (default: one per RDMA NIC)\n"
          "      --bind MODE        as in a run (default auto: core, or none when ranks outnumber\n"
          "                         cpus or the launcher bound them)\n"
          "      --hca LIST         NICs by local rank, as in a run, NCCL_IB_HCA's syntax (default:\n"
          "                         collbench chooses)\n"
          "      --cpus LIST/..     the cpus the launcher gives local rank 0/1/..., e.g. 0-3/4-7\n"
          "                         (cycled over the ranks; default: all)\n"
          "      --channels N       as in a run: the NICs a rank alone striping over --hca reaches\n"
          "                         (default 1)\n"
          "  -h, --help             this text\n", out);
}

static int parse_count(const char *flag, const char *s, int max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > max) {
        cb_log_error("bad value '%s' for %s: give an integer from 1 to %d", s, flag, max);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_one(int ch, const char *arg, struct topo_args *a)
{
    switch (ch) {
    case 'x': a->xml = arg; return 0;
    case 'n': return parse_count("--local-size", arg, MAX_LOCAL, &a->local_size);
    case 'C': return parse_count("--channels", arg, MAX_CHANNELS, &a->channels);
    case 'b':
        if ((a->bind = cb_bind_parse(arg)) < 0) {
            cb_log_error("unknown --bind '%s': use auto, none, core or numa", arg);
            return -1;
        }
        return 0;
    case 'H': a->hca = arg; return 0;
    case 'c': a->cpus = arg; return 0;
    case 'h': a->help = 1; return 0;
    }
    return -1;
}

static int parse_args(int argc, char **argv, struct topo_args *a)
{
    static const struct option opts[] = {
        {"topo-xml", required_argument, 0, 'x'}, {"local-size", required_argument, 0, 'n'},
        {"bind", required_argument, 0, 'b'},     {"hca", required_argument, 0, 'H'},
        {"cpus", required_argument, 0, 'c'},     {"help", no_argument, 0, 'h'},
        {"channels", required_argument, 0, 'C'},
        {0, 0, 0, 0},
    };
    int ch;
    memset(a, 0, sizeof *a);
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (ch == '?' || ch == ':') {
            cb_log_error("%s '%s': see collbench topo --help", ch == '?' ? "unknown option" : "missing value for",
                         argv[optind - 1]);
            return -1;
        }
        if (parse_one(ch, optarg, a))
            return -1;
    }
    if (optind < argc) {
        cb_log_error("unexpected argument '%s': see collbench topo --help", argv[optind]);
        return -1;
    }
    return 0;
}

/* "0-3/4-7" -> one list per local rank, cycled; *buf holds the strings. */
static const char **split_cpus(const char *spec, int n, char **buf)
{
    const char **lists = calloc((size_t)n, sizeof *lists);
    char *parts[MAX_LOCAL];
    int count = 0;
    *buf = strdup(spec);
    if (!lists || !*buf) {
        free(lists);
        return NULL;
    }
    for (char *p = *buf; p && count < MAX_LOCAL; count++) {
        parts[count] = p;
        if ((p = strchr(p, '/')))
            *p++ = 0;
    }
    for (int r = 0; r < n; r++)
        lists[r] = parts[r % count];
    return lists;
}

static int show(const struct topo_args *a, const struct cb_topo *t)
{
    char *buf = NULL;
    const char **cpus = NULL;
    int n = a->local_size ? a->local_size : (cb_topo_nnics(t) > 0 ? cb_topo_nnics(t) : 1);
    if (a->cpus && !(cpus = split_cpus(a->cpus, n, &buf))) {
        cb_log_error("out of memory reading --cpus");
        return 1;
    }
    struct cb_topo_request req = {n, a->bind, a->hca, cpus, a->channels};
    struct cb_topo_plan plan;
    cb_status st = cb_topo_plan(t, &req, &plan);
    if (st == CB_OK) {
        cb_topo_print_machine(t, stdout);
        fputs("#\n", stdout);
        cb_topo_print_plan(&plan, cb_topo_host(t), stdout);
        fflush(stdout);
        for (int r = 0; r < plan.n; r++)
            for (int i = 0; i < plan.ranks[r].nwarn; i++)
                cb_log_warn("local rank %d on %s: %s", r, cb_topo_host(t), plan.ranks[r].warn[i]);
        cb_topo_plan_free(&plan);
    }
    free(cpus);
    free(buf);
    return cb_status_exit_code(st);
}

int cb_cmd_topo(int argc, char **argv)
{
    struct topo_args a;
    struct cb_topo *t;
    if (parse_args(argc, argv, &a) != 0)
        return 2;
    if (a.help) {
        usage(stdout);
        return 0;
    }
    cb_status st = cb_topo_load(a.xml, &t);
    if (st != CB_OK)
        return cb_status_exit_code(st);
    int rc = show(&a, t);
    cb_topo_free(t);
    return rc;
}
