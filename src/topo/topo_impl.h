/* Private to src/topo/topo.c and src/topo/topo_place.c: the loaded topology. */
#ifndef CB_TOPO_IMPL_H
#define CB_TOPO_IMPL_H

#include <hwloc.h>
#include <stddef.h>
#include "topo.h"

/* An RDMA NIC, an Ethernet NIC or a GPU. */
struct topo_dev {
    hwloc_obj_t obj;          /* OS device (NICs), PCI device or OS device (GPUs) */
    hwloc_obj_t key;          /* GPUs: the object several OS devices share */
    hwloc_obj_t anc;          /* nearest non-I/O ancestor: where it is attached */
    char name[32], netdev[32], busid[16];
    int port, nports, active; /* RDMA: first ACTIVE port, ports hwloc knows, usable */
    int link_layer;           /* RDMA, this machine only: 1 InfiniBand, 2 Ethernet, 0 unknown */
    unsigned rate_mbps;       /* RDMA, this machine only: that port's rate, 0 unknown */
    int first_cpu;            /* sort key: NICs in locality order */
};

struct cb_topo {
    hwloc_topology_t topo;
    int inited, loaded, from_xml;
    char source[256];         /* "this machine" or the XML file */
    char host[64];
    struct topo_dev *nics, *eths, *gpus;   /* nics in locality order */
    int nnic, neth, ngpu;
};

/* A bounded string builder. */
struct topo_sb {
    char *buf;
    size_t len, off;
};
void cb_topo_sb_add(struct topo_sb *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

hwloc_obj_t cb_topo_package_of(const struct cb_topo *t, hwloc_obj_t obj);
int cb_topo_numa_count(const struct cb_topo *t, hwloc_const_cpuset_t set);
void cb_topo_list(hwloc_const_bitmap_t set, char *buf, size_t len);
void cb_topo_numa_list(const struct cb_topo *t, hwloc_const_cpuset_t set, char *buf, size_t len);
void cb_topo_package_list(const struct cb_topo *t, hwloc_const_cpuset_t set, char *buf, size_t len);
/* enum cb_topo_dist from CPUs to a device attached at `anc`. */
int cb_topo_cpus_dist(const struct cb_topo *t, hwloc_const_cpuset_t cpus, hwloc_obj_t anc);

#endif
