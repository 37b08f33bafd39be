/* The bench harness: the sweep over types, ops and sizes; warm-up, timing
 * both ways (throughput and per iteration), checking, and handing every
 * figure to the reporters (rank 0). */
#ifndef CB_HARNESS_H
#define CB_HARNESS_H

#include "core/comm.h"
#include "options.h"
#include "report/report.h"

struct cb_sweep {
    struct cb_result *results;   /* rank 0 only */
    int nresults, cap;
    struct cb_summary summary;
    long long wrong;             /* total wrong elements, every rank knows */
    struct cb_wire_moved *wire;  /* rank 0: [nranks], what moved on each rank's links since the start */
    int wire_errors;             /* every rank knows: an error counter moved or a port event was seen */
};

/* Run the whole sweep (-N cycles). Rows go to `table` (rank 0) as they are
 * measured; after every cycle the wire counters are read on every rank
 * (sweep->wire, summary.wire) and `on_cycle` is called on rank 0. */
cb_status cb_harness_sweep(struct cb_comm *c, const struct cb_options *o, FILE *table,
                           struct cb_sweep *sweep,
                           void (*on_cycle)(const struct cb_sweep *sweep, void *arg), void *arg);
void cb_harness_free(struct cb_sweep *sweep);

#endif
