#include <string.h>
#include "coll.h"

const char *cb_coll_name(cb_coll c)
{
    static const char *const names[CB_NCOLLS] = {
        "all_reduce", "all_gather", "reduce_scatter", "alltoall", "broadcast", "reduce", "sendrecv"};
    return (unsigned)c < CB_NCOLLS ? names[c] : "?";
}

const char *cb_algo_name(cb_algo a)
{
    static const char *const names[CB_NALGOS] = {"auto", "ring", "tree", "rd", "pairwise",
                                                        "rabenseifner", "linear", "direct", "mpi"};
    return (unsigned)a < CB_NALGOS ? names[a] : "?";
}

int cb_algo_parse(const char *name)
{
    for (int a = 0; a < CB_NALGOS; a++)
        if (strcmp(name, cb_algo_name((cb_algo)a)) == 0)
            return a;
    return -1;
}
