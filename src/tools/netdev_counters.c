/* Carrier changes of a network device and this namespace's TCP segment
 * counters (netdev_counters.h). */
#include "tools/netdev_counters.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

static long long read_ll(const char *path)
{
    FILE *f = fopen(path, "r");
    long long v = -1;
    if (!f)
        return -1;
    if (fscanf(f, "%lld", &v) != 1 || v < 0)
        v = -1;
    fclose(f);
    return v;
}

/* The value under `field` in a table of /proc/net/snmp or netstat: a line of
 * names, then a line of values in the same order. */
static long long field_of(const char *names, const char *values, const char *field)
{
    size_t flen = strlen(field);
    const char *n = names, *v = values;
    for (;;) {
        n += strspn(n, " \n");
        v += strspn(v, " \n");
        size_t nl = strcspn(n, " \n"), vl = strcspn(v, " \n");
        if (!nl || !vl)
            return -1;
        if (nl == flen && strncmp(n, field, flen) == 0)
            return strtoll(v, NULL, 10);
        n += nl;
        v += vl;
    }
}

static void read_tcp(struct cb_netdev_sample *s)
{
    char line[1024], names[1024] = "";
    FILE *f = fopen(env_or("COLLBENCH_PROC_SNMP", "/proc/net/snmp"), "r");
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "Tcp:", 4) != 0)
            continue;
        if (!names[0]) {
            snprintf(names, sizeof names, "%s", line);
            continue;
        }
        s->tcp_out_segs = field_of(names, line, "OutSegs");
        s->tcp_retrans_segs = field_of(names, line, "RetransSegs");
        break;
    }
    fclose(f);
}

/* TCPDSACKRecvSegs from the "TcpExt:" lines of the netstat table (over 2 KiB
 * each on Linux 6). */
static void read_dsack(struct cb_netdev_sample *s)
{
    char *names = NULL, *values = NULL;
    size_t nlen = 0, vlen = 0;
    FILE *f = fopen(env_or("COLLBENCH_PROC_NETSTAT", "/proc/net/netstat"), "r");
    if (!f)
        return;
    while (getline(&names, &nlen, f) > 0) {
        if (strncmp(names, "TcpExt:", 7) != 0)
            continue;
        if (getline(&values, &vlen, f) > 0 && strncmp(values, "TcpExt:", 7) == 0)
            s->tcp_dsack_segs = field_of(names, values, "TCPDSACKRecvSegs");
        break;
    }
    free(names);
    free(values);
    fclose(f);
}

void cb_netdev_sample(const char *ifname, struct cb_netdev_sample *s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    s->when = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
    s->carrier_changes = s->tcp_out_segs = s->tcp_retrans_segs = s->tcp_dsack_segs = -1;
    if (ifname && *ifname && !strchr(ifname, '/')) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s/carrier_changes", env_or("COLLBENCH_NET_SYSFS", "/sys/class/net"), ifname);
        s->carrier_changes = read_ll(path);
    }
    read_tcp(s);
    read_dsack(s);
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
