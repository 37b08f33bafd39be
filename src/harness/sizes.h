/* The sizes of a sweep (-b, -e, -i, -f), in checked arithmetic: a sweep is
 * refused before it starts when a step would not advance, would overflow a
 * size_t (the step past -e included) or would take more than
 * CB_SIZES_MAX_COUNT sizes; a sweep that passed the check then ends exactly
 * at the last size not above -e. */
#ifndef CB_SIZES_H
#define CB_SIZES_H

#include <stddef.h>

#define CB_SIZES_MAX_COUNT (1u << 20)

struct cb_sizes {
    size_t min_bytes, max_bytes, step_bytes;
    double step_factor;   /* > 1: geometric; 0: linear by step_bytes */
};

/* The size after `size`: 1 with *next set when it is not above max_bytes,
 * 0 when the sweep ends at `size` (including when the next would overflow). */
int cb_sizes_next(const struct cb_sizes *s, size_t size, size_t *next);
/* 0 with *count the number of sizes, or -1 with why[len] saying what is
 * wrong and what to give instead (flags named as the benchmark's -b -e -i -f). */
int cb_sizes_check(const struct cb_sizes *s, size_t *count, char *why, size_t len);

#endif
