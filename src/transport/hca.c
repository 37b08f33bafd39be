/* --hca's grammar and the automatic choice's rule (see hca.h). */
#include "transport/hca.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HCA_SYNTAX "the syntax is NCCL_IB_HCA's: [^][=]dev[:port][,dev[:port]...] ('^' excludes, '=' matches " \
                   "whole names, otherwise names are prefixes; ports from 1)"

static cb_status bad(char *err, size_t len, const char *s, const char *fmt, const char *what)
{
    char why[160];
    snprintf(why, sizeof why, fmt, what);
    snprintf(err, len, "cannot parse --hca '%s': %s; %s", s, why, HCA_SYNTAX);
    return CB_EUSAGE;
}

static int name_char(int c)
{
    return isalnum(c) || c == '_' || c == '-' || c == '.';
}

/* One "dev[:port]" entry of `whole`. */
static cb_status parse_entry(const char *tok, const char *whole, struct cb_hca_spec *spec, char *err, size_t len)
{
    char t[CB_HCA_NAME + 16];
    if (!*tok)
        return bad(err, len, whole, "an entry is empty (two commas, or one at an end)%s", "");
    if (strlen(tok) >= sizeof t)
        return bad(err, len, whole, "entry '%.40s...' is too long", tok);
    if (spec->n == CB_HCA_MAX)
        return bad(err, len, whole, "more than %s entries", "32");
    strcpy(t, tok);
    char *colon = strchr(t, ':');
    int port = 0;
    if (colon) {
        *colon = '\0';
        char *end;
        long p = strtol(colon + 1, &end, 10);
        if (!colon[1])
            return bad(err, len, whole, "entry '%s' has no port after ':'", tok);
        if (*end || p < 1 || p > 255 || !isdigit((unsigned char)colon[1]))
            return bad(err, len, whole, "the port of entry '%s' is not a number from 1 to 255", tok);
        port = (int)p;
    }
    if (!*t)
        return bad(err, len, whole, "entry '%s' has no device name", tok);
    if (strlen(t) >= CB_HCA_NAME)
        return bad(err, len, whole, "device name '%.40s...' is too long", t);
    for (const char *c = t; *c; c++) {
        if (*c == '^' || *c == '=')
            return bad(err, len, whole, "'%s': '^' and '=' go only at the start of the list and apply to all of it",
                       tok);
        if (!name_char((unsigned char)*c)) {
            char what[96];
            snprintf(what, sizeof what, "entry '%s' has the character '%c' (device names are letters, digits, "
                     "'_', '-', '.')", tok, *c);
            return bad(err, len, whole, "%s", what);
        }
    }
    snprintf(spec->e[spec->n].name, CB_HCA_NAME, "%s", t);
    spec->e[spec->n].port = port;
    spec->n++;
    return CB_OK;
}

cb_status cb_hca_parse(const char *s, struct cb_hca_spec *spec, char *err, size_t errlen)
{
    memset(spec, 0, sizeof *spec);
    if (errlen)
        err[0] = '\0';
    if (!s || !*s)
        return CB_OK;
    const char *p = s;
    if (*p == '^') {
        spec->exclude = 1;
        p++;
    }
    if (*p == '=') {
        spec->exact = 1;
        p++;
    }
    if (!*p)
        return bad(err, errlen, s, "no device after '%s'", spec->exact ? "=" : "^");
    char buf[512];
    if (strlen(p) >= sizeof buf)
        return bad(err, errlen, s, "longer than %s characters", "511");
    strcpy(buf, p);
    char *tok = buf;
    for (;;) {
        char *comma = strchr(tok, ',');
        if (comma)
            *comma = '\0';
        cb_status st = parse_entry(tok, s, spec, err, errlen);
        if (st) {
            spec->n = 0;
            return st;
        }
        if (!comma)
            break;
        tok = comma + 1;
    }
    return CB_OK;
}

int cb_hca_name_match(const struct cb_hca_spec *s, int i, const char *dev)
{
    const char *name = s->e[i].name;
    return s->exact ? strcmp(dev, name) == 0 : strncmp(dev, name, strlen(name)) == 0;
}

int cb_hca_selects(const struct cb_hca_spec *s, const char *dev, int port)
{
    if (s->n == 0)
        return 1;
    int hit = 0;
    for (int i = 0; i < s->n && !hit; i++)
        hit = cb_hca_name_match(s, i, dev) && (s->e[i].port == 0 || s->e[i].port == port);
    return s->exclude ? !hit : hit;
}

static const char *ll_name(int ll)
{
    return ll == 1 ? "InfiniBand" : ll == 2 ? "Ethernet" : "unknown link layer";
}

static int same_kind(const struct cb_port_desc *a, const struct cb_port_desc *b)
{
    return a->link_layer == b->link_layer && a->rate_mbps == b->rate_mbps;
}

int cb_ports_majority(const struct cb_port_desc *p, int n, int *keep, char *note, size_t len)
{
    int best = -1, best_count = 0;
    for (int i = 0; i < n; i++) {
        int count = 0;
        for (int j = 0; j < n; j++)
            count += same_kind(&p[i], &p[j]);
        if (count > best_count || (count == best_count && p[i].rate_mbps > p[best].rate_mbps)) {
            best = i;
            best_count = count;
        }
    }
    int skipped = 0;
    size_t off = 0;
    if (len)
        note[0] = '\0';
    for (int i = 0; i < n; i++) {
        keep[i] = same_kind(&p[i], &p[best]);
        if (keep[i])
            continue;
        skipped++;
        if (off < len)
            off += (size_t)snprintf(note + off, len - off, "%s%s:%d (%s %g Gb/s)", skipped > 1 ? ", " : "skipped ",
                                    p[i].name, p[i].port, ll_name(p[i].link_layer), p[i].rate_mbps / 1000.0);
    }
    if (skipped && off < len)
        snprintf(note + off, len - off, "; using the %d %s %g Gb/s port%s", best_count, ll_name(p[best].link_layer),
                 p[best].rate_mbps / 1000.0, best_count > 1 ? "s" : "");
    return skipped;
}

int cb_hca_stripes(int listed, int local_size, int ncand)
{
    return listed && local_size <= 1 && ncand > 1;
}

int cb_hca_channel_device(int channel, int ndev)
{
    return ndev > 0 && channel > 0 ? channel % ndev : 0;
}

/* Whether p[i] is of the kind of some used port: a rail of this fabric. */
static int rail_kind(const struct cb_port_desc *p, int n, const int *used, int i)
{
    for (int j = 0; j < n; j++)
        if (used[j] && same_kind(&p[i], &p[j]))
            return 1;
    return 0;
}

/* "a:1, b:1" (sep ", ") or "a:1,b:1" (sep ","): the rails whose use is `want` (-1: all). */
static size_t rail_list(const struct cb_port_desc *p, int n, const int *used, int want, const char *sep,
                        char *buf, size_t len, size_t off)
{
    int any = 0;
    for (int i = 0; i < n && off < len; i++)
        if (rail_kind(p, n, used, i) && (want < 0 || !used[i] == !want))
            off += (size_t)snprintf(buf + off, len - off, "%s%s:%d", any++ ? sep : "", p[i].name, p[i].port);
    return off;
}

int cb_rails_unused(const struct cb_port_desc *p, int n, const int *used, const struct cb_rail_use *u, char *msg,
                    size_t len)
{
    int idle = 0, busy = 0;
    for (int i = 0; i < n; i++) {
        idle += !used[i] && rail_kind(p, n, used, i);
        busy += !!used[i];
    }
    if (len)
        msg[0] = '\0';
    if (!idle || !len)
        return idle;
    int all = idle + busy;
    size_t off = (size_t)snprintf(msg, len, "RDMA NIC%s ", idle > 1 ? "s" : "");
    off = rail_list(p, n, used, 0, ", ", msg, len, off);
    if (off < len)
        off += (size_t)snprintf(msg + off, len - off, " carr%s no traffic: the host's %d rank%s use%s ",
                                idle > 1 ? "y" : "ies", u->ranks, u->ranks > 1 ? "s" : "", u->ranks > 1 ? "" : "s");
    off = rail_list(p, n, used, 1, ", ", msg, len, off);
    if (off < len)
        off += (size_t)snprintf(msg + off, len - off, " of its %d: ", all);
    if (u->ranks >= all) {   /* enough ranks: --hca names too few NICs */
        if (off < len)
            off += (size_t)snprintf(msg + off, len - off, "list every NIC in --hca: --hca ");
        rail_list(p, n, used, -1, ",", msg, len, off);
        return idle;
    }
    if (off < len)
        off += (size_t)snprintf(msg + off, len - off, "start one rank per NIC (`mpirun --map-by ppr:%d:node`%s)",
                                all, u->listed ? ", every NIC in --hca" : "");
    if (u->ranks == 1 && off < len) {
        off += (size_t)snprintf(msg + off, len - off, ", or let the rank drive them all: --hca ");
        off = rail_list(p, n, used, -1, ",", msg, len, off);
        if (off < len)
            snprintf(msg + off, len - off, " --channels %d", all);
    }
    return idle;
}

int cb_ports_mixed_link(const struct cb_port_desc *p, int n, char *msg, size_t len)
{
    for (int i = 1; i < n; i++) {
        if (p[i].link_layer == p[0].link_layer)
            continue;
        if (len)
            snprintf(msg, len, "%s:%d (%s) and %s:%d (%s)", p[0].name, p[0].port, ll_name(p[0].link_layer),
                     p[i].name, p[i].port, ll_name(p[i].link_layer));
        return 1;
    }
    return 0;
}

/* The NIC count most hosts have (a tie: the larger); -1 when none is known. */
static int common_count(const struct cb_host_nics *h, int n)
{
    int freq[CB_HOST_NICS_MAX + 1] = {0}, best = -1;
    for (int i = 0; i < n; i++)
        if (h[i].nics > 0 && h[i].nics <= CB_HOST_NICS_MAX)
            freq[h[i].nics]++;
    for (int c = CB_HOST_NICS_MAX; c > 0; c--)
        if (freq[c] && (best < 0 || freq[c] > freq[best]))
            best = c;
    return best;
}

/* Up to `shown` hosts whose count is (want_odd ? not : is) `common`, then "and N more". */
static size_t host_list(const struct cb_host_nics *h, int n, int common, int want_odd, int shown, char *buf,
                        size_t len, size_t off)
{
    int listed = 0, more = 0;
    for (int i = 0; i < n; i++) {
        if (h[i].nics <= 0 || (h[i].nics != common) != want_odd)
            continue;
        if (listed == shown) {
            more++;
            continue;
        }
        if (off < len)
            off += (size_t)snprintf(buf + off, len - off, "%s%s", listed ? ", " : "", h[i].host);
        if (want_odd && off < len)
            off += (size_t)snprintf(buf + off, len - off, " has %d%s%s%s", h[i].nics, h[i].names[0] ? " (" : "",
                                    h[i].names, h[i].names[0] ? ")" : "");
        listed++;
    }
    if (more && off < len)
        off += (size_t)snprintf(buf + off, len - off, " and %d more", more);
    return off;
}

int cb_hosts_nic_counts(const struct cb_host_nics *h, int n, int listed, int *most, char *msg, size_t len)
{
    int common = common_count(h, n), odd = 0, alike = 0;
    *most = common;
    for (int i = 0; i < n; i++) {
        odd += h[i].nics > 0 && h[i].nics != common;
        alike += h[i].nics == common;
    }
    if (len)
        msg[0] = '\0';
    if (!odd || !len)
        return odd;
    size_t off = (size_t)snprintf(msg, len, "hosts differ in how many RDMA NICs %s: ",
                                  listed ? "--hca selects" : "their ranks use (the usable ones of the common kind)");
    off = host_list(h, n, common, 1, 4, msg, len, off);
    if (off < len)
        off += (size_t)snprintf(msg + off, len - off, "; ");
    off = host_list(h, n, common, 0, 3, msg, len, off);
    if (off < len)
        off += (size_t)snprintf(msg + off, len - off, " ha%s %d. Ranks (and a striping rank's channels) take "
                                "NICs by position on every host, so where the counts differ a rank's traffic "
                                "leaves on one rail and arrives on another (through the spine on a "
                                "rail-optimized fabric). %s", alike > 1 ? "ve" : "s", common,
                                listed ? "Give --hca as many NICs on every host"
                                       : "Check those hosts' NICs (ibstat, rdma link) or name the same NICs "
                                         "on every host with --hca");
    return odd;
}

/* The length of s's name before its trailing digits, or -1 if none trail. */
static int stem_len(const char *s)
{
    int n = (int)strlen(s), i = n;
    while (i > 0 && isdigit((unsigned char)s[i - 1]))
        i--;
    return i < n && n - i < 9 ? i : -1;
}

void cb_nic_names_short(const char *const *names, int n, char *buf, size_t len)
{
    if (!len)
        return;
    buf[0] = '\0';
    int stem = n > 1 ? stem_len(names[0]) : -1, run = stem >= 0;
    for (int i = 1; i < n && run; i++)
        run = stem_len(names[i]) == stem && !strncmp(names[i], names[0], (size_t)stem) &&
              atoi(names[i] + stem) == atoi(names[0] + stem) + i;
    if (run) {
        snprintf(buf, len, "%s..%d", names[0], atoi(names[n - 1] + stem));
        return;
    }
    size_t off = 0;
    for (int i = 0; i < n && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? "," : "", names[i]);
    if (off >= len && len > 4)
        strcpy(buf + len - 4, "...");
}
