/* The topology in a run: every rank places the ranks of its machine the same
 * way, binds itself and tells the verbs transport which NIC to open. */
#include "topo_impl.h"
#include "core/bootstrap.h"
#include "transport/hca.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The CPUs this process started on, as a list ("" = unknown or too long: taken as all). */
static void my_start_cpus(const struct cb_topo *t, char *buf, size_t len)
{
    memset(buf, 0, len);
    if (!t || t->from_xml)
        return;
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (set && hwloc_get_cpubind(t->topo, set, HWLOC_CPUBIND_PROCESS) == 0 &&
        hwloc_bitmap_list_snprintf(buf, len, set) >= (int)len)
        memset(buf, 0, len);
    hwloc_bitmap_free(set);
}

/* What each rank tells the others before placement: where it started, and
 * the NICs its host's ranks will be placed over (to compare hosts). */
struct rank_start {
    char cpus[CB_TOPO_CPUS_LEN];
    int32_t nrails;                       /* 0 = unknown */
    char rail_names[CB_TOPO_RAILS_LEN];
};

struct local_cpus {
    struct rank_start *all;   /* [nranks] */
    const char **list;        /* [nlocal] into all, in rank order */
    int nlocal, me;
};

/* Every rank's start; keep the CPUs of this machine's ranks. */
static cb_status gather_local(struct cb_boot *b, const struct cb_transport_config *cfg,
                              const struct rank_start *mine, struct local_cpus *lc)
{
    int n = cb_boot_size(b);
    lc->all = calloc((size_t)n, sizeof *lc->all);
    lc->list = calloc((size_t)n, sizeof *lc->list);
    if (!lc->all || !lc->list) {
        cb_log_error("out of memory gathering the CPU sets of %d ranks", n);
        return CB_ENOMEM;
    }
    cb_status st = cb_boot_allgather(b, mine, lc->all, sizeof *mine, cfg->timeout_ms,
                                     "exchanging the ranks' CPU sets and NIC counts for placement");
    for (int r = 0; st == CB_OK && r < n; r++) {
        lc->all[r].cpus[CB_TOPO_CPUS_LEN - 1] = 0;
        lc->all[r].rail_names[CB_TOPO_RAILS_LEN - 1] = 0;
        if (r != cfg->rank && !cb_boot_same_machine(b, cfg->rank, r))
            continue;
        if (r == cfg->rank)
            lc->me = lc->nlocal;
        lc->list[lc->nlocal++] = lc->all[r].cpus;
    }
    return st;
}

/* The NICs this host's ranks will be placed over, before the exchange
 * (placement needs the others' CPUs; the count does not): a one-rank plan.
 * Its error (a bad --hca, logged) is the real plan's, so that one is skipped. */
static cb_status count_rails(const struct cb_topo *t, const struct cb_transport_config *cfg,
                             struct rank_start *mine)
{
    struct cb_topo_request req = {1, CB_BIND_NONE, cfg->hca, NULL, cfg->channels};
    struct cb_topo_plan plan;
    cb_status st = cb_topo_plan(t, &req, &plan);
    if (st != CB_OK)
        return st;
    mine->nrails = plan.nrails;
    snprintf(mine->rail_names, sizeof mine->rail_names, "%s", plan.rail_names);
    cb_topo_plan_free(&plan);
    return CB_OK;
}

/* Hosts placed over different NIC counts: the job's word (cfg->hosts_note,
 * said by the verbs transport's rank 0) and, for a rank of an odd host, its
 * header's `rails`. One entry per host: O(ranks log ranks), on every rank. */
static cb_status compare_hosts(struct cb_boot *b, struct cb_transport_config *cfg, const struct local_cpus *lc,
                               struct cb_topo_rank *mine)
{
    int n = cb_boot_size(b), nhosts = 0, common = 0;
    int *host = calloc((size_t)n, sizeof *host);
    struct cb_host_nics *h = calloc((size_t)n, sizeof *h);
    cb_status st = host && h ? cb_boot_hosts(b, host, &nhosts) : CB_ENOMEM;
    if (st == CB_ENOMEM && (!host || !h))
        cb_log_error("out of memory comparing the NICs of %d ranks' hosts", n);
    for (int r = 0; st == CB_OK && r < n; r++)
        if (!h[host[r]].host)
            h[host[r]] = (struct cb_host_nics){cb_boot_host(b, r), lc->all[r].nrails, lc->all[r].rail_names};
    if (st == CB_OK &&
        cb_hosts_nic_counts(h, nhosts, cfg->hca[0] != 0, &common, cfg->hosts_note, sizeof cfg->hosts_note)) {
        const struct rank_start *me = &lc->all[cfg->rank];
        if (me->nrails > 0 && me->nrails != common)
            snprintf(mine->rails_odd, sizeof mine->rails_odd, "%d (%s), most hosts %d", (int)me->nrails,
                     me->rail_names, common);
    }
    free(host);
    free(h);
    return st;
}

/* More ranks on this host than --hca gives NICs: they share NICs (and
 * their bandwidth). Said once per host; the transport need not say it
 * again. Where the topology does not know a listed name (a prefix, a NIC
 * hwloc does not show), the transport, which sees the devices, says it. */
static void warn_shared_nics(struct cb_transport_config *cfg, const struct cb_topo_plan *plan, int me)
{
    int known = cfg->hca[0] != 0;
    for (int r = 0; r < plan->n; r++)
        known &= plan->ranks[r].nic_known;
    if (!known)
        return;
    cfg->hca_checked = 1;
    int nics = cb_topo_plan_nics(plan);
    if (me == 0 && nics < plan->n)
        cb_log_warn("%s: %d ranks share the %d NIC%s --hca '%s' gives: ranks on one NIC split its bandwidth; "
                    "list more NICs or start fewer ranks per host", cfg->host, plan->n, nics, nics == 1 ? "" : "s",
                    cfg->hca);
}

static cb_status place_me(const struct cb_topo *t, int bind, struct cb_transport_config *cfg,
                          const struct local_cpus *lc, struct cb_topo_rank *mine)
{
    struct cb_topo_request req = {lc->nlocal, bind, cfg->hca, t->from_xml ? NULL : lc->list, cfg->channels};
    struct cb_topo_plan plan;
    cb_status st = cb_topo_plan(t, &req, &plan);
    if (st != CB_OK)
        return st;
    *mine = plan.ranks[lc->me];
    cb_topo_bind_self(t, &plan, lc->me);
    for (int i = 0; i < mine->nwarn; i++)
        cb_log_warn("rank %d (local rank %d) on %s: %s", cfg->rank, lc->me, cfg->host, mine->warn[i]);
    /* the NIC placed here, exactly (what --hca selected, or the automatic
     * choice); a name the topology does not know stays as given, for the
     * transport to find among the devices (a prefix, or refused); a rank
     * alone on its host keeps its --hca list, to stripe over it when it
     * gives several ports (transport/hca.h) */
    int keeps_list = cfg->hca[0] && lc->nlocal <= 1;
    warn_shared_nics(cfg, &plan, lc->me);
    int narrowed = !t->from_xml && mine->nic_known && !keeps_list;
    if (narrowed)
        snprintf(cfg->hca, sizeof cfg->hca, "=%s:%d", mine->nic, mine->port);
    /* the host's idle NICs, for the verbs transport to say (only it knows
     * whether RDMA carries the job); once the list is narrowed to this
     * rank's NIC, the transport cannot see the host's map: not its check */
    cfg->rails_checked = narrowed || (!t->from_xml && plan.rails_checked);
    snprintf(cfg->rails_note, sizeof cfg->rails_note, "%s", t->from_xml ? "" : plan.rails_note);
    snprintf(mine->nic_note, sizeof mine->nic_note, "%s", plan.nic_note);
    if (plan.nic_note[0] && lc->me == 0)
        cb_log_warn("%s: %s (name them with --hca to use them)", cfg->host, plan.nic_note);
    cb_topo_plan_free(&plan);
    return CB_OK;
}

cb_status cb_topo_setup(struct cb_boot *b, const char *xml_path, int bind, struct cb_transport_config *cfg,
                        struct cb_topo_rank *mine)
{
    struct cb_topo *t = NULL;
    struct local_cpus lc = {0};
    struct rank_start start = {.nrails = 0};
    memset(mine, 0, sizeof *mine);
    mine->dist = CB_DIST_UNKNOWN;
    cb_status loaded = cb_topo_load(xml_path, &t);
    my_start_cpus(t, start.cpus, sizeof start.cpus);
    if (loaded == CB_OK)
        loaded = count_rails(t, cfg, &start);
    cb_status st = gather_local(b, cfg, &start, &lc);   /* every rank takes part, loaded or not */
    if (st == CB_OK && loaded == CB_OK)
        st = place_me(t, bind, cfg, &lc, mine);
    if (st == CB_OK)   /* after place_me, which sets *mine */
        st = compare_hosts(b, cfg, &lc, mine);
    else if (st == CB_OK && !(loaded == CB_EDEVICE && !xml_path))
        st = loaded;
    else if (st == CB_OK)
        cb_log_warn("rank %d on %s: no topology, so no placement: the rank runs where the launcher put it "
                    "and the transport picks its own NIC", cfg->rank, cfg->host);
    free(lc.all);
    free(lc.list);
    cb_topo_free(t);
    return st;
}

void cb_topo_describe(const struct cb_topo_rank *mine, struct cb_props *props)
{
    char nic[48], all[CB_TOPO_CPUS_LEN + 128];
    if (!mine->cpus[0] || props->n >= CB_PROPS_MAX)
        return;   /* no placement, or no room */
    if (props->n + 4 > CB_PROPS_MAX) {
        cb_topo_format_rank(mine, all, sizeof all);
        cb_props_add(props, "topo", "%s", all);
        return;
    }
    if (mine->nic[0])
        snprintf(nic, sizeof nic, "%s:%d", mine->nic, mine->port);
    else
        snprintf(nic, sizeof nic, "none");
    cb_props_add(props, "cpus", "%s", mine->cpus);
    cb_props_add(props, "numa", "%s", mine->numa);
    cb_props_add(props, "nic", "%s", nic);
    cb_props_add(props, "nic_dist", "%s", mine->nic[0] ? cb_topo_dist_name(mine->dist) : "-");
    if (mine->nic_note[0])
        cb_props_add(props, "nic_note", "%s", mine->nic_note);
    if (mine->rails_odd[0])
        cb_props_add(props, "rails", "%s", mine->rails_odd);
}
