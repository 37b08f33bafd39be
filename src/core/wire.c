/* Wire counters (wire.h): RDMA port counters, netdev carrier changes and
 * TCP retransmissions, read from sysfs and procfs. */
#include "core/wire.h"

#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* The D-SACK count read beside RetransSegs; it only discounts them (see
 * discount_dsack) and is never reported itself. */
#define DSACK_NAME "TCPDSACKRecvSegs"

static const char *root_of(const char *env, const char *dflt)
{
    const char *v = getenv(env);
    return v && *v ? v : dflt;
}

/* ---- kinds ---- */

/* Words (a whole '_'-separated token, or its start) that name trouble.
 * Traffic counters (port_xmit_data, rcvd_pkts, ack_deferred) match none. */
static const char *const congestion_words[] = {"ecn", "cnp"};
static const char *const error_words[] = {
    "err", "discard", "drop", "downed", "retr", "timeout", "nak", "seq", "overrun", "symbol",
    "integrity", "recovery", "constraint", "duplicate", "dup", "carrier",
};

static int has_token(const char *name, const char *const *words, size_t nwords)
{
    for (const char *t = name; *t;) {
        size_t len = strcspn(t, "_");
        for (size_t i = 0; i < nwords; i++) {
            size_t w = strlen(words[i]);
            if (w <= len && strncasecmp(t, words[i], w) == 0)
                return 1;
        }
        t += len;
        t += *t == '_';
    }
    return 0;
}

enum cb_wire_kind cb_wire_kind(const char *counter)
{
    if (strstr(counter, "xmit_wait") || has_token(counter, congestion_words, 2))
        return CB_WIRE_CONGESTION;
    if (strstr(counter, "out_of_") ||
        has_token(counter, error_words, sizeof error_words / sizeof *error_words))
        return CB_WIRE_ERROR;
    return CB_WIRE_NONE;
}

static const char *const retrans_words[] = {"seq", "retr", "timeout", "duplicate", "dup"};
static const char *const rnr_words[] = {"rnr"};

int cb_wire_is_retrans(const char *counter)
{
    return cb_wire_kind(counter) == CB_WIRE_ERROR && !has_token(counter, rnr_words, 1) &&
           has_token(counter, retrans_words, sizeof retrans_words / sizeof *retrans_words);
}

/* ---- reading ---- */

static int read_ull(const char *path, unsigned long long *out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int ok = fscanf(f, "%llu", out) == 1;
    fclose(f);
    return ok ? 0 : -1;
}

static void add(struct cb_wire_reading *r, const char *link, const char *name, unsigned long long v)
{
    for (int i = 0; i < r->n; i++)   /* a netdev named twice (under the port and as the interface) */
        if (strcmp(r->c[i].link, link) == 0 && strcmp(r->c[i].name, name) == 0)
            return;
    if (r->n == CB_WIRE_READ_MAX) {
        r->truncated = 1;
        return;
    }
    struct cb_wire_counter *c = &r->c[r->n++];
    snprintf(c->link, sizeof c->link, "%.*s", (int)sizeof c->link - 1, link);
    snprintf(c->name, sizeof c->name, "%.*s", (int)sizeof c->name - 1, name);
    c->value = v;
}

static int visible(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

/* Every error or congestion counter in DIR. */
static void read_counter_dir(const char *dir, const char *link, struct cb_wire_reading *r)
{
    struct dirent **names;
    int k = scandir(dir, &names, visible, alphasort);
    for (int i = 0; i < k; i++) {
        char path[4096];
        unsigned long long v;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        if (cb_wire_kind(names[i]->d_name) != CB_WIRE_NONE && read_ull(path, &v) == 0)
            add(r, link, names[i]->d_name, v);
        free(names[i]);
    }
    if (k >= 0)
        free(names);
}

long long cb_wire_carrier_changes(const char *ifname)
{
    char path[4096];
    unsigned long long v;
    if (!ifname || !*ifname || strchr(ifname, '/'))
        return -1;
    snprintf(path, sizeof path, "%s/%s/carrier_changes", root_of("COLLBENCH_NET_SYSFS", "/sys/class/net"), ifname);
    return read_ull(path, &v) == 0 && v <= (unsigned long long)LLONG_MAX ? (long long)v : -1;
}

static void read_netdev(const char *ifname, struct cb_wire_reading *r)
{
    long long v = cb_wire_carrier_changes(ifname);
    if (v >= 0)
        add(r, ifname, "carrier_changes", (unsigned long long)v);
}

/* The netdevs a RoCE port's GIDs sit on (none on InfiniBand). */
static void read_port_netdevs(const char *portdir, struct cb_wire_reading *r)
{
    char dir[4096 + 32];
    struct dirent **names;
    snprintf(dir, sizeof dir, "%s/gid_attrs/ndevs", portdir);
    int k = scandir(dir, &names, visible, alphasort);
    for (int i = 0; i < k; i++) {
        char path[4096 + 320], ifname[64] = "";
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        FILE *f = fopen(path, "r");   /* an unused GID's entry cannot be read */
        if (f) {
            if (fscanf(f, "%63s", ifname) == 1)
                read_netdev(ifname, r);
            fclose(f);
        }
        free(names[i]);
    }
    if (k >= 0)
        free(names);
}

static void read_port(const char *devdir, const char *dev, const char *port, struct cb_wire_reading *r)
{
    char portdir[4096], dir[4096 + 32], link[64];
    snprintf(portdir, sizeof portdir, "%s/ports/%s", devdir, port);
    snprintf(link, sizeof link, "%s:%s", dev, port);
    snprintf(dir, sizeof dir, "%s/counters", portdir);
    read_counter_dir(dir, link, r);
    snprintf(dir, sizeof dir, "%s/hw_counters", portdir);
    read_counter_dir(dir, link, r);
    read_port_netdevs(portdir, r);
}

static void read_device(const char *dev, int port, struct cb_wire_reading *r)
{
    char devdir[4096], ports[4096 + 8];
    struct dirent **names;
    snprintf(devdir, sizeof devdir, "%s/%s", root_of("COLLBENCH_IB_SYSFS", "/sys/class/infiniband"), dev);
    if (port > 0) {
        char p[16];
        snprintf(p, sizeof p, "%d", port);
        read_port(devdir, dev, p, r);
        return;
    }
    snprintf(ports, sizeof ports, "%s/ports", devdir);
    int k = scandir(ports, &names, visible, alphasort);
    for (int i = 0; i < k; i++) {
        read_port(devdir, dev, names[i]->d_name, r);
        free(names[i]);
    }
    if (k >= 0)
        free(names);
}

static void read_every_device(struct cb_wire_reading *r)
{
    struct dirent **names;
    int k = scandir(root_of("COLLBENCH_IB_SYSFS", "/sys/class/infiniband"), &names, visible, alphasort);
    for (int i = 0; i < k; i++) {
        read_device(names[i]->d_name, 0, r);
        free(names[i]);
    }
    if (k >= 0)
        free(names);
}

/* ---- TCP ---- */

/* The value under `field` in one table of /proc/net/snmp or netstat: a line
 * of names, then a line of values in the same order. */
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

/* `field` of the table whose lines start with `table` ("Tcp:"), -1 when
 * unknown. Lines are read whole: netstat's TcpExt lines pass 2 KiB. */
static long long table_field(const char *path, const char *table, const char *field)
{
    char *names = NULL, *values = NULL;
    size_t nlen = 0, vlen = 0, tlen = strlen(table);
    long long v = -1;
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (getline(&names, &nlen, f) > 0) {
        if (strncmp(names, table, tlen) != 0)
            continue;
        if (getline(&values, &vlen, f) > 0 && strncmp(values, table, tlen) == 0)
            v = field_of(names + tlen, values + tlen, field);
        break;
    }
    free(names);
    free(values);
    fclose(f);
    return v;
}

void cb_wire_tcp_read(struct cb_wire_tcp *t)
{
    const char *snmp = root_of("COLLBENCH_PROC_SNMP", "/proc/net/snmp");
    t->out_segs = table_field(snmp, "Tcp:", "OutSegs");
    t->retrans_segs = table_field(snmp, "Tcp:", "RetransSegs");
    t->dsack_segs = table_field(root_of("COLLBENCH_PROC_NETSTAT", "/proc/net/netstat"), "TcpExt:", "TCPDSACKRecvSegs");
}

static void read_tcp(struct cb_wire_reading *r)
{
    struct cb_wire_tcp t;
    cb_wire_tcp_read(&t);
    if (t.retrans_segs >= 0)
        add(r, "tcp", "RetransSegs", (unsigned long long)t.retrans_segs);
    if (t.retrans_segs >= 0 && t.dsack_segs >= 0)
        add(r, "tcp", DSACK_NAME, (unsigned long long)t.dsack_segs);
}

/* Each item of a comma list ("rxe0,rxe1") into fn; empty items and items
 * of 64 bytes or more are skipped. */
static void each_listed(const char *list, void (*fn)(const char *item, void *arg), void *arg)
{
    char item[64];
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len && len < sizeof item) {
            memcpy(item, p, len);
            item[len] = '\0';
            fn(item, arg);
        }
        p += len;
        p += *p == ',';
    }
}

struct device_read { int port; struct cb_wire_reading *r; };

static void read_one_device(const char *dev, void *arg)
{
    const struct device_read *d = arg;
    read_device(dev, d->port, d->r);
}

void cb_wire_read(const struct cb_wire_scope *s, struct cb_wire_reading *r)
{
    r->n = 0;
    r->truncated = 0;
    if (strcmp(s->rdma_dev, "*") == 0)
        read_every_device(r);
    else if (*s->rdma_dev && !strchr(s->rdma_dev, '/'))
        each_listed(s->rdma_dev, read_one_device, &(struct device_read){s->rdma_port, r});
    read_netdev(s->netdev, r);
    if (s->tcp)
        read_tcp(r);
}

void cb_wire_scope_from_props(const struct cb_props *p, struct cb_wire_scope *s)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < p->n && i < CB_PROPS_MAX; i++) {
        const char *k = p->kv[i].key, *v = p->kv[i].val;
        if (strcmp(k, "device") == 0)
            snprintf(s->rdma_dev, sizeof s->rdma_dev, "%s", v);
        else if (strcmp(k, "port") == 0)   /* "1,2": devices on different ports, so every port of each */
            s->rdma_port = strchr(v, ',') ? 0 : atoi(v);
        else if (strcmp(k, "interface") == 0) {
            snprintf(s->netdev, sizeof s->netdev, "%.63s", v);
            s->tcp = 1;
        }
    }
}

/* ---- deltas ---- */

static struct cb_wire_counter *moved_tcp(struct cb_wire_moved *m, const char *name)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->c[i].link, "tcp") == 0 && strcmp(m->c[i].name, name) == 0)
            return &m->c[i];
    return NULL;
}

static void drop_moved(struct cb_wire_moved *m, struct cb_wire_counter *c)
{
    memmove(c, c + 1, (size_t)(m->c + m->n - (c + 1)) * sizeof *c);
    m->n--;
}

/* A retransmission the receiver D-SACKed as a duplicate was not needed (a
 * loaded host's spurious timeout, not loss): RetransSegs counts only the
 * others, and goes when none are left. */
static void discount_dsack(struct cb_wire_moved *m)
{
    struct cb_wire_counter *dsack = moved_tcp(m, DSACK_NAME);
    if (!dsack)
        return;
    unsigned long long dup = dsack->value;
    drop_moved(m, dsack);
    struct cb_wire_counter *retrans = moved_tcp(m, "RetransSegs");
    if (!retrans)
        return;
    retrans->value = retrans->value > dup ? retrans->value - dup : 0;
    if (!retrans->value)
        drop_moved(m, retrans);
}

/* `link` is already in the comma list `list`. */
static int listed(const char *list, const char *link)
{
    size_t n = strlen(link);
    for (const char *p = list; (p = strstr(p, link)) != NULL; p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

/* Append `link` to the comma list `list` (of `len` bytes) unless it is there or does not fit. */
static void list_link(char *list, size_t len, const char *link)
{
    size_t used = strlen(list);
    if (!listed(list, link) && used + strlen(link) + 2 <= len)
        snprintf(list + used, len - used, "%s%s", used ? "," : "", link);
}

void cb_wire_delta(const struct cb_wire_reading *before, const struct cb_wire_reading *after,
                   struct cb_wire_moved *m)
{
    m->links[0] = '\0';
    for (int i = 0; i < after->n; i++)
        list_link(m->links, sizeof m->links, after->c[i].link);
    m->n = 0;
    m->nread = after->n;
    m->truncated = before->truncated || after->truncated;
    for (int i = 0; i < after->n; i++) {
        const struct cb_wire_counter *a = &after->c[i];
        for (int j = 0; j < before->n; j++) {
            const struct cb_wire_counter *b = &before->c[j];
            if (strcmp(a->link, b->link) != 0 || strcmp(a->name, b->name) != 0 || a->value == b->value)
                continue;
            if (m->n == CB_WIRE_MOVED_MAX) {
                m->truncated = 1;
                break;
            }
            m->c[m->n] = *a;
            m->c[m->n++].value = a->value - b->value;   /* a reset counter wraps: still reported */
            break;
        }
    }
    discount_dsack(m);
}

int cb_wire_has_errors(const struct cb_wire_moved *m)
{
    for (int i = 0; i < m->n; i++)
        if (cb_wire_kind(m->c[i].name) == CB_WIRE_ERROR)
            return 1;
    return m->nevents > 0;
}

/* ---- the footer line ---- */

struct line {
    char *buf;
    size_t len, used;
    int full;
    const char *link;   /* the link named last */
};

static void put(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct line *l, const char *fmt, ...)
{
    if (l->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(l->buf + l->used, l->len - l->used, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= l->len - l->used) {
        l->full = 1;
        if (l->len >= 4)
            memcpy(l->buf + l->len - 4, "...", 4);
        return;
    }
    l->used += (size_t)k;
}

/* ", " between items; the link before an item whose link differs. */
static void item_start(struct line *l, int *first, const char *link)
{
    put(l, "%s", *first ? " " : ", ");
    *first = 0;
    if (!l->link || strcmp(l->link, link) != 0)
        put(l, "%s ", link);
    l->link = link;
}

/* An earlier rank of the same host label already has this counter / event. */
static int seen_counter(const struct cb_wire_moved *m, int rank, const struct cb_wire_counter *c)
{
    for (int j = 0; j < rank; j++)
        if (strcmp(m[j].host, m[rank].host) == 0)
            for (int k = 0; k < m[j].n; k++)
                if (strcmp(m[j].c[k].link, c->link) == 0 && strcmp(m[j].c[k].name, c->name) == 0)
                    return 1;
    return 0;
}

static int seen_event(const struct cb_wire_moved *m, int rank, const struct cb_port_event *e)
{
    for (int j = 0; j < rank; j++)
        if (strcmp(m[j].host, m[rank].host) == 0)
            for (int k = 0; k < m[j].nevents && k < CB_WIRE_EVENTS_MAX; k++) {
                const struct cb_port_event *x = &m[j].ev[k];
                long long dt = x->unix_ms - e->unix_ms;
                if (strcmp(x->link, e->link) == 0 && strcmp(x->what, e->what) == 0 && dt > -1000 && dt < 1000)
                    return 1;
            }
    return 0;
}

static void put_time(struct line *l, long long unix_ms)
{
    time_t s = (time_t)(unix_ms / 1000);
    struct tm tm;
    char hms[16] = "?";
    if (gmtime_r(&s, &tm))
        strftime(hms, sizeof hms, "%H:%M:%S", &tm);
    put(l, " %s.%03lldZ", hms, unix_ms % 1000);
}

static void put_rank(struct line *l, const struct cb_wire_moved *m, int rank, int *any)
{
    const struct cb_wire_moved *r = &m[rank];
    int first = 1;
    for (int k = 0; k < r->nevents && k < CB_WIRE_EVENTS_MAX; k++) {
        if (seen_event(m, rank, &r->ev[k]))
            continue;
        if (first)
            put(l, "%shost %s", *any ? "; " : "", r->host);
        item_start(l, &first, r->ev[k].link);
        put(l, "%s", r->ev[k].what);
        put_time(l, r->ev[k].unix_ms);
        *any = 1;
    }
    if (r->nevents > CB_WIRE_EVENTS_MAX)
        put(l, ", %d more port events", r->nevents - CB_WIRE_EVENTS_MAX);
    for (int k = 0; k < r->n; k++) {
        if (seen_counter(m, rank, &r->c[k]))
            continue;
        if (first)
            put(l, "%shost %s", *any ? "; " : "", r->host);
        item_start(l, &first, r->c[k].link);
        put(l, "%s +%llu", r->c[k].name, r->c[k].value);
        *any = 1;
    }
    if (r->truncated && !first)
        put(l, ", more not shown");
}

struct link_list { char *all; size_t len; };

static void add_link(const char *link, void *arg)
{
    const struct link_list *l = arg;
    list_link(l->all, l->len, link);
}


void cb_wire_line(const struct cb_wire_moved *m, int n, char *buf, size_t len)
{
    struct line l = {buf, len, 0, 0, NULL};
    int any = 0, nread = 0, hosts = 0;
    char links[256] = "";
    if (len == 0)
        return;
    buf[0] = 0;
    for (int i = 0; i < n; i++) {
        l.link = NULL;
        put_rank(&l, m, i, &any);
        int first_of_host = 1;
        for (int j = 0; j < i; j++)
            first_of_host &= strcmp(m[j].host, m[i].host) != 0 || m[j].nread == 0;
        if (m[i].nread > 0 && first_of_host) {
            nread += m[i].nread;
            hosts++;
        }
        each_listed(m[i].links, add_link, &(struct link_list){links, sizeof links});  /* those not yet in links */
    }
    if (any)
        return;
    if (nread == 0)
        put(&l, "nothing to read (no RDMA port or network interface in use)");
    else
        put(&l, "nothing moved (%d counters on %d host%s%s%s)", nread, hosts, hosts == 1 ? "" : "s",
            links[0] ? "; links " : "", links);
}
