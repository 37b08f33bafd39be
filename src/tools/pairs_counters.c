/* Port error and congestion counters of every RDMA port, before and after
 * the pairwise link check, and the retransmission counters of the port the
 * transport uses, per round (pairs.h): read through core/wire.h, which every
 * run of a collective uses too, so both name and classify counters alike. */
#include "pairs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/wire.h"

const char *cb_port_counters_root(void)
{
    const char *env = getenv("COLLBENCH_IB_SYSFS");
    return env && *env ? env : "/sys/class/infiniband";
}

/* "dev:port" -> "dev/port/name"; the netdevs under a RoCE port (links
 * without ':') are left out: pairs samples each host's device itself. */
static int keep(const struct cb_wire_counter *w, struct cb_port_counter *c)
{
    const char *colon = strchr(w->link, ':');
    if (!colon)
        return 0;
    int k = snprintf(c->name, sizeof c->name, "%.*s/%s/%s", (int)(colon - w->link), w->link, colon + 1, w->name);
    if (k < 0 || (size_t)k >= sizeof c->name)   /* a long name is kept cut */
        c->name[sizeof c->name - 1] = 0;
    c->value = w->value;
    return 1;
}

void cb_port_counters_read(struct cb_port_counters *pc)
{
    struct cb_wire_scope every = {.rdma_dev = "*"};
    struct cb_wire_reading *r = malloc(sizeof *r);
    pc->n = 0;
    pc->truncated = 0;
    if (!r) {
        pc->truncated = 1;   /* nothing read: reported as truncated, never as "no change" */
        return;
    }
    cb_wire_read(&every, r);
    pc->truncated = r->truncated;
    for (int i = 0; i < r->n; i++) {
        if (pc->n == CB_PORT_COUNTERS_MAX) {
            pc->truncated = 1;
            break;
        }
        pc->n += keep(&r->c[i], &pc->c[pc->n]);
    }
    free(r);
}

void cb_port_counters_delta(const struct cb_port_counters *before, const struct cb_port_counters *after,
                            struct cb_port_deltas *d)
{
    memset(d, 0, sizeof *d);
    d->truncated = before->truncated || after->truncated;
    for (int i = 0; i < after->n; i++) {
        const struct cb_port_counter *a = &after->c[i];
        for (int j = 0; j < before->n; j++) {
            const struct cb_port_counter *b = &before->c[j];
            if (strcmp(a->name, b->name) != 0 || a->value == b->value)
                continue;
            if (d->n == CB_PORT_DELTAS_MAX) {
                d->truncated = 1;
                break;
            }
            snprintf(d->c[d->n].name, sizeof d->c[d->n].name, "%s", a->name);
            d->c[d->n++].value = a->value - b->value;   /* a reset counter wraps: still reported */
            break;
        }
    }
}

/* ---- RDMA retransmission counters per round ---- */

void cb_pairs_rdma_scope(const struct cb_props *props, struct cb_wire_scope *scope)
{
    cb_wire_scope_from_props(props, scope);
    scope->netdev[0] = 0;   /* carrier changes and TCP: netdev_counters.c */
    scope->tcp = 0;
}

/* Keeps one counter in d, adding it to an entry of the same rank, link and name. */
static void rdma_keep(struct cb_pairs_rdma *d, int rank, const char *link, const char *name, long long delta)
{
    for (int i = 0; i < d->n; i++)
        if (d->c[i].rank == rank && strcmp(d->c[i].link, link) == 0 && strcmp(d->c[i].name, name) == 0) {
            d->c[i].delta += delta;
            return;
        }
    if (d->n == CB_PAIRS_RDMA_MAX) {
        d->truncated = 1;
        return;
    }
    struct cb_pairs_rdma_counter *c = &d->c[d->n++];
    c->rank = rank;
    snprintf(c->link, sizeof c->link, "%.*s", (int)sizeof c->link - 1, link);
    snprintf(c->name, sizeof c->name, "%.*s", (int)sizeof c->name - 1, name);
    c->delta = delta;
}

void cb_pairs_rdma_delta(const struct cb_wire_reading *before, const struct cb_wire_reading *after,
                         struct cb_pairs_rdma *d)
{
    memset(d, 0, sizeof *d);
    d->total = -1;
    if (before->n == 0 || after->n == 0)
        return;
    d->total = 0;
    d->truncated = before->truncated || after->truncated;
    for (int i = 0; i < after->n; i++) {
        const struct cb_wire_counter *a = &after->c[i];
        if (!strchr(a->link, ':') || !cb_wire_is_retrans(a->name))
            continue;
        for (int j = 0; j < before->n; j++) {
            const struct cb_wire_counter *b = &before->c[j];
            if (strcmp(a->link, b->link) != 0 || strcmp(a->name, b->name) != 0)
                continue;
            if (a->value > b->value) {   /* a counter reset in between: not counted */
                d->total += (long long)(a->value - b->value);
                rdma_keep(d, 0, a->link, a->name, (long long)(a->value - b->value));
            }
            break;
        }
    }
}

void cb_pairs_rdma_add(struct cb_pairs_rdma *sum, const struct cb_pairs_rdma *add, int rank)
{
    if (add->total < 0)
        return;
    sum->total = (sum->total < 0 ? 0 : sum->total) + add->total;
    sum->truncated |= add->truncated;
    for (int i = 0; i < add->n; i++)
        rdma_keep(sum, rank, add->c[i].link, add->c[i].name, add->c[i].delta);
}

void cb_pairs_rdma_to_pair(int n, int rank, int partner, const struct cb_pairs_rdma *round,
                           struct cb_pairs_rdma *pairs)
{
    if (partner < 0 || partner == rank)
        return;
    cb_pairs_rdma_add(&pairs[rank * n + partner], round, rank);
    cb_pairs_rdma_add(&pairs[partner * n + rank], round, rank);
}
