/* libFuzzer harness: `collbench tune`'s file. Any bytes: the parse ends in
 * CB_OK or CB_EUSAGE, and what it accepts is within the documented bounds. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "coll/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cb_cost c;
    cb_status st = cb_cost_parse((const char *)data, size, "fuzz", &c, size > 0 && (data[0] & 1));
    if (st != CB_OK && st != CB_EUSAGE)
        abort();
    if (st != CB_OK)
        return 0;
    if (!(c.alpha_s > 0 || c.beta_s > 0) || !isfinite(c.alpha_s) || !isfinite(c.beta_s) || c.alpha_s < 0 ||
        c.beta_s < 0 || c.alpha_s > 1 || c.beta_s > 1e-3 || c.nranks < 0 || c.nranks > CB_MODEL_MAX_RANKS ||
        c.chunk_bytes > (1u << 30))
        abort();
    for (int t = 0; t < CB_NTYPES; t++)
        if (!isfinite(c.gamma_s[t]) || c.gamma_s[t] < 0 || c.gamma_s[t] > 1e-3)
            abort();
    return 0;
}
