/* Port error and congestion counters of RDMA ports, read from sysfs before
 * and after the pairwise link check (pairs.h). */
#include "pairs.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Name fragments of counters that count trouble. Traffic counters
 * (port_xmit_data, rcvd_pkts, rdma_sends, ...) match none of them. */
static const char *const congestion_words[] = {"ecn", "cnp"};
static const char *const error_words[] = {
    "err", "discard", "drop", "downed", "retr", "timeout", "nak", "out_of", "seq",
    "overrun", "symbol", "integrity", "recovery", "constraint", "duplicate", "dup_",
};

enum cb_counter_kind cb_port_counter_kind(const char *counter)
{
    for (size_t i = 0; i < sizeof congestion_words / sizeof *congestion_words; i++)
        if (strstr(counter, congestion_words[i]))
            return CB_COUNTER_CONGESTION;
    for (size_t i = 0; i < sizeof error_words / sizeof *error_words; i++)
        if (strstr(counter, error_words[i]))
            return CB_COUNTER_ERROR;
    return CB_COUNTER_NONE;
}

const char *cb_port_counters_root(void)
{
    const char *env = getenv("COLLBENCH_IB_SYSFS");
    return env && *env ? env : "/sys/class/infiniband";
}

static int read_ull(const char *path, unsigned long long *out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int ok = fscanf(f, "%llu", out) == 1;
    fclose(f);
    return ok ? 0 : -1;
}

static int visible(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

/* Every trouble counter in DIR, named "dev/port/counter". */
static void read_dir(const char *dir, const char *dev, const char *port, struct cb_port_counters *pc)
{
    struct dirent **names;
    int k = scandir(dir, &names, visible, alphasort);
    for (int i = 0; i < k; i++) {
        char path[4096];
        unsigned long long v;
        const char *name = names[i]->d_name;
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (cb_port_counter_kind(name) != CB_COUNTER_NONE && read_ull(path, &v) == 0) {
            if (pc->n == CB_PORT_COUNTERS_MAX) {
                pc->truncated = 1;
            } else {
                struct cb_port_counter *c = &pc->c[pc->n++];
                int k = snprintf(c->name, sizeof c->name, "%s/%s/%s", dev, port, name);
                if (k < 0 || (size_t)k >= sizeof c->name)   /* a long name is kept cut */
                    c->name[sizeof c->name - 1] = 0;
                c->value = v;
            }
        }
        free(names[i]);
    }
    if (k >= 0)
        free(names);
}

static void read_device(const char *root, const char *dev, struct cb_port_counters *pc)
{
    char ports[4096];
    struct dirent **names;
    snprintf(ports, sizeof ports, "%s/%s/ports", root, dev);
    int k = scandir(ports, &names, visible, alphasort);
    for (int i = 0; i < k; i++) {
        char dir[4096 + 300];
        snprintf(dir, sizeof dir, "%s/%s/counters", ports, names[i]->d_name);
        read_dir(dir, dev, names[i]->d_name, pc);
        snprintf(dir, sizeof dir, "%s/%s/hw_counters", ports, names[i]->d_name);
        read_dir(dir, dev, names[i]->d_name, pc);
        free(names[i]);
    }
    if (k >= 0)
        free(names);
}

void cb_port_counters_read(const char *root, struct cb_port_counters *pc)
{
    struct dirent **names;
    pc->n = 0;
    pc->truncated = 0;
    int k = scandir(root, &names, visible, alphasort);
    for (int i = 0; i < k; i++) {
        read_device(root, names[i]->d_name, pc);
        free(names[i]);
    }
    if (k >= 0)
        free(names);
}

void cb_port_counters_delta(const struct cb_port_counters *before, const struct cb_port_counters *after,
                            struct cb_port_deltas *d)
{
    memset(d, 0, sizeof *d);
    d->truncated = before->truncated || after->truncated;
    for (int i = 0; i < after->n; i++) {
        const struct cb_port_counter *a = &after->c[i];
        for (int j = 0; j < before->n; j++) {
            const struct cb_port_counter *b = &before->c[j];
            if (strcmp(a->name, b->name) != 0 || a->value == b->value)
                continue;
            if (d->n == CB_PORT_DELTAS_MAX) {
                d->truncated = 1;
                break;
            }
            snprintf(d->c[d->n].name, sizeof d->c[d->n].name, "%s", a->name);
            d->c[d->n++].value = a->value - b->value;   /* a reset counter wraps: still reported */
            break;
        }
    }
}
