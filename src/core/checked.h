/* Numbers from text and size arithmetic, checked: every parser rejects
 * signs, spaces, trailing text and values out of range instead of wrapping,
 * and every sum or product of sizes reports overflow instead of wrapping. */
#ifndef CB_CHECKED_H
#define CB_CHECKED_H

#include <stddef.h>
#include <stdint.h>

/* A decimal integer in [lo, hi]. Returns 0, or -1 (out is untouched). */
int cb_parse_long(const char *s, long lo, long hi, long *out);
/* An unsigned integer (decimal, or 0x hex) that fits 64 bits. */
int cb_parse_u64(const char *s, uint64_t *out);
/* A finite number in [lo, hi] (no inf, no nan). */
int cb_parse_double(const char *s, double lo, double hi, double *out);

/* *out = a + b or a * b; 0, or -1 when the result does not fit a size_t. */
static inline int cb_size_add(size_t a, size_t b, size_t *out) { return __builtin_add_overflow(a, b, out) ? -1 : 0; }
static inline int cb_size_mul(size_t a, size_t b, size_t *out) { return __builtin_mul_overflow(a, b, out) ? -1 : 0; }

/* `src` for a log line: bytes other than printable ASCII become \xNN, so a
 * file's or argument's content cannot move the cursor or recolour a terminal.
 * Always terminates dst (len > 0); a cut-off copy ends in "...". */
void cb_escape(char *dst, size_t len, const char *src);

#endif
