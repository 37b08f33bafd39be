/* The verbs transport's context for a rank: the devices it drives. A
 * connection goes to the device its channel maps to (cb_hca_channel_device:
 * with one device, always that one); progress drives every device; window
 * memory is registered with each; the properties and port events of all
 * devices are merged into one list, so the header, the JSON and the wire
 * footer show every device the rank used. */
#include "verbs_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct vctx *channel_device(const struct vrank *r, const struct cb_peer *peer)
{
    return r->dev[cb_hca_channel_device(peer->channel, r->ndev)];
}

cb_status vr_listen(void *tctx, const struct cb_peer *peer, void *handle, void **lcomm)
{
    return vb_listen(channel_device(tctx, peer), peer, handle, lcomm);
}

cb_status vr_connect(void *tctx, const struct cb_peer *peer, const void *handle, void **sconn)
{
    return vb_connect(channel_device(tctx, peer), peer, handle, sconn);
}

cb_status vr_reply(void *tctx, const struct cb_peer *peer, const void *handle, void *reply)
{
    return vb_reply(channel_device(tctx, peer), peer, handle, reply);
}

cb_status vr_progress(void *tctx)
{
    struct vrank *r = tctx;
    for (int k = 0; k < r->ndev; k++) {
        cb_status st = vb_progress(r->dev[k]);
        if (st)
            return st;
    }
    return CB_OK;
}

/* Mapped by the first device, registered with every other: a buffer can
 * be lent to or offered on any channel. */
void *vr_alloc_shared(void *tctx, size_t bytes)
{
    struct vrank *r = tctx;
    void *p = vb_alloc_shared(r->dev[0], bytes);
    for (int k = 1; p && k < r->ndev; k++)
        vb_window_register(r->dev[k], p, bytes);
    return p;
}

/* The last device first: the first one unmaps the memory. */
void vr_free_shared(void *tctx, void *p)
{
    struct vrank *r = tctx;
    for (int k = r->ndev - 1; k >= 0; k--)
        vb_free_shared(r->dev[k], p);
}

/* Stable, by time: events of different devices interleave as they happened. */
static void sort_events(struct cb_port_event *ev, int n)
{
    for (int i = 1; i < n; i++) {
        struct cb_port_event e = ev[i];
        int j = i;
        for (; j > 0 && ev[j - 1].unix_ms > e.unix_ms; j--)
            ev[j] = ev[j - 1];
        ev[j] = e;
    }
}

int vr_port_events(void *tctx, int from, struct cb_port_event *ev, int max)
{
    struct vrank *r = tctx;
    if (r->ndev == 1)
        return vb_port_events(r->dev[0], from, ev, max);
    struct cb_port_event *all = calloc((size_t)r->ndev * VB_PORT_EVENTS_MAX, sizeof *all);
    int total = 0, n = 0;
    for (int k = 0; k < r->ndev; k++) {
        int seen = vb_port_events(r->dev[k], 0, all ? all + n : NULL, all ? VB_PORT_EVENTS_MAX : 0);
        total += seen;
        n += all ? (seen < VB_PORT_EVENTS_MAX ? seen : VB_PORT_EVENTS_MAX) : 0;
    }
    sort_events(all, n);
    for (int i = from, k = 0; i >= 0 && i < n && k < max; i++, k++)
        ev[k] = all[i];
    free(all);
    return total;
}

/* Key `key`'s value on every device: one value where all agree, else
 * "v0,v1,..." in device order ("-" where a device has none). */
static void merge_key(const struct cb_props *each, int ndev, const char *key, struct cb_props *out)
{
    char joined[1024] = "";
    const char *vals[CB_HCA_MAX] = {"-"};
    int same = 1;
    for (int k = 0; k < ndev; k++) {
        vals[k] = "-";
        for (int i = 0; i < each[k].n; i++)
            if (!strcmp(each[k].kv[i].key, key))
                vals[k] = each[k].kv[i].val;
        same &= !strcmp(vals[k], vals[0]);
    }
    size_t off = 0;
    for (int k = 0; k < (same ? 1 : ndev) && off < sizeof joined; k++)
        off += (size_t)snprintf(joined + off, sizeof joined - off, "%s%s", k ? "," : "", vals[k]);
    cb_props_add(out, key, "%s", joined);
}

static int has_key(const struct cb_props *p, const char *key)
{
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->kv[i].key, key))
            return 1;
    return 0;
}

void vr_properties(void *tctx, struct cb_props *props)
{
    struct vrank *r = tctx;
    struct cb_props *each = r->ndev > 1 ? calloc((size_t)r->ndev, sizeof *each) : NULL;
    if (!each) {
        vb_properties(r->dev[0], props);
        return;
    }
    for (int k = 0; k < r->ndev; k++)
        vb_properties(r->dev[k], &each[k]);
    props->n = 0;
    for (int k = 0; k < r->ndev; k++)
        for (int i = 0; i < each[k].n; i++)
            if (!has_key(props, each[k].kv[i].key))
                merge_key(each, r->ndev, each[k].kv[i].key, props);
    cb_props_add(props, "hca_stripe", "channel c on device c mod %d (one rank on this host, --hca %s)", r->ndev,
                 r->dev[0]->cfg.hca);
    free(each);
}
