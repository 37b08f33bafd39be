/* The one clock that timings and deadlines use: CLOCK_MONOTONIC, in seconds
 * (or whole milliseconds and nanoseconds, for deadlines and poll budgets).
 * Per rank only: never subtract the clocks of two hosts. */
#ifndef CB_CLOCK_H
#define CB_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline double cb_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static inline int64_t cb_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t cb_now_ms(void)
{
    return cb_now_ns() / 1000000;
}

#endif
