/* What a transport without a zero-copy path gives for those operations. */
#include "transport.h"

#include <stdlib.h>

void *cb_transport_plain_alloc(void *tctx, size_t bytes)
{
    void *p = NULL;
    (void)tctx;
    return posix_memalign(&p, 4096, bytes) == 0 ? p : NULL;
}

void cb_transport_plain_free(void *tctx, void *p)
{
    (void)tctx;
    free(p);
}

cb_status cb_transport_no_offer(void *rconn, size_t ahead, void *dst, size_t nbytes, int *accepted)
{
    (void)rconn, (void)ahead, (void)dst, (void)nbytes;
    *accepted = 0;
    return CB_OK;
}

cb_status cb_transport_no_lend(void *sconn, const void *src, size_t nbytes, int *posted)
{
    (void)sconn, (void)src, (void)nbytes;
    *posted = 0;
    return CB_OK;
}

int cb_transport_always_usable(const struct cb_transport_config *cfg)
{
    (void)cfg;
    return 1;
}

int cb_transport_no_port_events(void *tctx, int from, struct cb_port_event *ev, int max)
{
    (void)tctx, (void)from, (void)ev, (void)max;
    return 0;
}

cb_status cb_transport_no_reply(void *tctx, const struct cb_peer *peer, const void *handle, void *reply)
{
    (void)tctx, (void)peer, (void)handle, (void)reply;
    return CB_OK;
}

cb_status cb_transport_no_take_reply(void *lcomm, const void *reply)
{
    (void)lcomm, (void)reply;
    return CB_OK;
}

size_t cb_transport_no_buffers(void *conn)
{
    (void)conn;
    return 0;
}

cb_status cb_transport_no_expect(void *rconn, size_t nmsgs)
{
    (void)rconn, (void)nmsgs;
    return CB_OK;
}

size_t cb_transport_no_shared_buffers(void *tctx)
{
    (void)tctx;
    return 0;
}

size_t cb_transport_no_shared_geometry(const struct cb_transport_config *cfg, int slots)
{
    (void)cfg, (void)slots;
    return 0;
}

cb_status cb_transport_no_reserve(void *tctx, int slots)
{
    (void)tctx, (void)slots;
    return CB_OK;
}
