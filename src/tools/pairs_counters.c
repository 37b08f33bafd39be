/* Port error and congestion counters of every RDMA port, before and after
 * the pairwise link check (pairs.h): read through core/wire.h, which every
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
