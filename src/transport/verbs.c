/* The raw-verbs transport: RC QPs on libibverbs, connected with librdmacm.
 *
 * Data path (receiver-driven, one-sided, like NCCL's net plugin):
 *  - the receiver registers its FIFO (nslots x slot_bytes) once; whenever a
 *    slot is free it RDMA-writes a clear-to-send entry {addr, rkey, size, seq}
 *    into the sender's registered CTS FIFO (inline when the QP allows it);
 *  - the sender gets a registered staging slot only once the CTS for its
 *    sequence number has arrived (so a posted slot is written at once and
 *    never waits for a later call); it fills it and RDMA-writes it straight into the
 *    receive slot with WRITE_WITH_IMM (imm = seq & 0xff << 24 | size), split
 *    over the connection's QPs (one chunk per QP);
 *  - the receiver completes a slot when every QP has delivered its
 *    IBV_WC_RECV_RDMA_WITH_IMM for it (receive WRs stay posted).
 *  Most work requests are unsignaled; every Nth (N = nslots / 2), and a
 *  write that fills the sender's last free slot, is signaled so the send
 *  queues drain and staging slots come back.
 *
 * Connection set-up: the listener binds an rdma_cm id to the IP address of
 * the chosen GID with an ephemeral port; the handle carries that address and
 * port. The sender makes one rdma_cm connection per QP; the private data of
 * the CM request carries its CTS FIFO address and rkey, the listen nonce and
 * the job token. QPs are ours (ibv_create_qp), moved INIT -> RTR -> RTS with
 * the attributes from rdma_init_qp_attr plus our path MTU, timeouts, retry
 * counts, traffic class and service level. Everything is non-blocking: the
 * CM event channel fd is O_NONBLOCK and polled by connect, accept and
 * progress.
 *
 * One helper thread per context reads the device's asynchronous events and
 * records fatal ones (atomics); the next progress() reports them. */
#include "transport.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#define VH_MAGIC 0x43425648u    /* "CBVH": handle */
#define VREQ_MAGIC 0x43425652u  /* "CBVR": CM request private data */
#define VREP_MAGIC 0x43425641u  /* "CBVA": CM reply private data */
#define VH_VERSION 1
#define CQ_BATCH 32

enum { WR_DATA = 1, WR_CTS = 2, WR_RECV = 3 };
#define WR_ID(kind, n) (((uint64_t)(kind) << 56) | (n))
#define WR_KIND(id) ((int)((id) >> 56))
#define WR_N(id) ((id) & ((UINT64_C(1) << 56) - 1))

enum { OWN_LISTEN = 1, OWN_QP = 2 };
enum { QS_NONE, QS_ADDR, QS_ROUTE, QS_CONNECTING, QS_ESTABLISHED, QS_GONE };

/* What the handle says; CB_HANDLE_BYTES (256) bounds it. */
struct vhandle {
    uint32_t magic;
    uint16_t version;
    uint16_t family;          /* AF_INET or AF_INET6 */
    uint32_t nonce;           /* identifies this listen */
    int32_t rank;             /* the listening (receiving) rank */
    uint16_t port;            /* rdma_cm port, network byte order */
    uint16_t nqps;
    uint32_t nslots;
    uint64_t slot_bytes;
    uint8_t addr[16];         /* IPv4 (first 4 bytes) or IPv6 address */
    uint32_t scope_id;
    char dev[64];             /* for messages only */
    char host[64];
};
_Static_assert(sizeof(struct vhandle) <= CB_HANDLE_BYTES, "verbs handle too large");

/* CM REQ private data (at most 56 bytes on IB/RoCE); big-endian fields. */
struct vreq {
    uint32_t magic;
    uint32_t nonce;
    int32_t rank;             /* the sender */
    uint16_t qp_idx, nqps;
    uint64_t cts_addr;
    uint32_t cts_rkey;
    uint32_t nslots;
    uint8_t token[CB_TOKEN_BYTES];
};
_Static_assert(sizeof(struct vreq) <= 56, "CM request private data too large");

struct vrep {
    uint32_t magic;
    int32_t rank;             /* the receiver */
    uint16_t qp_idx, pad;
};

/* One clear-to-send entry; seq (= sequence + 1) is written last. */
struct cts_entry {
    uint64_t addr;
    uint32_t rkey;
    uint32_t size;
    uint32_t seq;
    uint32_t pad;
};

struct vctx;
struct vconn;

struct vqp {
    int own;                  /* OWN_QP: what an rdma_cm id's context points to */
    struct vconn *c;
    int idx;
    struct rdma_cm_id *id;
    struct ibv_qp *qp;
    int state;
    uint64_t sq_posted, sq_freed;   /* work requests posted / known completed */
    int unsig;                /* posted unsignaled since the last signaled */
    uint64_t done;            /* sender: writes completed (seq + 1 of the last) */
    uint64_t rcount;          /* receiver: imms received */
};

struct vconn {
    struct vctx *t;
    struct vconn *next;
    int is_send;
    struct cb_peer peer;
    int nq;
    struct vqp *q;
    int nslots;
    size_t slot_bytes;
    int sq_depth, rq_depth, sig_every;
    struct ibv_cq *cq;
    char *fifo;               /* sender: staging slots; receiver: receive slots */
    struct ibv_mr *fifo_mr;
    struct cts_entry *cts;    /* sender: CTS FIFO (written by the peer); receiver: CTS sources */
    struct ibv_mr *cts_mr;
    uint32_t *sizes;          /* bytes per slot */
    size_t reg_bytes;         /* counted against the memlock limit */
    cb_status err;            /* sticky, logged when first seen */
    int ready;                /* handed to the caller */
    int nestablished;
    int64_t t_start;
    uint32_t nonce;
    int seq_imm;              /* imm carries seq & 0xff in its top byte */
    int inline_cts;
    int peer_gone;
    int slot_out;             /* a slot was handed out and not posted / released */
    /* sender */
    uint64_t posted, issued, completed;
    /* receiver */
    uint64_t consumed, cts_sent;
    uint64_t remote_cts_addr;
    uint32_t remote_cts_rkey;
    int have_remote;
};

struct vlisten {
    int own;                  /* OWN_LISTEN */
    struct vctx *t;
    struct vlisten *next;
    struct rdma_cm_id *id;
    struct vconn *rc;         /* owned until accept() hands it over */
    struct cb_peer peer;
    int64_t t_first;
};

struct vctx {
    struct cb_transport_config cfg;
    char dev[64];
    int port;
    struct ibv_context *ctx;
    struct ibv_pd *pd;
    struct ibv_port_attr pattr;
    struct ibv_device_attr dattr;
    enum ibv_mtu mtu;
    int gid_index;
    int gid_type;             /* 0 IB, 1 RoCE v1, 2 RoCE v2 */
    union ibv_gid gid;
    struct sockaddr_storage addr;   /* rdma_cm address of this rank (port 0) */
    char addr_str[INET6_ADDRSTRLEN];
    struct rdma_event_channel *ch;
    size_t memlock_limit;     /* SIZE_MAX = unlimited */
    size_t registered;
    uint32_t nonce_seed;
    unsigned pump_tick;
    struct vconn *conns;
    struct vlisten *listens;
    /* async-event thread */
    pthread_t async_thr;
    int async_started;
    int wake_fd;
    atomic_int async_claimed;
    atomic_int async_type;    /* event type + 1, 0 = none */
    atomic_uint async_qpn;
    atomic_int async_stop;
    int async_reported;
};

/* ------------------------------------------------------------------ helpers */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int mtu_bytes(enum ibv_mtu m)
{
    return m >= IBV_MTU_256 && m <= IBV_MTU_4096 ? 128 << m : 0;
}

static const char *link_layer_str(int ll)
{
    switch (ll) {
    case IBV_LINK_LAYER_INFINIBAND: return "InfiniBand";
    case IBV_LINK_LAYER_ETHERNET: return "Ethernet";
    default: return "unknown";
    }
}

static const char *gid_type_str(int t)
{
    return t == 2 ? "RoCE v2" : t == 1 ? "RoCE v1" : "IB";
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

static int read_sysfs(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return n ? 0 : -1;
}

/* RoCE version of a GID table entry: 2, 1, or 0 when sysfs does not say. */
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

static int have_cap_ipc_lock(void)
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

static size_t page_round(size_t n)
{
    return (n + 4095) & ~(size_t)4095;
}

/* Bytes one connection registers. */
static size_t conn_reg_bytes(const struct cb_transport_config *cfg)
{
    return page_round((size_t)cfg->nslots * cfg->slot_bytes) +
           page_round((size_t)cfg->nslots * sizeof(struct cts_entry));
}

static cb_status check_memlock(struct vctx *t, size_t more, const char *what, const struct cb_peer *peer)
{
    if (t->memlock_limit == SIZE_MAX || t->registered + more <= t->memlock_limit)
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
static cb_status check_queue_limits(const struct vctx *t)
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

/* ------------------------------------------------------------ device choice */

static void list_devices(struct ibv_device **list, int n, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && off < len; i++) {
        struct ibv_context *ctx = ibv_open_device(list[i]);
        struct ibv_device_attr da;
        int nports = 0;
        if (ctx && !ibv_query_device(ctx, &da))
            nports = da.phys_port_cnt;
        off += (size_t)snprintf(buf + off, len - off, "%s%s (", i ? ", " : "", ibv_get_device_name(list[i]));
        for (int p = 1; p <= nports && off < len; p++) {
            struct ibv_port_attr pa;
            if (ibv_query_port(ctx, (uint8_t)p, &pa))
                continue;
            off += (size_t)snprintf(buf + off, len - off, "%sport %d %s %s", p > 1 ? ", " : "", p,
                                    ibv_port_state_str(pa.state), link_layer_str(pa.link_layer));
        }
        if (off < len)
            off += (size_t)snprintf(buf + off, len - off, ")");
        if (ctx)
            ibv_close_device(ctx);
    }
}

/* Which device and port this rank uses: cfg->hca "dev:port,dev:port" picked
 * round-robin by local rank, else the first ACTIVE port of any device.
 * (The hwloc-closest NIC is a topology decision taken above this function.) */
static cb_status choose_port(const struct cb_transport_config *cfg, struct ibv_device **list, int n,
                             int *dev_idx, int *port)
{
    char known[1024];
    if (cfg->hca[0]) {
        char spec[256];
        int count = 0;
        snprintf(spec, sizeof spec, "%s", cfg->hca);
        for (char *p = spec; *p; p++)
            if (*p == ',')
                count++;
        count++;
        int want = (cfg->local_rank > 0 ? cfg->local_rank : 0) % count;
        char *save = NULL, *tok = strtok_r(spec, ",", &save);
        for (int i = 0; tok && i < want; i++)
            tok = strtok_r(NULL, ",", &save);
        if (!tok || !*tok) {
            cb_log_error("verbs: cannot parse --hca '%s': expected dev:port[,dev:port...]", cfg->hca);
            return CB_EUSAGE;
        }
        char *colon = strchr(tok, ':');
        int p = 0;
        if (colon) {
            char *end;
            *colon = '\0';
            p = (int)strtol(colon + 1, &end, 10);
            if (*end || p < 1) {
                cb_log_error("verbs: bad port '%s' in --hca '%s': ports are numbered from 1", colon + 1, cfg->hca);
                return CB_EUSAGE;
            }
        }
        for (int i = 0; i < n; i++) {
            if (strcmp(ibv_get_device_name(list[i]), tok))
                continue;
            struct ibv_context *ctx = ibv_open_device(list[i]);
            struct ibv_device_attr da;
            if (!ctx || ibv_query_device(ctx, &da)) {
                cb_log_error("verbs: cannot open RDMA device %s: %s (permissions on /dev/infiniband?)", tok,
                             strerror(errno));
                if (ctx)
                    ibv_close_device(ctx);
                return CB_EDEVICE;
            }
            if (p == 0) {   /* "dev" alone: its first active port */
                for (int q = 1; q <= da.phys_port_cnt && !p; q++) {
                    struct ibv_port_attr pa;
                    if (!ibv_query_port(ctx, (uint8_t)q, &pa) && pa.state == IBV_PORT_ACTIVE)
                        p = q;
                }
                if (!p)
                    p = 1;   /* reported as not active below */
            }
            int nports = da.phys_port_cnt;
            ibv_close_device(ctx);
            if (p > nports) {
                list_devices(list, n, known, sizeof known);
                cb_log_error("verbs: RDMA device %s has no port %d (it has %d): pick one of: %s", tok, p, nports,
                             known);
                return CB_EDEVICE;
            }
            *dev_idx = i;
            *port = p;
            return CB_OK;
        }
        list_devices(list, n, known, sizeof known);
        cb_log_error("verbs: no RDMA device named '%s' (from --hca '%s'); devices here: %s", tok, cfg->hca, known);
        return CB_EDEVICE;
    }
    for (int i = 0; i < n; i++) {
        struct ibv_context *ctx = ibv_open_device(list[i]);
        struct ibv_device_attr da;
        if (!ctx)
            continue;
        if (!ibv_query_device(ctx, &da)) {
            for (int q = 1; q <= da.phys_port_cnt; q++) {
                struct ibv_port_attr pa;
                if (!ibv_query_port(ctx, (uint8_t)q, &pa) && pa.state == IBV_PORT_ACTIVE) {
                    ibv_close_device(ctx);
                    *dev_idx = i;
                    *port = q;
                    return CB_OK;
                }
            }
        }
        ibv_close_device(ctx);
    }
    list_devices(list, n, known, sizeof known);
    cb_log_error("verbs: no ACTIVE port on any RDMA device (%s): check the cable/link (ibstat, rdma link) "
                 "or choose one with --hca dev:port, or use --transport tcp", known);
    return CB_EDEVICE;
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
        int type = roce ? sysfs_gid_type(t->dev, t->port, i) : 0;
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
static cb_status choose_gid(struct vctx *t)
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
        int type = roce ? sysfs_gid_type(t->dev, t->port, cfg->gid_index) : 0;
        if (roce && cfg->roce_version && type && type != cfg->roce_version) {
            cb_log_error("verbs: GID index %d of %s port %d is %s but RoCE v%d was asked: pick another index "
                         "(types in /sys/class/infiniband/%s/ports/%d/gid_attrs/types/) or drop the version",
                         cfg->gid_index, t->dev, t->port, gid_type_str(type), cfg->roce_version, t->dev, t->port);
            return CB_EDEVICE;
        }
        t->gid_index = cfg->gid_index;
        t->gid = g;
        t->gid_type = roce ? (type ? type : 2) : 0;
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
        int type = sysfs_gid_type(t->dev, t->port, i);
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
    t->gid_type = best_type ? best_type : 2;
    return CB_OK;
}

/* The IP address rdma_cm binds to: the chosen GID's (RoCE), or the port's
 * IPoIB interface address (InfiniBand). */
static cb_status choose_cm_addr(struct vctx *t)
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

static cb_status choose_mtu(struct vctx *t)
{
    int want = t->cfg.path_mtu;
    int max = mtu_bytes(t->pattr.max_mtu), act = mtu_bytes(t->pattr.active_mtu);
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
        while (mtu_bytes(m) < want)
            m = (enum ibv_mtu)(m + 1);
        t->mtu = m;
    }
    return CB_OK;
}

/* -------------------------------------------------------- async-event thread */

static int async_is_fatal(enum ibv_event_type e)
{
    switch (e) {
    case IBV_EVENT_CQ_ERR:
    case IBV_EVENT_QP_FATAL:
    case IBV_EVENT_QP_REQ_ERR:
    case IBV_EVENT_QP_ACCESS_ERR:
    case IBV_EVENT_PATH_MIG_ERR:
    case IBV_EVENT_PORT_ERR:
    case IBV_EVENT_DEVICE_FATAL:
    case IBV_EVENT_SRQ_ERR:
        return 1;
    default:
        return 0;
    }
}

static void *async_main(void *arg)
{
    struct vctx *t = arg;
    struct pollfd p[2] = {{.fd = t->ctx->async_fd, .events = POLLIN}, {.fd = t->wake_fd, .events = POLLIN}};
    while (!atomic_load(&t->async_stop)) {
        if (poll(p, 2, 1000) <= 0)
            continue;
        if (p[1].revents)
            break;
        struct ibv_async_event ev;
        if (ibv_get_async_event(t->ctx, &ev))
            continue;
        int fatal = async_is_fatal(ev.event_type) &&
                    (ev.event_type != IBV_EVENT_PORT_ERR || ev.element.port_num == t->port);
        if (fatal) {
            int zero = 0;
            if (atomic_compare_exchange_strong(&t->async_claimed, &zero, 1)) {
                unsigned qpn = 0;
                if (ev.event_type == IBV_EVENT_QP_FATAL || ev.event_type == IBV_EVENT_QP_REQ_ERR ||
                    ev.event_type == IBV_EVENT_QP_ACCESS_ERR || ev.event_type == IBV_EVENT_PATH_MIG_ERR)
                    qpn = ev.element.qp ? ev.element.qp->qp_num : 0;
                atomic_store(&t->async_qpn, qpn);
                atomic_store(&t->async_type, (int)ev.event_type + 1);
            }
        }
        ibv_ack_async_event(&ev);
    }
    return NULL;
}

static struct vconn *conn_by_qpn(struct vctx *t, unsigned qpn)
{
    for (struct vconn *c = t->conns; c; c = c->next)
        for (int i = 0; i < c->nq; i++)
            if (c->q[i].qp && c->q[i].qp->qp_num == qpn)
                return c;
    for (struct vlisten *l = t->listens; l; l = l->next)
        if (l->rc)
            for (int i = 0; i < l->rc->nq; i++)
                if (l->rc->q[i].qp && l->rc->q[i].qp->qp_num == qpn)
                    return l->rc;
    return NULL;
}

static cb_status check_async(struct vctx *t)
{
    int type = atomic_load(&t->async_type);
    if (!type)
        return CB_OK;
    if (t->async_reported)
        return CB_EPEER;
    t->async_reported = 1;
    enum ibv_event_type e = (enum ibv_event_type)(type - 1);
    unsigned qpn = atomic_load(&t->async_qpn);
    struct vconn *c = qpn ? conn_by_qpn(t, qpn) : NULL;
    if (c) {
        cb_log_error("verbs: %s:%d: asynchronous event '%s' on QP 0x%x of the connection %s rank %d (%s): "
                     "the QP is in error; check the link and the peer's log",
                     t->dev, t->port, ibv_event_type_str(e), qpn, c->is_send ? "to" : "from", c->peer.rank,
                     c->peer.host);
        if (!c->err)
            c->err = CB_EPEER;
        return CB_EPEER;
    }
    cb_log_error("verbs: %s:%d: asynchronous event '%s'%s: check the port (ibstat / rdma link) and the cabling",
                 t->dev, t->port, ibv_event_type_str(e),
                 e == IBV_EVENT_PORT_ERR ? " (the port went down)" : "");
    return e == IBV_EVENT_PORT_ERR || e == IBV_EVENT_DEVICE_FATAL ? CB_EDEVICE : CB_EPEER;
}

/* ------------------------------------------------------------------- init */

static cb_status verbs_init(const struct cb_transport_config *cfg, void **tctx)
{
    cb_status st = CB_OK;
    *tctx = NULL;
    if (cfg->nslots < 1 || cfg->slot_bytes < 1 || cfg->slot_bytes > (size_t)1 << 30) {
        cb_log_error("verbs: %d slots of %zu bytes: need at least 1 slot of 1 byte to 1 GiB", cfg->nslots,
                     cfg->slot_bytes);
        return CB_EUSAGE;
    }
    if (cfg->qps_per_conn > 64 || cfg->traffic_class < 0 || cfg->traffic_class > 255 ||
        cfg->service_level < 0 || cfg->service_level > 15 || cfg->ib_timeout > 31 || cfg->ib_retry_cnt > 7) {
        cb_log_error("verbs: out of range: qps per connection %d (1..64), traffic class %d (0..255), "
                     "service level %d (0..15), IB timeout %d (1..31), retry count %d (0..7)",
                     cfg->qps_per_conn, cfg->traffic_class, cfg->service_level, cfg->ib_timeout, cfg->ib_retry_cnt);
        return CB_EUSAGE;
    }
    int ndev = 0;
    struct ibv_device **list = ibv_get_device_list(&ndev);
    if (!list || ndev == 0) {
        cb_log_error("verbs: no RDMA device found (ibv_get_device_list is empty): is the NIC driver loaded? "
                     "use --transport tcp");
        st = CB_EDEVICE;
        goto undo_list;
    }
    struct vctx *t = calloc(1, sizeof *t);
    if (!t) {
        st = CB_ENOMEM;
        cb_log_error("verbs: out of memory for the transport context");
        goto undo_list;
    }
    t->cfg = *cfg;
    if (t->cfg.qps_per_conn < 1)
        t->cfg.qps_per_conn = 1;
    if (t->cfg.ib_timeout <= 0)
        t->cfg.ib_timeout = 20;
    if (t->cfg.ib_retry_cnt < 0)
        t->cfg.ib_retry_cnt = 7;
    if (t->cfg.timeout_ms <= 0)
        t->cfg.timeout_ms = 30000;
    t->wake_fd = -1;
    int di = 0;
    st = choose_port(&t->cfg, list, ndev, &di, &t->port);
    if (st)
        goto undo_ctx;
    snprintf(t->dev, sizeof t->dev, "%s", ibv_get_device_name(list[di]));
    t->ctx = ibv_open_device(list[di]);
    if (!t->ctx) {
        cb_log_error("verbs: cannot open RDMA device %s: %s (permissions on /dev/infiniband?)", t->dev,
                     strerror(errno));
        st = CB_EDEVICE;
        goto undo_ctx;
    }
    if (ibv_query_device(t->ctx, &t->dattr) || ibv_query_port(t->ctx, (uint8_t)t->port, &t->pattr)) {
        cb_log_error("verbs: cannot query RDMA device %s port %d: %s", t->dev, t->port, strerror(errno));
        st = CB_EDEVICE;
        goto undo_open;
    }
    if (t->pattr.state != IBV_PORT_ACTIVE) {
        cb_log_error("verbs: %s port %d is %s, not ACTIVE: check the link (ibstat / rdma link show), the subnet "
                     "manager on InfiniBand, or choose another port with --hca",
                     t->dev, t->port, ibv_port_state_str(t->pattr.state));
        st = CB_EDEVICE;
        goto undo_open;
    }
    st = choose_gid(t);
    if (st)
        goto undo_open;
    st = choose_mtu(t);
    if (st)
        goto undo_open;
    st = choose_cm_addr(t);
    if (st)
        goto undo_open;
    st = check_queue_limits(t);
    if (st)
        goto undo_open;
    struct rlimit rl;
    t->memlock_limit = SIZE_MAX;
    if (!getrlimit(RLIMIT_MEMLOCK, &rl) && rl.rlim_cur != RLIM_INFINITY && !have_cap_ipc_lock())
        t->memlock_limit = (size_t)rl.rlim_cur;
    /* one send and one receive connection at least, checked before any timing */
    st = check_memlock(t, 2 * conn_reg_bytes(&t->cfg), "one send and one receive connection", NULL);
    if (st)
        goto undo_open;
    t->pd = ibv_alloc_pd(t->ctx);
    if (!t->pd) {
        cb_log_error("verbs: ibv_alloc_pd on %s failed: %s", t->dev, strerror(errno));
        st = CB_EDEVICE;
        goto undo_open;
    }
    t->ch = rdma_create_event_channel();
    if (!t->ch) {
        cb_log_error("verbs: rdma_create_event_channel failed: %s (is rdma_ucm loaded? /dev/infiniband/rdma_cm?)",
                     strerror(errno));
        st = CB_EDEVICE;
        goto undo_pd;
    }
    if (fcntl(t->ch->fd, F_SETFL, fcntl(t->ch->fd, F_GETFL) | O_NONBLOCK) ||
        fcntl(t->ctx->async_fd, F_SETFL, fcntl(t->ctx->async_fd, F_GETFL) | O_NONBLOCK)) {
        cb_log_error("verbs: cannot make the rdma_cm / async event fds non-blocking: %s", strerror(errno));
        st = CB_ESYS;
        goto undo_channel;
    }
    t->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (t->wake_fd < 0) {
        cb_log_error("verbs: eventfd failed: %s", strerror(errno));
        st = CB_ESYS;
        goto undo_channel;
    }
    int e = pthread_create(&t->async_thr, NULL, async_main, t);
    if (e) {
        cb_log_error("verbs: cannot start the async-event thread: %s", strerror(e));
        st = CB_ESYS;
        goto undo_wake;
    }
    t->async_started = 1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    t->nonce_seed = (uint32_t)ts.tv_nsec ^ ((uint32_t)getpid() << 12) ^ (uint32_t)cfg->rank * 2654435761u;
    ibv_free_device_list(list);
    *tctx = t;
    return CB_OK;

undo_wake:
    close(t->wake_fd);
undo_channel:
    rdma_destroy_event_channel(t->ch);
undo_pd:
    ibv_dealloc_pd(t->pd);
undo_open:
    ibv_close_device(t->ctx);
undo_ctx:
    free(t);
undo_list:
    if (list)
        ibv_free_device_list(list);
    return st;
}

static void add_prop(struct cb_props *p, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void add_prop(struct cb_props *p, const char *key, const char *fmt, ...)
{
    if (p->n >= CB_PROPS_MAX)
        return;
    va_list ap;
    snprintf(p->kv[p->n].key, sizeof p->kv[p->n].key, "%s", key);
    va_start(ap, fmt);
    vsnprintf(p->kv[p->n].val, sizeof p->kv[p->n].val, fmt, ap);
    va_end(ap);
    p->n++;
}

static void verbs_properties(void *tctx, struct cb_props *props)
{
    struct vctx *t = tctx;
    static const struct { int code; double gbps; const char *name; } speeds[] = {
        {1, 2.5, "SDR"}, {2, 5, "DDR"}, {4, 10, "QDR"}, {8, 10, "FDR10"}, {16, 14, "FDR"},
        {32, 25, "EDR"}, {64, 50, "HDR"}, {128, 100, "NDR"}, {256, 200, "XDR"}};
    static const struct { int code, lanes; } widths[] = {{1, 1}, {2, 4}, {4, 8}, {8, 12}, {16, 2}};
    double gbps = 0;
    const char *sname = "?";
    int lanes = 0;
    for (size_t i = 0; i < sizeof speeds / sizeof speeds[0]; i++)
        if (speeds[i].code == t->pattr.active_speed) {
            gbps = speeds[i].gbps;
            sname = speeds[i].name;
        }
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++)
        if (widths[i].code == t->pattr.active_width)
            lanes = widths[i].lanes;
    char g[INET6_ADDRSTRLEN];
    gid_str(&t->gid, g, sizeof g);
    props->n = 0;
    add_prop(props, "device", "%s", t->dev);
    add_prop(props, "port", "%d", t->port);
    add_prop(props, "link_layer", "%s", link_layer_str(t->pattr.link_layer));
    add_prop(props, "rate", "%g Gb/s (%dX %s)", gbps * lanes, lanes, sname);
    add_prop(props, "active_mtu", "%d", mtu_bytes(t->pattr.active_mtu));
    add_prop(props, "path_mtu", "%d", mtu_bytes(t->mtu));
    add_prop(props, "gid_index", "%d", t->gid_index);
    add_prop(props, "gid_type", "%s", gid_type_str(t->gid_type));
    add_prop(props, "gid", "%s", g);
    add_prop(props, "cm_addr", "%s", t->addr_str);
    add_prop(props, "qps", "%d", t->cfg.qps_per_conn);
    add_prop(props, "tc", "%d", t->cfg.traffic_class);
    add_prop(props, "sl", "%d", t->cfg.service_level);
    add_prop(props, "timeout", "%d", t->cfg.ib_timeout);
    add_prop(props, "retry", "%d", t->cfg.ib_retry_cnt);
}

/* -------------------------------------------------------------- connections */

static void conn_unlink(struct vconn *c)
{
    for (struct vconn **p = &c->t->conns; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            return;
        }
}

/* Release every verbs resource of a connection, in reverse order of creation. */
static void conn_destroy(struct vconn *c)
{
    struct vctx *t = c->t;
    conn_unlink(c);
    for (int i = 0; i < c->nq; i++) {
        struct vqp *q = &c->q[i];
        if (q->id && q->state == QS_ESTABLISHED)
            rdma_disconnect(q->id);
        if (q->qp) {
            struct ibv_qp_attr a = {.qp_state = IBV_QPS_ERR};
            ibv_modify_qp(q->qp, &a, IBV_QP_STATE);
            ibv_destroy_qp(q->qp);
        }
        if (q->id)
            rdma_destroy_id(q->id);
    }
    if (c->cq)
        ibv_destroy_cq(c->cq);
    if (c->cts_mr)
        ibv_dereg_mr(c->cts_mr);
    if (c->fifo_mr)
        ibv_dereg_mr(c->fifo_mr);
    t->registered -= c->reg_bytes;
    free(c->cts);
    free(c->fifo);
    free(c->sizes);
    free(c->q);
    free(c);
}

/* Everything a connection needs before any QP exists: registered memory, CQ. */
static cb_status conn_create(struct vctx *t, int is_send, const struct cb_peer *peer, struct vconn **out)
{
    cb_status st = check_memlock(t, conn_reg_bytes(&t->cfg), is_send ? "a send connection" : "a receive connection",
                                 peer);
    if (st)
        return st;
    struct vconn *c = calloc(1, sizeof *c);
    if (!c) {
        cb_log_error("verbs: out of memory for a connection with rank %d (%s)", peer->rank, peer->host);
        return CB_ENOMEM;
    }
    c->t = t;
    c->is_send = is_send;
    c->peer = *peer;
    c->nq = t->cfg.qps_per_conn;
    c->nslots = t->cfg.nslots;
    c->slot_bytes = t->cfg.slot_bytes;
    c->seq_imm = c->slot_bytes < ((size_t)1 << 24);
    c->sig_every = c->nslots / 2 > 1 ? c->nslots / 2 : 1;
    c->sq_depth = is_send ? c->nslots + 2 : 2 * c->nslots + 4;
    c->rq_depth = is_send ? 1 : c->nslots + 2;
    c->t_start = now_ms();
    size_t fifo_bytes = page_round((size_t)c->nslots * c->slot_bytes);
    size_t cts_bytes = page_round((size_t)c->nslots * sizeof(struct cts_entry));
    c->q = calloc((size_t)c->nq, sizeof *c->q);
    c->sizes = calloc((size_t)c->nslots, sizeof *c->sizes);
    if (!c->q || !c->sizes || posix_memalign((void **)&c->fifo, 4096, fifo_bytes) ||
        posix_memalign((void **)&c->cts, 4096, cts_bytes)) {
        cb_log_error("verbs: out of memory for the %zu-byte FIFO of the connection %s rank %d (%s)", fifo_bytes,
                     is_send ? "to" : "from", peer->rank, peer->host);
        st = CB_ENOMEM;
        goto undo_alloc;
    }
    memset(c->fifo, 0, fifo_bytes);
    memset(c->cts, 0, cts_bytes);
    for (int i = 0; i < c->nq; i++) {
        c->q[i].own = OWN_QP;
        c->q[i].c = c;
        c->q[i].idx = i;
    }
    int acc = IBV_ACCESS_LOCAL_WRITE | (is_send ? 0 : IBV_ACCESS_REMOTE_WRITE);
    c->fifo_mr = ibv_reg_mr(t->pd, c->fifo, fifo_bytes, acc);
    if (!c->fifo_mr)
        goto reg_failed;
    c->cts_mr = ibv_reg_mr(t->pd, c->cts, cts_bytes,
                           IBV_ACCESS_LOCAL_WRITE | (is_send ? IBV_ACCESS_REMOTE_WRITE : 0));
    if (!c->cts_mr)
        goto reg_failed;
    c->reg_bytes = fifo_bytes + cts_bytes;
    t->registered += c->reg_bytes;
    int cqe = c->nq * (c->sq_depth + c->rq_depth) + 8;
    st = check_queue_limits(t);
    if (st)
        goto undo_reg;
    c->cq = ibv_create_cq(t->ctx, cqe, NULL, NULL, 0);
    if (!c->cq) {
        cb_log_error("verbs: %s:%d: ibv_create_cq(%d) for the connection %s rank %d (%s) failed: %s", t->dev,
                     t->port, cqe, is_send ? "to" : "from", peer->rank, peer->host, strerror(errno));
        st = CB_EDEVICE;
        goto undo_reg;
    }
    c->next = t->conns;
    t->conns = c;
    *out = c;
    return CB_OK;

reg_failed:
    cb_log_error("verbs: %s:%d: ibv_reg_mr of %zu bytes for the connection %s rank %d (%s) failed: %s%s", t->dev,
                 t->port, c->fifo_mr ? cts_bytes : fifo_bytes, is_send ? "to" : "from", peer->rank, peer->host,
                 strerror(errno),
                 errno == ENOMEM || errno == EPERM ? " (memlock limit? run `ulimit -l unlimited`)" : "");
    st = CB_ENOMEM;
undo_reg:
    if (c->cts_mr)
        ibv_dereg_mr(c->cts_mr);
    if (c->fifo_mr)
        ibv_dereg_mr(c->fifo_mr);
    t->registered -= c->reg_bytes;
undo_alloc:
    free(c->cts);
    free(c->fifo);
    free(c->sizes);
    free(c->q);
    free(c);
    return st;
}

static void conn_fail(struct vconn *c, cb_status st)
{
    if (!c->err)
        c->err = st;
}

static const char *dir_word(const struct vconn *c)
{
    return c->is_send ? "to" : "from";
}

static cb_status qp_create(struct vconn *c, struct vqp *q)
{
    struct vctx *t = c->t;
    struct ibv_qp_init_attr ia = {
        .send_cq = c->cq,
        .recv_cq = c->cq,
        .qp_type = IBV_QPT_RC,
        .sq_sig_all = 0,
        .cap = {.max_send_wr = (uint32_t)c->sq_depth, .max_recv_wr = (uint32_t)c->rq_depth,
                .max_send_sge = 1, .max_recv_sge = 1,
                .max_inline_data = c->is_send ? 0 : (uint32_t)sizeof(struct cts_entry)},
    };
    q->qp = ibv_create_qp(t->pd, &ia);
    if (!q->qp && !c->is_send) {   /* no inline support: CTS from registered memory */
        ia.cap.max_inline_data = 0;
        q->qp = ibv_create_qp(t->pd, &ia);
    }
    if (!q->qp) {
        cb_log_error("verbs: %s:%d: ibv_create_qp (send %d, recv %d WRs) for the connection %s rank %d (%s) "
                     "failed: %s", t->dev, t->port, c->sq_depth, c->rq_depth, dir_word(c), c->peer.rank,
                     c->peer.host, strerror(errno));
        return CB_EDEVICE;
    }
    if (!c->is_send && q->idx == 0)
        c->inline_cts = ia.cap.max_inline_data >= sizeof(struct cts_entry);
    return CB_OK;
}

/* Move our QP to `state` with rdma_cm's attributes plus ours. */
static cb_status qp_modify(struct vconn *c, struct vqp *q, enum ibv_qp_state state)
{
    struct vctx *t = c->t;
    struct ibv_qp_attr a;
    int mask = 0;
    memset(&a, 0, sizeof a);
    a.qp_state = state;
    if (rdma_init_qp_attr(q->id, &a, &mask)) {
        cb_log_error("verbs: %s:%d: rdma_init_qp_attr(%s) for the connection %s rank %d (%s) failed: %s", t->dev,
                     t->port, state == IBV_QPS_INIT ? "INIT" : state == IBV_QPS_RTR ? "RTR" : "RTS", dir_word(c),
                     c->peer.rank, c->peer.host, strerror(errno));
        return CB_EDEVICE;
    }
    if (state == IBV_QPS_INIT) {
        a.qp_access_flags = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE;
        mask |= IBV_QP_ACCESS_FLAGS;
    } else if (state == IBV_QPS_RTR) {
        if (a.path_mtu > t->mtu || !(mask & IBV_QP_PATH_MTU))
            a.path_mtu = t->mtu;
        a.min_rnr_timer = 12;
        mask |= IBV_QP_PATH_MTU | IBV_QP_MIN_RNR_TIMER;
        a.ah_attr.sl = (uint8_t)t->cfg.service_level;
        if (a.ah_attr.is_global) {
            a.ah_attr.grh.traffic_class = (uint8_t)t->cfg.traffic_class;
            if (t->pattr.link_layer == IBV_LINK_LAYER_ETHERNET) {
                a.ah_attr.grh.hop_limit = 255;
                a.ah_attr.grh.sgid_index = (uint8_t)t->gid_index;
            }
        }
    } else {
        a.timeout = (uint8_t)t->cfg.ib_timeout;
        a.retry_cnt = (uint8_t)t->cfg.ib_retry_cnt;
        a.rnr_retry = 7;
        mask |= IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY;
    }
    if (ibv_modify_qp(q->qp, &a, mask)) {
        cb_log_error("verbs: %s:%d: moving QP 0x%x of the connection %s rank %d (%s) to %s failed: %s "
                     "(path MTU %d, GID index %d)", t->dev, t->port, q->qp->qp_num, dir_word(c), c->peer.rank,
                     c->peer.host, state == IBV_QPS_INIT ? "INIT" : state == IBV_QPS_RTR ? "RTR" : "RTS",
                     strerror(errno), mtu_bytes(t->mtu), t->gid_index);
        return CB_EDEVICE;
    }
    return CB_OK;
}

static cb_status post_recvs(struct vconn *c, struct vqp *q, int n)
{
    for (int i = 0; i < n; i++) {
        struct ibv_recv_wr wr = {.wr_id = WR_ID(WR_RECV, 0), .num_sge = 0}, *bad;
        if (ibv_post_recv(q->qp, &wr, &bad)) {
            cb_log_error("verbs: %s:%d: ibv_post_recv on QP 0x%x of the connection from rank %d (%s) failed: %s",
                         c->t->dev, c->t->port, q->qp->qp_num, c->peer.rank, c->peer.host, strerror(errno));
            return CB_EPEER;
        }
    }
    return CB_OK;
}

/* --------------------------------------------------------------- data path */

static cb_status wc_error(struct vconn *c, const struct ibv_wc *wc)
{
    struct vctx *t = c->t;
    if (c->err)
        return c->err;
    int kind = WR_KIND(wc->wr_id);
    const char *what = kind == WR_DATA ? "RDMA write of data" : kind == WR_CTS ? "RDMA write of a clear-to-send"
                                                                              : "receive of data";
    cb_log_error("verbs: %s:%d: %s %s rank %d (%s) failed: %s (status %d, vendor error 0x%x, QP 0x%x): "
                 "the peer died, its QP failed, or the link dropped; see rank %d's log",
                 t->dev, t->port, what, kind == WR_RECV ? "from" : dir_word(c) , c->peer.rank, c->peer.host,
                 ibv_wc_status_str(wc->status), wc->status, wc->vendor_err, wc->qp_num, c->peer.rank);
    c->err = CB_EPEER;
    return CB_EPEER;
}

static struct vqp *qp_by_num(struct vconn *c, uint32_t qpn)
{
    for (int i = 0; i < c->nq; i++)
        if (c->q[i].qp && c->q[i].qp->qp_num == qpn)
            return &c->q[i];
    return NULL;
}

/* Bytes of a slot of n bytes carried by QP i of nq. */
static void chunk_of(size_t n, int nq, int i, size_t *off, size_t *len)
{
    size_t per = (n + (size_t)nq - 1) / (size_t)nq;
    per = (per + 63) & ~(size_t)63;
    size_t o = per * (size_t)i;
    *off = o < n ? o : n;
    *len = o < n ? (n - o < per ? n - o : per) : 0;
}

static uint64_t recv_avail(const struct vconn *c)
{
    uint64_t m = c->q[0].rcount;
    for (int i = 1; i < c->nq; i++)
        if (c->q[i].rcount < m)
            m = c->q[i].rcount;
    return m;
}

static cb_status poll_cq(struct vconn *c)
{
    struct ibv_wc wc[CQ_BATCH];
    for (;;) {
        int n = ibv_poll_cq(c->cq, CQ_BATCH, wc);
        if (n < 0) {
            cb_log_error("verbs: %s:%d: ibv_poll_cq for the connection %s rank %d (%s) failed", c->t->dev,
                         c->t->port, dir_word(c), c->peer.rank, c->peer.host);
            conn_fail(c, CB_EPEER);
            return CB_EPEER;
        }
        for (int i = 0; i < n; i++) {
            if (wc[i].status != IBV_WC_SUCCESS)
                return wc_error(c, &wc[i]);
            struct vqp *q = qp_by_num(c, wc[i].qp_num);
            if (!q)
                continue;
            int kind = WR_KIND(wc[i].wr_id);
            if (kind == WR_DATA) {
                q->done = WR_N(wc[i].wr_id);
                q->sq_freed = q->done;
            } else if (kind == WR_CTS) {
                q->sq_freed = WR_N(wc[i].wr_id);
            } else if (kind == WR_RECV) {
                if (wc[i].opcode != IBV_WC_RECV_RDMA_WITH_IMM || !(wc[i].wc_flags & IBV_WC_WITH_IMM)) {
                    cb_log_error("verbs: %s:%d: unexpected completion opcode %d from rank %d (%s) on QP 0x%x",
                                 c->t->dev, c->t->port, wc[i].opcode, c->peer.rank, c->peer.host, wc[i].qp_num);
                    conn_fail(c, CB_EINTERNAL);
                    return CB_EINTERNAL;
                }
                uint32_t imm = ntohl(wc[i].imm_data);
                uint64_t seq = q->rcount;
                size_t nbytes = c->seq_imm ? (imm & 0xffffffu) : imm, off, len;
                chunk_of(nbytes, c->nq, q->idx, &off, &len);
                if ((c->seq_imm && (imm >> 24) != (seq & 0xff)) || nbytes > c->slot_bytes || wc[i].byte_len != len) {
                    cb_log_error("verbs: %s:%d: slot %" PRIu64 " from rank %d (%s) arrived out of order or with a "
                                 "wrong size on QP %d (imm 0x%08x, %u bytes written, expected %zu): protocol "
                                 "mismatch (are both ranks the same collbench build?)", c->t->dev, c->t->port,
                                 seq, c->peer.rank, c->peer.host, q->idx, imm, wc[i].byte_len, len);
                    conn_fail(c, CB_EINTERNAL);
                    return CB_EINTERNAL;
                }
                if (q->idx == 0)
                    c->sizes[seq % (uint64_t)c->nslots] = (uint32_t)nbytes;
                q->rcount++;
                cb_status st = post_recvs(c, q, 1);
                if (st) {
                    conn_fail(c, st);
                    return st;
                }
            }
        }
        if (n < CQ_BATCH)
            return CB_OK;
    }
}

static uint64_t send_completed(const struct vconn *c)
{
    uint64_t m = c->q[0].done;
    for (int i = 1; i < c->nq; i++)
        if (c->q[i].done < m)
            m = c->q[i].done;
    return m;
}

/* Sender: write every posted slot whose clear-to-send has arrived. */
static cb_status send_issue(struct vconn *c)
{
    struct vctx *t = c->t;
    while (c->issued < c->posted) {
        uint64_t s = c->issued;
        int slot = (int)(s % (uint64_t)c->nslots);
        struct cts_entry *e = &c->cts[slot];
        if (__atomic_load_n(&e->seq, __ATOMIC_ACQUIRE) != (uint32_t)(s + 1))
            break;
        for (int i = 0; i < c->nq; i++)
            if (c->q[i].sq_posted - c->q[i].sq_freed + 1 > (uint64_t)c->sq_depth)
                return CB_OK;   /* send queue full: the next poll frees it */
        uint64_t raddr = e->addr;
        uint32_t rkey = e->rkey, cap = e->size;
        size_t n = c->sizes[slot];
        if (n > cap) {
            cb_log_error("verbs: rank %d (%s) offers a %u-byte slot for slot %" PRIu64 " but %zu bytes are to be "
                         "sent: slot sizes differ between ranks (same --slot-bytes everywhere?)",
                         c->peer.rank, c->peer.host, cap, s, n);
            conn_fail(c, CB_EUSAGE);
            return CB_EUSAGE;
        }
        /* every sig_every-th write, and any that fills the last free slot:
         * the sender then needs a completion to get a slot back */
        int signal = c->q[0].unsig + 1 >= c->sig_every || s + 1 - c->completed >= (uint64_t)c->nslots;
        uint32_t imm = c->seq_imm ? (uint32_t)((s & 0xff) << 24) | (uint32_t)n : (uint32_t)n;
        for (int i = 0; i < c->nq; i++) {
            struct vqp *q = &c->q[i];
            size_t off, len;
            chunk_of(n, c->nq, i, &off, &len);
            struct ibv_sge sge = {.addr = (uintptr_t)(c->fifo + (size_t)slot * c->slot_bytes + off),
                                  .length = (uint32_t)len, .lkey = c->fifo_mr->lkey};
            struct ibv_send_wr wr = {
                .wr_id = WR_ID(WR_DATA, s + 1),
                .sg_list = len ? &sge : NULL,
                .num_sge = len ? 1 : 0,
                .opcode = IBV_WR_RDMA_WRITE_WITH_IMM,
                .send_flags = signal ? IBV_SEND_SIGNALED : 0,
                .imm_data = htonl(imm),
                .wr.rdma = {.remote_addr = raddr + off, .rkey = rkey},
            }, *bad;
            if (ibv_post_send(q->qp, &wr, &bad)) {
                cb_log_error("verbs: %s:%d: ibv_post_send (RDMA write, %zu bytes) to rank %d (%s) on QP 0x%x "
                             "failed: %s", t->dev, t->port, len, c->peer.rank, c->peer.host, q->qp->qp_num,
                             strerror(errno));
                conn_fail(c, CB_EPEER);
                return CB_EPEER;
            }
            q->sq_posted++;
            q->unsig = signal ? 0 : q->unsig + 1;
        }
        c->issued++;
    }
    return CB_OK;
}

/* Receiver: tell the sender about every free slot. */
static cb_status cts_issue(struct vconn *c)
{
    struct vctx *t = c->t;
    struct vqp *q = &c->q[0];
    if (!c->ready && c->nestablished < c->nq)
        return CB_OK;
    while (c->cts_sent < c->consumed + (uint64_t)c->nslots) {
        uint64_t used = q->sq_posted - q->sq_freed;
        if (used + 1 > (uint64_t)c->sq_depth)
            return CB_OK;
        uint64_t s = c->cts_sent;
        int slot = (int)(s % (uint64_t)c->nslots);
        struct cts_entry e = {
            .addr = (uintptr_t)(c->fifo + (size_t)slot * c->slot_bytes),
            .rkey = c->fifo_mr->rkey,
            .size = (uint32_t)c->slot_bytes,
            .seq = (uint32_t)(s + 1),
        };
        struct ibv_sge sge = {.addr = (uintptr_t)&e, .length = sizeof e, .lkey = 0};
        if (!c->inline_cts) {
            c->cts[slot] = e;
            sge.addr = (uintptr_t)&c->cts[slot];
            sge.lkey = c->cts_mr->lkey;
        }
        int signal = q->unsig + 1 >= c->sig_every || used + 1 >= (uint64_t)c->sq_depth / 2;
        struct ibv_send_wr wr = {
            .wr_id = WR_ID(WR_CTS, q->sq_posted + 1),
            .sg_list = &sge,
            .num_sge = 1,
            .opcode = IBV_WR_RDMA_WRITE,
            .send_flags = (signal ? IBV_SEND_SIGNALED : 0) | (c->inline_cts ? IBV_SEND_INLINE : 0),
            .wr.rdma = {.remote_addr = c->remote_cts_addr + (uint64_t)slot * sizeof(struct cts_entry),
                        .rkey = c->remote_cts_rkey},
        }, *bad;
        if (ibv_post_send(q->qp, &wr, &bad)) {
            cb_log_error("verbs: %s:%d: ibv_post_send (clear-to-send) to rank %d (%s) on QP 0x%x failed: %s",
                         t->dev, t->port, c->peer.rank, c->peer.host, q->qp->qp_num, strerror(errno));
            conn_fail(c, CB_EPEER);
            return CB_EPEER;
        }
        q->sq_posted++;
        q->unsig = signal ? 0 : q->unsig + 1;
        c->cts_sent++;
    }
    return CB_OK;
}

static cb_status conn_progress(struct vconn *c)
{
    if (c->err)
        return c->err;
    if (!c->ready && c->nestablished < c->nq)
        return CB_OK;
    cb_status st = poll_cq(c);
    if (st)
        return st;
    if (c->is_send && c->peer_gone && c->issued < c->posted) {
        cb_log_error("verbs: rank %d (%s) closed the connection while %" PRIu64 " slots were still to be sent "
                     "to it: see its log", c->peer.rank, c->peer.host, c->posted - c->issued);
        conn_fail(c, CB_EPEER);
        return CB_EPEER;
    }
    return c->is_send ? send_issue(c) : cts_issue(c);
}

/* ------------------------------------------------------ rdma_cm event pump */

static void log_cm_failure(struct vconn *c, const struct rdma_cm_event *ev)
{
    struct vctx *t = c->t;
    switch (ev->event) {
    case RDMA_CM_EVENT_ADDR_ERROR:
    case RDMA_CM_EVENT_ROUTE_ERROR:
        cb_log_error("verbs: %s:%d: rdma_cm cannot resolve the %s from %s to rank %d (%s) (status %d: %s): "
                     "the peer's address is not reachable over RDMA from this port; check the IP "
                     "configuration of both ports, routes, and --gid-subnet/--hca",
                     t->dev, t->port, ev->event == RDMA_CM_EVENT_ADDR_ERROR ? "address" : "route", t->addr_str,
                     c->peer.rank, c->peer.host, ev->status, strerror(ev->status < 0 ? -ev->status : ev->status));
        conn_fail(c, CB_EDEVICE);
        break;
    case RDMA_CM_EVENT_REJECTED:
        cb_log_error("verbs: %s:%d: rank %d (%s) rejected the connection (status %d): it is not listening on "
                     "that port any more, or another job answered (token or handle mismatch)",
                     t->dev, t->port, c->peer.rank, c->peer.host, ev->status);
        conn_fail(c, CB_EPEER);
        break;
    case RDMA_CM_EVENT_UNREACHABLE:
        cb_log_error("verbs: %s:%d: rank %d (%s) is unreachable through rdma_cm (status %d): no answer to the "
                     "connection request; check the link between the ports and the peer's log",
                     t->dev, t->port, c->peer.rank, c->peer.host, ev->status);
        conn_fail(c, CB_EPEER);
        break;
    case RDMA_CM_EVENT_CONNECT_ERROR:
        cb_log_error("verbs: %s:%d: connecting %s rank %d (%s) failed (status %d)", t->dev, t->port, dir_word(c),
                     c->peer.rank, c->peer.host, ev->status);
        conn_fail(c, CB_EPEER);
        break;
    case RDMA_CM_EVENT_DEVICE_REMOVAL:
        cb_log_error("verbs: %s:%d: the RDMA device was removed under the connection %s rank %d (%s)", t->dev,
                     t->port, dir_word(c), c->peer.rank, c->peer.host);
        conn_fail(c, CB_EDEVICE);
        break;
    default:
        break;
    }
}

static void on_route_resolved(struct vconn *c, struct vqp *q)
{
    struct vctx *t = c->t;
    cb_status st = qp_create(c, q);
    if (!st)
        st = qp_modify(c, q, IBV_QPS_INIT);
    if (st) {
        conn_fail(c, st);
        return;
    }
    struct vreq req = {
        .magic = htobe32(VREQ_MAGIC),
        .nonce = htobe32(c->nonce),
        .rank = (int32_t)htobe32((uint32_t)t->cfg.rank),
        .qp_idx = htobe16((uint16_t)q->idx),
        .nqps = htobe16((uint16_t)c->nq),
        .cts_addr = htobe64((uintptr_t)c->cts),
        .cts_rkey = htobe32(c->cts_mr->rkey),
        .nslots = htobe32((uint32_t)c->nslots),
    };
    memcpy(req.token, t->cfg.token, CB_TOKEN_BYTES);
    struct rdma_conn_param p = {
        .private_data = &req,
        .private_data_len = sizeof req,
        .responder_resources = 1,
        .initiator_depth = 1,
        .flow_control = 1,
        .retry_count = (uint8_t)t->cfg.ib_retry_cnt,
        .rnr_retry_count = 7,
        .qp_num = q->qp->qp_num,
    };
    if (rdma_connect(q->id, &p)) {
        cb_log_error("verbs: %s:%d: rdma_connect to rank %d (%s) failed: %s", t->dev, t->port, c->peer.rank,
                     c->peer.host, strerror(errno));
        conn_fail(c, CB_EPEER);
        return;
    }
    q->state = QS_CONNECTING;
}

static void on_connect_response(struct vconn *c, struct vqp *q, const struct rdma_cm_event *ev)
{
    struct vctx *t = c->t;
    const struct vrep *rep = ev->param.conn.private_data;
    if (!rep || ev->param.conn.private_data_len < sizeof *rep || be32toh(rep->magic) != VREP_MAGIC ||
        (int)be32toh((uint32_t)rep->rank) != c->peer.rank) {
        cb_log_error("verbs: %s:%d: the answer to our connection request to rank %d (%s) is not from that "
                     "collbench rank (wrong private data): stale handle or another job on that port",
                     t->dev, t->port, c->peer.rank, c->peer.host);
        rdma_reject(q->id, NULL, 0);
        conn_fail(c, CB_EPEER);
        return;
    }
    cb_status st = qp_modify(c, q, IBV_QPS_RTR);
    if (!st)
        st = qp_modify(c, q, IBV_QPS_RTS);
    if (st) {
        rdma_reject(q->id, NULL, 0);
        conn_fail(c, st);
        return;
    }
    if (rdma_establish(q->id)) {
        cb_log_error("verbs: %s:%d: rdma_establish with rank %d (%s) failed: %s", t->dev, t->port, c->peer.rank,
                     c->peer.host, strerror(errno));
        conn_fail(c, CB_EPEER);
        return;
    }
    q->state = QS_ESTABLISHED;
    c->nestablished++;
}

/* A connection request on a listen id: returns 0 when accepted, -1 to reject. */
static int on_connect_request(struct vlisten *l, struct rdma_cm_event *ev)
{
    struct vctx *t = l->t;
    struct vconn *c = l->rc;
    const struct vreq *req = ev->param.conn.private_data;
    if (!req || ev->param.conn.private_data_len < sizeof *req || be32toh(req->magic) != VREQ_MAGIC) {
        cb_log_warn("verbs: %s:%d: rejecting a connection request that is not from collbench on the port "
                    "listening for rank %d (%s)", t->dev, t->port, l->peer.rank, l->peer.host);
        return -1;
    }
    int rank = (int)be32toh((uint32_t)req->rank);
    int idx = be16toh(req->qp_idx), nq = be16toh(req->nqps);
    if (!c || be32toh(req->nonce) != c->nonce || memcmp(req->token, t->cfg.token, CB_TOKEN_BYTES) ||
        rank != l->peer.rank) {
        cb_log_warn("verbs: %s:%d: rejecting a connection request from rank %d while listening for rank %d (%s): "
                    "stale handle, another job, or a token mismatch", t->dev, t->port, rank, l->peer.rank,
                    l->peer.host);
        return -1;
    }
    if (nq != c->nq || (int)be32toh(req->nslots) != c->nslots || idx >= nq || c->q[idx].id) {
        cb_log_error("verbs: %s:%d: rank %d (%s) connects with %d QPs and %u slots, this rank expects %d QPs "
                     "and %d slots (QP %d%s): give every rank the same --qps and slot options",
                     t->dev, t->port, rank, l->peer.host, nq, be32toh(req->nslots), c->nq, c->nslots, idx,
                     idx < nq && idx < c->nq && c->q[idx].id ? " twice" : "");
        conn_fail(c, CB_EUSAGE);
        return -1;
    }
    uint64_t raddr = be64toh(req->cts_addr);
    uint32_t rkey = be32toh(req->cts_rkey);
    if (c->have_remote && (raddr != c->remote_cts_addr || rkey != c->remote_cts_rkey)) {
        cb_log_error("verbs: %s:%d: the QPs of rank %d (%s) announce different CTS FIFOs", t->dev, t->port, rank,
                     l->peer.host);
        conn_fail(c, CB_EINTERNAL);
        return -1;
    }
    c->remote_cts_addr = raddr;
    c->remote_cts_rkey = rkey;
    c->have_remote = 1;
    struct vqp *q = &c->q[idx];
    q->id = ev->id;
    ev->id->context = q;
    cb_status st = qp_create(c, q);
    if (!st)
        st = qp_modify(c, q, IBV_QPS_INIT);
    if (!st)
        st = post_recvs(c, q, c->rq_depth);
    if (!st)
        st = qp_modify(c, q, IBV_QPS_RTR);
    if (!st)
        st = qp_modify(c, q, IBV_QPS_RTS);
    if (!st) {
        struct vrep rep = {.magic = htobe32(VREP_MAGIC), .rank = (int32_t)htobe32((uint32_t)t->cfg.rank),
                           .qp_idx = htobe16((uint16_t)idx)};
        struct rdma_conn_param p = {
            .private_data = &rep,
            .private_data_len = sizeof rep,
            .responder_resources = 1,
            .initiator_depth = 1,
            .flow_control = 1,
            .retry_count = (uint8_t)t->cfg.ib_retry_cnt,
            .rnr_retry_count = 7,
            .qp_num = q->qp->qp_num,
        };
        if (rdma_accept(q->id, &p)) {
            cb_log_error("verbs: %s:%d: rdma_accept of rank %d (%s) failed: %s", t->dev, t->port, rank,
                         l->peer.host, strerror(errno));
            st = CB_EPEER;
        }
    }
    if (st) {
        conn_fail(c, st);
        if (q->qp)
            ibv_destroy_qp(q->qp);
        q->qp = NULL;
        q->id = NULL;   /* rejected and destroyed by the caller */
        return -1;
    }
    q->state = QS_CONNECTING;
    return 0;
}

static cb_status cm_pump(struct vctx *t)
{
    for (;;) {
        struct rdma_cm_event *ev;
        if (rdma_get_cm_event(t->ch, &ev)) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return CB_OK;
            cb_log_error("verbs: %s:%d: reading rdma_cm events failed: %s", t->dev, t->port, strerror(errno));
            return CB_ESYS;
        }
        struct rdma_cm_id *reject = NULL;
        if (ev->event == RDMA_CM_EVENT_CONNECT_REQUEST) {
            /* every id's context starts with its owner kind (struct vlisten / struct vqp) */
            void *ctx = ev->listen_id ? ev->listen_id->context : NULL;
            if (!ctx || *(int *)ctx != OWN_LISTEN || on_connect_request(ctx, ev))
                reject = ev->id;
        } else {
            void *ctx = ev->id ? ev->id->context : NULL;
            if (ctx && *(int *)ctx == OWN_QP) {
                struct vqp *q = ctx;
                struct vconn *c = q->c;
                switch (ev->event) {
                case RDMA_CM_EVENT_ADDR_RESOLVED:
                    if (rdma_resolve_route(q->id, t->cfg.timeout_ms)) {
                        cb_log_error("verbs: %s:%d: rdma_resolve_route to rank %d (%s) failed: %s", t->dev, t->port,
                                     c->peer.rank, c->peer.host, strerror(errno));
                        conn_fail(c, CB_EDEVICE);
                    } else {
                        q->state = QS_ROUTE;
                    }
                    break;
                case RDMA_CM_EVENT_ROUTE_RESOLVED:
                    on_route_resolved(c, q);
                    break;
                case RDMA_CM_EVENT_CONNECT_RESPONSE:
                    on_connect_response(c, q, ev);
                    break;
                case RDMA_CM_EVENT_ESTABLISHED:
                    if (q->state != QS_ESTABLISHED) {
                        q->state = QS_ESTABLISHED;
                        c->nestablished++;
                    }
                    break;
                case RDMA_CM_EVENT_DISCONNECTED:
                    q->state = QS_GONE;
                    c->peer_gone = 1;
                    break;
                case RDMA_CM_EVENT_TIMEWAIT_EXIT:
                case RDMA_CM_EVENT_ADDR_CHANGE:
                    break;
                default:
                    log_cm_failure(c, ev);
                    break;
                }
            }
        }
        rdma_ack_cm_event(ev);
        if (reject) {
            rdma_reject(reject, NULL, 0);
            rdma_destroy_id(reject);
        }
    }
}

/* -------------------------------------------------------- listen / connect */

static struct vlisten *listen_find(struct vctx *t, const struct vlisten *l)
{
    for (struct vlisten *p = t->listens; p; p = p->next)
        if (p == l)
            return p;
    return NULL;
}

static cb_status verbs_listen(void *tctx, const struct cb_peer *peer, void *handle, void **lcomm)
{
    struct vctx *t = tctx;
    cb_status st;
    *lcomm = NULL;
    struct vlisten *l = calloc(1, sizeof *l);
    if (!l) {
        cb_log_error("verbs: out of memory listening for rank %d (%s)", peer->rank, peer->host);
        return CB_ENOMEM;
    }
    l->own = OWN_LISTEN;
    l->t = t;
    l->peer = *peer;
    st = conn_create(t, 0, peer, &l->rc);
    if (st)
        goto undo_listen;
    l->rc->nonce = t->nonce_seed += 0x9e3779b9u;
    if (rdma_create_id(t->ch, &l->id, l, RDMA_PS_TCP)) {
        cb_log_error("verbs: rdma_create_id failed: %s", strerror(errno));
        st = CB_EDEVICE;
        goto undo_conn;
    }
    struct sockaddr_storage a = t->addr;
    if (rdma_bind_addr(l->id, (struct sockaddr *)&a)) {
        cb_log_error("verbs: %s:%d: rdma_cm cannot bind to %s (the address of GID %d): %s; is the address "
                     "still on the port's netdev? check `ip addr` and --gid-index/--gid-subnet",
                     t->dev, t->port, t->addr_str, t->gid_index, strerror(errno));
        st = CB_EDEVICE;
        goto undo_id;
    }
    if (rdma_listen(l->id, 2 * t->cfg.qps_per_conn + 4)) {
        cb_log_error("verbs: %s:%d: rdma_listen on %s failed: %s", t->dev, t->port, t->addr_str, strerror(errno));
        st = CB_EDEVICE;
        goto undo_id;
    }
    struct vhandle h;
    memset(&h, 0, sizeof h);
    h.magic = htobe32(VH_MAGIC);
    h.version = htobe16(VH_VERSION);
    h.family = htobe16((uint16_t)t->addr.ss_family);
    h.nonce = htobe32(l->rc->nonce);
    h.rank = (int32_t)htobe32((uint32_t)t->cfg.rank);
    h.port = rdma_get_src_port(l->id);
    h.nqps = htobe16((uint16_t)t->cfg.qps_per_conn);
    h.nslots = htobe32((uint32_t)t->cfg.nslots);
    h.slot_bytes = htobe64((uint64_t)t->cfg.slot_bytes);
    if (t->addr.ss_family == AF_INET) {
        memcpy(h.addr, &((struct sockaddr_in *)&t->addr)->sin_addr, 4);
    } else {
        memcpy(h.addr, &((struct sockaddr_in6 *)&t->addr)->sin6_addr, 16);
        h.scope_id = htobe32(((struct sockaddr_in6 *)&t->addr)->sin6_scope_id);
    }
    snprintf(h.dev, sizeof h.dev, "%s", t->dev);
    snprintf(h.host, sizeof h.host, "%s", t->cfg.host);
    memset(handle, 0, CB_HANDLE_BYTES);
    memcpy(handle, &h, sizeof h);
    l->next = t->listens;
    t->listens = l;
    *lcomm = l;
    return CB_OK;

undo_id:
    rdma_destroy_id(l->id);
undo_conn:
    conn_destroy(l->rc);
undo_listen:
    free(l);
    return st;
}

static cb_status verbs_accept(void *lcomm, void **rconn)
{
    struct vlisten *l = lcomm;
    struct vctx *t = l->t;
    *rconn = NULL;
    if (!l->rc) {
        cb_log_error("verbs: accept called again on a listen for rank %d (%s) that already accepted (one "
                     "connection per listen)", l->peer.rank, l->peer.host);
        return CB_EINTERNAL;
    }
    if (!l->t_first)
        l->t_first = now_ms();
    cb_status st = cm_pump(t);
    if (st)
        return st;
    st = check_async(t);
    if (st)
        return st;
    struct vconn *c = l->rc;
    if (c->err)
        return c->err;
    if (c->nestablished == c->nq) {
        c->ready = 1;
        st = cts_issue(c);
        if (st)
            return st;
        l->rc = NULL;
        *rconn = c;
        return CB_OK;
    }
    if (now_ms() - l->t_first > t->cfg.timeout_ms) {
        int n = 0;
        for (int i = 0; i < c->nq; i++)
            n += c->q[i].id != NULL;
        cb_log_error("verbs: %s:%d: rank %d (%s) did not connect within %d ms (%d of %d QPs requested, %d "
                     "established) to %s port %u: is it alive, and can it reach this address over RDMA?",
                     t->dev, t->port, l->peer.rank, l->peer.host, t->cfg.timeout_ms, n, c->nq, c->nestablished,
                     t->addr_str, ntohs(rdma_get_src_port(l->id)));
        conn_fail(c, CB_ETIMEOUT);
        return CB_ETIMEOUT;
    }
    return CB_OK;
}

static cb_status verbs_close_listen(void *lcomm)
{
    struct vlisten *l = lcomm;
    if (!l)
        return CB_OK;
    struct vctx *t = l->t;
    if (listen_find(t, l)) {
        for (struct vlisten **p = &t->listens; *p; p = &(*p)->next)
            if (*p == l) {
                *p = l->next;
                break;
            }
    }
    if (l->rc)
        conn_destroy(l->rc);
    rdma_destroy_id(l->id);
    free(l);
    return CB_OK;
}

static struct vconn *pending_find(struct vctx *t, int rank, uint32_t nonce)
{
    for (struct vconn *c = t->conns; c; c = c->next)
        if (c->is_send && !c->ready && c->peer.rank == rank && c->nonce == nonce)
            return c;
    return NULL;
}

static cb_status verbs_connect(void *tctx, const struct cb_peer *peer, const void *handle, void **sconn)
{
    struct vctx *t = tctx;
    struct vhandle h;
    cb_status st;
    *sconn = NULL;
    memcpy(&h, handle, sizeof h);
    if (be32toh(h.magic) != VH_MAGIC || be16toh(h.version) != VH_VERSION) {
        cb_log_error("verbs: the connection handle from rank %d (%s) is not a verbs handle of this version: "
                     "do all ranks use --transport verbs and the same collbench build?", peer->rank, peer->host);
        return CB_EUSAGE;
    }
    uint32_t nonce = be32toh(h.nonce);
    struct vconn *c = pending_find(t, peer->rank, nonce);
    if (!c) {
        if (be16toh(h.nqps) != t->cfg.qps_per_conn || be32toh(h.nslots) != (uint32_t)t->cfg.nslots ||
            be64toh(h.slot_bytes) != t->cfg.slot_bytes) {
            cb_log_error("verbs: rank %d (%s) uses %u QPs and %u slots of %" PRIu64 " bytes, this rank %d QPs and "
                         "%d slots of %zu bytes: give every rank the same options", peer->rank, peer->host,
                         be16toh(h.nqps), be32toh(h.nslots), be64toh(h.slot_bytes), t->cfg.qps_per_conn,
                         t->cfg.nslots, t->cfg.slot_bytes);
            return CB_EUSAGE;
        }
        int fam = be16toh(h.family);
        if (fam != AF_INET && fam != AF_INET6) {
            cb_log_error("verbs: the handle from rank %d (%s) has address family %d", peer->rank, peer->host, fam);
            return CB_EUSAGE;
        }
        st = conn_create(t, 1, peer, &c);
        if (st)
            return st;
        c->nonce = nonce;
        struct sockaddr_storage dst;
        memset(&dst, 0, sizeof dst);
        if (fam == AF_INET) {
            struct sockaddr_in *s = (struct sockaddr_in *)&dst;
            s->sin_family = AF_INET;
            s->sin_port = h.port;
            memcpy(&s->sin_addr, h.addr, 4);
        } else {
            struct sockaddr_in6 *s = (struct sockaddr_in6 *)&dst;
            s->sin6_family = AF_INET6;
            s->sin6_port = h.port;
            memcpy(&s->sin6_addr, h.addr, 16);
            if (IN6_IS_ADDR_LINKLOCAL(&s->sin6_addr) && t->addr.ss_family == AF_INET6)
                s->sin6_scope_id = ((struct sockaddr_in6 *)&t->addr)->sin6_scope_id;
        }
        char dst_str[INET6_ADDRSTRLEN];
        inet_ntop(fam, h.addr, dst_str, sizeof dst_str);
        for (int i = 0; i < c->nq; i++) {
            struct vqp *q = &c->q[i];
            if (rdma_create_id(t->ch, &q->id, q, RDMA_PS_TCP)) {
                cb_log_error("verbs: rdma_create_id failed: %s", strerror(errno));
                st = CB_EDEVICE;
                goto fail;
            }
            uint8_t tos = (uint8_t)t->cfg.traffic_class, to = (uint8_t)t->cfg.ib_timeout;
            if (tos)
                rdma_set_option(q->id, RDMA_OPTION_ID, RDMA_OPTION_ID_TOS, &tos, sizeof tos);
            rdma_set_option(q->id, RDMA_OPTION_ID, RDMA_OPTION_ID_ACK_TIMEOUT, &to, sizeof to);
            struct sockaddr_storage src = t->addr;
            if (rdma_resolve_addr(q->id, (struct sockaddr *)&src, (struct sockaddr *)&dst, t->cfg.timeout_ms)) {
                cb_log_error("verbs: %s:%d: rdma_cm cannot resolve %s port %u (rank %d, %s, device %s) from %s: %s; "
                             "check that both ports have IP addresses in a common subnet",
                             t->dev, t->port, dst_str, ntohs(h.port), peer->rank, peer->host, h.dev, t->addr_str,
                             strerror(errno));
                st = CB_EDEVICE;
                goto fail;
            }
            q->state = QS_ADDR;
        }
    }
    st = cm_pump(t);
    if (!st)
        st = check_async(t);
    if (st)
        return st;
    if (c->err) {
        st = c->err;
        goto fail;
    }
    if (c->nestablished == c->nq) {
        c->ready = 1;
        *sconn = c;
        return CB_OK;
    }
    if (now_ms() - c->t_start > t->cfg.timeout_ms) {
        int stage = QS_ESTABLISHED;
        for (int i = 0; i < c->nq; i++)
            if (c->q[i].state < stage)
                stage = c->q[i].state;
        char dst_str[INET6_ADDRSTRLEN];
        inet_ntop(be16toh(h.family), h.addr, dst_str, sizeof dst_str);
        if (stage == QS_ADDR || stage == QS_ROUTE) {
            cb_log_error("verbs: %s:%d: rdma_cm could not resolve the %s to %s (rank %d, %s, device %s) from %s "
                         "within %d ms: the address does not resolve over this port (no neighbour/route); check "
                         "both ports' IP addresses and subnets, or pick the GID with --gid-index/--gid-subnet",
                         t->dev, t->port, stage == QS_ADDR ? "address" : "route", dst_str, peer->rank, peer->host,
                         h.dev, t->addr_str, t->cfg.timeout_ms);
            st = CB_EDEVICE;
        } else {
            cb_log_error("verbs: %s:%d: rank %d (%s, %s port %u on %s) did not answer the connection request "
                         "within %d ms (%d of %d QPs established): is it alive and still listening?", t->dev,
                         t->port, peer->rank, peer->host, dst_str, ntohs(h.port), h.dev, t->cfg.timeout_ms,
                         c->nestablished, c->nq);
            st = CB_ETIMEOUT;
        }
        goto fail;
    }
    return CB_OK;

fail:
    conn_destroy(c);
    return st;
}

/* ---------------------------------------------------------------- data calls */

static cb_status verbs_send_slot(void *sconn, void **slot)
{
    struct vconn *c = sconn;
    *slot = NULL;
    cb_status st = conn_progress(c);
    if (st)
        return st;
    c->completed = send_completed(c);
    if (!c->slot_out) {
        /* A slot only once the receiver has cleared it: send_post then writes
         * at once and nothing waits for a later call. A sender that posts its
         * last slice and leaves for something else (an MPI barrier, the next
         * size) would otherwise strand that slice until it comes back. */
        const struct cts_entry *e = &c->cts[c->posted % (uint64_t)c->nslots];
        if (c->posted - c->completed >= (uint64_t)c->nslots ||
            __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE) != (uint32_t)(c->posted + 1))
            return CB_OK;
    }
    *slot = c->fifo + (size_t)(c->posted % (uint64_t)c->nslots) * c->slot_bytes;
    c->slot_out = 1;
    return CB_OK;
}

static cb_status verbs_send_post(void *sconn, size_t nbytes)
{
    struct vconn *c = sconn;
    if (c->err)
        return c->err;
    if (!c->slot_out || nbytes > c->slot_bytes) {
        cb_log_error("verbs: send_post of %zu bytes to rank %d (%s) %s", nbytes, c->peer.rank, c->peer.host,
                     !c->slot_out ? "without a slot from send_slot" : "is larger than a slot");
        return CB_EINTERNAL;
    }
    c->sizes[c->posted % (uint64_t)c->nslots] = (uint32_t)nbytes;
    c->posted++;
    c->slot_out = 0;
    return send_issue(c);
}

static cb_status verbs_recv_slot(void *rconn, const void **slot, size_t *nbytes)
{
    struct vconn *c = rconn;
    *slot = NULL;
    *nbytes = 0;
    cb_status st = conn_progress(c);
    if (st)
        return st;
    if (c->consumed >= recv_avail(c)) {
        if (c->peer_gone) {
            cb_log_error("verbs: rank %d (%s) closed the connection while this rank waits for slot %" PRIu64,
                         c->peer.rank, c->peer.host, c->consumed);
            conn_fail(c, CB_EPEER);
            return CB_EPEER;
        }
        return CB_OK;
    }
    int s = (int)(c->consumed % (uint64_t)c->nslots);
    *slot = c->fifo + (size_t)s * c->slot_bytes;
    *nbytes = c->sizes[s];
    c->slot_out = 1;
    return CB_OK;
}

static cb_status verbs_recv_release(void *rconn)
{
    struct vconn *c = rconn;
    if (c->err)
        return c->err;
    if (!c->slot_out) {
        cb_log_error("verbs: recv_release from rank %d (%s) without a slot from recv_slot", c->peer.rank,
                     c->peer.host);
        return CB_EINTERNAL;
    }
    c->slot_out = 0;
    c->consumed++;
    return cts_issue(c);
}

/* Reading the CM channel costs a system call: do it on every call only while
 * connections are being made, otherwise now and then (disconnects). */
static int cm_busy(const struct vctx *t)
{
    for (const struct vlisten *l = t->listens; l; l = l->next)
        if (l->rc)
            return 1;
    for (const struct vconn *c = t->conns; c; c = c->next)
        if (!c->ready)
            return 1;
    return 0;
}

static cb_status verbs_progress(void *tctx)
{
    struct vctx *t = tctx;
    cb_status st = CB_OK;
    if (cm_busy(t) || (++t->pump_tick & 1023) == 0)
        st = cm_pump(t);
    if (st)
        return st;
    st = check_async(t);
    if (st)
        return st;
    for (struct vconn *c = t->conns; c; c = c->next) {
        if (!c->ready)
            continue;
        st = conn_progress(c);
        if (st)
            return st;
    }
    return CB_OK;
}

static cb_status verbs_send_idle(void *sconn, int *idle)
{
    struct vconn *c = sconn;
    *idle = 0;
    cb_status st = conn_progress(c);
    if (st)
        return st;
    c->completed = send_completed(c);
    /* everything written, and the receiver has released all of it: the
     * clear-to-send for the last slot it will ever offer has arrived (it
     * offers slot s only after consuming s - nslots). Unsignaled writes
     * never complete here; the receiver's release proves they landed. */
    uint64_t last = c->posted + (uint64_t)c->nslots - 1;
    const struct cts_entry *e = &c->cts[last % (uint64_t)c->nslots];
    *idle = c->issued == c->posted && __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE) == (uint32_t)(last + 1);
    return CB_OK;
}

static cb_status verbs_close_send(void *sconn)
{
    if (sconn)
        conn_destroy(sconn);
    return CB_OK;
}

static cb_status verbs_close_recv(void *rconn)
{
    if (rconn)
        conn_destroy(rconn);
    return CB_OK;
}

static void verbs_finalize(void *tctx)
{
    struct vctx *t = tctx;
    if (!t)
        return;
    if (t->async_started) {
        uint64_t one = 1;
        atomic_store(&t->async_stop, 1);
        if (write(t->wake_fd, &one, sizeof one) < 0) {
            /* the thread still sees async_stop within its poll timeout */
        }
        pthread_join(t->async_thr, NULL);
    }
    while (t->listens)
        verbs_close_listen(t->listens);
    while (t->conns)
        conn_destroy(t->conns);
    close(t->wake_fd);
    rdma_destroy_event_channel(t->ch);
    ibv_dealloc_pd(t->pd);
    ibv_close_device(t->ctx);
    free(t);
}

const struct cb_transport_ops cb_transport_verbs = {
    .name = "verbs",
    .init = verbs_init,
    .properties = verbs_properties,
    .listen = verbs_listen,
    .connect = verbs_connect,
    .accept = verbs_accept,
    .close_listen = verbs_close_listen,
    .send_slot = verbs_send_slot,
    .send_post = verbs_send_post,
    .recv_slot = verbs_recv_slot,
    .recv_release = verbs_recv_release,
    .progress = verbs_progress,
    .send_idle = verbs_send_idle,
    .close_send = verbs_close_send,
    .close_recv = verbs_close_recv,
    .finalize = verbs_finalize,
};
