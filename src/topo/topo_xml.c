#include "topo_xml.h"
#include "core/checked.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The value of attribute `name` (e.g. ` os_index="`) within tag[0..n), or NULL. */
static const char *attr(const char *tag, size_t n, const char *name, size_t *vlen)
{
    size_t k = strlen(name);
    for (size_t i = 0; i + k <= n; i++) {
        if (memcmp(tag + i, name, k) != 0)
            continue;
        const char *v = tag + i + k, *end = memchr(v, '"', n - i - k);
        if (!end)
            return NULL;
        *vlen = (size_t)(end - v);
        return v;
    }
    return NULL;
}

static int bounded_type(const char *tag, size_t n)
{
    size_t vlen;
    const char *t = attr(tag, n, " type=\"", &vlen);
    return t && ((vlen == 2 && memcmp(t, "PU", 2) == 0) || (vlen == 8 && memcmp(t, "NUMANode", 8) == 0));
}

/* The decimal at v[0..vlen), capped above the bound; non-digits end it. */
static unsigned long number(const char *v, size_t vlen)
{
    unsigned long x = 0;
    for (size_t i = 0; i < vlen && v[i] >= '0' && v[i] <= '9'; i++)
        x = x > CB_TOPO_MAX_OS_INDEX ? x : x * 10 + (unsigned long)(v[i] - '0');
    return x;
}

int cb_topo_xml_scan(const char *text, size_t len, int *line, unsigned long *value)
{
    int lineno = 1;
    const char *counted = text, *end = text + len;
    for (const char *p = text; p < end;) {
        const char *tag = memmem(p, (size_t)(end - p), "<object", 7);
        if (!tag)
            return 0;
        const char *close = memchr(tag, '>', (size_t)(end - tag));
        size_t n = close ? (size_t)(close - tag) : (size_t)(end - tag), vlen;
        for (; counted < tag; counted++)
            lineno += *counted == '\n';
        const char *v = attr(tag, n, " os_index=\"", &vlen);
        if (v && bounded_type(tag, n) && number(v, vlen) > CB_TOPO_MAX_OS_INDEX) {
            *line = lineno;
            *value = number(v, vlen);
            return -1;
        }
        p = tag + n;
    }
    return 0;
}

cb_status cb_topo_xml_check(const char *path)
{
    char where[160];
    int line;
    unsigned long value;   /* capped: what is shown is the bound */
    cb_escape(where, sizeof where, path);
    FILE *f = fopen(path, "r");
    if (!f)
        return CB_OK;   /* the caller's own open names the problem */
    char *text = malloc(CB_TOPO_XML_MAX_BYTES + 1);
    size_t n = text ? fread(text, 1, CB_TOPO_XML_MAX_BYTES + 1, f) : 0;
    fclose(f);
    if (!text)
        return CB_ENOMEM;
    cb_status st = CB_OK;
    if (n > CB_TOPO_XML_MAX_BYTES) {
        cb_log_error("'%s' is larger than %u MiB: not an hwloc XML topology of one machine", where,
                     CB_TOPO_XML_MAX_BYTES >> 20);
        st = CB_EUSAGE;
    } else if (cb_topo_xml_scan(text, n, &line, &value) != 0) {
        cb_log_error("%s:%d: a PU or NUMA node with an os_index above %u: no machine numbers its CPUs or NUMA "
                     "nodes that high; give an XML topology made by lstopo --of xml", where, line, CB_TOPO_MAX_OS_INDEX);
        st = CB_EUSAGE;
    }
    free(text);
    return st;
}
