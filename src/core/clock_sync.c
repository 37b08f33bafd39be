/* Clock offsets from rank 0 by timestamp round trips (clock_sync.h). */
#include "core/clock_sync.h"
#include "core/clock.h"

#include <math.h>

/* Rank 0's side with rank r: t1 sent, (t2, t3) back, t4 on return. */
static cb_status ping_rank(struct cb_boot *b, int r, int timeout_ms, double *offset)
{
    double best_rtt = INFINITY;
    cb_status st = CB_OK;
    for (int k = 0; k < CB_CLOCK_PINGS && st == CB_OK; k++) {
        double t1 = cb_now_s(), back[2];
        st = cb_boot_exchange(b, &r, &t1, 1, NULL, NULL, 0, sizeof t1, timeout_ms, "syncing clocks");
        if (st == CB_OK)
            st = cb_boot_exchange(b, NULL, NULL, 0, &r, back, 1, sizeof back, timeout_ms, "syncing clocks");
        double t4 = cb_now_s(), rtt = (t4 - t1) - (back[1] - back[0]);
        if (st == CB_OK && rtt < best_rtt) {
            best_rtt = rtt;
            *offset = ((back[0] - t1) + (back[1] - t4)) / 2;
        }
    }
    return st;
}

static cb_status answer_pings(struct cb_boot *b, int timeout_ms, double *offset)
{
    int zero = 0;
    cb_status st = CB_OK;
    for (int k = 0; k < CB_CLOCK_PINGS && st == CB_OK; k++) {
        double t1, back[2];
        st = cb_boot_exchange(b, NULL, NULL, 0, &zero, &t1, 1, sizeof t1, timeout_ms, "syncing clocks");
        back[0] = back[1] = cb_now_s();
        if (st == CB_OK)
            st = cb_boot_exchange(b, &zero, back, 1, NULL, NULL, 0, sizeof back, timeout_ms, "syncing clocks");
    }
    if (st == CB_OK)
        st = cb_boot_exchange(b, NULL, NULL, 0, &zero, offset, 1, sizeof *offset, timeout_ms, "syncing clocks");
    return st;
}

cb_status cb_clock_offset(struct cb_boot *b, int timeout_ms, double *offset_s)
{
    *offset_s = 0;
    if (cb_boot_rank(b) != 0)
        return answer_pings(b, timeout_ms, offset_s);
    cb_status st = CB_OK;
    for (int r = 1; r < cb_boot_size(b) && st == CB_OK; r++) {
        double off = 0;
        st = ping_rank(b, r, timeout_ms, &off);
        if (st == CB_OK)
            st = cb_boot_exchange(b, &r, &off, 1, NULL, NULL, 0, sizeof off, timeout_ms, "syncing clocks");
    }
    return st;
}
