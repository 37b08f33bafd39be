/* Placement on synthetic hwloc topologies (tests/topo/, see make-topos.sh):
 * 2s4n = 2 packages x 4 cores, NICs mlx5_0,1 on package 0 and mlx5_2,3 on
 * package 1, a GPU beside mlx5_0 and mlx5_2; 2s0n = the same with no I/O;
 * 2s8n = 2 packages x 8 cores, NICs mlx5_0-3 on package 0 and mlx5_4-7 on
 * package 1, a GPU beside each (a DGX-like server). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "topo/topo.h"
#include "topo/topo_xml.h"

#define TOPO_DIR "tests/topo/"   /* the tests run from the repository's top */

struct fixture {
    struct cb_topo *t;
    struct cb_topo_plan plan;
};

static int load(void **state, const char *file)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f || cb_topo_load(file, &f->t) != CB_OK) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int setup_2s4n(void **state) { return load(state, TOPO_DIR "2s4n.xml"); }
static int setup_2s0n(void **state) { return load(state, TOPO_DIR "2s0n.xml"); }
static int setup_2s8n(void **state) { return load(state, TOPO_DIR "2s8n.xml"); }

static int teardown(void **state)
{
    struct fixture *f = *state;
    cb_topo_plan_free(&f->plan);
    cb_topo_free(f->t);
    free(f);
    return 0;
}

static cb_status place(struct fixture *f, int n, int bind, const char *hca, const char *const *cpus)
{
    struct cb_topo_request req = {n, bind, hca, cpus, 0};
    cb_topo_plan_free(&f->plan);
    return cb_topo_plan(f->t, &req, &f->plan);
}

static cb_status place_channels(struct fixture *f, int n, const char *hca, int channels)
{
    struct cb_topo_request req = {n, CB_BIND_AUTO, hca, NULL, channels};
    cb_topo_plan_free(&f->plan);
    return cb_topo_plan(f->t, &req, &f->plan);
}

static int total_warnings(const struct cb_topo_plan *p)
{
    int n = 0;
    for (int r = 0; r < p->n; r++)
        n += p->ranks[r].nwarn;
    return n;
}

/* The package (0 or 1) of a single cpu list of 2s4n: cpus 0-3 or 4-7. */
static int package_of_cpus(const char *cpus)
{
    return atoi(cpus) >= 4;
}

static int package_of_nic(const char *nic)
{
    return strcmp(nic, "mlx5_2") == 0 || strcmp(nic, "mlx5_3") == 0;
}

static void four_ranks_get_distinct_local_nics(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(place(f, 4, CB_BIND_AUTO, NULL, NULL), CB_OK);
    assert_int_equal(f->plan.bind, CB_BIND_CORE);
    static const char *const want[] = {"mlx5_0", "mlx5_1", "mlx5_2", "mlx5_3"};
    for (int r = 0; r < 4; r++) {
        const struct cb_topo_rank *x = &f->plan.ranks[r];
        assert_string_equal(x->nic, want[r]);
        assert_int_equal(x->port, 1);
        assert_int_equal(x->dist, CB_DIST_NUMA);
        assert_int_equal(package_of_cpus(x->cpus), package_of_nic(x->nic));
        assert_true(x->bound_here);
        for (int q = 0; q < r; q++)
            assert_string_not_equal(x->cpus, f->plan.ranks[q].cpus);
    }
    assert_string_equal(f->plan.ranks[0].netdev, "ib0");
    assert_int_equal(total_warnings(&f->plan), 0);
}

static void eight_ranks_two_per_nic_without_warning(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(place(f, 8, CB_BIND_AUTO, NULL, NULL), CB_OK);
    int per_nic[4] = {0};
    for (int r = 0; r < 8; r++) {
        const struct cb_topo_rank *x = &f->plan.ranks[r];
        char want[8];
        snprintf(want, sizeof want, "%d", r);   /* one core each, in order */
        assert_string_equal(x->cpus, want);
        assert_int_equal(x->dist, CB_DIST_NUMA);
        per_nic[x->nic[5] - '0']++;
    }
    for (int k = 0; k < 4; k++)
        assert_int_equal(per_nic[k], 2);
    assert_int_equal(total_warnings(&f->plan), 0);
}

/* A rail map that leaves usable NICs idle: one note for the host naming
 * them and what to do; none when every NIC carries a rank, or a channel of
 * a rank striping over --hca. */
static void idle_nics_are_named_once_per_host(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(place_channels(f, 2, NULL, 0), CB_OK);
    assert_true(f->plan.rails_checked);
    assert_string_equal(f->plan.rails_note, "RDMA NICs mlx5_1:1, mlx5_3:1 carry no traffic: the host's 2 ranks use "
                                            "mlx5_0:1, mlx5_2:1 of its 4: start one rank per NIC (`mpirun --map-by "
                                            "ppr:4:node`)");
    assert_int_equal(place_channels(f, 4, NULL, 0), CB_OK);
    assert_string_equal(f->plan.rails_note, "");
    assert_int_equal(place_channels(f, 8, NULL, 0), CB_OK);
    assert_string_equal(f->plan.rails_note, "");
    /* --hca: 3 ranks on a list of all 4 leave the last idle */
    assert_int_equal(place_channels(f, 3, "mlx5_0,mlx5_1,mlx5_2,mlx5_3", 0), CB_OK);
    assert_non_null(strstr(f->plan.rails_note, "RDMA NIC mlx5_3:1 carries no traffic: the host's 3 ranks use "));
    /* one rank striping over 4: its 2 channels reach 2 NICs, 4 channels all */
    assert_int_equal(place_channels(f, 1, "mlx5_0,mlx5_1,mlx5_2,mlx5_3", 2), CB_OK);
    assert_non_null(strstr(f->plan.rails_note, "RDMA NICs mlx5_2:1, mlx5_3:1 carry no traffic: the host's 1 rank "
                                               "uses mlx5_0:1, mlx5_1:1 of its 4: "));
    assert_non_null(strstr(f->plan.rails_note, "--channels 4"));
    assert_int_equal(place_channels(f, 1, "mlx5_0,mlx5_1,mlx5_2,mlx5_3", 4), CB_OK);
    assert_string_equal(f->plan.rails_note, "");
    /* a name the topology does not know: the transport checks instead */
    assert_int_equal(place_channels(f, 2, "mlx5_0,rxe0", 0), CB_OK);
    assert_false(f->plan.rails_checked);
    assert_string_equal(f->plan.rails_note, "");
}

static void two_ranks_use_both_sockets(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(place(f, 2, CB_BIND_AUTO, NULL, NULL), CB_OK);
    assert_string_equal(f->plan.ranks[0].nic, "mlx5_0");
    assert_string_equal(f->plan.ranks[0].cpus, "0");
    assert_string_equal(f->plan.ranks[1].nic, "mlx5_2");
    assert_string_equal(f->plan.ranks[1].cpus, "4");
    assert_int_equal(total_warnings(&f->plan), 0);
}

static void hca_on_the_other_socket_warns_remote(void **state)
{
    struct fixture *f = *state;
    const char *const cpus[] = {"0-3", "0-3"};   /* the launcher bound both to socket 0 */
    assert_int_equal(place(f, 2, CB_BIND_AUTO, "mlx5_2,mlx5_3", cpus), CB_OK);
    assert_int_equal(f->plan.bind, CB_BIND_NONE);
    for (int r = 0; r < 2; r++) {
        const struct cb_topo_rank *x = &f->plan.ranks[r];
        assert_string_equal(x->nic, r ? "mlx5_3" : "mlx5_2");
        assert_string_equal(x->cpus, "0-3");
        assert_int_equal(x->dist, CB_DIST_REMOTE);
        assert_int_equal(x->nwarn, 1);
        assert_non_null(strstr(x->warn[0], "is on package 1 but the rank's cpus 0-3 are on package 0"));
        assert_non_null(strstr(x->warn[0], "inter-socket"));
        assert_non_null(strstr(x->warn[0], "--hca"));
        assert_non_null(strstr(x->warn[0], "mlx5_0, mlx5_1"));   /* what to use instead */
    }
}

static void launcher_bound_ranks_take_the_closest_nics(void **state)
{
    struct fixture *f = *state;
    const char *const cpus[] = {"4", "5"};
    assert_int_equal(place(f, 2, CB_BIND_AUTO, NULL, cpus), CB_OK);
    assert_string_equal(f->plan.ranks[0].nic, "mlx5_2");
    assert_string_equal(f->plan.ranks[1].nic, "mlx5_3");
    assert_false(f->plan.ranks[0].bound_here);
    assert_int_equal(total_warnings(&f->plan), 0);
}

static void forced_shared_nic_warns_while_others_idle(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(place(f, 2, CB_BIND_AUTO, "mlx5_0", NULL), CB_OK);
    for (int r = 0; r < 2; r++) {
        const struct cb_topo_rank *x = &f->plan.ranks[r];
        assert_string_equal(x->nic, "mlx5_0");
        assert_int_equal(x->dist, CB_DIST_NUMA);   /* bound near it: no remote warning */
        assert_int_equal(x->nwarn, 1);
        assert_non_null(strstr(x->warn[0], "shares NIC mlx5_0 with local rank"));
        assert_non_null(strstr(x->warn[0], "mlx5_1, mlx5_2, mlx5_3 are idle"));
        assert_non_null(strstr(x->warn[0], "--hca mlx5_0,mlx5_1,mlx5_2,mlx5_3"));
    }
    assert_non_null(strstr(f->plan.ranks[0].warn[0], "local rank 1 "));
}

static void launcher_packing_one_socket_warns_sharing(void **state)
{
    struct fixture *f = *state;
    const char *const cpus[] = {"0-3", "0-3", "0-3", "0-3"};
    assert_int_equal(place(f, 4, CB_BIND_AUTO, NULL, cpus), CB_OK);
    for (int r = 0; r < 4; r++) {
        assert_string_equal(f->plan.ranks[r].nic, r < 2 ? "mlx5_0" : "mlx5_1");
        assert_int_equal(f->plan.ranks[r].nwarn, 1);
        assert_non_null(strstr(f->plan.ranks[r].warn[0], "mlx5_2, mlx5_3 are idle"));
        assert_non_null(strstr(f->plan.ranks[r].warn[0], "--bind core"));
    }
    /* letting collbench bind spreads them and the warning goes away */
    assert_int_equal(place(f, 4, CB_BIND_CORE, NULL, cpus), CB_OK);
    assert_int_equal(total_warnings(&f->plan), 0);
}

static void sharing_every_nic_is_no_warning(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(place(f, 8, CB_BIND_AUTO, "mlx5_0,mlx5_1,mlx5_2,mlx5_3", NULL), CB_OK);
    assert_int_equal(total_warnings(&f->plan), 0);
    assert_string_equal(f->plan.ranks[5].nic, "mlx5_1");   /* entry 5 mod 4, as verbs does */
    assert_int_equal(cb_topo_plan_nics(&f->plan), 4);      /* 8 ranks on 4: the run warns of sharing */
}

/* The NICs a plan uses: one per rank where --hca gives enough, fewer where ranks share. */
static void plan_counts_its_nics(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(place(f, 4, CB_BIND_AUTO, "mlx5_0,mlx5_1,mlx5_2,mlx5_3", NULL), CB_OK);
    assert_int_equal(cb_topo_plan_nics(&f->plan), 4);
    assert_int_equal(f->plan.nrails, 4);   /* what hosts compare: --hca's candidates */
    assert_string_equal(f->plan.rail_names, "mlx5_0..3");
    assert_int_equal(place(f, 3, CB_BIND_AUTO, "mlx5_2", NULL), CB_OK);
    assert_int_equal(cb_topo_plan_nics(&f->plan), 1);
    assert_int_equal(f->plan.nrails, 1);
    assert_string_equal(f->plan.rail_names, "mlx5_2");
    assert_int_equal(place(f, 1, CB_BIND_AUTO, "^mlx5_1", NULL), CB_OK);
    assert_int_equal(f->plan.nrails, 3);
    assert_string_equal(f->plan.rail_names, "mlx5_0,mlx5_2,mlx5_3");
    assert_int_equal(place(f, 2, CB_BIND_AUTO, "mlx5_0,rxe0", NULL), CB_OK);
    assert_int_equal(f->plan.nrails, 2);
    assert_string_equal(f->plan.rail_names, "mlx5_0,rxe0");
}

static void no_nic_at_all_places_cpus_only(void **state)
{
    struct fixture *f = *state;
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(cb_topo_nnics(f->t), 0);
    assert_int_equal(place(f, 4, CB_BIND_AUTO, NULL, NULL), CB_OK);
    for (int r = 0; r < 4; r++) {
        assert_string_equal(f->plan.ranks[r].nic, "");
        assert_int_equal(f->plan.ranks[r].dist, CB_DIST_UNKNOWN);
    }
    assert_int_equal(total_warnings(&f->plan), 0);
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    cb_topo_print_machine(f->t, out);
    cb_topo_print_plan(&f->plan, cb_topo_host(f->t), out);
    fclose(out);
    assert_non_null(strstr(text, "no RDMA NIC"));
    assert_non_null(strstr(text, "#   local rank 3 on 2s0n: cpus=3 numa=0 nic=none dist=-"));
    free(text);
}

static void numa_binding_takes_the_nics_node(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(place(f, 3, CB_BIND_NUMA, NULL, NULL), CB_OK);
    assert_string_equal(f->plan.ranks[0].cpus, "0-3");
    assert_string_equal(f->plan.ranks[1].cpus, "0-3");
    assert_string_equal(f->plan.ranks[2].cpus, "4-7");
    assert_string_equal(f->plan.ranks[2].numa, "1");
    assert_string_equal(f->plan.ranks[2].nic, "mlx5_2");
}

static void oversubscribed_ranks_stay_unbound(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(place(f, 12, CB_BIND_AUTO, NULL, NULL), CB_OK);
    assert_int_equal(f->plan.bind, CB_BIND_NONE);
    assert_non_null(strstr(f->plan.why, "oversubscribed"));
    for (int r = 0; r < 12; r++) {
        assert_false(f->plan.ranks[r].bound_here);
        assert_string_equal(f->plan.ranks[r].cpus, "0-7");
        assert_int_equal(f->plan.ranks[r].dist, CB_DIST_UNBOUND);
    }
    assert_int_equal(total_warnings(&f->plan), 0);
}

static void map_names_devices_and_gpus(void **state)
{
    struct fixture *f = *state;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    cb_topo_print_machine(f->t, out);
    fclose(out);
    assert_non_null(strstr(text, "2 package(s), 2 NUMA node(s), 8 core(s), 8 cpu(s)"));
    assert_non_null(strstr(text, "#   NIC mlx5_2 (ib2, 0000:81:00.0): package 1, NUMA 1, cpus 4-7, port 1 ACTIVE"));
    assert_non_null(strstr(text, "#   Ethernet eno1 (0000:10:1f.6): package 0"));
    assert_non_null(strstr(text, "GPU cuda0/nvml0 (0000:12:00.0): package 0, NUMA 0, cpus 0-3, "
                                 "nearest NIC mlx5_0 (pci-switch)"));
    assert_non_null(strstr(text, "nearest NIC mlx5_2 (pci-switch)"));
    free(text);
}

static void hca_port_and_unknown_device(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(place(f, 2, CB_BIND_AUTO, "mlx5_1:2,rxe0", NULL), CB_OK);
    assert_string_equal(f->plan.ranks[0].nic, "mlx5_1");
    assert_int_equal(f->plan.ranks[0].port, 2);
    assert_string_equal(f->plan.ranks[1].nic, "rxe0");   /* not in the topology: left to verbs */
    assert_int_equal(f->plan.ranks[1].port, 1);
    assert_int_equal(f->plan.ranks[1].dist, CB_DIST_UNKNOWN);
}

static void bad_requests_are_usage_errors(void **state)
{
    struct fixture *f = *state;
    struct cb_topo *t = NULL;
    const char *const nowhere[] = {"99"}, *const junk[] = {"zero"};
    assert_int_equal(place(f, 1, CB_BIND_AUTO, "mlx5_0:0", NULL), CB_EUSAGE);
    assert_int_equal(place(f, 2, CB_BIND_AUTO, "mlx5_0,,mlx5_1", NULL), CB_EUSAGE);
    assert_int_equal(place(f, 1, CB_BIND_AUTO, ":1", NULL), CB_EUSAGE);
    assert_int_equal(place(f, 1, CB_BIND_AUTO, NULL, nowhere), CB_EUSAGE);
    assert_int_equal(place(f, 1, CB_BIND_AUTO, NULL, junk), CB_EUSAGE);
    assert_int_equal(place(f, 0, CB_BIND_AUTO, NULL, NULL), CB_EUSAGE);
    assert_int_equal(cb_topo_load(TOPO_DIR "missing.xml", &t), CB_EUSAGE);
    assert_int_equal(cb_topo_load("Makefile", &t), CB_EUSAGE);
    assert_int_equal(cb_bind_parse("socket"), -1);
    assert_int_equal(cb_bind_parse("numa"), CB_BIND_NUMA);
}

static void describe_fills_the_header_props(void **state)
{
    struct fixture *f = *state;
    struct cb_props props = {0};
    char line[512];
    assert_int_equal(place(f, 4, CB_BIND_AUTO, NULL, NULL), CB_OK);
    cb_topo_describe(&f->plan.ranks[2], &props);
    assert_int_equal(props.n, 4);
    assert_string_equal(props.kv[0].key, "cpus");
    assert_string_equal(props.kv[0].val, "4");
    assert_string_equal(props.kv[1].val, "1");
    assert_string_equal(props.kv[2].key, "nic");
    assert_string_equal(props.kv[2].val, "mlx5_2:1");
    assert_string_equal(props.kv[3].key, "nic_dist");
    assert_string_equal(props.kv[3].val, "numa");
    props.n = CB_PROPS_MAX - 1;   /* a transport that left one entry: all in one */
    cb_topo_describe(&f->plan.ranks[2], &props);
    assert_int_equal(props.n, CB_PROPS_MAX);
    assert_string_equal(props.kv[CB_PROPS_MAX - 1].key, "topo");
    cb_topo_format_rank(&f->plan.ranks[2], line, sizeof line);
    assert_string_equal(props.kv[CB_PROPS_MAX - 1].val, line);
    assert_string_equal(line, "cpus=4 numa=1 nic=mlx5_2:1 dist=numa");
    cb_topo_describe(&f->plan.ranks[2], &props);   /* full: nothing added */
    assert_int_equal(props.n, CB_PROPS_MAX);
}

/* ---- 2s8n: 8 NICs, 4 per socket ---- */

/* The package of a single cpu list of 2s8n (cpus 0-7, 8-15), and of a NIC. */
static int package_of_cpus_8n(const char *cpus)
{
    return atoi(cpus) >= 8;
}

static int package_of_nic_8n(const char *nic)
{
    return atoi(nic + strlen("mlx5_")) >= 4;
}

/* The plan's map as the run header and `collbench topo` print it. */
static char *plan_text(const struct fixture *f)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    cb_topo_print_plan(&f->plan, cb_topo_host(f->t), out);
    fclose(out);
    return text;
}

/* One rank per NIC: rank r on mlx5_r, bound to a core of that NIC's socket,
 * every rail used, no warning and no idle NIC. */
static void eight_ranks_one_nic_each_on_its_socket(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(cb_topo_nnics(f->t), 8);
    assert_int_equal(place(f, 8, CB_BIND_AUTO, NULL, NULL), CB_OK);
    assert_int_equal(f->plan.bind, CB_BIND_CORE);
    for (int r = 0; r < 8; r++) {
        const struct cb_topo_rank *x = &f->plan.ranks[r];
        char want[8];
        snprintf(want, sizeof want, "mlx5_%d", r);
        assert_string_equal(x->nic, want);
        assert_int_equal(x->dist, CB_DIST_NUMA);
        assert_int_equal(package_of_cpus_8n(x->cpus), package_of_nic_8n(x->nic));
        for (int q = 0; q < r; q++)
            assert_string_not_equal(x->cpus, f->plan.ranks[q].cpus);
    }
    assert_int_equal(cb_topo_plan_nics(&f->plan), 8);
    assert_int_equal(total_warnings(&f->plan), 0);
    assert_true(f->plan.rails_checked);
    assert_string_equal(f->plan.rails_note, "");
    char *text = plan_text(f);
    assert_string_equal(text, "# Placement of 8 local rank(s): bind=core (default: one core per rank)\n"
                              "#   local rank 0 on 2s8n: cpus=0 numa=0 nic=mlx5_0:1 dist=numa\n"
                              "#   local rank 1 on 2s8n: cpus=1 numa=0 nic=mlx5_1:1 dist=numa\n"
                              "#   local rank 2 on 2s8n: cpus=2 numa=0 nic=mlx5_2:1 dist=numa\n"
                              "#   local rank 3 on 2s8n: cpus=3 numa=0 nic=mlx5_3:1 dist=numa\n"
                              "#   local rank 4 on 2s8n: cpus=8 numa=1 nic=mlx5_4:1 dist=numa\n"
                              "#   local rank 5 on 2s8n: cpus=9 numa=1 nic=mlx5_5:1 dist=numa\n"
                              "#   local rank 6 on 2s8n: cpus=10 numa=1 nic=mlx5_6:1 dist=numa\n"
                              "#   local rank 7 on 2s8n: cpus=11 numa=1 nic=mlx5_7:1 dist=numa\n");
    free(text);
}

/* Ranks the launcher bound one per core take a NIC of their own socket,
 * spread over its four NICs, whatever the rank order. */
static void launcher_bound_eight_take_their_sockets_nics(void **state)
{
    struct fixture *f = *state;
    const char *const cpus[] = {"8", "9", "10", "11", "0", "1", "2", "3"};
    assert_int_equal(place(f, 8, CB_BIND_AUTO, NULL, cpus), CB_OK);
    assert_int_equal(f->plan.bind, CB_BIND_NONE);
    static const char *const want[] = {"mlx5_4", "mlx5_5", "mlx5_6", "mlx5_7",
                                       "mlx5_0", "mlx5_1", "mlx5_2", "mlx5_3"};
    for (int r = 0; r < 8; r++) {
        assert_string_equal(f->plan.ranks[r].nic, want[r]);
        assert_string_equal(f->plan.ranks[r].cpus, cpus[r]);
        assert_int_equal(f->plan.ranks[r].dist, CB_DIST_NUMA);
    }
    assert_int_equal(total_warnings(&f->plan), 0);
    assert_string_equal(f->plan.rails_note, "");
}

/* 4 ranks on 8 NICs: every other NIC, two per socket, and one note naming
 * the 4 idle ones and the fix; one rank striping over all 8 with 8
 * channels leaves none idle, with 4 channels the last 4. */
static void four_ranks_on_eight_nics_name_the_idle_four(void **state)
{
    struct fixture *f = *state;
    static const char *const all8 = "mlx5_0,mlx5_1,mlx5_2,mlx5_3,mlx5_4,mlx5_5,mlx5_6,mlx5_7";
    assert_int_equal(place_channels(f, 4, NULL, 0), CB_OK);
    static const char *const want[] = {"mlx5_0", "mlx5_2", "mlx5_4", "mlx5_6"};
    for (int r = 0; r < 4; r++) {
        assert_string_equal(f->plan.ranks[r].nic, want[r]);
        assert_int_equal(package_of_cpus_8n(f->plan.ranks[r].cpus), r >= 2);
        assert_int_equal(f->plan.ranks[r].dist, CB_DIST_NUMA);
    }
    assert_int_equal(total_warnings(&f->plan), 0);   /* nothing shared: per host, not per rank */
    assert_true(f->plan.rails_checked);
    assert_string_equal(f->plan.rails_note,
                        "RDMA NICs mlx5_1:1, mlx5_3:1, mlx5_5:1, mlx5_7:1 carry no traffic: the host's 4 ranks use "
                        "mlx5_0:1, mlx5_2:1, mlx5_4:1, mlx5_6:1 of its 8: start one rank per NIC (`mpirun "
                        "--map-by ppr:8:node`)");
    char *text = plan_text(f);
    assert_non_null(strstr(text, "\n#   Idle: RDMA NICs mlx5_1:1, mlx5_3:1, mlx5_5:1, mlx5_7:1 carry no traffic"));
    free(text);
    assert_int_equal(place_channels(f, 1, all8, 8), CB_OK);
    assert_string_equal(f->plan.rails_note, "");
    assert_int_equal(place_channels(f, 1, all8, 4), CB_OK);
    assert_non_null(strstr(f->plan.rails_note, "RDMA NICs mlx5_4:1, mlx5_5:1, mlx5_6:1, mlx5_7:1 carry no "
                                               "traffic: the host's 1 rank uses mlx5_0:1, mlx5_1:1, mlx5_2:1, "
                                               "mlx5_3:1 of its 8: "));
    assert_non_null(strstr(f->plan.rails_note, "--channels 8"));
    /* one rank without --hca: one NIC, and the note offers striping */
    assert_int_equal(place_channels(f, 1, NULL, 0), CB_OK);
    assert_non_null(strstr(f->plan.rails_note, "or let the rank drive them all: --hca mlx5_0:1,mlx5_1:1,"
                                               "mlx5_2:1,mlx5_3:1,mlx5_4:1,mlx5_5:1,mlx5_6:1,mlx5_7:1 --channels 8"));
}

/* 16 ranks on 8 NICs: two per NIC, neighbours together on the NIC's
 * socket, no warning (every NIC is in use); a --hca of 2 NICs leaves 6
 * idle: every rank warns of sharing, and the host note says to list all. */
static void sixteen_ranks_share_eight_nics_in_pairs(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(place(f, 16, CB_BIND_AUTO, NULL, NULL), CB_OK);
    assert_int_equal(f->plan.bind, CB_BIND_CORE);
    for (int r = 0; r < 16; r++) {
        const struct cb_topo_rank *x = &f->plan.ranks[r];
        char want[8], cpu[8];
        snprintf(want, sizeof want, "mlx5_%d", r / 2);
        snprintf(cpu, sizeof cpu, "%d", r);
        assert_string_equal(x->nic, want);
        assert_string_equal(x->cpus, cpu);
        assert_int_equal(x->dist, CB_DIST_NUMA);
    }
    assert_int_equal(cb_topo_plan_nics(&f->plan), 8);   /* 16 ranks on 8: the run's sharing condition */
    assert_int_equal(total_warnings(&f->plan), 0);
    assert_string_equal(f->plan.rails_note, "");
    /* package 0's 8 cores go to the first 8 ranks; the others are bound
     * on package 1, away from their NIC, and are told the NICs there */
    assert_int_equal(place(f, 16, CB_BIND_AUTO, "mlx5_0,mlx5_1", NULL), CB_OK);
    for (int r = 0; r < 16; r++) {
        const struct cb_topo_rank *x = &f->plan.ranks[r];
        int remote = r >= 8;
        assert_string_equal(x->nic, r % 2 ? "mlx5_1" : "mlx5_0");
        assert_int_equal(package_of_cpus_8n(x->cpus), remote);
        assert_int_equal(x->nwarn, 1 + remote);
        if (remote)
            assert_non_null(strstr(x->warn[0], "name a NIC of package 1 instead (mlx5_4, mlx5_5, mlx5_6, mlx5_7)"));
        assert_non_null(strstr(x->warn[remote], "mlx5_2, mlx5_3, mlx5_4, mlx5_5, mlx5_6, mlx5_7 are idle"));
        assert_non_null(strstr(x->warn[remote], "--hca mlx5_0,mlx5_1,mlx5_2,mlx5_3,mlx5_4,mlx5_5,mlx5_6,mlx5_7"));
    }
    assert_non_null(strstr(f->plan.rails_note, "the host's 16 ranks use mlx5_0:1, mlx5_1:1 of its 8: list every "
                                               "NIC in --hca"));
}

/* Hosts with different NIC counts (2s8n beside 2s4n) place each host on
 * its own NICs: with 8 ranks per host, local rank i is on mlx5_i of the
 * 8-NIC host and on mlx5_(i/2) of the 4-NIC one, which shares every NIC
 * without a warning (all of its NICs carry traffic); with 4 ranks, the
 * 8-NIC host says it leaves 4 idle and the 4-NIC host says nothing. */
static void uneven_hosts_each_use_their_own_nics(void **state)
{
    struct fixture *eight = *state, four = {0};
    assert_int_equal(cb_topo_load(TOPO_DIR "2s4n.xml", &four.t), CB_OK);
    assert_int_equal(place(eight, 8, CB_BIND_AUTO, NULL, NULL), CB_OK);
    assert_int_equal(place(&four, 8, CB_BIND_AUTO, NULL, NULL), CB_OK);
    for (int r = 0; r < 8; r++) {
        char want8[8], want4[8];
        snprintf(want8, sizeof want8, "mlx5_%d", r);
        snprintf(want4, sizeof want4, "mlx5_%d", r / 2);
        assert_string_equal(eight->plan.ranks[r].nic, want8);
        assert_string_equal(four.plan.ranks[r].nic, want4);
        /* both hosts keep local rank i on the same socket */
        assert_int_equal(package_of_cpus_8n(eight->plan.ranks[r].cpus), package_of_cpus(four.plan.ranks[r].cpus));
    }
    assert_int_equal(cb_topo_plan_nics(&eight->plan), 8);
    assert_int_equal(cb_topo_plan_nics(&four.plan), 4);
    /* the counts the hosts exchange, for rank 0 to compare (hosts_note) */
    assert_int_equal(eight->plan.nrails, 8);
    assert_string_equal(eight->plan.rail_names, "mlx5_0..7");
    assert_int_equal(four.plan.nrails, 4);
    assert_string_equal(four.plan.rail_names, "mlx5_0..3");
    assert_int_equal(total_warnings(&eight->plan) + total_warnings(&four.plan), 0);
    assert_string_equal(eight->plan.rails_note, "");
    assert_string_equal(four.plan.rails_note, "");
    assert_int_equal(place(eight, 4, CB_BIND_AUTO, NULL, NULL), CB_OK);
    assert_int_equal(place(&four, 4, CB_BIND_AUTO, NULL, NULL), CB_OK);
    assert_non_null(strstr(eight->plan.rails_note, "the host's 4 ranks use mlx5_0:1, mlx5_2:1, mlx5_4:1, "
                                                   "mlx5_6:1 of its 8"));
    assert_string_equal(four.plan.rails_note, "");
    cb_topo_plan_free(&four.plan);
    cb_topo_free(four.t);
}

static void this_machine_loads_and_places(void **state)
{
    (void)state;
    struct cb_topo *t = NULL;
    struct cb_topo_plan plan;
    struct cb_topo_request req = {2, CB_BIND_AUTO, NULL, NULL, 0};
    if (cb_topo_load(NULL, &t) != CB_OK)
        skip();
    assert_int_equal(cb_topo_plan(t, &req, &plan), CB_OK);
    assert_int_equal(plan.n, 2);
    assert_true(plan.ranks[0].cpus[0] != 0);
    cb_topo_plan_free(&plan);
    cb_topo_free(t);
}

/* A PU or NUMA node numbered in the billions is refused before hwloc sizes
 * its bitmaps by it (issue 18: 10 s and 830 MB per rank); PCI devices,
 * whose os_index encodes the bus address, are not bounded. */
static void huge_os_index_is_refused_before_hwloc(void **state)
{
    (void)state;
    int line;
    unsigned long v;
    const char pu[] = "<topology>\n<object type=\"Machine\" os_index=\"0\">\n"
                      "  <object type=\"PU\" os_index=\"2000000000\" cpuset=\"0x1\"/>\n";
    assert_int_equal(cb_topo_xml_scan(pu, sizeof pu - 1, &line, &v), -1);
    assert_int_equal(line, 3);
    const char numa[] = "<object os_index=\"99999999999999999999999999\" type=\"NUMANode\">";
    assert_int_equal(cb_topo_xml_scan(numa, sizeof numa - 1, &line, &v), -1);
    const char pci[] = "<object type=\"PCIDev\" os_index=\"4294967295\"><object type=\"PU\" os_index=\"1048576\">";
    assert_int_equal(cb_topo_xml_scan(pci, sizeof pci - 1, &line, &v), 0);
    const char cut[] = "<object type=\"PU\" os_index=\"99999999999";   /* no closing quote: hwloc refuses it */
    assert_int_equal(cb_topo_xml_scan(cut, sizeof cut - 1, &line, &v), 0);

    char path[] = "/tmp/collbench-topo-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *in = fopen(TOPO_DIR "2s0n.xml", "r"), *out = fdopen(fd, "w");
    char buf[4096];
    while (fgets(buf, sizeof buf, in)) {
        char *at = strstr(buf, "type=\"NUMANode\" os_index=\"0\"");
        if (at)
            fprintf(out, "%.*stype=\"NUMANode\" os_index=\"2000000000\"%s", (int)(at - buf), buf,
                    at + strlen("type=\"NUMANode\" os_index=\"0\""));
        else
            fputs(buf, out);
    }
    fclose(in);
    fclose(out);
    struct cb_topo *t = NULL;
    assert_int_equal(cb_topo_load(path, &t), CB_EUSAGE);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(huge_os_index_is_refused_before_hwloc),
        cmocka_unit_test_setup_teardown(four_ranks_get_distinct_local_nics, setup_2s4n, teardown),
        cmocka_unit_test_setup_teardown(eight_ranks_two_per_nic_without_warning, setup_2s4n, teardown),
        cmocka_unit_test_setup_teardown(two_ranks_use_both_sockets, setup_2s4n, teardown),
        cmocka_unit_test_setup_teardown(idle_nics_are_named_once_per_host, setup_2s4n, teardown),
        cmocka_unit_test_setup_teardown(hca_on_the_other_socket_warns_remote, setup_2s4n, teardown),
        cmocka_unit_test_setup_teardown(launcher_bound_ranks_take_the_closest_nics, setup_2s4n, teardown),
        cmocka_unit_test_setup_teardown(forced_shared_nic_warns_while_others_idle, setup_2s4n, teardown),
        cmocka_unit_test_setup_teardown(launcher_packing_one_socket_warns_sharing, setup_2s4n, teardown),
        cmocka_unit_test_setup_teardown(sharing_every_nic_is_no_warning, setup_2s4n, teardown),
        cmocka_unit_test_setup_teardown(plan_counts_its_nics, setup_2s4n, teardown),
        cmocka_unit_test_setup_teardown(no_nic_at_all_places_cpus_only, setup_2s0n, teardown),
        cmocka_unit_test_setup_teardown(numa_binding_takes_the_nics_node, setup_2s4n, teardown),
        cmocka_unit_test_setup_teardown(oversubscribed_ranks_stay_unbound, setup_2s4n, teardown),
        cmocka_unit_test_setup_teardown(map_names_devices_and_gpus, setup_2s4n, teardown),
        cmocka_unit_test_setup_teardown(hca_port_and_unknown_device, setup_2s4n, teardown),
        cmocka_unit_test_setup_teardown(bad_requests_are_usage_errors, setup_2s4n, teardown),
        cmocka_unit_test_setup_teardown(describe_fills_the_header_props, setup_2s4n, teardown),
        cmocka_unit_test_setup_teardown(eight_ranks_one_nic_each_on_its_socket, setup_2s8n, teardown),
        cmocka_unit_test_setup_teardown(launcher_bound_eight_take_their_sockets_nics, setup_2s8n, teardown),
        cmocka_unit_test_setup_teardown(four_ranks_on_eight_nics_name_the_idle_four, setup_2s8n, teardown),
        cmocka_unit_test_setup_teardown(sixteen_ranks_share_eight_nics_in_pairs, setup_2s8n, teardown),
        cmocka_unit_test_setup_teardown(uneven_hosts_each_use_their_own_nics, setup_2s8n, teardown),
        cmocka_unit_test(this_machine_loads_and_places),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
