/* Deterministic buffer contents and their exact expected results, for the
 * bit-exact correctness check.
 *
 * Element i of rank r is value(r, i), a function of (seed, rank, index, type,
 * op, nranks) only, so any rank can compute any other rank's data or the
 * reduced result locally, in O(1) per element whatever the rank count.
 *
 * Why every reduction order gives the same bits:
 * - Integers: sum and prod wrap modulo 2^bits, which is associative and
 *   commutative; min and max pick an element.
 * - Floats, sum and avg: values are small integers. For element i only
 *   k = min(nranks, L) ranks contribute (L = largest integer up to which the
 *   type holds every integer: e5m2 8, e4m3 16, bf16 256, half 2048, float 2^24,
 *   double 2^53), the others hold 0. The k contributions telescope,
 *   g(1) - g(0), g(2) - g(1), ..., g(k) - g(k-1) with g(0) = 0 and
 *   |g| <= max(1, min(L / k, 100)), so the sum is g(k) and any partial sum, in
 *   any order, is an integer within [-L, L]: exact, hence order-free.
 *   avg then divides once, in float (double for double), as the kernel does.
 * - Floats, prod: factors +-1 and +-2 with at most as many 2s as keep the
 *   product a power of two the type holds exactly (e4m3 8, e5m2 and half 15,
 *   others 60); every partial product is such a power of two.
 * - Floats, min and max: integers in [-8, 8].
 * - mulsum (rank r's input times cb_mulsum_scalar(r), 1 or 2, then a sum):
 *   the contributions telescope as for sum, made divisible by 2 (floats: g
 *   even, with k = min(nranks, L / 2) so |g| can reach 2; integers: g a
 *   multiple of 4), and a rank whose scalar is 2 holds half its position's
 *   contribution. The pre-multiplied values are then exactly sum's kind of
 *   data, so sum's argument holds; half an integer contribution modulo 2^bits
 *   is still even.
 * The expected result comes from this closed form, not from the kernels, so a
 * kernel or transport bug cannot cancel out.
 *
 * Stale data cannot pass: cb_data_poison sets every bit, which is NaN in every
 * float type and odd in every integer type, while integer values and results
 * are always even (prod: 1 mod 4). */
#ifndef CB_DATA_H
#define CB_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "core/types.h"

/* buf[j] = value(rank, first_index + j) for j < count. */
void cb_data_fill(void *buf, size_t count, size_t first_index, cb_type t, cb_op op,
                  int rank, int nranks, uint64_t seed);

/* What src_rank's cb_data_fill produced (for all_gather, broadcast, alltoall,
 * sendrecv): buf[j] = value(src_rank, first_index + j). */
void cb_data_expected_rank(void *buf, size_t count, size_t first_index, cb_type t, cb_op op,
                           int src_rank, int nranks, uint64_t seed);

/* The exact reduction of value(r, first_index + j) over r < nranks, divided
 * by nranks for CB_AVG the way cb_reduce_last / cb_reduce_finish do; for
 * CB_MULSUM the sum of value(r, ...) * cb_mulsum_scalar(r). */
void cb_data_expected_reduce(void *buf, size_t count, size_t first_index, cb_type t, cb_op op,
                             int nranks, uint64_t seed);

/* Elements whose bits differ (buffers at any alignment). *first_wrong (if not NULL) gets the index of the
 * first, or count when all match. */
size_t cb_data_count_wrong(const void *got, const void *expected, size_t count, cb_type t,
                           size_t *first_wrong);

/* Fill a receive buffer with bytes no right answer has (see above). The one
 * pattern safe for every type and alignment does not depend on seed. */
void cb_data_poison(void *buf, size_t bytes, uint64_t seed);

#endif
