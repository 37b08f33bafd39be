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
    struct cb_pct iter;      /* us, over the per-iteration maxima over ranks */
    int slowest_rank, slowest_count;
    size_t niters;
    double *iter_max_us;     /* [niters] */
    double *per_rank_us;     /* [nranks * niters], rank-major */
};

struct cb_result {
    cb_coll coll;
    size_t bytes;            /* the size column: see docs/measurement.md */
    size_t count;            /* the count column (elements) */
    cb_type type;
    cb_op op;
    int root;                /* -1 when the collective has no root */
    cb_algo algo;            /* the algorithm that ran */
    cb_algo asked;           /* the --algo entry: auto, or the algorithm itself */
    int compared;            /* one of several --algo entries: the row says which */
    struct cb_auto_trial trial;  /* how auto chose it */
    struct cb_result_half oop, ip;
};

struct cb_rank_info {
    int rank;
    char host[64];
    int pid;
    struct cb_props props;   /* transport properties of this rank */
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
};

struct cb_summary {
    long long total_wrong;
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
void cb_table_footer(FILE *out, const struct cb_summary *s);

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
void cb_csv_result(struct cb_csv *c, const struct cb_result *r);
cb_status cb_csv_finish(struct cb_csv *c);
void cb_csv_abort(struct cb_csv *c);

#endif
