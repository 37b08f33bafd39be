/* Type and op names, and load/store through double. The narrow-float
 * conversions live in reduce.c, next to the kernels that inline them. */
#include "types.h"

#include <string.h>

struct type_info {
    size_t size;
    const char *name;
    int is_float;
};

static const struct type_info type_infos[CB_NTYPES] = {
    [CB_INT8] = {1, "int8", 0},       [CB_UINT8] = {1, "uint8", 0},
    [CB_INT32] = {4, "int32", 0},     [CB_UINT32] = {4, "uint32", 0},
    [CB_INT64] = {8, "int64", 0},     [CB_UINT64] = {8, "uint64", 0},
    [CB_HALF] = {2, "half", 1},       [CB_FLOAT] = {4, "float", 1},
    [CB_DOUBLE] = {8, "double", 1},   [CB_BFLOAT16] = {2, "bfloat16", 1},
    [CB_F8E4M3] = {1, "f8e4m3", 1},   [CB_F8E5M2] = {1, "f8e5m2", 1},
};

/* nccl-tests' names first, then NCCL's enum names and common spellings. */
static const struct {
    const char *name;
    cb_type type;
} type_aliases[] = {
    {"int8", CB_INT8},         {"char", CB_INT8},          {"uint8", CB_UINT8},
    {"uchar", CB_UINT8},       {"int32", CB_INT32},        {"int", CB_INT32},
    {"uint32", CB_UINT32},     {"uint", CB_UINT32},        {"int64", CB_INT64},
    {"uint64", CB_UINT64},     {"half", CB_HALF},          {"float16", CB_HALF},
    {"fp16", CB_HALF},         {"float", CB_FLOAT},        {"float32", CB_FLOAT},
    {"fp32", CB_FLOAT},        {"double", CB_DOUBLE},      {"float64", CB_DOUBLE},
    {"fp64", CB_DOUBLE},       {"bfloat16", CB_BFLOAT16},  {"bf16", CB_BFLOAT16},
    {"f8e4m3", CB_F8E4M3},     {"fp8_e4m3", CB_F8E4M3},    {"fp8e4m3", CB_F8E4M3},
    {"e4m3", CB_F8E4M3},       {"f8e5m2", CB_F8E5M2},      {"fp8_e5m2", CB_F8E5M2},
    {"fp8e5m2", CB_F8E5M2},    {"e5m2", CB_F8E5M2},
};

static const char *const op_names[CB_NOPS] = {
    [CB_SUM] = "sum", [CB_PROD] = "prod", [CB_MIN] = "min", [CB_MAX] = "max", [CB_AVG] = "avg",
    [CB_MULSUM] = "mulsum",
};

size_t cb_type_size(cb_type t)
{
    return (unsigned)t < CB_NTYPES ? type_infos[t].size : 0;
}

const char *cb_type_name(cb_type t)
{
    return (unsigned)t < CB_NTYPES ? type_infos[t].name : "?";
}

const char *cb_op_name(cb_op op)
{
    return (unsigned)op < CB_NOPS ? op_names[op] : "?";
}

int cb_type_is_float(cb_type t)
{
    return (unsigned)t < CB_NTYPES && type_infos[t].is_float;
}

int cb_type_parse(const char *name)
{
    if (!name)
        return -1;
    for (size_t i = 0; i < sizeof type_aliases / sizeof type_aliases[0]; i++)
        if (strcmp(name, type_aliases[i].name) == 0)
            return (int)type_aliases[i].type;
    return -1;
}

int cb_op_parse(const char *name)
{
    if (!name)
        return -1;
    for (int op = 0; op < CB_NOPS; op++)
        if (strcmp(name, op_names[op]) == 0)
            return op;
    return -1;
}

/* Integer bits of a double, wrapping like a cast of an in-range integer and
 * clamping what would be undefined to cast. */
static uint64_t double_to_int_bits(double v)
{
    if (v != v)
        return 0;
    if (v >= 0)
        return v >= 0x1p64 ? UINT64_MAX : (uint64_t)v;
    return v < -0x1p63 ? (uint64_t)INT64_MIN : (uint64_t)(int64_t)v;
}

double cb_load(const void *buf, size_t i, cb_type t)
{
    switch (t) {
    case CB_INT8: return ((const int8_t *)buf)[i];
    case CB_UINT8: return ((const uint8_t *)buf)[i];
    case CB_INT32: return ((const int32_t *)buf)[i];
    case CB_UINT32: return ((const uint32_t *)buf)[i];
    case CB_INT64: return (double)((const int64_t *)buf)[i];
    case CB_UINT64: return (double)((const uint64_t *)buf)[i];
    case CB_HALF: return cb_half_to_float(((const uint16_t *)buf)[i]);
    case CB_FLOAT: return ((const float *)buf)[i];
    case CB_DOUBLE: return ((const double *)buf)[i];
    case CB_BFLOAT16: return cb_bf16_to_float(((const uint16_t *)buf)[i]);
    case CB_F8E4M3: return cb_e4m3_to_float(((const uint8_t *)buf)[i]);
    case CB_F8E5M2: return cb_e5m2_to_float(((const uint8_t *)buf)[i]);
    default: return 0;
    }
}

void cb_store(void *buf, size_t i, cb_type t, double v)
{
    switch (t) {
    case CB_INT8: case CB_UINT8: ((uint8_t *)buf)[i] = (uint8_t)double_to_int_bits(v); break;
    case CB_INT32: case CB_UINT32: ((uint32_t *)buf)[i] = (uint32_t)double_to_int_bits(v); break;
    case CB_INT64: case CB_UINT64: ((uint64_t *)buf)[i] = double_to_int_bits(v); break;
    case CB_HALF: ((uint16_t *)buf)[i] = cb_float_to_half((float)v); break;
    case CB_FLOAT: ((float *)buf)[i] = (float)v; break;
    case CB_DOUBLE: ((double *)buf)[i] = v; break;
    case CB_BFLOAT16: ((uint16_t *)buf)[i] = cb_float_to_bf16((float)v); break;
    case CB_F8E4M3: ((uint8_t *)buf)[i] = cb_float_to_e4m3((float)v); break;
    case CB_F8E5M2: ((uint8_t *)buf)[i] = cb_float_to_e5m2((float)v); break;
    default: break;
    }
}
