/* The order of the ranks around each channel's ring.
 *
 * With k > 1 ranks on each of h > 1 hosts (memory domains), each rank
 * using the NIC nearest to it, a ring in rank order crosses from the last
 * local rank of one host to the first of the next: NIC k-1 to NIC 0, a
 * different rail, through the spine of a rail-optimised fabric. Here every
 * host is walked in turn, forwards on even hosts and backwards on odd ones,
 * so each crossing joins the same local rank on both hosts: the same rail
 * (with an odd h, the crossing from the last host back to the first does
 * not). Channel c starts each host at local rank c mod k, so the channels
 * spread over the rails. Any other layout (one host, one rank per host,
 * hosts with different rank counts) keeps rank order. */
#ifndef CB_RING_ORDER_H
#define CB_RING_ORDER_H

/* host_of[r]: the host of rank r (equal values: the same host). order gets
 * nchannels * nranks entries: channel ch's ring is order[ch * nranks + pos],
 * pos = 0..nranks-1. Returns 1 when the order is rail-local, 0 when it is
 * rank order. */
int cb_ring_order(int nranks, int nchannels, const int *host_of, int *order);

#endif
