/* MPI's own collectives run in collbench's harness, so our numbers and MPI's
 * come from the same sizes, data, timing and checks (--mpi-reference). The
 * benchmark data path never uses this. */
#ifndef CB_MPI_REF_H
#define CB_MPI_REF_H

#include "core/comm.h"
#include "coll/coll.h"

/* CB_EUSAGE (logged when `report`) if MPI has no equivalent for the type or op. */
cb_status cb_mpi_ref_supported(cb_coll coll, cb_type t, cb_op op, int report);
/* Whether MPI can run this collective in collbench's in-place layout. */
int cb_mpi_ref_in_place(cb_coll coll);
cb_status cb_mpi_ref_run(struct cb_comm *c, const struct cb_coll_args *a);

#endif
