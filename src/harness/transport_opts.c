/* The transports' flags (transport_opts.h). */
#include "transport_opts.h"
#include "nccl_flags.h"
#include "options.h"

#include <string.h>

#define FIELD(f) offsetof(struct cb_transport_config, f), sizeof(((struct cb_transport_config *)0)->f)

static const struct cb_topt table[] = {
    {"channels", "N", CB_TOPT_ENGINE, "split the data over N rings/trees, each with its own\nconnections (default 1)",
     CB_TOPT_INT, FIELD(channels), 1, 32, NULL},
    {"slot-bytes", "SIZE", CB_TOPT_ENGINE, "bytes per FIFO slot, a multiple of 4K (default 512K)", CB_TOPT_SIZE,
     FIELD(slot_bytes), 4096, 64 << 20, NULL},
    {"slots", "N", CB_TOPT_ENGINE, "FIFO slots per connection (default 8)", CB_TOPT_INT, FIELD(nslots), 2, 1024,
     NULL},
    {"tcp-if", "NAME|ADDR", CB_TOPT_TCP, "interface or address for tcp (default: first non-loopback)", CB_TOPT_TEXT,
     FIELD(tcp_if), 0, 0, NULL},
    {"hca", "LIST", CB_TOPT_VERBS,
     "NICs to use, NCCL_IB_HCA's syntax: [^][=]dev[:port][,..] ('^' excludes,\n'=' whole names, else prefixes; "
     "env COLLBENCH_HCA; default: the NIC\nclosest to the rank by hwloc, of the kind most ports are)",
     CB_TOPT_TEXT, FIELD(hca), 0, 0, NULL},
    {"gid-index", "N", CB_TOPT_VERBS, "GID index (default: RoCE v2, IPv4-mapped, not link-local)", CB_TOPT_INT,
     FIELD(gid_index), 0, 65535, NULL},
    {"gid-family", "ipv4|ipv6", CB_TOPT_VERBS, "only GIDs of this family in the automatic choice", CB_TOPT_CHOICE,
     FIELD(gid_family), 0, 0, "ipv4|ipv6"},
    {"gid-subnet", "A.B.C.D/LEN", CB_TOPT_VERBS, "only GIDs in this subnet in the automatic choice", CB_TOPT_TEXT,
     FIELD(gid_subnet), 0, 0, NULL},
    {"roce-version", "1|2", CB_TOPT_VERBS, "require this RoCE version (default: prefer 2)", CB_TOPT_INT,
     FIELD(roce_version), 1, 2, NULL},
    {"tc", "N", CB_TOPT_VERBS,
     "traffic class, 0-255 (default: what the fabric sets: rdma_cm's path\nrecord, RoCE default_roce_tos)",
     CB_TOPT_INT, FIELD(traffic_class), 0, 255, NULL},
    {"sl", "N", CB_TOPT_VERBS, "service level, 0-15 (default: what the fabric sets)", CB_TOPT_INT,
     FIELD(service_level), 0, 15, NULL},
    {"mtu", "BYTES", CB_TOPT_VERBS, "path MTU, 256-4096 (default: the smaller of both ends' active MTUs)",
     CB_TOPT_POW2, FIELD(path_mtu), 256, 4096, NULL},
    {"qps", "N", CB_TOPT_VERBS, "QPs per connection (default 1)", CB_TOPT_INT, FIELD(qps_per_conn), 1, 64, NULL},
    {"ib-timeout", "N", CB_TOPT_VERBS, "QP timeout exponent: 4.096 us x 2^N (default 20)", CB_TOPT_INT,
     FIELD(ib_timeout), 1, 31, NULL},
    {"ib-retry", "N", CB_TOPT_VERBS, "QP retry count (default 7)", CB_TOPT_INT, FIELD(ib_retry_cnt), 0, 7, NULL},
    {"ib-relaxed-ordering", "auto|on|off", CB_TOPT_VERBS,
     "request PCIe relaxed ordering for the data buffers' registrations\n(default auto: on where rdma-core "
     "takes it, as NCCL)",
     CB_TOPT_SWITCH, FIELD(ib_relaxed_ordering), 0, 0, NULL},
    {"ib-ar", "auto|on|off", CB_TOPT_VERBS,
     "adaptive-routing form: pieces of --ib-ar-threshold bytes or more go\nas an RDMA write then a 0-byte "
     "write with immediate (default auto:\non InfiniBand, off on RoCE, as NCCL)",
     CB_TOPT_SWITCH, FIELD(ib_ar), 0, 0, NULL},
    {"ib-connect", "cm|oob|auto", CB_TOPT_VERBS,
     "how QPs are connected: cm = rdma_cm (IP address, ARP, CM MADs), oob =\nQP addresses through the "
     "bootstrap, as NCCL (no IP address needed)\n(default auto: oob, as NCCL)",
     CB_TOPT_CHOICE, FIELD(ib_connect), 0, 0, "cm|oob|auto"},
    {"ib-ar-threshold", "SIZE", CB_TOPT_VERBS, "see --ib-ar (default 8K)", CB_TOPT_SIZE, FIELD(ib_ar_threshold), 1,
     1 << 30, NULL},
    {"ib-split-data", "auto|on|off", CB_TOPT_VERBS,
     "with --qps above 1: on splits each message over all the QPs, off\nsends each whole on one QP, QPs in turn "
     "(default auto: off, as NCCL)",
     CB_TOPT_SWITCH, FIELD(ib_split_data), 0, 0, NULL},
};

const struct cb_topt *cb_topts(int *n)
{
    *n = (int)(sizeof table / sizeof table[0]);
    return table;
}

static int one_of(const char *choices, const char *arg)
{
    size_t len = strlen(arg);
    for (const char *c = choices; *c;) {
        size_t k = strcspn(c, "|");
        if (k == len && strncmp(c, arg, len) == 0)
            return 1;
        c += k + (c[k] == '|');
    }
    return 0;
}

/* "4K", "64M", "1G", or bytes. */
static void human(long long v, char *buf, size_t len)
{
    static const char units[] = "GMK";
    for (int i = 0; i < 3; i++) {
        long long unit = 1LL << (10 * (3 - i));
        if (v >= unit && v % unit == 0) {
            snprintf(buf, len, "%lld%c", v / unit, units[i]);
            return;
        }
    }
    snprintf(buf, len, "%lld", v);
}

static int parse_size_field(const struct cb_topt *t, const char *arg, size_t *out, int report)
{
    size_t v;
    if (cb_parse_size(arg, &v) != 0 && cb_nccl_parse_size(arg, &v) != 0)
        return cb_usage_error(report, "bad size '%s' for --%s: give bytes with an optional K, M or G suffix, e.g. "
                              "8, 64K, 256M", arg, t->name);
    if (v < (size_t)t->lo || v > (size_t)t->hi || (t->lo > 1 && v % (size_t)t->lo)) {
        char lo[24], hi[24];
        human(t->lo, lo, sizeof lo);
        human(t->hi, hi, sizeof hi);
        if (t->lo > 1)
            return cb_usage_error(report, "--%s must be a multiple of %s from %s to %s (got %s)", t->name, lo, lo, hi,
                                  arg);
        return cb_usage_error(report, "--%s must be from %s to %s bytes (got %s)", t->name, lo, hi, arg);
    }
    *out = v;
    return 0;
}

static int parse_switch(const struct cb_topt *t, const char *arg, int *out, int report)
{
    for (int i = 0; cb_switch_name(i); i++)
        if (strcmp(arg, cb_switch_name(i)) == 0) {
            *out = i;
            return 0;
        }
    return cb_usage_error(report, "bad value '%s' for --%s: give auto, on or off", arg, t->name);
}

int cb_topt_parse(const struct cb_topt *t, const char *arg, struct cb_transport_config *cfg, int report)
{
    char flag[64];
    void *field = (char *)cfg + t->offset;
    snprintf(flag, sizeof flag, "--%s", t->name);
    switch (t->kind) {
    case CB_TOPT_INT:
        return cb_int_arg(flag, arg, (int)t->lo, (int)t->hi, field, report);
    case CB_TOPT_POW2: {
        int v;
        if (cb_int_arg(flag, arg, (int)t->lo, (int)t->hi, &v, report))
            return -1;
        if (v & (v - 1))
            return cb_usage_error(report, "%s must be a power of two from %lld to %lld (got %s)", flag, t->lo, t->hi,
                                  arg);
        *(int *)field = v;
        return 0;
    }
    case CB_TOPT_SIZE:
        return parse_size_field(t, arg, field, report);
    case CB_TOPT_SWITCH:
        return parse_switch(t, arg, field, report);
    case CB_TOPT_CHOICE:
        if (!one_of(t->choices, arg))
            return cb_usage_error(report, "%s must be one of %s (got '%s')", flag, t->choices, arg);
        /* fall through */
    case CB_TOPT_TEXT:
        if (strlen(arg) >= t->size)
            return cb_usage_error(report, "value of %s is too long (at most %zu characters)", flag, t->size - 1);
        memcpy(field, arg, strlen(arg) + 1);
        return 0;
    }
    return cb_usage_error(report, "%s: unknown kind of option (a collbench bug)", flag);
}

void cb_topts_usage(FILE *out, enum cb_topt_group group)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const struct cb_topt *t = &table[i];
        if (t->group != group)
            continue;
        int w = fprintf(out, "      --%s %s", t->name, t->metavar);
        const char *h = t->help;
        if (w > 26)
            fprintf(out, "\n%27s", "");
        else
            fprintf(out, "%*s", 27 - w, "");
        for (;;) {
            size_t k = strcspn(h, "\n");
            fprintf(out, "%.*s\n", (int)k, h);
            if (!h[k])
                break;
            h += k + 1;
            fprintf(out, "%27s", "");
        }
    }
}
