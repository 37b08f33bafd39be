/* The one clock that timings and deadlines use: CLOCK_MONOTONIC, in seconds.
 * Per rank only: never subtract the clocks of two hosts. */
#ifndef CB_CLOCK_H
#define CB_CLOCK_H

#include <time.h>

static inline double cb_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

#endif
