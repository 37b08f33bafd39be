/* The verbs transport's connection handle (what the bootstrap carries from
 * the listening rank to the connecting one) and what the two ends agree on
 * from it: the path MTU is the smaller of both ends' (a sender using its own
 * larger MTU sends packets the receiver's port rejects or a switch drops),
 * an InfiniBand port cannot talk to an Ethernet one, and ports of different
 * rates work but are worth a warning. Pure functions: unit-tested without a
 * device (tests/unit/test_verbs_fabric.c). */
#include "verbs_internal.h"

#include <endian.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

const char *vb_link_layer_str(int ll)
{
    switch (ll) {
    case IBV_LINK_LAYER_INFINIBAND: return "InfiniBand";
    case IBV_LINK_LAYER_ETHERNET: return "Ethernet";
    default: return "unknown";
    }
}

static void qps_encode(const struct vb_qps *q, struct vqps *w)
{
    w->connect_mode = (uint8_t)q->connect_mode;
    w->gid_index = (uint8_t)q->gid_index;
    w->nqps = htobe16((uint16_t)q->nqps);
    w->lid = htobe16(q->lid);
    memcpy(w->gid, q->gid, sizeof w->gid);
    w->psn = htobe32(q->psn);
    for (int k = 0; k < q->nqps && k < VB_MAX_QPS; k++)
        w->qpn[k] = htobe32(q->qpn[k]);
    snprintf(w->dev, sizeof w->dev, "%s", q->dev);
}

/* The block of a handle or reply from `peer` (`what`); CB_EUSAGE (logged)
 * for a mode that is not cm or oob, or more QPs than a handle holds. */
static cb_status qps_decode(const struct vqps *w, const struct cb_peer *peer, const char *what, struct vb_qps *q)
{
    q->connect_mode = w->connect_mode;
    q->nqps = be16toh(w->nqps);
    if ((q->connect_mode != VB_CONNECT_CM && q->connect_mode != VB_CONNECT_OOB) || q->nqps > VB_MAX_QPS) {
        cb_log_error("verbs: the %s from rank %d (%s) has connect mode %d and %d QPs (at most %d): not a valid %s",
                     what, peer->rank, peer->host, q->connect_mode, q->nqps, VB_MAX_QPS, what);
        return CB_EUSAGE;
    }
    q->gid_index = w->gid_index;
    q->lid = be16toh(w->lid);
    memcpy(q->gid, w->gid, sizeof q->gid);
    q->psn = be32toh(w->psn);
    for (int k = 0; k < q->nqps; k++)
        q->qpn[k] = be32toh(w->qpn[k]);
    snprintf(q->dev, sizeof q->dev, "%.*s", (int)sizeof w->dev - 1, w->dev);
    return CB_OK;
}

void vb_handle_encode(const struct vb_hinfo *i, void *handle)
{
    struct vhandle h;
    memset(&h, 0, sizeof h);
    h.magic = htobe32(VH_MAGIC);
    h.version = htobe16(VH_VERSION);
    h.family = htobe16((uint16_t)i->family);
    h.nonce = htobe32(i->nonce);
    h.rank = (int32_t)htobe32((uint32_t)i->rank);
    h.port = i->port_be;
    h.nslots = htobe32(i->nslots);
    h.slot_bytes = htobe64(i->slot_bytes);
    memcpy(h.addr, i->addr, sizeof h.addr);
    h.scope_id = htobe32(i->scope_id);
    h.mtu = (uint8_t)i->mtu;
    h.active_mtu = (uint8_t)i->active_mtu;
    h.link_layer = (uint8_t)i->link_layer;
    h.mtu_asked = (uint8_t)(i->mtu_asked != 0);
    h.rate_mbps = htobe32(i->rate_mbps);
    h.split_data = (uint8_t)(i->split_data != 0);
    h.pooled = (uint8_t)(i->pooled != 0);
    snprintf(h.host, sizeof h.host, "%s", i->host);
    qps_encode(&i->qps, &h.qps);
    memset(handle, 0, CB_HANDLE_BYTES);
    memcpy(handle, &h, sizeof h);
}

static int mtu_valid(unsigned m)
{
    return m >= IBV_MTU_256 && m <= IBV_MTU_4096;
}

cb_status vb_handle_decode(const void *handle, const struct cb_peer *peer, struct vb_hinfo *i)
{
    struct vhandle h;
    memcpy(&h, handle, sizeof h);
    memset(i, 0, sizeof *i);
    if (be32toh(h.magic) != VH_MAGIC || be16toh(h.version) != VH_VERSION) {
        cb_log_error("verbs: the connection handle from rank %d (%s) is not a verbs handle of this version "
                     "(%u, this build %u): do all ranks use --transport verbs and the same collbench build?",
                     peer->rank, peer->host, be32toh(h.magic) == VH_MAGIC ? be16toh(h.version) : 0, VH_VERSION);
        return CB_EUSAGE;
    }
    i->family = be16toh(h.family);
    if (i->family != AF_INET && i->family != AF_INET6) {
        cb_log_error("verbs: the handle from rank %d (%s) has address family %d", peer->rank, peer->host, i->family);
        return CB_EUSAGE;
    }
    if (qps_decode(&h.qps, peer, "handle", &i->qps) != CB_OK)
        return CB_EUSAGE;
    if (!mtu_valid(h.mtu) || !mtu_valid(h.active_mtu) || h.mtu > h.active_mtu) {
        cb_log_error("verbs: the handle from rank %d (%s) has MTU codes %u / %u (active): not an RDMA MTU",
                     peer->rank, peer->host, h.mtu, h.active_mtu);
        return CB_EUSAGE;
    }
    i->nonce = be32toh(h.nonce);
    i->rank = (int)be32toh((uint32_t)h.rank);
    i->port_be = h.port;
    i->nslots = be32toh(h.nslots);
    i->slot_bytes = be64toh(h.slot_bytes);
    memcpy(i->addr, h.addr, sizeof i->addr);
    i->scope_id = be32toh(h.scope_id);
    i->mtu = (enum ibv_mtu)h.mtu;
    i->active_mtu = (enum ibv_mtu)h.active_mtu;
    i->link_layer = h.link_layer;
    i->mtu_asked = h.mtu_asked != 0;
    i->rate_mbps = be32toh(h.rate_mbps);
    i->split_data = h.split_data != 0;
    i->pooled = h.pooled != 0;
    snprintf(i->host, sizeof i->host, "%.*s", (int)sizeof h.host - 1, h.host);
    return CB_OK;
}

const char *vb_connect_mode_str(int mode)
{
    return mode == VB_CONNECT_OOB ? "oob" : mode == VB_CONNECT_CM ? "cm" : "unknown";
}

void vb_reply_encode(const struct vb_rinfo *i, void *reply)
{
    struct vreply r;
    memset(&r, 0, sizeof r);
    r.magic = htobe32(VRPL_MAGIC);
    r.version = htobe16(VH_VERSION);
    r.ok = (uint8_t)(i->ok != 0);
    r.rank = (int32_t)htobe32((uint32_t)i->rank);
    r.nonce = htobe32(i->nonce);
    memcpy(r.token, i->token, sizeof r.token);
    r.path_mtu = (uint8_t)i->path_mtu;
    r.link_layer = (uint8_t)i->link_layer;
    r.cts_rkey = htobe32(i->cts_rkey);
    r.cts_addr = htobe64(i->cts_addr);
    qps_encode(&i->qps, &r.qps);
    memset(reply, 0, CB_HANDLE_BYTES);
    memcpy(reply, &r, sizeof r);
}

cb_status vb_reply_decode(const void *reply, const struct cb_peer *peer, struct vb_rinfo *i)
{
    struct vreply r;
    memcpy(&r, reply, sizeof r);
    memset(i, 0, sizeof *i);
    if (be32toh(r.magic) != VRPL_MAGIC || be16toh(r.version) != VH_VERSION) {
        cb_log_error("verbs: the connection reply from rank %d (%s) is not a verbs reply of this version (%u, "
                     "this build %u): do all ranks use --transport verbs and the same collbench build?",
                     peer->rank, peer->host, be32toh(r.magic) == VRPL_MAGIC ? be16toh(r.version) : 0, VH_VERSION);
        return CB_EUSAGE;
    }
    if (qps_decode(&r.qps, peer, "reply", &i->qps) != CB_OK)
        return CB_EUSAGE;
    i->ok = r.ok != 0;
    i->rank = (int)be32toh((uint32_t)r.rank);
    i->nonce = be32toh(r.nonce);
    memcpy(i->token, r.token, sizeof i->token);
    i->path_mtu = (enum ibv_mtu)r.path_mtu;
    i->link_layer = r.link_layer;
    i->cts_rkey = be32toh(r.cts_rkey);
    i->cts_addr = be64toh(r.cts_addr);
    return CB_OK;
}

/* "--mtu X is above rank R's active MTU": the end that asked, the end that cannot. */
static cb_status mtu_refused(const struct vb_end *asked, const struct vb_end *other)
{
    int want = vb_mtu_bytes(asked->mtu), act = vb_mtu_bytes(other->active_mtu);
    cb_log_error("verbs: rank %d (%s, %s) was given --mtu %d but rank %d (%s, %s) can take at most %d (its "
                 "port's active MTU): use --mtu %d or less, or leave --mtu out (both ends then use the smaller "
                 "active MTU)", asked->rank, asked->host, asked->dev, want, other->rank, other->host, other->dev,
                 act, act);
    return CB_EUSAGE;
}

cb_status vb_agree_mtu(const struct vb_end *mine, const struct vb_end *peer, enum ibv_mtu *out, char *warn,
                       size_t wlen)
{
    if (warn && wlen)
        warn[0] = '\0';
    if ((mine->link_layer == IBV_LINK_LAYER_INFINIBAND || peer->link_layer == IBV_LINK_LAYER_INFINIBAND) &&
        mine->link_layer != peer->link_layer) {
        cb_log_error("verbs: rank %d (%s, device %s) has an %s port and rank %d (%s, device %s) an %s port: "
                     "RDMA cannot connect them; choose ports of one fabric on every host with --hca",
                     mine->rank, mine->host, mine->dev, vb_link_layer_str(mine->link_layer), peer->rank, peer->host,
                     peer->dev, vb_link_layer_str(peer->link_layer));
        return CB_EDEVICE;
    }
    enum ibv_mtu m = mine->mtu < peer->mtu ? mine->mtu : peer->mtu;
    if (mine->mtu_asked && m < mine->mtu)
        return mtu_refused(mine, peer);
    if (peer->mtu_asked && m < peer->mtu)
        return mtu_refused(peer, mine);
    *out = m;
    if (warn && wlen && mine->rate_mbps && peer->rate_mbps && mine->rate_mbps != peer->rate_mbps)
        snprintf(warn, wlen, "rank %d %s:%s %g Gb/s, here %g Gb/s", peer->rank, peer->host, peer->dev,
                 peer->rate_mbps / 1000.0, mine->rate_mbps / 1000.0);
    return CB_OK;
}
