/* The table, the summary, and the JSON and CSV files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "report/outfile.h"
#include "report/report.h"

#define NITERS 4

/* A two-rank run with two results: all_reduce (both placements, the
 * out-of-place one with per-iteration figures) and broadcast (out-of-place only). */
struct fixture {
    char args[6][16];
    char *argv[6];
    struct cb_rank_info ranks[2];
    struct cb_run_info info;
    double per_rank[2 * NITERS], iter_max[NITERS];
    struct cb_result a, b;
    char dir[64];
};

static void fill_info(struct fixture *fx)
{
    static const char *const args[6] = {"collbench", "tab\there", "q\"uote\\", "caf\xc3\xa9", "ctl\x01", "bad\xff"};
    for (int i = 0; i < 6; i++) {
        snprintf(fx->args[i], sizeof fx->args[i], "%s", args[i]);
        fx->argv[i] = fx->args[i];
    }
    for (int r = 0; r < 2; r++) {
        fx->ranks[r] = (struct cb_rank_info){.rank = r, .pid = 1000 + r};
        snprintf(fx->ranks[r].host, sizeof fx->ranks[r].host, "node-%c", 'a' + r);
        fx->ranks[r].props.n = 2;
        snprintf(fx->ranks[r].props.kv[0].key, sizeof fx->ranks[r].props.kv[0].key, "device");
        snprintf(fx->ranks[r].props.kv[0].val, sizeof fx->ranks[r].props.kv[0].val, "mlx5_%d", r);
        snprintf(fx->ranks[r].props.kv[1].key, sizeof fx->ranks[r].props.kv[1].key, "rate");
        snprintf(fx->ranks[r].props.kv[1].val, sizeof fx->ranks[r].props.kv[1].val, "100 Gb/s");
    }
    fx->info = (struct cb_run_info){
        .version = "1.2.3", .argc = 6, .argv = fx->argv, .collective = "all_reduce",
        .transport = "shm", .nranks = 2, .ranks = fx->ranks, .min_bytes = 8, .max_bytes = 4096,
        .step_factor = 2, .iters = 20, .warmup = 1, .agg_iters = 1, .check_iters = 1, .cycles = 1,
        .average = 1, .per_iter = 1, .timeout_s = 300, .slot_bytes = 65536, .nslots = 8, .algo = "ring",
        .start_time = "2024-01-02T03:04:05Z"};
}

static void fill_results(struct fixture *fx)
{
    /* rank 1 is the slowest in iterations 1..3 */
    const double t[2 * NITERS] = {1, 2, 1, 1, 0.5, 3, 4, 2};
    memcpy(fx->per_rank, t, sizeof t);
    struct cb_result_half *o = &fx->a.oop;
    *o = (struct cb_result_half){.ran = 1, .time_us = 12.5, .algbw = 0.1, .busbw = 0.15,
                                 .nwrong = 0, .have_iter = 1, .niters = NITERS,
                                 .iter_max_us = fx->iter_max, .per_rank_us = fx->per_rank};
    o->slowest_rank = cb_iter_max_over_ranks(t, 2, NITERS, fx->iter_max, &o->slowest_count);
    cb_pct_compute(fx->iter_max, NITERS, &o->iter);
    fx->a.ip = (struct cb_result_half){.ran = 1, .time_us = 11, .algbw = 0.2, .busbw = 0.3, .nwrong = -1};
    fx->a.coll = CB_ALL_REDUCE;
    fx->a.bytes = 1024;
    fx->a.count = 256;
    fx->a.type = CB_FLOAT;
    fx->a.op = CB_SUM;
    fx->a.root = -1;
    fx->a.algo = CB_ALGO_RING;
    fx->b = (struct cb_result){.coll = CB_BROADCAST, .bytes = 4096, .count = 1024, .type = CB_INT32,
                               .op = CB_SUM, .root = 0, .algo = CB_ALGO_TREE};
    fx->b.oop = (struct cb_result_half){.ran = 1, .time_us = 20, .algbw = 0.2048, .busbw = 0.2048, .nwrong = 0};
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    fill_info(fx);
    fill_results(fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/test_report.XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    *state = fx;
    return 0;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    remove_dir(fx->dir);
    free(fx);
    return 0;
}

static int entries_in(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d)
        closedir(d);
    return n;
}

/* ---- table ---- */

struct capture {
    char *buf;
    size_t len;
    FILE *f;
};

static void capture_start(struct capture *c)
{
    c->f = open_memstream(&c->buf, &c->len);
    assert_non_null(c->f);
}

static char *capture_end(struct capture *c)
{
    fclose(c->f);
    return c->buf;
}

/* The line of `text` starting with `prefix` (copied to `line`), or NULL. */
static char *find_line(const char *text, const char *prefix, char *line, size_t cap)
{
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, prefix, strlen(prefix)) == 0) {
            size_t n = strcspn(p, "\n");
            snprintf(line, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
            return line;
        }
    }
    return NULL;
}

static const char nccl_line1[] =
    "#                                                              out-of-place                       in-place          ";
static const char nccl_line2[] =
    "#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong";
static const char nccl_line3[] =
    "#        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)       ";

static void test_header(void **state)
{
    struct fixture *fx = *state;
    struct capture c;
    capture_start(&c);
    cb_table_header(c.f, &fx->info);
    char *out = capture_end(&c);
    char line[1024];

    for (const char *p = out; *p; p = strchr(p, '\n') + 1)
        assert_int_equal(*p, '#');   /* every header line is a comment */
    assert_int_equal(strncmp(out, "# collbench 1.2.3\n", strlen("# collbench 1.2.3\n")), 0);
    assert_non_null(strstr(out, "\n# collbench 'tab\there'"));   /* the command line, quoted */
    assert_non_null(find_line(out, "# nranks 2  transport shm", line, sizeof line));
    assert_non_null(strstr(line, "minBytes 8  maxBytes 4096  step 2(factor)  iters 20  warmup 1"));
    assert_non_null(strstr(line, "slot 65536x8  algo ring"));
    assert_non_null(find_line(out, "#  Rank  1  Pid   1001 on node-b:", line, sizeof line));
    assert_non_null(strstr(line, " device=mlx5_1 rate=\"100 Gb/s\""));
    assert_non_null(strstr(out, nccl_line1));
    assert_non_null(strstr(out, nccl_line2));
    assert_non_null(strstr(out, nccl_line3));
    assert_non_null(find_line(out, nccl_line2, line, sizeof line));
    assert_string_equal(line + strlen(nccl_line2),
                        "               algo      min      p50      p90      p99    p99.9      max    slow");
    free(out);
}

static char *table_row(const struct cb_result *r, int per_iter)
{
    struct capture c;
    capture_start(&c);
    cb_table_row(c.f, r, per_iter);
    return capture_end(&c);
}

static void test_row_fields_parse_back(void **state)
{
    struct fixture *fx = *state;
    char *row = table_row(&fx->a, 1);
    size_t bytes, count;
    char type[32], op[32], wrong_ip[32], algo[32], slow[32];
    int root;
    long long wrong_oop;
    double v[12];
    int n = sscanf(row, "%zu %zu %31s %31s %d %lf %lf %lf %lld %lf %lf %lf %31s %31s %lf %lf %lf %lf %lf %lf %31s",
                   &bytes, &count, type, op, &root, &v[0], &v[1], &v[2], &wrong_oop, &v[3], &v[4], &v[5],
                   wrong_ip, algo, &v[6], &v[7], &v[8], &v[9], &v[10], &v[11], slow);
    assert_int_equal(n, 21);
    assert_true(bytes == 1024 && count == 256 && root == -1);
    assert_string_equal(type, cb_type_name(CB_FLOAT));
    assert_string_equal(op, cb_op_name(CB_SUM));
    const double want[12] = {12.5, 0.1, 0.15, 11, 0.2, 0.3, 1, 2, 4, 4, 4, 4};
    for (int i = 0; i < 12; i++)
        assert_true(fabs(v[i] - want[i]) <= 0.005);
    assert_int_equal(wrong_oop, 0);
    assert_string_equal(wrong_ip, "N/A");   /* in-place not checked */
    assert_string_equal(algo, "ring");
    assert_string_equal(slow, "r1");
    assert_int_equal(row[strlen(row) - 1], '\n');
    free(row);
}

/* Right edges of the blank-separated fields of a line. */
static int field_ends(const char *s, int *ends, int max)
{
    int n = 0;
    for (int i = 0; s[i] && s[i] != '\n' && n < max; i++)
        if (s[i] != ' ' && (s[i + 1] == ' ' || s[i + 1] == '\n' || s[i + 1] == '\0'))
            ends[n++] = i;
    return n;
}

static void test_columns_line_up(void **state)
{
    struct fixture *fx = *state;
    char *row = table_row(&fx->a, 1);
    int hdr[32], cols[32];
    char full[256];
    snprintf(full, sizeof full, "%s%s", nccl_line2,
             "               algo      min      p50      p90      p99    p99.9      max    slow");
    int nh = field_ends(full, hdr, 32);
    int nc = field_ends(row, cols, 32);
    assert_int_equal(nh, nc + 1);   /* the header's leading '#' */
    for (int i = 0; i < nc; i++)
        assert_int_equal(cols[i], hdr[i + 1]);
    free(row);

    /* a placement that did not run is blank, and `algo` stays in its column */
    row = table_row(&fx->b, 0);
    nc = field_ends(row, cols, 32);
    assert_int_equal(nc, 5 + 4 + 1);
    assert_int_equal(cols[nc - 1], hdr[5 + 8 + 1]);
    assert_non_null(strstr(row, "  tree\n"));
    assert_non_null(strstr(row, "       0  "));   /* root 0 */
    free(row);
}

static void test_numbers_fit_their_columns(void **state)
{
    struct fixture *fx = *state;
    struct cb_result r = fx->b;
    r.oop.time_us = 1234567.8;   /* 0 decimals still fit in 7 */
    r.oop.algbw = 1234.56;       /* 1 decimal in 6 */
    r.oop.busbw = 99999.9;       /* rounds to 100000: 0 decimals */
    char *row = table_row(&r, 0);
    assert_non_null(strstr(row, "  1234568  1234.6  100000"));
    free(row);
    r.oop.time_us = 12345678;    /* exponent */
    r.oop.algbw = 0.001;
    r.oop.busbw = 1234567;
    row = table_row(&r, 0);
    assert_non_null(strstr(row, "  1.2e+07    0.00   1e+06"));
    free(row);
    r.oop.nwrong = 42;
    row = table_row(&r, 0);
    assert_non_null(strstr(row, "   1e+06     42"));
    free(row);
}

static void test_per_iter_columns_without_samples(void **state)
{
    struct fixture *fx = *state;
    char *row = table_row(&fx->b, 1);   /* no per-iteration pass: dashes keep the fields */
    char algo[32], d[7][8];
    int n = sscanf(row, "%*s %*s %*s %*s %*s %*s %*s %*s %*s %31s %7s %7s %7s %7s %7s %7s %7s", algo,
                   d[0], d[1], d[2], d[3], d[4], d[5], d[6]);
    assert_int_equal(n, 8);
    for (int i = 0; i < 7; i++)
        assert_string_equal(d[i], "-");
    free(row);
}

static struct cb_summary summary_of(const struct fixture *fx)
{
    struct cb_summary s = {0};
    cb_summary_add(&s, &fx->a);
    cb_summary_add(&s, &fx->b);
    return s;
}

static void test_summary(void **state)
{
    struct fixture *fx = *state;
    struct cb_summary s = summary_of(fx);
    assert_true(fabs(s.avg_busbw - (0.15 + 0.3 + 0.2048) / 3) < 1e-12);   /* every printed busbw */
    assert_true(s.peak_busbw == 0.3 && s.peak_bytes == 1024);
    assert_true(s.largest_busbw == 0.2048 && s.largest_bytes == 4096);
    assert_int_equal(s.total_wrong, 0);

    struct cb_result bad = fx->a;
    bad.oop.nwrong = 5;
    bad.ip.nwrong = 2;
    cb_summary_add(&s, &bad);
    assert_int_equal(s.total_wrong, 7);
    assert_true(s.largest_bytes == 4096);   /* a smaller size does not replace it */
}

static void test_footer(void **state)
{
    struct fixture *fx = *state;
    struct cb_summary s = summary_of(fx);
    s.total_wrong = 3;
    struct capture c;
    capture_start(&c);
    cb_table_footer(c.f, &s, -1);
    char *out = capture_end(&c);
    long long wrong;
    char verdict[16];
    double avg, peak, largest;
    size_t peak_bytes, largest_bytes;
    const char *p = out;
    assert_int_equal(sscanf(p, "# Out of bounds values : %lld %15s\n", &wrong, verdict), 2);
    assert_true(wrong == 3 && strcmp(verdict, "FAILED") == 0);
    p = strchr(p, '\n') + 1;
    assert_int_equal(sscanf(p, "# Avg bus bandwidth    : %lf\n", &avg), 1);
    assert_true(fabs(avg - s.avg_busbw) < 1e-5);
    p = strchr(p, '\n') + 1;
    assert_int_equal(sscanf(p, "# Peak bus bandwidth   : %lf GB/s at %zu B\n", &peak, &peak_bytes), 2);
    assert_true(peak == 0.3 && peak_bytes == 1024);
    p = strchr(p, '\n') + 1;
    assert_int_equal(sscanf(p, "# Bus bandwidth at largest size (%zu B) : %lf GB/s\n", &largest_bytes, &largest), 2);
    assert_true(largest == 0.2048 && largest_bytes == 4096);
    p = strchr(p, '\n') + 1;
    assert_string_equal(p, "#\n");   /* no wire read: no wire line */
    free(out);
    struct cb_wire_moved wire[2];
    memset(wire, 0, sizeof wire);
    snprintf(wire[0].host, sizeof wire[0].host, "node-a");
    snprintf(wire[1].host, sizeof wire[1].host, "node-b");
    wire[1].nread = wire[0].nread = 3;
    wire[1].n = 1;
    wire[1].c[0] = (struct cb_wire_counter){"rxe0:1", "link_downed", 1};
    s.wire = wire;
    s.nwire = 2;
    capture_start(&c);
    cb_table_footer(c.f, &s, -1);
    out = capture_end(&c);
    assert_non_null(strstr(out, "\n# wire: host node-b rxe0:1 link_downed +1\n#\n"));
    free(out);
}

/* ---- JSON ---- */

/* Checked by Python's own parser; no single quotes (the script is in one). */
static const char json_checks[] =
    "import json, sys\n"
    "d = json.load(open(sys.argv[1], encoding=\"utf-8\"))\n"
    "assert d[\"collbench_version\"] == \"1.2.3\"\n"
    "assert d[\"start_time\"] == \"2024-01-02T03:04:05Z\" and d[\"end_time\"].endswith(\"Z\")\n"
    "assert d[\"argv\"] == [\"collbench\", \"tab\" + chr(9) + \"here\", \"q\" + chr(34) + \"uote\" + chr(92),\n"
    "                     \"caf\" + chr(0xe9), \"ctl\" + chr(1), \"bad\" + chr(0xfffd)], d[\"argv\"]\n"
    "c = d[\"config\"]\n"
    "assert c[\"min_bytes\"] == 8 and c[\"max_bytes\"] == 4096 and c[\"step_factor\"] == 2, c\n"
    "assert c[\"iters\"] == 20 and c[\"per_iter\"] is True and c[\"blocking\"] == 0, c\n"
    "assert d[\"format_version\"] == 1 and list(d)[0] == \"format_version\"\n"
    "import jsonschema\n"
    "jsonschema.validate(d, json.load(open(\"docs/collbench-run.schema.json\")))\n"
    "assert c[\"slot_bytes\"] == 65536 and c[\"nslots\"] == 8 and c[\"algo\"] == \"ring\", c\n"
    "assert c[\"collective\"] == \"all_reduce\" and c[\"timeout_s\"] == 300, c\n"
    "assert d[\"nranks\"] == 2 and d[\"transport\"] == \"shm\"\n"
    "assert [r[\"rank\"] for r in d[\"ranks\"]] == [0, 1] and d[\"ranks\"][1][\"host\"] == \"node-b\"\n"
    "assert d[\"ranks\"][1][\"pid\"] == 1001\n"
    "assert d[\"ranks\"][0][\"props\"] == {\"device\": \"mlx5_0\", \"rate\": \"100 Gb/s\"}\n"
    "a, b = d[\"results\"]\n"
    "assert (a[\"collective\"], a[\"size\"], a[\"count\"], a[\"root\"], a[\"algo\"]) == (\"all_reduce\", 1024, 256, None, \"ring\"), a\n"
    "assert (a[\"type\"], a[\"redop\"]) == (\"float\", \"sum\"), a\n"
    "o = a[\"out_of_place\"]\n"
    "assert (o[\"time_us\"], o[\"algbw_gbps\"], o[\"busbw_gbps\"], o[\"nwrong\"]) == (12.5, 0.1, 0.15, 0), o\n"
    "p = o[\"per_iter\"]\n"
    "assert [p[k] for k in (\"min_us\", \"p50_us\", \"p90_us\", \"p99_us\", \"p999_us\", \"max_us\")] == [1, 2, 4, 4, 4, 4], p\n"
    "assert p[\"mean_us\"] is None and p[\"slowest_rank\"] == 1 and p[\"slowest_count\"] == 3, p\n"
    "assert p[\"iter_max_us\"] == [1, 3, 4, 2], p\n"
    "assert p[\"per_rank_us\"] == [[1, 2, 1, 1], [0.5, 3, 4, 2]], p\n"
    "i = a[\"in_place\"]\n"
    "assert i[\"nwrong\"] is None and i[\"per_iter\"] is None and i[\"busbw_gbps\"] == 0.3, i\n"
    "assert (b[\"collective\"], b[\"root\"], b[\"type\"], b[\"algo\"]) == (\"broadcast\", 0, \"int32\", \"tree\"), b\n"
    "assert b[\"in_place\"] is None and b[\"out_of_place\"][\"per_iter\"] is None, b\n"
    "s = d[\"summary\"]\n"
    "assert s[\"total_wrong\"] == 0 and s[\"passed\"] is True, s\n"
    "assert (s[\"peak_busbw_gbps\"], s[\"peak_size\"]) == (0.3, 1024), s\n"
    "assert (s[\"largest_busbw_gbps\"], s[\"largest_size\"]) == (0.2048, 4096), s\n"
    "assert abs(s[\"avg_busbw_gbps\"] - (0.15 + 0.3 + 0.2048) / 3) < 1e-12, s\n"
    "w = d[\"wire\"]\n"
    "assert [r[\"rank\"] for r in w] == [0, 1] and w[1][\"host\"] == \"node-b\" and w[0][\"counters\"] == [], w\n"
    "assert w[1][\"counters\"] == [{\"link\": \"eth0\", \"counter\": \"carrier_changes\", \"delta\": 2,\n"
    "                             \"kind\": \"error\"}], w\n"
    "assert w[1][\"port_events\"] == [{\"link\": \"rxe0:1\", \"event\": \"port error\", \"unix_ms\": 5}], w\n"
    "assert w[1][\"errors\"] is True and w[0][\"errors\"] is False and w[1][\"counters_read\"] == 4, w\n"
    "c = d[\"cycles\"]\n"
    "assert (c[\"done\"], c[\"results_hold\"], c[\"window\"]) == (2, \"every cycle\", 256), c\n"
    "assert [(e[\"cycle\"], e[\"total_wrong\"]) for e in c[\"recent\"]] == [(0, 0), (1, 3)], c\n";

static int python_accepts(const char *file)
{
    char cmd[8192];
    int n = snprintf(cmd, sizeof cmd, "python3 -c '%s' '%s'", json_checks, file);
    assert_true(n > 0 && (size_t)n < sizeof cmd);
    return system(cmd);
}

static void test_json_run(void **state)
{
    struct fixture *fx = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/run.json", fx->dir);
    struct cb_json *j;
    assert_int_equal(cb_json_open(path, &j), CB_OK);
    assert_int_equal(entries_in(fx->dir), 0);   /* an unnamed file: the target appears only at the end */
    cb_json_begin(j, &fx->info);
    fx->a.oop.iter.mean = NAN;   /* JSON has no NaN: null */
    cb_json_result(j, &fx->a, 2);
    cb_json_result(j, &fx->b, 2);
    struct cb_summary s = summary_of(fx), wrong3 = {.total_wrong = 3};
    struct cb_wire_moved wire[2];
    memset(wire, 0, sizeof wire);
    snprintf(wire[0].host, sizeof wire[0].host, "node-a");
    snprintf(wire[1].host, sizeof wire[1].host, "node-b");
    wire[1].nread = 4;
    wire[1].n = 1;
    wire[1].c[0] = (struct cb_wire_counter){"eth0", "carrier_changes", 2};
    wire[1].nevents = 1;
    wire[1].ev[0] = (struct cb_port_event){5, "rxe0:1", "port error"};
    s.wire = wire;
    s.nwire = 2;
    struct cb_cycles *cycles = calloc(1, sizeof *cycles);
    assert_non_null(cycles);
    cb_cycles_add(cycles, &s);
    cb_cycles_add(cycles, &wrong3);
    assert_int_equal(cb_json_finish(j, &s, cycles), CB_OK);
    free(cycles);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(entries_in(fx->dir), 1);
    assert_int_equal(python_accepts(path), 0);
}

static void test_json_unwritable_paths(void **state)
{
    struct fixture *fx = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/missing/run.json", fx->dir);
    struct cb_json *j = (struct cb_json *)&j;
    assert_int_equal(cb_json_open(path, &j), CB_EUSAGE);
    assert_null(j);
    assert_int_equal(cb_json_open(fx->dir, &j), CB_EUSAGE);   /* a directory */
    assert_null(j);
    assert_int_equal(entries_in(fx->dir), 0);
}

static void test_json_abort_leaves_nothing(void **state)
{
    struct fixture *fx = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/run.json", fx->dir);
    struct cb_json *j;
    assert_int_equal(cb_json_open(path, &j), CB_OK);
    cb_json_begin(j, &fx->info);
    cb_json_result(j, &fx->a, 2);
    cb_json_abort(j);
    assert_int_equal(entries_in(fx->dir), 0);
}

/* ---- CSV ---- */

static const char csv_header[] =
    "collective,size,count,type,redop,root,algo,placement,time_us,algbw_gbps,busbw_gbps,nwrong,"
    "min_us,p50_us,p90_us,p99_us,p999_us,max_us,slowest_rank,collbench_version,start_time,nranks,transport\n";
#define META ",1.2.3,2024-01-02T03:04:05Z,2,shm"

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static const size_t cap = 1 << 16;
    char *buf = calloc(1, cap);
    assert_non_null(buf);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int count_char(const char *s, char c)
{
    int n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

static void test_csv_run(void **state)
{
    struct fixture *fx = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/run.csv", fx->dir);
    struct cb_csv *c;
    assert_int_equal(cb_csv_open(path, &c), CB_OK);
    cb_csv_begin(c, &fx->info);
    cb_csv_result(c, &fx->a);
    cb_csv_result(c, &fx->b);
    assert_int_not_equal(access(path, F_OK), 0);
    assert_int_equal(cb_csv_finish(c), CB_OK);
    assert_int_equal(entries_in(fx->dir), 1);

    char *text = read_file(path);
    assert_int_equal(strncmp(text, csv_header, strlen(csv_header)), 0);
    assert_int_equal(count_char(text, '\n'), 1 + 3);   /* a: both placements, b: out-of-place */
    char line[512];
    const char *lines = text + strlen(csv_header);
    assert_non_null(find_line(lines, "all_reduce,1024,256,", line, sizeof line));
    assert_string_equal(line + strlen("all_reduce,1024,256,"),
                        "float,sum,-1,ring,out_of_place,12.5,0.1,0.15,0,1,2,4,4,4,4,1" META);
    assert_non_null(find_line(strchr(lines, '\n') + 1, "all_reduce,", line, sizeof line));
    /* integer columns keep their type without a figure: -1, not an empty cell */
    assert_string_equal(line, "all_reduce,1024,256,float,sum,-1,ring,in_place,11,0.2,0.3,-1,,,,,,,-1" META);
    assert_non_null(find_line(lines, "broadcast,", line, sizeof line));
    assert_string_equal(line, "broadcast,4096,1024,int32,sum,0,tree,out_of_place,20,0.2048,0.2048,0,,,,,,,-1" META);
    free(text);
}

static void test_csv_unwritable_and_abort(void **state)
{
    struct fixture *fx = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/missing/run.csv", fx->dir);
    struct cb_csv *c = (struct cb_csv *)&c;
    assert_int_equal(cb_csv_open(path, &c), CB_EUSAGE);
    assert_null(c);
    snprintf(path, sizeof path, "%s/run.csv", fx->dir);
    assert_int_equal(cb_csv_open(path, &c), CB_OK);
    cb_csv_result(c, &fx->a);
    cb_csv_abort(c);
    assert_int_equal(entries_in(fx->dir), 0);
}


/* -N 0: the window keeps the latest cycles, oldest first, however many ran. */
static void test_cycles_window(void **state)
{
    (void)state;
    struct cb_cycles *c = calloc(1, sizeof *c);
    assert_non_null(c);
    for (int i = 0; i < CB_CYCLE_WINDOW + 44; i++) {
        struct cb_summary s = {.total_wrong = i, .avg_busbw = i * 0.5};
        cb_cycles_add(c, &s);
        assert_int_equal(c->n, i + 1 < CB_CYCLE_WINDOW ? i + 1 : CB_CYCLE_WINDOW);
        assert_int_equal(cb_cycles_at(c, c->n - 1)->index, i);
    }
    assert_int_equal(c->done, CB_CYCLE_WINDOW + 44);
    for (int i = 0; i < CB_CYCLE_WINDOW; i++) {
        const struct cb_cycle *e = cb_cycles_at(c, i);
        assert_int_equal(e->index, 44 + i);
        assert_int_equal(e->s.total_wrong, 44 + i);
        assert_int_equal(strlen(e->end_time), strlen("2024-01-02T03:04:05Z"));
    }
    free(c);
}

/* ---- the writer (report/outfile) ---- */

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* The one entry of `dir` whose name starts with `prefix`, copied to name; how many there are. */
static int entries_starting(const char *dir, const char *prefix, char *name, size_t cap)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 && n++ == 0)
            snprintf(name, cap, "%s", e->d_name);
    if (d)
        closedir(d);
    return n;
}

static void expect_refused(const char *path, const char *victim_text)
{
    struct cb_outfile o;
    assert_int_equal(cb_outfile_open(path, "JSON", "-J", &o), CB_EUSAGE);
    assert_int_equal(cb_outfile_open_named(path, "JSON", "-J", &o), CB_EUSAGE);
    assert_int_equal(cb_outfile_check(path, "JSON", "-J"), CB_EUSAGE);
    if (victim_text) {
        char *text = read_file(path);
        assert_string_equal(text, victim_text);
        free(text);
    }
}

/* A FIFO, a socket, a symbolic link (to a file or dangling), a directory and
 * a device node stay what they are: refused at open, before any run. */
static void test_outfile_refuses_what_is_not_a_file(void **state)
{
    struct fixture *fx = *state;
    char path[256], victim[256];
    snprintf(path, sizeof path, "%s/fifo", fx->dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    expect_refused(path, NULL);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));

    snprintf(victim, sizeof victim, "%s/victim", fx->dir);
    write_text(victim, "precious\n");
    snprintf(path, sizeof path, "%s/link", fx->dir);
    assert_int_equal(symlink(victim, path), 0);
    expect_refused(path, "precious\n");
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    snprintf(path, sizeof path, "%s/dangling", fx->dir);
    assert_int_equal(symlink("nowhere", path), 0);
    expect_refused(path, NULL);

    snprintf(path, sizeof path, "%s/sock", fx->dir);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(path) < sizeof sa.sun_path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int sock = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(sock, (struct sockaddr *)&sa, sizeof sa), 0);
    expect_refused(path, NULL);
    close(sock);

    expect_refused(fx->dir, NULL);
    snprintf(path, sizeof path, "%s/", fx->dir);
    expect_refused(path, NULL);
    if (geteuid() == 0) {   /* a null device node made here, never the real /dev */
        snprintf(path, sizeof path, "%s/null", fx->dir);
        assert_int_equal(mknod(path, S_IFCHR | 0600, makedev(1, 3)), 0);
        expect_refused(path, NULL);
        assert_int_equal(lstat(path, &st), 0);
        assert_true(S_ISCHR(st.st_mode));
    }
    /* fifo, victim, link, dangling, sock (and null): no temporary file */
    assert_int_equal(entries_in(fx->dir), geteuid() == 0 ? 6 : 5);
}

/* A regular file is replaced whole; while it is written, no name exists. */
static void test_outfile_replaces_a_file_whole(void **state)
{
    struct fixture *fx = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/out.txt", fx->dir);
    write_text(path, "old\n");
    struct cb_outfile o;
    assert_int_equal(cb_outfile_open(path, "JSON", "-J", &o), CB_OK);
    fputs("new\n", o.f);
    assert_int_equal(entries_in(fx->dir), 1);   /* the old file only */
    char *text = read_file(path);
    assert_string_equal(text, "old\n");
    free(text);
    assert_int_equal(cb_outfile_commit(&o), CB_OK);
    text = read_file(path);
    assert_string_equal(text, "new\n");
    free(text);
    assert_int_equal(entries_in(fx->dir), 1);
}

/* Where the temporary file has a name, nobody can guess it: not the old
 * "<path>.tmp.<pid>", different each time; and a link planted at the
 * guessable name is neither followed nor removed. */
static void test_outfile_named_temp_cannot_be_planted(void **state)
{
    struct fixture *fx = *state;
    char path[256], guess[300], victim[256], name1[256], name2[256];
    snprintf(path, sizeof path, "%s/out.json", fx->dir);
    snprintf(victim, sizeof victim, "%s/victim", fx->dir);
    write_text(victim, "precious\n");
    snprintf(guess, sizeof guess, "%s.tmp.%ld", path, (long)getpid());
    assert_int_equal(symlink(victim, guess), 0);
    struct cb_outfile a, b;
    assert_int_equal(cb_outfile_open_named(path, "JSON", "-J", &a), CB_OK);
    assert_int_equal(entries_starting(fx->dir, "out.json.tmp.", name1, sizeof name1), 2);
    assert_int_equal(cb_outfile_open_named(path, "JSON", "-J", &b), CB_OK);
    assert_int_equal(entries_starting(fx->dir, "out.json.tmp.", name1, sizeof name1), 3);
    assert_string_not_equal(a.tmp_path, b.tmp_path);
    assert_string_not_equal(a.tmp_path, guess);
    assert_string_not_equal(b.tmp_path, guess);
    snprintf(name1, sizeof name1, "%s", a.tmp_path);
    snprintf(name2, sizeof name2, "%s", b.tmp_path);
    struct stat st;
    assert_int_equal(lstat(name1, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    fputs("written\n", a.f);
    cb_outfile_abort(&b);
    assert_int_equal(cb_outfile_commit(&a), CB_OK);
    assert_int_not_equal(access(name1, F_OK), 0);
    assert_int_not_equal(access(name2, F_OK), 0);
    char *text = read_file(victim);
    assert_string_equal(text, "precious\n");
    free(text);
    text = read_file(path);
    assert_string_equal(text, "written\n");
    free(text);
    assert_int_equal(lstat(guess, &st), 0);   /* not ours: left alone */
    assert_true(S_ISLNK(st.st_mode));
}

/* A write that fails (here the file size limit, as a full disk would) is
 * CB_ESYS at commit, the old file stays, and no temporary file is left. */
static void fill_and_fail(const char *path, int named)
{
    struct cb_outfile o;
    assert_int_equal(named ? cb_outfile_open_named(path, "JSON", "-J", &o) : cb_outfile_open(path, "JSON", "-J", &o),
                     CB_OK);
    for (int i = 0; i < 4096; i++)
        fputs("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n", o.f);
    assert_int_equal(cb_outfile_commit(&o), CB_ESYS);
}

static void test_outfile_failed_write_leaves_nothing(void **state)
{
    struct fixture *fx = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/out.json", fx->dir);
    write_text(path, "old\n");
    struct rlimit saved, small = {.rlim_cur = 16384};
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    small.rlim_max = saved.rlim_max;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);   /* the write fails with EFBIG instead */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    fill_and_fail(path, 0);
    fill_and_fail(path, 1);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, old_handler);
    char *text = read_file(path);
    assert_string_equal(text, "old\n");
    free(text);
    assert_int_equal(entries_in(fx->dir), 1);
}

/* A target replaced by something else while the run went on is not replaced in turn. */
static void test_outfile_commit_rechecks_the_target(void **state)
{
    struct fixture *fx = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/out.json", fx->dir);
    struct cb_outfile o;
    assert_int_equal(cb_outfile_open(path, "JSON", "-J", &o), CB_OK);
    fputs("data\n", o.f);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(cb_outfile_commit(&o), CB_ESYS);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    assert_int_equal(entries_in(fx->dir), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_row_fields_parse_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_columns_line_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_numbers_fit_their_columns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_per_iter_columns_without_samples, setup, teardown),
        cmocka_unit_test_setup_teardown(test_summary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_footer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_unwritable_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_abort_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csv_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csv_unwritable_and_abort, setup, teardown),
        cmocka_unit_test(test_cycles_window),
        cmocka_unit_test_setup_teardown(test_outfile_refuses_what_is_not_a_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outfile_replaces_a_file_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outfile_named_temp_cannot_be_planted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outfile_failed_write_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outfile_commit_rechecks_the_target, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
