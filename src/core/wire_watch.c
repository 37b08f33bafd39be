/* A rank's watch over its links (core/wire.h): the wire counters of what
 * the transport uses, read at start and again on demand, and the port
 * events the transport saw in between. */
#include "core/comm.h"
#include "core/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cb_wire_watch {
    struct cb_wire_scope scope;
    int events_before;
    struct cb_wire_reading before, now;
};

/* The wire is the network's: with a transport per peer (--transport auto,
 * shm inside a host), net_ops; else the one transport. */
static const struct cb_transport_ops *wire_transport(struct cb_comm *c, void **tctx)
{
    *tctx = c->net_ops ? c->net_tctx : c->tctx;
    return c->net_ops ? c->net_ops : c->ops;
}

static int port_events(struct cb_comm *c, int from, struct cb_port_event *ev, int max)
{
    void *tctx;
    return wire_transport(c, &tctx)->port_events(tctx, from, ev, max);
}

struct cb_wire_watch *cb_wire_watch_start(struct cb_comm *c, int every_rdma_device)
{
    struct cb_wire_watch *w = calloc(1, sizeof *w);
    struct cb_props props = {0};
    if (!w)
        return NULL;
    void *tctx;
    wire_transport(c, &tctx)->properties(tctx, &props);
    cb_wire_scope_from_props(&props, &w->scope);
    if (every_rdma_device) {
        snprintf(w->scope.rdma_dev, sizeof w->scope.rdma_dev, "*");
        w->scope.rdma_port = 0;
    }
    w->events_before = port_events(c, 0, NULL, 0);
    cb_wire_read(&w->scope, &w->before);
    return w;
}

void cb_wire_watch_moved(struct cb_wire_watch *w, struct cb_comm *c, struct cb_wire_moved *m)
{
    memset(m, 0, sizeof *m);
    snprintf(m->host, sizeof m->host, "%s", c->peers[c->rank].host);
    if (!w)
        return;
    cb_wire_read(&w->scope, &w->now);
    cb_wire_delta(&w->before, &w->now, m);
    int all = port_events(c, w->events_before, m->ev, CB_WIRE_EVENTS_MAX);
    m->nevents = all > w->events_before ? all - w->events_before : 0;
}

void cb_wire_watch_free(struct cb_wire_watch *w)
{
    free(w);
}
