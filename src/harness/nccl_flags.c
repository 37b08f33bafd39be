#include "harness/nccl_flags.h"
#include "harness/options.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void cb_nccl_flags_defaults(struct cb_nccl_flags *f)
{
    memset(f, 0, sizeof *f);
    f->nthreads = f->ngpus = 1;
    f->device_ctas = 16;
    f->format = CB_FORMAT_NATIVE;
}

int cb_nccl_flag_owned(int ch)
{
    return ch == CB_NCCL_OPT_FORMAT || (ch > 0 && ch < 128 && strchr("tgpyGCSRxDVMK", ch));
}

/* A flag whose only value with a meaning here is `only`. */
static int only_value(const char *flag, const char *arg, int only, int *out, const char *why, int report)
{
    if (cb_int_arg(flag, arg, 0, 1 << 20, out, report))
        return -1;
    if (*out != only)
        return cb_usage_error(report, "%s %s has no meaning for host memory: %s; give %s %d or leave it out",
                              flag, arg, why, flag, only);
    return 0;
}

static int parse_format(const char *arg, struct cb_nccl_flags *f, int report)
{
    f->format_given = 1;
    if (strcmp(arg, "nccl-tests") == 0)
        f->format = CB_FORMAT_NCCL;
    else if (strcmp(arg, "native") == 0)
        f->format = CB_FORMAT_NATIVE;
    else
        return cb_usage_error(report, "unknown --format '%s': use nccl-tests (its 13 columns and JSON) or "
                              "native (collbench's columns)", arg);
    return 0;
}

int cb_nccl_flag_parse(int ch, const char *arg, struct cb_nccl_flags *f, int report)
{
    char flag[3] = {'-', (char)ch, 0};
    switch (ch) {
    case 't':
        return only_value(flag, arg, 1, &f->nthreads, "collbench runs one thread per rank; for more ranks "
                          "start more processes (mpirun -np)", report);
    case 'g':
        return only_value(flag, arg, 1, &f->ngpus, "each rank drives its own host buffers, there are no GPUs "
                          "to share a process; for more ranks start more processes (mpirun -np)", report);
    case 'p': return cb_int_arg(flag, arg, 0, 1, &f->parallel_init, report);
    case 'y': return cb_int_arg(flag, arg, 0, 1, &f->stream_null, report);
    case 'G': return cb_int_arg(flag, arg, 0, 1000000, &f->graph, report);
    case 'C': return cb_int_arg(flag, arg, 0, 1, &f->cputime, report);
    case 'S': return cb_int_arg(flag, arg, 0, 1, &f->timestamps, report);
    case 'R': return cb_int_arg(flag, arg, 0, 2, &f->local_register, report);
    case 'x':
        return only_value(flag, arg, 0, &f->cta_policy, "there are no CTAs; 0 is NCCL's default policy", report);
    case 'D':
        return only_value(flag, arg, 0, &f->device_impl, "there are no device kernels; 0 is the host-launched "
                          "implementation, which is what collbench runs", report);
    case 'V': return cb_int_arg(flag, arg, 1, 127, &f->device_ctas, report);
    case 'M': return cb_int_arg(flag, arg, 0, 1, &f->memory_report, report);
    case 'K': return cb_int_arg(flag, arg, 0, 100000000, &f->per_iter_skip, report);
    case CB_NCCL_OPT_FORMAT: return parse_format(arg, f, report);
    }
    return cb_usage_error(report, "unknown option; see --help");
}

int cb_nccl_binary_name(const char *base)
{
    size_t n = strlen(base);
    return (n > 5 && strcmp(base + n - 5, "_perf") == 0) || (n > 9 && strcmp(base + n - 9, "_perf_mpi") == 0);
}

int cb_nccl_flags_settle(struct cb_nccl_flags *f, const char *argv0, int iters, int *per_iter, int report)
{
    char prog[256];
    snprintf(prog, sizeof prog, "%s", argv0 ? argv0 : "");
    if (!f->format_given && cb_nccl_binary_name(basename(prog)))
        f->format = CB_FORMAT_NCCL;
    if (!f->per_iter_given)
        *per_iter = f->format == CB_FORMAT_NCCL ? 0 : 1;
    /* nccl-tests: per-iteration timing cannot see inside a CUDA graph, -G turns it off */
    if (f->graph > 0)
        *per_iter = 0;
    if (*per_iter && f->per_iter_skip >= iters)
        return cb_usage_error(report, "-K %d leaves none of the -n %d iterations for the per-iteration "
                              "statistics: give -K below -n", f->per_iter_skip, iters);
    return 0;
}

int cb_nccl_parse_size(const char *s, size_t *out)
{
    char *end;
    if (!s || !(isdigit((unsigned char)*s) || *s == '.'))
        return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v) || v < 0)
        return -1;
    double unit = 1;
    switch (*end) {
    case 'K': case 'k': unit = 1024.0; end++; break;
    case 'M': case 'm': unit = 1024.0 * 1024; end++; break;
    case 'G': case 'g': unit = 1024.0 * 1024 * 1024; end++; break;
    default: break;
    }
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end || v * unit >= 18446744073709551616.0)   /* 2^64: beyond size_t */
        return -1;
    *out = (size_t)(v * unit);
    return 0;
}

/* nccl-tests names itself after its binary; under collbench's own name the
 * collective's binary name stands in, so the closing line reads the same. */
static const char *program_name(const struct cb_options *o)
{
    static const char *const names[CB_NCOLLS] = {"all_reduce_perf", "all_gather_perf", "reduce_scatter_perf",
        "alltoall_perf", "broadcast_perf", "reduce_perf", "sendrecv_perf"};
    const char *slash = o->argv0 ? strrchr(o->argv0, '/') : NULL;
    const char *base = slash ? slash + 1 : o->argv0;
    if (base && cb_nccl_binary_name(base))
        return base;
    return (unsigned)o->coll < CB_NCOLLS ? names[o->coll] : "collbench";
}

struct cb_nccl_view cb_options_nccl_view(const struct cb_options *o)
{
    return (struct cb_nccl_view){.per_iter = o->per_iter, .timestamps = o->nccl.timestamps,
                                 .cputime = o->nccl.cputime, .graph = o->nccl.graph,
                                 .parallel_init = o->nccl.parallel_init, .iters = o->iters,
                                 .per_iter_skip = o->nccl.per_iter_skip,
                                 .program = program_name(o)};
}
