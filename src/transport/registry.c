/* The transports, in the order `--transport` lists them. */
#include "transport.h"

#include <stdio.h>
#include <string.h>

const struct cb_transport_ops *const cb_transports[] = {&cb_transport_shm, &cb_transport_tcp, &cb_transport_verbs,
                                                        NULL};

const struct cb_transport_ops *cb_transport_find(const char *name)
{
    for (int i = 0; cb_transports[i]; i++)
        if (strcmp(name, cb_transports[i]->name) == 0)
            return cb_transports[i];
    return NULL;
}

void cb_transport_names(char *buf, size_t size, const char *last_sep)
{
    size_t used = 0;
    if (size)
        buf[0] = 0;
    for (int i = 0; cb_transports[i] && used < size; i++) {
        const char *join = i == 0 ? "" : cb_transports[i + 1] ? ", " : last_sep;
        int n = snprintf(buf + used, size - used, "%s%s", join, cb_transports[i]->name);
        used += n > 0 ? (size_t)n : 0;
    }
}
