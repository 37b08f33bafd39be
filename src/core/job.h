/* Start-up and end of every MPI subcommand (the benchmark, pairs, tune):
 * what a rank learns from the bootstrap, what all ranks agree on before any
 * data moves, and how a failed run ends without leaving a rank waiting. */
#ifndef CB_JOB_H
#define CB_JOB_H

#include "bootstrap.h"
#include "comm.h"
#include "topo/topo.h"

struct cb_job_setup {
    const char *transport;   /* shm, tcp, verbs or auto */
    const char *topo_xml;    /* NULL: this machine's topology */
    int bind;                /* --bind */
};

/* Fill cfg's per-rank fields from the bootstrap; make every rank agree on
 * `checked` (this rank's own check of the command line against the job, an
 * error it has logged or CB_OK); share the job token; place and bind the rank
 * (topology); start the transport. Every rank returns the same status; on
 * success *comm is the communicator and *place this rank's placement. */
cb_status cb_job_start(struct cb_boot *boot, cb_status checked, const struct cb_job_setup *setup,
                       struct cb_transport_config *cfg, struct cb_topo_rank *place, struct cb_comm **comm);

/* Every rank learns the worst of the ranks' statuses, so all go on or stop together. */
cb_status cb_job_agree(struct cb_boot *boot, cb_status mine, int timeout_ms, const char *what);

/* After a failure that can leave a peer waiting (timeout, dead peer, system
 * error) abort the whole job; otherwise finalize MPI. */
void cb_job_end(struct cb_boot *boot, cb_status st);

#endif
