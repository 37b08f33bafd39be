/* Placement of a machine's local ranks: NIC, CPUs, warnings (rules in topo.h). */
#include "topo_impl.h"
#include "transport/hca.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_USABLE 64   /* NICs considered for placement */
#define MAX_HCA_TOKENS 64

struct work {
    const struct cb_topo *t;
    const struct cb_topo_request *req;
    struct cb_topo_plan *plan;
    int n;
    hwloc_const_cpuset_t allowed;
    hwloc_bitmap_t *start;    /* [n] CPUs the rank started on */
    hwloc_bitmap_t *cpus;     /* [n] where it runs (owned by plan->sets) */
    int *launcher;            /* [n] the launcher bound it */
    int *nic;                 /* [n] index into t->nics, -1 = none or not in the topology */
    uint64_t *mask;           /* [n] closest usable NICs (bit k = usable[k]) */
    int usable[MAX_USABLE], nuse;
    int from_hca;
    int cand[MAX_HCA_TOKENS], ncand;   /* --hca's candidates (index into t->nics, -1 = unknown name) */
};

/* ---- set-up ---- */

static cb_status work_init(struct work *w, const struct cb_topo *t, const struct cb_topo_request *req,
                           struct cb_topo_plan *plan)
{
    size_t n = (size_t)req->local_size;
    memset(w, 0, sizeof *w);
    w->t = t;
    w->req = req;
    w->plan = plan;
    w->n = req->local_size;
    w->allowed = hwloc_topology_get_allowed_cpuset(t->topo);
    plan->n = w->n;
    plan->ranks = calloc(n, sizeof *plan->ranks);
    plan->sets = w->cpus = calloc(n, sizeof *w->cpus);
    w->start = calloc(n, sizeof *w->start);
    w->launcher = calloc(n, sizeof *w->launcher);
    w->nic = calloc(n, sizeof *w->nic);
    w->mask = calloc(n, sizeof *w->mask);
    if (plan->ranks && w->cpus && w->start && w->launcher && w->nic && w->mask)
        return CB_OK;
    cb_log_error("out of memory placing %d local ranks", w->n);
    return CB_ENOMEM;
}

static void work_free(struct work *w)
{
    for (int r = 0; w->start && r < w->n; r++)
        hwloc_bitmap_free(w->start[r]);
    free(w->start);
    free(w->launcher);
    free(w->nic);
    free(w->mask);
}

void cb_topo_plan_free(struct cb_topo_plan *p)
{
    hwloc_bitmap_t *sets = p->sets;
    for (int r = 0; sets && r < p->n; r++)
        hwloc_bitmap_free(sets[r]);
    free(sets);
    free(p->ranks);
    memset(p, 0, sizeof *p);
}

/* The CPUs each rank started on; a list smaller than the machine means the launcher bound it. */
static cb_status parse_start(struct work *w)
{
    for (int r = 0; r < w->n; r++) {
        const char *s = w->req->cpus ? w->req->cpus[r] : NULL;
        w->start[r] = hwloc_bitmap_dup(w->allowed);
        if (!w->start[r])
            return CB_ENOMEM;
        if (!s || !*s)
            continue;
        if (hwloc_bitmap_list_sscanf(w->start[r], s) != 0 || !hwloc_bitmap_intersects(w->start[r], w->allowed)) {
            char all[CB_TOPO_CPUS_LEN];
            cb_topo_list(w->allowed, all, sizeof all);
            cb_log_error("CPU list '%s' of local rank %d names none of the machine's cpus (%s): write it "
                         "like 0-3,8", s, r, all);
            return CB_EUSAGE;
        }
        hwloc_bitmap_and(w->start[r], w->start[r], w->allowed);
        w->launcher[r] = !hwloc_bitmap_isequal(w->start[r], w->allowed);
    }
    return CB_OK;
}

static void resolve_bind(struct work *w)
{
    struct cb_topo_plan *p = w->plan;
    int npu = hwloc_bitmap_weight(w->allowed), bound = 0;
    for (int r = 0; r < w->n; r++)
        bound |= w->launcher[r];
    p->bind = w->req->bind;
    if (p->bind != CB_BIND_AUTO)
        snprintf(p->why, sizeof p->why, "asked for");
    else if (w->n > npu)
        snprintf(p->why, sizeof p->why, "%d ranks on %d cpus: oversubscribed", w->n, npu);
    else if (bound)
        snprintf(p->why, sizeof p->why, "the launcher bound the ranks");
    else
        snprintf(p->why, sizeof p->why, "default: one core per rank");
    if (p->bind == CB_BIND_AUTO)
        p->bind = (w->n > npu || bound) ? CB_BIND_NONE : CB_BIND_CORE;
}

/* ---- NICs ---- */

/* The NICs the host's ranks are placed over, for comparing hosts (topo_run.c). */
static void set_rails(struct cb_topo_plan *p, const char *const *names, int n)
{
    p->nrails = n;
    cb_nic_names_short(names, n, p->rail_names, sizeof p->rail_names);
}

/* The NICs --hca selects: listed ones in list order (a name the topology
 * does not know stays, for the transport to find or refuse), or with '^'
 * the usable ones but those. Local rank r takes candidate r mod count. */
static cb_status assign_hca(struct work *w)
{
    struct cb_hca_spec spec;
    char err[512], name[MAX_HCA_TOKENS][CB_HCA_NAME];
    int nic[MAX_HCA_TOKENS], port[MAX_HCA_TOKENS], count = 0;
    if (cb_hca_parse(w->req->hca, &spec, err, sizeof err)) {
        cb_log_error("%s", err);
        return CB_EUSAGE;
    }
    for (int e = 0; e < spec.n && !spec.exclude; e++) {
        int any = 0;
        for (int i = 0; i < w->t->nnic && count < MAX_HCA_TOKENS; i++) {
            if (!cb_hca_name_match(&spec, e, w->t->nics[i].name))
                continue;
            any = 1;
            nic[count] = i;
            port[count] = spec.e[e].port;
            snprintf(name[count++], CB_HCA_NAME, "%s", w->t->nics[i].name);
        }
        if (!any && count < MAX_HCA_TOKENS) {
            nic[count] = -1;
            port[count] = spec.e[e].port;
            snprintf(name[count++], CB_HCA_NAME, "%s", spec.e[e].name);
        }
    }
    for (int k = 0; k < w->nuse && spec.exclude && count < MAX_HCA_TOKENS; k++) {
        const struct topo_dev *d = &w->t->nics[w->usable[k]];
        if (!cb_hca_selects(&spec, d->name, d->port))
            continue;
        nic[count] = w->usable[k];
        port[count] = d->port;
        snprintf(name[count++], CB_HCA_NAME, "%s", d->name);
    }
    if (!count) {
        cb_log_error("--hca '%s' leaves none of this machine's usable RDMA NICs: exclude fewer, or name the NICs "
                     "to use", w->req->hca);
        return CB_EUSAGE;
    }
    memcpy(w->cand, nic, sizeof(int) * (size_t)count);
    w->ncand = count;
    const char *names[MAX_HCA_TOKENS];
    for (int k = 0; k < count; k++)
        names[k] = name[k];
    set_rails(w->plan, names, count);
    for (int r = 0; r < w->n; r++) {
        w->nic[r] = nic[r % count];
        snprintf(w->plan->ranks[r].nic, sizeof w->plan->ranks[r].nic, "%s", name[r % count]);
        w->plan->ranks[r].port = port[r % count];
    }
    w->from_hca = 1;
    return CB_OK;
}

/* The usable NICs as the transport's port rules see them (transport/hca.h). */
static void usable_ports(const struct work *w, struct cb_port_desc *d)
{
    for (int k = 0; k < w->nuse; k++) {
        const struct topo_dev *x = &w->t->nics[w->usable[k]];
        snprintf(d[k].name, sizeof d[k].name, "%s", x->name);
        d[k].port = x->port;
        d[k].link_layer = x->link_layer;
        d[k].rate_mbps = x->rate_mbps;
    }
}

/* Without --hca: only the NICs of the kind (link layer, rate) most usable ones are. */
static void keep_majority(struct work *w)
{
    struct cb_port_desc d[MAX_USABLE];
    int keep[MAX_USABLE], n = 0;
    usable_ports(w, d);
    if (!w->nuse || !cb_ports_majority(d, w->nuse, keep, w->plan->nic_note, sizeof w->plan->nic_note))
        return;
    for (int k = 0; k < w->nuse; k++)
        if (keep[k])
            w->usable[n++] = w->usable[k];
    w->nuse = n;
}

/* Usable NICs closest to the CPUs the rank started on. */
static uint64_t closest_mask(const struct work *w, int r)
{
    int best = CB_DIST_UNKNOWN + 1;
    uint64_t mask = 0;
    for (int k = 0; k < w->nuse; k++) {
        int d = cb_topo_cpus_dist(w->t, w->start[r], w->t->nics[w->usable[k]].anc);
        if (d < best) {
            best = d;
            mask = 0;
        }
        if (d == best)
            mask |= 1ULL << k;
    }
    return mask;
}

static int nth_bit(uint64_t mask, int nth)
{
    for (int k = 0; k < 64; k++)
        if ((mask >> k & 1) && nth-- == 0)
            return k;
    return 0;
}

/* Ranks with the same closest NICs spread over them in rank order. */
static void assign_closest(struct work *w, int r)
{
    int before = 0, same = 0, m = __builtin_popcountll(w->mask[r]);
    for (int q = 0; q < w->n; q++) {
        if (!w->launcher[q] || w->mask[q] != w->mask[r])
            continue;
        same++;
        before += q < r;
    }
    w->nic[r] = w->usable[nth_bit(w->mask[r], (int)((long)before * m / same))];
}

static cb_status assign_nics(struct work *w)
{
    for (int i = 0; i < w->t->nnic && w->nuse < MAX_USABLE; i++)
        if (w->t->nics[i].active)
            w->usable[w->nuse++] = i;
    if (w->req->hca && *w->req->hca)
        return assign_hca(w);
    keep_majority(w);
    const char *names[MAX_USABLE];
    for (int k = 0; k < w->nuse; k++)
        names[k] = w->t->nics[w->usable[k]].name;
    set_rails(w->plan, names, w->nuse);
    int closest = w->plan->bind == CB_BIND_NONE;
    for (int r = 0; r < w->n; r++)
        if (closest && w->launcher[r] && w->nuse)
            w->mask[r] = closest_mask(w, r);
    for (int r = 0; r < w->n; r++) {
        if (w->nuse == 0)
            w->nic[r] = -1;
        else if (closest && w->launcher[r])
            assign_closest(w, r);
        else   /* rails */
            w->nic[r] = w->usable[(int)((long)r * w->nuse / w->n)];
    }
    return CB_OK;
}

/* ---- CPUs ---- */

/* The object of `type` for rank r: by (uses, outside the NIC's CPUs) for cores, by
 * (outside, uses) for NUMA nodes, then lowest index; NULL if none is allowed. */
static hwloc_obj_t pick(const struct work *w, hwloc_obj_type_t type, int *uses, hwloc_const_cpuset_t pool)
{
    hwloc_obj_t best = NULL;
    long best_key = 0;
    int n = hwloc_get_nbobjs_by_type(w->t->topo, type), best_i = -1;
    for (int i = 0; i < n; i++) {
        hwloc_obj_t o = hwloc_get_obj_by_type(w->t->topo, type, (unsigned)i);
        if (!hwloc_bitmap_intersects(o->cpuset, w->allowed))
            continue;
        long out = pool && !hwloc_bitmap_intersects(o->cpuset, pool);
        long key = type == HWLOC_OBJ_NUMANODE ? (out << 40) + ((long)uses[i] << 20) + i
                                              : ((long)uses[i] << 40) + (out << 20) + i;
        if (!best || key < best_key) {
            best = o;
            best_key = key;
            best_i = i;
        }
    }
    if (best)
        uses[best_i]++;
    return best;
}

static void assign_cpus(struct work *w)
{
    hwloc_topology_t h = w->t->topo;
    hwloc_obj_type_t type = w->plan->bind == CB_BIND_NUMA ? HWLOC_OBJ_NUMANODE
                          : hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
    int nobj = hwloc_get_nbobjs_by_type(h, type);
    int *uses = calloc((size_t)(nobj > 0 ? nobj : 1), sizeof *uses);
    for (int r = 0; r < w->n; r++) {
        hwloc_obj_t o = NULL;
        if (w->plan->bind != CB_BIND_NONE && uses) {
            const struct topo_dev *d = w->nic[r] >= 0 ? &w->t->nics[w->nic[r]] : NULL;
            o = pick(w, type, uses, d && d->anc ? d->anc->cpuset : NULL);
        }
        w->cpus[r] = hwloc_bitmap_dup(o ? o->cpuset : w->start[r]);
        if (w->cpus[r])
            hwloc_bitmap_and(w->cpus[r], w->cpus[r], w->allowed);
        w->plan->ranks[r].bound_here = o != NULL;
    }
    free(uses);
}

static void fill_ranks(struct work *w)
{
    for (int r = 0; r < w->n; r++) {
        struct cb_topo_rank *x = &w->plan->ranks[r];
        const struct topo_dev *d = w->nic[r] >= 0 ? &w->t->nics[w->nic[r]] : NULL;
        if (d) {
            snprintf(x->nic, sizeof x->nic, "%s", d->name);
            snprintf(x->netdev, sizeof x->netdev, "%s", d->netdev);
        }
        if (x->nic[0] && !x->port)
            x->port = d ? d->port : 1;
        x->nic_known = d != NULL;
        x->dist = d && w->cpus[r] ? cb_topo_cpus_dist(w->t, w->cpus[r], d->anc) : CB_DIST_UNKNOWN;
        if (w->cpus[r]) {
            cb_topo_list(w->cpus[r], x->cpus, sizeof x->cpus);
            cb_topo_numa_list(w->t, w->cpus[r], x->numa, sizeof x->numa);
        }
    }
}

/* ---- warnings ---- */

static struct topo_sb next_warning(struct cb_topo_rank *x)
{
    struct topo_sb s = {x->warn[x->nwarn], sizeof x->warn[0], 0};
    x->nwarn++;
    return s;
}

/* Usable NICs whose package has CPUs in `cpus` ("mlx5_0, mlx5_1"). */
static void nics_near(const struct work *w, hwloc_const_cpuset_t cpus, struct topo_sb *s)
{
    int any = 0;
    for (int k = 0; k < w->nuse; k++) {
        const struct topo_dev *d = &w->t->nics[w->usable[k]];
        hwloc_obj_t pkg = cb_topo_package_of(w->t, d->anc);
        if (pkg && hwloc_bitmap_intersects(pkg->cpuset, cpus))
            cb_topo_sb_add(s, "%s%s", any++ ? ", " : "", d->name);
    }
    if (!any)
        cb_topo_sb_add(s, "none");
}

static void warn_remote(struct work *w, int r)
{
    struct cb_topo_rank *x = &w->plan->ranks[r];
    const struct topo_dev *d = &w->t->nics[w->nic[r]];
    char npk[32], cpk[32];
    cb_topo_package_list(w->t, d->anc->cpuset, npk, sizeof npk);
    cb_topo_package_list(w->t, w->cpus[r], cpk, sizeof cpk);
    struct topo_sb s = next_warning(x);
    cb_topo_sb_add(&s, "NIC %s is on package %s but the rank's cpus %s are on package %s: its RDMA traffic "
                "crosses the inter-socket link. ", d->name, npk, x->cpus, cpk);
    if (w->from_hca) {
        cb_topo_sb_add(&s, "--hca (or COLLBENCH_HCA) chose it: name a NIC of package %s instead (", cpk);
        nics_near(w, w->cpus[r], &s);
        cb_topo_sb_add(&s, ") or drop --hca to let collbench choose");
    } else if (x->bound_here) {
        cb_topo_sb_add(&s, "collbench bound it there because package %s had no free core left: run fewer "
                    "ranks per machine, or choose NICs with --hca", npk);
    } else if (w->launcher[r]) {
        cb_topo_sb_add(&s, "The launcher bound the rank there: let collbench bind it near its NIC (--bind core) "
                    "or have the launcher bind it on package %s", npk);
    } else {
        cb_topo_sb_add(&s, "Bind it near its NIC (--bind core or --bind numa)");
    }
}

static void warn_sharing(struct work *w, int r, const int *count)
{
    struct cb_topo_rank *x = &w->plan->ranks[r];
    int idle = 0, others = 0;
    struct topo_sb s = next_warning(x);
    cb_topo_sb_add(&s, "shares NIC %s with local rank", x->nic);
    for (int q = 0; q < w->n; q++)
        if (q != r && w->nic[q] == w->nic[r])
            cb_topo_sb_add(&s, "%s %d", others++ ? "," : "", q);
    cb_topo_sb_add(&s, " while");
    for (int k = 0; k < w->nuse; k++)
        if (!count[w->usable[k]])
            cb_topo_sb_add(&s, "%s %s", idle++ ? "," : "", w->t->nics[w->usable[k]].name);
    cb_topo_sb_add(&s, " %s idle: they split one NIC's bandwidth. ", idle > 1 ? "are" : "is");
    if (w->from_hca) {
        cb_topo_sb_add(&s, "Give --hca one NIC per rank, e.g. --hca ");
        for (int k = 0; k < w->nuse; k++)
            cb_topo_sb_add(&s, "%s%s", k ? "," : "", w->t->nics[w->usable[k]].name);
    } else {
        cb_topo_sb_add(&s, "The launcher bound these ranks near the same NIC: spread them over the sockets "
                    "(e.g. mpirun --map-by socket) or let collbench place them (--bind core)");
    }
}

static void warn_all(struct work *w)
{
    int *count = calloc((size_t)(w->t->nnic > 0 ? w->t->nnic : 1), sizeof *count);
    if (!count)
        return;
    for (int r = 0; r < w->n; r++)
        if (w->nic[r] >= 0)
            count[w->nic[r]]++;
    int idle = 0;
    for (int k = 0; k < w->nuse; k++)
        idle += count[w->usable[k]] == 0;
    for (int r = 0; r < w->n; r++) {
        if (w->plan->ranks[r].dist == CB_DIST_REMOTE)
            warn_remote(w, r);
        if (w->nic[r] >= 0 && count[w->nic[r]] > 1 && idle)
            warn_sharing(w, r, count);
    }
    free(count);
}

/* Whether NIC i carries a rank's traffic: some rank's NIC, or for a rank
 * alone striping over --hca (transport/hca.h), one of the candidates its
 * channels reach (channel c on candidate c mod count). */
static int nic_used(const struct work *w, int i)
{
    if (cb_hca_stripes(w->from_hca, w->n, w->ncand)) {
        int reach = w->req->channels > 1 ? w->req->channels : 1;
        for (int j = 0; j < w->ncand && j < reach; j++)
            if (w->cand[j] == i)
                return 1;
        return 0;
    }
    for (int r = 0; r < w->n; r++)
        if (w->nic[r] == i)
            return 1;
    return 0;
}

/* Usable NICs of the used ones' kind that no rank uses (rails_note). Not
 * checked when a rank's NIC is a name the topology does not know, or the
 * machine shows none: the transport, which sees the devices, checks then. */
static void note_unused(struct work *w)
{
    struct cb_port_desc d[MAX_USABLE];
    int used[MAX_USABLE];
    for (int r = 0; r < w->n; r++)
        if (w->nic[r] < 0)
            return;
    for (int j = 0; j < w->ncand && cb_hca_stripes(w->from_hca, w->n, w->ncand); j++)
        if (w->cand[j] < 0)
            return;
    usable_ports(w, d);
    for (int k = 0; k < w->nuse; k++)
        used[k] = nic_used(w, w->usable[k]);
    struct cb_rail_use u = {w->n, w->from_hca};
    w->plan->rails_checked = 1;
    cb_rails_unused(d, w->nuse, used, &u, w->plan->rails_note, sizeof w->plan->rails_note);
}

cb_status cb_topo_plan(const struct cb_topo *t, const struct cb_topo_request *req, struct cb_topo_plan *out)
{
    struct work w;
    memset(out, 0, sizeof *out);
    if (req->local_size < 1) {
        cb_log_error("cannot place %d local ranks: give at least 1", req->local_size);
        return CB_EUSAGE;
    }
    cb_status st = work_init(&w, t, req, out);
    if (st == CB_OK)
        st = parse_start(&w);
    if (st == CB_OK) {
        resolve_bind(&w);
        st = assign_nics(&w);
    }
    if (st == CB_OK) {
        assign_cpus(&w);
        fill_ranks(&w);
        warn_all(&w);
        note_unused(&w);
    }
    work_free(&w);
    if (st != CB_OK)
        cb_topo_plan_free(out);
    return st;
}

/* ---- output ---- */

void cb_topo_format_rank(const struct cb_topo_rank *r, char *buf, size_t len)
{
    if (r->nic[0])
        snprintf(buf, len, "cpus=%s numa=%s nic=%s:%d dist=%s", r->cpus, r->numa, r->nic, r->port,
                 cb_topo_dist_name(r->dist));
    else
        snprintf(buf, len, "cpus=%s numa=%s nic=none dist=-", r->cpus, r->numa);
}

void cb_topo_print_plan(const struct cb_topo_plan *p, const char *host, FILE *out)
{
    char line[CB_TOPO_CPUS_LEN + 128];
    fprintf(out, "# Placement of %d local rank(s): bind=%s (%s)\n", p->n, cb_bind_name(p->bind), p->why);
    for (int r = 0; r < p->n; r++) {
        cb_topo_format_rank(&p->ranks[r], line, sizeof line);
        fprintf(out, "#   local rank %d on %s: %s\n", r, host, line);
    }
    if (p->nic_note[0])
        fprintf(out, "#   NICs: %s\n", p->nic_note);
    if (p->rails_note[0])
        fprintf(out, "#   Idle: %s\n", p->rails_note);
}

void cb_topo_bind_self(const struct cb_topo *t, const struct cb_topo_plan *p, int lr)
{
    hwloc_bitmap_t *sets = p->sets;
    if (t->from_xml || lr < 0 || lr >= p->n || !p->ranks[lr].bound_here || !sets || !sets[lr])
        return;
    if (hwloc_set_cpubind(t->topo, sets[lr], HWLOC_CPUBIND_PROCESS) != 0)
        cb_log_warn("cannot bind local rank %d to cpus %s (%s): it runs where the launcher put it; check the "
                    "job's cpuset, or pass --bind none", lr, p->ranks[lr].cpus, strerror(errno));
}

int cb_topo_plan_nics(const struct cb_topo_plan *p)
{
    int n = 0;
    for (int r = 0; r < p->n; r++) {
        const struct cb_topo_rank *x = &p->ranks[r];
        int seen = !x->nic[0];
        for (int q = 0; q < r && !seen; q++)
            seen = !strcmp(p->ranks[q].nic, x->nic) && p->ranks[q].port == x->port;
        n += !seen;
    }
    return n;
}
