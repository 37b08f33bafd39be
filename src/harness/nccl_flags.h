/* nccl-tests' flags that exist for GPUs (threads, GPUs per thread, CUDA
 * graphs, streams, CTAs, buffer registration, memory report), and the
 * output format. Each is accepted with its meaning where host memory gives
 * it one, and refused, saying why, where it has none (docs/manual.md,
 * "nccl-tests compatibility"). Kept apart from options.c so the common
 * flags stay readable. */
#ifndef CB_NCCL_FLAGS_H
#define CB_NCCL_FLAGS_H

#include <stddef.h>
#include "report/report.h"

enum cb_format { CB_FORMAT_NATIVE, CB_FORMAT_NCCL };

struct cb_nccl_flags {
    int nthreads, ngpus;         /* -t, -g: only 1 */
    int parallel_init;           /* -p 0/1: nothing to parallelise with one thread */
    int stream_null;             /* -y 0/1: no CUDA streams */
    int graph;                   /* -G N: each timed loop is replayed N times, as a graph would be */
    int cputime;                 /* -C 0/1: label the time column cputime (collbench's time is host time) */
    int timestamps;              /* -S 0/1: a timestamp column in the nccl-tests table */
    int local_register;          /* -R 0/1/2: collbench's transports always register or map buffers */
    int cta_policy;              /* -x: only 0, NCCL's default policy */
    int device_impl;             /* -D: only 0, the host-launched implementation */
    int device_ctas;             /* -V 1..127: sizes -D's kernels only */
    int memory_report;           /* -M 0/1: no GPU memory to report */
    int per_iter_skip;           /* -K N: per-iteration statistics leave out the first N iterations */
    int per_iter_given;          /* -I or --per_iter_timing was on the command line */
    int format_given;            /* --format was on the command line */
    enum cb_format format;
};

/* Appended to the option string and the long option table of options.c. */
#define CB_NCCL_SHORT_OPTIONS "t:g:p:y:G:C:S:R:x:D:V:M:K:"
#define CB_NCCL_OPT_FORMAT 2000
#define CB_NCCL_LONG_OPTIONS                                                                          \
    {"nthreads", required_argument, 0, 't'}, {"ngpus", required_argument, 0, 'g'},                    \
    {"parallel_init", required_argument, 0, 'p'}, {"stream_null", required_argument, 0, 'y'},         \
    {"cudagraph", required_argument, 0, 'G'}, {"report_cputime", required_argument, 0, 'C'},          \
    {"report_timestamps", required_argument, 0, 'S'}, {"local_register", required_argument, 0, 'R'},  \
    {"cta_policy", required_argument, 0, 'x'}, {"device_implementation", required_argument, 0, 'D'},  \
    {"device_cta_count", required_argument, 0, 'V'}, {"memory", required_argument, 0, 'M'},           \
    {"memory_report", required_argument, 0, 'M'}, {"per_iter_skip", required_argument, 0, 'K'},       \
    {"per_iter_timing", required_argument, 0, 'I'}, {"format", required_argument, 0, CB_NCCL_OPT_FORMAT}

void cb_nccl_flags_defaults(struct cb_nccl_flags *f);
/* Whether `ch` (a getopt_long result) is one of the flags above. */
int cb_nccl_flag_owned(int ch);
/* Parse one of them: 0, or -1 after logging (when `report`) what was wrong. */
int cb_nccl_flag_parse(int ch, const char *arg, struct cb_nccl_flags *f, int report);
/* After the command line: the format (nccl-tests' when argv[0] is one of its
 * binary names, unless --format says otherwise), -I's default (0 in
 * nccl-tests' format, 1 in ours), -G and -K against -I and -n. */
int cb_nccl_flags_settle(struct cb_nccl_flags *f, const char *argv0, int iters, int *per_iter, int report);
/* nccl-tests' size forms that collbench's own parser does not take: a
 * fraction with a binary suffix ("0.5K", "1.5M"), truncated to bytes as
 * nccl-tests does. 0 on success. */
int cb_nccl_parse_size(const char *s, size_t *out);
/* Whether a program name is one of nccl-tests' binaries: all_reduce_perf,
 * and the MPI builds' all_reduce_perf_mpi. */
int cb_nccl_binary_name(const char *base);

struct cb_options;
/* The flags' values nccl-tests' table and JSON show; `program` points into argv[0] or a static name. */
struct cb_nccl_view cb_options_nccl_view(const struct cb_options *o);

#endif
