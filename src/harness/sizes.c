#include "sizes.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>

enum step { STEP_OK, STEP_OVERFLOW, STEP_STUCK };

/* Geometric: size * factor rounded down, at least size + 1 (nccl-tests'
 * sweeps from 0 or 1 B advance by a byte until the factor takes over). */
static enum step step(const struct cb_sizes *s, size_t size, size_t *next)
{
    if (s->step_factor > 1) {
        double d = (double)size * s->step_factor;
        if (!(d < 0x1p64) || size == SIZE_MAX)
            return STEP_OVERFLOW;
        size_t n = (size_t)d;
        *next = n > size ? n : size + 1;
        return STEP_OK;
    }
    if (s->step_bytes == 0)
        return STEP_STUCK;
    if (s->step_bytes > SIZE_MAX - size)
        return STEP_OVERFLOW;
    *next = size + s->step_bytes;
    return STEP_OK;
}

int cb_sizes_next(const struct cb_sizes *s, size_t size, size_t *next)
{
    size_t n;
    if (size >= s->max_bytes || step(s, size, &n) != STEP_OK || n > s->max_bytes)
        return 0;
    *next = n;
    return 1;
}

static void describe_step(const struct cb_sizes *s, char *buf, size_t len)
{
    if (s->step_factor > 1)
        snprintf(buf, len, "-f %.10g", s->step_factor);
    else
        snprintf(buf, len, "-i %zu", s->step_bytes);
}

int cb_sizes_check(const struct cb_sizes *s, size_t *count, char *why, size_t len)
{
    char how[64];
    describe_step(s, how, sizeof how);
    if (s->min_bytes > s->max_bytes) {
        snprintf(why, len, "-b %zu is larger than -e %zu: the smallest size must not exceed the largest",
                 s->min_bytes, s->max_bytes);
        return -1;
    }
    if (s->step_factor != 0 && !(s->step_factor > 1 && isfinite(s->step_factor))) {
        snprintf(why, len, "%s: the factor must be a finite number greater than 1", how);
        return -1;
    }
    size_t n = 1;
    for (size_t size = s->min_bytes;; n++) {
        size_t next;
        enum step st = step(s, size, &next);
        if (st == STEP_STUCK && s->min_bytes < s->max_bytes) {
            snprintf(why, len, "-i 0 with -b < -e would never reach -e: give -i > 0 or -f > 1");
            return -1;
        }
        if (st == STEP_OVERFLOW) {
            snprintf(why, len, "%s after %zu B passes the largest size a byte count can hold: give a smaller "
                     "step or -e", how, size);
            return -1;
        }
        if (st == STEP_STUCK || next > s->max_bytes)
            break;
        if (n == CB_SIZES_MAX_COUNT) {
            snprintf(why, len, "-b %zu to -e %zu by %s makes more than %u sizes: give a larger step or a "
                     "narrower range", s->min_bytes, s->max_bytes, how, CB_SIZES_MAX_COUNT);
            return -1;
        }
        size = next;
    }
    *count = n;
    return 0;
}
