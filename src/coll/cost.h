/* The terms of the alpha-beta-gamma cost model that `--algo auto` uses to
 * pick an algorithm per size (src/coll/model.h has the model itself). Kept apart
 * so that the communicator can hold them without depending on the model. */
#ifndef CB_COST_H
#define CB_COST_H

#include <stddef.h>
#include "core/types.h"

struct cb_cost {
    int valid;          /* measured at start-up or loaded from `collbench tune`'s file */
    double alpha_s;     /* one step: a small message from a rank to a waiting peer */
    double beta_s;      /* per byte a rank sends while its peers send too */
    double gamma_s[CB_NTYPES];  /* per byte reduced, per type (0: not measured) */
    size_t chunk_bytes; /* bytes one primitive moves per peer per round (half the FIFO) */
    int nranks;         /* rank count the terms were measured with */
};

#endif
