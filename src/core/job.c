#include "job.h"

#include <sched.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <unistd.h>

/* CPUs the ranks of this machine may share: the affinity mask when the
 * launcher left the rank several CPUs (e.g. a Slurm cpuset), the machine's
 * online CPUs when it bound the rank to one core (each rank then has its own). */
static int usable_cpus(void)
{
    cpu_set_t set;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (sched_getaffinity(0, sizeof set, &set) != 0 || CPU_COUNT(&set) == 1)
        return (int)online;
    return CPU_COUNT(&set);
}

static void describe_rank(struct cb_boot *boot, struct cb_transport_config *t)
{
    t->rank = cb_boot_rank(boot);
    t->nranks = cb_boot_size(boot);
    t->local_rank = cb_boot_local_rank(boot);
    t->local_size = cb_boot_local_size(boot);
    t->oversubscribed = t->local_size > usable_cpus();
    if (t->oversubscribed)
        prctl(PR_SET_TIMERSLACK, 1UL);   /* naps of waiting ranks stay short */
    snprintf(t->host, sizeof t->host, "%s", cb_boot_host(boot, t->rank));
}

cb_status cb_job_agree(struct cb_boot *b, cb_status mine, int timeout_ms, const char *what)
{
    double worst = (double)mine;
    cb_status st = cb_boot_allreduce_max(b, &worst, 1, timeout_ms, what);
    return st != CB_OK ? st : (cb_status)(int)worst;
}

static cb_status make_token(struct cb_boot *b, struct cb_transport_config *t)
{
    if (cb_boot_rank(b) == 0 && getrandom(t->token, CB_TOKEN_BYTES, 0) != CB_TOKEN_BYTES) {
        cb_log_error("getrandom failed: cannot make the job's connection token");
        return CB_ESYS;
    }
    return cb_boot_bcast(b, t->token, CB_TOKEN_BYTES, t->timeout_ms, "sharing the job token");
}

cb_status cb_job_start(struct cb_boot *boot, cb_status checked, const struct cb_job_setup *setup,
                       struct cb_transport_config *cfg, struct cb_topo_rank *place, struct cb_comm **comm)
{
    describe_rank(boot, cfg);
    cb_status st = cb_job_agree(boot, checked, cfg->timeout_ms, "agreeing on start-up");
    if (st == CB_OK)
        st = make_token(boot, cfg);
    if (st == CB_OK)
        st = cb_job_agree(boot, cb_topo_setup(boot, setup->topo_xml, setup->bind, cfg, place), cfg->timeout_ms,
                   "placing ranks");
    if (st == CB_OK)
        st = cb_job_agree(boot, cb_comm_init(boot, setup->transport, cfg, comm), cfg->timeout_ms,
                   "starting the transport");
    return st;
}

void cb_job_end(struct cb_boot *boot, cb_status st)
{
    if (st == CB_ETIMEOUT || st == CB_EPEER || st == CB_ESYS || st == CB_ENOMEM || st == CB_EINTERNAL) {
        fflush(stdout);
        cb_boot_abort(boot, cb_status_exit_code(st));
    }
    cb_boot_finalize(boot);
}
