/* The machine as hwloc sees it: NUMA nodes, cores, RDMA and Ethernet NICs,
 * GPUs, and the distances between them. Placement is in topo_place.c. */
#include "topo_impl.h"
#include "topo_xml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cb_bind_parse(const char *s)
{
    static const char *const names[] = {"auto", "none", "core", "numa"};
    for (int i = 0; s && i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

const char *cb_bind_name(int bind)
{
    static const char *const names[] = {"auto", "none", "core", "numa"};
    return bind >= 0 && bind < 4 ? names[bind] : "?";
}

const char *cb_topo_dist_name(int dist)
{
    static const char *const names[] = {"pci-switch", "host-bridge", "numa", "package",
                                        "cross-socket", "unbound", "unknown"};
    return dist >= 0 && dist <= CB_DIST_UNKNOWN ? names[dist] : "?";
}

void cb_topo_sb_add(struct topo_sb *s, const char *fmt, ...)
{
    if (s->off >= s->len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->buf + s->off, s->len - s->off, fmt, ap);
    va_end(ap);
    if (n > 0)
        s->off = s->off + (size_t)n < s->len ? s->off + (size_t)n : s->len;
}

/* ---- locality ---- */

hwloc_obj_t cb_topo_package_of(const struct cb_topo *t, hwloc_obj_t obj)
{
    if (!obj)
        return NULL;
    if (obj->type == HWLOC_OBJ_PACKAGE)
        return obj;
    return hwloc_get_ancestor_obj_by_type(t->topo, HWLOC_OBJ_PACKAGE, obj);
}

/* NUMA nodes with CPUs that intersect `set` (memory-only nodes do not count). */
int cb_topo_numa_count(const struct cb_topo *t, hwloc_const_cpuset_t set)
{
    int n = 0;
    for (hwloc_obj_t o = NULL; (o = hwloc_get_next_obj_by_type(t->topo, HWLOC_OBJ_NUMANODE, o));)
        if (!hwloc_bitmap_iszero(o->cpuset) && hwloc_bitmap_intersects(o->cpuset, set))
            n++;
    return n;
}

/* "0" or "0-1": the OS numbers of the NUMA nodes (with CPUs) under `set`. */
void cb_topo_numa_list(const struct cb_topo *t, hwloc_const_cpuset_t set, char *buf, size_t len)
{
    hwloc_bitmap_t nodes = hwloc_bitmap_alloc();
    for (hwloc_obj_t o = NULL; (o = hwloc_get_next_obj_by_type(t->topo, HWLOC_OBJ_NUMANODE, o));)
        if (!hwloc_bitmap_iszero(o->cpuset) && hwloc_bitmap_intersects(o->cpuset, set))
            hwloc_bitmap_set(nodes, o->os_index);
    if (hwloc_bitmap_iszero(nodes))
        snprintf(buf, len, "-");
    else
        cb_topo_list(nodes, buf, len);
    hwloc_bitmap_free(nodes);
}

/* "0-3,8" of a bitmap; "..." at the end when it does not fit. */
void cb_topo_list(hwloc_const_bitmap_t set, char *buf, size_t len)
{
    int n = hwloc_bitmap_list_snprintf(buf, len, set);
    if (n >= (int)len && len > 4)
        memcpy(buf + len - 4, "...", 4);
}

/* "0" or "0-1": logical indexes of the packages under `set`. */
void cb_topo_package_list(const struct cb_topo *t, hwloc_const_cpuset_t set, char *buf, size_t len)
{
    hwloc_bitmap_t pk = hwloc_bitmap_alloc();
    for (hwloc_obj_t o = NULL; (o = hwloc_get_next_obj_by_type(t->topo, HWLOC_OBJ_PACKAGE, o));)
        if (hwloc_bitmap_intersects(o->cpuset, set))
            hwloc_bitmap_set(pk, o->logical_index);
    if (hwloc_bitmap_iszero(pk))
        snprintf(buf, len, "-");
    else
        cb_topo_list(pk, buf, len);
    hwloc_bitmap_free(pk);
}

/* CPUs `cpus` to a device whose locality is `anc`. */
int cb_topo_cpus_dist(const struct cb_topo *t, hwloc_const_cpuset_t cpus, hwloc_obj_t anc)
{
    if (!anc || !cpus || hwloc_bitmap_iszero(cpus))
        return CB_DIST_UNKNOWN;
    hwloc_bitmap_t both = hwloc_bitmap_dup(cpus);
    hwloc_bitmap_or(both, both, anc->cpuset);
    hwloc_obj_t cover = hwloc_get_obj_covering_cpuset(t->topo, both);
    hwloc_bitmap_free(both);
    if (cover && cb_topo_numa_count(t, cover->cpuset) <= 1)
        return CB_DIST_NUMA;
    if (cover && cb_topo_package_of(t, cover))
        return CB_DIST_PACKAGE;
    hwloc_obj_t pkg = cb_topo_package_of(t, anc);
    if (!pkg)
        return CB_DIST_UNKNOWN;
    return hwloc_bitmap_intersects(cpus, pkg->cpuset) ? CB_DIST_UNBOUND : CB_DIST_REMOTE;
}

/* Nearest common ancestor, I/O objects included (hwloc's own helper is for normal objects). */
static hwloc_obj_t common_ancestor(hwloc_obj_t a, hwloc_obj_t b)
{
    for (hwloc_obj_t x = a; x; x = x->parent)
        for (hwloc_obj_t y = b; y; y = y->parent)
            if (x == y)
                return x;
    return NULL;
}

/* Device to device (GPU to NIC): a shared PCIe switch or host bridge, else their CPUs' distance. */
static int dev_dist(const struct cb_topo *t, const struct topo_dev *a, const struct topo_dev *b)
{
    hwloc_obj_t c = common_ancestor(a->obj, b->obj);
    if (c && c->type == HWLOC_OBJ_BRIDGE)
        return c->attr->bridge.upstream_type == HWLOC_OBJ_BRIDGE_HOST ? CB_DIST_HOST_BRIDGE
                                                                      : CB_DIST_PCI_SWITCH;
    if (c && hwloc_obj_type_is_io(c->type))
        return CB_DIST_PCI_SWITCH;
    return cb_topo_cpus_dist(t, a->anc ? a->anc->cpuset : NULL, b->anc);
}

/* ---- devices ---- */

static hwloc_obj_t pci_of(hwloc_obj_t o)
{
    for (; o; o = o->parent)
        if (o->type == HWLOC_OBJ_PCI_DEVICE)
            return o;
    return NULL;
}

static struct topo_dev *push_dev(struct topo_dev **arr, int *n)
{
    struct topo_dev *grown = realloc(*arr, (size_t)(*n + 1) * sizeof **arr);
    if (!grown)
        return NULL;
    *arr = grown;
    memset(&grown[*n], 0, sizeof grown[*n]);
    return &grown[(*n)++];
}

static void fill_dev(const struct cb_topo *t, struct topo_dev *d, hwloc_obj_t obj)
{
    hwloc_obj_t pci = pci_of(obj);
    d->obj = obj;
    d->anc = hwloc_get_non_io_ancestor_obj(t->topo, obj);
    d->first_cpu = d->anc ? hwloc_bitmap_first(d->anc->cpuset) : -1;
    snprintf(d->name, sizeof d->name, "%s", obj->name ? obj->name : "?");
    if (pci)
        snprintf(d->busid, sizeof d->busid, "%04x:%02x:%02x.%x", pci->attr->pcidev.domain,
                 pci->attr->pcidev.bus, pci->attr->pcidev.dev, pci->attr->pcidev.func);
}

/* hwloc records "PortNState" = the first digit of ports/N/state; 4 is ACTIVE. */
static void read_ports(struct topo_dev *d)
{
    for (unsigned i = 0; i < d->obj->infos_count; i++) {
        unsigned p = 0;
        int end = 0;
        const char *name = d->obj->infos[i].name;
        if (sscanf(name, "Port%uState%n", &p, &end) != 1 || !end || name[end])
            continue;
        d->nports++;
        if (d->obj->infos[i].value[0] == '4' && (!d->port || (int)p < d->port))
            d->port = (int)p;
    }
    d->active = d->nports == 0 || d->port > 0;
    if (!d->port)
        d->port = 1;
}

/* Link layer and rate of an RDMA NIC's port, from sysfs (this machine only:
 * an XML file's NICs are not here), for the automatic choice's rule that
 * skips NICs of another kind than most (transport/hca.h). */
static void read_kind(const struct cb_topo *t, struct topo_dev *d)
{
    char path[192], buf[64] = "";
    if (t->from_xml)
        return;
    snprintf(path, sizeof path, "/sys/class/infiniband/%s/ports/%d/link_layer", d->name, d->port);
    FILE *f = fopen(path, "r");
    if (f) {
        if (fgets(buf, sizeof buf, f))
            d->link_layer = !strncmp(buf, "InfiniBand", 10) ? 1 : !strncmp(buf, "Ethernet", 8) ? 2 : 0;
        fclose(f);
    }
    snprintf(path, sizeof path, "/sys/class/infiniband/%s/ports/%d/rate", d->name, d->port);
    double gbps = 0;
    if ((f = fopen(path, "r"))) {
        if (fscanf(f, "%lf", &gbps) == 1 && gbps > 0)
            d->rate_mbps = (unsigned)(gbps * 1000);
        fclose(f);
    }
}

/* An OS device of the same PCI function that is an RDMA device. */
static hwloc_obj_t rdma_sibling(hwloc_obj_t o)
{
    hwloc_obj_t pci = pci_of(o);
    for (hwloc_obj_t c = pci ? pci->io_first_child : NULL; c; c = c->next_sibling)
        if (c->type == HWLOC_OBJ_OS_DEVICE && c->attr->osdev.type == HWLOC_OBJ_OSDEV_OPENFABRICS)
            return c;
    return NULL;
}

static struct topo_dev *gpu_by_obj(struct cb_topo *t, hwloc_obj_t key)
{
    for (int i = 0; i < t->ngpu; i++)
        if (t->gpus[i].key == key)
            return &t->gpus[i];
    return NULL;
}

static cb_status add_gpu(struct cb_topo *t, hwloc_obj_t o)
{
    hwloc_obj_t key = o->type == HWLOC_OBJ_PCI_DEVICE ? o : (pci_of(o) ? pci_of(o) : o);
    struct topo_dev *d = gpu_by_obj(t, key);
    if (d) {   /* another OS device of the same GPU: cuda0 + nvml0 */
        if (o->type == HWLOC_OBJ_OS_DEVICE && strlen(d->name) + strlen(o->name) + 2 <= sizeof d->name)
            strcat(strcat(d->name, "/"), o->name);
        return CB_OK;
    }
    if (!(d = push_dev(&t->gpus, &t->ngpu)))
        return CB_ENOMEM;
    fill_dev(t, d, key);
    d->key = key;
    if (o->type == HWLOC_OBJ_OS_DEVICE)
        snprintf(d->name, sizeof d->name, "%s", o->name);
    else
        snprintf(d->name, sizeof d->name, "pci-%s", d->busid);
    return CB_OK;
}

static cb_status add_osdev(struct cb_topo *t, hwloc_obj_t o)
{
    struct topo_dev *d;
    switch (o->attr->osdev.type) {
    case HWLOC_OBJ_OSDEV_OPENFABRICS:
        if (!(d = push_dev(&t->nics, &t->nnic)))
            return CB_ENOMEM;
        fill_dev(t, d, o);
        read_ports(d);
        read_kind(t, d);
        return CB_OK;
    case HWLOC_OBJ_OSDEV_NETWORK:
        if (rdma_sibling(o))
            return CB_OK;   /* the netdev of an RDMA NIC: named with it */
        if (!(d = push_dev(&t->eths, &t->neth)))
            return CB_ENOMEM;
        fill_dev(t, d, o);
        return CB_OK;
    case HWLOC_OBJ_OSDEV_GPU:
    case HWLOC_OBJ_OSDEV_COPROC:
        return add_gpu(t, o);
    default:
        return CB_OK;
    }
}

/* GPUs that no backend named: 3D controllers, and NVIDIA/AMD VGA (not a BMC's VGA). */
static int is_gpu_pci(hwloc_obj_t p)
{
    unsigned cls = p->attr->pcidev.class_id, ven = p->attr->pcidev.vendor_id;
    return cls == 0x0302 || (cls == 0x0300 && (ven == 0x10de || ven == 0x1002));
}

static void name_netdevs(struct cb_topo *t)
{
    for (int i = 0; i < t->nnic; i++) {
        hwloc_obj_t pci = pci_of(t->nics[i].obj);
        for (hwloc_obj_t c = pci ? pci->io_first_child : NULL; c; c = c->next_sibling)
            if (c->type == HWLOC_OBJ_OS_DEVICE && c->attr->osdev.type == HWLOC_OBJ_OSDEV_NETWORK) {
                snprintf(t->nics[i].netdev, sizeof t->nics[i].netdev, "%s", c->name);
                break;
            }
    }
}

static int by_locality(const void *a, const void *b)
{
    const struct topo_dev *x = a, *y = b;
    if (x->first_cpu != y->first_cpu)
        return x->first_cpu < y->first_cpu ? -1 : 1;
    int c = strcmp(x->busid, y->busid);
    return c ? c : strcmp(x->name, y->name);
}

static cb_status find_devices(struct cb_topo *t)
{
    cb_status st = CB_OK;
    for (hwloc_obj_t o = NULL; st == CB_OK && (o = hwloc_get_next_osdev(t->topo, o));)
        st = add_osdev(t, o);
    for (hwloc_obj_t p = NULL; st == CB_OK && (p = hwloc_get_next_pcidev(t->topo, p));)
        if (is_gpu_pci(p))
            st = add_gpu(t, p);
    if (st != CB_OK) {
        cb_log_error("out of memory listing the machine's devices");
        return st;
    }
    name_netdevs(t);
    if (t->nnic > 1)
        qsort(t->nics, (size_t)t->nnic, sizeof *t->nics, by_locality);
    if (t->neth > 1)
        qsort(t->eths, (size_t)t->neth, sizeof *t->eths, by_locality);
    if (t->ngpu > 1)
        qsort(t->gpus, (size_t)t->ngpu, sizeof *t->gpus, by_locality);
    return CB_OK;
}

/* ---- loading ---- */

/* PCI comes from sysfs (the linux component) instead of libpciaccess, whose
 * name database costs time and memory that is never freed; GPUs are found by
 * PCI class, without starting CUDA, OpenCL or an X server in every rank. */
static void skip_slow_components(hwloc_topology_t h)
{
    static const char *const slow[] = {"pci", "cuda", "opencl", "gl"};
    for (size_t i = 0; i < sizeof slow / sizeof slow[0]; i++)
        hwloc_topology_set_components(h, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, slow[i]);
}

static cb_status open_topology(struct cb_topo *t, const char *xml)
{
    if (hwloc_topology_init(&t->topo) != 0) {
        cb_log_error("hwloc cannot start (%s): out of memory?", strerror(errno));
        return CB_ENOMEM;
    }
    t->inited = 1;
    hwloc_topology_set_io_types_filter(t->topo, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
    skip_slow_components(t->topo);
    if (xml && access(xml, R_OK) != 0) {
        cb_log_error("cannot read the topology file '%s': %s; give an hwloc XML file (lstopo --of xml FILE)",
                     xml, strerror(errno));
        return CB_EUSAGE;
    }
    cb_status st = xml ? cb_topo_xml_check(xml) : CB_OK;
    if (st != CB_OK)
        return st;
    if ((xml && hwloc_topology_set_xml(t->topo, xml) != 0) || hwloc_topology_load(t->topo) != 0) {
        if (xml)
            cb_log_error("'%s' is not an hwloc XML topology: make one with lstopo --of xml FILE", xml);
        else   /* the caller decides whether this stops the run */
            cb_log_warn("hwloc cannot read this machine's topology (%s): is /sys mounted?", strerror(errno));
        return xml ? CB_EUSAGE : CB_EDEVICE;
    }
    t->loaded = 1;
    return CB_OK;
}

/* The host: this machine's name, else the file's HostName, else the file's name without ".xml". */
static void name_source(struct cb_topo *t, const char *xml)
{
    const char *host = hwloc_obj_get_info_by_name(hwloc_get_root_obj(t->topo), "HostName");
    t->from_xml = xml != NULL;
    snprintf(t->source, sizeof t->source, "%s", xml ? xml : "this machine");
    if (!xml && gethostname(t->host, sizeof t->host - 1) == 0)
        return;
    if (!host) {
        host = strrchr(t->source, '/') ? strrchr(t->source, '/') + 1 : t->source;
        snprintf(t->host, sizeof t->host, "%.*s", (int)strcspn(host, "."), host);
    } else {
        snprintf(t->host, sizeof t->host, "%s", host);
    }
}

cb_status cb_topo_load(const char *xml_path, struct cb_topo **out)
{
    struct cb_topo *t = calloc(1, sizeof *t);
    if (!t) {
        cb_log_error("out of memory loading the topology");
        return CB_ENOMEM;
    }
    cb_status st = open_topology(t, xml_path);
    if (st == CB_OK) {
        name_source(t, xml_path);
        st = find_devices(t);
    }
    if (st != CB_OK) {
        cb_topo_free(t);
        return st;
    }
    *out = t;
    return CB_OK;
}

void cb_topo_free(struct cb_topo *t)
{
    if (!t)
        return;
    if (t->inited)
        hwloc_topology_destroy(t->topo);
    free(t->nics);
    free(t->eths);
    free(t->gpus);
    free(t);
}

int cb_topo_nnics(const struct cb_topo *t)
{
    return t ? t->nnic : 0;
}

const char *cb_topo_host(const struct cb_topo *t)
{
    return t->host;
}

/* ---- the machine's map ---- */

static void print_numa(const struct cb_topo *t, FILE *out)
{
    char cpus[CB_TOPO_CPUS_LEN], pk[32];
    for (hwloc_obj_t o = NULL; (o = hwloc_get_next_obj_by_type(t->topo, HWLOC_OBJ_NUMANODE, o));) {
        cb_topo_list(o->cpuset, cpus, sizeof cpus);
        cb_topo_package_list(t, o->cpuset, pk, sizeof pk);
        fprintf(out, "#   NUMA %u: package %s, cpus %s\n", o->os_index, pk,
                hwloc_bitmap_iszero(o->cpuset) ? "none (memory only)" : cpus);
    }
}

/* "package 0, NUMA 0, cpus 0-3" of a device, or "no locality" */
static void put_locality(const struct cb_topo *t, const struct topo_dev *d, FILE *out)
{
    char cpus[CB_TOPO_CPUS_LEN], pk[32], numa[32];
    if (!d->anc || hwloc_bitmap_iszero(d->anc->cpuset)) {
        fputs("no locality known", out);
        return;
    }
    cb_topo_list(d->anc->cpuset, cpus, sizeof cpus);
    cb_topo_package_list(t, d->anc->cpuset, pk, sizeof pk);
    cb_topo_numa_list(t, d->anc->cpuset, numa, sizeof numa);
    fprintf(out, "package %s, NUMA %s, cpus %s", pk, numa, cpus);
}

static void print_nics(const struct cb_topo *t, FILE *out)
{
    if (t->nnic == 0)
        fputs("#   no RDMA NIC: the verbs transport cannot run here (tcp and shm can)\n", out);
    for (int i = 0; i < t->nnic; i++) {
        const struct topo_dev *d = &t->nics[i];
        fprintf(out, "#   NIC %s (%s%s%s): ", d->name, d->netdev[0] ? d->netdev : "", d->netdev[0] ? ", " : "",
                d->busid[0] ? d->busid : "no PCI address");
        put_locality(t, d, out);
        if (d->nports == 0)
            fprintf(out, ", port %d (state unknown)\n", d->port);
        else if (d->active)
            fprintf(out, ", port %d ACTIVE\n", d->port);
        else
            fputs(", no ACTIVE port: not used\n", out);
    }
    for (int i = 0; i < t->neth; i++) {
        fprintf(out, "#   Ethernet %s (%s): ", t->eths[i].name, t->eths[i].busid[0] ? t->eths[i].busid : "virtual");
        put_locality(t, &t->eths[i], out);
        fputs(", no RDMA\n", out);
    }
}

static void print_gpus(const struct cb_topo *t, FILE *out)
{
    for (int i = 0; i < t->ngpu; i++) {
        const struct topo_dev *g = &t->gpus[i];
        int best = -1, bd = CB_DIST_UNKNOWN + 1;
        for (int n = 0; n < t->nnic; n++) {
            int d = dev_dist(t, g, &t->nics[n]);
            if (d < bd) {
                bd = d;
                best = n;
            }
        }
        fprintf(out, "#   GPU %s (%s): ", g->name, g->busid[0] ? g->busid : "no PCI address");
        put_locality(t, g, out);
        if (best >= 0)
            fprintf(out, ", nearest NIC %s (%s)\n", t->nics[best].name, cb_topo_dist_name(bd));
        else
            fputs(", no RDMA NIC\n", out);
    }
}

void cb_topo_print_machine(const struct cb_topo *t, FILE *out)
{
    hwloc_topology_t h = t->topo;
    fprintf(out, "# Topology of %s (host %s): %d package(s), %d NUMA node(s), %d core(s), %d cpu(s)\n",
            t->source, t->host, hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_PACKAGE),
            hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_NUMANODE), hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_CORE),
            hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_PU));
    print_numa(t, out);
    print_nics(t, out);
    print_gpus(t, out);
}
