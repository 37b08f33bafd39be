/* Which RDMA ports a rank may use: --hca in NCCL_IB_HCA's syntax, and the
 * automatic choice's rule for machines with NICs of different kinds.
 *
 * --hca / COLLBENCH_HCA: a comma list of entries dev[:port]; a leading '^'
 * makes it the ports NOT to use, a leading '=' (after '^' if both) makes the
 * names exact, otherwise a name is a prefix ("mlx5" is every mlx5_N, and
 * "mlx5_1" also mlx5_10: use '=' to avoid that). An entry without a port
 * means the device's active ports. Examples: "mlx5_0:1,mlx5_1:1", "mlx5",
 * "^mlx5_4", "=mlx5_1", "^=mlx5_4:2".
 *
 * Without --hca, ports whose link layer or rate differ from those of most
 * active ports (a front-end or storage NIC beside the GPU fabric's) are
 * skipped, and the run says which. Pure functions (tests/unit/test_verbs_fabric.c). */
#ifndef CB_HCA_H
#define CB_HCA_H

#include <stddef.h>
#include "core/status.h"

#define CB_HCA_MAX 32
#define CB_HCA_NAME 64

struct cb_hca_spec {
    int exclude;              /* '^': every port except these */
    int exact;                /* '=': whole names, else prefixes */
    int n;                    /* 0: nothing given */
    struct { char name[CB_HCA_NAME]; int port; } e[CB_HCA_MAX];   /* port 0: any (active) port */
};

/* Parse `s` ("" or NULL: nothing given). CB_EUSAGE for a bad string, with
 * what was wrong and the syntax in err (not logged: the caller decides). */
cb_status cb_hca_parse(const char *s, struct cb_hca_spec *spec, char *err, size_t errlen);

/* Whether entry i's name selects device `dev` (exact or prefix). */
int cb_hca_name_match(const struct cb_hca_spec *s, int i, const char *dev);

/* Whether the spec lets a rank use dev:port (an empty spec: every port). */
int cb_hca_selects(const struct cb_hca_spec *s, const char *dev, int port);

/* One active port, as the automatic choice sees it. */
struct cb_port_desc {
    char name[CB_HCA_NAME];
    int port;
    int link_layer;           /* IBV_LINK_LAYER_* (0 = unknown) */
    unsigned rate_mbps;       /* 0 = unknown */
};

/* keep[i] = 1 for the ports whose (link layer, rate) most ports share (a
 * tie: the faster, then the first); the others 0. Returns how many were
 * skipped; when any, `note` says which and why ("skipped eth0dev:1 (Ethernet
 * 25 Gb/s); using the 4 InfiniBand 400 Gb/s ports"). */
int cb_ports_majority(const struct cb_port_desc *p, int n, int *keep, char *note, size_t len);

/* Whether a rank drives every port its --hca candidates give (stripe) or
 * one of them, local rank i taking candidate i mod count (rails). Stripe
 * only when --hca was given (`listed`), the rank is alone on its host
 * (local_size <= 1) and the list gives several ports: with k ranks per
 * host, each keeps its own NIC, so rails stay rail-local. */
int cb_hca_stripes(int listed, int local_size, int ncand);

/* The device (index into a rank's list of ndev) channel `channel` uses
 * when a rank stripes: channel mod ndev, on both ends, so with equal lists
 * every channel stays on one rail. */
int cb_hca_channel_device(int channel, int ndev);

/* How a host's ranks use its NICs, for cb_rails_unused's advice. */
struct cb_rail_use {
    int ranks;                /* local ranks on the host */
    int listed;               /* --hca given */
};

/* A rail map that leaves NICs idle. p[n]: the host's usable ports;
 * used[i]: some rank of the host sends through p[i]. Counts the unused
 * ports of the kind (link layer and rate) of a used one: a port of another
 * kind is no rail of this fabric (the automatic choice skips it with its own
 * note). Returns how many; when any, msg names them, the used ones and what
 * to do ("RDMA NIC mlx5_1:1 carries no traffic: ...: start one rank per NIC
 * (`mpirun --map-by ppr:4:node`) ..."). */
int cb_rails_unused(const struct cb_port_desc *p, int n, const int *used, const struct cb_rail_use *u, char *msg,
                    size_t len);

/* 0 when every port has the same link layer; else 1 and `msg` names the
 * first two that differ ("rxe0:1 (Ethernet) and mlx5_0:1 (InfiniBand)"). */
int cb_ports_mixed_link(const struct cb_port_desc *p, int n, char *msg, size_t len);

/* One host's rails, for cb_hosts_nic_counts. */
#define CB_HOST_NICS_MAX 64
struct cb_host_nics {
    const char *host;
    int nics;                 /* NICs its ranks are placed over (0 = unknown: not compared) */
    const char *names;        /* "mlx5_0,mlx5_1" or "" */
};

/* Hosts whose ranks are placed over a different number of NICs than most
 * hosts' (a tie: the larger count). Rails are matched by position (local
 * rank, or a striping rank's channel) on every host, so there a rank's
 * traffic crosses rails. *most = the count most hosts have (-1: none
 * known). Returns how many hosts differ; when any, msg
 * names up to 4 of them with their counts, up to 3 of the others ("and N
 * more"), and what to do (`listed`: --hca was given). O(n). */
int cb_hosts_nic_counts(const struct cb_host_nics *h, int n, int listed, int *most, char *msg, size_t len);

/* names[n] for a message: "mlx5_0..7" when they are one stem with
 * consecutive numbers, else "a,b,c", ending in "..." when cut to len. */
void cb_nic_names_short(const char *const *names, int n, char *buf, size_t len);

#endif
