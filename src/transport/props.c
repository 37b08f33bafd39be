#include "transport.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void cb_props_add(struct cb_props *p, const char *key, const char *fmt, ...)
{
    if (p->n >= CB_PROPS_MAX)
        return;
    size_t cap = sizeof p->kv[0].val;
    va_list ap;
    snprintf(p->kv[p->n].key, sizeof p->kv[0].key, "%s", key);
    va_start(ap, fmt);
    int len = vsnprintf(p->kv[p->n].val, cap, fmt, ap);
    va_end(ap);
    if (len >= (int)cap)   /* say it was cut rather than show a wrong value */
        memcpy(p->kv[p->n].val + cap - 4, "...", 4);
    p->n++;
}
