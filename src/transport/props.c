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

const char *cb_switch_name(int s)
{
    static const char *const names[] = {[CB_SWITCH_AUTO] = "auto", [CB_SWITCH_ON] = "on", [CB_SWITCH_OFF] = "off"};
    return s >= 0 && s < (int)(sizeof names / sizeof names[0]) ? names[s] : NULL;
}

int cb_split_data(const struct cb_transport_config *cfg)
{
    return cfg->ib_split_data == CB_SWITCH_ON && cfg->qps_per_conn > 1;
}
