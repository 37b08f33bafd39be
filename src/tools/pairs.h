/* Pairwise link check, the parts that need no MPI: the schedule of rounds of
 * disjoint pairs, the outlier rule that names slow links and slow hosts, and
 * the port error counters read before and after. See docs/operators.md,
 * "Pairwise link check", for the rule in words. */
#ifndef CB_PAIRS_H
#define CB_PAIRS_H

#include <stddef.h>
#include <stdio.h>
#include "harness/options.h"
#include "core/status.h"

/* The subcommand (src/tools/cmd_pairs.c): argv from "pairs" on; exit status 0 when
 * no outlier was found, 1 when a slow host or link was named or the check
 * failed, 2 on a usage error. */
int cb_cmd_pairs(int argc, char **argv);

/* ---- schedule ----
 * Full: the circle method. With m = n (n even) or n + 1 (n odd, the extra
 * rank is a dummy: whoever meets it idles), there are m - 1 rounds; in round
 * r rank m - 1 meets r and every other rank x meets (2r - x) mod (m - 1).
 * Every pair meets exactly once. Quick: ring neighbours (i, i+1 mod n) only,
 * in 2 rounds (n even), 3 (n odd), 1 (n = 2). */
int cb_pairs_nrounds(int n, int quick);
/* Partner of `rank` in `round`, or -1 when the rank idles in that round. */
int cb_pairs_partner(int n, int quick, int round, int rank);

/* ---- outlier rule ----
 * Inputs are n x n symmetric matrices, [i * n + j]; a pair not measured
 * (quick mode, the diagonal) holds a negative value.
 *   host reference: the host's best pair (highest bandwidth, lowest latency).
 *   R0 = the median over hosts of their references: robust while fewer than
 *     half of the hosts are slow.
 *   healthy pairs: bw >= R0_bw / bw_factor (resp. lat <= R0_lat x lat_factor).
 *   R = the median of the healthy pairs; sigma = 1.4826 x the median of
 *     |ln(value / R)| over them (the noise as a log-ratio: 1.4826 x MAD
 *     estimates a standard deviation).
 *   A pair is slow when bw < R_bw x min(1 / bw_factor, exp(-nsigma x sigma_bw))
 *   or lat > R_lat x max(lat_factor, exp(nsigma x sigma_lat)).
 *   A host is slow when it has at least 2 measured pairs and more than half
 *   of them are slow; a slow link is a slow pair with no slow host at either end. */
struct cb_pairs_rule {
    double bw_factor;    /* default 2 */
    double lat_factor;   /* default 3 */
    double nsigma;       /* default 4 */
};
void cb_pairs_rule_default(struct cb_pairs_rule *rule);

enum { CB_SLOW_BW = 1, CB_SLOW_LAT = 2 };

struct cb_pairs_verdict {
    int n;
    double ref_bw, sigma_bw, limit_bw;      /* bytes/s; sigma is a log-ratio */
    double ref_lat, sigma_lat, limit_lat;   /* us; sigma is a log-ratio */
    int *pair_slow;     /* [n * n] CB_SLOW_* bits */
    int *host_slow;     /* [n] 1 when the host is slow */
    int *host_pairs;    /* [n] measured pairs */
    int *host_nslow;    /* [n] slow pairs */
    int nslow_hosts, nslow_links;
};

/* Classify; *v is allocated here, free with cb_pairs_verdict_free. */
cb_status cb_pairs_classify(int n, const double *bw, const double *lat, const struct cb_pairs_rule *rule,
                            struct cb_pairs_verdict *v);
void cb_pairs_verdict_free(struct cb_pairs_verdict *v);
/* 1 when pair (i, j) is slow and neither end is a slow host. */
int cb_pairs_is_slow_link(const struct cb_pairs_verdict *v, int i, int j);
/* Median of vals[0..n) (mean of the middle two when n is even); sorts vals. */
double cb_pairs_median(double *vals, int n);

/* ---- port counters ----
 * Error and congestion counters of every RDMA port, from
 * ROOT/DEV/ports/PORT/counters/ and .../hw_counters/ (ROOT is
 * /sys/class/infiniband, or $COLLBENCH_IB_SYSFS). Only counters whose name
 * says error or congestion are kept (see cb_port_counter_kind). */
#define CB_PORT_COUNTERS_MAX 512
#define CB_PORT_DELTAS_MAX 48

enum cb_counter_kind { CB_COUNTER_NONE = 0, CB_COUNTER_ERROR, CB_COUNTER_CONGESTION };

struct cb_port_counter {
    char name[88];   /* "mlx5_0/1/symbol_error" */
    unsigned long long value;
};

struct cb_port_counters {
    int n;
    int truncated;   /* more counters (or deltas) than fit */
    struct cb_port_counter c[CB_PORT_COUNTERS_MAX];
};

/* The non-zero deltas of one rank's host, small enough to gather. */
struct cb_port_deltas {
    int n;
    int truncated;
    struct cb_port_counter c[CB_PORT_DELTAS_MAX];
};

enum cb_counter_kind cb_port_counter_kind(const char *counter);
const char *cb_port_counters_root(void);
/* Fills pc (n = 0 when there is no RDMA device). */
void cb_port_counters_read(const char *root, struct cb_port_counters *pc);
/* after - before for counters present in both, non-zero only. */
void cb_port_counters_delta(const struct cb_port_counters *before, const struct cb_port_counters *after,
                            struct cb_port_deltas *d);

/* ---- command line (src/tools/pairs_options.c) ---- */
struct cb_pairs_opts {
    size_t bytes;            /* -b: bytes each way per exchange */
    int iters, warmup;       /* -n, -w */
    int lat_iters;           /* --lat-iters */
    int passes;              /* --passes: the whole schedule this many times; medians */
    int quick;               /* --quick: ring neighbours only */
    const char *json_path;   /* -J */
    struct cb_pairs_rule rule;
    struct cb_options base;  /* transport, tcfg, timeout: the shared flags, parsed by options.c */
    int show_help;
};
/* On a bad command line: CB_EUSAGE after one line saying what was wrong and
 * what to do (when `report`). */
cb_status cb_pairs_parse(int argc, char **argv, struct cb_pairs_opts *p, int report);
void cb_pairs_usage(FILE *out);

/* ---- report (src/tools/pairs_report.c) ---- */
struct cb_pairs_report {
    int n, quick, nrounds;
    const char *transport;
    size_t bytes;
    int iters, warmup, lat_iters, passes;
    char (*hosts)[64];       /* [n] "hostname(addr)" */
    double *bw;              /* [n * n] bytes/s, the slower rank of the pair; < 0 not measured */
    double *lat;             /* [n * n] us, the slower rank; < 0 not measured */
    int *failed;             /* [n * n] cb_status of a pair whose measurement failed, else 0 */
    struct cb_pairs_rule rule;
    struct cb_pairs_verdict verdict;
    const struct cb_port_deltas *deltas;   /* [n]; empty for ranks that did not read */
};
cb_status cb_pairs_report_init(struct cb_pairs_report *r, int n);
void cb_pairs_report_free(struct cb_pairs_report *r);
/* The matrices, the reference, one line per slow host and slow link (or
 * "no outliers"), and the port counters that moved. */
void cb_pairs_print(FILE *out, const struct cb_pairs_report *r);
/* The same as JSON, written to a temporary file renamed over `path`. */
cb_status cb_pairs_write_json(const char *path, const struct cb_pairs_report *r);

#endif
