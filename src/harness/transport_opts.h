/* The transports' settings as flags: one table (transport_opts.c) says, per
 * flag, which field of struct cb_transport_config it sets, how its value is
 * read and checked, and its help and default. options.c parses and prints
 * them from it, pairs forwards them, and the tests check that
 * docs/manual.md lists each; adding a transport option is one table line
 * (plus its field and what uses it). */
#ifndef CB_TRANSPORT_OPTS_H
#define CB_TRANSPORT_OPTS_H

#include <stddef.h>
#include <stdio.h>
#include "transport/transport.h"

enum cb_topt_kind {
    CB_TOPT_INT,      /* int within [lo, hi] */
    CB_TOPT_POW2,     /* int within [lo, hi], a power of two */
    CB_TOPT_SIZE,     /* size_t with an optional K/M/G, within [lo, hi], a multiple of lo */
    CB_TOPT_TEXT,     /* char[size] */
    CB_TOPT_CHOICE,   /* char[size], one of `choices` ("ipv4|ipv6") */
    CB_TOPT_SWITCH,   /* int, enum cb_switch: auto, on or off */
};

/* Where a flag is listed in --help. */
enum cb_topt_group { CB_TOPT_ENGINE, CB_TOPT_TCP, CB_TOPT_VERBS };

struct cb_topt {
    const char *name;        /* the long flag, without "--" */
    const char *metavar;     /* "N", "SIZE", "auto|on|off" */
    enum cb_topt_group group;
    const char *help;        /* what it does and its default; "\n" starts a continuation line */
    enum cb_topt_kind kind;
    size_t offset, size;     /* the field in struct cb_transport_config */
    long long lo, hi;
    const char *choices;
};

/* The table, n entries. */
const struct cb_topt *cb_topts(int *n);
/* Set the flag's field from its value, or a usage error naming the flag (-1). */
int cb_topt_parse(const struct cb_topt *t, const char *arg, struct cb_transport_config *cfg, int report);
/* The --help lines of one group. */
void cb_topts_usage(FILE *out, enum cb_topt_group group);

#endif
