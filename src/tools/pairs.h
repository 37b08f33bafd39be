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
#include "core/wire.h"

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

/* ---- rails ----
 * With k ranks on each of h >= 2 hosts (memory domains), local rank i of a
 * host (its i-th rank in rank order) is rail i: it meets only local rank i
 * of the other hosts. The schedule above runs over the h hosts, and in each
 * round every rail's pair of the two hosts runs at once; ranks of one host
 * never meet. All ranks on one host (one machine's loopback), or one rank
 * per host, is k = 1 over n "hosts": every rank meets every rank. */
struct cb_pairs_rails {
    int nranks, nhosts, per_host;   /* per_host 0: the hosts hold different rank counts */
    int *host;      /* [nranks] the rank's host, hosts numbered in order of their first rank */
    int *local;     /* [nranks] its place among its host's ranks */
    int *count;     /* [nhosts] ranks on each host */
    int *first;     /* [nhosts] each host's first rank */
    int *rank_at;   /* [nhosts * per_host] host h's local rank i */
};
/* host[r]: rank r's host index, hosts numbered 0, 1, ... in order of their
 * first rank (cb_boot_hosts). CB_EUSAGE, not logged, when hosts differ in
 * rank count (count and first say which); CB_EINTERNAL (logged) for indices
 * out of that order; CB_ENOMEM. Free with cb_pairs_rails_free either way. */
cb_status cb_pairs_rails_init(int nranks, const int *host, struct cb_pairs_rails *rl);
void cb_pairs_rails_free(struct cb_pairs_rails *rl);
int cb_pairs_rails_nrounds(const struct cb_pairs_rails *rl, int quick);
/* The rank `rank` meets in `round`, or -1 when its host idles. */
int cb_pairs_rails_partner(const struct cb_pairs_rails *rl, int quick, int round, int rank);

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
    double max_spread;   /* a pair's bandwidth over the passes, max / min: default 2 (pairs_health.c) */
    double max_retrans_pct;   /* TCP segments retransmitted, %: default 0.25 (pairs_health.c) */
    long long max_rdma_retrans;   /* RDMA retransmission counters, sum: default 20 (pairs_health.c) */
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

/* ---- between passes and on the wire (src/tools/pairs_health.c) ----
 * Intermittent: a pair whose bandwidth over the passes (each pass's figure
 * of the slower rank) varies by more than max_spread (max / min) is flagged,
 * even when its median looks fine.
 * Lossy: a pair whose two hosts retransmitted more than max_retrans_pct % of
 * the TCP segments they sent during the rounds in which they met (and at
 * least CB_MIN_RETRANS segments) is flagged. Each host's counters are its
 * own, and in a round a host talks to one partner, so the round's
 * retransmissions belong to that pair. Retransmissions the receiver D-SACKed
 * as duplicates are not counted (netdev_counters.h: a loaded host's spurious
 * timeouts, not loss).
 * The transport's RDMA port (verbs) is judged the same way by its
 * retransmission counters (cb_wire_is_retrans: sequence errors, retries,
 * ACK timeouts, duplicate requests): a pair is lossy when those of its two
 * hosts moved, summed over the rounds in which they met, more than
 * max_rdma_retrans times. A count, not a share: the RDMA counters say
 * nothing about the packets that went through.
 * For each kind, as for slow pairs: a host is named when it has at least 2
 * measured pairs and more than half of them are flagged; a link when it is
 * flagged and neither end is a named host. */
#define CB_MIN_RETRANS 10

/* The RDMA retransmission counters that moved, in one round of one rank,
 * or over all the rounds of one pair (both ends). Fixed-size: ranks gather it. */
#define CB_PAIRS_RDMA_MAX 6
struct cb_pairs_rdma_counter {
    int rank;             /* the host's rank (set when a pair's are summed) */
    char link[32];        /* "rxe0:1" */
    char name[48];        /* "out_of_seq_request" */
    long long delta;
};
struct cb_pairs_rdma {
    long long total;      /* sum of every retransmission counter's delta; -1: no RDMA port read */
    int n, truncated;     /* counters in c; more moved than fit (still in total) */
    struct cb_pairs_rdma_counter c[CB_PAIRS_RDMA_MAX];
};

struct cb_pairs_flags {
    int *pair;            /* [n * n] 1 = flagged */
    int *host;            /* [n] 1 = named host */
    int *host_pairs;      /* [n] measured pairs */
    int *host_nflagged;   /* [n] flagged pairs */
    int nhosts, nlinks;
};

struct cb_pairs_health {
    double *spread;        /* [n * n] max / min bandwidth over the passes; NAN: fewer than 2 measured */
    double *retrans_pct;   /* [n * n] % of the pair's sent TCP segments retransmitted; NAN: unknown */
    int *rdma_lossy;       /* [n * n] 1: lossy by the RDMA retransmission counters */
    struct cb_pairs_flags intermittent, lossy;
};

/* bw_pass: [npasses][n * n] bytes/s, < 0 not measured; retrans and outsegs:
 * [n * n] summed over both ends, < 0 unknown; rdma: [n * n] (NULL: none).
 * *h allocated here. */
cb_status cb_pairs_health_check(int n, int npasses, const double *bw_pass, const long long *retrans,
                                const long long *outsegs, const struct cb_pairs_rdma *rdma,
                                const struct cb_pairs_rule *rule, struct cb_pairs_health *h);
void cb_pairs_health_free(struct cb_pairs_health *h);
/* 1 when pair (i, j) is flagged and neither end is a named host. */
int cb_pairs_flags_is_link(const struct cb_pairs_flags *f, int n, int i, int j);

/* A carrier change of a rank's network device, seen between two samples. */
struct cb_pairs_flap {
    int rank, pass, round, partner;   /* partner -1: idle in that round */
    char ifname[16];
    long long before, after;          /* carrier_changes */
    double from, to;                  /* wall clock, s */
};

/* ---- port counters ----
 * Error and congestion counters of every RDMA port, from
 * ROOT/DEV/ports/PORT/counters/ and .../hw_counters/ (ROOT is
 * /sys/class/infiniband, or $COLLBENCH_IB_SYSFS), read through core/wire.h:
 * only counters whose name says error or congestion are kept (cb_wire_kind). */
#define CB_PORT_COUNTERS_MAX 512
#define CB_PORT_DELTAS_MAX 48

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

/* ---- RDMA retransmission counters per round (pairs_counters.c) ----
 * A rank samples the port its transport uses (cb_wire_read with the
 * transport's device and port) before the first round and after each. */
/* The scope: the transport's RDMA device and port only (rdma_dev "" when
 * it uses none). */
void cb_pairs_rdma_scope(const struct cb_props *props, struct cb_wire_scope *scope);
/* d = the retransmission counters that moved from before to after; total
 * -1 when either reading is empty (no RDMA port). */
void cb_pairs_rdma_delta(const struct cb_wire_reading *before, const struct cb_wire_reading *after,
                         struct cb_pairs_rdma *d);
/* sum += add, whose counters are tagged with `rank`; a counter of the same
 * rank, link and name is added up. add->total < 0 leaves sum as it is. */
void cb_pairs_rdma_add(struct cb_pairs_rdma *sum, const struct cb_pairs_rdma *add, int rank);
/* One round's record of `rank`, which met `partner` (-1: idle, nothing
 * added), into the pair's entries pairs[rank * n + partner] and
 * pairs[partner * n + rank]. */
void cb_pairs_rdma_to_pair(int n, int rank, int partner, const struct cb_pairs_rdma *round,
                           struct cb_pairs_rdma *pairs);

const char *cb_port_counters_root(void);
/* Fills pc (n = 0 when there is no RDMA device). */
void cb_port_counters_read(struct cb_port_counters *pc);
/* after - before for counters present in both, non-zero only. */
void cb_port_counters_delta(const struct cb_port_counters *before, const struct cb_port_counters *after,
                            struct cb_port_deltas *d);

/* ---- command line (src/tools/pairs_options.c) ---- */
struct cb_pairs_opts {
    size_t bytes;            /* -b: bytes each way per exchange */
    int iters, warmup;       /* -n, -w */
    int lat_iters;           /* --lat-iters */
    int passes;              /* --passes: the whole schedule this many times; medians */
    double pass_interval;    /* --pass-interval: seconds from one pass's start to the next's, at least */
    int quick;               /* --quick: ring neighbours only */
    const char *json_path;   /* -J */
    struct cb_pairs_rule rule;
    struct cb_options base;  /* transport, tcfg, timeout: the shared flags, parsed by options.c */
    int show_help;
};
/* On a bad command line: CB_EUSAGE after one line saying what was wrong and
 * what to do (when `report`). */
cb_status cb_pairs_parse(int argc, char **argv, struct cb_pairs_opts *p, int report);
/* After cb_boot_init: the ranks compare their parse (cb_agree): a bad
 * command line on any rank is printed once, options that must be the same
 * and differ are named, and every rank returns CB_EUSAGE. */
struct cb_boot;
cb_status cb_pairs_agree(struct cb_boot *b, int argc, char **argv, const struct cb_pairs_opts *p, cb_status parsed);
void cb_pairs_usage(FILE *out);

/* ---- report (src/tools/pairs_report.c) ---- */
/* A rank's link, gathered: the device watched for carrier changes and the rail. */
struct cb_pairs_link {
    char ifname[16];   /* "" none */
    char rail[32];     /* "rxe1:1", tcp's interface, or "-" */
};

struct cb_pairs_report {
    int n, quick, nrounds;
    const char *transport;
    size_t bytes;
    int iters, warmup, lat_iters, passes;
    char (*hosts)[64];       /* [n] "hostname(addr)" */
    const struct cb_pairs_rails *rails;   /* host and local rank of each rank; NULL: one rank per host */
    const struct cb_pairs_link *links;    /* [n] each rank's rail; NULL: none known */
    double *bw;              /* [n * n] bytes/s, the slower rank of the pair; < 0 not measured */
    double *lat;             /* [n * n] us, the slower rank; < 0 not measured */
    int *failed;             /* [n * n] cb_status of a pair whose measurement failed, else 0 */
    double *bw_pass;         /* [passes][n * n] each pass's bw, as bw; < 0 not measured or failed */
    double *lat_pass;        /* [passes][n * n] each pass's latency, as lat */
    long long *retrans;      /* [n * n] needed TCP retransmissions of both hosts while they met; < 0 unknown */
    long long *outsegs;      /* [n * n] TCP segments they sent meanwhile; < 0 unknown */
    struct cb_pairs_rdma *rdma;   /* [n * n] their RDMA retransmission counters meanwhile; total < 0 unknown */
    struct cb_pairs_flap *flaps;   /* [nflaps] */
    int nflaps;
    struct cb_pairs_rule rule;
    struct cb_pairs_verdict verdict;
    struct cb_pairs_health health;
    const struct cb_port_deltas *deltas;   /* [n]; empty for ranks that did not read */
};
cb_status cb_pairs_report_init(struct cb_pairs_report *r, int n, int passes);
/* Something named: a slow, lossy or intermittent host or link, a failed pair, a flap. */
int cb_pairs_report_named(const struct cb_pairs_report *r);
void cb_pairs_report_free(struct cb_pairs_report *r);
/* The matrices, the reference, one line per slow, lossy or intermittent
 * host and link and per flap (or "no outliers"), and the port counters
 * that moved. */
void cb_pairs_print(FILE *out, const struct cb_pairs_report *r);
/* The same as JSON, through report/outfile (whole or not at all). */
cb_status cb_pairs_write_json(const char *path, const struct cb_pairs_report *r);
/* Before the run: CB_EUSAGE, logged, when -J's path cannot be written. */
cb_status cb_pairs_check_json(const char *path);

#endif
