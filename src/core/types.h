/* Element types and reduction operations, and the reduction kernels. */
#ifndef CB_TYPES_H
#define CB_TYPES_H

#include <stddef.h>
#include <stdint.h>

typedef enum cb_type {
    CB_INT8, CB_UINT8, CB_INT32, CB_UINT32, CB_INT64, CB_UINT64,
    CB_HALF, CB_FLOAT, CB_DOUBLE, CB_BFLOAT16, CB_F8E4M3, CB_F8E5M2,
    CB_NTYPES
} cb_type;

/* CB_MULSUM is nccl-tests' "mulsum", NCCL's pre-multiplied sum
 * (ncclRedOpCreatePreMulSum) with nccl-tests' scalars: each rank's input
 * times cb_mulsum_scalar(rank), then summed. The kernels see a sum; the
 * multiplication is cb_reduce_premultiply's, run by cb_coll_run. */
typedef enum cb_op { CB_SUM, CB_PROD, CB_MIN, CB_MAX, CB_AVG, CB_MULSUM, CB_NOPS } cb_op;

size_t cb_type_size(cb_type t);
const char *cb_type_name(cb_type t);   /* nccl-tests' names: int8 uint8 int32 ... bfloat16 f8e4m3 f8e5m2 */
const char *cb_op_name(cb_op op);      /* sum prod min max avg mulsum */
/* Parse a name (nccl-tests' aliases too: char, int, float16/half, fp32, ...). -1 if unknown. */
int cb_type_parse(const char *name);
int cb_op_parse(const char *name);
int cb_type_is_float(cb_type t);

/* mulsum's scalar of a rank, as nccl-tests' verifiable.h sets it: 1 for
 * even ranks, 2 for odd ones. */
static inline int cb_mulsum_scalar(int rank)
{
    return rank % 2 ? 2 : 1;
}
/* dst[i] = src[i] * cb_mulsum_scalar(rank) for i < count; dst may be src.
 * Times 2 is src + src through the sum kernel: exact in every type (integers
 * wrap, narrow floats round once as a sum does). */
void cb_reduce_premultiply(void *dst, const void *src, size_t count, cb_type t, int rank);

/* dst[i] = a[i] OP b[i] for i < count; dst may alias a or b.
 * For CB_MULSUM this is a sum (the inputs are already multiplied).
 * For CB_AVG this is a sum; the division by the rank count happens once, in
 * cb_reduce_finish or cb_reduce_last. Narrow floats (half, bfloat16, fp8) are
 * computed through float and rounded to nearest even, saturating like the format does. */
void cb_reduce(void *dst, const void *a, const void *b, size_t count, cb_type t, cb_op op);
/* The last reduction of an element: dst = a OP b, then for CB_AVG divided by
 * nranks (in float for narrow floats, in the type otherwise). */
void cb_reduce_last(void *dst, const void *a, const void *b, size_t count, cb_type t, cb_op op, int nranks);
/* Finish in place a value that needed no reduction (1 rank, or a tree root's own data):
 * for CB_AVG divides by nranks, otherwise nothing. */
void cb_reduce_finish(void *buf, size_t count, cb_type t, cb_op op, int nranks);

/* Conversions of the narrow floats, exposed for the reference and the tests. */
float cb_half_to_float(uint16_t h);
uint16_t cb_float_to_half(float f);
float cb_bf16_to_float(uint16_t b);
uint16_t cb_float_to_bf16(float f);
float cb_e4m3_to_float(uint8_t v);
uint8_t cb_float_to_e4m3(float f);   /* saturates to +-448, NaN stays NaN */
float cb_e5m2_to_float(uint8_t v);
uint8_t cb_float_to_e5m2(float f);   /* saturates to +-57344 (finite max), NaN stays NaN */

/* Element i of a buffer as double / stored from double (exact for the values the tests use). */
double cb_load(const void *buf, size_t i, cb_type t);
void cb_store(void *buf, size_t i, cb_type t, double v);

#endif
