/* A host's link health as the kernel counts it, for checks that sample it
 * before and after each stage: the carrier changes of one network device
 * (a flap is two: down and up) and the TCP segments sent and retransmitted
 * by this network namespace. Each rank reads its own (one netns per host
 * in the test rigs). RDMA port counters are in pairs_counters.c.
 *
 * A retransmission the receiver reports back as a duplicate (D-SACK,
 * TcpExt TCPDSACKRecvSegs) was not needed: the original arrived, late. A
 * loaded host's spurious timeouts cause those; a lossy link does not. So a
 * lossy verdict counts only the needed ones (cb_netdev_lost).
 *
 * Read through core/wire.h (its overrides for tests apply). */
#ifndef CB_NETDEV_COUNTERS_H
#define CB_NETDEV_COUNTERS_H

struct cb_netdev_sample {
    double when;                 /* wall clock (CLOCK_REALTIME), s: to say when a change happened */
    long long carrier_changes;   /* -1: unknown (no device named, or no such file) */
    long long tcp_out_segs;      /* -1: unknown */
    long long tcp_retrans_segs;  /* -1: unknown */
    long long tcp_dsack_segs;    /* retransmissions D-SACKed as duplicates; -1: unknown */
};

/* Read now. `ifname` may be NULL or "" (no device: carrier unknown). */
void cb_netdev_sample(const char *ifname, struct cb_netdev_sample *s);

/* after - before of one counter, or -1 when either is unknown; a counter that
 * went backwards (reset) counts from 0. */
long long cb_netdev_delta(long long before, long long after);

/* Retransmissions between two samples that were needed (retransmitted minus
 * D-SACKed, at least 0); all of them when the D-SACK count is unknown; -1
 * when the retransmissions are. */
long long cb_netdev_lost(const struct cb_netdev_sample *before, const struct cb_netdev_sample *after);

/* "HH:MM:SS" UTC of a sample's time, into buf (at least 9 bytes). */
void cb_netdev_clock(double when, char *buf, unsigned len);

#endif
