/* Wire counters (core/wire.h) on a fake sysfs and procfs tree: which
 * counters count trouble, what each scope reads, deltas, and the footer
 * line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/wire.h"

struct tree {
    char root[64];
    char ib[128], net[128], snmp[128], netstat[128];
};

static void mkdirs(const char *root, const char *rel)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(path, 0755);
            *p = '/';
        }
    mkdir(path, 0755);
}

static void put(const char *root, const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void put_ull(const char *root, const char *rel, unsigned long long v)
{
    char text[32];
    snprintf(text, sizeof text, "%llu\n", v);
    put(root, rel, text);
}

static void snmp(struct tree *t, unsigned long long retrans)
{
    char text[1024];
    snprintf(text, sizeof text,
             "Ip: Forwarding DefaultTTL InReceives\nIp: 1 64 1000\n"
             "Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets "
             "CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors\n"
             "Tcp: 1 200 120000 -1 10 5 0 0 3 5000 6000 %llu 0 2 0\n"
             "Udp: InDatagrams NoPorts\nUdp: 7 0\n", retrans);
    put(t->root, "proc_snmp", text);
}

/* netstat's TcpExt table, with `dsack` retransmissions D-SACKed. */
static void netstat(struct tree *t, unsigned long long dsack)
{
    char text[1024];
    snprintf(text, sizeof text,
             "TcpExt: SyncookiesSent TCPLostRetransmit TCPDSACKRecv TCPDSACKRecvSegs TCPSpuriousRTOs\n"
             "TcpExt: 0 3 %llu %llu 1\n"
             "IpExt: InNoRoutes InTruncatedPkts\nIpExt: 0 0\n", dsack, dsack);
    put(t->root, "proc_netstat", text);
}

/* rxe0 port 1 on eth0 (two GIDs), mlx5_0 port 1 (InfiniBand), eth0 and eth1. */
static void make_tree(struct tree *t)
{
    snprintf(t->root, sizeof t->root, "/tmp/cb-test-wire.XXXXXX");
    assert_non_null(mkdtemp(t->root));
    snprintf(t->ib, sizeof t->ib, "%s/ib", t->root);
    snprintf(t->net, sizeof t->net, "%s/net", t->root);
    snprintf(t->snmp, sizeof t->snmp, "%s/proc_snmp", t->root);
    snprintf(t->netstat, sizeof t->netstat, "%s/proc_netstat", t->root);
    mkdirs(t->root, "ib/rxe0/ports/1/hw_counters");
    mkdirs(t->root, "ib/rxe0/ports/1/gid_attrs/ndevs");
    mkdirs(t->root, "ib/mlx5_0/ports/1/counters");
    mkdirs(t->root, "net/eth0");
    mkdirs(t->root, "net/eth1");
    put_ull(t->root, "ib/rxe0/ports/1/hw_counters/sent_pkts", 100);
    put_ull(t->root, "ib/rxe0/ports/1/hw_counters/ack_deferred", 7);
    put_ull(t->root, "ib/rxe0/ports/1/hw_counters/completer_retry_err", 0);
    put_ull(t->root, "ib/rxe0/ports/1/hw_counters/out_of_seq_request", 2);
    put_ull(t->root, "ib/rxe0/ports/1/hw_counters/link_downed", 0);
    put(t->root, "ib/rxe0/ports/1/gid_attrs/ndevs/0", "eth0\n");
    put(t->root, "ib/rxe0/ports/1/gid_attrs/ndevs/1", "eth0\n");
    put_ull(t->root, "ib/mlx5_0/ports/1/counters/symbol_error", 5);
    put_ull(t->root, "ib/mlx5_0/ports/1/counters/port_xmit_data", 1000);
    put_ull(t->root, "ib/mlx5_0/ports/1/counters/port_xmit_wait", 9);
    put_ull(t->root, "net/eth0/carrier_changes", 2);
    put_ull(t->root, "net/eth1/carrier_changes", 4);
    snmp(t, 40);
    netstat(t, 10);
    setenv("COLLBENCH_IB_SYSFS", t->ib, 1);
    setenv("COLLBENCH_NET_SYSFS", t->net, 1);
    setenv("COLLBENCH_PROC_SNMP", t->snmp, 1);
    setenv("COLLBENCH_PROC_NETSTAT", t->netstat, 1);
}

static void remove_tree(struct tree *t)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->root);
    assert_int_equal(system(cmd), 0);
    unsetenv("COLLBENCH_IB_SYSFS");
    unsetenv("COLLBENCH_NET_SYSFS");
    unsetenv("COLLBENCH_PROC_SNMP");
    unsetenv("COLLBENCH_PROC_NETSTAT");
}

static const struct cb_wire_counter *find(const struct cb_wire_counter *c, int n, const char *link,
                                          const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(c[i].link, link) == 0 && strcmp(c[i].name, name) == 0)
            return &c[i];
    return NULL;
}

static void test_kinds(void **state)
{
    (void)state;
    const char *errors[] = {"symbol_error", "link_downed", "link_error_recovery", "port_rcv_errors",
                            "port_xmit_discards", "local_link_integrity_errors", "excessive_buffer_overrun_errors",
                            "out_of_sequence", "packet_seq_err", "local_ack_timeout_err", "duplicate_request",
                            "rnr_nak_retry_err", "completer_retry_err", "rcvd_seq_err", "out_of_seq_request",
                            "carrier_changes", "RetransSegs", "roce_adp_retrans", "VL15_dropped"};
    const char *congestion[] = {"port_xmit_wait", "np_cnp_sent", "rp_cnp_handled", "np_ecn_marked_roce_packets"};
    const char *traffic[] = {"port_xmit_data", "port_rcv_packets", "sent_pkts", "rcvd_pkts", "ack_deferred",
                             "rdma_sends", "unicast_xmit_packets"};
    for (size_t i = 0; i < sizeof errors / sizeof *errors; i++)
        assert_int_equal(cb_wire_kind(errors[i]), CB_WIRE_ERROR);
    for (size_t i = 0; i < sizeof congestion / sizeof *congestion; i++)
        assert_int_equal(cb_wire_kind(congestion[i]), CB_WIRE_CONGESTION);
    for (size_t i = 0; i < sizeof traffic / sizeof *traffic; i++)
        assert_int_equal(cb_wire_kind(traffic[i]), CB_WIRE_NONE);
}

static void test_scope_from_props(void **state)
{
    (void)state;
    struct cb_props p = {0};
    struct cb_wire_scope s;
    cb_props_add(&p, "device", "rxe0");
    cb_props_add(&p, "port", "1");
    cb_wire_scope_from_props(&p, &s);
    assert_string_equal(s.rdma_dev, "rxe0");
    assert_true(s.rdma_port == 1 && !s.tcp && !*s.netdev);
    p.n = 0;
    cb_props_add(&p, "transport", "tcp");
    cb_props_add(&p, "interface", "eth0");
    cb_wire_scope_from_props(&p, &s);
    assert_true(!*s.rdma_dev && s.tcp && strcmp(s.netdev, "eth0") == 0);
    p.n = 0;
    cb_props_add(&p, "transport", "shm");
    cb_wire_scope_from_props(&p, &s);
    assert_true(!*s.rdma_dev && !s.tcp && !*s.netdev);
    p.n = 0;   /* a rank that drives two devices */
    cb_props_add(&p, "device", "rxe0,rxe1");
    cb_props_add(&p, "port", "1");
    cb_wire_scope_from_props(&p, &s);
    assert_string_equal(s.rdma_dev, "rxe0,rxe1");
    assert_int_equal(s.rdma_port, 1);
    p.n = 0;
    cb_props_add(&p, "device", "mlx5_0,mlx5_1");
    cb_props_add(&p, "port", "1,2");
    cb_wire_scope_from_props(&p, &s);
    assert_int_equal(s.rdma_port, 0);   /* ports differ: every port of each */
}

/* The verbs scope: rxe0:1's trouble counters and its netdev, nothing else. */
static void test_read_rdma_port(void **state)
{
    (void)state;
    struct tree t;
    make_tree(&t);
    struct cb_wire_scope s = {.rdma_dev = "rxe0", .rdma_port = 1};
    struct cb_wire_reading *before = calloc(1, sizeof *before), *after = calloc(1, sizeof *after);
    cb_wire_read(&s, before);
    assert_int_equal(before->n, 4);   /* 3 hw_counters, eth0 once although two GIDs name it */
    assert_non_null(find(before->c, before->n, "rxe0:1", "link_downed"));
    assert_non_null(find(before->c, before->n, "eth0", "carrier_changes"));
    assert_null(find(before->c, before->n, "rxe0:1", "sent_pkts"));
    assert_null(find(before->c, before->n, "rxe0:1", "ack_deferred"));
    put_ull(t.root, "ib/rxe0/ports/1/hw_counters/link_downed", 1);
    put_ull(t.root, "ib/rxe0/ports/1/hw_counters/completer_retry_err", 1530);
    put_ull(t.root, "ib/rxe0/ports/1/hw_counters/sent_pkts", 5000);
    put_ull(t.root, "net/eth0/carrier_changes", 4);
    put_ull(t.root, "net/eth1/carrier_changes", 9);   /* not in the scope */
    put_ull(t.root, "ib/mlx5_0/ports/1/counters/symbol_error", 6);   /* neither */
    cb_wire_read(&s, after);
    struct cb_wire_moved m;
    memset(&m, 0, sizeof m);
    cb_wire_delta(before, after, &m);
    assert_int_equal(m.nread, 4);
    assert_int_equal(m.n, 3);
    assert_true(find(m.c, m.n, "rxe0:1", "link_downed")->value == 1);
    assert_true(find(m.c, m.n, "rxe0:1", "completer_retry_err")->value == 1530);
    assert_true(find(m.c, m.n, "eth0", "carrier_changes")->value == 2);
    assert_true(cb_wire_has_errors(&m));
    free(before);
    free(after);
    remove_tree(&t);
}

/* A rank that drives two devices: both are read, nothing else. */
static void test_read_two_devices(void **state)
{
    (void)state;
    struct tree t;
    make_tree(&t);
    struct cb_wire_scope s = {.rdma_dev = "rxe0,mlx5_0", .rdma_port = 1};
    struct cb_wire_reading *r = calloc(1, sizeof *r);
    cb_wire_read(&s, r);
    assert_int_equal(r->n, 6);   /* rxe0: 3 + eth0, mlx5_0: 2 */
    struct cb_wire_moved m;
    cb_wire_delta(r, r, &m);
    assert_string_equal(m.links, "rxe0:1,eth0,mlx5_0:1");
    assert_non_null(find(r->c, r->n, "rxe0:1", "link_downed"));
    assert_non_null(find(r->c, r->n, "mlx5_0:1", "symbol_error"));
    assert_null(find(r->c, r->n, "eth1", "carrier_changes"));
    free(r);
    remove_tree(&t);
}

/* pairs' scope: every device and port; congestion alone is not an error. */
static void test_read_every_device(void **state)
{
    (void)state;
    struct tree t;
    make_tree(&t);
    struct cb_wire_scope s = {.rdma_dev = "*"};
    struct cb_wire_reading *before = calloc(1, sizeof *before), *after = calloc(1, sizeof *after);
    cb_wire_read(&s, before);
    assert_int_equal(before->n, 6);   /* mlx5_0: 2, rxe0: 3 + eth0 */
    put_ull(t.root, "ib/mlx5_0/ports/1/counters/port_xmit_wait", 19);
    cb_wire_read(&s, after);
    struct cb_wire_moved m;
    memset(&m, 0, sizeof m);
    cb_wire_delta(before, after, &m);
    assert_int_equal(m.n, 1);
    assert_string_equal(m.c[0].link, "mlx5_0:1");
    assert_false(cb_wire_has_errors(&m));
    m.nevents = 1;
    assert_true(cb_wire_has_errors(&m));
    free(before);
    free(after);
    remove_tree(&t);
}

/* The tcp scope: the interface's carrier changes and the namespace's TCP retransmissions. */
static void test_read_tcp(void **state)
{
    (void)state;
    struct tree t;
    make_tree(&t);
    struct cb_wire_scope s = {.netdev = "eth1", .tcp = 1};
    struct cb_wire_reading *before = calloc(1, sizeof *before), *after = calloc(1, sizeof *after);
    cb_wire_read(&s, before);
    assert_int_equal(before->n, 3);   /* carrier_changes, RetransSegs, the D-SACK count */
    assert_true(find(before->c, before->n, "tcp", "RetransSegs")->value == 40);
    snmp(&t, 75);
    cb_wire_read(&s, after);
    struct cb_wire_moved m;
    memset(&m, 0, sizeof m);
    cb_wire_delta(before, after, &m);
    assert_int_equal(m.n, 1);
    assert_true(find(m.c, m.n, "tcp", "RetransSegs")->value == 35);
    assert_true(cb_wire_has_errors(&m));
    /* 30 of the 35 were D-SACKed duplicates: 5 were needed */
    netstat(&t, 40);
    cb_wire_read(&s, after);
    cb_wire_delta(before, after, &m);
    assert_int_equal(m.n, 1);
    assert_true(find(m.c, m.n, "tcp", "RetransSegs")->value == 5);
    /* all were duplicates (a loaded host's spurious timeouts): nothing moved */
    netstat(&t, 45);
    cb_wire_read(&s, after);
    cb_wire_delta(before, after, &m);
    assert_int_equal(m.n, 0);
    assert_false(cb_wire_has_errors(&m));
    struct cb_wire_tcp tcp;
    cb_wire_tcp_read(&tcp);
    assert_true(tcp.out_segs == 6000 && tcp.retrans_segs == 75 && tcp.dsack_segs == 45);
    assert_int_equal(cb_wire_carrier_changes("eth1"), find(after->c, after->n, "eth1", "carrier_changes")->value);
    assert_int_equal(cb_wire_carrier_changes("no/such"), -1);
    struct cb_wire_scope none = {.rdma_dev = "nosuch0", .netdev = "nosuch", .tcp = 0};
    cb_wire_read(&none, after);
    assert_int_equal(after->n, 0);
    setenv("COLLBENCH_PROC_SNMP", "/nonexistent/snmp", 1);
    cb_wire_read(&s, after);
    assert_int_equal(after->n, 1);   /* eth1 only: no D-SACK count without RetransSegs */
    free(before);
    free(after);
    remove_tree(&t);
}

static void counter(struct cb_wire_moved *m, const char *link, const char *name, unsigned long long v)
{
    struct cb_wire_counter *c = &m->c[m->n++];
    snprintf(c->link, sizeof c->link, "%s", link);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->value = v;
}

/* One line for every rank: a host named once, the link named when it
 * changes, a counter two ranks of one host read shown once. */
static void test_footer_line(void **state)
{
    (void)state;
    struct cb_wire_moved m[3];
    char line[512];
    memset(m, 0, sizeof m);
    for (int i = 0; i < 3; i++) {
        snprintf(m[i].host, sizeof m[i].host, "%s", i < 2 ? "nodea(10.77.0.1)" : "nodeb(10.77.0.2)");
        m[i].nread = 4;
    }
    cb_wire_line(m, 3, line, sizeof line);
    assert_string_equal(line, "nothing moved (8 counters on 2 hosts)");
    /* the links every rank read, each once: a rank that drives two devices lists both */
    snprintf(m[0].links, sizeof m[0].links, "rxe0:1,eth0,rxe1:1,eth1");
    snprintf(m[2].links, sizeof m[2].links, "rxe0:1,eth0");
    cb_wire_line(m, 3, line, sizeof line);
    assert_string_equal(line, "nothing moved (8 counters on 2 hosts; links rxe0:1,eth0,rxe1:1,eth1)");
    m[0].links[0] = m[2].links[0] = '\0';
    /* 01:02:03.456 UTC on 1 Jan 1970 */
    m[0].ev[0] = (struct cb_port_event){3723456, "rxe0:1", "port error"};
    m[0].ev[1] = (struct cb_port_event){3724500, "rxe0:1", "port active"};
    m[0].nevents = 2;
    m[1].ev[0] = (struct cb_port_event){3723460, "rxe0:1", "port error"};   /* the same event, rank 1 */
    m[1].nevents = 1;
    counter(&m[0], "rxe0:1", "link_downed", 1);
    counter(&m[0], "rxe0:1", "out_of_sequence", 1530);
    counter(&m[0], "eth0", "carrier_changes", 2);
    counter(&m[1], "rxe0:1", "link_downed", 1);   /* the same counter, rank 1 */
    counter(&m[2], "rxe0:1", "completer_retry_err", 3);
    cb_wire_line(m, 3, line, sizeof line);
    assert_string_equal(line, "host nodea(10.77.0.1) rxe0:1 port error 01:02:03.456Z, port active 01:02:04.500Z, "
                              "link_downed +1, out_of_sequence +1530, eth0 carrier_changes +2; "
                              "host nodeb(10.77.0.2) rxe0:1 completer_retry_err +3");
    char small[40];
    cb_wire_line(m, 3, small, sizeof small);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_string_equal(small + sizeof small - 4, "...");
    memset(m, 0, sizeof m);
    cb_wire_line(m, 2, line, sizeof line);
    assert_string_equal(line, "nothing to read (no RDMA port or network interface in use)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_scope_from_props),
        cmocka_unit_test(test_read_rdma_port),
        cmocka_unit_test(test_read_two_devices),
        cmocka_unit_test(test_read_every_device),
        cmocka_unit_test(test_read_tcp),
        cmocka_unit_test(test_footer_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
