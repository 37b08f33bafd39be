/* Wire counters: what the links a rank uses counted while it ran, so a fault
 * on the wire (a flap, loss, congestion) is seen even when the run passed.
 * Read before and after (cb_wire_read), subtracted (cb_wire_delta), gathered
 * (struct cb_wire_moved is fixed-size) and printed as one line
 * (cb_wire_line). Used by the harness (every collective); pairs reads the
 * same sources per round through cb_wire_read, cb_wire_tcp_read and
 * cb_wire_carrier_changes (tools/pairs_counters.c, tools/netdev_counters.c).
 *
 * Sources, each only when the scope names it:
 *   RDMA port  IBROOT/DEV/ports/P/counters/ and .../hw_counters/: counters whose name
 *              says error or congestion (cb_wire_kind), link "DEV:P";
 *              and the carrier_changes of the netdevs under it
 *              (.../gid_attrs/ndevs/: RoCE)
 *   netdev     NETROOT/IF/carrier_changes, link "IF"
 *   tcp        RetransSegs of this network namespace's SNMP table, link "tcp",
 *              less those the receiver reported as duplicates (TcpExt
 *              TCPDSACKRecvSegs of /proc/net/netstat, $COLLBENCH_PROC_NETSTAT):
 *              a spurious timeout on a loaded host, not loss
 * IBROOT is /sys/class/infiniband ($COLLBENCH_IB_SYSFS), NETROOT
 * /sys/class/net ($COLLBENCH_NET_SYSFS), the SNMP table /proc/net/snmp
 * ($COLLBENCH_PROC_SNMP): the variables exist for tests with a fake tree. */
#ifndef CB_WIRE_H
#define CB_WIRE_H

#include <stddef.h>
#include "transport/transport.h"

#define CB_WIRE_READ_MAX 512     /* counters in one reading */
#define CB_WIRE_MOVED_MAX 32     /* counters that moved, per rank */
#define CB_WIRE_EVENTS_MAX 8     /* port events, per rank */

/* What to read. */
struct cb_wire_scope {
    char rdma_dev[96];   /* "" none, "*" every RDMA device (and every port), or a
                          * comma list: a rank that drives several ("rxe0,rxe1") */
    int rdma_port;       /* 0: every port of the devices */
    char netdev[64];     /* "" none */
    int tcp;             /* 1: TCP retransmissions */
};

/* The scope of what a transport uses, from its properties: "device" and
 * "port" (verbs; comma lists where a rank drives several devices), "interface" (tcp, which adds the TCP retransmissions). */
void cb_wire_scope_from_props(const struct cb_props *props, struct cb_wire_scope *scope);

enum cb_wire_kind { CB_WIRE_NONE = 0, CB_WIRE_ERROR, CB_WIRE_CONGESTION };
/* By name: congestion (ECN, CNP, port_xmit_wait), error (errors, discards,
 * retransmissions, sequence errors, link downs, carrier changes), or none
 * (traffic counters: not read). */
enum cb_wire_kind cb_wire_kind(const char *counter);
/* 1 when an error counter counts retransmissions or what causes them on a
 * lossy wire: sequence errors (out_of_sequence, rcvd_seq_err,
 * out_of_seq_request, packet_seq_err), retries and retransmissions
 * (completer_retry_err, retry_exceeded_err, roce_adp_retrans), ACK
 * timeouts (local_ack_timeout_err) and duplicate requests. Receiver-not-ready
 * (RNR) counters are not: a slow receiver, not the wire. */
int cb_wire_is_retrans(const char *counter);

struct cb_wire_counter {
    char link[32];       /* "mlx5_0:1", "eth0", "tcp" */
    char name[48];       /* "symbol_error", "carrier_changes", "RetransSegs" */
    unsigned long long value;
};

struct cb_wire_reading {
    int n, truncated;
    struct cb_wire_counter c[CB_WIRE_READ_MAX];
};

/* This network namespace's TCP segment counters, -1 where unknown. */
struct cb_wire_tcp {
    long long out_segs, retrans_segs;
    long long dsack_segs;   /* retransmissions the receiver D-SACKed as duplicates */
};
void cb_wire_tcp_read(struct cb_wire_tcp *t);
/* An interface's carrier changes (a flap is two), -1 when unknown. */
long long cb_wire_carrier_changes(const char *ifname);

/* Fills r (n = 0 when nothing in the scope exists). */
void cb_wire_read(const struct cb_wire_scope *scope, struct cb_wire_reading *r);

/* What moved on one rank's links, fixed-size so ranks can gather it. */
struct cb_wire_moved {
    char host[64];       /* set by the caller */
    int nread;           /* counters read: 0 = nothing to read here */
    char links[128];     /* the links they were read from, "rxe0:1,eth0,rxe1:1,eth1" ("" none) */
    int n, truncated;    /* counters that moved; more than fit */
    struct cb_wire_counter c[CB_WIRE_MOVED_MAX];   /* value = after - before */
    int nevents;         /* port events seen; the first CB_WIRE_EVENTS_MAX in ev */
    struct cb_port_event ev[CB_WIRE_EVENTS_MAX];
};

/* m->n, c, truncated, nread, links from two readings (counters in both that
 * changed); the other fields are left as they are. */
void cb_wire_delta(const struct cb_wire_reading *before, const struct cb_wire_reading *after,
                   struct cb_wire_moved *m);
/* 1 when an error counter moved or a port event was seen. */
int cb_wire_has_errors(const struct cb_wire_moved *m);

/* The footer text for n ranks, without "# wire: ": "host H rxe0:1
 * link_downed +1, out_of_sequence +1530, port error 01:02:03.456Z; host
 * H2 ...", a host named once when several of its ranks read the same
 * counters; "nothing moved (N counters on M hosts; links rxe0:1,eth0)"
 * (every link any rank read, once) or "nothing to read
 * (no RDMA port or network interface in use)". Cut with "..." to fit. */
void cb_wire_line(const struct cb_wire_moved *m, int n, char *buf, size_t len);

/* ---- a rank's watch over its links (core/wire_watch.c) ----
 * Start reads the counters of what the communicator's transport uses
 * (plus every RDMA device when `every_rdma_device`, as pairs does) and
 * remembers how many port events the transport had reported; moved reads
 * them again and fills m with what changed since start, the port events
 * since start and this rank's host label. */
struct cb_comm;
struct cb_wire_watch;
struct cb_wire_watch *cb_wire_watch_start(struct cb_comm *c, int every_rdma_device);   /* NULL: no memory */
void cb_wire_watch_moved(struct cb_wire_watch *w, struct cb_comm *c, struct cb_wire_moved *m);
void cb_wire_watch_free(struct cb_wire_watch *w);

#endif
