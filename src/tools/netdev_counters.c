/* Carrier changes of a network device and this namespace's TCP segment
 * counters (netdev_counters.h). */
#include "tools/netdev_counters.h"
#include "core/wire.h"

#include <stdio.h>
#include <time.h>

void cb_netdev_sample(const char *ifname, struct cb_netdev_sample *s)
{
    struct timespec ts;
    struct cb_wire_tcp tcp;
    clock_gettime(CLOCK_REALTIME, &ts);
    s->when = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
    s->carrier_changes = cb_wire_carrier_changes(ifname);
    cb_wire_tcp_read(&tcp);
    s->tcp_out_segs = tcp.out_segs;
    s->tcp_retrans_segs = tcp.retrans_segs;
    s->tcp_dsack_segs = tcp.dsack_segs;
}

long long cb_netdev_delta(long long before, long long after)
{
    if (before < 0 || after < 0)
        return -1;
    return after >= before ? after - before : after;
}

long long cb_netdev_lost(const struct cb_netdev_sample *a, const struct cb_netdev_sample *b)
{
    long long retrans = cb_netdev_delta(a->tcp_retrans_segs, b->tcp_retrans_segs);
    long long dsack = cb_netdev_delta(a->tcp_dsack_segs, b->tcp_dsack_segs);
    if (retrans < 0 || dsack < 0)
        return retrans;
    return retrans > dsack ? retrans - dsack : 0;
}

void cb_netdev_clock(double when, char *buf, unsigned len)
{
    time_t t = (time_t)when;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(buf, len, "%H:%M:%S", &tm) == 0)
        snprintf(buf, len, "?");
}
