/* Topology (hwloc): which NIC, NUMA node and cores each rank of a machine
 * uses, and the map that says so (run header, `collbench topo`).
 *
 * Placement of the L local ranks of a machine with N usable RDMA NICs
 * (RDMA NICs with an ACTIVE port, or whose port state is unknown; without
 * --hca only those whose link layer and rate most of them share), ordered
 * by locality (first CPU near them, then PCI address):
 *   - --hca / COLLBENCH_HCA given (NCCL_IB_HCA's syntax, transport/hca.h): the
 *     NICs it selects, listed ones in list order, '^' the usable ones but
 *     those; local rank i takes candidate i mod count;
 *   - the launcher bound the rank (its CPUs are fewer than the machine's) and
 *     collbench does not bind: a NIC closest to those CPUs; ranks with the same
 *     closest NICs are spread over them in rank order;
 *   - else rails: local rank i takes NIC floor(i * N / L), so every NIC is used
 *     before any is shared and neighbouring ranks share a socket.
 * Binding (--bind): none keeps the CPUs the rank has; core binds it to the
 * least used core, preferring cores local to its NIC; numa to the NUMA node
 * local to its NIC. auto = none when ranks outnumber CPUs or the launcher
 * bound them, else core.
 * Warnings: a rank whose NIC is on another socket than all its CPUs; ranks
 * sharing a NIC while a usable NIC has no rank; per host (rails_note, said
 * by the verbs transport, so only when RDMA carries the job), usable NICs
 * of the used ones' kind that no rank uses; per job (hosts_note, said the
 * same way), hosts placed over fewer or more NICs than most hosts. See
 * docs/topology.md. */
#ifndef CB_TOPO_H
#define CB_TOPO_H

#include <stdio.h>
#include "core/status.h"
#include "transport/transport.h"

struct cb_boot;

enum cb_bind { CB_BIND_AUTO = 0, CB_BIND_NONE, CB_BIND_CORE, CB_BIND_NUMA };
/* "auto", "none", "core", "numa" -> enum cb_bind, or -1. */
int cb_bind_parse(const char *s);
const char *cb_bind_name(int bind);

/* How far apart two things are: the level of their nearest common ancestor. */
enum cb_topo_dist {
    CB_DIST_PCI_SWITCH,   /* under one PCIe switch (GPU and NIC) */
    CB_DIST_HOST_BRIDGE,  /* under one PCIe host bridge (GPU and NIC) */
    CB_DIST_NUMA,         /* the NIC hangs off the NUMA node of the CPUs */
    CB_DIST_PACKAGE,      /* same package (socket), another NUMA node */
    CB_DIST_REMOTE,       /* the NIC is on a socket where the rank has no CPU */
    CB_DIST_UNBOUND,      /* the rank's CPUs span sockets, the NIC's among them */
    CB_DIST_UNKNOWN,      /* no NIC, or no locality known for it */
};
const char *cb_topo_dist_name(int dist);

/* ---- the machine ---- */
struct cb_topo;

/* This machine's topology with its I/O devices (xml_path NULL), or an hwloc
 * XML file (`lstopo --of xml`). CB_EUSAGE (logged) for an unreadable file,
 * CB_EDEVICE (logged) when hwloc cannot read this machine. */
cb_status cb_topo_load(const char *xml_path, struct cb_topo **out);
void cb_topo_free(struct cb_topo *t);
int cb_topo_nnics(const struct cb_topo *t);
/* This machine's host name; for a file, its HostName, else the file name without ".xml". */
const char *cb_topo_host(const struct cb_topo *t);
/* "# " lines: packages, NUMA nodes and their CPUs, RDMA NICs (device,
 * netdev, PCI address, locality, port), Ethernet NICs, GPUs and their
 * nearest NIC; "no RDMA NIC" when there is none. */
void cb_topo_print_machine(const struct cb_topo *t, FILE *out);

/* ---- placement of the local ranks of the machine ---- */
#define CB_TOPO_CPUS_LEN 256
#define CB_TOPO_WARN_MAX 2
#define CB_TOPO_WARN_LEN 480
#define CB_TOPO_RAILS_LEN 96

struct cb_topo_request {
    int local_size;
    int bind;                 /* enum cb_bind */
    const char *hca;          /* "dev[:port][,...]"; NULL or "" = collbench chooses */
    const char *const *cpus;  /* [local_size] CPUs each rank was started on ("0-3,8"),
                                 as a list; NULL array or entry, or "" = all of them */
    int channels;             /* --channels (0 = 1): a rank alone striping over --hca uses this many */
};

struct cb_topo_rank {
    char nic[32];             /* RDMA device; "" = none */
    int port;                 /* its first ACTIVE port (1 when unknown) */
    char netdev[32];          /* its network interface, "" if none known */
    char cpus[CB_TOPO_CPUS_LEN];  /* where the rank runs ("0", "0-3") */
    char numa[32];            /* NUMA node(s) of those CPUs */
    int bound_here;           /* collbench binds the rank to `cpus` */
    int dist;                 /* enum cb_topo_dist, CPUs to NIC */
    int nwarn;
    char warn[CB_TOPO_WARN_MAX][CB_TOPO_WARN_LEN];  /* what is wrong, what to do */
    char nic_note[192];       /* NICs the automatic choice skipped, "" if none */
    int nic_known;            /* nic is one of the topology's (else a name from --hca) */
    char rails_odd[160];      /* this host's NIC count where most hosts have another, "" if alike */
};

struct cb_topo_plan {
    int n;
    int bind;                 /* enum cb_bind in force (never auto) */
    char why[96];             /* why that binding */
    char nic_note[192];       /* NICs of another kind than most, skipped ("" if none) */
    int rails_checked;        /* 1: every rank's NIC is one the topology knows, so rails_note is */
    char rails_note[CB_RAILS_NOTE];   /* usable NICs no rank uses, and what to do ("" if none) */
    int nrails;               /* NICs the ranks are placed over (--hca's candidates, else the usable ones) */
    char rail_names[CB_TOPO_RAILS_LEN];   /* them, short ("mlx5_0..7", cb_nic_names_short) */
    struct cb_topo_rank *ranks;   /* [n] */
    void *sets;               /* private: the ranks' CPU sets, for cb_topo_bind_self */
};

/* Place req->local_size ranks. CB_EUSAGE (logged) for a bad --hca or CPU list. */
cb_status cb_topo_plan(const struct cb_topo *t, const struct cb_topo_request *req, struct cb_topo_plan *out);
void cb_topo_plan_free(struct cb_topo_plan *p);
/* How many distinct NICs (device and port) the plan's ranks use. */
int cb_topo_plan_nics(const struct cb_topo_plan *p);
/* A title line, then one line per rank:
 * "#   local rank 0 on HOST: cpus=0 numa=0 nic=mlx5_0:1 dist=numa". */
void cb_topo_print_plan(const struct cb_topo_plan *p, const char *host, FILE *out);
/* "cpus=0 numa=0 nic=mlx5_0:1 dist=numa" (nic=none when there is none). */
void cb_topo_format_rank(const struct cb_topo_rank *r, char *buf, size_t len);
/* Bind the calling process to the CPUs of local rank `lr` (when bound_here).
 * A failure is a warning (logged), not an error: the run goes on unbound. */
void cb_topo_bind_self(const struct cb_topo *t, const struct cb_topo_plan *p, int lr);

/* ---- the run (called from main) ----
 * Every rank calls it after cb_boot_init and before the transport starts,
 * with cfg->rank, local_rank, local_size, host, hca and timeout_ms set: it
 * gathers the CPUs every rank started on and how many NICs its host's ranks
 * are placed over (one collective over the bootstrap; hosts whose counts
 * differ from most: cfg->hosts_note, and mine->rails_odd on their ranks),
 * loads this machine's topology (or xml_path: then nothing is bound and
 * cfg->hca is left alone, as the file is not this machine), places the local
 * ranks, binds this one, logs its warnings naming rank and host, and, when
 * cfg->hca is empty and an RDMA NIC was chosen, sets cfg->hca to "dev:port".
 * *mine receives this rank's placement for cb_topo_describe(). Returns
 * CB_OK when the topology cannot be read (a warning says placement was
 * skipped); CB_EUSAGE for a bad xml_path or --hca; the bootstrap's status
 * (CB_ETIMEOUT...) when the exchange fails. */
cb_status cb_topo_setup(struct cb_boot *b, const char *xml_path, int bind, struct cb_transport_config *cfg,
                        struct cb_topo_rank *mine);
/* Append this rank's map to the run header's properties: cpus, numa, nic,
 * nic_dist when 4 entries are free, else one "topo" entry with all four;
 * nic_note and rails when set. */
void cb_topo_describe(const struct cb_topo_rank *mine, struct cb_props *props);

/* `collbench topo [--topo-xml FILE] [--local-size N] [--bind B] [--hca LIST]
 * [--cpus LIST[/LIST...]]`: the machine and the placement of N local ranks,
 * without MPI (src/tools/cmd_topo.c). Exit 0, or 2 on a usage error. */
int cb_cmd_topo(int argc, char **argv);

#endif
