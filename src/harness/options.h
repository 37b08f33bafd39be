/* The command line: nccl-tests' flags with nccl-tests' meanings, plus ours. */
#ifndef CB_OPTIONS_H
#define CB_OPTIONS_H

#include <signal.h>
#include <stdint.h>
#include <getopt.h>
#include <stdio.h>
#include "coll/coll.h"
#include "core/types.h"
#include "transport/transport.h"
#include "harness/nccl_flags.h"

#define CB_MAX_COMPARED 8
#define CB_MAX_UNALIGN 64   /* -u N: elements off page alignment */
#define CB_EVERY_ROOT (-1)  /* -r all or -1: every rank in turn, as nccl-tests */

#define CB_DEFAULT_TIMEOUT_S 60   /* -T */

struct cb_options {
    cb_coll coll;
    size_t min_bytes, max_bytes, step_bytes;
    double step_factor;          /* > 1: geometric sizes; 0: linear by step_bytes */
    int iters, warmup, agg_iters, cycles, check_iters;
    int blocking, average, per_iter, unalign;   /* -u: elements of offset */
    int timeout_s;
    int root;                    /* CB_EVERY_ROOT: each rank in turn */
    int op_given;                /* -o was on the command line */
    cb_type types[CB_NTYPES];
    int ntypes;
    cb_op ops[CB_NOPS];
    int nops;
    const char *json_path, *csv_path;
    char transport[16];
    /* --algo A[,B..]: one, or several timed in turn in one run (a comparison
     * free of the noise between separate runs); CB_ALGO_MPI is MPI's own */
    cb_algo algos[CB_MAX_COMPARED];
    int nalgos;
    char algo_list[128];          /* the names as given, for the header */
    int algo_given;              /* --algo was on the command line */
    int mpi_reference;           /* --mpi-reference was on the command line */
    int fail_on_wire;            /* --fail-on-wire-errors: exit 3 when the wire moved */
    uint64_t seed;
    struct cb_transport_config tcfg;   /* slot geometry and transport tunables */
    int bind;                    /* --bind: enum cb_bind of topo.h, 0 = auto */
    const char *topo_xml;        /* --topo-xml: an hwloc XML topology instead of this machine's */
    struct cb_nccl_flags nccl;   /* nccl-tests' GPU flags and the output format */
    const char *argv0;           /* the program name: nccl-tests' names pick its format */
    int show_help;
    /* $COLLBENCH_TUNE_FILE: auto's cost-model terms from `collbench tune`
     * instead of the start-up measurement; NULL when unset */
    const char *tune_file;
    /* Not parsed: set by main. Non-zero once SIGINT or SIGTERM asked the run
     * to stop; the harness polls it between operations and sizes. */
    const volatile sig_atomic_t *stop;
};

/* Parse argv (argv[0]'s basename may be an nccl-tests binary name such as
 * all_reduce_perf; else argv[1] is the collective). On a bad command line
 * returns CB_EUSAGE after writing one line that says what was wrong and
 * what to do, to stderr, when `report` is set. */
cb_status cb_options_parse(int argc, char **argv, struct cb_options *o, int report);
void cb_options_usage(FILE *out);
int cb_options_runs_mpi(const struct cb_options *o);    /* MPI's collective is among --algo's */
int cb_options_only_mpi(const struct cb_options *o);    /* nothing of ours runs */
int cb_options_has_op(const struct cb_options *o, cb_op op);   /* op is among -o's */
/* For every command-line parser: log one line (when `report`) saying what was
 * wrong and what to do; returns -1 so a parser can `return cb_usage_error(...)`. */
/* -d's value: a type, a comma list, or all. */
int cb_options_types(const char *s, struct cb_options *o, int report);

/* The defaults, what cb_options_parse starts from. */
void cb_options_defaults(struct cb_options *o);
/* A flag every command that moves data shares, by its long name without
 * "--": transport, timeout, bind, or one of the transport options
 * (transport_opts.h). 0 set, -1 a usage error (reported), 1 not one of them. */
int cb_options_shared(const char *name, const char *arg, struct cb_options *o, int report);
/* Shared flag i's long name (NULL past the last), and getopt entries for
 * all of them with values base_val + i (at most max; returns how many):
 * for a subcommand's own option table. */
#define CB_SHARED_FLAGS_MAX 80   /* room a subcommand's getopt table leaves for them */
const char *cb_options_shared_name(int i);
int cb_options_shared_longopts(struct option *out, int max, int base_val);
/* After the shared flags: the checks that need them all (--hca's string)
 * and -T in ms for the transports; -1 a usage error. */
int cb_options_shared_done(struct cb_options *o, int report);

int cb_usage_error(int report, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An integer flag value within [lo, hi], or a cb_usage_error naming the flag. */
int cb_int_arg(const char *flag, const char *s, int lo, int hi, int *out, int report);
/* Parse "64", "8K", "256M", "1G" (binary). Returns 0 on success. */
int cb_parse_size(const char *s, size_t *out);

#endif
