#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

const char *cb_status_str(cb_status st)
{
    switch (st) {
    case CB_OK: return "ok";
    case CB_EUSAGE: return "usage error";
    case CB_EDEVICE: return "device error";
    case CB_ENOMEM: return "out of memory";
    case CB_ESYS: return "system error";
    case CB_ETIMEOUT: return "timeout";
    case CB_EPEER: return "peer failure";
    case CB_EDATA: return "wrong results";
    case CB_EINTERNAL: return "internal error";
    case CB_ESTOPPED: return "stopped by a signal";
    }
    return "unknown status";
}

int cb_status_exit_code(cb_status st)
{
    if (st == CB_OK)
        return 0;
    return (st == CB_EUSAGE || st == CB_EDEVICE) ? 2 : 1;
}

/* The rank comes from the launcher's environment, so logging needs no state. */
static const char *launcher_rank(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return v;
    }
    return NULL;
}

static void vlog(const char *level, const char *fmt, va_list ap)
{
    char host[64] = "";
    char line[1024];
    const char *rank = launcher_rank();
    gethostname(host, sizeof host - 1);
    int n = rank ? snprintf(line, sizeof line, "collbench[rank %s@%s]: %s: ", rank, host, level)
                 : snprintf(line, sizeof line, "collbench: %s: ", level);
    if (n < 0 || (size_t)n >= sizeof line)
        n = 0;
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    /* one write per line so lines of different ranks do not interleave */
    fprintf(stderr, "%s\n", line);
}

void cb_log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("error", fmt, ap);
    va_end(ap);
}

void cb_log_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("warning", fmt, ap);
    va_end(ap);
}

void cb_log_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("info", fmt, ap);
    va_end(ap);
}
