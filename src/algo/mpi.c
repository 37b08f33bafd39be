/* MPI's own collectives as an algorithm, `mpi`: run in collbench's harness so
 * that our numbers and MPI's come from the same sizes, data, timing and
 * checks (--mpi-reference). The benchmark data path never uses it. */
#include "algo.h"

#include <mpi.h>
#include <string.h>

static MPI_Datatype mpi_type(cb_type t)
{
    switch (t) {
    case CB_INT8: return MPI_INT8_T;
    case CB_UINT8: return MPI_UINT8_T;
    case CB_INT32: return MPI_INT32_T;
    case CB_UINT32: return MPI_UINT32_T;
    case CB_INT64: return MPI_INT64_T;
    case CB_UINT64: return MPI_UINT64_T;
    case CB_FLOAT: return MPI_FLOAT;
    case CB_DOUBLE: return MPI_DOUBLE;
    default: return MPI_DATATYPE_NULL;
    }
}

static MPI_Op mpi_op(cb_op op)
{
    switch (op) {
    case CB_SUM: return MPI_SUM;
    case CB_PROD: return MPI_PROD;
    case CB_MIN: return MPI_MIN;
    case CB_MAX: return MPI_MAX;
    default: return MPI_OP_NULL;
    }
}

static cb_status mpi_supports(cb_coll coll, cb_type t, cb_op op, int report)
{
    if (mpi_type(t) == MPI_DATATYPE_NULL) {
        if (report)
            cb_log_error("--mpi-reference: MPI has no %s type; use -d int8, uint8, int32, uint32, "
                         "int64, uint64, float or double", cb_type_name(t));
        return CB_EUSAGE;
    }
    if (cb_coll_desc(coll)->reduces && mpi_op(op) == MPI_OP_NULL) {
        if (report)
            cb_log_error("--mpi-reference: MPI has no %s operation; use -o sum, prod, min or max", cb_op_name(op));
        return CB_EUSAGE;
    }
    return CB_OK;
}

/* MPI's in-place reduce_scatter leaves the result at the start of the buffer,
 * collbench's layout puts it at rank * count: that half is not run. */
static int mpi_in_place(cb_coll coll)
{
    return coll != CB_REDUCE_SCATTER;
}

static int run_rooted(struct cb_comm *c, const struct cb_coll_args *a, MPI_Datatype t, int n)
{
    int in_place = a->sendbuf == a->recvbuf;
    if (a->coll == CB_BROADCAST) {
        if (c->rank == a->root && !in_place)
            memcpy(a->recvbuf, a->sendbuf, a->count * cb_type_size(a->type));
        return MPI_Bcast(a->recvbuf, n, t, a->root, MPI_COMM_WORLD);
    }
    const void *send = in_place && c->rank == a->root ? MPI_IN_PLACE : a->sendbuf;
    return MPI_Reduce(send, a->recvbuf, n, t, mpi_op(a->op), a->root, MPI_COMM_WORLD);
}

static int run_sendrecv(struct cb_comm *c, const struct cb_coll_args *a, MPI_Datatype t, int n)
{
    int next = (c->rank + 1) % c->nranks, prev = (c->rank + c->nranks - 1) % c->nranks;
    if (a->sendbuf == a->recvbuf)
        return MPI_Sendrecv_replace(a->recvbuf, n, t, next, 9, prev, 9, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    return MPI_Sendrecv(a->sendbuf, n, t, next, 9, a->recvbuf, n, t, prev, 9, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
}

/* In place as collbench lays it out: all_gather's input is this rank's block of the output. */
static int is_in_place(const struct cb_comm *c, const struct cb_coll_args *a)
{
    size_t block = a->count * cb_type_size(a->type);
    if (a->coll == CB_ALL_GATHER)
        return (const char *)a->sendbuf == (const char *)a->recvbuf + (size_t)c->rank * block;
    return a->sendbuf == a->recvbuf;
}

static cb_status mpi_run(struct cb_comm *c, const struct cb_coll_args *a)
{
    MPI_Datatype t = mpi_type(a->type);
    int n = (int)a->count, rc;
    const void *send = is_in_place(c, a) ? MPI_IN_PLACE : a->sendbuf;
    switch (a->coll) {
    case CB_ALL_REDUCE: rc = MPI_Allreduce(send, a->recvbuf, n, t, mpi_op(a->op), MPI_COMM_WORLD); break;
    case CB_ALL_GATHER: rc = MPI_Allgather(send, n, t, a->recvbuf, n, t, MPI_COMM_WORLD); break;
    case CB_REDUCE_SCATTER:
        rc = MPI_Reduce_scatter_block(send, a->recvbuf, n, t, mpi_op(a->op), MPI_COMM_WORLD);
        break;
    case CB_ALLTOALL: rc = MPI_Alltoall(send, n, t, a->recvbuf, n, t, MPI_COMM_WORLD); break;
    case CB_SENDRECV: rc = run_sendrecv(c, a, t, n); break;
    default: rc = run_rooted(c, a, t, n); break;
    }
    if (rc != MPI_SUCCESS) {
        cb_log_error("MPI's %s failed (error %d)", cb_coll_name(a->coll), rc);
        return CB_EPEER;
    }
    return CB_OK;
}

const struct cb_algo_desc cb_algo_mpi = {
    .name = "mpi",
    .summary = "MPI's own collective (MPI_Allreduce, ...), for comparison: --mpi-reference",
    .in_place = mpi_in_place,
    .supports = mpi_supports,
    .not_ours = 1,
    .impl = {
        {CB_ALL_REDUCE, mpi_run, NULL}, {CB_ALL_GATHER, mpi_run, NULL}, {CB_REDUCE_SCATTER, mpi_run, NULL},
        {CB_ALLTOALL, mpi_run, NULL}, {CB_BROADCAST, mpi_run, NULL}, {CB_REDUCE, mpi_run, NULL},
        {CB_SENDRECV, mpi_run, NULL},
    },
};
