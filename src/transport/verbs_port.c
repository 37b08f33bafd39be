/* The verbs transport: which device and port a rank uses. --hca (NCCL_IB_HCA's
 * syntax, transport/hca.h) gives the candidates: listed ones in list order
 * (a name without a port: its active ports), or with '^' every active port
 * but those; without --hca, every active port whose link layer and rate most
 * ports share (a front-end or storage NIC of another kind is skipped and the
 * run says so). Local rank i takes candidate i mod count; a rank alone on
 * its host whose --hca gives several ports drives them all, channels
 * striped over them (cb_hca_stripes). (The hwloc-closest
 * NIC is a topology decision taken above: it reaches here as "=dev:port".) */
#include "verbs_internal.h"
#include "transport/hca.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PORTS 256

struct port_info {
    int dev, port, active;
    struct cb_port_desc desc;
};

struct ports {
    struct port_info p[MAX_PORTS];
    int n;
    int nports[MAX_PORTS];    /* per device: its port count, -1 = could not open it */
};

static void scan_ports(struct ibv_device **list, int n, struct ports *all)
{
    all->n = 0;
    for (int d = 0; d < n && d < MAX_PORTS; d++) {
        struct ibv_context *ctx = ibv_open_device(list[d]);
        struct ibv_device_attr da;
        all->nports[d] = -1;
        if (!ctx || ibv_query_device(ctx, &da)) {
            if (ctx)
                ibv_close_device(ctx);
            continue;
        }
        all->nports[d] = da.phys_port_cnt;
        for (int q = 1; q <= da.phys_port_cnt && all->n < MAX_PORTS; q++) {
            struct ibv_port_attr pa;
            if (ibv_query_port(ctx, (uint8_t)q, &pa))
                continue;
            struct port_info *pi = &all->p[all->n++];
            pi->dev = d;
            pi->port = q;
            pi->active = pa.state == IBV_PORT_ACTIVE;
            snprintf(pi->desc.name, sizeof pi->desc.name, "%s", ibv_get_device_name(list[d]));
            pi->desc.port = q;
            pi->desc.link_layer = pa.link_layer;
            pi->desc.rate_mbps = vb_rate_mbps(vb_speed_code(&pa), pa.active_width, NULL, 0);
        }
        ibv_close_device(ctx);
    }
}

/* "mlx5_0 (port 1 ACTIVE InfiniBand, ...), ..." for messages. */
static void list_devices(struct ibv_device **list, int n, const struct ports *all, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (int d = 0; d < n && off < len; d++) {
        off += (size_t)snprintf(buf + off, len - off, "%s%s (", d ? ", " : "", ibv_get_device_name(list[d]));
        int first = 1;
        for (int i = 0; i < all->n && off < len; i++) {
            const struct port_info *pi = &all->p[i];
            if (pi->dev != d)
                continue;
            off += (size_t)snprintf(buf + off, len - off, "%sport %d %s %s", first ? "" : ", ", pi->port,
                                    pi->active ? "ACTIVE" : "not active", vb_link_layer_str(pi->desc.link_layer));
            first = 0;
        }
        if (off < len)
            off += (size_t)snprintf(buf + off, len - off, "%s)", all->nports[d] < 0 ? "cannot open" : "");
    }
}

struct cands {
    int idx[MAX_PORTS];       /* into ports.p */
    int n;
};

static void add_cand(struct cands *c, int i)
{
    for (int k = 0; k < c->n; k++)
        if (c->idx[k] == i)
            return;
    if (c->n < MAX_PORTS)
        c->idx[c->n++] = i;
}

static int find_port(const struct ports *all, int dev, int port)
{
    for (int i = 0; i < all->n; i++)
        if (all->p[i].dev == dev && all->p[i].port == port)
            return i;
    return -1;
}

/* The ports a list of names gives, in list order. */
static cb_status listed_ports(const struct cb_transport_config *cfg, const struct cb_hca_spec *spec,
                              struct ibv_device **list, int n, const struct ports *all, struct cands *c)
{
    char known[1024];
    for (int e = 0; e < spec->n; e++) {
        int named = 0;
        for (int d = 0; d < n && d < MAX_PORTS; d++) {
            if (!cb_hca_name_match(spec, e, ibv_get_device_name(list[d])))
                continue;
            named = 1;
            const char *dev = ibv_get_device_name(list[d]);
            if (all->nports[d] < 0) {
                cb_log_error("verbs: cannot open RDMA device %s (from --hca '%s'): check the permissions on "
                             "/dev/infiniband, or name another device", dev, cfg->hca);
                return CB_EDEVICE;
            }
            int want = spec->e[e].port;
            if (want > all->nports[d]) {
                list_devices(list, n, all, known, sizeof known);
                cb_log_error("verbs: RDMA device %s has no port %d (it has %d): pick one of: %s", dev, want,
                             all->nports[d], known);
                return CB_EDEVICE;
            }
            int before = c->n;
            for (int i = 0; i < all->n; i++) {
                const struct port_info *pi = &all->p[i];
                if (pi->dev == d && (want ? pi->port == want : pi->active))
                    add_cand(c, i);
            }
            if (c->n == before && !want && find_port(all, d, 1) >= 0)
                add_cand(c, find_port(all, d, 1));   /* no active port: reported as not active later */
        }
        if (!named) {
            list_devices(list, n, all, known, sizeof known);
            cb_log_error("verbs: no RDMA device named '%s'%s (from --hca '%s'); devices here: %s", spec->e[e].name,
                         spec->exact ? "" : " or starting with it", cfg->hca, known);
            return CB_EDEVICE;
        }
    }
    return CB_OK;
}

/* Without --hca: the active ports of the most common kind. */
static void automatic_ports(const struct ports *all, struct cands *c, char *note, size_t note_len)
{
    struct cb_port_desc d[MAX_PORTS];
    int at[MAX_PORTS], keep[MAX_PORTS], m = 0;
    for (int i = 0; i < all->n; i++)
        if (all->p[i].active) {
            d[m] = all->p[i].desc;
            at[m++] = i;
        }
    if (m && cb_ports_majority(d, m, keep, note, note_len) == 0)
        note[0] = '\0';
    for (int k = 0; k < m; k++)
        if (keep[k])
            add_cand(c, at[k]);
}

/* A rank that drives several ports needs one link layer: a channel's two
 * ends must face each other on the same kind of fabric. */
static cb_status check_one_link_layer(const struct cb_transport_config *cfg, const struct ports *all,
                                      const struct cands *c)
{
    struct cb_port_desc d[MAX_PORTS];
    char which[256];
    for (int k = 0; k < c->n; k++)
        d[k] = all->p[c->idx[k]].desc;
    if (!cb_ports_mixed_link(d, c->n, which, sizeof which))
        return CB_OK;
    cb_log_error("verbs: --hca '%s' mixes link layers: %s; a rank's devices must all be InfiniBand or all "
                 "Ethernet (RoCE): list ports of one kind", cfg->hca, which);
    return CB_EUSAGE;
}

/* The host's usable ports that no rank of it uses, said once per host (by
 * local rank 0): the topology's word when it chose the NICs, else from the
 * candidates: local ranks 0..k-1 take the first k (rails), a striping
 * rank's channels the first --channels. */
static void warn_idle_ports(const struct cb_transport_config *cfg, const struct ports *all, const struct cands *c,
                            int stripe)
{
    struct cb_port_desc d[MAX_PORTS];
    int used[MAX_PORTS], m = 0;
    char msg[CB_RAILS_NOTE];
    if (cfg->local_rank > 0)
        return;
    if (cfg->rails_checked) {
        if (cfg->rails_note[0])
            cb_log_warn("verbs: %s: %s", cfg->host, cfg->rails_note);
        return;
    }
    int reach = stripe ? (cfg->channels > 1 ? cfg->channels : 1) : (cfg->local_size > 1 ? cfg->local_size : 1);
    for (int i = 0; i < all->n; i++) {
        if (!all->p[i].active)
            continue;
        d[m] = all->p[i].desc;
        used[m] = 0;
        for (int k = 0; k < c->n && k < reach; k++)
            used[m] |= c->idx[k] == i;
        m++;
    }
    struct cb_rail_use u = {cfg->local_size > 1 ? cfg->local_size : 1, cfg->hca[0] != 0};
    if (cb_rails_unused(d, m, used, &u, msg, sizeof msg))
        cb_log_warn("verbs: %s: %s", cfg->host, msg);
}

/* Every candidate (stripe), or local rank i's: candidate i mod count (rails). */
static cb_status pick_ports(const struct cb_transport_config *cfg, const struct cb_hca_spec *spec,
                            const struct ports *all, const struct cands *c, struct vb_ports_used *use)
{
    int ncand = c->n < CB_HCA_MAX ? c->n : CB_HCA_MAX;
    use->stripe = cb_hca_stripes(spec->n > 0, cfg->local_size, ncand);
    if (use->stripe && check_one_link_layer(cfg, all, c))
        return CB_EUSAGE;
    use->n = use->stripe ? ncand : 1;
    int first = use->stripe ? 0 : (cfg->local_rank > 0 ? cfg->local_rank : 0) % c->n;
    for (int k = 0; k < use->n; k++) {
        use->dev[k] = all->p[c->idx[first + k]].dev;
        use->port[k] = all->p[c->idx[first + k]].port;
    }
    if (spec->n && !cfg->hca_checked && cfg->local_size > c->n && cfg->local_rank <= 0)
        cb_log_warn("verbs: %s: %d ranks on this host share %d port%s of --hca '%s': ranks that share a NIC "
                    "share its bandwidth; list more NICs or start fewer ranks per host",
                    cfg->host, cfg->local_size, c->n, c->n > 1 ? "s" : "", cfg->hca);
    warn_idle_ports(cfg, all, c, use->stripe);
    if (cfg->rank == 0 && cfg->hosts_note[0])   /* the topology compared the hosts: once per job */
        cb_log_warn("verbs: %s", cfg->hosts_note);
    return CB_OK;
}

int vb_active_port_here(const struct cb_transport_config *cfg)
{
    if (cfg->hca[0])
        return 1;
    int n = 0, any = 0;
    struct ibv_device **list = ibv_get_device_list(&n);
    if (!list)
        return 0;
    struct ports *all = calloc(1, sizeof *all);
    if (!all) {
        any = 1;   /* let init report it */
        goto free_list;
    }
    scan_ports(list, n, all);
    for (int i = 0; i < all->n; i++)
        any |= all->p[i].active;
    free(all);
free_list:
    ibv_free_device_list(list);
    return any;
}

cb_status vb_choose_port(const struct cb_transport_config *cfg, struct ibv_device **list, int n,
                         struct vb_ports_used *use, char *note, size_t note_len)
{
    struct cb_hca_spec spec;
    char err[512], known[1024];
    note[0] = '\0';
    if (cb_hca_parse(cfg->hca, &spec, err, sizeof err)) {
        cb_log_error("verbs: %s", err);
        return CB_EUSAGE;
    }
    struct ports *all = calloc(1, sizeof *all);
    if (!all) {
        cb_log_error("verbs: out of memory listing the RDMA ports");
        return CB_ENOMEM;
    }
    scan_ports(list, n, all);
    struct cands c = {.n = 0};
    cb_status st = CB_OK;
    if (spec.n && !spec.exclude) {
        st = listed_ports(cfg, &spec, list, n, all, &c);
        if (st)
            goto free_ports;
    } else if (spec.n) {
        for (int i = 0; i < all->n; i++)
            if (all->p[i].active && cb_hca_selects(&spec, all->p[i].desc.name, all->p[i].port))
                add_cand(&c, i);
    } else {
        automatic_ports(all, &c, note, note_len);
    }
    if (c.n == 0) {
        list_devices(list, n, all, known, sizeof known);
        if (spec.n)
            cb_log_error("verbs: --hca '%s' leaves no ACTIVE port (devices here: %s): exclude fewer, or name "
                         "the ports to use", cfg->hca, known);
        else
            cb_log_error("verbs: no ACTIVE port on any RDMA device (%s): check the cable/link (ibstat, rdma link) "
                         "or choose one with --hca dev:port, or use --transport tcp", known);
        st = CB_EDEVICE;
        goto free_ports;
    }
    st = pick_ports(cfg, &spec, all, &c, use);
    if (note[0] && cfg->local_rank <= 0)
        cb_log_warn("verbs: %s: %s (name them with --hca to use them)", cfg->host, note);
free_ports:
    free(all);
    return st;
}
