/* What a run measured, and the three ways to print it: the nccl-tests table
 * (stdout), JSON (-J) and CSV (--csv). Only rank 0 reports. */
#ifndef CB_REPORT_H
#define CB_REPORT_H

#include <stdio.h>
#include <stddef.h>
#include "coll/coll.h"
#include "transport/transport.h"
#include "stats.h"
#include "core/wire.h"

/* One placement (out-of-place or in-place) of one size. */
struct cb_result_half {
    int ran;                 /* 0: not run (e.g. -I only, or sendrecv in-place) */
    double time_us;          /* throughput: one clock around -n iterations / (n*m), combined over ranks by -a */
    double algbw, busbw;     /* GB/s, GB = 1e9 bytes */
    long long nwrong;        /* wrong elements summed over ranks; -1 = not checked */
    int have_iter;           /* per-iteration pass ran (-I 1) */
    struct cb_pct iter;      /* us, over the per-iteration maxima over ranks (after the first `skip`) */
    size_t skip;             /* -K: iterations the statistics leave out */
    int slowest_rank, slowest_count;
    size_t niters;
    double *iter_max_us;     /* [niters] */
    double *per_rank_us;     /* [nranks * niters], rank-major */
};

struct cb_result {
    cb_coll coll;
    size_t bytes;            /* the size column: see docs/measurement.md */
    size_t count;            /* the count column (elements) */
    size_t param_count;      /* the count each rank passes: nccl-tests' count column */
    cb_type type;
    cb_op op;
    int root;                /* -1 when the collective has no root */
    cb_algo algo;            /* the algorithm that ran */
    cb_algo asked;           /* the --algo entry: auto, or the algorithm itself */
    int compared;            /* one of several --algo entries: the row says which */
    struct cb_auto_trial trial;  /* how auto chose it */
    struct cb_result_half oop, ip;
};

/* What nccl-tests' format (the *_perf names, --format nccl-tests) needs
 * beyond the results: its flags' values, for the header and the columns. */
struct cb_nccl_view {
    int per_iter;            /* -I: the i_min i_max i_p99 i_cv% columns */
    int timestamps;          /* -S: a timestamp column */
    int cputime;             /* -C: the time column is labelled cputime */
    int graph;               /* -G */
    int parallel_init;       /* -p */
    int iters;               /* -n, JSON's actual_iterations */
    int per_iter_skip;       /* -K */
    const char *program;     /* "all_reduce_perf": the header's and the closing line's name */
};

struct cb_rank_info {
    int rank;
    char host[64];
    int pid;
    struct cb_props props;   /* transport properties of this rank */
    struct cb_conn_use conns;   /* connections made before the header, their buffers, set-up time */
    size_t rss_bytes, pinned_bytes;   /* VmRSS and VmPin then */
};

struct cb_run_info {
    const char *version;
    int argc;
    char **argv;
    const char *collective;  /* name of the collective (or "all") */
    const char *transport;   /* the transport that runs */
    int nranks;
    struct cb_rank_info *ranks;  /* [nranks] */
    /* options in force */
    size_t min_bytes, max_bytes, step_bytes;
    double step_factor;      /* 0 = linear step */
    int iters, warmup, agg_iters, check_iters, cycles, average, blocking, unalign, per_iter;
    int timeout_s;
    size_t slot_bytes;
    int nslots;
    const char *algo;
    char start_time[32];     /* ISO 8601 UTC */
    long long start_epoch;   /* the same, seconds since 1970 */
    struct cb_nccl_view nccl;
};

struct cb_summary {
    long long total_wrong;
    int failed_checks;       /* placements with wrong elements: nccl-tests' "Out of bounds values" */
    double avg_busbw;        /* mean over every printed busbw (oop and ip), as nccl-tests does */
    double peak_busbw;
    size_t peak_bytes;
    double largest_busbw;    /* out-of-place busbw at the largest size */
    size_t largest_bytes;
    long long nresults;      /* -N 0 runs for hours */
    /* What moved on the wire, per rank (core/wire.h); NULL: not read. */
    const struct cb_wire_moved *wire;
    int nwire;
};

/* Fold one result into the summary (call for every printed row). */
void cb_summary_add(struct cb_summary *s, const struct cb_result *r);

/* -N: how many cycles completed, and the summaries of the most recent ones
 * in a rolling window, so -N 0 runs for hours in bounded memory and output. */
#define CB_CYCLE_WINDOW 256
struct cb_cycle {
    long long index;         /* 0 = the first cycle */
    char end_time[32];       /* ISO 8601 UTC */
    struct cb_summary s;     /* over this cycle's rows */
};

struct cb_cycles {
    long long done;
    int n, next;             /* recent[] holds n entries; next is where the next one goes */
    struct cb_cycle recent[CB_CYCLE_WINDOW];
};

/* Record one completed cycle (dropping the oldest when the window is full). */
void cb_cycles_add(struct cb_cycles *c, const struct cb_summary *s);
/* The i-th oldest cycle in the window, i < c->n. */
const struct cb_cycle *cb_cycles_at(const struct cb_cycles *c, int i);
/* Now as ISO 8601 UTC, "" if the clock cannot say. */
void cb_utc_now(char *buf, size_t cap);

/* The table. */
void cb_table_header(FILE *out, const struct cb_run_info *info);
void cb_table_row(FILE *out, const struct cb_result *r, int per_iter);
/* The algorithm column: what ran; in a comparison, auto's row says "auto>ring". */
const char *cb_result_algo_label(const struct cb_result *r, char *buf, size_t len);
/* min_bw: NCCL_TESTS_MIN_BW (< 0: not set), judged as nccl-tests does. */
void cb_table_footer(FILE *out, const struct cb_summary *s, double min_bw);

/* nccl-tests' format: its header lines, its 13 columns (21 with -I), its
 * closing lines; min_bw is NCCL_TESTS_MIN_BW (< 0: not set). */
void cb_nccl_header(FILE *out, const struct cb_run_info *info);
void cb_nccl_row(FILE *out, const struct cb_result *r, const struct cb_nccl_view *v);
void cb_nccl_footer(FILE *out, const struct cb_summary *s, double min_bw, const char *program);
/* The header's device number: the rank's index among the ranks of its host. */
int cb_nccl_device(const struct cb_run_info *info, int r);
/* The host name as nccl-tests prints it: up to the first dot. */
void cb_nccl_hostname(const char *host, char *buf, size_t cap);
/* nccl-tests' redop column: "none" for the collectives it runs without an op. */
const char *cb_nccl_redop(const struct cb_result *r);
/* nccl-tests' verdict on the average bus bandwidth: below 0.9 x NCCL_TESTS_MIN_BW fails. */
int cb_min_bw_failed(const struct cb_summary *s, double min_bw);
/* NCCL_TESTS_MIN_BW from the environment, -1 when not set. */
double cb_min_bw_env(void);
/* nccl-tests' statistics of -I: over iter_max_us after `skip`. */
struct cb_nccl_iter_stats {
    double min, max, avg, p50, p95, p99, stdev, cv_pct;
};
void cb_nccl_iter_stats(const struct cb_result_half *h, struct cb_nccl_iter_stats *st);

/* nccl-tests' -J layout: a path that exists already is kept and the file
 * goes to path.0, path.1, ... as nccl-tests does; the name is chosen at open
 * and written whole (temporary file and rename) at finish. */
char *cb_nccl_json_pick(const char *path);   /* malloc'd; NULL when out of memory */
cb_status cb_nccl_json_write(const char *path, const struct cb_run_info *info, const struct cb_result *results,
                             int n, const struct cb_summary *s, double min_bw);

/* JSON and CSV writers, through outfile.h: open checks the path (so one that
 * cannot be written, or is not a regular file, fails before the run,
 * CB_EUSAGE, logged) and starts a temporary file; finish renames it over
 * `path` (CB_ESYS, logged, when a write fails); abort removes it, so a
 * failed run never leaves a partial file. */
struct cb_json;
cb_status cb_json_open(const char *path, struct cb_json **out);
void cb_json_begin(struct cb_json *j, const struct cb_run_info *info);
void cb_json_result(struct cb_json *j, const struct cb_result *r, int nranks);
/* `cycles` may be NULL (no "cycles" object). */
cb_status cb_json_finish(struct cb_json *j, const struct cb_summary *s, const struct cb_cycles *cycles);
void cb_json_abort(struct cb_json *j);

struct cb_csv;
cb_status cb_csv_open(const char *path, struct cb_csv **out);
/* The run whose metadata ends every row; `info` must outlive the writer. */
void cb_csv_begin(struct cb_csv *c, const struct cb_run_info *info);
void cb_csv_result(struct cb_csv *c, const struct cb_result *r);
cb_status cb_csv_finish(struct cb_csv *c);
void cb_csv_abort(struct cb_csv *c);

#endif
