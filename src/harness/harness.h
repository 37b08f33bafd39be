/* The bench harness: the sweep over types, ops and sizes; warm-up, timing
 * both ways (throughput and per iteration), checking, and handing every
 * figure to the reporters (rank 0). */
#ifndef CB_HARNESS_H
#define CB_HARNESS_H

#include "core/comm.h"
#include "options.h"
#include "report/report.h"

/* What the sweep keeps (rank 0): with -N N every complete cycle's results;
 * with -N 0 only the last complete cycle's, plus a summary over all cycles
 * and a window of per-cycle summaries, so memory and the files stay bounded
 * however long it runs. */
struct cb_sweep {
    struct cb_result *results;   /* rank 0: the results of complete cycles the files hold */
    int nresults, cap;
    struct cb_result *pending;   /* rank 0: the cycle being measured */
    int npending, pending_cap;
    struct cb_summary summary;   /* rank 0: over every complete cycle */
    struct cb_cycles cycles;     /* rank 0 */
    long long wrong;             /* total wrong elements, every rank knows */
    struct cb_wire_moved *wire;  /* rank 0: [nranks], what moved on each rank's links since the start */
    int wire_errors;             /* every rank knows: an error counter moved or a port event was seen */
};

/* Called on rank 0 after every complete cycle, and once more when the sweep
 * stops early on a signal; `last` says no call follows. A failure (logged:
 * an output file could not be written) stops the run on every rank. */
typedef cb_status (*cb_sweep_report_fn)(const struct cb_sweep *sweep, int last, void *arg);

/* Collective, before the sweep: load the cost model where auto needs it,
 * make every connection the sweep's algorithms use and grow the scratch, so
 * the header can say what they hold and the timed loop makes none. */
cb_status cb_harness_prepare(struct cb_comm *c, const struct cb_options *o);

/* Run the whole sweep (-N cycles), after cb_harness_prepare. Rows go to `table` (rank 0) as they are
 * measured; after every cycle the wire counters are read on every rank
 * (sweep->wire, summary.wire) and `on_cycle` is called on rank 0. Stops
 * with CB_ESTOPPED at the next operation or size once *o->stop is set. */
cb_status cb_harness_sweep(struct cb_comm *c, const struct cb_options *o, FILE *table,
                           struct cb_sweep *sweep, cb_sweep_report_fn on_cycle, void *arg);
void cb_harness_free(struct cb_sweep *sweep);

#endif
