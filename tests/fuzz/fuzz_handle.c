/* libFuzzer harness: the verbs connection handle and reply, which arrive
 * from a peer through the bootstrap (CB_HANDLE_BYTES of anything). Decoding
 * ends in CB_OK or CB_EUSAGE; what it accepts is within the bounds the
 * connection code relies on, and survives a round trip: encoding it and
 * decoding that gives the same fields back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "transport/verbs_internal.h"

static void check_handle(const unsigned char *buf, const struct cb_peer *peer)
{
    struct vb_hinfo h, again;
    unsigned char copy[CB_HANDLE_BYTES];
    cb_status st = vb_handle_decode(buf, peer, &h);
    if (st != CB_OK && st != CB_EUSAGE)
        abort();
    if (st != CB_OK)
        return;
    if ((h.family != AF_INET && h.family != AF_INET6) || h.qps.nqps < 0 || h.qps.nqps > VB_MAX_QPS ||
        (h.qps.connect_mode != VB_CONNECT_CM && h.qps.connect_mode != VB_CONNECT_OOB) || h.mtu < IBV_MTU_256 ||
        h.mtu > h.active_mtu || h.active_mtu > IBV_MTU_4096 || strlen(h.host) >= sizeof h.host ||
        strlen(h.qps.dev) >= sizeof h.qps.dev)
        abort();
    vb_handle_encode(&h, copy);
    if (vb_handle_decode(copy, peer, &again) != CB_OK || memcmp(&h, &again, sizeof h) != 0)
        abort();
}

static void check_reply(const unsigned char *buf, const struct cb_peer *peer)
{
    struct vb_rinfo r, again;
    unsigned char copy[CB_HANDLE_BYTES];
    cb_status st = vb_reply_decode(buf, peer, &r);
    if (st != CB_OK && st != CB_EUSAGE)
        abort();
    if (st != CB_OK)
        return;
    if (r.qps.nqps < 0 || r.qps.nqps > VB_MAX_QPS || strlen(r.qps.dev) >= sizeof r.qps.dev ||
        (r.qps.connect_mode != VB_CONNECT_CM && r.qps.connect_mode != VB_CONNECT_OOB))
        abort();
    vb_reply_encode(&r, copy);
    if (vb_reply_decode(copy, peer, &again) != CB_OK || memcmp(&r, &again, sizeof r) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char buf[CB_HANDLE_BYTES] = {0};
    struct cb_peer peer = {.rank = 1, .host = "fuzz"};
    memcpy(buf, data, size < sizeof buf ? size : sizeof buf);
    check_handle(buf, &peer);
    check_reply(buf, &peer);
    return 0;
}
