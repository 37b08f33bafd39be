/* The flag parser: nccl-tests' flags mean what they mean there; every bad
 * command line is refused with CB_EUSAGE. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "harness/options.h"

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
        cmocka_unit_test(algo_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
