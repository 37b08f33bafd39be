/* The flag parser: nccl-tests' flags mean what they mean there; every bad
 * command line is refused with CB_EUSAGE. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/checked.h"
#include "harness/memcheck.h"
#include "harness/options.h"
#include "harness/options_agree.h"
#include "harness/sizes.h"
#include "harness/transport_opts.h"

#define ARGV(...) ((char *[]){__VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)))
#define PARSE(o, ...) cb_options_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (o), 0)

static void defaults_are_nccl_tests(void **state)
{
    (void)state;
    struct cb_options o;
    assert_int_equal(PARSE(&o, "collbench", "all_reduce"), CB_OK);
    assert_int_equal(o.coll, CB_ALL_REDUCE);
    assert_int_equal(o.min_bytes, 32u << 20);
    assert_int_equal(o.max_bytes, 32u << 20);
    assert_int_equal(o.step_bytes, 1u << 20);
    assert_int_equal(o.iters, 20);
    assert_int_equal(o.warmup, 1);
    assert_int_equal(o.agg_iters, 1);
    assert_int_equal(o.check_iters, 1);
    assert_int_equal(o.average, 1);
    assert_int_equal(o.ntypes, 1);
    assert_int_equal(o.types[0], CB_FLOAT);
    assert_int_equal(o.ops[0], CB_SUM);
    assert_int_equal(o.timeout_s, 60);
    assert_int_equal(o.tcfg.timeout_ms, 60000);
    assert_string_equal(o.transport, "auto");
}

static void every_short_flag(void **state)
{
    (void)state;
    struct cb_options o;
    assert_int_equal(PARSE(&o, "collbench", "reduce", "-b", "8", "-e", "128M", "-f", "2", "-n", "7", "-w", "3",
                           "-m", "2", "-N", "4", "-c", "5", "-o", "max", "-d", "bfloat16", "-r", "1", "-z", "1",
                           "-a", "3", "-T", "9", "-J", "x.json", "-I", "0", "-u", "1"), CB_OK);
    assert_int_equal(o.coll, CB_REDUCE);
    assert_int_equal(o.min_bytes, 8);
    assert_int_equal(o.max_bytes, 128u << 20);
    assert_true(o.step_factor == 2.0);
    assert_int_equal(o.iters, 7);
    assert_int_equal(o.warmup, 3);
    assert_int_equal(o.agg_iters, 2);
    assert_int_equal(o.cycles, 4);
    assert_int_equal(o.check_iters, 5);
    assert_int_equal(o.ops[0], CB_MAX);
    assert_int_equal(o.types[0], CB_BFLOAT16);
    assert_int_equal(o.root, 1);
    assert_int_equal(o.blocking, 1);
    assert_int_equal(o.average, 3);
    assert_int_equal(o.timeout_s, 9);
    assert_string_equal(o.json_path, "x.json");
    assert_int_equal(o.per_iter, 0);
    assert_int_equal(o.unalign, 1);
}

static void sizes_are_binary(void **state)
{
    (void)state;
    size_t v;
    assert_int_equal(cb_parse_size("0", &v), 0); assert_int_equal(v, 0);
    assert_int_equal(cb_parse_size("8", &v), 0); assert_int_equal(v, 8);
    assert_int_equal(cb_parse_size("64K", &v), 0); assert_int_equal(v, 65536);
    assert_int_equal(cb_parse_size("1m", &v), 0); assert_int_equal(v, 1u << 20);
    assert_int_equal(cb_parse_size("2G", &v), 0); assert_int_equal(v, (size_t)2 << 30);
    assert_int_equal(cb_parse_size("4KB", &v), 0); assert_int_equal(v, 4096);
    assert_int_equal(cb_parse_size("8X", &v), -1);
    assert_int_equal(cb_parse_size("K", &v), -1);
    assert_int_equal(cb_parse_size("-1", &v), -1);
    assert_int_equal(cb_parse_size("", &v), -1);
    assert_int_equal(cb_parse_size("99999999999999999999", &v), -1);
    assert_int_equal(cb_parse_size("99999999999G", &v), -1);
}

static void all_types_and_ops_and_lists(void **state)
{
    (void)state;
    struct cb_options o;
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "-d", "all", "-o", "all"), CB_OK);
    assert_int_equal(o.ntypes, CB_NTYPES);
    assert_int_equal(o.nops, CB_NOPS);
    assert_int_equal(o.ops[CB_NOPS - 1], CB_MULSUM);   /* nccl-tests' -o all ends with mulsum too */
    assert_true(cb_options_has_op(&o, CB_MULSUM));
    assert_int_equal(PARSE(&o, "collbench", "reduce_scatter", "-o", "sum,mulsum"), CB_OK);
    assert_int_equal(o.ops[1], CB_MULSUM);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "-o", "sum"), CB_OK);
    assert_false(cb_options_has_op(&o, CB_MULSUM));
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "-d", "half,int8", "-o", "prod,avg"), CB_OK);
    assert_int_equal(o.ntypes, 2);
    assert_int_equal(o.types[0], CB_HALF);
    assert_int_equal(o.types[1], CB_INT8);
    assert_int_equal(o.nops, 2);
    assert_int_equal(o.ops[1], CB_AVG);
}

static void binary_names_pick_the_collective(void **state)
{
    (void)state;
    struct cb_options o;
    assert_int_equal(PARSE(&o, "/opt/x/alltoall_perf", "-b", "1K"), CB_OK);
    assert_int_equal(o.coll, CB_ALLTOALL);
    assert_int_equal(PARSE(&o, "collbench", "reduce_scatter_perf"), CB_OK);
    assert_int_equal(o.coll, CB_REDUCE_SCATTER);
    assert_int_equal(PARSE(&o, "collbench", "--help"), CB_OK);
    assert_int_equal(o.show_help, 1);
}

static void long_options(void **state)
{
    (void)state;
    struct cb_options o;
    assert_int_equal(PARSE(&o, "collbench", "all_gather", "--transport", "tcp", "--slot-bytes", "64K",
                           "--slots", "16", "--tcp-if", "eth0", "--hca", "mlx5_0:1", "--gid-index", "3",
                           "--mtu", "2048", "--qps", "4", "--tc", "106", "--sl", "3", "--csv", "o.csv",
                           "--minbytes", "1K", "--maxbytes", "2K", "--stepbytes", "512"), CB_OK);
    assert_string_equal(o.transport, "tcp");
    assert_int_equal(o.tcfg.slot_bytes, 65536);
    assert_int_equal(o.tcfg.nslots, 16);
    assert_string_equal(o.tcfg.tcp_if, "eth0");
    assert_string_equal(o.tcfg.hca, "mlx5_0:1");
    assert_int_equal(o.tcfg.gid_index, 3);
    assert_int_equal(o.tcfg.path_mtu, 2048);
    assert_int_equal(o.tcfg.qps_per_conn, 4);
    assert_int_equal(o.tcfg.traffic_class, 106);
    assert_int_equal(o.tcfg.service_level, 3);
    assert_string_equal(o.csv_path, "o.csv");
    assert_int_equal(o.min_bytes, 1024);
    assert_int_equal(o.step_bytes, 512);
}

static void bad_command_lines(void **state)
{
    (void)state;
    struct cb_options o;
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--frobnicate"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "-b"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "-b", "2M", "-e", "1M"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "-d", "float7"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "-o", "xor"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_gather", "-o", "prod"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "-f", "-1"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "-n", "0"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "-a", "4"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--slot-bytes", "1000"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--mtu", "1500"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--transport", "ucx"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduse"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "stray"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--mpi-reference", "-d", "half"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--mpi-reference", "-o", "avg"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--mpi-reference", "-o", "mulsum"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "reduce", "--algo", "ring,mpi", "-o", "max,mulsum"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_gather", "-o", "mulsum"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--hca", "mlx5_0:x"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--hca", "mlx5_0,^mlx5_1"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--tc", "256"), CB_EUSAGE);
}

/* The fabric's configuration wins: no traffic class or SL of ours unless
 * asked; --hca takes NCCL_IB_HCA's syntax. */
static void fabric_settings(void **state)
{
    (void)state;
    struct cb_options o;
    assert_int_equal(PARSE(&o, "collbench", "all_reduce"), CB_OK);
    assert_int_equal(o.tcfg.traffic_class, -1);
    assert_int_equal(o.tcfg.service_level, -1);
    assert_int_equal(o.tcfg.path_mtu, 0);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--tc", "0", "--sl", "0"), CB_OK);
    assert_int_equal(o.tcfg.traffic_class, 0);
    assert_int_equal(o.tcfg.service_level, 0);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--hca", "^=mlx5_4:1,mlx5_5"), CB_OK);
    assert_string_equal(o.tcfg.hca, "^=mlx5_4:1,mlx5_5");
    /* NCCL's data-path settings: auto unless given */
    assert_int_equal(PARSE(&o, "collbench", "all_reduce"), CB_OK);
    assert_int_equal(o.tcfg.ib_relaxed_ordering, CB_SWITCH_AUTO);
    assert_int_equal(o.tcfg.ib_ar, CB_SWITCH_AUTO);
    assert_true(o.tcfg.ib_ar_threshold == 8192);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--ib-relaxed-ordering", "off", "--ib-ar", "on",
                           "--ib-ar-threshold", "64K"), CB_OK);
    assert_int_equal(o.tcfg.ib_relaxed_ordering, CB_SWITCH_OFF);
    assert_int_equal(o.tcfg.ib_ar, CB_SWITCH_ON);
    assert_true(o.tcfg.ib_ar_threshold == 65536);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--ib-ar", "1"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--ib-relaxed-ordering", "yes"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--ib-ar-threshold", "8X"), CB_EUSAGE);
}

/* --ib-split-data: auto is off (NCCL's default); on only splits with more
 * than one QP; the ranks must agree on what is in force, not on the words. */
static void split_data(void **state)
{
    (void)state;
    struct cb_options o;
    struct cb_agreed off, a;
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--qps", "2", "--ib-split-data", "off"), CB_OK);
    assert_int_equal(o.tcfg.ib_split_data, CB_SWITCH_OFF);
    assert_false(cb_split_data(&o.tcfg));
    cb_options_digest(&o, &off);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--qps", "2"), CB_OK);
    assert_int_equal(o.tcfg.ib_split_data, CB_SWITCH_AUTO);
    assert_false(cb_split_data(&o.tcfg));
    cb_options_digest(&o, &a);
    assert_memory_equal(a.digests, off.digests, sizeof a.digests[0] * (size_t)a.n);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--qps", "2", "--ib-split-data", "on"), CB_OK);
    assert_true(cb_split_data(&o.tcfg));
    cb_options_digest(&o, &a);
    int f = 0;
    while (f < a.n && a.digests[f] == off.digests[f])
        f++;
    assert_true(f < a.n);
    assert_string_equal(a.names[f], "--ib-split-data");
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--ib-split-data", "on"), CB_OK);
    assert_false(cb_split_data(&o.tcfg));   /* one QP: nothing to split over */
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--ib-split-data", "2"), CB_EUSAGE);
}

/* The transport options' table: each parses through collbench's parser,
 * refuses a bad value, and is documented in docs/manual.md and --help
 * (tests run from the repository's top folder). */
static void transport_option_table(void **state)
{
    (void)state;
    int n;
    const struct cb_topt *t = cb_topts(&n);
    FILE *f = fopen("docs/manual.md", "r");
    assert_non_null(f);
    static char manual[1 << 20];
    size_t len = fread(manual, 1, sizeof manual - 1, f);
    manual[len] = 0;
    fclose(f);
    char *help = NULL;
    size_t help_len = 0;
    FILE *h = open_memstream(&help, &help_len);
    cb_options_usage(h);
    fclose(h);
    for (int i = 0; i < n; i++) {
        char flag[64], quoted[72];
        snprintf(flag, sizeof flag, "--%s", t[i].name);
        snprintf(quoted, sizeof quoted, "`%s", flag);
        if (!strstr(manual, quoted))
            fail_msg("docs/manual.md does not list %s", flag);
        if (!strstr(help, flag))
            fail_msg("--help does not list %s", flag);
        struct cb_options o;
        if (t[i].kind != CB_TOPT_TEXT)   /* free text is checked where it is used */
            assert_int_equal(PARSE(&o, "collbench", "all_reduce", flag, "not-a-value!"), CB_EUSAGE);
    }
    free(help);
}

/* --algo takes a list; --mpi-reference alone replaces ours, with --algo it
 * joins the list; the header's text names what runs. */
static void algo_lists(void **state)
{
    (void)state;
    struct cb_options o;
    assert_int_equal(PARSE(&o, "collbench", "all_reduce"), CB_OK);
    assert_int_equal(o.nalgos, 1);
    assert_int_equal(o.algos[0], CB_ALGO_AUTO);
    assert_string_equal(o.algo_list, "auto");
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--algo", "ring,tree,auto"), CB_OK);
    assert_int_equal(o.nalgos, 3);
    assert_int_equal(o.algos[0], CB_ALGO_RING);
    assert_int_equal(o.algos[1], CB_ALGO_TREE);
    assert_int_equal(o.algos[2], CB_ALGO_AUTO);
    assert_false(cb_options_runs_mpi(&o));
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--mpi-reference"), CB_OK);
    assert_int_equal(o.nalgos, 1);
    assert_true(cb_options_only_mpi(&o));
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--mpi-reference", "--algo", "ring,rd"), CB_OK);
    assert_int_equal(o.nalgos, 3);
    assert_int_equal(o.algos[2], CB_ALGO_MPI);
    assert_true(cb_options_runs_mpi(&o));
    assert_false(cb_options_only_mpi(&o));
    assert_string_equal(o.algo_list, "ring,rd,mpi");
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--algo", "ring,mpi", "--mpi-reference"), CB_OK);
    assert_int_equal(o.nalgos, 2);   /* mpi is not run twice */
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--algo", "ring,ring"), CB_OK);
    assert_int_equal(o.nalgos, 2);   /* the same one twice: how far apart two runs of one algorithm land */
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--algo", "ring,"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--algo", ",ring"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--algo", "ring,bogus"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--algo", "ring,ring,ring,ring,ring,ring,ring,ring,ring"),
                     CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--algo", "ring,ring,ring,ring,ring,ring,ring,ring",
                           "--mpi-reference"), CB_EUSAGE);
    /* a type MPI lacks is refused when MPI is in the list */
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--algo", "ring,mpi", "-d", "bfloat16"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--algo", "ring,tree", "-d", "bfloat16"), CB_OK);
}

/* nccl-tests' flags for GPUs: the values that have a meaning for host
 * memory are taken, the others refused (docs/manual.md). */
static void nccl_tests_gpu_flags(void **state)
{
    (void)state;
    struct cb_options o;
    assert_int_equal(PARSE(&o, "all_reduce_perf", "-t", "1", "-g", "1", "-p", "1", "-y", "0", "-G", "3", "-C", "1",
                           "-S", "1", "-R", "2", "-x", "0", "-D", "0", "-V", "32", "-M", "1"), CB_OK);
    assert_int_equal(o.nccl.graph, 3);
    assert_int_equal(o.nccl.cputime, 1);
    assert_int_equal(o.nccl.timestamps, 1);
    assert_int_equal(o.nccl.local_register, 2);
    assert_int_equal(o.per_iter, 0);   /* -G turns per-iteration timing off, as in nccl-tests */
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--nthreads", "1", "--ngpus", "1", "--parallel_init", "0",
                           "--stream_null", "1", "--cudagraph", "0", "--report_cputime", "0",
                           "--report_timestamps", "0", "--local_register", "1", "--cta_policy", "0",
                           "--device_implementation", "0", "--device_cta_count", "16", "--memory", "0",
                           "--memory_report", "0", "--per_iter_timing", "1", "--per_iter_skip", "2"), CB_OK);
    assert_int_equal(o.per_iter, 1);
    assert_int_equal(o.nccl.per_iter_skip, 2);
    /* values with no meaning for host memory */
    assert_int_equal(PARSE(&o, "all_reduce_perf", "-g", "2"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "all_reduce_perf", "--ngpus", "8"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "all_reduce_perf", "-t", "4"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "all_reduce_perf", "-D", "1"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "all_reduce_perf", "-x", "1"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "all_reduce_perf", "-V", "0"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "all_reduce_perf", "-g", "one"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "all_reduce_perf", "-I", "1", "-n", "5", "-K", "5"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "all_reduce_perf", "--format", "xml"), CB_EUSAGE);
}

/* The output format follows the program name unless --format says; -I's
 * default follows the format (nccl-tests: off; collbench: on). */
static void formats(void **state)
{
    (void)state;
    struct cb_options o;
    assert_int_equal(PARSE(&o, "/usr/bin/all_reduce_perf"), CB_OK);
    assert_int_equal(o.nccl.format, CB_FORMAT_NCCL);
    assert_int_equal(o.per_iter, 0);
    assert_int_equal(PARSE(&o, "all_gather_perf_mpi"), CB_OK);
    assert_int_equal(o.coll, CB_ALL_GATHER);
    assert_int_equal(o.nccl.format, CB_FORMAT_NCCL);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce"), CB_OK);
    assert_int_equal(o.nccl.format, CB_FORMAT_NATIVE);
    assert_int_equal(o.per_iter, 1);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--format", "nccl-tests"), CB_OK);
    assert_int_equal(o.nccl.format, CB_FORMAT_NCCL);
    assert_int_equal(o.per_iter, 0);
    assert_int_equal(PARSE(&o, "all_reduce_perf", "--format", "native", "-I", "0"), CB_OK);
    assert_int_equal(o.nccl.format, CB_FORMAT_NATIVE);
    assert_int_equal(o.per_iter, 0);
}

/* nccl-tests' value forms: -T 0, -u N, -z 0..3, fractional sizes, -f 0/1. */
static void nccl_tests_value_forms(void **state)
{
    (void)state;
    struct cb_options o;
    assert_int_equal(PARSE(&o, "all_reduce_perf", "-T", "0"), CB_OK);
    assert_int_equal(o.timeout_s, 60);   /* nccl-tests' "no limit": collbench keeps its own */
    assert_int_equal(PARSE(&o, "all_reduce_perf", "-u", "3"), CB_OK);
    assert_int_equal(o.unalign, 3);
    assert_int_equal(PARSE(&o, "all_reduce_perf", "-u", "65"), CB_EUSAGE);
    for (int z = 0; z <= 3; z++) {
        char v[2] = {(char)('0' + z), 0};
        assert_int_equal(PARSE(&o, "all_reduce_perf", "-z", v), CB_OK);
        assert_int_equal(o.blocking, z);
    }
    assert_int_equal(PARSE(&o, "all_reduce_perf", "-z", "4"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "all_reduce_perf", "-b", "0.5K", "-e", "1.5M", "-i", "0.25M"), CB_OK);
    assert_int_equal(o.min_bytes, 512);
    assert_int_equal(o.max_bytes, 3u << 19);
    assert_int_equal(o.step_bytes, 1u << 18);
    assert_int_equal(PARSE(&o, "all_reduce_perf", "-b", "2.5"), CB_OK);
    assert_int_equal(o.min_bytes, 2);   /* truncated to bytes, as nccl-tests does */
    assert_int_equal(PARSE(&o, "all_reduce_perf", "-b", "0.5X"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "all_reduce_perf", "-b", "1K", "-e", "4K", "-f", "1", "-i", "1K"), CB_OK);
    assert_true(o.step_factor == 0);   /* a factor of 1: steps of -i */
    assert_int_equal(PARSE(&o, "all_reduce_perf", "-b", "1K", "-e", "4K", "-f", "0"), CB_OK);
    assert_true(o.step_factor == 0);
    assert_int_equal(PARSE(&o, "broadcast_perf", "-r", "all"), CB_OK);
    assert_int_equal(o.root, CB_EVERY_ROOT);
    assert_int_equal(PARSE(&o, "broadcast_perf", "-r", "-1"), CB_OK);
    assert_int_equal(o.root, CB_EVERY_ROOT);
    assert_int_equal(PARSE(&o, "broadcast_perf", "-r", "-2"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "all_reduce_perf", "-f", "1.5"), CB_OK);
    assert_true(o.step_factor == 1.5);
}

/* Sweeps that would wrap, run backwards, never advance or never end are
 * refused before the run (issue 18: -e 18446744073709551615 crashed every
 * rank, -i 18446744073709551615 swept backwards from -b). */
static void overflowing_sweeps_are_refused(void **state)
{
    (void)state;
    struct cb_options o;
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "-e", "18446744073709551615"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "-b", "18446744073709551615", "-e",
                           "18446744073709551615"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "-i", "18446744073709551615"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "-b", "8", "-e", "8", "-i", "18446744073709551615"),
                     CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "-b", "1", "-e", "1G", "-f", "1e300"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "-f", "inf"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "-f", "nan"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "-b", "1", "-e", "1G", "-f", "1.0000001"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "-b", "0", "-e", "16G", "-i", "1"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--seed", "-1"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--seed", "99999999999999999999999"), CB_EUSAGE);
    /* what nccl-tests users run still runs */
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "-b", "8", "-e", "8G", "-f", "2"), CB_OK);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "-b", "8", "-e", "8"), CB_OK);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "-b", "0", "-e", "1M", "-f", "2"), CB_OK);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "--seed", "0x10"), CB_OK);
    assert_int_equal(o.seed, 16);
}

static void sizes_of(const struct cb_sizes *s, size_t *out, size_t max, size_t *n)
{
    size_t size = s->min_bytes;
    *n = 0;
    for (int more = 1; more && *n < max; more = cb_sizes_next(s, size, &size))
        out[(*n)++] = size;
}

/* The sizes the harness runs: from -b, never above -e, ending at the last
 * that fits even when the step past it would overflow. */
static void sweep_sizes(void **state)
{
    (void)state;
    size_t got[64], n, count;
    char why[256];
    struct cb_sizes geo = {8, 64, 0, 2};
    sizes_of(&geo, got, 64, &n);
    assert_int_equal(n, 4);
    assert_int_equal(got[3], 64);
    assert_int_equal(cb_sizes_check(&geo, &count, why, sizeof why), 0);
    assert_int_equal(count, 4);
    struct cb_sizes from0 = {0, 4, 0, 2};   /* 0, 1, 2, 4: a byte at a time until the factor takes over */
    sizes_of(&from0, got, 64, &n);
    assert_int_equal(n, 4);
    assert_int_equal(got[1], 1);
    struct cb_sizes top = {SIZE_MAX - 1, SIZE_MAX, 1, 0};
    sizes_of(&top, got, 64, &n);
    assert_int_equal(n, 2);
    assert_true(got[1] == SIZE_MAX);
    assert_int_equal(cb_sizes_check(&top, &count, why, sizeof why), -1);   /* the step past -e overflows */
    struct cb_sizes wrap = {8, 8, SIZE_MAX, 0};
    sizes_of(&wrap, got, 64, &n);
    assert_int_equal(n, 1);
    assert_int_equal(cb_sizes_check(&wrap, &count, why, sizeof why), -1);
    assert_non_null(strstr(why, "-i 18446744073709551615"));
    struct cb_sizes stuck = {8, 64, 0, 0};
    assert_int_equal(cb_sizes_check(&stuck, &count, why, sizeof why), -1);
    struct cb_sizes one = {8, 8, 0, 0};
    assert_int_equal(cb_sizes_check(&one, &count, why, sizeof why), 0);
    assert_int_equal(count, 1);
}

static void checked_numbers(void **state)
{
    (void)state;
    long l;
    uint64_t u;
    double d;
    char esc[32];
    assert_int_equal(cb_parse_long("99999999999", 1, 1 << 24, &l), -1);
    assert_int_equal(cb_parse_long("2147483647", 1, 1 << 24, &l), -1);
    assert_int_equal(cb_parse_long(" 5", 1, 9, &l), -1);
    assert_int_equal(cb_parse_long("+5", 1, 9, &l), -1);
    assert_int_equal(cb_parse_long("5x", 1, 9, &l), -1);
    assert_int_equal(cb_parse_long("", 1, 9, &l), -1);
    assert_int_equal(cb_parse_long("-3", -5, 9, &l), 0);
    assert_int_equal(l, -3);
    assert_int_equal(cb_parse_u64("18446744073709551616", &u), -1);
    assert_int_equal(cb_parse_u64("-1", &u), -1);
    assert_int_equal(cb_parse_u64("18446744073709551615", &u), 0);
    assert_int_equal(cb_parse_double("inf", 0, 1e6, &d), -1);
    assert_int_equal(cb_parse_double("nan", 0, 1e6, &d), -1);
    assert_int_equal(cb_parse_double("1e30", 0, 1e6, &d), -1);
    assert_int_equal(cb_parse_double("1e400", 0, 1e300, &d), -1);
    assert_int_equal(cb_parse_double("2.5", 0, 1e6, &d), 0);
    assert_true(d == 2.5);
    cb_escape(esc, sizeof esc, "a\x1b[31mb\n\xff");
    assert_string_equal(esc, "a\\x1b[31mb\\x0a\\xff");
    cb_escape(esc, 8, "abcdefghijkl");
    assert_string_equal(esc, "abcd...");
    size_t z;
    assert_int_equal(cb_size_add(SIZE_MAX, 1, &z), -1);
    assert_int_equal(cb_size_mul(SIZE_MAX / 2 + 1, 2, &z), -1);
    assert_int_equal(cb_size_mul(3, 4, &z), 0);
    assert_int_equal(z, 12);
}

/* The memory a run needs, estimated before anything is allocated (issue 18:
 * -e 16G was OOM-killed, -e 1000G failed in malloc with exit 1). */
static void memory_need_of_a_run(void **state)
{
    (void)state;
    struct cb_options o;
    struct cb_mem_need n;
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "-b", "1M", "-e", "1M", "-n", "10"), CB_OK);
    assert_int_equal(cb_mem_need(&o, 2, &n), 0);
    assert_int_equal(n.buffers, 3 * ((1 << 20) + 4096));   /* + the room for -u, page-rounded */
    assert_int_equal(n.scratch, 1 << 20);
    assert_int_equal(n.fifos, 8 * 512 * 1024);           /* --slots x --slot-bytes to the one peer */
    assert_int_equal(n.samples, 10 * 3 * 2 * sizeof(double));
    assert_int_equal(cb_mem_host_need(&o, 2, 2, 1), 2 * n.per_rank + n.samples);
    assert_int_equal(n.premul, 0);
    size_t without = n.per_rank;
    /* mulsum: an odd rank's doubled input, a send buffer (reduce_scatter: a block per rank) */
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "-b", "1M", "-e", "1M", "-n", "10", "-o", "sum,mulsum"),
                     CB_OK);
    assert_int_equal(cb_mem_need(&o, 2, &n), 0);
    assert_int_equal(n.premul, 1 << 20);
    assert_int_equal(n.per_rank, without + (1 << 20));
    assert_int_equal(PARSE(&o, "collbench", "reduce_scatter", "-b", "1M", "-e", "1M", "-o", "mulsum"), CB_OK);
    assert_int_equal(cb_mem_need(&o, 4, &n), 0);
    assert_int_equal(n.premul, 1 << 20);   /* the size column of reduce_scatter counts every block */
    assert_int_equal(PARSE(&o, "collbench", "alltoall", "-b", "1G", "-e", "1G", "-I", "0"), CB_OK);
    assert_int_equal(cb_mem_need(&o, 4, &n), 0);
    assert_int_equal(n.scratch, 1u << 30);               /* alltoall: the whole buffer */
    assert_int_equal(n.samples, 0);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "-b", "1000G", "-e", "1000G"), CB_OK);
    assert_true(cb_mem_host_need(&o, 2, 2, 1) > ((size_t)1 << 42));
    assert_int_equal(cb_mem_check(&o, 2, 2, 1, 0), CB_EUSAGE);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* MemAvailable, and the least room under the cgroup limits of the process
 * and its ancestors, v2 and v1, from a made-up /sys/fs/cgroup. */
static void memory_available(void **state)
{
    (void)state;
    size_t b;
    char root[] = "/tmp/collbench-cgroup-XXXXXX", dir[512];
    assert_int_equal(cb_meminfo_available("MemTotal: 100 kB\nMemFree: 5 kB\nMemAvailable:   2048 kB\n", &b), 0);
    assert_int_equal(b, 2048 * 1024);
    assert_int_equal(cb_meminfo_available("MemTotal: 100 kB\n", &b), -1);
    assert_non_null(mkdtemp(root));
    write_file(root, "cgroup.controllers", "memory\n");
    snprintf(dir, sizeof dir, "%s/job", root);
    assert_int_equal(mkdir(dir, 0700), 0);
    write_file(dir, "memory.max", "1048576\n");
    write_file(dir, "memory.current", "24576\n");
    snprintf(dir, sizeof dir, "%s/job/step", root);
    assert_int_equal(mkdir(dir, 0700), 0);
    write_file(dir, "memory.max", "max\n");
    write_file(dir, "memory.current", "4096\n");
    assert_int_equal(cb_cgroup_room("0::/job/step\n", root), 1048576 - 24576);   /* the parent's limit binds */
    assert_true(cb_cgroup_room("0::/\n", root) == SIZE_MAX);
    snprintf(dir, sizeof dir, "%s/memory", root);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(dir, sizeof dir, "%s/memory/a", root);
    assert_int_equal(mkdir(dir, 0700), 0);
    write_file(dir, "memory.limit_in_bytes", "65536\n");
    write_file(dir, "memory.usage_in_bytes", "70000\n");
    assert_int_equal(cb_cgroup_room("9:name=systemd:/\n4:memory:/a\n", root), 0);   /* v1, over its limit */
    write_file(dir, "memory.limit_in_bytes", "9223372036854771712\n");
    assert_true(cb_cgroup_room("4:memory:/a\n", root) == SIZE_MAX);                 /* v1's "unlimited" */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

/* Found by tests/fuzz/fuzz_options: a parse that stopped inside a cluster
 * of short flags ("-gol": -g is unknown) left getopt's place in it, and the
 * next parse went on from "ol" (-o with value "l") instead of its own argv. */
static void a_refused_cluster_leaves_no_state(void **state)
{
    (void)state;
    struct cb_options o;
    assert_int_equal(PARSE(&o, "collbench", "broadcast", "-r", "0", "-gol-a"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "-o", "max"), CB_OK);
    assert_int_equal(o.ops[0], CB_MAX);
    assert_int_equal(PARSE(&o, "collbench", "all_reduce", "-n5x"), CB_EUSAGE);
    assert_int_equal(PARSE(&o, "all_reduce_perf", "-n", "5"), CB_OK);
    assert_int_equal(o.iters, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_nccl_tests),
        cmocka_unit_test(nccl_tests_gpu_flags),
        cmocka_unit_test(formats),
        cmocka_unit_test(nccl_tests_value_forms),
        cmocka_unit_test(every_short_flag),
        cmocka_unit_test(sizes_are_binary),
        cmocka_unit_test(all_types_and_ops_and_lists),
        cmocka_unit_test(binary_names_pick_the_collective),
        cmocka_unit_test(long_options),
        cmocka_unit_test(bad_command_lines),
        cmocka_unit_test(fabric_settings),
        cmocka_unit_test(split_data),
        cmocka_unit_test(transport_option_table),
        cmocka_unit_test(algo_lists),
        cmocka_unit_test(overflowing_sweeps_are_refused),
        cmocka_unit_test(sweep_sizes),
        cmocka_unit_test(checked_numbers),
        cmocka_unit_test(memory_need_of_a_run),
        cmocka_unit_test(memory_available),
        cmocka_unit_test(a_refused_cluster_leaves_no_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
