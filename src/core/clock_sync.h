/* The offset of each rank's clock (clock.h) from rank 0's, so that times
 * taken on different hosts can be compared: who arrived last at a
 * collective. */
#ifndef CB_CLOCK_SYNC_H
#define CB_CLOCK_SYNC_H

#include "core/bootstrap.h"

/* Collective. *offset_s = this rank's cb_now_s() minus rank 0's at the same
 * moment (0 on rank 0). Rank 0 exchanges timestamps with each rank in turn,
 * CB_CLOCK_PINGS round trips, and keeps the estimate of the shortest round
 * trip (the least queued); it is right to about half that round trip. */
#define CB_CLOCK_PINGS 5
cb_status cb_clock_offset(struct cb_boot *b, int timeout_ms, double *offset_s);

#endif
