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

/* The value under `field` in /proc/net/snmp's "Tcp:" lines: a line of names,
 * then a line of values in the same order. */
static long long snmp_field(const char *names, const char *values, const char *field)
{
    char nbuf[1024], vbuf[1024], *ns, *vs;
    snprintf(nbuf, sizeof nbuf, "%s", names);
    snprintf(vbuf, sizeof vbuf, "%s", values);
    char *n = strtok_r(nbuf, " \n", &ns), *v = strtok_r(vbuf, " \n", &vs);
    for (; n && v; n = strtok_r(NULL, " \n", &ns), v = strtok_r(NULL, " \n", &vs))
        if (strcmp(n, field) == 0)
            return strtoll(v, NULL, 10);
    return -1;
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
        s->tcp_out_segs = snmp_field(names, line, "OutSegs");
        s->tcp_retrans_segs = snmp_field(names, line, "RetransSegs");
        break;
    }
    fclose(f);
}

void cb_netdev_sample(const char *ifname, struct cb_netdev_sample *s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    s->when = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
    s->carrier_changes = s->tcp_out_segs = s->tcp_retrans_segs = -1;
    if (ifname && *ifname && !strchr(ifname, '/')) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s/carrier_changes", env_or("COLLBENCH_NET_SYSFS", "/sys/class/net"), ifname);
        s->carrier_changes = read_ll(path);
    }
    read_tcp(s);
}

long long cb_netdev_delta(long long before, long long after)
{
    if (before < 0 || after < 0)
        return -1;
    return after >= before ? after - before : after;
}

void cb_netdev_clock(double when, char *buf, unsigned len)
{
    time_t t = (time_t)when;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(buf, len, "%H:%M:%S", &tm) == 0)
        snprintf(buf, len, "?");
}
