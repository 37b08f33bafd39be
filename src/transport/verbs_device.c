/* The verbs transport: which device, port, GID, MTU and rdma_cm address a
 * rank uses, the limits checked before anything is registered (memlock,
 * queue sizes), and the properties shown in the run header. Every refusal
 * says what was wrong and what to do. */
#include "verbs_internal.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *gid_type_str(int t)
{
    return t == 2 ? "RoCE v2" : t == 1 ? "RoCE v1" : t < 0 ? "RoCE (version unknown)" : "IB";
}

static int gid_is_zero(const union ibv_gid *g)
{
    for (int i = 0; i < 16; i++)
        if (g->raw[i])
            return 0;
    return 1;
}

static int gid_is_v4mapped(const union ibv_gid *g)
{
    for (int i = 0; i < 10; i++)
        if (g->raw[i])
            return 0;
    return g->raw[10] == 0xff && g->raw[11] == 0xff;
}

static int gid_is_linklocal(const union ibv_gid *g)
{
    return g->raw[0] == 0xfe && (g->raw[1] & 0xc0) == 0x80;
}

static void gid_str(const union ibv_gid *g, char *buf, size_t len)
{
    if (gid_is_v4mapped(g))
        inet_ntop(AF_INET, g->raw + 12, buf, (socklen_t)len);
    else
        inet_ntop(AF_INET6, g->raw, buf, (socklen_t)len);
}

int vb_read_file(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    return 0;
}

/* A sysfs value without its trailing blanks; -1 when unreadable or empty. */
static int read_sysfs(const char *path, char *buf, size_t len)
{
    if (vb_read_file(path, buf, len))
        return -1;
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return n ? 0 : -1;
}

/* RoCE version of a GID table entry from sysfs: 2, 1, or 0 when it does not say. */
static int sysfs_gid_type(const char *dev, int port, int idx)
{
    char path[256], buf[64];
    snprintf(path, sizeof path, "/sys/class/infiniband/%s/ports/%d/gid_attrs/types/%d", dev, port, idx);
    if (read_sysfs(path, buf, sizeof buf))
        return 0;
    if (strstr(buf, "v2"))
        return 2;
    if (strstr(buf, "v1"))
        return 1;
    return 0;
}

/* RoCE version of a GID table entry: 2, 1, or 0 when unknown. The verbs
 * library's answer (ibv_query_gid_ex, the kernel's GID table) first, so the
 * type shown is the type used; sysfs only where the library cannot say
 * (old kernels, or a container without the ioctl). */
static int gid_type(const struct vctx *t, int idx)
{
    struct ibv_gid_entry e;
    if (!ibv_query_gid_ex(t->ctx, (uint32_t)t->port, (uint32_t)idx, &e, 0)) {
        switch (e.gid_type) {
        case IBV_GID_TYPE_ROCE_V2: return 2;
        case IBV_GID_TYPE_ROCE_V1: return 1;
        default: return 0;
        }
    }
    return sysfs_gid_type(t->dev, t->port, idx);
}

static unsigned sysfs_gid_ifindex(const char *dev, int port, int idx)
{
    char path[256], buf[64];
    snprintf(path, sizeof path, "/sys/class/infiniband/%s/ports/%d/gid_attrs/ndevs/%d", dev, port, idx);
    if (read_sysfs(path, buf, sizeof buf))
        return 0;
    return if_nametoindex(buf);
}

/* Does the GID fall in "a.b.c.d/len" or "x:y::/len"? -1 if the subnet does not parse. */
static int gid_in_subnet(const union ibv_gid *g, const char *subnet)
{
    char addr[64];
    int len = -1;
    const char *slash = strchr(subnet, '/');
    size_t alen = slash ? (size_t)(slash - subnet) : strlen(subnet);
    if (alen >= sizeof addr)
        return -1;
    memcpy(addr, subnet, alen);
    addr[alen] = '\0';
    uint8_t net[16];
    const uint8_t *a;
    int bits;
    if (inet_pton(AF_INET, addr, net) == 1) {
        if (!gid_is_v4mapped(g))
            return 0;
        a = g->raw + 12;
        bits = 32;
    } else if (inet_pton(AF_INET6, addr, net) == 1) {
        a = g->raw;
        bits = 128;
    } else {
        return -1;
    }
    if (slash) {
        char *end;
        len = (int)strtol(slash + 1, &end, 10);
        if (*end || len < 0 || len > bits)
            return -1;
    } else {
        len = bits;
    }
    for (int i = 0; i < len; i++) {
        int m = 0x80 >> (i % 8);
        if ((a[i / 8] & m) != (net[i / 8] & m))
            return 0;
    }
    return 1;
}

int vb_have_cap_ipc_lock(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int r = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long caps;
        if (sscanf(line, "CapEff: %llx", &caps) == 1) {
            r = (caps >> 14) & 1;   /* CAP_IPC_LOCK */
            break;
        }
    }
    fclose(f);
    return r;
}

/* The clear-to-send and offer entries of one connection. */
size_t vb_fifo_entries_bytes(int nslots)
{
    return vb_page_round(2 * (size_t)nslots * sizeof(struct cts_entry));
}

/* Bytes one connection registers. */
size_t vb_conn_reg_bytes(const struct cb_transport_config *cfg)
{
    return vb_page_round((size_t)cfg->nslots * cfg->slot_bytes) + vb_fifo_entries_bytes(cfg->nslots);
}

cb_status vb_check_memlock(struct vctx *t, size_t more, const char *what, const struct cb_peer *peer)
{
    if (vb_memlock_room(t, more))
        return CB_OK;
    char who[96] = "";
    if (peer)
        snprintf(who, sizeof who, " for rank %d (%s)", peer->rank, peer->host);
    cb_log_error("verbs: %s:%d: the memlock limit (ulimit -l) is %zu KiB but %s%s needs %zu KiB registered "
                 "(%zu KiB already): run `ulimit -l unlimited` (or raise memlock in /etc/security/limits.conf "
                 "or the launcher/container), or use fewer/smaller slots",
                 t->dev, t->port, t->memlock_limit / 1024, what, who, (t->registered + more) / 1024,
                 t->registered / 1024);
    return CB_EDEVICE;
}

/* Queue sizes of a receive connection (the larger side) against the device's limits. */
cb_status vb_check_queue_limits(const struct vctx *t)
{
    int nq = t->cfg.qps_per_conn, sq = 2 * t->cfg.nslots + 4, rq = t->cfg.nslots + 2;
    int cqe = nq * (sq + rq) + 8;
    if (cqe <= t->dattr.max_cqe && sq <= t->dattr.max_qp_wr)
        return CB_OK;
    cb_log_error("verbs: %s:%d: %d QPs x %d slots need a %d-entry CQ and %d-deep send queues, more than the "
                 "device allows (max CQ %d, max WRs %d): use fewer --qps or --slots", t->dev, t->port, nq,
                 t->cfg.nslots, cqe, sq, t->dattr.max_cqe, t->dattr.max_qp_wr);
    return CB_EUSAGE;
}

/* "1 (10.0.0.1, RoCE v2), ..." for messages: the non-empty GID entries. */
static void list_gids(const struct vctx *t, char *buf, size_t len)
{
    size_t off = 0;
    int roce = t->pattr.link_layer == IBV_LINK_LAYER_ETHERNET;
    buf[0] = '\0';
    for (int i = 0; i < t->pattr.gid_tbl_len && off + 1 < len; i++) {
        union ibv_gid g;
        char a[INET6_ADDRSTRLEN];
        if (ibv_query_gid(t->ctx, (uint8_t)t->port, i, &g) || gid_is_zero(&g))
            continue;
        gid_str(&g, a, sizeof a);
        int type = roce ? gid_type(t, i) : 0;
        int n = snprintf(buf + off, len - off, "%s%d (%s%s%s)", off ? ", " : "", i, a, roce ? ", " : "",
                         !roce ? "" : type ? gid_type_str(type) : "RoCE");
        if (n < 0)
            break;
        off += (size_t)n;
    }
    if (!off)
        snprintf(buf, len, "none (no address on the port: check `ip addr` on its netdev / IPoIB)");
}

/* The GID: InfiniBand uses cfg->gid_index or 0; RoCE scans the table and
 * prefers RoCE v2, IPv4-mapped, not link-local, within the family/subnet filters. */
cb_status vb_choose_gid(struct vctx *t)
{
    const struct cb_transport_config *cfg = &t->cfg;
    int ntbl = t->pattr.gid_tbl_len;
    int roce = t->pattr.link_layer == IBV_LINK_LAYER_ETHERNET;
    if (cfg->roce_version && cfg->roce_version != 1 && cfg->roce_version != 2) {
        cb_log_error("verbs: RoCE version %d asked: it is 1 or 2 (0 = prefer 2)", cfg->roce_version);
        return CB_EUSAGE;
    }
    if (cfg->gid_family[0] && strcmp(cfg->gid_family, "ipv4") && strcmp(cfg->gid_family, "ipv6")) {
        cb_log_error("verbs: GID family '%s': it is ipv4 or ipv6", cfg->gid_family);
        return CB_EUSAGE;
    }
    if (cfg->gid_subnet[0]) {
        union ibv_gid z;
        memset(&z, 0, sizeof z);
        if (gid_in_subnet(&z, cfg->gid_subnet) < 0) {
            cb_log_error("verbs: GID subnet '%s' does not parse: give a.b.c.d/len or an IPv6 prefix/len",
                         cfg->gid_subnet);
            return CB_EUSAGE;
        }
    }
    if (cfg->gid_index >= 0) {
        union ibv_gid g;
        if (cfg->gid_index >= ntbl) {
            cb_log_error("verbs: GID index %d is out of range: %s port %d has %d GID entries (0..%d); "
                         "see /sys/class/infiniband/%s/ports/%d/gids/ or leave the index on auto",
                         cfg->gid_index, t->dev, t->port, ntbl, ntbl - 1, t->dev, t->port);
            return CB_EDEVICE;
        }
        if (ibv_query_gid(t->ctx, (uint8_t)t->port, cfg->gid_index, &g) || gid_is_zero(&g)) {
            char used[512];
            list_gids(t, used, sizeof used);
            cb_log_error("verbs: GID index %d of %s port %d is empty (no address behind it); the entries in use "
                         "are: %s; pick one of them with --gid-index or leave the index on auto",
                         cfg->gid_index, t->dev, t->port, used);
            return CB_EDEVICE;
        }
        int type = roce ? gid_type(t, cfg->gid_index) : 0;
        if (roce && cfg->roce_version && type && type != cfg->roce_version) {
            cb_log_error("verbs: GID index %d of %s port %d is %s but RoCE v%d was asked: pick another index "
                         "(types in /sys/class/infiniband/%s/ports/%d/gid_attrs/types/) or drop the version",
                         cfg->gid_index, t->dev, t->port, gid_type_str(type), cfg->roce_version, t->dev, t->port);
            return CB_EDEVICE;
        }
        t->gid_index = cfg->gid_index;
        t->gid = g;
        t->gid_type = roce ? (type ? type : -1) : 0;
        return CB_OK;
    }
    if (!roce) {
        if (ibv_query_gid(t->ctx, (uint8_t)t->port, 0, &t->gid)) {
            cb_log_error("verbs: cannot read GID 0 of %s port %d: %s", t->dev, t->port, strerror(errno));
            return CB_EDEVICE;
        }
        t->gid_index = 0;
        t->gid_type = 0;
        return CB_OK;
    }
    int best = -1, best_score = -1, best_type = 0, nonempty = 0;
    union ibv_gid best_gid;
    memset(&best_gid, 0, sizeof best_gid);
    for (int i = 0; i < ntbl; i++) {
        union ibv_gid g;
        if (ibv_query_gid(t->ctx, (uint8_t)t->port, i, &g) || gid_is_zero(&g))
            continue;
        nonempty++;
        int type = gid_type(t, i);
        if (cfg->roce_version && type != cfg->roce_version)
            continue;
        int v4 = gid_is_v4mapped(&g), ll = gid_is_linklocal(&g);
        if (!strcmp(cfg->gid_family, "ipv4") && !v4)
            continue;
        if (!strcmp(cfg->gid_family, "ipv6") && v4)
            continue;
        if (cfg->gid_subnet[0] && gid_in_subnet(&g, cfg->gid_subnet) != 1)
            continue;
        int score = (!ll) * 4 + (type == 2) * 2 + v4;
        if (score > best_score) {
            best_score = score;
            best = i;
            best_gid = g;
            best_type = type;
        }
    }
    if (best < 0) {
        cb_log_error("verbs: no usable GID on %s port %d (%d non-empty entries; wanted%s%s%s%s%s): "
                     "is an IP address configured on the port's netdev? see /sys/class/infiniband/%s/ports/%d/gids/",
                     t->dev, t->port, nonempty, cfg->roce_version == 2 ? " RoCE v2" : cfg->roce_version == 1 ? " RoCE v1" : "",
                     cfg->gid_family[0] ? " family " : "", cfg->gid_family,
                     cfg->gid_subnet[0] ? " in subnet " : "", cfg->gid_subnet, t->dev, t->port);
        return CB_EDEVICE;
    }
    t->gid_index = best;
    t->gid = best_gid;
    t->gid_type = best_type ? best_type : -1;
    return CB_OK;
}

/* The IP address rdma_cm binds to: the chosen GID's (RoCE), or the port's
 * IPoIB interface address (InfiniBand). */
cb_status vb_choose_cm_addr(struct vctx *t)
{
    memset(&t->addr, 0, sizeof t->addr);
    if (t->pattr.link_layer == IBV_LINK_LAYER_ETHERNET) {
        if (gid_is_v4mapped(&t->gid)) {
            struct sockaddr_in *s = (struct sockaddr_in *)&t->addr;
            s->sin_family = AF_INET;
            memcpy(&s->sin_addr, t->gid.raw + 12, 4);
        } else {
            struct sockaddr_in6 *s = (struct sockaddr_in6 *)&t->addr;
            s->sin6_family = AF_INET6;
            memcpy(&s->sin6_addr, t->gid.raw, 16);
            if (gid_is_linklocal(&t->gid))
                s->sin6_scope_id = sysfs_gid_ifindex(t->dev, t->port, t->gid_index);
        }
    } else {
        /* IPoIB: a netdev of this device with an IPv4 address */
        char path[256];
        snprintf(path, sizeof path, "/sys/class/infiniband/%s/device/net", t->dev);
        DIR *d = opendir(path);
        struct ifaddrs *ifa = NULL;
        int found = 0;
        if (d && !getifaddrs(&ifa)) {
            struct dirent *e;
            while (!found && (e = readdir(d))) {
                if (e->d_name[0] == '.')
                    continue;
                /* multi-port HCAs: the netdev of our port (dev_port is 0-based) */
                char dp[320], val[16];
                snprintf(dp, sizeof dp, "/sys/class/net/%s/dev_port", e->d_name);
                if (!read_sysfs(dp, val, sizeof val) && atoi(val) != t->port - 1)
                    continue;
                for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
                    if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && !strcmp(i->ifa_name, e->d_name)) {
                        memcpy(&t->addr, i->ifa_addr, sizeof(struct sockaddr_in));
                        found = 1;
                        break;
                    }
                }
            }
        }
        if (ifa)
            freeifaddrs(ifa);
        if (d)
            closedir(d);
        if (!found) {
            cb_log_error("verbs: %s port %d is InfiniBand and rdma_cm needs an IP address, but no IPoIB "
                         "interface of %s has an IPv4 address: configure IPoIB (ib0) or use --transport tcp",
                         t->dev, t->port, t->dev);
            return CB_EDEVICE;
        }
    }
    const void *a = t->addr.ss_family == AF_INET ? (const void *)&((struct sockaddr_in *)&t->addr)->sin_addr
                                                  : (const void *)&((struct sockaddr_in6 *)&t->addr)->sin6_addr;
    inet_ntop(t->addr.ss_family, a, t->addr_str, sizeof t->addr_str);
    return CB_OK;
}

cb_status vb_choose_mtu(struct vctx *t)
{
    int want = t->cfg.path_mtu;
    int max = vb_mtu_bytes(t->pattr.max_mtu), act = vb_mtu_bytes(t->pattr.active_mtu);
    t->mtu = t->pattr.active_mtu;
    if (!want)
        return CB_OK;
    if (want < 256 || (want & (want - 1))) {
        cb_log_error("verbs: path MTU %d is not an RDMA MTU: use 256, 512, 1024, 2048 or 4096", want);
        return CB_EUSAGE;
    }
    if (want > act) {
        /* the path MTU cannot exceed what the link runs at now */
        char how[160] = "the subnet manager and the switch ports set it on InfiniBand";
        if (t->pattr.link_layer == IBV_LINK_LAYER_ETHERNET) {
            char path[256], nd[64] = "";
            snprintf(path, sizeof path, "/sys/class/infiniband/%s/ports/%d/gid_attrs/ndevs/%d", t->dev, t->port,
                     t->gid_index);
            if (read_sysfs(path, nd, sizeof nd))
                snprintf(nd, sizeof nd, "DEV");
            snprintf(how, sizeof how, "on RoCE it follows the netdev's MTU: e.g. `ip link set %s mtu 9000` "
                     "gives 4096 (switches too)", nd);
        }
        cb_log_error("verbs: --mtu %d is larger than %s port %d's active MTU %d (maximum %d; %s): "
                     "use --mtu %d or less, or leave --mtu out", want, t->dev, t->port, act, max, how, act);
        return CB_EDEVICE;
    }
    if (want < act) {
        enum ibv_mtu m = IBV_MTU_256;
        while (vb_mtu_bytes(m) < want)
            m = (enum ibv_mtu)(m + 1);
        t->mtu = m;
    }
    return CB_OK;
}

/* Every speed code a port reports (active_speed, or active_speed_ex where
 * rdma-core has it: XDR and later do not fit the old 8-bit field), per lane. */
static const struct { uint32_t code; double gbps; const char *name; } speeds[] = {
    {1, 2.5, "SDR"}, {2, 5, "DDR"}, {4, 10, "QDR"}, {8, 10, "FDR10"}, {16, 14, "FDR"},
    {32, 25, "EDR"}, {64, 50, "HDR"}, {128, 100, "NDR"}, {256, 200, "XDR"}};
static const struct { int code, lanes; } widths[] = {{1, 1}, {2, 4}, {4, 8}, {8, 12}, {16, 2}};

/* The speed code of a port: active_speed_ex where rdma-core has it and it is set. */
uint32_t vb_speed_code(const struct ibv_port_attr *pa)
{
#ifdef CB_HAVE_ACTIVE_SPEED_EX
    if (pa->active_speed_ex)
        return pa->active_speed_ex;
#endif
    return pa->active_speed;
}

/* Nominal rate in Mb/s of a speed and width code, 0 when either is unknown;
 * `desc` (may be NULL) gets "200 Gb/s (4X HDR)". */
uint32_t vb_rate_mbps(uint32_t speed, int width, char *desc, size_t len)
{
    int lanes = 0;
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++)
        if (widths[i].code == width)
            lanes = widths[i].lanes;
    for (size_t i = 0; i < sizeof speeds / sizeof speeds[0] && lanes; i++) {
        if (speeds[i].code != speed)
            continue;
        double gbps = speeds[i].gbps * lanes;   /* nominal, as ibstat shows it */
        if (desc)
            snprintf(desc, len, "%g Gb/s (%dX %s)", gbps, lanes, speeds[i].name);
        return (uint32_t)(gbps * 1000);
    }
    return 0;
}

/* The port's rate ("200 Gb/s (4X HDR)") and t->rate_mbps; a speed this
 * table does not know is read from sysfs, which the kernel keeps current. */
void vb_port_rate(struct vctx *t)
{
    uint32_t code = vb_speed_code(&t->pattr);
    t->rate_mbps = vb_rate_mbps(code, t->pattr.active_width, t->rate_str, sizeof t->rate_str);
    if (t->rate_mbps)
        return;
    char path[256], buf[64];
    snprintf(path, sizeof path, "/sys/class/infiniband/%s/ports/%d/rate", t->dev, t->port);
    double gbps = 0;
    if (!read_sysfs(path, buf, sizeof buf) && sscanf(buf, "%lf", &gbps) == 1 && gbps > 0) {
        t->rate_mbps = (uint32_t)(gbps * 1000);
        snprintf(t->rate_str, sizeof t->rate_str, "%s", buf);
    } else {
        snprintf(t->rate_str, sizeof t->rate_str, "unknown (speed code %u, width code %u)", code,
                 t->pattr.active_width);
    }
}

/* Distinct values of one per-QP field over all connections, "104" or "0,104"; n = QPs seen. */
static int qp_values(const struct vctx *t, size_t field, char *buf, size_t len)
{
    int vals[8], nv = 0, n = 0;
    for (const struct vconn *c = t->conns; c; c = c->next)
        for (int i = 0; i < c->nq; i++) {
            if (!c->q[i].qp)
                continue;
            int v = *(const int *)((const char *)&c->q[i] + field);
            n++;
            int k = 0;
            while (k < nv && vals[k] != v)
                k++;
            if (k == nv && nv < 8)
                vals[nv++] = v;
        }
    size_t off = 0;
    buf[0] = '\0';
    for (int k = 0; k < nv && off < len; k++) {
        const char *sep = k ? "," : "";
        if (vals[k] == -1)
            off += (size_t)snprintf(buf + off, len - off, "%s?", sep);
        else if (vals[k] == -2)
            off += (size_t)snprintf(buf + off, len - off, "%snone", sep);
        else
            off += (size_t)snprintf(buf + off, len - off, "%s%d", sep, vals[k]);
    }
    return n;
}

/* Where a QP value came from: "fabric", "--tc", or "--tc 3 asked" when the
 * device kept another value (rxe keeps no SL on RoCE). */
static void origin(int asked, const char *flag, const char *got, char *buf, size_t len)
{
    char want[16];
    snprintf(want, sizeof want, "%d", asked);
    if (asked < 0)
        snprintf(buf, len, "fabric");
    else if (!strcmp(got, want))
        snprintf(buf, len, "%s", flag);
    else
        snprintf(buf, len, "%s %d asked", flag, asked);
}

/* sl: what the QPs have, where it came from (--sl, rdma_cm's "fabric", oob's derivation) and,
 * where the device kept another value than was asked (rxe keeps none), what was asked. */
static void sl_property(const struct vctx *t, struct cb_props *props)
{
    char v[64], asked[64], from[160];
    qp_values(t, offsetof(struct vqp, sl), v, sizeof v);
    qp_values(t, offsetof(struct vqp, sl_asked), asked, sizeof asked);
    if (t->cfg.service_level >= 0)
        origin(t->cfg.service_level, "--sl", v, from, sizeof from);
    else if (strcmp(asked, v))
        snprintf(from, sizeof from, "%s, %s asked", t->connect_mode == VB_CONNECT_OOB ? t->oob_sl_from : "fabric",
                 asked);
    else
        snprintf(from, sizeof from, "%s", t->connect_mode == VB_CONNECT_OOB ? t->oob_sl_from : "fabric");
    cb_props_add(props, "sl", "%s (%s)", v, from);
}

/* tc / sl / path_mtu: what the QPs have (queried after RTR), and where it came from. */
static void qp_properties(const struct vctx *t, struct cb_props *props)
{
    char v[64], from[32];
    if (!qp_values(t, offsetof(struct vqp, tc), v, sizeof v)) {
        cb_props_add(props, "path_mtu", "%d (no connection)", vb_mtu_bytes(t->mtu));
        if (t->cfg.traffic_class >= 0)
            cb_props_add(props, "tc", "%d (--tc DSCP %d, no connection)", t->cfg.traffic_class, t->cfg.traffic_class >> 2);
        else
            cb_props_add(props, "tc", "fabric (no connection)");
        if (t->cfg.service_level >= 0)
            cb_props_add(props, "sl", "%d (--sl, no connection)", t->cfg.service_level);
        else
            cb_props_add(props, "sl", "fabric (no connection)");
        return;
    }
    char dscp[32] = "";
    int tc;
    if (sscanf(v, "%d", &tc) == 1 && !strchr(v, ','))
        snprintf(dscp, sizeof dscp, " DSCP %d", tc >> 2);
    char mtu[64];
    qp_values(t, offsetof(struct vqp, mtu), mtu, sizeof mtu);
    cb_props_add(props, "path_mtu", "%s", mtu);
    int oob = t->connect_mode == VB_CONNECT_OOB;
    origin(t->cfg.traffic_class, "--tc", v, from, sizeof from);
    cb_props_add(props, "tc", "%s (%s%s)", v, oob && t->cfg.traffic_class < 0 ? t->oob_tc_from : from, dscp);
    sl_property(t, props);
}

/* What --ib-relaxed-ordering, --ib-ar and --ib-split-data put in force, and why. */
static void data_path_properties(const struct vctx *t, struct cb_props *props)
{
    int ro = t->cfg.ib_relaxed_ordering, ar = t->cfg.ib_ar;
    if (vb_data_access(t))
        cb_props_add(props, "relaxed_ordering", "requested (%s; a device without it ignores it)", cb_switch_name(ro));
    else
        cb_props_add(props, "relaxed_ordering", "off (--ib-relaxed-ordering off)");
    const char *why = ar != CB_SWITCH_AUTO ? (ar == CB_SWITCH_ON ? "--ib-ar on" : "--ib-ar off")
                      : t->pattr.link_layer == IBV_LINK_LAYER_INFINIBAND ? "auto: InfiniBand" : "auto: RoCE";
    if (vb_ar(t))
        cb_props_add(props, "adaptive_routing", "on (%s): pieces of %zu B or more as write + 0-byte write with imm",
                     why, t->cfg.ib_ar_threshold);
    else
        cb_props_add(props, "adaptive_routing", "off (%s)", why);
    if (cb_split_data(&t->cfg))
        cb_props_add(props, "split_data", "on (--ib-split-data on): each message in %d pieces, one per QP",
                     t->cfg.qps_per_conn);
    else if (t->cfg.qps_per_conn == 1)
        cb_props_add(props, "split_data", "off (--qps 1): each message whole on the one QP");
    else
        cb_props_add(props, "split_data", "off (%s): each message whole on one QP, QPs in turn",
                     t->cfg.ib_split_data == CB_SWITCH_OFF ? "--ib-split-data off" : "auto");
}

void vb_properties(void *tctx, struct cb_props *props)
{
    struct vctx *t = tctx;
    char g[INET6_ADDRSTRLEN];
    gid_str(&t->gid, g, sizeof g);
    props->n = 0;
    cb_props_add(props, "device", "%s", t->dev);
    cb_props_add(props, "port", "%d", t->port);
    cb_props_add(props, "link_layer", "%s", vb_link_layer_str(t->pattr.link_layer));
    cb_props_add(props, "rate", "%s", t->rate_str);
    cb_props_add(props, "active_mtu", "%d", vb_mtu_bytes(t->pattr.active_mtu));
    qp_properties(t, props);
    cb_props_add(props, "gid_index", "%d", t->gid_index);
    cb_props_add(props, "gid_type", "%s", gid_type_str(t->gid_type));
    cb_props_add(props, "gid", "%s", g);
    cb_props_add(props, "connect", "%s (%s)", vb_connect_mode_str(t->connect_mode), t->connect_why);
    if (t->setup_last_ns > t->setup_first_ns && t->setup_first_ns)
        cb_props_add(props, "setup_ms", "%.3f", (double)(t->setup_last_ns - t->setup_first_ns) / 1e6);
    if (t->connect_mode == VB_CONNECT_CM)
        cb_props_add(props, "cm_addr", "%s", t->addr_str);
    cb_props_add(props, "qps", "%d", t->cfg.qps_per_conn);
    cb_props_add(props, "timeout", "%d", t->cfg.ib_timeout);
    cb_props_add(props, "retry", "%d", t->cfg.ib_retry_cnt);
    data_path_properties(t, props);
    if (t->rate_warn[0])
        cb_props_add(props, "rate_mismatch", "%s", t->rate_warn);
    if (t->port_note[0])
        cb_props_add(props, "hca_note", "%s", t->port_note);
}
