/* The collectives as the engine knows them; the one place these facts live. */
#include "coll.h"

static const struct cb_coll_desc colls[CB_NCOLLS] = {
    [CB_ALL_REDUCE] = {"all_reduce", .reduces = 1},
    [CB_ALL_GATHER] = {"all_gather", .size_is_whole = 1},
    [CB_REDUCE_SCATTER] = {"reduce_scatter", .reduces = 1, .size_is_whole = 1},
    [CB_ALLTOALL] = {"alltoall", .size_is_whole = 1},
    [CB_BROADCAST] = {"broadcast", .rooted = 1},
    [CB_REDUCE] = {"reduce", .reduces = 1, .rooted = 1},
    [CB_SENDRECV] = {"sendrecv"},
};

const struct cb_coll_desc *cb_coll_desc(cb_coll c)
{
    return (unsigned)c < CB_NCOLLS ? &colls[c] : NULL;
}

const char *cb_coll_name(cb_coll c)
{
    return (unsigned)c < CB_NCOLLS ? colls[c].name : "?";
}
